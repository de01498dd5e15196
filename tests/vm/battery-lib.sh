# Shared by the guard batteries; tests/vm/run.sh places it beside the script in
# the guest (/usr/local/lib). Sourced, not run. Needs E (the escape binary).

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
