#!/usr/bin/env bash
# Issue 8, profiles (mbx-profile(5)): the built-ins are listed; --print-policy shows
# the profile with the flags laid over it; a malformed file, an unknown key and an
# include cycle stop mbx before anything runs, naming file, line and key;
# [fs] writable = ["/usr/local", "/tmp"] lets `make install` work while a write to
# /etc or $HOME fails with EROFS, and nothing reaches the host; readonly stays
# read-only even where writes are layered; hidden = ["~"] hides the home but the
# way to the current directory (a build there works, ~/.ssh is ENOENT); direct
# writes reach the host and only for paths the caller owns; [net] mistakes are
# refused; [net] listen lets only the ports listed bind; the [run] keys; the
# built-in untrusted profile (see untrusted_checks). As the unprivileged mbxtest
# (fake root) and as root. The VM battery (test-guard-vm) covers what needs BPF
# LSM or a cgroup v2 with controllers.
. "$(dirname "$0")/lib.sh"
e2e_init

# profile USER NAME TEXT: writes NAME.toml in USER's area; prints its path.
profile() {
  local f
  f="$(user_area "$1")/$2.toml"
  printf '%s\n' "$3" >"$f"
  chown "$1:" "$f"
  echo "$f"
}

# toml_get KEY...: the value at KEY... of the TOML document in OUT (Python's tomllib).
toml_get() {
  python3 -c 'import sys, tomllib
d = tomllib.loads(sys.stdin.read())
for k in sys.argv[1:]:
    d = d[k]
print(d)' "$@" <<<"$OUT" || fail "not TOML, or no $*: $OUT"
}

# in_dir USER DIR ARGS...: mbx ARGS as USER, started in DIR.
in_dir() {
  local u=$1 d=$2
  shift 2
  capture_as "$u" env -C "$d" "$(user_exe "$u" "$MBX")" "$@"
}

format_checks() {
  local u=$1 area
  area=$(user_area "$u")
  mbx_ok "$u" profile list
  assert_match "$OUT" "^default +every write lands in the layer" "mbx profile list: default"
  assert_match "$OUT" "^build +a build" "mbx profile list: build"
  assert_match "$OUT" "^installer +an installer" "mbx profile list: installer"
  assert_match "$OUT" "^untrusted +an untrusted program" "mbx profile list: untrusted"

  local base
  base=$(profile "$u" base '[fs]
hidden = ["~/.ssh"]
[net]
mode = "none"
[run]
keep_tmp = true')
  mbx_ok "$u" run --profile "$base" --net host --hide /srv --print-policy
  assert_eq "['$(user_home "$u")/.ssh', '/srv']" "$(toml_get fs hidden)" "hidden: the profile's and the flag's"
  assert_eq "host" "$(toml_get net mode)" "--net overrides the profile's mode"
  assert_eq "True" "$(toml_get run keep_tmp)" "keep_tmp from the profile"
  assert_contains "$OUT" "# from $base" "the policy names its sources"
  mbx_ok "$u" run --profile default --print-policy
  assert_eq "host True auto" "$(toml_get net mode) $(toml_get run fake_root) $(toml_get run guard)" "default profile"

  local bad
  bad=$(profile "$u" bad $'# a comment\n[fs]\nwritable = "/usr/local"')
  mbx_as "$u" run --profile "$bad" -- touch /mbx-ran
  assert_mbx_error "bad.toml:3: fs.writable: expected an array" "a wrong type"
  bad=$(profile "$u" unknown $'[fs]\nwriteable = ["/usr/local"]')
  mbx_as "$u" run --profile "$bad" -- touch /mbx-ran
  assert_mbx_error "unknown.toml:2: fs.writeable: unknown key" "an unknown key"
  bad=$(profile "$u" broken $'[net\nmode = "none"')
  mbx_as "$u" run --profile "$bad" -- touch /mbx-ran
  assert_mbx_error "broken.toml:1: not valid TOML" "not TOML"
  profile "$u" cycle-a 'include = ["cycle-b.toml"]' >/dev/null
  profile "$u" cycle-b 'include = ["cycle-a.toml"]' >/dev/null
  mbx_as "$u" run --profile "$area/cycle-a.toml" -- touch /mbx-ran
  assert_mbx_error "include cycle: .*cycle-a.toml -> .*cycle-b.toml -> .*cycle-a.toml" "an include cycle"
  mbx_as "$u" run --profile nosuch -- true
  assert_mbx_error "no profile named 'nosuch'" "an unknown name"
  mbx_ok "$u" list --json
  assert_eq "[]" "$(tr -d ' \n' <<<"$OUT")" "no session was made by the refused runs"

  bad=$(profile "$u" dns $'[net]\nmode = "loopback"\ndns = true')
  mbx_as "$u" run --profile "$bad" -- true
  assert_mbx_error "net.dns = true is for mode" "dns without allow"
  bad=$(profile "$u" unresolvable $'[net]\nmode = "allow"\nallow = ["no-such-host.invalid:80"]')
  mbx_as "$u" run --profile "$bad" -- true
  assert_mbx_error "cannot resolve no-such-host.invalid" "a name that does not resolve"
  bad=$(profile "$u" relative $'[fs]\nhidden = ["secrets"]')
  mbx_as "$u" run --profile "$bad" -- true
  assert_mbx_error "fs.hidden \"secrets\": give an absolute path" "a relative path"
}

writable_checks() {
  local u=$1 area w
  area=$(user_area "$u")
  cp -r "$E2E_DIR/project" "$area/project"
  chown -R "$u:" "$area/project"
  absent_on_host /usr/local/bin/mbx-e2e-hello /usr/local/share/mbx-e2e-hello "/etc/$(fixture_base "$u")"
  host_snapshot -r /usr/local
  host_snapshot /etc "$(user_home "$u")"
  w=$(profile "$u" writable '[fs]
writable = ["/usr/local", "/tmp"]')
  mbx_as "$u" run --profile "$w" --session "w-$u" -- sh -c '
cp -r "$1" /tmp/p && cd /tmp/p && make -s && make -s install && /usr/local/bin/mbx-e2e-hello
echo x >"/etc/$2" || echo "etc refused"
echo x >"$HOME/mbx-e2e-write" || echo "home refused"
mkdir /usr/local/mbx-e2e-dir && rmdir /usr/local/mbx-e2e-dir && echo "usr/local writable"
' sh "$area/project" "$(fixture_base "$u")"
  assert_rc 0 "make install under writable = [/usr/local, /tmp]"
  assert_contains "$OUT" "hello from mbx-e2e" "the installed program runs"
  assert_contains "$ERR" "/etc/$(fixture_base "$u"): Read-only file system" "a write to /etc: EROFS"
  assert_contains "$ERR" "mbx-e2e-write: Read-only file system" "a write to \$HOME: EROFS"
  assert_contains "$OUT" "etc refused" "the write to /etc failed"
  assert_contains "$OUT" "usr/local writable" "directories in /usr/local"
  host_unchanged "after make install with writable paths"
  mbx_ok "$u" status "w-$u"
  assert_match "$OUT" "^A /usr/local/bin/mbx-e2e-hello$" "the install is in the layer"
  assert_not_contains "$OUT" "/etc/" "nothing of /etc in the layer"

  # readonly: not even in the layer, also beneath a writable path.
  mkdir -p "$area/ro-dir"
  echo keep >"$area/keep.txt"
  chown -R "$u:" "$area/ro-dir" "$area/keep.txt"
  w=$(profile "$u" readonly "[fs]
writable = [\"$area\"]
readonly = [\"$area/keep.txt\", \"$area/ro-dir\", \"$area/absent\"]")
  mbx_as "$u" run --profile "$w" -- sh -c '
echo changed >"$1/keep.txt" || echo "file refused"
touch "$1/ro-dir/new" || echo "dir refused"
echo other >"$1/other.txt" && echo "other written"
cat "$1/keep.txt"' sh "$area"
  assert_rc 0 "run with readonly paths"
  assert_eq $'file refused\ndir refused\nother written\nkeep' "$OUT" "readonly file and directory"
  assert_contains "$ERR" "keep.txt: Read-only file system" "EROFS for the readonly file"
  assert_eq "keep" "$(cat "$area/keep.txt")" "the host file"
  [ ! -e "$area/other.txt" ] || fail "a layered write reached the host"
}

# project_and_key USER NAME: a copy of the test project in USER's area
# ($PROJ) and a fake key ~/.ssh/<fixture>-NAME ($KEY, its file name).
project_and_key() {
  local u=$1 home
  home=$(user_home "$u")
  PROJ=$(user_project "$u" "proj-$2")
  KEY=$(fixture_base "$u")-$2
  if [ ! -d "$home/.ssh" ]; then
    mkdir "$home/.ssh"
    chown "$u:" "$home/.ssh"
    on_cleanup "rm -rf '$home/.ssh'"
  fi
  host_fixture "$home/.ssh/$KEY" "$u:" 600 "secret"
}

hidden_checks() {
  local u=$1 h proj key
  project_and_key "$u" id_ed25519
  proj=$PROJ key=$KEY
  h=$(profile "$u" hidehome '[fs]
hidden = ["~"]')
  in_dir "$u" "$proj" run --profile "$h" -- sh -c '
cat "$HOME/.ssh/$1" 2>&1 | sed "s/.*: //"
ls -A "$HOME"
make -s && ./mbx-e2e-hello' sh "$key"
  assert_rc 0 "a build in the current directory under a hidden home"
  assert_eq $'No such file or directory\n.mbx-e2e\nhello from mbx-e2e (uid 0, euid 0)' "$OUT" \
    "only the way to the current directory is left of the home"
}

# The built-in untrusted profile on this host (the Landlock fallback): its
# reverse-shell rule needs BPF LSM, so mbx refuses to run, unless --allow-weaker
# (the VM battery checks the rule itself). Then: ~/.ssh is ENOENT, a connect to
# a listener on the host's 127.0.0.1 fails (no network), a build in the current
# directory works, and the program it built may not run (only /usr and /bin).
untrusted_checks() {
  local u=$1 proj key port lpid
  project_and_key "$u" id_rsa
  proj=$PROJ key=$KEY
  port=$((20000 + $$ % 10000))  # listen_checks uses 40000 and up
  python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); time.sleep(120)' "$port" &
  lpid=$!
  on_cleanup "kill $lpid 2>/dev/null || true"
  sleep 0.5
  local connect="import socket, sys
try:
    socket.create_connection(('127.0.0.1', int(sys.argv[1])), 3); print('connected')
except OSError as e:
    print('refused:', e.strerror)"
  mbx_as "$u" run -- python3 -c "$connect" "$port"
  assert_eq "connected" "$OUT" "the listener answers without the profile"

  in_dir "$u" "$proj" run --profile untrusted -- true
  assert_mbx_error "exec.deny_interpreters_on_sockets is enforced by the BPF LSM guard.*--allow-weaker runs without it" \
    "untrusted on a host without BPF LSM"
  in_dir "$u" "$proj" run --profile untrusted --allow-weaker -- sh -c '
cat "$HOME/.ssh/$1" 2>&1 | sed "s/.*: //"
python3 -c "$3" "$2"
make -s && echo built
./mbx-e2e-hello 2>&1 | sed "s/.*: //"' sh "$key" "$port" "$connect"
  assert_rc 0 "untrusted with --allow-weaker"
  # (The connect fails by Landlock's TCP rule, EACCES, before the empty network namespace could say so.)
  assert_eq $'No such file or directory\nrefused\nbuilt\nPermission denied' "$(sed 's/^refused: .*/refused/' <<<"$OUT")" \
    "no keys, no network, a build, no program of its own"
  assert_contains "$ERR" "mbx: warning: exec.deny_interpreters_on_sockets is not enforced" "the warning"
}

# [net] listen on this host (the Landlock fallback: TCP binds): the ports listed
# bind, another does not. (The VM battery checks it under BPF LSM.)
listen_checks() {
  local u=$1 l p1 p2
  p1=$((40000 + $$ % 10000))  # untrusted_checks uses 20000-29999
  p2=$((p1 + 1))
  l=$(profile "$u" listen "[net]
listen = [$p1]")
  local bind="import socket, sys
s = socket.socket()
try:
    s.bind(('127.0.0.1', int(sys.argv[1]))); print('bound')
except OSError as e:
    print(e.strerror)"
  mbx_as "$u" run --profile "$l" -- sh -c 'python3 -c "$1" "$2"; python3 -c "$1" "$3"' sh "$bind" "$p1" "$p2"
  assert_rc 0 "a run with net.listen"
  assert_eq $'bound\nPermission denied' "$OUT" "the listed port binds, another does not"
}

# [run]: fake_root = false keeps the caller's uid; keep_tmp = true layers /tmp;
# guard = "off" refuses exec rules it cannot enforce.
run_keys_checks() {
  local u=$1 r f
  f=$(fixture_base "$u")-tmp
  absent_on_host "/tmp/$f"
  r=$(profile "$u" runkeys '[run]
fake_root = false
keep_tmp = true')
  mbx_as "$u" run --profile "$r" --session "run-$u" -- sh -c 'id -u; echo x >"/tmp/$1"' sh "$f"
  assert_rc 0 "a run with [run] keys"
  assert_eq "$(id -u "$u")" "$OUT" "fake_root = false: the caller's own uid"
  mbx_ok "$u" status "run-$u"
  assert_contains "$OUT" "A /tmp/$f" "keep_tmp = true: /tmp is layered"
  [ ! -e "/tmp/$f" ] || fail "the write to /tmp reached the host"
  r=$(profile "$u" guardoff '[run]
guard = "off"
[exec]
allow = ["/usr/**"]')
  mbx_as "$u" run --profile "$r" -- true
  assert_mbx_error "enforced by the guard: drop --guard off" "guard = off with exec rules"
}

# mbx log --summary of a run as root (the fallback audits execs with BPF
# tracing): the programs run, counted.
summary_checks() {
  local u=$1
  mbx_as "$u" run --session "sum-$u" -- sh -c 'ls / >/dev/null; ls / >/dev/null; true'
  assert_rc 0 "a run to summarise"
  mbx_ok "$u" log --summary "sum-$u"
  assert_match "$OUT" "^runs, by guard \\(1, 1 in all\\):" "the run and its guard"
  assert_match "$OUT" "^  2.*/ls$" "ls, run twice"
  mbx_as "$u" log --summary --json "sum-$u"
  assert_rc 125 "--summary with --json"
}

direct_checks() {
  local u=$1 area d
  area=$(user_area "$u")
  mkdir -p "$area/out"
  chown "$u:" "$area/out"
  d=$(profile "$u" direct "[fs]
direct = [\"$area/out\"]")
  mbx_as "$u" run --profile "$d" -- sh -c 'echo through >"$1/out/f" && echo layered >"$1/g"' sh "$area"
  assert_rc 0 "a run with a direct path"
  assert_eq "through" "$(cat "$area/out/f")" "direct writes reach the host"
  [ ! -e "$area/g" ] || fail "a layered write reached the host"
  if [ "$u" != root ]; then
    d=$(profile "$u" direct-etc '[fs]
direct = ["/etc"]')
    mbx_as "$u" run --profile "$d" -- true
    assert_mbx_error "/etc: owned by uid 0, not you" "direct on a path of another owner"
  fi
}

# [limits]: enforced where mbx's cgroup v2 offers the controller and the user may
# use it (root); said in one line where not (these machines: cgroup v2 beside v1
# offers no pids controller). The VM battery checks enforcement.
limits_checks() {
  local u=$1 l mnt cg
  l=$(profile "$u" limits $'[limits]\npids = 8')
  mbx_as "$u" run --profile "$l" -- sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1 & done 2>&1; wait; echo done'
  mnt=$(findmnt -rnt cgroup2 -o TARGET | head -n 1)
  cg=$(sed -n 's/^0:://p' /proc/self/cgroup)
  if [ "$u" = root ] && [ -n "$mnt" ] && grep -qw pids "$mnt$cg/cgroup.controllers" 2>/dev/null; then
    assert_rc 0 "a run with pids = 8"
    assert_match "$OUT$ERR" "fork|Resource temporarily unavailable" "more than 8 processes fail"
  else
    assert_mbx_error "\\[limits\\]" "limits the host does not delegate"
    assert_contains "$ERR" "drop [limits]" "what to do"
  fi
  [ -z "$(find "${mnt:-/nonexistent}" -maxdepth 3 -name 'mbx-*' 2>/dev/null)" ] || fail "a cgroup of mbx was left"
}

for u in $(test_users mbxtest root); do
  as_user "$u"
  part "format" format_checks "$u"
  part "limits" limits_checks "$u"
  part "writable and readonly" writable_checks "$u"
  part "hidden home" hidden_checks "$u"
  part "direct" direct_checks "$u"
  part "untrusted" untrusted_checks "$u"
  part "listen" listen_checks "$u"
  part "run keys" run_keys_checks "$u"
  [ "$u" = root ] && part "log summary" summary_checks "$u"
  check_no_leftovers
done
e2e_done
