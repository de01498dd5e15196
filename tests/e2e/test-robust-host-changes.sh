#!/usr/bin/env bash
# Robustness: while a run is going on, changes the host makes to paths the session has
# not copied up stay visible inside. A long-running `mbx run` (in the background) reads
# a host fixture file every 0.2 s, in a host directory the user can read, and prints
# its content whenever it changes, and whether a second file exists (lookup and
# listing) and its content. The test then, on the host: rewrites the file in place
# (same size, same size with the old mtime put back, then longer, then shorter), replaces it by rename, creates the second
# file, changes it, deletes it. The sandbox must see each change within 3 s (the
# kernel caches names and attributes for 1 s) and never fail to read the file (the
# rename is atomic). A sentinel value ends the loop: exit 0, summary with no changes,
# `mbx status` empty, nothing left. As root and as mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

LIMIT_MS=3000

# The loop inside: $1 $2 = two directories, tagged "host" and "merged". For each,
# prints "TAG content: V" when f's content changes ("TAG ERROR: ..." when f cannot be
# read), and "TAG new: V (listed|unlisted)" when the file new's content (newlines
# shown as |; "<absent>" when a lookup does not find it) or its presence in a listing
# of the directory changes. "stop" in the first f ends it (exit 0).
loop_script='
watch() { # TAG DIR
  if v=$(cat "$2/f"); then :; else echo "$1 ERROR: cannot read $2/f"; v="<error>"; fi
  eval "last=\$last_$1"
  if [ "$v" != "$last" ]; then echo "$1 content: $v"; eval "last_$1=\$v"; fi
  if [ -e "$2/new" ]; then n=$(tr "\n" "|" <"$2/new" || echo "<vanished>"); else n="<absent>"; fi
  if ls -A "$2" | grep -qx new; then n="$n (listed)"; else n="$n (unlisted)"; fi
  eval "lastn=\$lastn_$1"
  if [ "$n" != "$lastn" ]; then echo "$1 new: $n"; eval "lastn_$1=\$n"; fi
}
last_host="" last_merged="" lastn_host="" lastn_merged=""
echo ready
while :; do
  watch host "$1"
  watch merged "$2"
  [ "$last_host" = stop ] && exit 0
  sleep 0.2
done
'

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# seen LOG LINE PID WHAT [N]: LOG gets the line LINE (for the Nth time, default 1)
# within LIMIT_MS of now (the host change was just made); fail if the loop dies or
# time runs out.
seen() {
  local log=$1 line=$2 pid=$3 what=$4 count=${5:-1} start
  start=$(now_ms)
  while :; do
    if [ "$(grep -cxF -- "$line" "$log")" -ge "$count" ]; then
      note "$what: seen inside after $(($(now_ms) - start)) ms"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || fail "$what: the run ended before the sandbox saw '$line'; its output:
$(sed 's/^/    | /' "$log")
  stderr:
$(sed 's/^/    | /' "${log%.out}.err")"
    if [ $(($(now_ms) - start)) -gt "$LIMIT_MS" ]; then
      fail "$what: the sandbox did not see it within $LIMIT_MS ms (expected the line '$line'); its output so far:
$(sed 's/^/    | /' "$log")"
    fi
    sleep 0.05
  done
}

# both WHAT LINE: the same change was made in both directories: wait for
# "host LINE" and "merged LINE".
both() {
  seen "$log.out" "host $2" "$pid" "$1 (host directory)" "${3:-1}"
  seen "$log.out" "merged $2" "$pid" "$1 (directory the session wrote to)" "${3:-1}"
}

for u in $(test_users root mbxtest); do
  as_user "$u"
  d1=/etc/$(fixture_base "$u")-host
  d2=/etc/$(fixture_base "$u")-merged
  absent_on_host "$d1" "$d2"
  for d in "$d1" "$d2"; do
    mkdir -m 755 "$d"
    printf 'value-0001\n' >"$d/f"
    chmod 644 "$d/f"
  done
  # The session copies up the second directory (it adds a file there) but not f in it.
  mbx_ok "$u" run --session "hc-$u" -- sh -c 'echo mine >"$1/mine"' sh "$d2"
  assert_summary "hc-$u" 1 0 0
  log=$T/hc-$u
  bg_mbx_as "$u" "$log" run --session "hc-$u" -- sh -c "$loop_script" sh "$d1" "$d2"
  pid=$BG_PID
  wait_for_line "$log.out" ready 60 "$pid"
  both "the initial content" "content: value-0001"
  both "the initial absence of new" "new: <absent> (unlisted)"
  sleep 1.5   # let the kernel cache the files' attributes and the negative lookups of new

  change() { # WHAT LINE CMD...: run CMD (with D set) in both directories, wait for LINE
    local what=$1 line=$2
    shift 2
    for D in "$d1" "$d2"; do eval "$*"; done
    both "$what" "$line"
    sleep 1.5
  }
  change "in-place rewrite, same size" "content: value-0002" 'printf "value-0002\n" >"$D/f"'
  # mtime put back as rsync or tar would: the ctime still tells.
  change "in-place rewrite, same size, mtime put back" "content: value-002b" \
    'touch -m -r "$D/f" "$D/.ref"; printf "value-002b\n" >"$D/f"; touch -m -r "$D/.ref" "$D/f"; rm "$D/.ref"'
  change "in-place rewrite, longer" "content: value-0003 and longer" 'printf "value-0003 and longer\n" >"$D/f"'
  change "in-place rewrite, shorter" "content: v4" 'printf "v4\n" >"$D/f"'
  change "rename over the file" "content: value-0005 renamed over" \
    'printf "value-0005 renamed over\n" >"$D/.f.tmp"; mv -f "$D/.f.tmp" "$D/f"'
  change "a second rename over the file (same size)" "content: value-0006" \
    'printf "value-0006\n" >"$D/.f.tmp"; mv -f "$D/.f.tmp" "$D/f"'
  change "a new host file" "new: hello| (listed)" 'printf "hello\n" >"$D/new"; chmod 644 "$D/new"'
  change "an append to the new host file" "new: hello|hello again| (listed)" 'printf "hello again\n" >>"$D/new"'
  for D in "$d1" "$d2"; do rm "$D/new"; done
  both "the new host file deleted" "new: <absent> (unlisted)" 2

  for D in "$d2" "$d1"; do printf 'stop\n' >"$D/f"; done
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "the loop did not end within 10 s of the sentinel:
$(sed 's/^/    | /' "$log.out")"
  RC=0
  wait "$pid" || RC=$?
  OUT=$(cat "$log.out") ERR=$(cat "$log.err")
  assert_rc 0 "the background mbx run"
  assert_not_contains "$OUT" "ERROR" "reads of the host files inside"
  assert_contains "$OUT" "host content: stop" "the sentinel"
  assert_summary "hc-$u" 1 0 0
  check_no_leftovers
  mbx_ok "$u" status "hc-$u"
  assert_eq "A $d2/mine" "$OUT" "mbx status after a run that only read"
  mbx_ok "$u" run --session "hc-$u" -- sh -c 'ls -A "$1"; cat "$1/f"' sh "$d2"
  assert_eq "f
mine
stop" "$OUT" "the merged directory in a new run"
  # The sandbox changed nothing on the host: the files are what the test last wrote.
  for D in "$d1" "$d2"; do
    assert_eq "stop" "$(cat "$D/f")" "$D/f on the host after the run"
    assert_eq "f" "$(ls -A "$D")" "$D on the host after the run"
  done
done
e2e_done
