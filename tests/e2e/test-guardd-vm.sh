#!/usr/bin/env bash
# mbx-guardd, in the qemu guest (tests/vm/run.sh tests/vm/guardd-battery.sh):
# root starts the daemon; the unprivileged user u1's `mbx run` is confined by it
# (--guard auto picks it, and the log says so): a write through an inherited
# descriptor, a directory beside a --bind path, a mount, a module autoload, a
# block device node outside the layer, ptrace and kill of a task joined into its
# namespaces from outside, and a program outside --exec-allow are denied (and allowed under --guard off, but
# for the exec), each logged in u1's session; ordinary work is unaffected.
# Hostile requests are refused with a one-line error and the daemon lives on: a
# pidfd of another user's process (u2 asking for u1's), no pidfd (garbage), an
# oversized request, a process confined already. `mbx policy --net none` on a
# running loop of connects denies them from the next iteration (logged;
# another user's request to change it is refused). Then, while a sandbox loops on
# a forbidden write, the daemon is restarted 20 times (10 with SIGKILL): the
# guard's pinned maps and links keep it confined throughout.
# e2e-timeout: 900
. "$(dirname "$0")/lib.sh"
e2e_init

E2E_CMD_TIMEOUT=700
# One vCPU: under qemu's TCG, two vCPUs exec'ing while the restarted daemon
# attaches and detaches its trampolines can spin for good on the int3 of the
# kernel's live patching (soft lockups on both, seen in CI at 10 tries a
# second too); with one there is no other CPU to wait for.
export MBX_VM_TIMEOUT=300 MBX_VM_CPUS=1 MBX_BUILD_DIR
MBX_BUILD_DIR=$(dirname "$(dirname "$MBX")")
[ -x "$MBX_BUILD_DIR/src/mbx-guardd" ] || fail "no mbx-guardd next to $MBX"
capture_raw bash "$REPO/tests/vm/run.sh" "$REPO/tests/vm/guardd-battery.sh"
if [ "$RC" = 125 ]; then
  note "the VM failed (no status from the guest); booting it once more"
  capture_raw bash "$REPO/tests/vm/run.sh" "$REPO/tests/vm/guardd-battery.sh"
fi
assert_rc 0 "the guest's battery"
assert_contains "$OUT" "daemon listening" "the daemon listens on /run/mbx/guard.sock"
assert_match "$OUT" "^auto .*log=guard: bpf lsm \\(through mbx-guardd\\)" "--guard auto as a user uses the daemon"
assert_contains "$OUT" "inherited-fd bpf=Operation not permitted off=ok" "write through an inherited descriptor"
assert_contains "$OUT" "victim original escaped" "only the unguarded write reached the file"
assert_contains "$OUT" "bind-outside bpf=Operation not permitted off=ok" "a directory beside a --bind path"
assert_contains "$OUT" "mount bpf=Operation not permitted off=ok" "mount of a tmpfs in the user namespace"
assert_match "$OUT" "module-autoload bpf=[^=]+ loaded=0 off=[^=]+ loaded=1" "module autoload by a user"
assert_contains "$OUT" "exec-allow other=rc=126" "--exec-allow through the daemon"
assert_contains "$OUT" "mknod-blk tmp: bpf=Operation not permitted layer: bpf=ok" "a block device node outside the layer, and in it"
assert_contains "$OUT" "outside-task bpf: ptrace=Operation not permitted kill=Operation not permitted" "ptrace and kill of a task outside u1's sandbox"
assert_contains "$OUT" "outside-task off: ptrace=ok kill=ok" "the same unguarded"
assert_contains "$OUT" "work bpf=fine" "ordinary work"
for d in "file_write victim" "create out-bpf" mount "module net-pf-15" "exec /usr/local/bin/escape" "mknod /tmp/sda" \
  "ptrace pid [0-9]+" "kill pid [0-9]+"; do
  assert_match "$OUT" "denied $d \\(pid [0-9]+ " "u1's log: $d"
done
assert_contains "$OUT" "foreign-pid error that process is not yours" "another user's process"
assert_contains "$OUT" "garbage error not an mbx-guard 1 request" "garbage"
assert_contains "$OUT" "oversized error request too large" "an oversized request"
assert_contains "$OUT" "own-pid ok" "a user's own unconfined process"
assert_contains "$OUT" "twice error that process is confined already" "a process confined already"
assert_contains "$OUT" "daemon-after alive Operation not permitted" "the daemon lives on and still confines"
assert_match "$OUT" "^live-policy rc=0 before=[1-9][0-9]* after-ok=0 after-denied=[1-9][0-9]* show=net host/net none" "mbx policy --net none on a running loop of connects: denied from the next iteration"
assert_contains "$OUT" "live-policy-foreign error that process is not yours" "another user cannot change the policy"
assert_match "$OUT" "^live-policy-log [1-9]" "the denied connects are in the session's log"
assert_contains "$OUT" "policy-not-running mbx: session u1-live is not running: mbx policy changes a running sandbox" "mbx policy on a session that is not running"
assert_match "$OUT" "^restarts attempts=[1-9][0-9]* escaped=0 victim2=original " "20 restarts (10 with SIGKILL) under a looping forbidden write: not one got through"
assert_match "$OUT" "^after-restarts Operation not permitted links=[1-9][0-9]*" "a new sandbox is confined by the last daemon; one pinned link per program"
e2e_done
