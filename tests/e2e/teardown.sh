#!/usr/bin/env bash
# Undoes tests/e2e/setup.sh exactly: removes the test users (only those carrying the
# e2e GECOS marker) with their homes and groups, their sub-id lines, puts /dev/fuse
# back to the mode and owner it had, and, when the account files are back to their
# original content, restores shadow-utils' backup files and the mtimes too.
# Safe to run twice, after a partial setup, or with nothing set up at all.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/accounts.sh
. "$here/accounts.sh"

if [ "$(id -u)" -ne 0 ]; then
  echo "teardown.sh: must run as root" >&2
  exit 1
fi

status=0
declare -A dir_mtime=()
warn() { echo "teardown.sh: $*" >&2; }

for u in "${E2E_USERS[@]}"; do
  if getent passwd "$u" >/dev/null; then
    if ! e2e_user_is_ours "$u"; then
      warn "user $u exists but was not created by the e2e setup; leaving it alone"
      continue
    fi
    uid=$(id -u "$u")
    home=$(getent passwd "$u" | cut -d: -f6)
    # Anything still running as the test user (a leaked sandbox) would make userdel
    # fail; these users exist only for the tests, so end their processes.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      pids=$(pgrep -u "$uid" || true)
      [ -z "$pids" ] && break
      warn "killing leftover processes of $u: $(echo "$pids" | tr '\n' ' ')"
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null
      sleep 0.5
    done
    # FUSE mounts the user made in the host mount namespace (fusermount3): detach them.
    while read -r mp; do
      warn "detaching leftover FUSE mount $mp of $u"
      umount -l "$mp" || status=1
    done < <(awk -v uid="$uid" '{ for (i = 1; i <= NF; i++) if ($i == "-") break;
                 if ($(i+1) ~ /^fuse(\.|blk|$)/ && $(i+3) ~ ("(^|,)user_id=" uid "(,|$)")) print $5 }' \
               /proc/self/mountinfo)
    if ! userdel -r "$u" 2>/tmp/mbx-e2e-userdel.$$; then
      # userdel exits non-zero for a missing mail spool alone; judge by the result.
      if getent passwd "$u" >/dev/null; then
        warn "userdel $u failed: $(cat /tmp/mbx-e2e-userdel.$$)"
        status=1
      fi
    fi
    rm -f /tmp/mbx-e2e-userdel.$$
    case $home in
      /home/"$u") [ -d "$home" ] && rm -rf --one-file-system "$home" ;;
    esac
    if getent group "$u" >/dev/null && [ -z "$(getent group "$u" | cut -d: -f4)" ]; then
      groupdel "$u" || status=1
    fi
  fi
  # Sub-id lines of a user that is gone (ours, or never created by a partial setup).
  if ! getent passwd "$u" >/dev/null; then
    e2e_remove_lines /etc/subuid "$u"
    e2e_remove_lines /etc/subgid "$u"
  fi
done

if [ -f "$E2E_STATE/fuse-mode" ]; then
  read -r mode fuid fgid <"$E2E_STATE/fuse-mode"
  if [ -c /dev/fuse ]; then
    chown "$fuid:$fgid" /dev/fuse && chmod "$mode" /dev/fuse || status=1
  fi
fi

# Account files: if the primary files are byte-identical to the originals again, the
# machine's account state is exactly what it was, so also put back the backups
# ("passwd-" ...), files that did not exist before, and the mtimes. If anything else
# changed them meanwhile (someone added a user), leave all of that alone.
if [ -d "$E2E_STATE/orig" ]; then
  same=1
  for f in "${E2E_ACCOUNT_FILES[@]}"; do
    case " ${E2E_BACKUP_FILES[*]} " in *" $f "*) continue ;; esac
    b=$(basename "$f")
    if [ -e "$E2E_STATE/orig/$b" ]; then
      cmp -s "$f" "$E2E_STATE/orig/$b" || same=0
    elif [ -e "$E2E_STATE/orig/$b.absent" ]; then
      if [ -s "$f" ]; then same=0; fi
    fi
  done
  if [ "$same" = 1 ]; then
    for f in "${E2E_ACCOUNT_FILES[@]}"; do
      b=$(basename "$f")
      if [ -e "$E2E_STATE/orig/$b.absent" ]; then
        rm -f "$f"
      elif [ -e "$E2E_STATE/orig/$b" ]; then
        if ! cmp -s "$f" "$E2E_STATE/orig/$b" 2>/dev/null; then
          cat "$E2E_STATE/orig/$b" >"$f"   # same inode
        fi
        chown --reference="$E2E_STATE/orig/$b" "$f"
        chmod --reference="$E2E_STATE/orig/$b" "$f"
        touch -m -r "$E2E_STATE/orig/$b" "$f"
      fi
    done
    for d in "${E2E_TOUCHED_DIRS[@]}"; do
      m="$E2E_STATE/orig/$(echo "$d" | tr / _).mtime"
      [ -f "$m" ] && dir_mtime[$d]=$(cat "$m")
    done
  else
    warn "account files were changed by something else since setup; kept their backups as they are"
  fi
fi

rm -rf "$E2E_STATE"
# Directory mtimes last: removing the state directory itself touches /run.
for d in "${!dir_mtime[@]}"; do touch -m -d "${dir_mtime[$d]}" "$d"; done
[ "$status" = 0 ] && echo "teardown.sh: done"
exit "$status"
