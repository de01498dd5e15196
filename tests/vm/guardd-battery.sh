# mbx-guardd's test suite, for tests/vm/run.sh: in the guest, root starts the
# daemon; the users u1 and u2 run mbx without root. One line per check:
#   CHECK bpf=RESULT off=RESULT
E=$ESCAPE
. /usr/local/lib/battery-lib.sh
echo 'u1:x:1000:1000::/data/u1:/bin/sh' >>/etc/passwd
echo 'u2:x:1001:1001::/data/u2:/bin/sh' >>/etc/passwd
printf 'u1:x:1000:\nu2:x:1001:\n' >>/etc/group
for u in u1 u2; do mkdir -p /data/$u && chown $u:$u /data/$u; done
chmod 0666 /dev/fuse  # as on stock Debian
mkdir -p /srv/u1/allowed && chown -R u1:u1 /srv/u1 && echo original >/srv/u1/victim && chown u1 /srv/u1/victim

/usr/local/sbin/mbx-guardd >/tmp/guardd.log 2>&1 &
daemon=$!
i=0
while [ ! -S /run/mbx/guard.sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
echo "daemon $([ -S /run/mbx/guard.sock ] && echo listening || echo absent)"

# as USER CMD...: CMD as USER, with that user's MBX_HOME; bounded to 120 s.
as() {
  local u=$1 id
  shift
  id=$(grep "^$u:" /etc/passwd | cut -d: -f3)
  HOME=/data/$u MBX_HOME=/data/$u/mbx timeout 120 "$E" as "$id" "$id" "$@"
}
# run USER MODE ARGS...: the first output line of mbx run --guard MODE as USER.
run() {
  local u=$1 mode=$2
  shift 2
  as "$u" "$MBX" run --guard "$mode" --session "$u-$mode" "$@" 2>/dev/null | head -n 1
}

echo "auto $(as u1 "$MBX" run --session u1-auto -- true 2>&1 | head -n 1) log=$(as u1 "$MBX" log u1-auto | head -n 1 | cut -d' ' -f2-)"
exec 3>>/srv/u1/victim
echo "inherited-fd bpf=$(run u1 bpf --pass-fd 3 -- "$E" write-fd 3) off=$(run u1 off --pass-fd 3 -- "$E" write-fd 3)"
exec 3>&-
echo "victim $(tr '\n' ' ' </srv/u1/victim)"
exec 4</srv/u1
echo "bind-outside bpf=$(run u1 bpf --bind /srv/u1/allowed --pass-fd 4 -- "$E" write-at 4 out-bpf) off=$(run u1 off --bind /srv/u1/allowed --pass-fd 4 -- "$E" write-at 4 out-off)"
exec 4<&-
mkdir -p /srv/u1/mnt && chown u1 /srv/u1/mnt
echo "mount bpf=$(run u1 bpf -- "$E" mount /srv/u1/mnt) off=$(run u1 off -- "$E" mount /srv/u1/mnt)"
echo "module-autoload bpf=$(run u1 bpf -- "$E" af-key) loaded=$(grep -c '^af_key ' /proc/modules) off=$(run u1 off -- "$E" af-key) loaded=$(grep -c '^af_key ' /proc/modules)"
# (bpf() is refused to users by the kernel already: unprivileged_bpf_disabled.)
echo "bpf-syscall bpf=$(run u1 bpf -- "$E" bpf)"
echo "mknod-blk tmp: bpf=$(run u1 bpf -- "$E" mknod-blk /tmp/sda) layer: bpf=$(run u1 bpf -- "$E" mknod-blk /etc/sda)"
# A task joined into u1's sandbox's PID and user namespaces from outside.
echo "outside-task bpf: $(intruder bpf u1-bpf as u1 "$MBX")"
echo "outside-task off: $(intruder off u1-off as u1 "$MBX")"
echo "exec-allow other=$(run u1 bpf --exec-allow /bin/sh -- sh -c "$E bpf; echo rc=\$?")"
echo "work bpf=$(run u1 bpf -- sh -c 'echo w >/etc/new && echo x >/tmp/x && echo fine')"
echo "--- u1's log"
as u1 "$MBX" log u1-bpf
echo "--- u2's view of u1's log: $(as u2 "$MBX" log u1-bpf 2>&1 | head -n 1)"

# Requests the daemon must refuse, and live through.
as u1 "$MBX" run --guard off --session u1-long -- sleep 30 >/dev/null 2>&1 &
long=$!
sleeper() { for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = sleep ] && echo "${p#/proc/}"; done | head -n 1; }
i=0
while [ -z "$(sleeper)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
pid=$(sleeper)
echo "foreign-pid $(as u2 "$E" request /run/mbx/guard.sock "$pid")"
echo "garbage $(as u2 "$E" request /run/mbx/guard.sock -)"
echo "oversized $(as u2 "$E" request /run/mbx/guard.sock 1 big)"
echo "own-pid $(as u1 "$E" request /run/mbx/guard.sock "$pid")"
echo "twice $(as u1 "$E" request /run/mbx/guard.sock "$pid")"
kill "$pid" 2>/dev/null
wait $long
echo "daemon-after $(kill -0 $daemon 2>/dev/null && echo alive || echo dead) $(run u1 bpf -- "$E" mount /srv/u1/mnt)"

# Live policy: a loop of connects inside, switched from --net host to --net none.
"$E" listen 7301 >/dev/null &
listener=$!
: >/tmp/live.out
as u1 "$MBX" run --guard bpf --net host --session u1-live -- sh -c "i=0
  while [ \$i -lt 300 ] && [ ! -e /srv/u1/stop-live ]; do $E connect 127.0.0.1 7301; sleep 0.05; i=\$((i + 1)); done" \
  >/tmp/live.out 2>/dev/null &
live=$!
i=0
while [ "$(grep -c '^ok' /tmp/live.out)" -lt 3 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
shown_before=$(as u1 "$MBX" policy u1-live --show | head -n 1)
foreign=$(as u2 "$E" request /run/mbx/guard.sock "$(cut -d' ' -f1 /data/u1/mbx/u1-live/sandbox.pid)" policy)
as u1 "$MBX" policy u1-live --net none
rc=$?
n=$(grep -c '' /tmp/live.out)
shown_after=$(as u1 "$MBX" policy u1-live --show | head -n 1)
sleep 1
touch /srv/u1/stop-live
wait $live
kill $listener
# Allow the one connect that may have been under way when mbx policy returned.
after=$(tail -n +$((n + 2)) /tmp/live.out)
echo "live-policy rc=$rc before=$(head -n "$n" /tmp/live.out | grep -c '^ok') after-ok=$(echo "$after" | grep -c '^ok') after-denied=$(echo "$after" | grep -c 'Operation not permitted') show=$shown_before/$shown_after"
echo "live-policy-foreign $foreign"
echo "live-policy-log $(as u1 "$MBX" log u1-live | grep -c 'denied connect 127.0.0.1:7301')"
echo "policy-not-running $(as u1 "$MBX" policy u1-live --net host 2>&1)"

# Restarts and upgrades: while a sandboxed loop keeps trying a forbidden write,
# the daemon is restarted 20 times (every other time with SIGKILL); the guard's
# pinned links keep the sandbox confined throughout. The loop paces itself: under
# qemu's TCG, both vCPUs exec'ing flat out while a daemon attaches or detaches
# its trampolines can spin for good on the int3 of the kernel's live patching
# (soft lockup in bpf_lsm_file_permission from bprm_execve, seen after ~20
# restarts, and again at 50 tries a second); 10 tries a second still cover
# every restart (each takes about a second under TCG). test-guardd-vm also boots
# this guest with one vCPU, which leaves no other CPU to spin on.
echo original >/srv/u1/victim2 && chown u1 /srv/u1/victim2
exec 5>>/srv/u1/victim2
as u1 "$MBX" run --guard bpf --session u1-loop --pass-fd 5 -- sh -c "n=0 ok=0
  while [ ! -e /srv/u1/stop ]; do r=\$($E write-fd 5); n=\$((n + 1)); [ \"\$r\" = ok ] && ok=\$((ok + 1)); sleep 0.1; done
  echo attempts=\$n escaped=\$ok" >/tmp/loop.out 2>/dev/null &
loop=$!
exec 5>&-
sleep 1
for i in $(seq 1 20); do
  if [ $((i % 2)) = 0 ]; then kill -9 $daemon; else kill $daemon; fi
  wait $daemon 2>/dev/null
  rm -f /run/mbx/guard.sock
  /usr/local/sbin/mbx-guardd >>/tmp/guardd.log 2>&1 &
  daemon=$!
  j=0
  while [ ! -S /run/mbx/guard.sock ] && [ $j -lt 300 ]; do sleep 0.1; j=$((j + 1)); done
done
touch /srv/u1/stop
wait $loop
echo "restarts $(cat /tmp/loop.out) victim2=$(tr '\n' ' ' </srv/u1/victim2)"
echo "after-restarts $(run u1 bpf -- "$E" mount /srv/u1/mnt) links=$(ls /sys/fs/bpf/mbx | grep -c '^link-')"
kill $daemon
echo "--- daemon log"
cat /tmp/guardd.log
