#!/usr/bin/env bash
# The sandbox has its own PID namespace and /proc: the command sees only a few
# processes, none of the host's (a marker process started on the host is invisible),
# and /proc is a procfs. As root and as mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

n=$(unique_sleep)
sleep "$n" &
marker=$!
on_cleanup "kill $marker 2>/dev/null || true"
host_count=$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)

probe='
echo "fstype $(stat -f -c %T /proc)"
for p in /proc/[0-9]*; do
  [ -r "$p/cmdline" ] && printf "proc %s: %s\n" "${p#/proc/}" "$(tr "\0" " " <"$p/cmdline")"
done
true
'
for u in $(test_users root mbxtest); do
  as_user "$u"
  mbx_as "$u" run -- sh -c "$probe"
  assert_rc 0 "mbx run (pid namespace probe)"
  assert_contains "$OUT" "fstype proc" "/proc inside"
  assert_not_contains "$OUT" "sleep $n" "processes visible inside"
  count=$(grep -c '^proc ' <<<"$OUT" || true)
  [ "$count" -ge 1 ] && [ "$count" -le 10 ] ||
    fail "expected a handful of processes in the sandbox's /proc, saw $count (host has $host_count):
$(grep '^proc ' <<<"$OUT" | sed 's/^/    /')"
  check_no_leftovers
done
kill "$marker"
wait "$marker" 2>/dev/null || true
e2e_done
