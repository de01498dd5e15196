#!/usr/bin/env bash
# The BPF LSM guard, where it can be loaded: in a qemu guest with Debian's cloud
# kernel (tests/vm/vm.sh), and where it cannot: on this host.
#  1. host: `mbx doctor` finds BPF LSM unusable by trying to load and attach the
#     guard, and says why and how to fix it; its other checks pass. mbx-guardd
#     fails with one line (and pins nothing); as a user it says it needs root.
#  2. guest: `mbx doctor` loads and attaches the guard ("bpf lsm ok").
#  3. guest, as real root inside `mbx run` (tests/vm/run.sh tests/vm/guard-battery.sh): a write
#     through a descriptor opened before the sandbox (--pass-fd) and a mount of a
#     tmpfs are denied with EPERM under --guard bpf and succeed under --guard off;
#     ordinary work in the view, /tmp and /dev/null is unaffected; `mbx log` lists
#     the denials and every exec with its argv (also as JSON lines); mbx run says
#     how many operations the guard denied. (A signal to a process outside fails
#     with EINVAL either way: the PID namespace already stops it.)
#     With --bind DIR, a directory next to DIR on the same file system, reached
#     through a descriptor, stays unwritable under the guard (not without it);
#     DIR itself is written. A task joined into the sandbox's PID and user
#     namespaces from outside (as nsenter does) cannot be ptraced or killed
#     under the guard; it can without. Loading a module fails either way (no
#     CAP_SYS_MODULE in the user namespace), but making the kernel autoload one
#     (a PF_KEY socket) loads af_key without the guard and is denied, logged
#     with the module's alias, with it. A block device node is refused outside
#     the layer either way (mbx's mknod emulation) and kept in it.
#     A make build and make install under the guard work, and mbx log lists
#     their execs with argv; --exec-allow make,sh lets the build run and denies
#     another program (logged); --exec-deny denies that one only.
#     Network: --net allow=127.0.0.1:PORT lets a connect to that port through and
#     denies another port; --net loopback allows the host's loopback only;
#     --net none denies a TCP connect and a UDP sendto; each denial is logged.
# e2e-timeout: 900
. "$(dirname "$0")/lib.sh"
e2e_init

part_host() {
  capture_raw "$MBX" doctor
  assert_rc 0 "mbx doctor on the host"
  assert_match "$OUT" '^bpf lsm +no +.*the guard does not load \(load: ' "BPF LSM found unusable by loading it"
  assert_match "$OUT" '^ +fix: ' "a fix is given"
  assert_match "$OUT" '^fuse +ok ' "the FUSE check"
  # mbx-guardd cannot load the guard here either: one line, nothing left pinned.
  capture_raw "$(dirname "$MBX")/mbx-guardd" --socket "$T/guard.sock"
  assert_rc 1 "mbx-guardd without BPF LSM"
  assert_match "$ERR" '^mbx-guardd: (guard: load .*: Operation not permitted|mkdir.*is bpffs mounted\? mount -t bpf)' "it says why"
  assert_eq 1 "$(grep -c '' <<<"$ERR")" "one line"
  [ ! -e /sys/fs/bpf/mbx ] || fail "mbx-guardd left /sys/fs/bpf/mbx behind"
  [ ! -e "$T/guard.sock" ] || fail "mbx-guardd left its socket behind"
  capture_as mbxtest "$(user_exe mbxtest "$(dirname "$MBX")/mbx-guardd")"
  assert_rc 1 "mbx-guardd as a user"
  assert_eq "mbx-guardd: mbx-guardd must run as root (it loads the BPF LSM guard)" "$ERR" "it says it needs root"
}

part_guest() {
  cat >"$T/guest.sh" <<GUEST
set -e
/usr/local/bin/mbx doctor >/tmp/doctor.out || true
cat /tmp/doctor.out
grep -Eq '^bpf lsm +ok ' /tmp/doctor.out
GUEST
  in_vm vm.sh "$T/guest.sh" "$MBX=/usr/local/bin/mbx"
  assert_rc 0 "the guest's checks"
  assert_match "$OUT" '^bpf lsm +ok +the guard loads and attaches' "the guard loads in the guest"
}

part_battery() {
  in_vm run.sh "$REPO/tests/vm/guard-battery.sh"
  assert_rc 0 "the guest's battery"
  assert_contains "$OUT" "inherited-fd bpf=Operation not permitted off=ok" "write through an inherited descriptor"
  assert_contains "$OUT" "victim original escaped" "only the unguarded write reached the host file"
  assert_contains "$OUT" "mount bpf=Operation not permitted off=ok" "mount of a tmpfs"
  assert_contains "$OUT" "kill-outside bpf=Invalid argument off=Invalid argument" "signal to a process outside"
  assert_contains "$OUT" "sleepers alive alive" "the processes outside live"
  assert_contains "$OUT" "work bpf=fine" "ordinary work under the guard"
  assert_match "$OUT" "^summary mbx: the guard denied 1 operation: see 'mbx log battery-sum'" "the count at exit"
  assert_match "$OUT" "denied file_write victim \\(pid [0-9]+ escape\\)" "mbx log: the write denial"
  assert_match "$OUT" "denied mount \\(pid [0-9]+ escape\\)" "mbx log: the mount denial"
  assert_match "$OUT" "exec /usr/local/bin/escape write-fd 3 \\(pid" "mbx log: an exec with its argv"
  assert_match "$OUT" '^\{"argv":\["sh","-c",' "mbx log --json: one object per line, with argv"
  assert_contains "$OUT" "net-allow-port bpf=ok other=Operation not permitted" "--net allow=127.0.0.1:PORT"
  assert_contains "$OUT" "net-loopback bpf=ok outside=Operation not permitted" "--net loopback"
  assert_contains "$OUT" "net-none tcp=Operation not permitted udp=Operation not permitted" "--net none"
  assert_contains "$OUT" "net-host bpf=ok" "--net host under the guard"
  assert_match "$OUT" "denied connect 127\\.0\\.0\\.1:7002 \\(pid" "mbx log: the denied connect"
  assert_match "$OUT" "denied sendmsg 127\\.0\\.0\\.1:53 \\(pid" "mbx log: the denied datagram"
  assert_contains "$OUT" "bind-outside bpf=Operation not permitted off=ok" "a host directory beside a --bind path"
  assert_contains "$OUT" "bind-inside bpf=fine host=in" "the --bind path itself is written"
  assert_contains "$OUT" "host-files allowed dir outside-off victim " "only the unguarded write created a file"
  assert_match "$OUT" "denied create outside-bpf \\(pid" "mbx log: the create beside the bind"
  assert_contains "$OUT" "outside-task bpf: ptrace=Operation not permitted kill=Operation not permitted" "ptrace and kill of a task outside, guarded"
  assert_contains "$OUT" "outside-task off: ptrace=ok kill=ok" "the same without the guard"
  assert_match "$OUT" "denied ptrace pid [0-9]+ \\(pid [0-9]+ escape\\)" "mbx log: the ptrace"
  assert_match "$OUT" "denied kill pid [0-9]+ \\(pid [0-9]+ escape\\)" "mbx log: the kill"
  assert_contains "$OUT" "module-load bpf=Operation not permitted off=Operation not permitted" "finit_module"
  assert_match "$OUT" "module-autoload bpf=[^=]+ loaded=0 off=[^=]+ loaded=1" "module autoload: only without the guard"
  assert_match "$OUT" "denied module net-pf-15 \\(pid" "mbx log: the module request"
  assert_contains "$OUT" "mknod-blk tmp: bpf=Operation not permitted off=Operation not permitted layer: bpf=ok" "a block device node"
  assert_match "$OUT" "denied mknod /tmp/sda \\(pid [0-9]+ escape\\)" "mbx log: the refused device node"
  assert_contains "$OUT" "build bpf=hello from make host=ls: /usr/local/bin/hello: No such file or directory" "make and make install under the guard, into the layer"
  assert_match "$OUT" "exec make -s install \\(pid" "mbx log: make install's exec"
  assert_match "$OUT" "exec sed s/@GREETING@/hello from make/ hello.in \\(pid" "mbx log: a recipe's exec with argv"
  assert_contains "$OUT" "exec-allow build=built other=rc=126" "--exec-allow: the build runs, another program does not"
  assert_contains "$OUT" "exec-deny denied=rc=126 other=fine" "--exec-deny"
  assert_match "$OUT" "denied exec /usr/local/bin/escape \\(pid" "mbx log: the denied exec"
  assert_contains "$OUT" "exec-bad mbx: --exec-allow relative/path: give an absolute path" "a bad --exec-allow"
}

part "host" part_host
part "guest" part_guest
part "escape battery" part_battery
e2e_done
