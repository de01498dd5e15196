#!/usr/bin/env bash
# The same file operations on host files, natively on one copy of a tree and
# inside `mbx run` on another: what the operations print and the tree they
# leave (names, types, modes, link counts of files, contents) are the same,
# inside the run and in a second run of the session; the host's tree is
# untouched until `mbx commit`, and after it equals the native result. The
# operations mix changes with removals and renames of what was changed (a
# modified file then removed, renamed, linked; a tree with a modified file
# then removed or renamed; a removed name made again and removed again; a
# file replaced by a directory and back; symlinks replaced and removed).
# As root and as mbxtest (fake root: owners are left out of the comparison);
# also monitored (--monitor: opens reach the server) and with the writeback
# cache (MBX_WRITEBACK=1).
. "$(dirname "$0")/lib.sh"
e2e_init

# Makes the starting tree in $1.
MAKE_TREE='
set -e
mkdir -p "$1" && cd "$1"
mkdir -p d1/sub d2 d3/x d4 d5 d7 d8/in
for f in a b c; do
  echo "$f" >d1/$f; echo "s$f" >d1/sub/$f; echo "t$f" >d2/$f; echo "u$f" >d3/x/$f
  echo "v$f" >d4/$f; echo "w$f" >d5/$f; echo "y$f" >d8/in/$f
done
for f in top1 top2 top3 top4 top5; do echo "$f" >$f; done
ln -s top1 link1; ln -s d2 link2
echo file >d7/was-file; mkdir d7/was-dir; echo inner >d7/was-dir/f
chmod 750 d8
'

# The operations, run in $1 (printing what they see), then the tree.
OPERATIONS='
umask 022
cd "$1"
step() { echo "-- $*"; }
step modified child, tree removed, made again
echo more >>d1/a; rm -rf d1; mkdir d1; ls -A d1 | wc -l
step chmod, then moved to another directory
chmod 600 d2/a; mv d2/a d4/moved; ls d2 d4
step modified child, tree renamed
echo more >>d3/x/b; mv d3 d3r; ls d3 2>&1 | sed "s/.*cannot access.*/absent/"; ls -R d3r
step new file renamed over a host file
echo new >top1.new; mv top1.new top1; cat top1
step modified, linked, removed
echo more >>top2; ln top2 top2.link; rm top2; cat top2.link; ls top2 2>/dev/null || echo absent
step chmod, removed
chmod 700 top3; rm top3; ls top3 2>/dev/null || echo absent
step modified, renamed over a sibling
echo more >>d5/a; mv d5/a d5/b; ls d5; cat d5/b
step removed, made again, removed again
rm d5/b; echo again >d5/b; rm d5/b; ls d5
step new directory moved into a host tree, tree removed
mkdir d6; echo x >d6/f; mv d6 d4/; rm -r d4; ls d4 2>/dev/null || echo absent
step truncated, renamed, appended
: >top4; mv top4 top4.r; echo tail >>top4.r; cat top4.r
step file replaced by a directory and a directory by a file
rm d7/was-file; mkdir d7/was-file; echo in >d7/was-file/g
rm -r d7/was-dir; echo now-file >d7/was-dir; ls -F d7; cat d7/was-dir
step symlinks replaced and removed
rm link1; ln -s top5 link1; cat link1; rm link2; ls link2 2>/dev/null || echo absent
step chmod of a directory, then its child changed
chmod 700 d8/in; echo more >>d8/in/a; cat d8/in/a
step archived, removed, unpacked again
tar cf t.tar d5 && rm -r d5 && tar xf t.tar && rm t.tar; ls d5
step edited in place with sed -i, copied with cp -a, renamed
sed -i "s/y/Y/" d8/in/b; cp -a d8 d8copy; chmod -R 755 d8copy; mv d8/in d8/in2; ls -R d8
step emptied and removed
rm d2/*; rmdir d2; ls d2 2>/dev/null || echo absent
step the tree
find . -mindepth 1 \( -type d -printf "%P %y %m\n" \) -o \( ! -type d -printf "%P %y %m %n %l\n" \) | LC_ALL=C sort
find . -type f -exec md5sum {} + | LC_ALL=C sort -k2
'

# check USER SUFFIX [RUN-OPTION...]: SUFFIX names the variant's tree and session.
check() {
  local u=$1 suffix=$2 area native host session
  shift 2
  local opts=("$@")
  area=$(user_area "$u")/tree$suffix
  native=$area/native
  host=$area/host
  session=diff$suffix
  run_as "$u" mkdir -p "$area" || fail "making $area"
  run_as "$u" sh -c "$MAKE_TREE" sh "$native" || fail "making the native tree"
  run_as "$u" sh -c "$MAKE_TREE" sh "$host" || fail "making the host tree"
  host_snapshot -R "$host"

  capture_as "$u" sh -c "$OPERATIONS" sh "$native"
  local expect=$OUT
  assert_contains "$expect" "-- the tree" "the native run printed its tree"

  mbx_as "$u" run "${opts[@]}" --session "$session" -- sh -c "$OPERATIONS" sh "$host"
  assert_rc 0 "the operations inside"
  assert_eq "$expect" "$(grep -v '^mbx: ' <<<"$OUT")" "inside: the same output and tree as natively"
  host_unchanged "after the run"

  local tree_only='cd "$1" && find . -mindepth 1 \( -type d -printf "%P %y %m\n" \) -o \( ! -type d -printf "%P %y %m %n %l\n" \) | LC_ALL=C sort && find . -type f -exec md5sum {} + | LC_ALL=C sort -k2'
  capture_as "$u" sh -c "$tree_only" sh "$native"
  local expect_tree=$OUT
  mbx_as "$u" run "${opts[@]}" --session "$session" -- sh -c "$tree_only" sh "$host"
  assert_eq "$expect_tree" "$(grep -v '^mbx: ' <<<"$OUT")" "a second run of the session sees the same tree"
  host_unchanged "after the second run"

  mbx_ok "$u" commit "$session"
  capture_as "$u" sh -c "$tree_only" sh "$host"
  assert_eq "$expect_tree" "$OUT" "after mbx commit the host's tree is the native result"
  check_no_leftovers
}

# The writeback cache is a server setting (MBX_WRITEBACK=1, mbx-run(1)).
env_check() {
  E2E_PASSENV="${E2E_PASSENV:-} MBX_WRITEBACK" MBX_WRITEBACK=1 check "$1" -wb
}

for u in $(test_users root mbxtest); do
  as_user "$u"
  part "the same operations natively and inside" check "$u" ""
  part "... monitored (the kernel's opens reach the server)" check "$u" -m --monitor
  part "... with the writeback cache" env_check "$u"
done
e2e_done
