#!/usr/bin/env bash
# Safety net run by scripts/test after every e2e test (and at the end): finds and
# removes what a test killed by its timeout could not clean up itself.
#   sweep.sh --baseline DIR   record the machine's FUSE mounts and user.max_user_namespaces
#   sweep.sh DIR              compare with DIR and clean up: processes tagged
#                             MBX_E2E_TAG=mbx-e2e-*, new FUSE mounts, e2e fixture paths
#                             (/etc/mbx-e2e-*, /usr/local/{bin,share}/mbx-e2e-*, ...),
#                             per-user test areas, per-test temp dirs, a changed
#                             user.max_user_namespaces, /dev/fuse not as setup left it.
# Exit 0 if there was nothing to clean, 1 otherwise (it says what it found).
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/accounts.sh
. "$here/accounts.sh"

fuse_mounts() {
  awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break
         if ($(i+1) ~ /^fuse(\.|blk$|$)/) print $5, $(i+1), $(i+2) }' /proc/self/mountinfo | sort
}

if [ "${1:-}" = --baseline ]; then
  fuse_mounts >"$2/fuse-mounts"
  sysctl -n user.max_user_namespaces >"$2/max_user_namespaces"
  exit 0
fi
base=${1:?usage: sweep.sh [--baseline] DIR}
found=0
report() { echo "sweep: $*"; found=1; }

for _ in 1 2 3; do
  pids=""
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = $$ ] && continue
    grep -qz '^MBX_E2E_TAG=mbx-e2e-' "/proc/$p/environ" 2>/dev/null && pids+=" $p"
  done
  for u in "${E2E_USERS[@]}"; do
    e2e_user_is_ours "$u" && pids+=" $(pgrep -u "$(id -u "$u")" | tr '\n' ' ')"
  done
  pids=$(echo "$pids" | xargs -n1 2>/dev/null | sort -un | tr '\n' ' ')
  [ -z "${pids// /}" ] && break
  report "killing leftover test processes: $(ps -o pid=,user=,args= -p "${pids// /,}" 2>/dev/null | tr '\n' ';' | sed 's/ \+/ /g')"
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null
  sleep 0.5
done

while read -r mp _; do
  [ -n "$mp" ] || continue
  report "detaching leftover FUSE mount $mp"
  umount -l "$mp"
done < <(comm -13 "$base/fuse-mounts" <(fuse_mounts))

orig=$(cat "$base/max_user_namespaces")
if [ "$(sysctl -n user.max_user_namespaces)" != "$orig" ]; then
  report "restoring user.max_user_namespaces=$orig"
  sysctl -q -w user.max_user_namespaces="$orig"
fi
if [ -f "$E2E_STATE/setup-done" ] && [ "$(stat -c '%a %u' /dev/fuse)" != "666 0" ]; then
  report "restoring /dev/fuse to root 0666 (as setup.sh left it)"
  chown 0:0 /dev/fuse
  chmod 0666 /dev/fuse
fi

shopt -s nullglob
leftovers=(/etc/mbx-e2e-* /usr/local/bin/mbx-e2e-* /usr/local/share/mbx-e2e-* /tmp/mbx-e2e-*
           /var/tmp/mbx-e2e-* /var/lib/mbxsem-* /root/.mbx-e2e /home/*/.mbx-e2e)
[ "${E2E_KEEP:-0}" = 1 ] || leftovers+=(/tmp/mbx-e2e.*)
for p in "${leftovers[@]}"; do
  [ -e "$p" ] || [ -L "$p" ] || continue
  report "removing leftover $p"
  rm -rf --one-file-system "$p"
done
exit "$found"
