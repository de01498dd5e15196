#!/usr/bin/env bash
# Issue 8, profiles where they need BPF LSM or a cgroup v2 with controllers: in
# the qemu guest of tests/vm (tests/vm/run.sh tests/vm/profile-battery.sh), as root.
#   [net] allow by a host name (resolved from /etc/hosts when the run starts)
#     lets a connect to that address and port through and denies another port;
#     dns = true lets a datagram to the resolv.conf server's port 53 through
#     and denies another server.
#   [limits] pids = 6 makes forks fail; memory, cpus and pids are written to
#     the sandbox's own cgroup, which is gone after the run.
#   [fs] writable = [DIR] lets a build in DIR run and makes /etc read-only
#     (EROFS), under the guard.
#   The built-in untrusted profile refuses a shell whose stdin and stdout are a
#     socket (nc -e /bin/sh; logged as exec-on-socket) and runs it on a pipe;
#     --exec-allow DIR/** and DIR/*, --exec-deny DIR/**.
#   [net] listen lets the sandbox bind the ports listed only (a connect is not
#     refused by it).
#   --guard complain: a write through an inherited descriptor, a mount, a
#     connect outside the allowed port and a denied exec all succeed, and each
#     is logged as a would-be denial ("would deny ..."), counted at exit, and
#     mbx log --summary folds them with the peer and the programs run.
#   Monitor, generate, enforce: mbx run --monitor of a build plus a wget from a
#     local web server records the build's directory, the programs and the
#     peer; mbx profile generate makes them writable, exec.allow and net.allow;
#     under that profile the same run passes, the fetch from a second server
#     is denied and logged, and a program not seen may not run.
# e2e-timeout: 900
. "$(dirname "$0")/lib.sh"
e2e_init

part_battery() {
  in_vm run.sh "$REPO/tests/vm/profile-battery.sh"
  assert_rc 0 "the guest's profile battery"
  assert_match "$OUT" "^limits forked=[0-4] left=0" "profile [limits] pids = 6: forks fail, the cgroup goes"
  assert_contains "$OUT" "limits-values 67108864 150000 100000 6" "profile [limits] memory, cpus, pids in the sandbox's cgroup"
  assert_contains "$OUT" "net-moving before=Operation not permitted after=ok" "net.allow by name, resolved again while it runs: the rules follow the address"
  assert_contains "$OUT" "net-allow-name bpf=ok other=Operation not permitted dns=ok other-udp=Operation not permitted" "profile net.allow by host name, and dns"
  assert_contains "$OUT" "writable proj=built etc=Read-only file system" "profile [fs] writable under the guard"
  assert_contains "$OUT" "reverse-shell untrusted=Operation not permitted pipe=shell off=shell" "the untrusted profile: no shell on a socket"
  assert_match "$OUT" "denied exec-on-socket /bin/busybox \\(pid [0-9]+ escape\\)" "mbx log: the refused reverse shell"
  assert_contains "$OUT" "untrusted-print 1" "the built-in untrusted profile turns the rule on"
  assert_contains "$OUT" "exec-dirs subtree=rc=126 files=rc=0 deny=rc=126" "exec rules over directories (DIR/**, DIR/*)"
  assert_contains "$OUT" "complain write-fd=ok mount=ok connect=Connection refused exec=forked=0" "--guard complain: nothing refused"
  assert_match "$OUT" "^complain-summary mbx: the guard would have denied 1 operation \\(--guard complain: none was\\)" "--guard complain: the count at exit"
  assert_match "$OUT" "would deny file_write victim \\(pid" "--guard complain: the write through the inherited descriptor logged"
  assert_match "$OUT" "would deny mount \\(pid" "--guard complain: the mount logged"
  assert_match "$OUT" "would deny connect 127\\.0\\.0\\.1:7002 \\(pid" "--guard complain: the connect logged"
  assert_match "$OUT" "would deny exec /usr/local/bin/escape \\(pid" "--guard complain: the exec logged"
  assert_match "$OUT" "^would have been refused \\(--guard complain\\) \\([0-9]+, [0-9]+ in all\\):" "mbx log --summary: the would-be denials"
  assert_match "$OUT" "^  2.mount" "mbx log --summary: the mounts (of two runs), counted"
  assert_match "$OUT" "^  1.connect 127\\.0\\.0\\.1:7002 \\(would be refused\\)" "mbx log --summary: the peer"
  assert_contains "$OUT" "listen listed=ok range=ok other=Operation not permitted connect=Connection refused" "profile net.listen: only those ports bind; a connect is not refused by it (nothing listens: ECONNREFUSED)"
  assert_match "$OUT" "denied bind 127\\.0\\.0\\.1:7102 \\(pid" "mbx log: the refused bind"
  assert_contains "$OUT" "monitor payload" "a monitored build and fetch run (nothing enforced)"
  assert_contains "$OUT" "learned net=1 writable=1" "the learned profile: the peer and the build's directory"
  assert_contains "$OUT" "enforce same=payload other=failed new-program=rc=126" "the learned profile: the same run passes; a new peer and a new program are denied"
  assert_match "$OUT" "denied connect 127\\.0\\.0\\.1:7302 \\(pid" "mbx log: the new peer, denied"
  assert_match "$OUT" "^  1.connect 127\\.0\\.0\\.1:7301([^0-9]|$)" "mbx log --summary of the monitored run: the peer"
  assert_match "$OUT" "^  /srv/learn.*written" "mbx log --summary of the monitored run: files by directory"
}

part "profile battery" part_battery
e2e_done
