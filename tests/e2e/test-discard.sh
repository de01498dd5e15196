#!/usr/bin/env bash
# `mbx discard NAME` removes the session (its directory under $MBX_HOME, its entry in
# `mbx list`; `mbx status NAME` then fails with 125); `mbx discard` without a name
# removes the most recent session; discarding an unknown session fails with 125.
# The host is untouched throughout. As root and as mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

for u in $(test_users root mbxtest); do
  as_user "$u"
  mh=$(mbx_home "$u")
  f=/etc/$(fixture_base "$u")-d
  absent_on_host "$f"
  host_snapshot /etc "$f"

  mbx_ok "$u" run --session d1 -- touch "$f"
  mbx_ok "$u" run --session d2 -- true
  [ -d "$mh/d1" ] && [ -d "$mh/d2" ] || fail "expected session directories $mh/d1 and $mh/d2"

  mbx_ok "$u" discard d1
  [ ! -e "$mh/d1" ] || fail "mbx discard d1 left $mh/d1 behind"
  mbx_ok "$u" list --json
  assert_eq d2 "$(list_json_lines | cut -f1)" "sessions after discarding d1"
  mbx_as "$u" status d1
  assert_rc 125 "mbx status of a discarded session"
  [[ $ERR == "mbx: "* ]] || fail "error must start with 'mbx: ', got: $ERR"

  mbx_ok "$u" run --session d3 -- true
  mbx_ok "$u" discard
  [ ! -e "$mh/d3" ] || fail "mbx discard (no name) must remove the most recent session d3"
  [ -d "$mh/d2" ] || fail "mbx discard (no name) removed d2, not the most recent session d3"
  mbx_ok "$u" list --json
  assert_eq d2 "$(list_json_lines | cut -f1)" "sessions after mbx discard"

  mbx_as "$u" discard no-such-session
  assert_rc 125 "mbx discard of an unknown session"
  [[ $ERR == "mbx: "* ]] || fail "error must start with 'mbx: ', got: $ERR"

  mbx_ok "$u" discard d2
  mbx_ok "$u" list --json
  assert_eq "" "$(list_json_lines)" "sessions after discarding all"
  host_unchanged "after discard"
  check_no_leftovers
done
e2e_done
