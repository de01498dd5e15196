# Shared by the guard batteries; tests/vm/run.sh places it beside the script in
# the guest (/usr/local/lib). Sourced, not run. Needs E (the escape binary) and
# MBX.

# intruder GUARD SESSION MBX...: a sandbox (started by MBX... run) waits while a
# task joins its PID and user namespaces from outside, as nsenter does; prints
# what the sandbox's ptrace and kill of that task gave.
intruder() {
  local guard=$1 session=$2
  shift 2
  "$@" run --guard "$guard" --session "$session" -- "$E" await-intruder >"/tmp/await-$guard" 2>/dev/null &
  local m=$!
  "$E" intrude >/dev/null
  wait $m
  cat "/tmp/await-$guard"
}

# M ARGS...: mbx, bounded to 120 s; a hang prints the state of every process
# (comm, pid, wait channel, kernel stack) on the console, then kills it.
M() {
  "$MBX" "$@" &
  local pid=$! i=0
  while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 1200 ]; do
    i=$((i + 1))
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "HANG: mbx $*" >/dev/console
    for p in /proc/[0-9]*; do
      echo "  $(cat "$p/comm" 2>/dev/null) ${p#/proc/} $(cat "$p/wchan" 2>/dev/null)"
      sed 's/^/      /' "$p/stack" 2>/dev/null | head -n 8
    done >/dev/console
    kill -9 "$pid"
  fi
  wait "$pid"
}

# run MODE CMD...: CMD's first output line in a sandbox with --guard MODE.
run() {
  local mode=$1
  shift
  M run --guard "$mode" --session "battery-$mode" "$@" 2>/dev/null | head -n 1
}
