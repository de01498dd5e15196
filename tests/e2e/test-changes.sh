#!/usr/bin/env bash
# Issue 2, must-show 1: `mbx run -- sh -c '...'` creates, modifies and deletes files
# under /etc, /usr/local and $HOME. Exit 0; the host is byte-for-byte unchanged;
# reads inside see the new state; `mbx status` (plain and --json) lists exactly those
# changes, sorted by path; a second `mbx run --session` of the session sees them.
# Host files changed first and then removed or renamed stay gone under their
# old names. As root and as the unprivileged mbxtest (fake root).
. "$(dirname "$0")/lib.sh"
e2e_init

# The script run inside. Arguments: 9 paths, (new, modified, deleted) x (/etc,
# /usr/local/bin, $HOME). Modifications: append, sed -i (rename over), append.
change_script='
set -e
printf "etc new\n" >"$1"
printf "etc appended\n" >>"$2"
rm "$3"
printf "#!/bin/sh\necho usr-local-new runs\n" >"$4"
chmod 755 "$4"
sed -i "s/original/changed/" "$5"
rm "$6"
printf "home new\n" >"$7"
printf "home appended\n" >>"$8"
rm "$9"
'
# Reads, in the first run right after the changes and in the second run.
read_script='
for f in "$1" "$2" "$4" "$5" "$7" "$8"; do echo "== $f"; cat "$f"; done
for f in "$3" "$6" "$9"; do if [ -e "$f" ]; then echo "STILL THERE $f"; else echo "gone $f"; fi; done
"$4"
stat -c "%n %a" "$4"
'

check() {
  local u=$1 home p
  home=$(user_home "$u")
  local b
  b=$(fixture_base "$u")
  local enew=/etc/$b-new emod=/etc/$b-mod edel=/etc/$b-del
  local lnew=/usr/local/bin/$b-new lmod=/usr/local/bin/$b-mod ldel=/usr/local/bin/$b-del
  local hnew=$home/$b-new hmod=$home/$b-mod hdel=$home/$b-del
  local paths=("$enew" "$emod" "$edel" "$lnew" "$lmod" "$ldel" "$hnew" "$hmod" "$hdel")

  absent_on_host "$enew" "$lnew" "$hnew"
  host_fixture "$emod" root:root 644 $'etc original\n'
  host_fixture "$edel" root:root 644 $'etc delete me\n'
  host_fixture "$lmod" root:root 755 $'#!/bin/sh\necho original\n'
  host_fixture "$ldel" root:root 755 $'#!/bin/sh\necho delete me\n'
  host_fixture "$hmod" "$u:" 644 $'home original\n'
  host_fixture "$hdel" "$u:" 600 $'home delete me\n'
  host_snapshot /etc /usr/local/bin "$home"
  for p in "${paths[@]}"; do host_snapshot "$p"; done

  local expect_read
  expect_read="== $enew
etc new
== $emod
etc original
etc appended
== $lnew
#!/bin/sh
echo usr-local-new runs
== $lmod
#!/bin/sh
echo changed
== $hnew
home new
== $hmod
home original
home appended
gone $edel
gone $ldel
gone $hdel
usr-local-new runs
$lnew 755"

  # 1. the run, automatic session name in a fresh MBX_HOME: "1"
  mbx_as "$u" run -- sh -c "$change_script$read_script" sh "${paths[@]}"
  assert_rc 0 "mbx run (changes)"
  assert_eq "$expect_read" "$OUT" "reads inside the run"
  assert_summary 1 3 3 3
  host_unchanged "after the run"

  # 2. mbx status: exactly these changes, sorted by path
  local expect_status
  expect_status=$(printf '%s\n' "A $enew" "M $emod" "D $edel" "A $lnew" "M $lmod" "D $ldel" \
                                "A $hnew" "M $hmod" "D $hdel" | sort_changes)
  mbx_ok "$u" status
  assert_eq "$expect_status" "$OUT" "mbx status (default session)"
  mbx_ok "$u" status 1
  assert_eq "$expect_status" "$OUT" "mbx status 1"
  mbx_ok "$u" status --json 1
  assert_eq "$expect_status" "$(status_json_lines)" "mbx status --json 1"
  assert_eq 1 "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["session"])' <<<"$OUT")" \
    "mbx status --json: session"

  # 3. a second run of the session sees the new state (and changes nothing)
  mbx_as "$u" run --session 1 -- sh -c "$read_script" sh "${paths[@]}"
  assert_rc 0 "mbx run --session 1 (reads)"
  assert_eq "$expect_read" "$OUT" "reads in the second run"
  assert_summary 1 3 3 3
  mbx_ok "$u" status 1
  assert_eq "$expect_status" "$OUT" "mbx status after the second run"
  host_unchanged "after the second run"
  check_no_leftovers
}

# Host files changed inside (so the layer has a copy of them) and then
# removed or renamed: the host's file must stay hidden under the old name (a
# whiteout), not come back once the layer's copy is gone.
gone_after_change() {
  local u=$1 home b
  home=$(user_home "$u")
  b=$(fixture_base "$u")
  local wd=$home/$b-written-rm td=$home/$b-truncated-rm wm=$home/$b-written-mv moved=$home/$b-moved
  local wo=$home/$b-written-over target=$home/$b-target
  absent_on_host "$moved"
  host_fixture "$wd" "$u:" 644 $'wd original\n'
  host_fixture "$td" "$u:" 644 $'td original\n'
  host_fixture "$wm" "$u:" 644 $'wm original\n'
  host_fixture "$wo" "$u:" 644 $'wo original\n'
  host_fixture "$target" "$u:" 644 $'target original\n'
  host_snapshot "$home" "$wd" "$td" "$wm" "$wo" "$target" "$moved"
  local look='
for f in "$1" "$2" "$3" "$5"; do if [ -e "$f" ]; then echo "STILL THERE $f"; else echo "gone $f"; fi; done
echo "== moved: $(cat "$4" | tr "\n" " ")"
echo "== target: $(cat "$6" | tr "\n" " ")"
'
  local expect="gone $wd
gone $td
gone $wm
gone $wo
== moved: wm original more 
== target: wo original more "
  mbx_as "$u" run --session gone -- sh -c '
set -e
echo more >>"$1"; rm "$1"
echo new >"$2"; rm "$2"
echo more >>"$3"; mv "$3" "$4"
echo more >>"$5"; mv "$5" "$6"
'"$look" sh "$wd" "$td" "$wm" "$moved" "$wo" "$target"
  assert_rc 0 "changed, then removed or renamed"
  assert_eq "$expect" "$OUT" "reads inside: the old names are gone"
  local expect_status
  expect_status=$(printf '%s\n' "D $wd" "D $td" "D $wm" "A $moved" "D $wo" "M $target" | sort_changes)
  mbx_ok "$u" status gone
  assert_eq "$expect_status" "$OUT" "mbx status: removals of files changed first"
  mbx_as "$u" run --session gone -- sh -c "$look" sh "$wd" "$td" "$wm" "$moved" "$wo" "$target"
  assert_eq "$expect" "$OUT" "reads in a second run"
  host_unchanged "after the runs"
  mbx_ok "$u" discard gone
}

for u in $(test_users root mbxtest); do
  as_user "$u"
  part "created, modified, deleted" check "$u"
  part "changed, then removed or renamed" gone_after_change "$u"
done
e2e_done
