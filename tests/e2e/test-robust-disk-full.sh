#!/usr/bin/env bash
# Robustness: the filesystem holding $MBX_HOME fills up. MBX_HOME is put on a small
# tmpfs (8 MiB, with user xattrs). As root and as mbxtest:
#  1. a copy-up that cannot fit (appending to a 20 MiB host file) fails inside with
#     ENOSPC; the command's status is mbx's, the summary is printed, nothing
#     half-copied stays in the layer, the space is given back, work/ is empty after
#     the next run, the host file is untouched and reads unchanged inside;
#  2. writing a new 20 MiB file fails inside with "No space left on device"; the
#     command's non-zero status is propagated, mbx itself still prints the summary
#     (no "mbx: ..." error of its own), the host is unchanged, nothing is left;
#  3. after freeing the space (rm of the big file in a second run) the session works
#     again: runs, writes, `mbx status` shows exactly the new state, `mbx list` and
#     `mbx discard` work;
#  4. `mbx discard` of a session that filled the disk works and gives the space back.
. "$(dirname "$0")/lib.sh"
e2e_init

command -v setfattr >/dev/null || fail "setfattr (package attr) is needed"

MNT=/var/tmp/mbx-e2e-$TEST_ID-fs
absent_on_host "$MNT"
mkdir -m 0755 "$MNT"
mount -t tmpfs -o size=8m,mode=0777 tmpfs "$MNT" || fail "cannot mount a tmpfs on $MNT"
on_cleanup "umount '$MNT' 2>/dev/null || umount -l '$MNT'"
touch "$MNT/xattr-probe"
setfattr -n user.mbx-e2e -v 1 "$MNT/xattr-probe" 2>/dev/null ||
  fail "tmpfs on this kernel ($(uname -r)) does not take user.* xattrs, which the layer needs; cannot test a full disk this way"
rm -f "$MNT/xattr-probe"

BIG=$((20 * 1024 * 1024))

# mbx_full USER ARGS...: mbx ARGS as USER with MBX_HOME on the small tmpfs.
mbx_full() {
  local u=$1
  shift
  capture_as "$u" env "MBX_HOME=$MNT/$u" "$(user_exe "$u" "$MBX")" "$@"
}

# tmpfs_used_kib: KiB in use on the small tmpfs.
tmpfs_used_kib() { df -k --output=used "$MNT" | tail -n 1 | tr -d ' '; }

# 1. A copy-up that cannot fit.
copy_up_too_big() {
  # (dd says which error: the copy-up happens at the first write, and a
  # shell's echo reports any write error as "I/O error".)
  mbx_full "$u" run --session "$s" -- sh -c 'printf x | dd of="$1" oflag=append conv=notrunc status=none || exit 9; echo appended' sh "$big"
  assert_rc 9 "mbx run: the append that needs a copy-up that cannot fit must fail inside"
  assert_not_contains "$OUT" appended "the append must not succeed"
  assert_contains "$ERR" "No space left on device" "the error inside"
  assert_summary "$s" 0 0 0
  host_unchanged "after the failed copy-up"
  check_no_leftovers
  [ ! -e "$mh/$s/layer/etc/$b-big" ] || fail "a half-copied $big is in the layer: $(ls -l "$mh/$s/layer/etc/$b-big")"
  left=$(find "$mh/$s/layer" -type f -printf '%P %s\n')
  assert_eq "" "$left" "files in the layer after the failed copy-up"
  left=$(find "$mh/$s/work" -mindepth 1 -printf '%P %s\n')
  assert_eq "" "$left" "work/ after the failed copy-up (staged copy must be removed)"
  used=$(tmpfs_used_kib)
  [ "$((used - used0))" -lt 1024 ] ||
    fail "the failed copy-up still holds $((used - used0)) KiB of the small filesystem (before: $used0, after: $used)"

  mbx_full "$u" run --session "$s" -- sh -c 'stat -c %s "$1"; sha256sum <"$1" | cut -d" " -f1' sh "$big"
  assert_rc 0 "mbx run after the failed copy-up"
  assert_eq "$BIG
$(sha256sum <"$big" | cut -d' ' -f1)" "$OUT" "size and hash of the host file inside after the failed copy-up"
  assert_summary "$s" 0 0 0
  left=$(find "$mh/$s/work" -mindepth 1 -printf '%P %s\n')
  assert_eq "" "$left" "work/ after the next run"
  mbx_full "$u" status "$s"
  assert_rc 0 "mbx status after the failed copy-up"
  assert_eq "" "$OUT" "mbx status after the failed copy-up"
}

# 2. A new file fills the disk.
fill_the_disk() {
  mbx_full "$u" run --session "$s" -- \
    sh -c 'dd if=/dev/zero of="$1" bs=1M count=20 conv=fsync; echo "dd exit $?"; exit 3' sh "$new"
  assert_contains "$OUT" "dd exit 1" "dd must fail"
  assert_contains "$ERR" "No space left on device" "dd's error inside"
  assert_rc 3 "mbx run: the command's status (3) after dd failed with ENOSPC"
  # mbx may say (one line) that the disk had no room for the run's record;
  # nothing else of its own.
  assert_not_contains "$(grep -v -e '^mbx: session ' -e '^mbx: warning: the run was not recorded' <<<"$ERR" || true)" \
    "mbx: " "mbx's own errors on a full disk"
  assert_summary "$s" 1 0 0
  host_unchanged "after filling the disk"
  check_no_leftovers
}

# 3. Freeing the space (the layer holds the part of the big file that fitted).
recover() {
  mbx_full "$u" run --session "$s" -- rm "$new"
  assert_rc 0 "mbx run --session $s -- rm (free the space)"
  assert_summary "$s" 0 0 0
  used=$(tmpfs_used_kib)
  [ "$((used - used0))" -lt 1024 ] ||
    fail "after rm of the big file, $((used - used0)) KiB of the small filesystem are still used"
  mbx_full "$u" status "$s"
  assert_rc 0 "mbx status after freeing the space"
  assert_eq "" "$OUT" "mbx status after freeing the space"
  mbx_full "$u" run --session "$s" -- sh -c 'echo small >"$1"; cat "$1"' sh "$new"
  assert_rc 0 "mbx run after freeing the space"
  assert_eq small "$OUT" "a write after freeing the space"
  assert_summary "$s" 1 0 0
  mbx_full "$u" status "$s"
  assert_rc 0 "mbx status after the small write"
  assert_eq "A $new" "$OUT" "mbx status after the small write"
  mbx_full "$u" list --json
  assert_rc 0 "mbx list"
  assert_eq "$s	1	0	0	sh -c echo small >\"\$1\"; cat \"\$1\" sh $new" "$(list_json_lines)" "mbx list --json"
  left=$(find "$mh/$s/work" -mindepth 1 -printf '%P %s\n')
  assert_eq "" "$left" "work/ at the end"
  mbx_full "$u" discard "$s"
  assert_rc 0 "mbx discard $s"
  [ ! -e "$mh/$s" ] || fail "mbx discard left $mh/$s"
  host_unchanged "at the end"
  check_no_leftovers
}

# 4. `mbx discard` of a session that filled the disk gives the space back.
discard_when_full() {
  rm -rf --one-file-system "${mh:?}/$s"   # whatever the parts above left
  mbx_full "$u" run --session "$s-2" -- dd if=/dev/zero of="$new" bs=1M count=20
  avail=$(df -k --output=avail "$MNT" | tail -n 1 | tr -d ' ')
  [ "$avail" -lt 256 ] || fail "expected the small filesystem to be full now, $avail KiB are free"
  mbx_full "$u" discard "$s-2"
  assert_rc 0 "mbx discard of a session on a full disk"
  [ ! -e "$mh/$s-2" ] || fail "mbx discard left $mh/$s-2"
  used=$(tmpfs_used_kib)
  [ "$((used - used0))" -lt 1024 ] ||
    fail "after mbx discard, $((used - used0)) KiB of the small filesystem are still used"
  host_unchanged "after discarding the full session"
  check_no_leftovers
}

for u in $(test_users root mbxtest); do
  as_user "$u"
  mh=$MNT/$u
  mkdir -m 0700 "$mh"
  chown "$u:" "$mh"
  s=full-$u
  b=$(fixture_base "$u")
  big=/etc/$b-big      # host fixture, 20 MiB: its copy-up cannot fit
  new=/etc/$b-new      # written inside until the disk is full
  absent_on_host "$big" "$new"
  head -c "$BIG" /dev/urandom >"$big"
  chmod 644 "$big"
  host_snapshot /etc "$big" "$new"
  used0=$(tmpfs_used_kib)

  part "a copy-up that cannot fit" copy_up_too_big
  part "a new file fills the disk" fill_the_disk
  part "the session after freeing the space" recover
  part "discard on a full disk" discard_when_full
  rm -rf --one-file-system "$mh" "$big"   # room for the next user
done
e2e_done
