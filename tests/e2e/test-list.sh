#!/usr/bin/env bash
# `mbx list` shows one line per session (name first; an optional header line whose
# first field is an upper-case word such as NAME or SESSION) with its last command;
# `mbx list --json` is an array of objects with name, added, modified, deleted and
# last_command, the counts matching what the runs did. As root and as mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

for u in $(test_users root mbxtest); do
  as_user "$u"
  b=/etc/$(fixture_base "$u")
  host_fixture "$b-mod" root:root 644 $'original\n'
  host_fixture "$b-del" root:root 644 $'delete me\n'
  absent_on_host "$b-la" "$b-lb1" "$b-lb2"
  host_snapshot /etc "$b-mod" "$b-del" "$b-la" "$b-lb1" "$b-lb2"

  mbx_ok "$u" run --session la -- env MBXLIST=la touch "$b-la"
  mbx_ok "$u" run --session lb -- env MBXLIST=lb sh -c 'touch "$1" "$2"; echo more >>"$3"; rm "$4"' \
    sh "$b-lb1" "$b-lb2" "$b-mod" "$b-del"
  host_unchanged "after the runs"

  mbx_ok "$u" list
  text=$OUT
  # An optional header line: its first field is an upper-case word (NAME, SESSION).
  body=$(awk 'NR == 1 && $1 ~ /^[A-Z]+$/ { next } { print }' <<<"$text")
  assert_eq $'la\nlb' "$(awk '{ print $1 }' <<<"$body" | sort)" "session names in mbx list (one line each)"
  assert_contains "$(grep '^la ' <<<"$body")" "MBXLIST=la" "mbx list: last command of la"
  assert_contains "$(grep '^lb ' <<<"$body")" "MBXLIST=lb" "mbx list: last command of lb"

  mbx_ok "$u" list --json
  rows=$(list_json_lines)
  assert_eq $'la\t1\t0\t0\nlb\t2\t1\t1' "$(cut -f1-4 <<<"$rows")" "mbx list --json: names and counts"
  assert_contains "$(grep '^la' <<<"$rows" | cut -f5)" "MBXLIST=la" "mbx list --json: last_command of la"
  assert_contains "$(grep '^lb' <<<"$rows" | cut -f5)" "MBXLIST=lb" "mbx list --json: last_command of lb"

  # The last command is the last one: run la again with another command.
  mbx_ok "$u" run --session la -- env MBXLIST=again true
  mbx_ok "$u" list --json
  assert_contains "$(list_json_lines | grep '^la' | cut -f5)" "MBXLIST=again" "last_command after another run"
  check_no_leftovers
done
e2e_done
