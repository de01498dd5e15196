#!/usr/bin/env bash
# Robustness: file names with a newline, a tab, a double quote, a backslash, spaces,
# non-ASCII UTF-8 and other control characters (ESC, DEL). In a host directory, for
# each such name a file is modified, one deleted and one added inside, and a new
# directory with such a name gets a file. `mbx status` prints every change on one
# line, C-quoted in double quotes like git where the name needs it (\n \t \" \\ and
# octal \033 \177; UTF-8 and spaces as they are), sorted bytewise by path: exact
# expected output. `mbx status --json` has the exact raw paths (parsed with python3).
# A second run sees exactly those names; the host is unchanged. Also names (and a
# command argument) that are not UTF-8. As root and as mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

# The odd parts of the names (after the prefixes a-, d-, m-).
NAMES=(
  $'nl\nx'
  $'tab\tx'
  'q"x'
  'b\x'
  'sp x'
  ' lead and trail '
  'ünï€ 日本'
  $'esc\033x'
  $'del\177x'
  $'mix "\\\t\n é'
)

# expected status|json FILE: from FILE ("KIND\0PATH\0"...), the lines `mbx status`
# must print (git-style C quoting where needed) or, for json, one repr((kind, path))
# per change; both sorted bytewise by path.
expected() {
  python3 -c '
import sys
mode, f = sys.argv[1], open(sys.argv[2], "rb").read().split(b"\0")[:-1]
pairs = sorted(zip(f[0::2], f[1::2]), key=lambda kp: kp[1])
def quote(p):
    if not any(c < 0x20 or c == 0x7f or c in b"\"\\" for c in p):
        return p
    out = b"\""
    for c in p:
        if c == 0x0a: out += b"\\n"
        elif c == 0x09: out += b"\\t"
        elif c == 0x22: out += b"\\\""
        elif c == 0x5c: out += b"\\\\"
        elif c < 0x20 or c == 0x7f: out += b"\\%03o" % c
        else: out += bytes([c])
    return out + b"\""
for k, p in pairs:
    if mode == "status":
        sys.stdout.buffer.write(k + b" " + quote(p) + b"\n")
    else:
        print(repr((k.decode(), p.decode("utf-8"))), flush=True)
' "$1" "$2"
}

# Inside: modify every m-*, delete every d-*, add a-NAME for every m-NAME, and a
# directory "dir NAME0" holding a file named NAME1.
change_script='
set -e
cd "$1"
for f in m-*; do printf "changed\n" >>"$f"; done
for f in d-*; do rm -- "$f"; done
for f in m-*; do printf "added\n" >"a-${f#m-}"; done
mkdir -- "$2"
printf "in dir\n" >"$2/$3"
'
# Lists a directory, one name per line, each shell-quoted (newlines survive).
list_script='cd "$1" && for f in * "$2"/*; do printf "%q\n" "$f"; done'

# The main part: the names above (all valid UTF-8).
utf8_names() {
  d=/etc/$(fixture_base "$u")-names
  absent_on_host "$d"
  mkdir -m 755 "$d"
  for n in "${NAMES[@]}"; do
    printf 'original\n' >"$d/m-$n"
    printf 'delete me\n' >"$d/d-$n"
  done
  newdir="dir ${NAMES[0]}"
  newfile=${NAMES[9]}
  host_snapshot -R "$d"

  # Expected changes: every path, raw, with its kind; sorted bytewise by path.
  : >"$T/expect.tsv"
  for n in "${NAMES[@]}"; do
    printf '%s\0' A "$d/a-$n" D "$d/d-$n" M "$d/m-$n" >>"$T/expect.tsv"
  done
  printf '%s\0' A "$d/$newdir" A "$d/$newdir/$newfile" >>"$T/expect.tsv"
  expect_status=$(expected status "$T/expect.tsv")
  expect_json=$(expected json "$T/expect.tsv")
  # What the listing inside must print: a-*, m-* and the new directory in bytewise
  # order (the glob order under LC_ALL=C), then the file in the new directory.
  expect_list=$(LC_ALL=C DIRNAME="$newdir" FILENAME="$newfile" bash -c '
    names=(); for n in "$@"; do names+=("a-$n" "m-$n"); done; names+=("$DIRNAME")
    printf "%s\0" "${names[@]}" | sort -z | while IFS= read -r -d "" f; do printf "%q\n" "$f"; done
    printf "%q\n" "$DIRNAME/$FILENAME"' bash "${NAMES[@]}")

  mbx_as "$u" run --session names -- sh -c "$change_script" sh "$d" "$newdir" "$newfile"
  assert_rc 0 "mbx run (changes with odd names)"
  n=${#NAMES[@]}
  assert_summary names "$((n + 2))" "$n" "$n"
  host_unchanged "after the run"

  mbx_ok "$u" status names
  assert_eq "$expect_status" "$OUT" "mbx status (C-quoted odd names)"
  assert_eq "$((3 * n + 2))" "$(grep -c '' <<<"$OUT")" "one line per change in mbx status"
  # A few lines written out by hand (not computed by the quoting rules above).
  local line
  for line in 'A "'"$d"'/a-nl\nx"' 'M "'"$d"'/m-tab\tx"' 'D "'"$d"'/d-q\"x"' 'M "'"$d"'/m-b\\x"' \
              "A $d/a-sp x" "D $d/d- lead and trail " "M $d/m-ünï€ 日本" 'A "'"$d"'/a-esc\033x"' \
              'D "'"$d"'/d-del\177x"' 'A "'"$d"'/dir nl\nx/mix \"\\\t\n é"'; do
    grep -qxF -- "$line" <<<"$OUT" || fail "mbx status: no line
    | $line
  in
$(sed 's/^/    | /' <<<"$OUT")"
  done
  mbx_ok "$u" status --json names
  got_json=$(python3 -c '
import json, sys
d = json.loads(sys.stdin.buffer.read().decode("utf-8"))
for c in d["changes"]:
    print(repr((c["kind"], c["path"])))
' <<<"$OUT") || fail "mbx status --json is not valid JSON (UTF-8):
$(sed 's/^/    | /' <<<"$OUT")"
  assert_eq "$expect_json" "$got_json" "mbx status --json: raw paths"

  # A second run sees exactly those names, with the right contents.
  mbx_as "$u" run --session names -- env LC_ALL=C bash -c "$list_script" bash "$d" "$newdir"
  assert_rc 0 "mbx run (listing)"
  assert_eq "$expect_list" "$OUT" "names seen inside in a second run"
  mbx_as "$u" run --session names -- sh -c 'cd "$1"; for f in m-* a-*; do cat -- "$f"; done | sort | uniq -c | sed "s/^ *//"; cat -- "$2/$3"' sh "$d" "$newdir" "$newfile"
  assert_rc 0 "mbx run (contents)"
  assert_eq "$n added
$n changed
$n original
in dir" "$OUT" "contents seen inside"
  assert_summary names "$((n + 2))" "$n" "$n"
  mbx_ok "$u" status names
  assert_eq "$expect_status" "$OUT" "mbx status after the second run"
  host_unchanged "after the second run"
  check_no_leftovers
}

# Names that are not UTF-8 (Latin-1 bytes) are legal on Linux: `mbx status` prints
# them on one line (bytes >= 0x80 as they are, like the UTF-8 ones), `mbx status
# --json` still gives valid JSON with one record per change, and a command whose
# argument is not UTF-8 still gets its exit status and the summary from `mbx run`.
latin1_names() {
  local d2 n1=$'caf\351' n2=$'\377\376 x' n3=$'\351t\351'
  d2=/etc/$(fixture_base "$u")-latin1
  absent_on_host "$d2"
  mkdir -m 755 "$d2"
  printf 'original\n' >"$d2/m-$n1"
  printf 'delete me\n' >"$d2/d-$n3"
  host_snapshot -R "$d2"
  printf '%s\0' A "$d2/a-$n2" D "$d2/d-$n3" M "$d2/m-$n1" >"$T/latin1.tsv"
  # (the names are made inside: the arguments of this run stay ASCII)
  mbx_as "$u" run --session latin1 -- sh -c 'cd "$1"; echo changed >>"m-$(printf "caf\351")"
    echo new >"a-$(printf "\377\376 x")"; rm "d-$(printf "\351t\351")"' sh "$d2"
  assert_rc 0 "mbx run (changes with Latin-1 names)"
  assert_summary latin1 1 1 1
  host_unchanged "after the run with Latin-1 names"
  mbx_ok "$u" status latin1
  assert_eq "$(expected status "$T/latin1.tsv")" "$OUT" "mbx status with Latin-1 names"
  mbx_as "$u" status --json latin1
  assert_rc 0 "mbx status --json with Latin-1 names"
  got=$(python3 -c '
import json, sys
d = json.loads(sys.stdin.buffer.read())
for c in d["changes"]:
    assert c["path"].startswith(sys.argv[1] + "/"), c["path"]
    print(c["kind"])
' "$d2" <<<"$OUT") || fail "mbx status --json with Latin-1 names: not valid JSON with the changes:
$(sed 's/^/    | /' <<<"$OUT")"
  assert_eq "A
D
M" "$got" "kinds in mbx status --json with Latin-1 names"
  check_no_leftovers
}

latin1_argv() {
  mbx_as "$u" run --session latin1-argv -- sh -c 'exit 3' sh $'caf\351'
  assert_rc 3 "mbx run -- CMD with a Latin-1 argument: the command's status"
  assert_summary latin1-argv 0 0 0
  mbx_as "$u" run --session latin1-argv -- true
  assert_rc 0 "the next run of that session"
  assert_summary latin1-argv 0 0 0
  mbx_as "$u" list --json
  assert_rc 0 "mbx list --json after a command with a Latin-1 argument"
  python3 -c 'import json, sys; json.loads(sys.stdin.buffer.read())' <<<"$OUT" ||
    fail "mbx list --json: not valid JSON: $OUT"
  check_no_leftovers
}

for u in $(test_users root mbxtest); do
  as_user "$u"
  part "UTF-8 and control characters" utf8_names
  part "Latin-1 names" latin1_names
  part "Latin-1 command argument" latin1_argv
done
e2e_done
