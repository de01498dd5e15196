#!/usr/bin/env bash
# `mbx commit`, `mbx revert`, `mbx discard PATH`: as root and as mbxtest (fake root),
# in a host directory the user owns:
#  1. cycle: a run adds, modifies, deletes, renames and chmods files, creates a tree,
#     a symlink and a hard link, removes a tree, replaces a file by a directory and
#     a directory by a new one (rm -rf d; mkdir d; a file where the old one was).
#     `mbx diff` lists exactly those entries with the right letters, -p shows the text
#     diff, --json parses; `mbx commit` makes the host tree identical (types, modes,
#     contents, symlink targets) to the view the sandbox saw; the session leaves the
#     list; `mbx revert` restores the host tree as it was before the commit.
#  2. conflict: the host changes a file after the run: diff marks it C, commit
#     applies everything else, leaves it untouched, exits 3; --force applies it.
#  3. selective: commit of one path and discard of another leave the other entries
#     in the layer; a discarded path shows the host version again inside.
#  4. revert refuses, listing them, when the host changed committed paths since;
#     --force reverts the others.
#  5. metadata: a user.* xattr set and one removed make an m entry that commit
#     applies; a touched time is a change only with diff --times; --dry-run changes
#     nothing.
#  6. errors: unknown session, nothing at a path, -i without a terminal, revert with
#     nothing to revert: exit 125 with one line.
. "$(dirname "$0")/lib.sh"
e2e_init

# state_in_view USER SESSION DIR: the tree state of DIR as the session's view shows it.
state_in_view() {
  mbx_as "$1" run --session "$2" -- sh -c "$TREE_STATE_SH" sh "$3"
  assert_rc 0 "tree state inside the view"
  VIEW_STATE=$OUT
}

host_state() { sh -c "$TREE_STATE_SH" sh "$1"; }

part_cycle() {
  local u=$1 d s=c-cycle
  d=$(fixture_dir "$u" cycle)
  run_as "$u" sh -c '
set -e
cd "$1"
printf "one\ntwo\nthree\n" >mod
echo del >del
echo ren >ren
echo chm >chm
mkdir -p gone/sub && echo a >gone/a && echo b >gone/sub/b
mkdir redo && echo same >redo/same && echo other >redo/other
echo todir >todir
echo keep >keep
ln -s keep oldlink' sh "$d"
  local before
  before=$(host_state "$d")

  mbx_as "$u" run --session "$s" -- sh -c '
set -e
cd "$1"
printf "one\nTWO\nthree\nfour\n" >mod
rm del
mv ren renamed
chmod 600 chm
mkdir -p new/deep/er && echo leaf >new/deep/er/leaf && echo top >new/top
ln -s ../keep new/link
ln new/top hard
rm -rf gone
rm todir && mkdir todir && echo in >todir/in
rm -rf redo && mkdir redo && echo again >redo/same' sh "$d"
  assert_rc 0 "the run"
  mbx_as "$u" diff "$s"
  assert_rc 0 "mbx diff"
  # As fake root with a sub-id range, the host's owner (the user's uid) shows as
  # itself inside and the new directory is root's: its owner changed (m).
  local redo_dir="" n=17
  if [ "$u" != root ]; then redo_dir="
m $d/redo" n=18; fi
  assert_eq "m $d/chm
D $d/del
D $d/gone
A $d/hard
M $d/mod
A $d/new
A $d/new/deep
A $d/new/deep/er
A $d/new/deep/er/leaf
A $d/new/link
A $d/new/top$redo_dir
D $d/redo/other
M $d/redo/same
D $d/ren
A $d/renamed
T $d/todir
A $d/todir/in" "$OUT" "mbx diff before the commit"
  mbx_as "$u" diff -p "$s" "$d/mod"
  assert_contains "$OUT" "-two
+TWO
 three
+four" "mbx diff -p of the text file"
  mbx_as "$u" diff --json "$s"
  python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["changes"]) == int(sys.argv[1])' "$n" <<<"$OUT" ||
    fail "mbx diff --json does not parse to $n changes"

  state_in_view "$u" "$s" "$d"
  local view=$VIEW_STATE
  mbx_as "$u" commit "$s"
  assert_rc 0 "mbx commit"
  assert_contains "$ERR" "mbx: session $s: committed $n entries" "commit report"
  assert_eq "$view" "$(host_state "$d")" "host tree after the commit (expected: the view the sandbox saw)"
  [ "$(stat -c %h "$d/hard")" = 2 ] || fail "the hard link made in the sandbox is not a hard link on the host"
  mbx_as "$u" list
  assert_not_contains "$OUT" "$s " "mbx list after a full commit"
  mbx_as "$u" diff "$s"
  assert_mbx_error "no session" "mbx diff of a fully committed session"

  mbx_as "$u" revert "$s"
  assert_rc 0 "mbx revert"
  assert_eq "$before" "$(host_state "$d")" "host tree after revert (expected: as before the commit)"
  mbx_as "$u" revert "$s"
  assert_mbx_error "revert" "a second revert"
}

part_conflict() {
  local u=$1 d s=c-conflict
  d=$(fixture_dir "$u" conflict)
  run_as "$u" sh -c 'cd "$1" && echo a0 >a && echo b0 >b' sh "$d"
  mbx_as "$u" run --session "$s" -- sh -c 'cd "$1" && echo a1 >a && echo b1 >b && echo c1 >c' sh "$d"
  assert_rc 0 "the run"
  run_as "$u" sh -c 'echo host-edit >"$1/a"' sh "$d"
  mbx_as "$u" diff "$s"
  assert_eq "C $d/a
M $d/b
A $d/c" "$OUT" "mbx diff with a host change"
  mbx_as "$u" commit "$s"
  assert_rc 3 "mbx commit with a conflict"
  assert_contains "$ERR" "C $d/a (host-changed)" "the conflict is listed"
  assert_contains "$ERR" "mbx commit --force $s" "how to apply anyway"
  assert_eq "host-edit" "$(cat "$d/a")" "the conflicting host file is untouched"
  assert_eq "b1" "$(cat "$d/b")" "the other entries are applied"
  assert_eq "c1" "$(cat "$d/c")" "the other entries are applied"
  mbx_as "$u" diff "$s"
  assert_eq "C $d/a" "$OUT" "only the conflict is left in the session"
  mbx_as "$u" commit --force "$s"
  assert_rc 0 "mbx commit --force"
  assert_eq "a1" "$(cat "$d/a")" "--force applies the conflict"
}

part_selective() {
  local u=$1 d s=c-select
  d=$(fixture_dir "$u" selective)
  run_as "$u" sh -c 'cd "$1" && echo x0 >x && echo y0 >y && mkdir t && echo t0 >t/t' sh "$d"
  mbx_as "$u" run --session "$s" -- sh -c 'cd "$1" && echo x1 >x && echo y1 >y && echo z1 >z && rm -r t' sh "$d"
  assert_rc 0 "the run"
  mbx_as "$u" commit "$s" "$d/x"
  assert_rc 0 "commit of one path"
  assert_eq "x1 y0" "$(cat "$d/x" "$d/y" | tr '\n' ' ' | sed 's/ $//')" "only x is committed"
  mbx_as "$u" diff "$s"
  assert_eq "D $d/t
M $d/y
A $d/z" "$OUT" "the other entries stay in the layer"
  mbx_as "$u" discard "$s" "$d/y" "$d/t"
  assert_rc 0 "discard of two paths"
  mbx_as "$u" diff "$s"
  assert_eq "A $d/z" "$OUT" "after discarding y and t"
  mbx_as "$u" run --session "$s" -- sh -c 'cat "$1/y" "$1/t/t"' sh "$d"
  assert_eq "y0
t0" "$OUT" "discarded paths show the host version inside"
  assert_eq "y0" "$(cat "$d/y")" "discard leaves the host alone"
  # A name with a newline and a byte that is not UTF-8, committed on its own.
  local odd=$d/$'nl\nname\xe9'
  mbx_as "$u" run --session "$s" -- sh -c 'echo odd >"$1"' sh "$odd"
  mbx_ok "$u" commit "$s" "$odd"
  assert_eq "odd" "$(cat "$odd")" "a committed odd name"
  mbx_as "$u" diff "$s"
  assert_eq "A $d/z" "$OUT" "the odd name left the session"
  mbx_as "$u" discard "$s" "$d/nothing-here"
  assert_mbx_error "nothing to discard" "discard of a path without changes"
  mbx_as "$u" commit "$s" "$d/nothing-here"
  assert_mbx_error "nothing to commit" "commit of a path without changes"
}

part_revert_refuses() {
  local u=$1 d s=c-revert
  d=$(fixture_dir "$u" revert)
  run_as "$u" sh -c 'cd "$1" && echo p0 >p && echo q0 >q' sh "$d"
  mbx_as "$u" run --session "$s" -- sh -c 'cd "$1" && echo p1 >p && echo q1 >q && echo r1 >r' sh "$d"
  mbx_ok "$u" commit "$s"
  run_as "$u" sh -c 'echo host-edit >"$1/p"' sh "$d"
  mbx_as "$u" revert "$s"
  assert_rc 3 "revert after the host changed a committed file"
  assert_contains "$ERR" "  $d/p" "the changed path is listed"
  assert_eq "host-edit q1 r1" "$(cat "$d/p" "$d/q" "$d/r" | tr '\n' ' ' | sed 's/ $//')" "a refused revert changes nothing"
  mbx_as "$u" revert --force "$s"
  assert_rc 3 "revert --force (some paths left)"
  assert_eq "host-edit q0" "$(cat "$d/p" "$d/q" | tr '\n' ' ' | sed 's/ $//')" "--force reverts the rest"
  [ -e "$d/r" ] && fail "revert --force left the file the commit created"
  return 0
}

part_metadata() {
  local u=$1 d s=c-meta
  d=$(fixture_dir "$u" meta)
  run_as "$u" sh -c 'cd "$1" && echo x >x && echo t >t && setfattr -n user.gone -v 1 x' sh "$d"
  mbx_as "$u" run --session "$s" -- sh -c 'cd "$1" && setfattr -n user.color -v blue x && setfattr -x user.gone x &&
    touch -d 2001-02-03T04:05:06 t' sh "$d"
  assert_rc 0 "the run"
  mbx_as "$u" diff "$s"
  assert_eq "m $d/x" "$OUT" "an xattr change is m; a new time alone is not a change"
  mbx_as "$u" diff --times "$s"
  assert_contains "$OUT" "m $d/t" "--times lists the touched file"
  mbx_as "$u" commit -n "$s"
  assert_rc 0 "commit --dry-run"
  assert_eq "m $d/x" "$OUT" "commit --dry-run lists what it would commit"
  [ -z "$(getfattr --absolute-names -n user.color "$d/x" 2>/dev/null)" ] || fail "--dry-run changed the host"
  mbx_ok "$u" commit "$s" "$d/x"
  assert_eq "user.color=\"blue\"" "$(getfattr --absolute-names -d "$d/x" | grep '^user\.')" \
    "the host file's user.* xattrs after the commit"
  mbx_ok "$u" discard "$s"
}

part_errors() {
  local u=$1
  mbx_as "$u" commit no-such-session
  assert_mbx_error "no session" "commit of an unknown session"
  mbx_as "$u" revert no-such-session
  assert_mbx_error "mbx list" "revert of an unknown session"
  mbx_as "$u" run --session c-err -- sh -c 'echo > /srv/.mbx-never-committed'
  mbx_as "$u" commit -i c-err
  assert_mbx_error "terminal" "commit -i without a terminal"
  mbx_as "$u" discard c-err
  assert_rc 0 "discard of the whole session"
}

for u in $(test_users root mbxtest); do
  as_user "$u"
  part "cycle ($u)" part_cycle "$u"
  part "conflict ($u)" part_conflict "$u"
  part "selective ($u)" part_selective "$u"
  part "revert refuses ($u)" part_revert_refuses "$u"
  part "metadata ($u)" part_metadata "$u"
  part "errors ($u)" part_errors "$u"
done
e2e_done
