# The guard's test suite, the default script of tests/vm/run.sh: in the guest, as root, the escape attempts of the guard's test,
# each with --guard bpf and --guard off. Prints one line per attempt:
#   ATTEMPT bpf=RESULT off=RESULT
# then the mbx log of the guarded runs. MBX and ESCAPE name the binaries (ESCAPE
# outside /tmp, which is private inside the sandbox).
export MBX_HOME=/data/mbx
E=$ESCAPE
. /usr/local/lib/battery-lib.sh

mkdir -p /srv/host && echo original >/srv/host/victim

exec 3>>/srv/host/victim
echo "inherited-fd bpf=$(run bpf --pass-fd 3 -- "$E" write-fd 3) off=$(run off --pass-fd 3 -- "$E" write-fd 3)"
exec 3>&-
echo "victim $(tr '\n' ' ' </srv/host/victim)"

mkdir -p /srv/host/dir
echo "mount bpf=$(run bpf -- "$E" mount /srv/host/dir) off=$(run off -- "$E" mount /srv/host/dir)"

sleep 1000 & s1=$!
sleep 1000 & s2=$!
echo "kill-outside bpf=$("$E" pidfd $s1 5 "$MBX" run --guard bpf --session battery-bpf --pass-fd 5 -- "$E" kill-pidfd 5 2>/dev/null | head -n 1) off=$("$E" pidfd $s2 5 "$MBX" run --guard off --session battery-off --pass-fd 5 -- "$E" kill-pidfd 5 2>/dev/null | head -n 1)"
sleep 0.2
echo "sleepers $(kill -0 $s1 2>/dev/null && echo alive || echo dead) $(kill -0 $s2 2>/dev/null && echo alive || echo dead)"
kill $s1 $s2 2>/dev/null

# A --bind path shares its file system with the rest of the host: a directory
# outside it, reached through a descriptor, stays unwritable.
mkdir -p /srv/host/allowed
exec 4</srv/host
echo "bind-outside bpf=$(run bpf --bind /srv/host/allowed --pass-fd 4 -- "$E" write-at 4 outside-bpf) off=$(run off --bind /srv/host/allowed --pass-fd 4 -- "$E" write-at 4 outside-off)"
exec 4<&-
echo "bind-inside bpf=$(run bpf --bind /srv/host/allowed -- sh -c 'echo in >/srv/host/allowed/f && echo fine') host=$(cat /srv/host/allowed/f)"
echo "host-files $(ls /srv/host | tr '\n' ' ')"

# A task in the sandbox's PID namespace that is not in the sandbox (joined
# from outside, as nsenter does): ptrace and kill of it.
echo "outside-task bpf: $(intruder bpf battery-bpf M)"
echo "outside-task off: $(intruder off battery-off M)"

# Modules: loading one (the user namespace lacks CAP_SYS_MODULE either way)
# and making the kernel autoload one (a socket of an unloaded family).
ko=$(find /lib/modules -name af_key.ko | head -n 1)
echo "module-load bpf=$(run bpf -- "$E" init-module "$ko") off=$(run off -- "$E" init-module "$ko")"
echo "module-autoload bpf=$(run bpf -- "$E" af-key) loaded=$(grep -c '^af_key ' /proc/modules) off=$(run off -- "$E" af-key) loaded=$(grep -c '^af_key ' /proc/modules)"

# A block device outside the layer (in the private /tmp), and in it.
echo "mknod-blk tmp: bpf=$(run bpf -- "$E" mknod-blk /tmp/sda) off=$(run off -- "$E" mknod-blk /tmp/sda) layer: bpf=$(run bpf -- "$E" mknod-blk /root/sda)"

echo "bpf-syscall bpf=$(run bpf -- "$E" bpf) off=$(run off -- "$E" bpf)"
echo "work bpf=$(run bpf -- sh -c 'mkdir -p /srv/host/new && echo w >/srv/host/new/f && cat /srv/host/new/f >/dev/null &&
  echo x >/tmp/x && echo y >/dev/null && ls /srv/host >/dev/null && echo fine')"
echo "summary $(M run --guard bpf --session battery-sum -- "$E" mount /srv/host/dir 2>&1 >/dev/null | grep 'guard denied')"
# Network: a listener on the host's loopback, outside the sandbox.
"$E" listen 7001 >/tmp/listen.out &
l1=$!
"$E" listen 7002 >/dev/null &
l2=$!
sleep 0.3
echo "net-allow-port bpf=$(run bpf --net allow=127.0.0.1:7001 -- "$E" connect 127.0.0.1 7001) other=$(run bpf --net allow=127.0.0.1:7001 -- "$E" connect 127.0.0.1 7002)"
echo "net-loopback bpf=$(run bpf --net loopback -- "$E" connect 127.0.0.1 7002) outside=$(run bpf --net loopback -- "$E" connect 10.0.2.2 80)"
echo "net-none tcp=$(run bpf --net none -- "$E" connect 127.0.0.1 7001) udp=$(run bpf --net none -- "$E" udp 127.0.0.1 53)"
echo "net-host bpf=$(run bpf --net host -- "$E" connect 127.0.0.1 7001)"
kill $l1 $l2 2>/dev/null
# A build and its install under the guard; then only make and the shell may run.
mkdir -p /srv/proj
printf '#!/bin/sh\necho @GREETING@\n' >/srv/proj/hello.in
cat >/srv/proj/Makefile <<'MK'
all: hello
hello: hello.in
	sed 's/@GREETING@/hello from make/' hello.in >hello
	chmod 755 hello
install: hello
	mkdir -p /usr/local/bin
	cp hello /usr/local/bin/hello
clean:
	rm -f hello
MK
echo "build bpf=$(M run --guard bpf --session battery-build -- sh -c 'cd /srv/proj && make -s && make -s install && /usr/local/bin/hello' 2>/dev/null | head -n 1) host=$(ls /usr/local/bin/hello 2>&1 | head -n 1)"
allow=/usr/bin/make,/bin/sh
echo "exec-allow build=$(M run --guard bpf --session battery-exec --exec-allow $allow -- sh -c 'cd /srv/proj && make -s clean all && echo built' 2>/dev/null | head -n 1) other=$(M run --guard bpf --session battery-exec --exec-allow $allow -- sh -c "$E bpf; echo rc=\$?" 2>/dev/null | head -n 1)"
echo "exec-deny denied=$(M run --guard bpf --session battery-exec --exec-deny "$E" -- sh -c "$E bpf; echo rc=\$?" 2>/dev/null | head -n 1) other=$(M run --guard bpf --session battery-exec --exec-deny "$E" -- sh -c 'echo fine' 2>/dev/null | head -n 1)"
echo "exec-bad $(M run --guard bpf --exec-allow relative/path -- true 2>&1 | head -n 1)"
echo "--- mbx log battery-build"
M log battery-build
echo "--- mbx log battery-exec"
M log battery-exec
echo "--- mbx log battery-bpf"
M log battery-bpf
echo "--- mbx log --json battery-bpf"
M log --json battery-bpf
