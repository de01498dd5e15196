#!/usr/bin/env bash
# The fallback guard, on this host (whose kernel refuses BPF LSM programs):
# `mbx run --guard auto` confines the sandbox with Landlock and seccomp, says so
# in the session's log (as root, with every exec audited by BPF tracing programs), and the escape attempts of the guard's battery are
# refused where --guard off lets them through. As root and as mbxtest:
#  - a write into a host directory reached through a passed descriptor: EACCES
#    (Landlock); a --bind path itself stays writable;
#  - mount of a tmpfs, bpf(), add_key(), loading a module: EPERM (seccomp), each
#    logged, with the count of denials at exit;
#  - a block device node outside the layer: EPERM, logged;
#  - --exec-allow make,sh: make runs (its dynamic loader is allowed with it),
#    ls does not; --exec-deny and --net loopback are refused before anything
#    runs, saying the fallback cannot enforce them;
#  - --net allow=0.0.0.0/0:PORT: a TCP connect to PORT on the host's loopback
#    works, to another port it fails (EACCES, Landlock), a UDP socket is refused
#    (EPERM, seccomp, logged); a rule with an address is refused before anything
#    runs; --net none: no TCP connect;
#  - (root) ptrace and kill of a task joined into the sandbox's namespaces from
#    outside: EPERM (Landlock's scoping), and ok under --guard off.
. "$(dirname "$0")/lib.sh"
e2e_init

cc -O2 -o "$T/escape" "$REPO/tests/vm/escape.c"
# Two listeners on the host's loopback.
p1=$((17000 + $$ % 1000)) p2=$((18000 + $$ % 1000))
"$T/escape" listen $p1 >/dev/null &
on_cleanup "kill $! 2>/dev/null || true"
"$T/escape" listen $p2 >/dev/null &
on_cleanup "kill $! 2>/dev/null || true"

for u in $(test_users root mbxtest); do
  as_user "$u"
  E=$(user_exe "$u" "$T/escape" view)
  d=$(fixture_dir "$u" host)
  mkdir -p "$d/allowed" && chown "$u:" "$d/allowed"
  M=$(user_exe "$u" "$MBX")

  mbx_as "$u" run --session g -- sh -c 'ls / >/dev/null'
  assert_rc 0 "a run under the fallback guard"
  mbx_as "$u" log g
  assert_match "$OUT" "guard: landlock\\+seccomp \\(Landlock ABI [0-9]+; not BPF LSM: " "mbx log says which guard is active"
  if [ "$u" = root ]; then
    assert_match "$OUT" "; execs audited by BPF tracing\\)$" "root: execs are audited"
    assert_match "$OUT" "exec ls / \\(pid [0-9]+ ls\\)" "root: mbx log lists the exec with argv"
  else
    assert_not_contains "$OUT" "exec ls" "a user's fallback has no exec audit"
  fi

  for g in auto off; do
    capture_as "$u" sh -c "exec 4<'$d' && exec '$M' run --guard $g --session g --pass-fd 4 -- '$E' write-at 4 out-$g"
    eval "fd_$g=\$OUT"
  done
  assert_eq "Permission denied" "$fd_auto" "a host directory behind a passed descriptor, guarded"
  assert_eq "ok" "$fd_off" "the same unguarded"
  assert_eq "allowed out-off " "$(ls "$d" | tr '\n' ' ')" "only the unguarded write reached the host"
  mbx_as "$u" run --session g --bind "$d/allowed" -- sh -c "echo in >'$d/allowed/f' && cat '$d/allowed/f'"
  assert_eq "in" "$OUT" "a --bind path is written"

  mkdir -p "$d/mnt"
  for a in "mount $d/mnt" bpf add-key "init-module /dev/null" "mknod-blk /tmp/sda"; do
    mbx_as "$u" run --session g -- $E $a
    assert_eq "Operation not permitted" "$OUT" "$a, guarded"
    assert_match "$ERR" "^mbx: the guard denied 1 operation: see 'mbx log g'" "$a: the count at exit"
  done
  mbx_as "$u" run --guard off --session g -- $E mount "$d/mnt"
  assert_eq "ok" "$OUT" "mount, unguarded"
  mbx_as "$u" run --guard off --session g -- $E add-key
  assert_eq "ok" "$OUT" "add_key, unguarded"
  mbx_as "$u" log g
  for h in mount bpf keyctl module "mknod /tmp/sda"; do
    assert_match "$OUT" "denied $h \\(pid [0-9]+ escape\\)" "mbx log: $h"
  done

  mbx_as "$u" run --session g --exec-allow /usr/bin/make,/bin/sh -- sh -c 'make --version >/dev/null && echo made; ls /; echo rc=$?'
  assert_eq "made
rc=126" "$OUT" "--exec-allow: make runs, ls does not"
  mbx_as "$u" run --session g --exec-deny /bin/ls -- true
  assert_mbx_error "exec-deny is enforced by the BPF LSM guard.*Landlock fallback cannot enforce it" "--exec-deny without BPF LSM"
  mbx_as "$u" run --session g --net allow=0.0.0.0/0:$p1 -- sh -c "$E connect 127.0.0.1 $p1; $E connect 127.0.0.1 $p2; $E udp 127.0.0.1 53"
  assert_eq "ok
Permission denied
Operation not permitted" "$OUT" "--net allow=0.0.0.0/0:PORT: that port, another port, UDP"
  mbx_as "$u" log g
  assert_match "$OUT" "denied socket \\(pid [0-9]+ escape\\)" "mbx log: the UDP socket"
  mbx_as "$u" run --session g --net allow=127.0.0.1:$p1 -- true
  assert_mbx_error "checks TCP ports, not addresses" "--net allow= with an address under the fallback"
  mbx_as "$u" run --session g --net none -- $E connect 127.0.0.1 $p1
  assert_eq "Permission denied" "$OUT" "--net none: no TCP connect"
  mbx_as "$u" run --session g --net loopback -- true
  assert_mbx_error "net loopback is enforced by the BPF LSM guard.*Landlock fallback cannot enforce it" "--net loopback without BPF LSM"
  check_no_leftovers
done

if [ -n "$(test_users root)" ]; then
  as_user root
  as_cmd root
  E=$(user_exe root "$T/escape" view)
  for g in landlock off; do
    "${AS[@]}" "$MBX" run --guard $g --session intruder -- "$E" await-intruder >"$T/await-$g" 2>/dev/null &
    m=$!
    "$T/escape" intrude >/dev/null
    wait $m
  done
  assert_eq "ptrace=Operation not permitted kill=Operation not permitted" "$(cat "$T/await-landlock")" "ptrace and kill of a task outside, guarded"
  assert_eq "ptrace=ok kill=ok" "$(cat "$T/await-off")" "the same unguarded"
  check_no_leftovers
fi
e2e_done
