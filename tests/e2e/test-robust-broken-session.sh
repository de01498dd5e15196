#!/usr/bin/env bash
# Robustness: damaged session state and bad session names. As root and as mbxtest:
#  1. $MBX_HOME/NAME/meta replaced by garbage (random bytes; also an empty file and
#     truncated JSON): `mbx status NAME` and `mbx run --session NAME -- true` fail
#     with exit 125 and one line "mbx: ..." naming the session and the mbx command
#     to run about it; `mbx list` still lists the other sessions; `mbx discard NAME`
#     then works and the name can be used again; the other session is untouched.
#  2. garbage in a layer entry's user.containers.override_stat (set while no run is
#     active; on an added file, a copied-up file and a directory; also garbage in
#     user.mbx.origin): nothing crashes, `mbx run --session NAME -- stat FILE` exits
#     0, an unparseable record falls back to the file's real type (content readable),
#     `mbx status` still works and lists the same changes.
#  3. session names with a slash, starting with '.' or '-', or '.'/'..' are refused
#     with exit 125 (run, status, discard) and create nothing anywhere.
. "$(dirname "$0")/lib.sh"
e2e_init

command -v setfattr >/dev/null || fail "setfattr (package attr) is needed"

# The random garbage: fixed bytes (reproducible), not valid UTF-8 nor JSON.
garbage_file() { printf '\x89PNG\r\n\x1a\n\x00\x00\xff\xfe{"version":\x01\x02 garbage \xc3\x28 }}}' >"$1"; }

# list_names: the names in `mbx list --json` output in OUT, sorted (entries for broken
# sessions may lack the other fields).
list_names() {
  python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert isinstance(d, list), "top level must be an array"
for n in sorted(s["name"] for s in d):
    print(n)
' <<<"$OUT" || fail "mbx list --json: not a JSON array of objects with a name:
$(sed 's/^/    | /' <<<"$OUT")"
}

# The parts of 1., each after "$MBX_HOME/bad/meta" was damaged ($kind).
meta_status() {
  mbx_as "$u" status bad
  assert_mbx_error "bad" "mbx status of a session with $kind meta"
  assert_match "$ERR" "mbx [a-z]+ bad" "the error must say which mbx command to run about session bad"
}
meta_run() {
  mbx_as "$u" run --session bad -- true
  assert_mbx_error "bad" "mbx run --session of a session with $kind meta"
  assert_match "$ERR" "mbx [a-z]+ bad" "the error must say which mbx command to run about session bad"
  check_no_leftovers
}
meta_others() {
  mbx_as "$u" list
  assert_rc 0 "mbx list with a broken session"
  assert_match "$OUT" "^good " "mbx list must still list session good"
  mbx_as "$u" list --json
  assert_rc 0 "mbx list --json with a broken session"
  list_names | grep -qx good || fail "mbx list --json must still list session good: $OUT"
  mbx_ok "$u" status good
  assert_eq "A $fa" "$OUT" "mbx status good (next to a broken session)"
  mbx_ok "$u" run --session good -- cat "$fa"
  assert_eq good "$OUT" "session good next to a broken session"
}
meta_discard() {
  mbx_as "$u" discard bad
  assert_rc 0 "mbx discard of a session with $kind meta"
  [ ! -e "$mh/bad" ] || fail "mbx discard bad left $mh/bad"
  mbx_ok "$u" list --json
  assert_eq good "$(list_names)" "sessions after discarding bad"
  # The name is free again.
  mbx_ok "$u" run --session bad -- true
  assert_summary bad 0 0 0
  mbx_ok "$u" discard bad
}

broken_meta() {
  for kind in garbage empty truncated; do
    note "meta: $kind"
    mbx_ok "$u" run --session bad -- sh -c 'echo bad >"$1"' sh "$fa"
    meta=$mh/bad/meta
    [ -f "$meta" ] || fail "no $meta after a run of session bad"
    case $kind in
      garbage) garbage_file "$meta" ;;
      empty) : >"$meta" ;;
      truncated) head -c 40 "$meta" >"$T/meta.part" && cat "$T/meta.part" >"$meta" ;;
    esac
    part "status, $kind meta" meta_status
    part "run, $kind meta" meta_run
    part "list and other sessions, $kind meta" meta_others
    part "discard, $kind meta" meta_discard
    rm -rf --one-file-system "$mh/bad"   # in case mbx discard failed
    host_unchanged "after the broken-meta checks ($kind)"
  done
}

garbage_xattrs() {
  mbx_ok "$u" run --session ov -- sh -c 'echo hi >"$1"; echo changed >>"$2"' sh "$fa" "$fm"
  expect_status="A $fa
M $fm"
  mbx_ok "$u" status ov
  assert_eq "$expect_status" "$OUT" "mbx status ov before the damage"
  la=$mh/ov/layer$fa lm=$mh/ov/layer$fm ld=$mh/ov/layer/etc
  for p in "$la" "$lm" "$ld"; do [ -e "$p" ] || fail "expected $p in the layer"; done
  declare -A orig=()
  for p in "$la" "$lm" "$ld"; do
    orig[$p]=$(getfattr --only-values -n user.containers.override_stat "$p") ||
      fail "no user.containers.override_stat on $p"
  done
  long=$(printf '7%.0s' $(seq 3000))
  # Values that are not an owner record at all (each must fall back to the real file).
  for v in 0x89504e470d0a1a0a00fffe 'garbage' '0:0' '::' '0:0:' '4294967296:0:644' '0:0:99999' \
           '-1:-1:644' '0:0:644:bogus' '0:0:644:char' '0:0:644:block1' "0:0:$long" ' 0:0:644'; do
    note "override_stat = ${v:0:40}"
    for p in "$la" "$lm" "$ld"; do setfattr -n user.containers.override_stat -v "$v" "$p"; done
    mbx_as "$u" run --session ov -- stat "$fa"
    assert_rc 0 "mbx run -- stat FILE with a garbage override_stat"
    mbx_as "$u" run --session ov -- sh -c 'stat -c "%F" /etc "$1" "$2"; cat "$1" "$2"' sh "$fa" "$fm"
    assert_rc 0 "reads with a garbage override_stat"
    assert_eq "directory
regular file
regular file
hi
original
changed" "$OUT" "types and contents with a garbage override_stat"
    mbx_as "$u" status ov
    assert_rc 0 "mbx status with a garbage override_stat"
    mbx_as "$u" list --json
    assert_rc 0 "mbx list with a garbage override_stat"
    check_no_leftovers
  done
  # A well-formed record whose type contradicts the real file: no crash either.
  for v in '0:0:644:dir' '0:0:644:char1:3' '0:0:644:pipe'; do
    note "override_stat = $v (contradicts the real type)"
    setfattr -n user.containers.override_stat -v "$v" "$la"
    mbx_as "$u" run --session ov -- stat "$fa"
    assert_rc 0 "mbx run -- stat FILE with override_stat $v"
    mbx_as "$u" status ov
    assert_rc 0 "mbx status with override_stat $v"
    check_no_leftovers
  done
  for p in "$la" "$lm" "$ld"; do setfattr -n user.containers.override_stat -v "${orig[$p]}" "$p"; done
  mbx_ok "$u" status ov
  assert_eq "$expect_status" "$OUT" "mbx status ov with the owner records restored"
  # Garbage origin record on the copied-up file: it must still count as modified.
  for v in 0x00ff 'garbage' '{"v":1}' '{"v":1,"dev":"x","ino":-1}' '[]'; do
    note "origin = $v"
    setfattr -n user.mbx.origin -v "$v" "$lm"
    mbx_as "$u" run --session ov -- cat "$fm"
    assert_rc 0 "mbx run with a garbage origin record"
    assert_eq "original
changed" "$OUT" "content with a garbage origin record"
    mbx_as "$u" status ov
    assert_rc 0 "mbx status with a garbage origin record"
    assert_eq "$expect_status" "$OUT" "mbx status with a garbage origin record"
    check_no_leftovers
  done
  mbx_ok "$u" discard ov
  host_unchanged "after the garbage xattrs"
}

bad_names() {
  local n
  before=$(find "$mh" "$(dirname "$mh")" -maxdepth 1 | sort)
  for n in a/b ../escape /abs .hidden . .. -x --x -rf "a b" "" "$(printf 'a\tb')"; do
    mbx_as "$u" run "--session=$n" -- true
    assert_mbx_error "session|name" "mbx run --session='$n'"
    mbx_as "$u" status -- "$n"
    assert_mbx_error "session|name" "mbx status -- '$n'"
    mbx_as "$u" discard -- "$n"
    assert_mbx_error "session|name" "mbx discard -- '$n'"
  done
  assert_eq "$before" "$(find "$mh" "$(dirname "$mh")" -maxdepth 1 | sort)" "MBX_HOME and its parent after bad names"
  [ ! -e "$(dirname "$mh")/escape" ] || fail "--session=../escape created $(dirname "$mh")/escape"
  [ ! -e /abs ] || fail "--session=/abs created /abs"
  mbx_ok "$u" list --json
  assert_eq good "$(list_names)" "sessions after the bad names"
  check_no_leftovers
  # A name with a newline: refused too, and the error is still one line.
  n=$(printf 'a\nb')
  mbx_as "$u" run "--session=$n" -- true
  assert_mbx_error "session|name" "mbx run --session='a<newline>b'"
  mbx_as "$u" status -- "$n"
  assert_mbx_error "session|name" "mbx status -- 'a<newline>b'"
  assert_eq "$before" "$(find "$mh" "$(dirname "$mh")" -maxdepth 1 | sort)" "MBX_HOME and its parent after bad names"
}

for u in $(test_users root mbxtest); do
  as_user "$u"
  mh=$(mbx_home "$u")
  b=$(fixture_base "$u")
  fa=/etc/$b-added
  fm=/etc/$b-mod
  absent_on_host "$fa"
  host_fixture "$fm" root:root 644 $'original\n'
  host_snapshot /etc "$fa" "$fm"

  mbx_ok "$u" run --session good -- sh -c 'echo good >"$1"' sh "$fa"
  broken_meta
  part "garbage xattrs" garbage_xattrs
  part "bad session names" bad_names
  host_unchanged "at the end"
  check_no_leftovers
done
e2e_done
