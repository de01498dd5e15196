#!/usr/bin/env bash
# Issue 2, must-show 5: two concurrent `mbx run` on the same session: the second fails
# at once (exit 125, a one-line message containing "in use") while the first goes on
# undisturbed; another session can run at the same time; once the first ends, the
# session can be used again. As root and as mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

for u in $(test_users root mbxtest); do
  as_user "$u"
  s=cc-$u
  n=$(unique_sleep)
  bg_mbx_as "$u" "$T/cc-$u" run --session "$s" -- sh -c 'echo ready; exec sleep "$1"' sh "$n"
  first=$BG_PID
  wait_for_line "$T/cc-$u.out" ready 60 "$first"

  start=$(date +%s%N)
  E2E_CMD_TIMEOUT=30 mbx_as "$u" run --session "$s" -- true
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  assert_mbx_error "in use" "second concurrent mbx run on session $s"
  [ "$elapsed_ms" -lt 5000 ] || fail "the second run must fail at once, it took ${elapsed_ms} ms"
  kill -0 "$first" 2>/dev/null || fail "the first run died when the second one was refused"

  mbx_as "$u" run --session "other-$u" -- true
  assert_rc 0 "a different session while $s is in use"

  sleep_pid=$(pid_of_cmdline "sleep $n")
  [ -n "$sleep_pid" ] || fail "the first run's 'sleep $n' is gone"
  kill -TERM "$sleep_pid"
  rc=0
  wait "$first" || rc=$?
  assert_eq 143 "$rc" "the first run's exit status after its command got SIGTERM"
  check_no_leftovers

  mbx_as "$u" run --session "$s" -- true
  assert_rc 0 "the session once the first run ended"
  check_no_leftovers
done
e2e_done
