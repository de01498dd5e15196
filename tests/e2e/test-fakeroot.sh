#!/usr/bin/env bash
# Issue 2, must-show 3: fake root. For mbxtest (which has a sub-id range): `id -u` is
# 0 inside; chown to 123:456 (of a new file and of an existing host file) and chmod
# 4711 show in stat inside and again in a later run of the session; files created
# inside belong to 0:0; mknod of a character device succeeds and `mbx status` lists
# it. The same checks hold for root (real root). mbxtest2 (no sub-id range) is still
# uid 0 inside. With --user, mbxtest keeps its identity and gets exactly the host's
# EACCES on /etc.
. "$(dirname "$0")/lib.sh"
e2e_init

check() {
  local u=$1 home b
  home=$(user_home "$u")
  b=$(fixture_base "$u")
  local own=/etc/$b-own fix=/etc/$b-fix chr=/etc/$b-chr suid=/usr/local/bin/$b-suid made=$home/$b-made
  absent_on_host "$own" "$chr" "$suid" "$made"
  host_fixture "$fix" root:root 644 $'host file, chowned inside\n'
  host_snapshot /etc /usr/local/bin "$home" "$own" "$fix" "$chr" "$suid" "$made"
  local session=fr-$u

  mbx_as "$u" run --session "$session" -- sh -c '
set -e
id -u
id -g
touch "$1"
chown 123:456 "$1" "$2"
printf "#!/bin/sh\n" >"$3"
chmod 4711 "$3"
[ ! -e "$4" ]   # the kernel now remembers the name as absent; the new node must show anyway
mknod "$4" c 1 3
touch "$5"
stat -c "%n %u:%g %a %F %t:%T" "$1" "$2" "$3" "$4" "$5"
' sh "$own" "$fix" "$suid" "$chr" "$made"
  assert_rc 0 "mbx run (chown, chmod, mknod)"
  local expect
  expect="0
0
$own 123:456 644 regular empty file 0:0
$fix 123:456 644 regular file 0:0
$suid 0:0 4711 regular file 0:0
$chr 0:0 644 character special file 1:3
$made 0:0 644 regular empty file 0:0"
  assert_eq "$expect" "$OUT" "ids, owners, modes and the device inside"
  host_unchanged "after fake-root changes"

  mbx_ok "$u" status "$session"
  assert_eq "$(printf '%s\n' "A $own" "M $fix" "A $suid" "A $chr" "A $made" | sort_changes)" "$OUT" \
    "mbx status lists the chown, chmod and mknod changes"

  mbx_as "$u" run --session "$session" -- sh -c 'id -u; id -g; stat -c "%n %u:%g %a %F %t:%T" "$@"' \
    sh "$own" "$fix" "$suid" "$chr" "$made"
  assert_rc 0 "second run"
  assert_eq "$expect" "$OUT" "ownership, modes and device persist into a later run"
  host_unchanged "after the second run"
  check_no_leftovers
}

for u in $(test_users mbxtest root); do
  as_user "$u"
  check "$u"
done

# mbxtest2 has no sub-id range: a single mapping, still uid 0 inside.
for u in $(test_users mbxtest2); do
  as_user "$u"
  f=/etc/$(fixture_base "$u")-single
  absent_on_host "$f"
  mbx_as "$u" run -- sh -c 'id -u; id -g; touch "$1"; stat -c "%u:%g" "$1"' sh "$f"
  assert_rc 0 "mbx run without a sub-id range"
  assert_eq $'0\n0\n0:0' "$OUT" "fake root with a single mapping"
  [ ! -e "$f" ] || fail "$f leaked to the host"
  check_no_leftovers
done

# --user: the caller's identity and the host's permission answers.
for u in $(test_users mbxtest); do
  as_user "$u"
  b=$(fixture_base "$u")-user
  host_fixture "/etc/$b-fix" root:root 644 $'root-owned\n'
  absent_on_host "/etc/$b-new"
  host_snapshot /etc "/etc/$b-fix"
  probe='id -u; id -g
touch "$1" 2>&1; echo "touch new: $?"
(echo x >>"$2") 2>&1; echo "append existing: $?"
rm -f "$2" 2>&1; echo "rm existing: $?"'
  capture_as "$u" sh -c "$probe" sh "/etc/$b-new" "/etc/$b-fix"
  host_answer=$OUT
  assert_contains "$host_answer" "Permission denied" "the probe on the host"
  mbx_as "$u" run --user --session "user-$u" -- sh -c "$probe" sh "/etc/$b-new" "/etc/$b-fix"
  assert_rc 0 "mbx run --user"
  assert_eq "$host_answer" "$OUT" "--user: same identity and EACCES answers as on the host"
  mbx_ok "$u" status "user-$u"
  assert_eq "" "$OUT" "--user run that was denied everything: no changes"
  host_unchanged "after --user"
  check_no_leftovers
done
e2e_done
