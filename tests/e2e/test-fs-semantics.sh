#!/usr/bin/env bash
# e2e-timeout: 1500
# Issue 2, must-show 4: the FUSE semantics battery (tests/fs/semantics.cpp, binary
# fs-semantics, directory under test in MBX_FS_DIR) must pass on the merged view
# exactly as it does on a plain ext4 directory:
#   root:    ext4 dir  |  inside mbx run, a new dir /var/lib/mbxsem-... in the view
#   mbxtest: ext4 dir in its home  |  inside mbx run --user, a dir in its home (same
#            identity as on ext4)  |  inside mbx run (fake root), /var/lib/mbxsem-...
. "$(dirname "$0")/lib.sh"
e2e_init
[ -x "$FS_SEMANTICS" ] || fail "fs-semantics binary not found at $FS_SEMANTICS (build with: ninja -C build, or set FS_SEMANTICS=)"
E2E_CMD_TIMEOUT=${E2E_FS_TIMEOUT:-600}

# semantics USER WHERE CMD...: run the battery, fail with its output if it fails.
semantics() {
  local u=$1 where=$2
  shift 2
  capture_as "$u" "$@"
  [ "$RC" = 0 ] || fail "fs-semantics failed $where (exit $RC$([ "$RC" = 124 ] && echo ", timed out")):
$(tail -n 60 <<<"$OUT$ERR" | sed 's/^/    | /')"
  note "fs-semantics passed $where: $(grep -E '^(All tests passed|test cases)' <<<"$OUT" | tail -n 1)"
}

inside='mkdir -p "$1" && cd "$1" && MBX_FS_DIR="$1" exec "$2"'

for u in $(test_users root mbxtest); do
  as_user "$u"
  area=$(user_area "$u")
  sem=$(user_exe "$u" "$FS_SEMANTICS" view)

  ext4=$area/sem-ext4
  mkdir "$ext4"
  chown "$u:" "$ext4"
  fstype=$(stat -f -c %T "$ext4")
  [ "$fstype" = ext2/ext3 ] || note "warning: $ext4 is on $fstype, not ext4"
  semantics "$u" "on ext4 ($ext4)" env MBX_FS_DIR="$ext4" "$sem"

  view=/var/lib/mbxsem-$TEST_ID-$u
  absent_on_host "$view"
  host_snapshot /var/lib "$view"
  semantics "$u" "inside mbx run ($view)" \
    "$(user_exe "$u" "$MBX")" run --session "sem-$u" -- sh -c "$inside" sh "$view" "$sem"
  host_unchanged "after the battery inside mbx run"

  # The same battery with the server's handle cache squeezed to 16, so that
  # nearly every operation re-opens evicted handles from parent and name.
  eview=/var/lib/mbxsem-$TEST_ID-$u-evict
  absent_on_host "$eview"
  semantics "$u" "inside mbx run with MBX_FD_BUDGET=16 ($eview)" \
    env MBX_FD_BUDGET=16 "$(user_exe "$u" "$MBX")" run --session "seme-$u" -- sh -c "$inside" sh "$eview" "$sem"
  host_unchanged "after the battery with a tiny handle cache"

  # And with the FUSE writeback cache (MBX_WRITEBACK=1, off by default), which
  # moves sizes, mtimes and written data into the kernel's hands.
  wview=/var/lib/mbxsem-$TEST_ID-$u-wb
  absent_on_host "$wview"
  semantics "$u" "inside mbx run with MBX_WRITEBACK=1 ($wview)" \
    env MBX_WRITEBACK=1 "$(user_exe "$u" "$MBX")" run --session "semw-$u" -- sh -c "$inside" sh "$wview" "$sem"
  host_unchanged "after the battery with the writeback cache"

  if [ "$u" != root ]; then
    hview=$area/sem-view
    mkdir "$hview"
    chown "$u:" "$hview"
    host_snapshot -R "$hview"
    semantics "$u" "inside mbx run --user ($hview)" \
      "$(user_exe "$u" "$MBX")" run --user --session "semu-$u" -- sh -c "$inside" sh "$hview" "$sem"
    host_unchanged "after the battery inside mbx run --user"
  fi
  check_no_leftovers
done
e2e_done
