#!/usr/bin/env bash
# Ownership on commit, with mbxtest's default store (~/.local/share/mbx) so that sudo
# finds it:
#  1. a fake-root session of mbxtest installs a set-uid file owned by root
#     (install -o root -m 4755) and writes a plain file. Committed by mbxtest: the
#     plain file is applied (owned by mbxtest), the root-owned entry is reported as
#     needing root ("1 entry needs root: sudo mbx commit S"), exit 4, and stays in
#     the session. Then `sudo mbx commit` (root with SUDO_UID) from mbxtest's shell
#     addresses that session without naming it: the entry gets root:root and mode
#     4755 on the host, and every file of mbxtest's store is still mbxtest's.
. "$(dirname "$0")/lib.sh"
e2e_init

U=mbxtest
UHOME=$(user_home "$U")
STORE=$UHOME/.local/share/mbx

# as_plain_user ARGS...: mbx as mbxtest with its default store.
as_plain_user() {
  echo "+ [$U, default store] mbx $*"
  capture_raw setpriv --reuid="$U" --regid="$U" --init-groups -- env -i "HOME=$UHOME" "PATH=$PATH" \
    "MBX_E2E_TAG=$E2E_TAG" "$(user_exe "$U" "$MBX")" "$@"
}

# as_sudo ARGS...: mbx as root the way sudo starts it from mbxtest's shell.
as_sudo() {
  echo "+ [sudo from $U] mbx $*"
  capture_raw env -i "HOME=/root" "PATH=$PATH" "SUDO_UID=$(id -u "$U")" "SUDO_GID=$(id -g "$U")" \
    "SUDO_USER=$U" "MBX_E2E_TAG=$E2E_TAG" "$MBX" "$@"
}

part_owner() {
  local d s
  [ -e "$STORE" ] && fail "$STORE exists already (leftover?)"
  on_cleanup "rm -rf --one-file-system '$UHOME/.local'"
  d=$(fixture_dir "$U" owner)
  as_plain_user run -- sh -c 'install -o root -g root -m 4755 /bin/true "$1/suid" && echo plain >"$1/plain"' sh "$d"
  assert_rc 0 "the fake-root run"
  s=$(session_of_run)
  as_plain_user commit
  assert_rc 4 "commit by the user of a root-owned entry"
  assert_contains "$ERR" "  $d/suid" "the entry needing root is listed"
  assert_contains "$ERR" "mbx: 1 entry needs root: sudo mbx commit $s" "how to commit it"
  assert_eq "plain $U" "$(cat "$d/plain") $(stat -c %U "$d/plain")" "the rest is applied, owned by the user"
  [ -e "$d/suid" ] && fail "the root-owned entry was written by the user"
  as_plain_user diff
  assert_eq "A $d/suid" "$OUT" "the entry needing root stays in the session"

  as_sudo commit
  assert_rc 0 "sudo mbx commit"
  assert_eq "root:root 4755" "$(stat -c '%U:%G %a' "$d/suid")" "owner and mode of the committed set-uid file"
  cmp -s /bin/true "$d/suid" || fail "content of the committed set-uid file"
  local foreign
  foreign=$(find "$STORE" ! -user "$U" -printf '%p %u\n')
  [ -z "$foreign" ] || fail "sudo mbx commit left files in the user's store that are not the user's:
$foreign"
}

as_user "$U"
part "owner" part_owner
e2e_done
