#!/usr/bin/env bash
# Issue 8, monitor mode and learned profiles on this host (no BPF LSM: the view
# records, the network only as root, by cgroup BPF programs, and the guard of
# an enforced profile is the Landlock fallback). As mbxtest (fake root) and as
# root:
#   mbx run --monitor of a build records in the session's log each open with its
#     access and result (read, write, run: the kernel's opens for execve), names
#     looked up in vain, directories and files made; it says what it does not
#     record; nothing is enforced beyond the layer, nothing reaches the host.
#   mbx log --summary folds the record by directory, with the programs run.
#   mbx profile generate makes the tightest profile of it: the directories
#     written (one the run made is folded into the one above), the programs run
#     (the one it built by its directory), the network left out with a comment
#     (mbxtest) or mode none (root: recorded, and nothing was used).
#   As root, the addresses connected (TCP and UDP), sent to (IPv6 sendto) and
#     bound are recorded once each by cgroup sock_addr programs attached to a
#     cgroup of the sandbox's own (gone when it ends), folded into the summary's
#     peers, and generate turns them into net.allow and net.listen.
#   Under that profile the same build in a fresh session runs; a program it did
#     not run is refused (126) and a write outside the directories seen fails
#     with EROFS. A session without a monitored run is refused by generate.
. "$(dirname "$0")/lib.sh"
e2e_init

# in_dir USER DIR ARGS...: mbx ARGS as USER, started in DIR.
in_dir() {
  local u=$1 d=$2
  shift 2
  capture_as "$u" env -C "$d" "$(user_exe "$u" "$MBX")" "$@"
}

# records HOOK PATH [ACCESS] [RESULT]: how many records of the view in OUT
# (mbx log --json) are HOOK on PATH (with ACCESS, with RESULT; default ok).
records() {
  python3 -c 'import json, sys
hook, path, access, result = sys.argv[1:5]
n = 0
for line in sys.stdin:
    r = json.loads(line)
    if r.get("source") == "view" and r["hook"] == hook and r["path"] == path \
       and (not access or r.get("access") == access) and r["result"] == result:
        n += 1
print(n)' "$1" "$2" "${3:-}" "${4:-ok}" <<<"$OUT"
}

# toml_get KEY...: the value at KEY... of the TOML document in OUT (a list sorted).
toml_get() {
  python3 -c 'import sys, tomllib
d = tomllib.loads(sys.stdin.read())
for k in sys.argv[1:]:
    d = d.get(k, "absent") if isinstance(d, dict) else d
print(sorted(d) if isinstance(d, list) else d)' "$@" <<<"$OUT" || fail "not TOML: $OUT"
}

BUILD='make -s && ./mbx-e2e-hello && cat /etc/hostname >/dev/null && ls /mbx-e2e-no-such 2>/dev/null; mkdir -p out/sub && echo x >out/sub/f'

monitor_checks() {
  local u=$1 proj area gen
  area=$(user_area "$u")
  proj=$(user_project "$u" proj)

  in_dir "$u" "$proj" run --monitor --session mon -- sh -c "$BUILD; echo x >/etc/mbx-e2e-monitored"
  assert_rc 0 "a monitored build"
  assert_contains "$OUT" "hello from mbx-e2e" "the build ran"
  assert_contains "$ERR" "monitored: see 'mbx log --summary mon'" "mbx says where the record is"
  [ ! -e /etc/mbx-e2e-monitored ] && [ ! -e "$proj/out" ] && [ ! -e "$proj/hello.o" ] || fail "a write reached the host"

  mbx_ok "$u" log --json mon
  assert_match "$OUT" '"hook":"monitor"' "the record of what the run records"
  if [ "$u" = root ]; then
    assert_match "$OUT" '"recorded":\["view","exec","network"\]' "as root the network is recorded"
  else
    assert_match "$OUT" '"not_recorded":"[^"]*network addresses' "it says the network is not recorded"
  fi
  assert_eq 1 "$(records open /etc/hostname r)" "the open of /etc/hostname for reading, once"
  assert_eq 1 "$(records lookup /mbx-e2e-no-such '' 'No such file or directory')" "the name looked up in vain"
  assert_eq 1 "$(records open /usr/bin/make x)" "make, opened by the kernel to run it"
  assert_eq 1 "$(records open "$proj/mbx-e2e-hello" x)" "the program the build made, run"
  assert_eq 1 "$(records create "$proj/hello.o")" "the object file made"
  assert_eq 1 "$(records mkdir "$proj/out/sub")" "a directory made"
  assert_eq 1 "$(records create "$proj/out/sub/f")" "a file in it"
  assert_eq 1 "$(records create /etc/mbx-e2e-monitored)" "the write to /etc (in the layer: nothing enforced)"
  assert_eq 0 "$(python3 -c 'import json, sys
seen, twice = set(), 0
for line in sys.stdin:
    r = json.loads(line)
    if r.get("source") == "view":
        k = (r["hook"], r["path"], r.get("access"), r["result"])
        twice += k in seen
        seen.add(k)
print(twice)' <<<"$OUT")" "records of the view written twice"

  mbx_ok "$u" log --summary mon
  assert_contains "$OUT" "monitored (--monitor); not recorded:" "the summary says what was not recorded"
  assert_match "$OUT" "^  [0-9]+	(/usr)?/bin/make$" "the summary's programs: make"
  assert_match "$OUT" "^files, by directory \\([0-9]+\\):" "the summary's files by directory"
  assert_match "$OUT" "^  /etc	read [0-9]+, written 1" "/etc: read, and the one write"
  assert_match "$OUT" "^  /	.*looked up, absent [0-9]+" "/: the name looked up in vain"

  mbx_ok "$u" profile generate mon
  gen=$area/learned.toml
  printf '%s\n' "$OUT" >"$gen"
  chown "$u:" "$gen"
  assert_eq "['\$CWD', '/etc', '/tmp']" "$(toml_get fs writable)" "writable: the cwd (out/ folded into it), /etc, /tmp"
  assert_contains "$OUT" '"$CWD/*",  # run (made by the run)' "the program the build made: by its directory"
  assert_match "$OUT" '^  "/usr/bin/make",  # (run|exec)' "make, with where it came from"
  if [ "$u" = root ]; then
    assert_eq none "$(toml_get net mode)" "the network, recorded and not used: mode none"
  else
    assert_eq absent "$(toml_get net mode)" "the network, not recorded, is left out"
    assert_contains "$OUT" "# Not recorded" "... and the profile says so"
  fi

  # Enforce it, in fresh sessions (the project on the host is still unbuilt).
  in_dir "$u" "$proj" run --profile "$gen" --session enforced -- sh -c "$BUILD && echo enforced-ok"
  assert_rc 0 "the same build under the learned profile"
  assert_contains "$OUT" "enforced-ok" "... all of it"
  in_dir "$u" "$proj" run --profile "$gen" -- sh -c 'id -u; echo rc=$?'
  assert_contains "$OUT" "rc=126" "a program the run did not run is refused"
  in_dir "$u" "$proj" run --profile "$gen" -- sh -c 'echo x >/usr/mbx-e2e-x'
  assert_contains "$ERR" "Read-only file system" "a write outside the directories seen: EROFS"

  mbx_ok "$u" run --session plain -- true
  mbx_as "$u" profile generate plain
  assert_mbx_error "session plain has no monitored run: run the command with 'mbx run --monitor' first" \
    "generate of a run that was not monitored"
  mbx_as "$u" profile generate nosuch
  assert_mbx_error "no session 'nosuch'" "generate of a missing session"
}

# The network of a monitored run as root, without BPF LSM.
NET_PROGRAM='exec 3<>/dev/tcp/127.0.0.1/$1 && echo x >/dev/udp/127.0.0.1/$2 && exec /usr/bin/python3 -c "
import socket, sys
b = socket.socket(); b.bind((\"127.0.0.1\", int(sys.argv[1])))
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for _ in range(3): u.sendto(b\"x\", (\"::1\", int(sys.argv[2])))
print(\"net-ok\")" "$3" "$4"'

network_checks() {
  local server cgroups
  # A listener for the TCP connect (it only has to accept one).
  python3 -c 'import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 7411)); s.listen(1); s.settimeout(30)
s.accept()' &
  server=$!
  sleep 0.5
  mbx_ok root run --monitor --session net -- bash -c "$NET_PROGRAM" net 7411 7412 7413 7414
  wait "$server" || true
  assert_contains "$OUT" "net-ok" "the program's network calls worked (nothing enforced)"
  cgroups=$(find /sys/fs/cgroup -maxdepth 3 -name 'mbx-*.sandbox' 2>/dev/null)
  assert_eq "" "$cgroups" "the sandbox's cgroup is gone after the run"

  mbx_ok root log --json net
  assert_match "$OUT" '"recorded":\["view","exec","network"\]' "the network is recorded"
  address_records() {
    python3 -c 'import json, sys
print(sorted(r["hook"] + " " + r["address"] for r in map(json.loads, sys.stdin)
             if "address" in r and not r["denied"]))' <<<"$OUT"
  }
  assert_eq "['bind 127.0.0.1:7413', 'connect 127.0.0.1:7411', 'connect 127.0.0.1:7412', 'sendmsg [::1]:7414']" \
    "$(address_records)" "each address once: TCP and UDP connects, the bind, the IPv6 sendto (three sent, one record)"

  mbx_ok root log --summary net
  assert_match "$OUT" "^network peers \\(4, 4 in all\\):" "the summary's peers"
  assert_match "$OUT" "^  1	connect 127.0.0.1:7411$" "... with their counts"

  mbx_ok root profile generate net
  assert_eq allow "$(toml_get net mode)" "generate: net mode allow"
  assert_eq "['127.0.0.1:7411', '127.0.0.1:7412', '[::1]:7414']" "$(toml_get net allow)" \
    "generate: the addresses connected and sent to"
  assert_eq "[7413]" "$(toml_get net listen)" "generate: the port bound"
}

for u in $(test_users mbxtest root); do
  as_user "$u"
  part "monitor, generate, enforce" monitor_checks "$u"
  check_no_leftovers
done
for u in $(test_users root); do
  as_user "$u"
  part "the network of a monitored run, by cgroup programs" network_checks
  check_no_leftovers
done
e2e_done
