#!/usr/bin/env bash
# Issue 2, must-show 2: a real build and install. The C project in tests/e2e/project
# is built with make and `make install`ed to /usr/local inside `mbx run`, including
# `install -o root -g root -m 4755`. Inside, stat shows root:root and 4755 (also in a
# later run of the session), the installed program runs; the host is untouched.
# As the unprivileged mbxtest (fake root) and as root.
. "$(dirname "$0")/lib.sh"
e2e_init

build_script='
set -e
cd "$1"
make
make install
echo "STAT $(stat -c "%U:%G %a %u:%g" /usr/local/bin/mbx-e2e-hello)"
echo "STAT $(stat -c "%U:%G %a" /usr/local/share/mbx-e2e-hello/greeting.txt)"
echo "RUN $(/usr/local/bin/mbx-e2e-hello)"
echo "DATA $(cat /usr/local/share/mbx-e2e-hello/greeting.txt)"
'
check_script='
set -e
echo "STAT $(stat -c "%U:%G %a %u:%g" /usr/local/bin/mbx-e2e-hello)"
echo "STAT $(stat -c "%U:%G %a" /usr/local/share/mbx-e2e-hello/greeting.txt)"
echo "RUN $(/usr/local/bin/mbx-e2e-hello)"
echo "DATA $(cat /usr/local/share/mbx-e2e-hello/greeting.txt)"
'

check() {
  local u=$1 area proj session
  area=$(user_area "$u")
  proj=$(user_project "$u" project)
  absent_on_host /usr/local/bin/mbx-e2e-hello /usr/local/share/mbx-e2e-hello
  host_snapshot -r /usr/local
  host_snapshot -R "$proj"

  session=build-$u
  local expect
  expect="STAT root:root 4755 0:0
STAT root:root 644
RUN hello from mbx-e2e (uid 0, euid 0)
DATA installed by make install inside mbx"

  mbx_as "$u" run --session "$session" -- sh -c "$build_script" sh "$proj"
  assert_rc 0 "make && make install inside mbx run"
  assert_eq "$expect" "$(grep -E '^(STAT|RUN|DATA) ' <<<"$OUT")" "installed files seen inside"
  assert_contains "$OUT" "install -o root -g root -m 4755" "make install output"
  host_unchanged "after make install"

  mbx_ok "$u" status "$session"
  assert_match "$OUT" "^A /usr/local/bin/mbx-e2e-hello$" "mbx status"
  assert_match "$OUT" "^A /usr/local/share/mbx-e2e-hello/greeting.txt$" "mbx status"
  assert_match "$OUT" "^A $proj/mbx-e2e-hello$" "mbx status (build output in the project dir)"

  mbx_as "$u" run --session "$session" -- sh -c "$check_script"
  assert_rc 0 "second run of the session"
  assert_eq "$expect" "$OUT" "installed files seen in a later run"
  host_unchanged "after the second run"
  [ ! -e "$proj/mbx-e2e-hello" ] || fail "the build output leaked to the host project dir"
  check_no_leftovers
}

for u in $(test_users mbxtest root); do
  as_user "$u"
  check "$u"
done
e2e_done
