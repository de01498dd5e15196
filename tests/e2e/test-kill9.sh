#!/usr/bin/env bash
# Issue 2, must-show 5 (first part): `kill -9` of mbx while its command runs leaves no
# FUSE mount on the host and no process (neither mbx nor anything from the sandbox),
# and the next `mbx run --session` of that session opens it fine and sees what the
# command wrote before the kill. As root and as mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

for u in $(test_users root mbxtest); do
  as_user "$u"
  f=/etc/$(fixture_base "$u")-k9
  absent_on_host "$f"
  host_snapshot /etc "$f"
  n=$(unique_sleep)
  bg_mbx_as "$u" "$T/k9-$u" run --session "k9-$u" -- \
    sh -c 'echo written before the kill >"$1"; echo ready; exec sleep "$2"' sh "$f" "$n"
  mbx_pid=$BG_PID
  wait_for_line "$T/k9-$u.out" ready 60 "$mbx_pid"
  sleep_pid=$(pid_of_cmdline "sleep $n")
  [ -n "$sleep_pid" ] || fail "the sandboxed 'sleep $n' is not visible from the host"
  note "mbx pid $mbx_pid, sandboxed sleep pid $sleep_pid: kill -9 mbx"
  kill -KILL "$mbx_pid"
  rc=0
  { wait "$mbx_pid"; } 2>/dev/null || rc=$?
  assert_eq 137 "$rc" "exit status of the killed mbx"
  # The sandbox must go away with it, and nothing may stay mounted.
  for ((i = 0; i < 100; i++)); do
    kill -0 "$sleep_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$sleep_pid" 2>/dev/null; then
    fail "the sandboxed command (pid $sleep_pid) is still running 10 s after kill -9 of mbx"
  fi
  check_no_leftovers
  host_unchanged "after kill -9"

  mbx_as "$u" run --session "k9-$u" -- cat "$f"
  assert_rc 0 "mbx run --session of the killed session"
  assert_eq "written before the kill" "$OUT" "what the killed run wrote"
  parse_summary
  assert_eq "k9-$u" "$S_NAME" "session name in the summary"
  mbx_ok "$u" status "k9-$u"
  assert_match "$OUT" "^A $f\$" "mbx status of the killed session"
  host_unchanged "after the next run"
  check_no_leftovers
done
e2e_done
