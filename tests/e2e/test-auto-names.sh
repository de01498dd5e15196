#!/usr/bin/env bash
# Without --session, each mbx run creates a new session named automatically: 1, then
# 2 (in a fresh MBX_HOME), each a directory under $MBX_HOME; the summary line names
# it; the most recent one is the default target of mbx status. As root and mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

for u in $(test_users root mbxtest); do
  as_user "$u"
  mh=$(mbx_home "$u")
  f=/etc/$(fixture_base "$u")-auto
  absent_on_host "$f"
  [ ! -e "$mh" ] || fail "MBX_HOME $mh is not fresh"

  mbx_ok "$u" run -- true
  parse_summary
  assert_eq 1 "$S_NAME" "first automatic session name"
  mbx_ok "$u" run -- touch "$f"
  parse_summary
  assert_eq 2 "$S_NAME" "second automatic session name"
  assert_eq "2: 1 added" "$S_NAME: $S_ADDED added" "summary of the second run"
  [ -d "$mh/1" ] && [ -d "$mh/2" ] || fail "expected session directories $mh/1 and $mh/2: $(ls -A "$mh" 2>&1)"

  mbx_ok "$u" list --json
  assert_eq $'1\n2' "$(list_json_lines | cut -f1)" "sessions in mbx list --json"
  mbx_ok "$u" status
  assert_eq "A $f" "$OUT" "mbx status (default: the most recent session, 2)"
  mbx_ok "$u" status 1
  assert_eq "" "$OUT" "mbx status 1"
  [ ! -e "$f" ] || fail "$f leaked to the host"
  check_no_leftovers
done
e2e_done
