#!/usr/bin/env bash
# `mbx diff`: what a session changed, against the host. As root and as mbxtest, one
# session per part, fixtures under /etc and /usr/local/bin:
#  1. a run that adds, modifies (text and binary), deletes, replaces files by a
#     directory and by a symlink (T), chmods without changing content (m), creates a
#     tree, a symlink, a chowned file and a file whose name needs quoting, renames a
#     host file (D + A). Checks the default output exactly (letters, bytewise order,
#     C-quoting), the default session, --json (kind, type, mode, owner, target per
#     path), --stat (a line per path, exact lines and totals), -p (exact unified diff
#     of the text file, added and deleted files, mode lines, "Binary files ... differ",
#     "symlink -> TARGET"), path filters (whole components only), colours
#     (--color=never/auto/piped: no ESC; --color=always: ESC, green/red, same text),
#     --no-pager, PAGER=false through a pipe; the host never changes.
#  2. conflicts: the host changes after the run (a modified file changed, a modified
#     file deleted, a created file appears; a deleted file left alone) → C lines,
#     "conflict" and the real "kind" in --json; still exit 0.
#  3. errors: unknown session, relative path, unknown option, bad --color: exit 125,
#     one line "mbx: ...".
#  4. an unchanged copy-up (the same bytes written over F, touch, chmod to the
#     same mode) shows nothing.
. "$(dirname "$0")/lib.sh"
e2e_init

ESC=$'\e'

# patch_block LINE: the block of OUT (output of -p) from the entry line LINE to the
# next entry line.
patch_block() {
  E=$1 awk 'BEGIN { e = ENVIRON["E"] } /^[AMDTmC] [\/"]/ { on = ($0 == e) } on' <<<"$OUT"
}

# entry_lines: the entry lines of OUT (output of -p or --color=always stripped).
entry_lines() { grep -E '^[AMDTmC] [/"]' <<<"$OUT" || true; }

strip_ansi() { sed 's/\x1b\[[0-9;]*[A-Za-z]//g'; }

# json_lines: one line per change of `mbx diff --json` in OUT:
# JSONPATH kind conflict type mode uid gid JSONTARGET ("-" for a missing key, "null"
# for null), after a first line "session JSONNAME".
json_lines() {
  python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert isinstance(d, dict), "top level must be an object"
assert isinstance(d.get("changes"), list), "missing array key changes"
print("session", json.dumps(d.get("session")))
for c in d["changes"]:
    assert isinstance(c, dict), "a change must be an object"
    def f(k, t):
        if k not in c:
            return "-"
        v = c[k]
        if v is None:
            return "null"
        if not isinstance(v, t) or isinstance(v, bool):
            return "BADTYPE(%s=%r)" % (k, v)
        return json.dumps(v) if k in ("path", "target") else str(v)
    print(f("path", str), f("kind", str), f("conflict", str), f("type", str),
          f("mode", str), f("uid", int), f("gid", int), f("target", str))
' <<<"$OUT" || fail "mbx diff --json: not JSON of the documented shape:
$(sed 's/^/    | /' <<<"$OUT")"
}

# check_stat EXPECTFILE: OUT (output of --stat) has, in order, one line per entry of
# EXPECTFILE ("QPATH<TAB>N+-" with N the line count, + and - the insertions and
# deletions; or "QPATH<TAB>Bin") and then the totals line (the last line of
# EXPECTFILE, verbatim). Names may be padded and numbers right-aligned as git does;
# the graph has 1..40 characters, pluses first, only if there are insertions/deletions.
check_stat() {
  local msg
  msg=$(python3 -c '
import re, sys
exp = open(sys.argv[1]).read().rstrip("\n").split("\n")
got = sys.stdin.read().rstrip("\n").split("\n")
errs = []
if len(got) != len(exp):
    errs.append("expected %d lines, got %d" % (len(exp), len(got)))
for i, (e, g) in enumerate(zip(exp[:-1], got)):
    q, spec = e.rsplit("\t", 1)
    m = re.fullmatch(" " + re.escape(q) + r" *\| *(.*)", g)
    if not m:
        errs.append("line %d: expected the entry %s, got %r" % (i + 1, q, g)); continue
    rest = m.group(1)
    if spec == "Bin":
        if not re.fullmatch(r"Bin( .*)?", rest):
            errs.append("line %d (%s): expected Bin, got %r" % (i + 1, q, rest))
        continue
    n, ins, dels = (int(x) for x in spec.split(":"))
    m = re.fullmatch(r"(\d+)(?: (\+*)(-*))?", rest)
    if not m or int(m.group(1)) != n:
        errs.append("line %d (%s): expected count %d, got %r" % (i + 1, q, n, rest)); continue
    p, mi = m.group(2) or "", m.group(3) or ""
    if n == 0:
        if p or mi:
            errs.append("line %d (%s): no graph expected for 0, got %r" % (i + 1, q, rest))
        continue
    if not (1 <= len(p) + len(mi) <= 40) or bool(p) != (ins > 0) or bool(mi) != (dels > 0) \
            or (n <= 40 and (len(p), len(mi)) != (ins, dels)):
        errs.append("line %d (%s): bad graph for +%d -%d: %r" % (i + 1, q, ins, dels, rest))
if got[-1:] != exp[-1:]:
    errs.append("totals line: expected %r, got %r" % (exp[-1], got[-1] if got else None))
print("\n".join(errs))
' "$1" <<<"$OUT")
  [ -z "$msg" ] || fail "mbx diff --stat:
$(sed 's/^/    /' <<<"$msg")
  output:
$(sed 's/^/    | /' <<<"$OUT")"
}

# ------------------------------------------------------------------ 1. every kind

part_kinds() {
  local u=$1 b s=d-main
  b=$(fixture_base "$u")
  local add=/etc/$b-add del=/etc/$b-del mod=/etc/$b-mod new=/etc/$b-new old=/etc/$b-old
  local tab=$'/etc/'"$b"$'-tab\t"q' todir=/etc/$b-todir tolink=/etc/$b-tolink
  local tree=/etc/$b-tree treex=/etc/$b-tree-x
  local bin=/usr/local/bin/$b-bin chm=/usr/local/bin/$b-chmod link=/usr/local/bin/$b-link
  local qtab="\"/etc/$b-tab\\t\\\"q\""   # "/etc/B-tab\t\"q"
  absent_on_host "$add" "$new" "$tab" "$tree" "$treex" "$link"
  host_fixture "$del" root:root 644 $'delete me\nreally\n'
  host_fixture "$mod" root:root 644 $'alpha\nbeta\ngamma\ndelta\nepsilon\n'
  host_fixture "$old" root:root 644 $'renamed\n'
  host_fixture "$todir" root:root 644 ''
  host_fixture "$tolink" root:root 644 ''
  host_fixture "$chm" root:root 644 $'#!/bin/sh\necho chmod\n'
  [ -e "$bin" ] && fail "fixture $bin already exists on the host"
  on_cleanup "rm -f '$bin'"
  printf '\177ELF\000\001\002\000old binary\n' >"$bin"
  chmod 755 "$bin"
  host_snapshot "$add" "$del" "$mod" "$new" "$old" "$tab" "$todir" "$tolink"
  host_snapshot -R "$tree"
  host_snapshot "$treex" "$bin" "$chm" "$link"

  # two: 100 lines (--stat scales its graph to at most 40 characters)
  mbx_as "$u" run --session "$s" -- sh -c '
set -e
printf "added\n" >"$1"
rm "$2"
printf "alpha\nbeta\nGAMMA\nDELTA\nepsilon\nzeta\n" >"$3"
mv "$5" "$4"
printf "tab quote\n" >"$6"
rm "$7"; mkdir "$7"
ln -sf "${3##*/}" "$8"
mkdir -p "$9/sub"
printf "one\n" >"$9/one"; chmod 600 "$9/one"
seq 1 100 >"$9/sub/two"; chmod 4755 "$9/sub/two"
chmod 700 "$9/sub"
stat -c "%u:%g %A" "$8"
shift 9
printf "tree x\n" >"$1"; chown 123:456 "$1"
printf "\000\377\000new binary\000" >"$2"
chmod 755 "$3"
ln -s "/etc/${4##*/}" "$5"
stat -c "%u:%g %A" "$5"
' sh "$add" "$del" "$mod" "$new" "$old" "$tab" "$todir" "$tolink" "$tree" \
     "$treex" "$bin" "$chm" "${add}" "$link"
  assert_rc 0 "mbx run (changes of every kind)"
  # What the sandbox presents for the symlinks (their owner and mode in --json).
  assert_eq "0:0 lrwxrwxrwx
0:0 lrwxrwxrwx" "$OUT" "stat of the new symlinks inside the run"
  host_unchanged "after the run"

  local expect
  expect="A $add
D $del
M $mod
A $new
D $old
A $qtab
T $todir
T $tolink
A $tree
A $treex
A $tree/one
A $tree/sub
A $tree/sub/two
M $bin
m $chm
A $link"
  mbx_ok "$u" diff "$s"
  assert_eq "$expect" "$OUT" "mbx diff $s"
  assert_eq "" "$ERR" "mbx diff $s: stderr"
  mbx_ok "$u" diff
  assert_eq "$expect" "$OUT" "mbx diff (default: the most recent session)"
  mbx_ok "$u" diff --no-pager "$s"
  assert_eq "$expect" "$OUT" "mbx diff --no-pager $s"

  # --json
  mbx_ok "$u" diff --json "$s"
  assert_eq "session \"$s\"
\"$add\" A null file 0644 0 0 -
\"$del\" D null file - - - -
\"$mod\" M null file 0644 0 0 -
\"$new\" A null file 0644 0 0 -
\"$old\" D null file - - - -
$qtab A null file 0644 0 0 -
\"$todir\" T null dir 0755 0 0 -
\"$tolink\" T null symlink 0777 0 0 \"$b-mod\"
\"$tree\" A null dir 0755 0 0 -
\"$treex\" A null file 0644 123 456 -
\"$tree/one\" A null file 0600 0 0 -
\"$tree/sub\" A null dir 0700 0 0 -
\"$tree/sub/two\" A null file 4755 0 0 -
\"$bin\" M null file 0755 0 0 -
\"$chm\" m null file 0755 0 0 -
\"$link\" A null symlink 0777 0 0 \"$add\"" "$(json_lines)" "mbx diff --json $s"

  # --stat: insertions 1+1+1+1+1+100 (added files) + 3 (mod); deletions 2 (del) +
  # 1 (old) + 2 (mod); the host files replaced by a directory and a symlink are empty.
  mbx_ok "$u" diff --stat "$s"
  printf '%s\t%s\n' \
    "$add" 1:1:0 "$del" 2:0:2 "$mod" 5:3:2 "$new" 1:1:0 "$old" 1:0:1 "$qtab" 1:1:0 \
    "$todir" 0:0:0 "$tolink" 0:0:0 "$tree" 0:0:0 "$treex" 1:1:0 "$tree/one" 1:1:0 \
    "$tree/sub" 0:0:0 "$tree/sub/two" 100:100:0 "$bin" Bin "$chm" 0:0:0 "$link" 0:0:0 \
    >"$T/stat-$u"
  echo " 16 files changed, 108 insertions(+), 5 deletions(-)" >>"$T/stat-$u"
  check_stat "$T/stat-$u"
  mbx_ok "$u" diff --stat "$s" "$mod" "$del"
  assert_eq " $del | 2 --
 $mod | 5 +++--
 2 files changed, 3 insertions(+), 4 deletions(-)" "$OUT" "mbx diff --stat $s $mod $del"

  # -p
  mbx_ok "$u" diff -p "$s"
  local plain_patch=$OUT
  assert_eq "$expect" "$(entry_lines)" "mbx diff -p: the entry lines"
  assert_eq "M $mod
--- a${mod}
+++ b${mod}
@@ -1,5 +1,6 @@
 alpha
 beta
-gamma
-delta
+GAMMA
+DELTA
 epsilon
+zeta" "$(patch_block "M $mod")" "mbx diff -p: the modified text file"
  assert_eq "A $add
--- /dev/null
+++ b${add}
@@ -0,0 +1 @@
+added" "$(patch_block "A $add")" "mbx diff -p: the added file"
  assert_eq "D $del
--- a${del}
+++ /dev/null
@@ -1,2 +0,0 @@
-delete me
-really" "$(patch_block "D $del")" "mbx diff -p: the deleted file"
  assert_eq "m $chm
old mode 100644
new mode 100755" "$(patch_block "m $chm")" "mbx diff -p: the mode change"
  assert_eq "M $bin
Binary files a${bin} and b${bin} differ" "$(patch_block "M $bin")" "mbx diff -p: the binary file"
  assert_eq "A $link
symlink -> $add" "$(patch_block "A $link")" "mbx diff -p: the new symlink"
  assert_contains "$(patch_block "T $tolink")" "symlink -> $b-mod" "mbx diff -p: the file replaced by a symlink"
  local mod_block
  mod_block=$(patch_block "M $mod")
  mbx_ok "$u" diff --patch "$s" "$mod"
  assert_eq "$mod_block" "$OUT" "mbx diff --patch $s $mod"

  # path filters: whole components; several; a deletion; the default session
  local tree_lines="A $tree
A $tree/one
A $tree/sub
A $tree/sub/two"
  mbx_ok "$u" diff "$s" "$tree"
  assert_eq "$tree_lines" "$OUT" "mbx diff $s $tree (not $treex)"
  mbx_ok "$u" diff "$tree"
  assert_eq "$tree_lines" "$OUT" "mbx diff $tree (default session)"
  mbx_ok "$u" diff "$s" "$tree/sub"
  assert_eq "A $tree/sub
A $tree/sub/two" "$OUT" "mbx diff $s $tree/sub"
  mbx_ok "$u" diff "$s" "${tree%e}"
  assert_eq "" "$OUT" "mbx diff $s ${tree%e} (a prefix of names, not of components)"
  mbx_ok "$u" diff "$s" "$old" "$link" "$new"
  assert_eq "A $new
D $old
A $link" "$OUT" "mbx diff $s $old $link $new"
  mbx_ok "$u" diff "$s" /usr/local/bin
  assert_eq "M $bin
m $chm
A $link" "$OUT" "mbx diff $s /usr/local/bin"
  mbx_ok "$u" diff --json "$s" "$tree"
  assert_eq "session \"$s\"
\"$tree\" A null dir 0755 0 0 -
\"$tree/one\" A null file 0600 0 0 -
\"$tree/sub\" A null dir 0700 0 0 -
\"$tree/sub/two\" A null file 4755 0 0 -" "$(json_lines)" "mbx diff --json $s $tree"

  # colours: none unless --color=always
  local mode
  for mode in never auto; do
    mbx_ok "$u" diff "--color=$mode" -p "$s"
    [[ $OUT$ERR == *"$ESC"* ]] && fail "mbx diff --color=$mode -p (stdout not a terminal): escape sequences in the output"
    assert_eq "$plain_patch" "$OUT" "mbx diff --color=$mode -p"
  done
  [[ $plain_patch == *"$ESC"* ]] && fail "mbx diff -p to a file: escape sequences in the output"
  mbx_ok "$u" diff --color=always "$s"
  [[ $OUT == *"${ESC}["* ]] || fail "mbx diff --color=always: no escape sequences"
  assert_eq "$expect" "$(strip_ansi <<<"$OUT")" "mbx diff --color=always, escapes removed"
  assert_contains "$(grep -F "$add" <<<"$OUT" | head -n 1)" "${ESC}[32m" "mbx diff --color=always: the A line green"
  assert_contains "$(grep -F "$del" <<<"$OUT")" "${ESC}[31m" "mbx diff --color=always: the D line red"
  mbx_ok "$u" diff --color=always -p "$s" "$mod"
  local colored=$OUT
  assert_eq "$mod_block" "$(strip_ansi <<<"$colored")" "mbx diff --color=always -p $s $mod, escapes removed"
  assert_contains "$(grep -F -- "+GAMMA" <<<"$colored")" "${ESC}[32m" "mbx diff --color=always -p: '+' lines green"
  assert_contains "$(grep -F -- "-gamma" <<<"$colored")" "${ESC}[31m" "mbx diff --color=always -p: '-' lines red"

  # a pipe: no pager even if PAGER would fail, no colours
  local exe
  exe=$(user_exe "$u" "$MBX")
  capture_as "$u" sh -c '{ PAGER=false MANPAGER=false "$0" diff -p "$1"; echo "rc=$?"; } | cat' "$exe" "$s"
  assert_rc 0 "mbx diff -p | cat"
  assert_eq "$plain_patch
rc=0" "$OUT" "PAGER=false mbx diff -p $s | cat"
  capture_as "$u" sh -c '{ PAGER=false "$0" diff --color=auto "$1"; echo "rc=$?"; } | cat' "$exe" "$s"
  assert_eq "$expect
rc=0" "$OUT" "PAGER=false mbx diff --color=auto $s | cat"

  host_unchanged "after mbx diff"
  check_no_leftovers
}

# ------------------------------------------------------------------ 2. conflicts

part_conflicts() {
  local u=$1 b s=d-conflict
  b=$(fixture_base "$u")
  local f=/etc/$b-cf g=/etc/$b-cg h=/etc/$b-ch n=/etc/$b-cn
  host_fixture "$f" root:root 644 $'f on the host\n'
  host_fixture "$g" root:root 644 $'g on the host\n'
  host_fixture "$h" root:root 644 $'h on the host\n'
  absent_on_host "$n"
  host_snapshot "$f" "$g" "$h" "$n"
  mbx_as "$u" run --session "$s" -- sh -c '
set -e
printf "f in the sandbox\n" >"$1"
printf "g in the sandbox\n" >>"$2"
rm "$3"
printf "n in the sandbox\n" >"$4"
' sh "$f" "$g" "$h" "$n"
  assert_rc 0 "mbx run (changes to be overtaken by the host)"
  host_unchanged "after the run"
  mbx_ok "$u" diff "$s"
  assert_eq "M $f
M $g
D $h
A $n" "$OUT" "mbx diff $s before the host changes"

  echo >>"$f"
  rm "$g"
  printf 'n made on the host\n' >"$n"
  chmod 644 "$n"
  host_snapshot

  mbx_ok "$u" diff "$s"
  local expect="C $f
C $g
D $h
C $n"
  assert_eq "$expect" "$OUT" "mbx diff $s after the host changed f, deleted g, created n"
  mbx_ok "$u" diff
  assert_eq "$expect" "$OUT" "mbx diff (default session) with conflicts"
  mbx_ok "$u" diff --json "$s"
  assert_eq "session \"$s\"
\"$f\" M host-changed file 0644 0 0 -
\"$g\" M host-vanished file 0644 0 0 -
\"$h\" D null file - - - -
\"$n\" A host-appeared file 0644 0 0 -" "$(json_lines)" "mbx diff --json $s with conflicts"
  mbx_ok "$u" diff -p "$s"
  assert_eq "$expect" "$(entry_lines)" "mbx diff -p $s: the entry lines with conflicts"
  mbx_ok "$u" diff --color=always "$s"
  assert_eq "$expect" "$(strip_ansi <<<"$OUT")" "mbx diff --color=always $s, escapes removed"
  local c
  for c in "$f" "$g" "$n"; do
    assert_contains "$(grep -F -- "$c" <<<"$OUT")" "${ESC}[" "mbx diff --color=always: the C line of $c"
  done
  host_unchanged "after mbx diff with conflicts"
}

# ------------------------------------------------------------------ 3. errors

part_errors() {
  local u=$1
  mbx_as "$u" diff nosuch
  assert_mbx_error "nosuch|session" "mbx diff nosuch"
  mbx_as "$u" diff nosuch /etc
  assert_mbx_error "nosuch|session" "mbx diff nosuch /etc"
  mbx_as "$u" diff d-main etc/passwd
  assert_mbx_error "etc/passwd|relative|absolute" "mbx diff d-main etc/passwd"
  mbx_as "$u" diff d-main /etc ./x
  assert_mbx_error "\./x|relative|absolute" "mbx diff d-main /etc ./x"
  mbx_as "$u" diff --bogus d-main
  assert_mbx_error "bogus|option" "mbx diff --bogus"
  mbx_as "$u" diff --color=sometimes d-main
  assert_mbx_error "sometimes|color" "mbx diff --color=sometimes"
  assert_eq "" "$OUT" "stdout of the failed mbx diff"
}

# ------------------------------------------------------------------ 4. unchanged copy-up

part_unchanged() {
  local u=$1 b s=d-same
  b=$(fixture_base "$u")
  local f=/etc/$b-same g=/usr/local/bin/$b-touched h=/etc/$b-chmod-same
  host_fixture "$f" root:root 644 $'same\n'
  host_fixture "$g" root:root 755 $'#!/bin/sh\necho same\n'
  host_fixture "$h" root:root 644 $'same mode\n'
  host_snapshot "$f" "$g" "$h"
  # (An open for writing alone copies nothing up: the first write does.)
  mbx_as "$u" run --session "$s" -- sh -c 'printf same | dd of="$1" bs=4 count=1 conv=notrunc status=none; touch "$2"; chmod 644 "$3"' sh "$f" "$g" "$h"
  assert_rc 0 "mbx run (copy-ups without change)"
  host_unchanged "after the run"
  # The test is only meaningful if the file was copied up into the layer.
  [ -f "$(mbx_home "$u")/$s/layer$f" ] ||
    fail "precondition: writing the same bytes over $f did not copy it up into $(mbx_home "$u")/$s/layer"
  mbx_ok "$u" diff "$s"
  assert_eq "" "$OUT" "mbx diff $s after copy-ups that changed nothing"
  mbx_ok "$u" diff -p "$s"
  assert_eq "" "$OUT" "mbx diff -p $s after copy-ups that changed nothing"
  mbx_ok "$u" diff --json "$s"
  assert_eq "session \"$s\"" "$(json_lines)" "mbx diff --json $s after copy-ups that changed nothing"
  host_unchanged "after mbx diff"
}

for u in $(test_users root mbxtest); do
  as_user "$u"
  part "every kind of change ($u)" part_kinds "$u"
  part "conflicts ($u)" part_conflicts "$u"
  part "errors ($u)" part_errors "$u"
  part "unchanged copy-up ($u)" part_unchanged "$u"
  check_no_leftovers
done
e2e_done
