# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts sourcing this
# Shared by setup.sh, teardown.sh and lib.sh: names of the test accounts and the
# files creating them touches. Sourced, not run.

E2E_USERS=(mbxtest mbxtest2)
E2E_GECOS="mbx e2e test user"
E2E_STATE=/run/mbx-e2e
# Everything useradd/userdel rewrite; the "-" files are shadow-utils' backups.
E2E_ACCOUNT_FILES=(/etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/subuid /etc/subgid)
E2E_BACKUP_FILES=(/etc/passwd- /etc/group- /etc/shadow- /etc/gshadow- /etc/subuid- /etc/subgid- /etc/.pwd.lock)
E2E_ACCOUNT_FILES+=("${E2E_BACKUP_FILES[@]}")
E2E_TOUCHED_DIRS=(/etc /home /run)   # their mtimes change; /run holds E2E_STATE

# e2e_user_is_ours USER: the user exists and carries the e2e GECOS marker.
e2e_user_is_ours() {
  local gecos
  gecos=$(getent passwd "$1" | cut -d: -f5) || return 1
  [ "$gecos" = "$E2E_GECOS" ]
}

e2e_any_user_exists() {
  local u
  for u in "${E2E_USERS[@]}"; do
    getent passwd "$u" >/dev/null && return 0
  done
  return 1
}

# e2e_remove_lines FILE NAME: drop the lines of a sub-id file whose first field is NAME,
# rewriting the file in place (same inode, mode and owner).
e2e_remove_lines() {
  local f=$1 name=$2 tmp
  [ -e "$f" ] || return 0
  awk -F: -v n="$name" '$1 == n { found = 1 } END { exit !found }' "$f" || return 0
  tmp=$(mktemp)
  awk -F: -v n="$name" '$1 != n' "$f" >"$tmp"
  cat "$tmp" >"$f"
  rm -f "$tmp"
}
