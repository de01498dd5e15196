#!/usr/bin/env bash
# Interactive review, in a real terminal (tmux), as mbxtest:
#  1. `mbx run -i -- CMD` asks per entry when CMD exits: [d]iff shows the entry's diff
#     and asks again, [y]es commits it, [n]o leaves it in the session.
#  2. `mbx commit -i`: [q]uit commits nothing more; [a]ll commits the rest.
# (Without a terminal, -i refuses with one line: test-commit.sh.)
. "$(dirname "$0")/lib.sh"
e2e_init

tmux_init

# in_terminal NAME ARGS...: start mbx ARGS as U in a new tmux session NAME; its exit
# status goes to $T/exit-NAME.
in_terminal() {
  local t=$1
  shift
  as_cmd "$U"
  tmux -L "$TMUX_SOCK" new-session -d -c / -s "$t" -x 200 -y 50 \
    "$(printf '%q ' "${AS[@]}" "$(user_exe "$U" "$MBX")" "$@"); echo \$? >$T/exit-$t; sleep 600"
}

U=mbxtest
as_user "$U"
D=$(fixture_dir "$U" review)
S=review

part_run_i() {
  in_terminal run run -i --session "$S" -- sh -c 'cd "$1" && echo alpha >a && echo beta >b && echo gamma >c' sh "$D"
  wait_pane run "^A $D/a  commit\\? \\[y\\]es \\[n\\]o \\[d\\]iff \\[a\\]ll \\[q\\]uit" "the question for a"
  keys run d Enter
  wait_pane run '^\+alpha' "[d]iff shows the new content"
  wait_pane run "^A $D/a  commit\\?" "the question again after the diff" 2
  keys run y Enter
  wait_pane run "^A $D/b  commit\\?" "the question for b"
  keys run n Enter
  wait_pane run "^A $D/c  commit\\?" "the question for c"
  keys run y Enter
  assert_eq 0 "$(wait_file "$T/exit-run")" "exit status of mbx run -i"
  wait_pane run "^mbx: session $S: committed 2 entries" "the commit report"
  assert_eq "alpha gamma" "$(cat "$D/a" "$D/c" | tr '\n' ' ' | sed 's/ $//')" "the entries answered yes"
  [ -e "$D/b" ] && fail "the entry answered no was committed"
  mbx_as "$U" diff "$S"
  assert_eq "A $D/b" "$OUT" "the entry answered no stays in the session"
}

part_commit_i() {
  in_terminal quit commit -i "$S"
  wait_pane quit "^A $D/b  commit\\?" "the question for b"
  keys quit q Enter
  assert_eq 0 "$(wait_file "$T/exit-quit")" "exit status after [q]uit"
  [ -e "$D/b" ] && fail "[q]uit committed b"
  in_terminal all commit -i "$S"
  wait_pane all "^A $D/b  commit\\?" "the question for b"
  keys all a Enter
  assert_eq 0 "$(wait_file "$T/exit-all")" "exit status after [a]ll"
  assert_eq "beta" "$(cat "$D/b")" "[a]ll commits the rest"
}

part "mbx run -i" part_run_i
part "mbx commit -i" part_commit_i
e2e_done
