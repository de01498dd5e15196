#!/usr/bin/env bash
# Crash safety of `mbx commit`, as root: a session that rewrites 300 small files and
# 3 files of 8 MiB, adds 40 files in a new tree and deletes a tree is committed
#  1. with MBX_FAULT_AT=K (the K-th fault point of the commit kills it with SIGKILL)
#     for K spread over the whole commit, host steps and layer clean-up alike;
#  2. with a real SIGKILL after a random delay;
# and after each kill: no host file is torn (each is byte for byte its old or its new
# version, and every file both versions have is there), and the next mbx command
# finishes the commit ("finished an interrupted commit"): the host tree is then the
# view the sandbox saw, with no temporary files left, and the session is gone.
. "$(dirname "$0")/lib.sh"
e2e_init

U=root
TEMPLATE=""   # the host tree before the commit, copied afresh for every round

make_template() {
  TEMPLATE=$(fixture_dir "$U" template)
  (
    cd "$TEMPLATE"
    for i in $(seq -w 0 299); do echo "old $i" >"f$i"; done
    for i in 1 2 3; do head -c 8M /dev/urandom >"big$i"; done
    mkdir -p gone/a/b && for i in 1 2 3 4 5; do echo "g$i" >"gone/a/b/g$i"; done
  )
}

# One round: a fresh host copy at D and a fresh session S that changes it.
prepare_round() {
  D=/srv/$(fixture_base "$U")-work
  rm -rf --one-file-system "$D"
  cp -a "$TEMPLATE" "$D"
  S=crash-$1
  mbx_as "$U" run --session "$S" -- sh -c '
set -e
cd "$1"
for f in f*; do echo "new ${f#f}" >"$f"; done
for i in 1 2 3; do head -c 8M /dev/zero | tr "\0" "$i" >"big$i"; done
mkdir -p added/x/y
for i in $(seq 1 40); do echo "added $i" >"added/x/y/a$i"; done
rm -rf gone' sh "$D"
  assert_rc 0 "the run of round $1"
  OLD_STATE=$(sh -c "$TREE_STATE_SH" sh "$D")
  mbx_as "$U" run --session "$S" -- sh -c "$TREE_STATE_SH" sh "$D"
  NEW_STATE=$OUT
}

# no_torn_file WHEN: every host file under D is its old or its new version; files
# present in both versions are present.
no_torn_file() {
  local now msg
  now=$(cd "$D" && find . -type f ! -name '.mbx-commit-*' -exec sha256sum {} + | LC_ALL=C sort -k2)
  msg=$(python3 -c '
import sys
def sums(text):
    out = {}
    for line in text.splitlines():
        parts = line.split("  ", 1)
        if len(parts) == 2 and len(parts[0]) == 64:
            out[parts[1]] = parts[0]
    return out
old, new, now = (sums(open(f).read()) for f in sys.argv[1:4])
errs = []
for p, h in now.items():
    if h not in (old.get(p), new.get(p)):
        errs.append("torn or foreign content: " + p)
for p in set(old) & set(new):
    if p not in now:
        errs.append("missing (it has an old and a new version): " + p)
print("\n".join(errs[:20]))
' <(echo "$OLD_STATE") <(echo "$NEW_STATE") <(echo "$now"))
  [ -z "$msg" ] || fail "$1:
$msg"
}

# finished_by_next_command: `mbx list` completes the commit; the host is the view.
finished_by_next_command() {
  mbx_as "$U" list
  assert_rc 0 "mbx list after the kill"
  assert_contains "$ERR" "mbx: session $S: finished an interrupted commit" "the next command finishes the commit"
  assert_eq "$NEW_STATE" "$(sh -c "$TREE_STATE_SH" sh "$D")" "host tree after the finished commit"
  assert_not_contains "$OUT" "$S " "the session is gone from mbx list"
}

part_fault_points() {
  local k
  # The commit has about 6 fault points per entry (about 2,050 in all; the last
  # ~350 are the layer clean-up).
  for k in 1 2 3 4 5 6 7 9 13 40 150 400 800 1200 1600 1750 1900 1980 2010 2030 2036 2039 2041 2043 2100; do
    prepare_round "$k"
    as_cmd "$U"
    echo "+ MBX_FAULT_AT=$k mbx commit $S"
    RC=0
    (cd / && exec "${AS[@]}" MBX_FAULT_AT="$k" "$MBX" commit "$S") >"$T/c.out" 2>"$T/c.err" </dev/null || RC=$?
    if [ "$RC" = 0 ]; then
      note "fault point $k is past the end of the commit"
      assert_eq "$NEW_STATE" "$(sh -c "$TREE_STATE_SH" sh "$D")" "host tree after the commit"
      continue
    fi
    [ "$RC" = 137 ] || fail "fault point $k: expected the commit to be killed (137), got $RC: $(cat "$T/c.err")"
    no_torn_file "after a kill at fault point $k"
    finished_by_next_command
  done
}

part_real_kill() {
  local i delay
  for i in 1 2 3 4 5 6; do
    prepare_round "k$i"
    delay=$(awk -v r="$RANDOM" -v i="$i" 'BEGIN { printf "%.3f", (i - 1) * 0.05 + (r % 20) / 1000 }')
    as_cmd "$U"
    echo "+ mbx commit $S, SIGKILL after ${delay}s"
    (cd / && exec "${AS[@]}" "$MBX" commit "$S") >"$T/c.out" 2>"$T/c.err" </dev/null &
    local pid=$!
    sleep "$delay"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    no_torn_file "after SIGKILL at ${delay}s"
    # Killed before its journal existed, the commit has not begun: the host is
    # as it was and committing again does it. Killed after its end, there is
    # nothing left to do.
    if [ -d "$(mbx_home "$U")/$S/journal" ]; then
      mbx_as "$U" commit --resume "$S"
      assert_rc 0 "mbx commit --resume"
      assert_contains "$ERR" "finished an interrupted commit" "--resume says what it did"
    elif [ -d "$(mbx_home "$U")/$S" ]; then
      assert_eq "$OLD_STATE" "$(sh -c "$TREE_STATE_SH" sh "$D")" "host tree after a kill before the journal"
      mbx_ok "$U" commit "$S"
    fi
    assert_eq "$NEW_STATE" "$(sh -c "$TREE_STATE_SH" sh "$D")" "host tree after the resumed commit"
  done
}

as_user "$U"
make_template
on_cleanup "rm -rf --one-file-system /srv/$(fixture_base "$U")-work"
part "fault points" part_fault_points
part "real SIGKILL" part_real_kill
e2e_done
