# shellcheck shell=bash
# Helpers for the mbx end-to-end tests. Each tests/e2e/test-*.sh does
#
#     . "$(dirname "$0")/lib.sh"
#     e2e_init
#     ... checks, using mbx_as / run_as / host_snapshot / assert_* / fail ...
#     e2e_done
#
# and runs alone as root:  MBX=build/src/mbx bash tests/e2e/test-x.sh
# (exit 0 = pass). If the test users are missing it runs setup.sh itself and
# teardown.sh at exit. Environment:
#   MBX            mbx binary (default: <repo>/build/src/mbx)
#   FS_SEMANTICS   fs-semantics binary (default: <repo>/build/tests/fs/fs-semantics)
#   E2E_ONLY_USERS restrict the users a test runs as, e.g. E2E_ONLY_USERS=mbxtest
#   E2E_CMD_TIMEOUT  seconds one mbx invocation may take (default 120)
#   E2E_PASSENV    names of extra variables to pass into every run (e.g. a log level)
#   E2E_KEEP=1     keep the per-test temp dirs for inspection
set -eEuo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
umask 022

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$E2E_DIR/../.." && pwd)
# shellcheck source=SCRIPTDIR/accounts.sh
. "$E2E_DIR/accounts.sh"

MBX=${MBX:-$REPO/build/src/mbx}
FS_SEMANTICS=${FS_SEMANTICS:-$REPO/build/tests/fs/fs-semantics}
case $MBX in /*) ;; *) MBX=$PWD/$MBX ;; esac
case $FS_SEMANTICS in /*) ;; *) FS_SEMANTICS=$PWD/$FS_SEMANTICS ;; esac
E2E_CMD_TIMEOUT=${E2E_CMD_TIMEOUT:-120}

TEST_NAME=$(basename "$0" .sh)
TEST_NAME=${TEST_NAME#test-}
TEST_ID=$TEST_NAME-$$
# Every process a test starts carries MBX_E2E_TAG=$E2E_TAG in its environment, so
# leftovers (mbx itself and anything in its sandbox) can be found precisely.
E2E_TAG=mbx-e2e-$TEST_ID
E2E_CTX=""          # "as mbxtest" etc., added to failure messages
T=""                # per-test temp dir (root only), see e2e_init
OUT="" ERR="" RC=0  # results of the last mbx_as / capture_as

_e2e_did_setup=0
_e2e_done=0

# ---------------------------------------------------------------- reporting

fail() {
  echo "FAIL [$TEST_NAME${E2E_CTX:+, $E2E_CTX}]: $*" >&2
  [ -n "$T" ] && : >"$T/.failed"
  exit 1
}

note() { echo "--- $*"; }

assert_eq() { # EXPECTED ACTUAL WHAT
  local exp=$1 act=$2 what=${3:-value}
  [ "$exp" = "$act" ] && return 0
  fail "$what: expected
$(sed 's/^/    | /' <<<"$exp")
  got
$(sed 's/^/    | /' <<<"$act")
  diff (expected -> got):
$( { diff <(printf '%s\n' "$exp") <(printf '%s\n' "$act") || true; } | sed 's/^/    /')"
}

assert_contains() { # HAYSTACK NEEDLE WHAT   (fixed string)
  grep -qF -- "$2" <<<"$1" && return 0
  fail "${3:-output}: expected to contain '$2', got:
$(sed 's/^/    | /' <<<"$1")"
}

assert_not_contains() { # HAYSTACK NEEDLE WHAT
  grep -qF -- "$2" <<<"$1" || return 0
  fail "${3:-output}: must not contain '$2', got:
$(sed 's/^/    | /' <<<"$1")"
}

assert_match() { # HAYSTACK ERE WHAT   (some line matches)
  grep -qE -- "$2" <<<"$1" && return 0
  fail "${3:-output}: expected a line matching /$2/, got:
$(sed 's/^/    | /' <<<"$1")"
}

# assert_rc EXPECTED WHAT: the last mbx_as/capture_as exited with EXPECTED.
assert_rc() {
  [ "$RC" = "$1" ] && return 0
  local extra=""
  [ "$RC" = 124 ] && extra=" (timed out after ${E2E_CMD_TIMEOUT}s)"
  fail "${2:-exit status}: expected exit $1, got $RC$extra
  stdout:
$(tail -n 30 <<<"$OUT" | sed 's/^/    | /')
  stderr:
$(tail -n 30 <<<"$ERR" | sed 's/^/    | /')"
}

# assert_mbx_error WORD WHAT: last command failed the way mbx's own errors must:
# exit 125, exactly one line on stderr, starting with "mbx: ", mentioning WORD
# (case-insensitive; an ERE).
assert_mbx_error() {
  local word=$1 what=${2:-mbx error}
  assert_rc 125 "$what"
  local n
  n=$(printf '%s' "$ERR" | grep -c '' || true)
  [ "$n" = 1 ] || fail "$what: expected a one-line error on stderr, got $n lines:
$(sed 's/^/    | /' <<<"$ERR")"
  [[ $ERR == "mbx: "* ]] || fail "$what: error line must start with 'mbx: ', got: $ERR"
  grep -qiE -- "$word" <<<"$ERR" || fail "$what: error must say what to fix (mention /$word/), got: $ERR"
}

# part NAME FUNC: run FUNC, one independent part of the test, in a subshell, so that
# its failure (reported, and failing the test at the end) does not hide the others.
_part_err() {
  [ "$BASH_SUBSHELL" -gt 1 ] && return 0
  echo "FAIL [$TEST_NAME${E2E_CTX:+, $E2E_CTX}]: unexpected error (status $1) at line $2: $3" >&2
  : >"$T/.failed"
}
part() {
  local name=$1 rc
  shift
  note "part: $name"
  set +e
  (
    trap '_part_err $? $LINENO "$BASH_COMMAND"' ERR
    set -e
    "$@"
  )
  rc=$?
  set -e
  if [ "$rc" != 0 ]; then
    : >"$T/.failed"
    echo "--- part '$name' failed; going on with the next part"
  fi
  return 0
}

# ---------------------------------------------------------------- lifecycle

# on_cleanup CMD: run CMD (a one-line string for eval) at exit, last registered
# first. Kept in a file so that registrations made in subshells count too.
on_cleanup() { printf '%s\n' "$1" >>"$T/.cleanups"; }

_e2e_err() {
  local rc=$1 line=$2 cmd=$3
  # In a subshell ($(...)), the command that used its output reports the failure.
  [ "$BASH_SUBSHELL" -gt 0 ] && return 0
  [ -n "$T" ] && [ -e "$T/.failed" ] && return 0
  echo "FAIL [$TEST_NAME${E2E_CTX:+, $E2E_CTX}]: unexpected error (status $rc) at ${BASH_SOURCE[1]##*/}:$line: $cmd" >&2
  [ -n "$T" ] && : >"$T/.failed"
  return 0
}

_e2e_exit() {
  local rc=$?
  set +eE
  trap - ERR
  # A failure reported in a subshell ($(...)) fails the test even if the shell went on.
  if [ "$rc" = 0 ] && [ -n "$T" ] && [ -e "$T/.failed" ]; then rc=1; fi
  _kill_leftovers
  _detach_new_fuse_mounts
  local c
  if [ -n "$T" ] && [ -f "$T/.cleanups" ]; then
    while IFS= read -r c; do
      eval "$c" || echo "note: cleanup step failed: $c" >&2
    done < <(tac "$T/.cleanups")
  fi
  if [ -n "$T" ] && [ -d "$T" ]; then
    if [ "${E2E_KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf --one-file-system "$T"; fi
  fi
  if [ "$_e2e_did_setup" = 1 ]; then
    bash "$E2E_DIR/teardown.sh" >/dev/null || { echo "note: teardown.sh failed" >&2; rc=1; }
  fi
  if [ "$rc" = 0 ] && [ "$_e2e_done" != 1 ]; then
    echo "FAIL [$TEST_NAME]: test ended without reaching e2e_done" >&2
    rc=1
  fi
  if [ "$rc" = 0 ]; then echo "PASS $TEST_NAME"; else echo "FAIL $TEST_NAME (exit $rc)" >&2; fi
  exit "$rc"
}

# e2e_init: checks, temp dir, traps, leftover baselines; runs setup.sh if needed.
e2e_init() {
  [ "$(id -u)" = 0 ] || { echo "FAIL [$TEST_NAME]: run the e2e tests as root (they switch to test users with setpriv)" >&2; exit 1; }
  trap '_e2e_err $? $LINENO "$BASH_COMMAND"' ERR
  trap _e2e_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  T=$(mktemp -d /tmp/mbx-e2e.XXXXXX)
  [ -x "$MBX" ] || fail "mbx binary not found at $MBX (build with: ninja -C build, or set MBX=)"
  MBX=$(readlink -f "$MBX")
  _fuse_mounts >"$T/.fuse-baseline"
  _E2E_START=$(_starttime $$)
  _e2e_ensure_setup
  note "test $TEST_NAME, mbx $MBX, temp $T"
}

_e2e_ensure_setup() {
  local ok=1 u
  for u in "${E2E_USERS[@]}"; do e2e_user_is_ours "$u" || ok=0; done
  [ "$(stat -c %a /dev/fuse 2>/dev/null)" = 666 ] || ok=0
  grep -q '^mbxtest:' /etc/subuid 2>/dev/null || ok=0
  [ "$ok" = 1 ] && return 0
  note "test users not set up: running setup.sh (teardown.sh runs at exit)"
  _e2e_did_setup=1
  bash "$E2E_DIR/setup.sh" || fail "setup.sh failed"
}

# e2e_done: final leftover checks, then pass.
e2e_done() {
  E2E_CTX=""
  check_no_leftovers
  _e2e_done=1
  exit 0
}

# test_users DEFAULT...: the users to run as (E2E_ONLY_USERS in the environment narrows it).
test_users() {
  local u
  for u in "$@"; do
    if [ -z "${E2E_ONLY_USERS:-}" ] || [[ " $E2E_ONLY_USERS " == *" $u "* ]]; then echo "$u"; fi
  done
}

# as_user USER: start the part of a test that runs as USER (creates its area now,
# before any host_snapshot of its home).
as_user() {
  E2E_CTX="as $1"
  echo "=== as $1"
  user_area "$1" >/dev/null
}

# fixture_base USER: a name unique to this test and user for host paths.
fixture_base() { echo "mbx-e2e-$TEST_ID-$1"; }

# ---------------------------------------------------------------- users and running

user_home() { getent passwd "$1" | cut -d: -f6; }

# user_area USER: per-test directory under the user's home, owned by the user,
# removed at exit: <home>/.mbx-e2e/<test>-<pid>. MBX_HOME is <area>/mbx.
user_area() {
  local u=$1 home
  home=$(user_home "$u")
  [ -n "$home" ] && [ -d "$home" ] || fail "user $u has no home directory"
  local a="$home/.mbx-e2e/$TEST_ID"
  if [ ! -d "$a" ]; then
    mkdir -p "$a"
    chown "$u:" "$home/.mbx-e2e" "$a"
    on_cleanup "rm -rf --one-file-system '$a'; rmdir '$home/.mbx-e2e' 2>/dev/null || true"
  fi
  echo "$a"
}

mbx_home() { echo "$(user_area "$1")/mbx"; }

# user_project USER NAME: a copy of tests/e2e/project owned by USER in USER's
# area; prints its path.
user_project() {
  local p
  p=$(user_area "$1")/$2
  cp -r "$E2E_DIR/project" "$p"
  chown -R "$1:" "$p"
  echo "$p"
}

# user_exe USER PATH [view]: PATH if USER can execute it, else a copy in the user's
# area (e.g. when the build directory is under /root). With "view", the program is to
# run inside the sandbox, where /tmp and /var/tmp are private: copy it from there too.
user_exe() {
  local u=$1 p=$2 where=${3:-}
  case $where:$p in view:/tmp/* | view:/var/tmp/*) ;; *)
    if [ "$u" = root ] || setpriv --reuid="$u" --regid="$u" --init-groups -- test -x "$p" 2>/dev/null; then
      echo "$p"
      return
    fi ;;
  esac
  local d
  d="$(user_area "$u")/bin"
  if [ ! -x "$d/$(basename "$p")" ]; then
    mkdir -p "$d"
    cp "$p" "$d/"
    chown -R "$u:" "$d"
  fi
  echo "$d/$(basename "$p")"
}

# as_cmd USER: sets the array AS to the command prefix that runs a program as USER
# with a clean environment: HOME, PATH, USER, LOGNAME, SHELL, LANG, MBX_HOME (per
# test, under the user's home), MBX_E2E_TAG. No fork in the chain (env and setpriv
# exec), so the pid of "${AS[@]}" prog is prog's pid.
as_cmd() {
  local u=$1 home uid gid v
  home=$(user_home "$u")
  uid=$(id -u "$u") gid=$(id -g "$u")
  AS=(env -i "HOME=$home" "PATH=$PATH" "USER=$u" "LOGNAME=$u" "SHELL=/bin/sh" "LANG=C.UTF-8"
      "MBX_HOME=$(mbx_home "$u")" "MBX_E2E_TAG=$E2E_TAG")
  for v in ${E2E_PASSENV:-}; do
    [ -n "${!v+x}" ] && AS+=("$v=${!v}")
  done
  if [ "$u" != root ]; then
    AS+=(setpriv "--reuid=$uid" "--regid=$gid" --init-groups --)
  fi
}

# run_as USER CMD...: run CMD as USER (clean env, stdin from /dev/null).
run_as() {
  local u=$1
  shift
  as_cmd "$u"
  "${AS[@]}" "$@" </dev/null
}

# capture_as USER CMD...: run CMD as USER under a timeout; sets OUT, ERR, RC and
# logs the command and its output.
capture_as() {
  local u=$1
  shift
  as_cmd "$u"
  echo "+ [$u] $(printf '%q ' "$@")"
  capture_raw "${AS[@]}" "$@"
}

# capture_raw CMD...: run CMD as is under a timeout; sets OUT, ERR, RC and logs them.
capture_raw() {
  RC=0
  # From / so that where the suite runs (a clone under /tmp, say) does not show
  # in mbx's output; commands that need a directory cd into it themselves.
  (cd / && exec timeout -k 5 "$E2E_CMD_TIMEOUT" "$@") </dev/null >"$T/.out" 2>"$T/.err" || RC=$?
  OUT=$(cat "$T/.out")
  ERR=$(cat "$T/.err")
  echo "  -> exit $RC"
  if [ -n "$OUT" ]; then head -n 40 <<<"$OUT" | sed 's/^/  out| /'; fi
  if [ -n "$ERR" ]; then head -n 40 <<<"$ERR" | sed 's/^/  err| /'; fi
  return 0
}

# mbx_as USER ARGS...: run "mbx ARGS..." as USER (see capture_as).
mbx_as() {
  local u=$1
  shift
  capture_as "$u" "$(user_exe "$u" "$MBX")" "$@"
}

# mbx_ok USER ARGS...: mbx_as, and fail unless it exited 0.
mbx_ok() {
  mbx_as "$@"
  assert_rc 0 "mbx ${2:-} ${3:-}"
}

# bg_mbx_as USER LOG ARGS...: start mbx ARGS as USER in the background, stdout to
# LOG.out, stderr to LOG.err; sets BG_PID (the mbx process itself).
bg_mbx_as() {
  local u=$1 log=$2
  shift 2
  local exe
  exe=$(user_exe "$u" "$MBX")
  as_cmd "$u"
  echo "+ [$u] (background) mbx $(printf '%q ' "$@")"
  (cd / && exec "${AS[@]}" "$exe" "$@") </dev/null >"$log.out" 2>"$log.err" &
  BG_PID=$!
  on_cleanup "kill -KILL $BG_PID 2>/dev/null || true; wait $BG_PID 2>/dev/null || true"
}

# wait_for_line FILE TEXT SECONDS PID: wait until FILE has a line TEXT; fail if PID
# exits first or time runs out.
wait_for_line() {
  local f=$1 text=$2 secs=$3 pid=$4 i
  for ((i = 0; i < secs * 10; i++)); do
    grep -qxF -- "$text" "$f" 2>/dev/null && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      fail "process $pid exited before printing '$text'; its stderr:
$(sed 's/^/    | /' "${f%.out}.err" 2>/dev/null)"
    fi
    sleep 0.1
  done
  fail "'$text' did not appear in $f within ${secs}s"
}

# pid_of_cmdline CMDLINE: pids whose full command line is exactly CMDLINE.
pid_of_cmdline() { pgrep -xf -- "$1" || true; }

# unique_sleep: a "sleep N" argument no other process uses.
unique_sleep() { echo "$((900000 + RANDOM * 7 + $$ % 1000))"; }

# ---------------------------------------------------------------- mbx output parsing

# summary_line: the run summary from ERR (the last line of stderr; exactly one such line).
summary_line() {
  local n last
  n=$(grep -c '^mbx: session ' <<<"$ERR" || true)
  [ "$n" = 1 ] || fail "expected exactly one summary line 'mbx: session NAME: ...' on stderr, found $n:
$(sed 's/^/    | /' <<<"$ERR")"
  last=$(tail -n 1 <<<"$ERR")
  [[ $last == "mbx: session "* ]] || fail "the summary must be the last line of stderr, got: $last"
  echo "$last"
}

# parse_summary: sets S_NAME S_ADDED S_MODIFIED S_DELETED from the summary in ERR.
parse_summary() {
  local line
  line=$(summary_line)
  local re="^mbx: session ([^ :]+): ([0-9]+) added, ([0-9]+) modified, ([0-9]+) deleted"
  [[ $line =~ $re ]] || fail "summary line not in the form 'mbx: session NAME: A added, M modified, D deleted — ...': $line"
  S_NAME=${BASH_REMATCH[1]} S_ADDED=${BASH_REMATCH[2]} S_MODIFIED=${BASH_REMATCH[3]} S_DELETED=${BASH_REMATCH[4]}
  # It goes on with how to review and keep/drop the session: 'mbx <command> NAME'.
  assert_match "$line" "'mbx [a-z]+ $S_NAME'" "summary line names a command for the session"
}

# assert_summary NAME A M D: the summary in ERR says exactly that.
assert_summary() {
  parse_summary
  assert_eq "$1: $2 added, $3 modified, $4 deleted" \
    "$S_NAME: $S_ADDED added, $S_MODIFIED modified, $S_DELETED deleted" "summary line counts"
}

# sort_changes: sort "K /path" lines by path, bytewise.
sort_changes() { sort -t' ' -k2 -s; }

# status_json_lines: "K /path" lines from `mbx status --json` output in OUT.
status_json_lines() {
  python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert isinstance(d, dict), "top level must be an object"
assert isinstance(d.get("session"), str), "missing string key session"
assert isinstance(d.get("changes"), list), "missing array key changes"
for c in d["changes"]:
    print(c["kind"], c["path"])
' <<<"$OUT" || fail "mbx status --json: not the documented JSON:
$(sed 's/^/    | /' <<<"$OUT")"
}

# list_json_lines: "name<TAB>added<TAB>modified<TAB>deleted<TAB>last_command" from
# `mbx list --json` output in OUT, sorted by name.
list_json_lines() {
  python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert isinstance(d, list), "top level must be an array"
rows = []
for s in d:
    lc = s["last_command"]
    if isinstance(lc, list):
        lc = " ".join(lc)
    rows.append("\t".join([str(s["name"]), str(s["added"]), str(s["modified"]), str(s["deleted"]), str(lc)]))
for r in sorted(rows):
    print(r)
' <<<"$OUT" || fail "mbx list --json: not the documented JSON:
$(sed 's/^/    | /' <<<"$OUT")"
}

# ---------------------------------------------------------------- host state

# host_fixture PATH OWNER MODE CONTENT: create a file on the host for the test to
# change inside the sandbox; removed at exit. PATH must not exist yet.
host_fixture() {
  local p=$1 owner=$2 mode=$3 content=$4
  [ -e "$p" ] || [ -L "$p" ] && fail "fixture $p already exists on the host (leftover of an earlier run?)"
  on_cleanup "rm -f '$p'"
  printf '%s' "$content" >"$p"
  chown "$owner" "$p"
  chmod "$mode" "$p"
}

# absent_on_host PATH...: PATH must not exist now; remove it at exit in case a test
# fails by leaking it (that is also caught by host_unchanged).
absent_on_host() {
  local p
  for p in "$@"; do
    [ -e "$p" ] || [ -L "$p" ] && fail "$p already exists on the host (leftover of an earlier run?)"
    on_cleanup "rm -rf --one-file-system '$p'"
  done
  return 0
}

_snap_entry() { # PATH: one line describing PATH itself
  local p=$1
  if [ -L "$p" ]; then
    echo "L $p -> $(readlink "$p") $(stat -c '%u:%g' "$p")"
  elif [ -f "$p" ]; then
    echo "F $p $(stat -c '%a %u:%g %s' "$p") $(sha256sum <"$p" | cut -d' ' -f1)"
  elif [ -d "$p" ]; then
    echo "D $p $(stat -c '%a %u:%g' "$p")"
  elif [ -e "$p" ]; then
    echo "X $p $(stat -c '%F %a %u:%g %t:%T' "$p")"
  else
    echo "ABSENT $p"
  fi
}

_snap() { # SPEC...: "1:PATH" entry + one-level listing, "r:PATH" recursive listing,
          # "R:PATH" recursive listing + content hashes
  local s p
  for s in "$@"; do
    p=${s#?:}
    _snap_entry "$p"
    [ -d "$p" ] && [ ! -L "$p" ] || continue
    case $s in
      1:*) find "$p" -mindepth 1 -maxdepth 1 -printf '  %P %y %m %U:%G\n' | sort ;;
      r:*) find "$p" -mindepth 1 -printf '  %P %y %m %U:%G %s\n' | sort ;;
      R:*) find "$p" -mindepth 1 -printf '  %P %y %m %U:%G %s\n' | sort
           find "$p" -mindepth 1 -type f -exec sha256sum {} + | sort -k2 | sed 's/^/  /' ;;
    esac
  done
}

# host_snapshot [-r|-R] PATH...: record PATH on the host byte for byte: a file's
# sha256, mode and owner; a directory's mode and owner plus a listing of its entries
# (name, type, mode, owner) one level deep; with -r a listing of the whole tree (plus
# sizes), with -R also the sha256 of every file in it (for small trees). Missing
# paths are recorded as absent. host_unchanged compares.
host_snapshot() {
  local kind=1
  case ${1:-} in -r) kind=r; shift ;; -R) kind=R; shift ;; esac
  local p
  for p in "$@"; do echo "$kind:$p" >>"$T/.snap-specs"; done
  mapfile -t _specs <"$T/.snap-specs"
  _snap "${_specs[@]}" >"$T/.snap-before"
}

# host_unchanged WHEN: every path given to host_snapshot is as it was.
host_unchanged() {
  mapfile -t _specs <"$T/.snap-specs"
  _snap "${_specs[@]}" >"$T/.snap-after"
  if ! cmp -s "$T/.snap-before" "$T/.snap-after"; then
    fail "host changed ${1:-}:
$(diff "$T/.snap-before" "$T/.snap-after" | sed 's/^/    /')"
  fi
  note "host unchanged ${1:-} ($(wc -l <"$T/.snap-after") entries checked)"
}

# ---------------------------------------------------------------- leftovers

_fuse_mounts() { # "mountpoint fstype source" of FUSE mounts in our mount namespace
  awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break
         if ($(i+1) ~ /^fuse(\.|blk$|$)/) print $5, $(i+1), $(i+2) }' /proc/self/mountinfo | sort
}

_starttime() { # PID: start time in clock ticks (field 22 of /proc/PID/stat)
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  echo "${20}"
}

_new_fuse_mounts() { comm -13 "$T/.fuse-baseline" <(_fuse_mounts); }

# _leftover_pids KIND: KIND=ours: tagged processes and processes of the test users
# (safe to kill); KIND=mbx: other processes running the mbx binary started after
# this test began (reported only).
_leftover_pids() {
  local p u uid st
  if [ "$1" = ours ]; then
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$p" = $$ ] && continue
      grep -qzx -- "MBX_E2E_TAG=$E2E_TAG" "/proc/$p/environ" 2>/dev/null && echo "$p"
    done
    for u in "${E2E_USERS[@]}"; do
      uid=$(id -u "$u" 2>/dev/null) || continue
      pgrep -u "$uid" || true
    done
  else
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$MBX" ] || continue
      st=$(_starttime "$p") || continue
      [ "$st" -ge "$_E2E_START" ] && echo "$p"
    done
  fi | sort -un
}

# check_no_leftovers: no new FUSE mount in the host mount namespace, no process of
# this test (mbx or its sandbox) and no process of the test users, waiting up to 10 s
# for exits in flight.
check_no_leftovers() {
  local i mounts="" ours="" mbxp=""
  for ((i = 0; i < 100; i++)); do
    mounts=$(_new_fuse_mounts)
    ours=$(_leftover_pids ours)
    mbxp=$(_leftover_pids mbx)
    [ -z "$mounts$ours$mbxp" ] && return 0
    sleep 0.1
  done
  local msg=""
  [ -n "$mounts" ] && msg+="
  FUSE mounts left on the host (grep fuse /proc/self/mountinfo):
$(sed 's/^/    /' <<<"$mounts")"
  # shellcheck disable=SC2086
  [ -n "$ours$mbxp" ] && msg+="
  processes left:
$(ps -o pid=,user=,args= -p "$(echo $ours $mbxp | tr ' ' ,)" 2>/dev/null | sed 's/^/    /')"
  fail "left behind after mbx exited:$msg"
}

_kill_leftovers() {
  local pids
  pids=$(_leftover_pids ours)
  [ -z "$pids" ] && return 0
  echo "note: killing leftover processes: $(echo "$pids" | tr '\n' ' ')" >&2
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  sleep 0.5
}

_detach_new_fuse_mounts() {
  [ -n "$T" ] && [ -f "$T/.fuse-baseline" ] || return 0
  local mp _rest
  while read -r mp _rest; do
    [ -n "$mp" ] || continue
    echo "note: detaching leftover FUSE mount $mp" >&2
    umount -l "$mp" 2>/dev/null || true
  done < <(_new_fuse_mounts)
}

# ---------------------------------------------------------------- the VM (tests/vm)

# in_vm RUNNER ARGS...: tests/vm/RUNNER (vm.sh, or run.sh with the build of
# $MBX), booted a second time if the VM itself failed (status 125: no status
# from the guest, e.g. a TCG stall); the script's own failures are not retried.
in_vm() {
  # A boot with the whole battery takes about 3 minutes under TCG.
  local E2E_CMD_TIMEOUT=700 runner=$1
  shift
  export MBX_VM_TIMEOUT=300 MBX_BUILD_DIR
  MBX_BUILD_DIR=$(dirname "$(dirname "$MBX")")
  capture_raw bash "$REPO/tests/vm/$runner" "$@"
  if [ "$RC" = 125 ]; then
    note "the VM failed (no status from the guest); booting it once more"
    capture_raw bash "$REPO/tests/vm/$runner" "$@"
  fi
}

# ---------------------------------------------------------------- trees (commit)

# TREE_STATE_SH: a script printing the state of the tree at $1, one line per entry
# (type, mode, relative path, symlink target) then the sha256 of every file; no
# owners or times. Run on the host with `sh -c "$TREE_STATE_SH" sh DIR`, or in a
# session's view with `mbx run --session S -- sh -c "$TREE_STATE_SH" sh DIR`.
# shellcheck disable=SC2016
TREE_STATE_SH='cd "$1" && find . -mindepth 1 -printf "%y %m %p -> %l\n" | LC_ALL=C sort &&
  find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2'

# fixture_dir USER NAME: a fresh host directory for this test, user and NAME, owned
# by USER, outside /tmp and /var/tmp (private inside the sandbox); removed at exit.
fixture_dir() {
  local d
  d=/srv/$(fixture_base "$1")-$2
  [ -e "$d" ] && fail "fixture $d already exists on the host (leftover of an earlier run?)"
  mkdir -p "$d"
  chown "$1:" "$d"
  on_cleanup "rm -rf --one-file-system '$d'"
  echo "$d"
}

# commit_paused USER SESSION [K]: starts `mbx commit SESSION` as USER in the
# background with MBX_PAUSE_AT=K (default 1: it stops itself at its K-th fault
# point; the first comes after the plan is journalled) and waits until it has
# stopped; COMMIT_PID is its pid.
commit_paused() {
  local i k=${3:-1}
  as_cmd "$1"
  echo "+ MBX_PAUSE_AT=$k mbx commit $2 (background)"
  (cd / && exec "${AS[@]}" env MBX_PAUSE_AT="$k" "$MBX" commit "$2") >"$T/c.out" 2>"$T/c.err" </dev/null &
  COMMIT_PID=$!
  for ((i = 0; i < 100; i++)); do
    [ "$(awk '{ print $3 }' "/proc/$COMMIT_PID/stat" 2>/dev/null)" = T ] && return 0
    sleep 0.1
  done
  fail "the commit did not stop at its fault point $k"
}

# commit_continued: lets the commit of commit_paused go on; RC and ERR are its own.
commit_continued() {
  kill -CONT "$COMMIT_PID"
  RC=0
  wait "$COMMIT_PID" || RC=$?
  ERR=$(cat "$T/c.err")
  echo "$ERR" | sed 's/^/  err| /'
}

# session_of_run: the session name from the summary line of the last `mbx run` in ERR.
session_of_run() { parse_summary; echo "$S_NAME"; }

# ---------------------------------------------------------------- terminals (tmux)

# A test that drives a real terminal sets TMUX_SOCK (a tmux -L name) and starts its
# sessions with `tmux -L "$TMUX_SOCK" new-session -d ...`; tmux_init registers the
# server's removal.
tmux_init() {
  TMUX_SOCK=mbx-e2e-$TEST_ID
  on_cleanup "tmux -L $TMUX_SOCK kill-server 2>/dev/null || true"
}
pane() { tmux -L "$TMUX_SOCK" capture-pane -p -t "$1" -S -200; }
keys() { local t=$1; shift; tmux -L "$TMUX_SOCK" send-keys -t "$t" "$@"; }
# wait_pane TARGET ERE WHAT [COUNT]: wait (10 s) until the pane shows COUNT (default
# 1) lines matching ERE.
wait_pane() {
  local i n=${4:-1}
  for i in $(seq 100); do
    [ "$(pane "$1" | grep -Ec -- "$2")" -ge "$n" ] && return 0
    sleep 0.1
  done
  fail "$3: the terminal never showed /$2/${4:+ ($n times)}; it shows:
$(pane "$1" | sed 's/^/    | /')"
}
# wait_file FILE: wait (10 s) for FILE to exist non-empty and echo its content.
wait_file() {
  local i
  for i in $(seq 100); do
    [ -s "$1" ] && { cat "$1"; return 0; }
    sleep 0.1
  done
  fail "timed out waiting for $1"
}
