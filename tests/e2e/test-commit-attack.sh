#!/usr/bin/env bash
# Symlink attacks on `mbx commit`, as root (who could write anywhere):
#  1. after `mbx diff` and before `mbx commit`, a layer file is replaced by a symlink
#     to a secret file outside the session, and a host directory on the path of
#     another entry by a symlink to a directory outside: the commit writes neither
#     the secret nor into the outside directory (the layer symlink is at most
#     committed as a symlink; the host path is a conflict, exit 3).
#  2. the same swaps made while the commit runs (it is stopped at its first fault
#     point with MBX_PAUSE_AT=1, after the plan is journalled): the entries fail
#     with "a symlink is on the way", exit 1, and nothing is written through.
. "$(dirname "$0")/lib.sh"
e2e_init

U=root

# setup NAME: host dir D (with sub/), an outside dir OUTSIDE and secret SECRET; a session
# S that modifies D/a, D/b and writes D/sub/c.
setup() {
  D=$(fixture_dir "$U" "$1")
  OUTSIDE=$(fixture_dir "$U" "$1-outside")
  SECRET=$OUTSIDE/secret
  echo "SECRET" >"$SECRET"
  echo a0 >"$D/a" && echo b0 >"$D/b" && mkdir "$D/sub" && echo c0 >"$D/sub/c"
  S=attack-$1
  mbx_as "$U" run --session "$S" -- sh -c 'echo a1 >"$1/a" && echo b1 >"$1/b" && echo c1 >"$1/sub/c"' sh "$D"
  assert_rc 0 "the run"
  mbx_ok "$U" diff "$S"
  LAYER=$(mbx_home "$U")/$S/layer
}

# swap: the layer file of D/b becomes a symlink to SECRET; host D/sub a symlink to OUTSIDE.
swap() {
  rm "$LAYER$D/b"
  ln -s "$SECRET" "$LAYER$D/b"
  mv "$D/sub" "$D/sub.moved"
  ln -s "$OUTSIDE" "$D/sub"
}

nothing_written_through() {
  assert_eq "SECRET" "$(cat "$SECRET")" "the secret outside the session"
  assert_eq "secret" "$(find "$OUTSIDE" -mindepth 1 -printf "%P\n" 2>&1)" "the outside directory holds nothing new"
  if [ -f "$D/b" ] && [ ! -L "$D/b" ]; then
    assert_eq "b0" "$(cat "$D/b")" "host b (a regular file: the old one)"
  fi
  assert_eq "c0" "$(cat "$D/sub.moved/c")" "the host directory moved away is untouched"
}

part_before_commit() {
  setup before
  swap
  mbx_as "$U" commit "$S"
  assert_rc 3 "commit with the host path now through a symlink"
  assert_contains "$ERR" "C $D/sub (host-changed)" "the host directory now a symlink is a conflict"
  assert_contains "$ERR" "C $D/sub/c (below a conflict)" "the entry behind the host symlink is left out"
  assert_eq "a1" "$(cat "$D/a")" "the untouched entry is committed"
  nothing_written_through
}

part_during_commit() {
  setup during
  commit_paused "$U" "$S"
  swap
  commit_continued
  assert_rc 1 "commit with symlinks swapped in during the commit"
  assert_contains "$ERR" "$D/b: not committed: a symlink is on the way" "the layer symlink is refused"
  assert_contains "$ERR" "$D/sub/c: not committed: a symlink is on the way" "the host symlink is refused"
  nothing_written_through
  assert_eq "a1" "$(cat "$D/a")" "the entry committed before the swap"
}

as_user "$U"
part "swapped before commit" part_before_commit
part "swapped during commit" part_during_commit
e2e_done
