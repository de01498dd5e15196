# The profile battery (tests/e2e/test-profile-vm.sh): in the guest, as root,
# what profiles need BPF LSM or a cgroup v2 with controllers for. One line per
# check, then the logs. MBX and ESCAPE name the binaries.
export MBX_HOME=/data/mbx
E=$ESCAPE
. /usr/local/lib/battery-lib.sh
mkdir -p /srv/host/dir && echo original >/srv/host/victim
"$E" listen 7001 >/dev/null &
l1=$!
"$E" listen 7002 >/dev/null &
l2=$!
sleep 0.3
# A profile's net.allow by host name (resolved when the run starts) and dns.
echo "127.0.0.1 localhost mbx-peer" >/etc/hosts
echo "nameserver 127.0.0.53" >/etc/resolv.conf
printf '[net]\nmode = "allow"\nallow = ["mbx-peer:7001"]\ndns = true\n' >/srv/allow.toml
echo "net-allow-name bpf=$(run bpf --profile /srv/allow.toml -- "$E" connect 127.0.0.1 7001) other=$(run bpf --profile /srv/allow.toml -- "$E" connect 127.0.0.1 7002) dns=$(run bpf --profile /srv/allow.toml -- "$E" udp 127.0.0.53 53) other-udp=$(run bpf --profile /srv/allow.toml -- "$E" udp 127.0.0.54 53)"
# A name whose address changes while the sandbox runs: resolved again (every
# 0.5 s here), and the guard's rules follow it.
printf '127.0.0.1 localhost mbx-peer\n127.0.0.3 mbx-moving\n' >/etc/hosts
printf '[net]\nmode = "allow"\nallow = ["mbx-moving:7001"]\n' >/srv/moving.toml
export MBX_RESOLVE_INTERVAL=0.5
M run --guard bpf --profile /srv/moving.toml -- sh -c "
echo before=\$($E connect 127.0.0.1 7001)
i=0; while [ ! -e /srv/moved ] && [ \$i -lt 100 ]; do sleep 0.2; i=\$((i+1)); done
sleep 2
echo after=\$($E connect 127.0.0.1 7001)" >/tmp/moving 2>&1 &
moving=$!
i=0
while ! grep -q before= /tmp/moving && [ $i -lt 150 ]; do sleep 0.2; i=$((i+1)); done
printf '127.0.0.1 localhost mbx-peer mbx-moving\n' >/etc/hosts
touch /srv/moved
wait $moving
unset MBX_RESOLVE_INTERVAL
echo "net-moving $(grep -h before= /tmp/moving) $(grep -h after= /tmp/moving)"
kill $l1 $l2 2>/dev/null
mkdir -p /srv/proj
printf 'all:\n\techo built >out\nclean:\n\trm -f out\n' >/srv/proj/Makefile
# Profiles: [limits] through a cgroup v2 of the sandbox's own (the guest's
# hierarchy is v2 only), gone after the run; writable paths under the guard.
printf '[limits]\npids = 6\nmemory = "64M"\ncpus = 1.5\n' >/srv/limits.toml
echo "limits $(M run --profile /srv/limits.toml -- "$E" forks 20 2>/dev/null | head -n 1) left=$(ls /sys/fs/cgroup | grep -c '^mbx-')"
echo "limits-values $(M run --profile /srv/limits.toml -- sh -c 'cg=$(sed -n "s/^0:://p" /proc/self/cgroup); echo $(cat /sys/fs/cgroup$cg/memory.max /sys/fs/cgroup$cg/cpu.max /sys/fs/cgroup$cg/pids.max)' 2>/dev/null | head -n 1)"
printf '[fs]\nwritable = ["/srv/proj"]\n' >/srv/writable.toml
echo "writable proj=$(M run --guard bpf --profile /srv/writable.toml -- sh -c 'cd /srv/proj && make -s clean all && echo built' 2>/dev/null | head -n 1) etc=$(M run --guard bpf --profile /srv/writable.toml -- sh -c 'echo x >/etc/x' 2>&1 | grep -o 'Read-only file system' | head -n 1)"
# The untrusted profile: a shell with a socket on stdin and stdout (nc -e
# /bin/sh) is refused, the same shell on a pipe runs; exec rules over directories.
echo "reverse-shell untrusted=$(M run --profile untrusted --session battery-untrusted -- "$E" socket-exec /bin/sh -c 'echo shell' 2>/dev/null | head -n 1) pipe=$(M run --profile untrusted -- sh -c 'echo shell | cat' 2>/dev/null | head -n 1) off=$(M run --guard off -- "$E" socket-exec /bin/sh -c 'echo shell' 2>/dev/null | head -n 1)"
echo "untrusted-print $(M run --profile untrusted --print-policy | grep -c 'deny_interpreters_on_sockets = true')"
echo "exec-dirs subtree=$(M run --guard bpf --exec-allow '/bin/**' -- sh -c "$E forks 0 >/dev/null; echo rc=\$?" 2>/dev/null | head -n 1) files=$(M run --guard bpf --exec-allow '/bin/*,/usr/local/bin/*' -- sh -c "$E forks 0 >/dev/null; echo rc=\$?" 2>/dev/null | head -n 1) deny=$(M run --guard bpf --exec-deny '/usr/local/**' -- sh -c "$E forks 0 >/dev/null; echo rc=\$?" 2>/dev/null | head -n 1)"
printf '[net]\nlisten = [7101, "7200-7210"]\n' >/srv/listen.toml
echo "listen listed=$(M run --profile /srv/listen.toml -- "$E" bind 7101 2>/dev/null | head -n 1) range=$(M run --profile /srv/listen.toml -- "$E" bind 7205 2>/dev/null | head -n 1) other=$(M run --profile /srv/listen.toml --session battery-listen -- "$E" bind 7102 2>/dev/null | head -n 1) connect=$(M run --profile /srv/listen.toml -- "$E" connect 127.0.0.1 7001 2>/dev/null | head -n 1)"
# --guard complain: the escapes above are logged as would-be denials, none refused.
exec 3>>/srv/host/victim
echo "complain write-fd=$(run complain --pass-fd 3 -- "$E" write-fd 3) mount=$(run complain -- "$E" mount /srv/host/dir) connect=$(run complain --net allow=127.0.0.1:7001 -- "$E" connect 127.0.0.1 7002) exec=$(run complain --exec-deny "$E" -- "$E" forks 0)"
exec 3>&-
echo "complain-summary $(M run --guard complain --session battery-complain -- "$E" mount /srv/host/dir 2>&1 >/dev/null | grep 'guard would')"
# Monitor, generate, enforce: a build and a fetch from a local web server,
# watched; the profile made of the record lets the same run pass and refuses
# it pointed at a second server.
mkdir -p /srv/www /srv/learn && echo payload >/srv/www/data
printf 'all:\n\techo built >out\n' >/srv/learn/Makefile
httpd -f -p 127.0.0.1:7301 -h /srv/www &
w1=$!
httpd -f -p 127.0.0.1:7302 -h /srv/www &
w2=$!
sleep 0.3
fetch() { echo "cd /srv/learn && make -s && wget -q -O got http://127.0.0.1:$1/data && cat got"; }
echo "monitor $(M run --monitor --session learn -- sh -c "$(fetch 7301)" 2>/dev/null | head -n 1)"
M profile generate learn >/srv/learned.toml
echo "learned net=$(grep -c '^  "127.0.0.1:7301",' /srv/learned.toml) writable=$(grep -c '^  "/srv/learn",' /srv/learned.toml)"
echo "enforce same=$(M run --profile /srv/learned.toml -- sh -c "$(fetch 7301)" 2>/dev/null | head -n 1) other=$(M run --profile /srv/learned.toml --session enforce-other -- sh -c "$(fetch 7302) || echo failed" 2>/dev/null | head -n 1) new-program=$(M run --profile /srv/learned.toml -- sh -c "$E forks 0 >/dev/null; echo rc=\$?" 2>/dev/null | head -n 1)"
kill $w1 $w2 2>/dev/null
echo "--- learned.toml"
cat /srv/learned.toml
echo "--- mbx log --summary learn"
M log --summary learn
echo "--- mbx log enforce-other"
M log enforce-other
echo "--- mbx log --summary battery-complain"
M log --summary battery-complain
echo "--- mbx log battery-complain"
M log battery-complain
echo "--- mbx log battery-listen"
M log battery-listen
echo "--- mbx log battery-untrusted"
M log battery-untrusted
