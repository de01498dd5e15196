#!/usr/bin/env bash
# `mbx commit` moves a layer file into place instead of copying it when nothing
# tells the two apart (one name, owned by the committer, same file system, no
# default ACL on the host directory), and copies it otherwise. As root and mbxtest:
#  1. moved: a new file and a changed host file keep the layer file's inode on the
#     host, with the view's content, mode and user.* xattr and none of the layer's
#     own records (user.mbx.*, user.containers.*); the layer is empty after.
#  2. copied: a file with two names in the sandbox (a hard link) is a new inode with
#     both names on the host; in a directory with a default ACL the new file
#     inherits the ACL, as any new file there would (root).
#  3. group: a new file in a set-group-ID host directory gets the directory's group,
#     moved or not (root).
#  4. a step that fails after its file was moved (the host puts a directory at the
#     name while the commit is stopped) puts the file back in the layer: the view
#     shows it as before (content, mode, owner) and it is still a change. A changed
#     file goes to a temporary name first (its host file is kept as a backup before
#     the rename over it); a new one straight to its name, and when that name was
#     taken meanwhile, the temporary name's way: both fail and come back alike.
. "$(dirname "$0")/lib.sh"
e2e_init

inode() { stat -c %i "$1"; }
# the layer's own records on a host file (none expected)
records() { getfattr -h -d -m - "$1" 2>/dev/null | grep -E '^(user\.mbx\.|user\.containers\.)' || true; }

part_moved() {
  local u=$1 d s=mv-moved layer ino_new ino_mod
  d=$(fixture_dir "$u" moved)
  run_as "$u" sh -c 'echo old >"$1/mod"' sh "$d"
  mbx_as "$u" run --session "$s" -- sh -c '
set -e
cd "$1"
echo new >new && chmod 640 new && setfattr -n user.keep -v yes new
echo changed >>mod' sh "$d"
  assert_rc 0 "the run"
  layer=$(mbx_home "$u")/$s/layer
  ino_new=$(inode "$layer$d/new")
  ino_mod=$(inode "$layer$d/mod")
  mbx_ok "$u" commit "$s"
  assert_eq "$ino_new" "$(inode "$d/new")" "the new file is the layer's file, moved"
  assert_eq "$ino_mod" "$(inode "$d/mod")" "the changed file is the layer's copy, moved"
  assert_eq "new 640 $u" "$(cat "$d/new") $(stat -c '%a %U' "$d/new")" "content, mode and owner of the new file"
  assert_eq $'old\nchanged' "$(cat "$d/mod")" "content of the changed file"
  assert_eq "yes" "$(getfattr -h --only-values -n user.keep "$d/new" 2>/dev/null)" "the sandbox's user.* xattr"
  assert_eq "" "$(records "$d/new")$(records "$d/mod")" "no layer records on the host"
  [ ! -e "$(mbx_home "$u")/$s" ] || fail "the fully committed session is still there"
}

part_copied() {
  local u=$1 d s=mv-copied layer
  d=$(fixture_dir "$u" copied)
  mkdir "$d/acl" && chown "$u:" "$d/acl"
  [ "$u" = root ] && setfacl -d -m u:nobody:rwx "$d/acl"
  mbx_as "$u" run --session "$s" -- sh -c '
set -e
cd "$1"
echo one >a && ln a b
echo acl >acl/f' sh "$d"
  assert_rc 0 "the run"
  layer=$(mbx_home "$u")/$s/layer
  local ino_a ino_acl
  ino_a=$(inode "$layer$d/a")
  ino_acl=$(inode "$layer$d/acl/f")
  mbx_ok "$u" commit "$s"
  [ "$(inode "$d/a")" != "$ino_a" ] || fail "a file with two names in the layer was moved"
  assert_eq "$(inode "$d/a") 2" "$(inode "$d/b") $(stat -c %h "$d/a")" "both names are one host file"
  assert_eq "one" "$(cat "$d/b")" "content through the second name"
  if [ "$u" = root ]; then
    [ "$(inode "$d/acl/f")" != "$ino_acl" ] || fail "a file going where a default ACL applies was moved"
    assert_contains "$(getfacl -p "$d/acl/f" 2>&1)" "user:nobody:rwx" "the new file inherits the default ACL"
  else
    assert_eq "$ino_acl" "$(inode "$d/acl/f")" "without a default ACL the file is moved"
  fi
}

part_group() {
  local u=root d s=mv-group grp
  grp=$(getent group mail | cut -d: -f1)
  [ -n "$grp" ] || fail "no group mail on this machine"
  d=$(fixture_dir "$u" group)
  chgrp "$grp" "$d" && chmod g+s "$d"
  mbx_as "$u" run --session "$s" -- sh -c 'echo g >"$1/new"' sh "$d"
  assert_rc 0 "the run"
  local ino
  ino=$(inode "$(mbx_home "$u")/$s/layer$d/new")
  mbx_ok "$u" commit "$s"
  assert_eq "$ino" "$(inode "$d/new")" "the file was moved (the case the group is set for)"
  assert_eq "root:$grp" "$(stat -c '%U:%G' "$d/new")" "a new file in a set-group-ID directory gets its group"
}

part_put_back() {
  local u=$1 d s=mv-back layer want f
  d=$(fixture_dir "$u" back)
  run_as "$u" sh -c 'echo old >"$1/f"' sh "$d"
  mbx_as "$u" run --session "$s" -- sh -c 'echo back >"$1/f" && chmod 750 "$1/f" && echo new >"$1/g"' sh "$d"
  assert_rc 0 "the run"
  mbx_as "$u" run --session "$s" -- stat -c '%a %U %s' "$d/f" "$d/g"
  want=$OUT
  layer=$(mbx_home "$u")/$s/layer
  # Fault points: 1 after f's host file is kept as backup, 2 after f is moved to
  # its temporary name; g (new) is not moved yet.
  commit_paused "$u" "$s" 2
  [ ! -e "$layer$d/f" ] || fail "the layer file f was not moved before the second fault point"
  [ -e "$layer$d/g" ] || fail "the layer file g was moved before its step"
  rm "$d/f" && mkdir "$d/f" "$d/g"
  commit_continued
  assert_rc 1 "commit whose renames meet directories"
  assert_contains "$ERR" "$d/f: not committed" "the changed entry is reported"
  assert_contains "$ERR" "$d/g: not committed" "the new entry is reported"
  for f in f g; do
    [ -f "$layer$d/$f" ] || fail "the file $f is not back in the layer"
  done
  assert_eq "" "$(find "$d" -name '.mbx-commit-*')" "no temporary file left on the host"
  mbx_as "$u" run --session "$s" -- sh -c 'stat -c "%a %U %s" "$1" "$2" && cat "$1" "$2"' sh "$d/f" "$d/g"
  assert_rc 0 "the view after the failed commit"
  assert_eq "$want"$'\nback\nnew' "$OUT" "the view shows the files as before (mode, owner, content)"
  mbx_ok "$u" status "$s"
  assert_contains "$OUT" "$d/f" "f is still a change of the session"
  assert_contains "$OUT" "$d/g" "g is still a change of the session"
  rmdir "$d/f" "$d/g"
  mbx_ok "$u" commit --force "$s"  # f's host file is gone: a conflict, applied
  assert_eq "back 750 new" "$(cat "$d/f") $(stat -c %a "$d/f") $(cat "$d/g")" "committed once the way is clear"
  assert_eq "" "$(records "$d/f")$(records "$d/g")" "no layer records on the committed files"
}

for u in $(test_users root mbxtest); do
  as_user "$u"
  part "moved ($u)" part_moved "$u"
  part "copied ($u)" part_copied "$u"
  [ "$u" = root ] && part "group" part_group
  part "put back ($u)" part_put_back "$u"
done
e2e_done
