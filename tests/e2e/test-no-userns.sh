#!/usr/bin/env bash
# Issue 2, must-show 5: without user namespaces, `mbx run` by a non-root user fails with
# exit 125 and a one-line error about user namespaces.
#
# How user namespaces are taken away: `sysctl user.max_user_namespaces=0` for a moment
# (restored in a trap, and checked), where root may write it. On these machines root
# lacks CAP_SYS_RESOURCE (it is not in the bounding set), so the host-wide sysctl is
# read-only; then the same limit is set in a user namespace of mbx's own instead:
# an identity-mapped namespace (uid/gid 0..2^32-2 map to themselves, so files, ids and
# /dev/fuse look exactly as on the host) whose user.max_user_namespaces is 0, entered
# by root, which then becomes mbxtest and runs mbx. Any attempt by mbx to create a
# user namespace fails there exactly as on a host with the sysctl at 0 (ENOSPC).
. "$(dirname "$0")/lib.sh"
e2e_init

u=mbxtest
as_user "$u"
mbx_exe=$(user_exe "$u" "$MBX")
orig=$(sysctl -n user.max_user_namespaces)
[ "$orig" -gt 0 ] || fail "user namespaces are already disabled on this machine (user.max_user_namespaces=0)"

if sysctl -q -w user.max_user_namespaces="$orig" 2>/dev/null; then
  note "host-wide: sysctl user.max_user_namespaces=0 (was $orig)"
  on_cleanup "sysctl -q -w user.max_user_namespaces=$orig"
  sysctl -q -w user.max_user_namespaces=0
  mbx_as "$u" run -- true
  sysctl -q -w user.max_user_namespaces="$orig"
  assert_eq "$orig" "$(sysctl -n user.max_user_namespaces)" "user.max_user_namespaces restored"
else
  note "the host-wide sysctl is not writable here (no CAP_SYS_RESOURCE): user.max_user_namespaces=0 in an identity-mapped user namespace around mbx"
  as_cmd "$u"
  echo "+ [$u, user.max_user_namespaces=0] mbx run -- true"
  fifo=$T/userns-go
  mkfifo "$fifo"
  # The first sh waits for its uid map, then execs (as uid 0 of the namespace, which
  # regains the namespace's capabilities) the sh that sets the limit and runs mbx.
  unshare --user -- sh -c 'read -r _ <"$0"; shift; exec sh -c "$@"' "$fifo" x '
    echo 0 >/proc/sys/user/max_user_namespaces || exit 99
    [ "$(cat /proc/sys/user/max_user_namespaces)" = 0 ] || exit 99
    exec "$@"' sh "${AS[@]}" "$mbx_exe" run -- true </dev/null >"$T/.out" 2>"$T/.err" &
  ns_pid=$!
  on_cleanup "kill -KILL $ns_pid 2>/dev/null || true"
  # Wait until the child has entered its new user namespace, then map it.
  for ((i = 0; i < 100; i++)); do
    [ "$(readlink "/proc/$ns_pid/ns/user")" != "$(readlink /proc/self/ns/user)" ] && break
    sleep 0.05
  done
  echo "0 0 4294967295" >"/proc/$ns_pid/uid_map"
  echo "0 0 4294967295" >"/proc/$ns_pid/gid_map"
  echo go >"$fifo"
  for ((i = 0; i < E2E_CMD_TIMEOUT * 10; i++)); do
    kill -0 "$ns_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$ns_pid" 2>/dev/null && fail "mbx run did not finish within ${E2E_CMD_TIMEOUT}s"
  RC=0
  wait "$ns_pid" || RC=$?
  OUT=$(cat "$T/.out") ERR=$(cat "$T/.err")
  echo "  -> exit $RC"
  if [ -n "$ERR" ]; then sed 's/^/  err| /' <<<"$ERR"; fi
  [ "$RC" != 99 ] || fail "could not set user.max_user_namespaces=0 in the test's user namespace"
fi
assert_mbx_error "namespace" "mbx run without user namespaces"
check_no_leftovers

# With user namespaces, the same user runs fine.
mbx_as "$u" run -- true
assert_rc 0 "mbx run with user namespaces"
check_no_leftovers
e2e_done
