#!/usr/bin/env bash
# Robustness: `kill -TERM` and `kill -HUP` (not -9) of the mbx process while its
# command sleeps. The command gets the signal: a command that does not catch it is
# killed by it, and mbx exits 128+N (143, 129); a command that traps it reports the
# signal and its own exit status is mbx's. Either way mbx prints the summary (its last
# line of stderr) with what the command wrote before, the sandbox is gone within 10 s,
# no FUSE mount or process is left, the host is unchanged, and the session can be used
# again at once and sees what was written. As root and as mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

# wait_exit PID WHAT: wait (at most 20 s) for the background PID; sets RC.
wait_exit() {
  local pid=$1 what=$2 i
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    fail "$what: mbx (pid $pid) still runs 20 s after the signal"
  fi
  RC=0
  { wait "$pid"; } 2>/dev/null || RC=$?
}

for u in $(test_users root mbxtest); do
  as_user "$u"
  s=sig-$u
  added=0
  fixtures=()
  for sig in TERM HUP; do
    for mode in plain trap; do fixtures+=("/etc/$(fixture_base "$u")-$sig-$mode"); done
  done
  absent_on_host "${fixtures[@]}"
  host_snapshot /etc "${fixtures[@]}"
  for sig in TERM HUP; do
    num=$(kill -l "$sig")
    for mode in plain trap; do
      what="kill -$sig of mbx, command $([ $mode = plain ] && echo "not catching it" || echo "trapping it")"
      note "$what"
      f=/etc/$(fixture_base "$u")-$sig-$mode
      n=$(unique_sleep)
      log=$T/sig-$u-$sig-$mode
      if [ $mode = plain ]; then
        bg_mbx_as "$u" "$log" run --session "$s" -- \
          sh -c 'echo "before the signal" >"$1"; echo ready; exec sleep "$2"' sh "$f" "$n"
      else
        bg_mbx_as "$u" "$log" run --session "$s" -- \
          sh -c 'trap "echo got TERM; exit 7" TERM; trap "echo got HUP; exit 8" HUP
                 echo "before the signal" >"$1"; echo ready; sleep "$2" & wait' sh "$f" "$n"
      fi
      mbx_pid=$BG_PID
      wait_for_line "$log.out" ready 60 "$mbx_pid"
      sleep_pid=$(pid_of_cmdline "sleep $n")
      [ -n "$sleep_pid" ] || fail "the sandboxed 'sleep $n' is not visible from the host"
      note "mbx pid $mbx_pid, sandboxed sleep pid $sleep_pid: kill -$sig mbx"
      kill "-$sig" "$mbx_pid"
      wait_exit "$mbx_pid" "$what"
      OUT=$(cat "$log.out") ERR=$(cat "$log.err")
      echo "  -> exit $RC"
      sed 's/^/  out| /' "$log.out"
      sed 's/^/  err| /' "$log.err"
      added=$((added + 1))
      if [ $mode = plain ]; then
        assert_rc $((128 + num)) "$what: mbx's exit status"
      else
        assert_rc "$([ $sig = TERM ] && echo 7 || echo 8)" "$what: mbx's exit status (the command's)"
        assert_contains "$OUT" "got $sig" "$what: the command must get SIG$sig"
      fi
      assert_summary "$s" "$added" 0 0
      for ((i = 0; i < 100; i++)); do
        kill -0 "$sleep_pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$sleep_pid" 2>/dev/null && fail "$what: the sandboxed sleep (pid $sleep_pid) still runs 10 s after mbx ended"
      check_no_leftovers
      host_unchanged "after $what"

      # The session is usable at once and kept what the command wrote.
      mbx_as "$u" run --session "$s" -- cat "$f"
      assert_rc 0 "mbx run --session $s right after $what"
      assert_eq "before the signal" "$OUT" "what the command wrote before $what"
      assert_summary "$s" "$added" 0 0
      mbx_ok "$u" status "$s"
      assert_match "$OUT" "^A $f\$" "mbx status after $what"
      check_no_leftovers
    done
  done
  mbx_ok "$u" discard "$s"
done
e2e_done
