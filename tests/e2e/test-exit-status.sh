#!/usr/bin/env bash
# The command's exit status is mbx run's exit status; a command killed by signal N
# gives 128+N (the command is not the sandbox's pid 1, so `kill -TERM $$` works);
# the summary line is printed whatever the status; mbx's own usage errors exit 125.
# As root and as mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

for u in $(test_users root mbxtest); do
  as_user "$u"
  for c in "exit 0:0" "exit 7:7" "false:1" "exit 255:255" 'kill -TERM $$:143' 'kill -KILL $$:137' 'kill -INT $$:130'; do
    cmd=${c%:*} want=${c##*:}
    mbx_as "$u" run --session "es-$u" -- sh -c "$cmd"
    assert_rc "$want" "mbx run -- sh -c '$cmd'"
    parse_summary
    assert_eq "es-$u" "$S_NAME" "summary after '$cmd'"
  done
  mbx_as "$u" run --net bogus -- true
  assert_rc 125 "mbx run --net bogus (a usage error)"
  [[ $ERR == "mbx: "* ]] || fail "a usage error must start with 'mbx: ', got: $ERR"
  check_no_leftovers
done
e2e_done
