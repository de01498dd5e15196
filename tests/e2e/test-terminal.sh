#!/usr/bin/env bash
# Issue 2, launcher: the terminal works through the sandbox. In a real pty (tmux),
# an interactive `mbx run -- bash` as mbxtest and as root takes typed commands, Ctrl-C
# stops the foreground command inside (not the shell, not mbx), job control works
# (a background job, jobs, kill %1), and `exit 3` ends mbx with status 3. A
# non-interactive `mbx run -- sleep` is stopped by Ctrl-C with status 130.
. "$(dirname "$0")/lib.sh"
e2e_init

tmux_init

for u in $(test_users mbxtest root); do
  as_user "$u"
  as_cmd "$u"
  mbx=$(user_exe "$u" "$MBX")
  exitf=$T/exit-$u
  t=shell-$u
  tmux -L "$TMUX_SOCK" new-session -d -c / -s "$t" -x 150 -y 50 \
    "$(printf '%q ' "${AS[@]}" "$mbx" run --session "term-$u" -- env PS1='in-sandbox\$ ' bash --norc --noprofile -i); echo \$? >$exitf; sleep 600"
  wait_pane "$t" 'in-sandbox' "the shell's prompt"

  keys "$t" 'echo typed-$((6*7)) uid=$(id -u)' Enter
  wait_pane "$t" '^typed-42 uid=' "a typed command"

  keys "$t" 'sleep 1000' Enter
  sleep 0.5
  keys "$t" C-c
  keys "$t" 'echo after-ctrl-c rc=$?' Enter
  wait_pane "$t" '^after-ctrl-c rc=130' "Ctrl-C stops the foreground command, the shell lives on"

  keys "$t" 'sleep 1001 &' Enter
  keys "$t" 'jobs' Enter
  wait_pane "$t" '^\[1\]\+ +Running +sleep 1001' "a background job"
  # bash prints "[1]+ Terminated" only when the job dies before wait reaps it
  # (a race), so the job's status and that no job is left running are what is checked.
  keys "$t" 'kill %1; wait %1; echo killed-job rc=$? running=$(jobs -r | wc -l)' Enter
  wait_pane "$t" '^killed-job rc=143 running=0' "kill %1 (the job dies of SIGTERM, none left running)"

  keys "$t" 'exit 3' Enter
  got=$(wait_file "$exitf")
  assert_eq 3 "$got" "mbx's exit status after 'exit 3' in the shell"
  wait_pane "$t" "^mbx: session term-$u: " "the summary line on the terminal"
  tmux -L "$TMUX_SOCK" kill-session -t "$t"

  # Ctrl-C to a plain command: it dies of SIGINT and mbx reports 130.
  exitf=$T/exit2-$u
  t=plain-$u
  tmux -L "$TMUX_SOCK" new-session -d -c / -s "$t" -x 150 -y 50 \
    "$(printf '%q ' "${AS[@]}" "$mbx" run --session "term-$u" -- sh -c 'echo started; exec sleep 1002'); echo \$? >$exitf; sleep 600"
  wait_pane "$t" '^started' "the plain command started"
  keys "$t" C-c
  got=$(wait_file "$exitf")
  assert_eq 130 "$got" "Ctrl-C ends mbx run -- sleep with 128+SIGINT"
  tmux -L "$TMUX_SOCK" kill-session -t "$t"
  check_no_leftovers
done
e2e_done
