#!/usr/bin/env bash
# Issue 2, mbx run options: --hide makes a host path not exist inside (ENOENT, absent
# from listings), and $MBX_HOME is always hidden; --bind shows a host directory at the
# same place, writable straight through to the host (not in the layer, not in status).
# Bad paths for either are refused with one line and exit 125.
. "$(dirname "$0")/lib.sh"
e2e_init

for u in $(test_users mbxtest root); do
  as_user "$u"
  b=/var/lib/$(fixture_base "$u")
  absent_on_host "$b"
  mkdir -p "$b/secret" "$b/out"
  echo hush >"$b/secret/key"
  echo visible >"$b/plain"
  chown -R "$u:" "$b"
  on_cleanup "rm -rf '$b'"
  host_snapshot -R "$b/secret"

  mbx_as "$u" run --hide "$b/secret" --bind "$b/out" -- sh -c '
ls -a "$1"
if stat "$1/secret" 2>/dev/null; then echo "secret visible"; fi
cat "$1/secret/key" 2>&1 | sed "s/.*: //"
if ls -d "$MBX_HOME" 2>/dev/null; then echo "MBX_HOME visible"; fi
echo written-through >"$1/out/new"
echo layered >"$1/plain"
' sh "$b"
  assert_rc 0 "mbx run --hide --bind"
  assert_eq $'.\n..\nout\nplain\nNo such file or directory' "$OUT" "hidden path absent, MBX_HOME absent"
  assert_eq "written-through" "$(cat "$b/out/new" 2>/dev/null)" "--bind writes reach the host"
  assert_eq "visible" "$(cat "$b/plain")" "other writes stay in the layer"
  host_unchanged "the hidden directory"

  mbx_ok "$u" status
  assert_eq "M $b/plain" "$OUT" "status lists the layered change only, not the bound write"

  mbx_as "$u" run --bind relative/dir -- true
  assert_mbx_error "absolute path" "--bind with a relative path"
  mbx_as "$u" run --bind "$b/missing" -- true
  assert_mbx_error "No such file" "--bind of a missing path"
  mbx_as "$u" run --hide "$b/missing" -- true
  assert_mbx_error "No such file" "--hide of a missing path"
  check_no_leftovers
done
e2e_done
