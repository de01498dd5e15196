#!/usr/bin/env bash
# Prepares this machine for the mbx end-to-end tests; tests/e2e/teardown.sh undoes
# every change exactly. Run as root. Safe to run again (it tears down leftovers of an
# earlier setup first).
#
# What it changes:
#  - user mbxtest  (home /home/mbxtest) with a subordinate id range
#      mbxtest:<start>:65536 in /etc/subuid and /etc/subgid, <start> chosen above
#      every range already there, so newuidmap/newgidmap can map 1..65535 for it;
#  - user mbxtest2 (home /home/mbxtest2) with NO subordinate range (useradd is told
#      SUB_UID_COUNT=0, since Debian's useradd would otherwise allocate one);
#  - /dev/fuse mode 0666. These machines ship /dev/fuse as crw------- root, whereas a
#      stock Debian system has crw-rw-rw- (udev's default rules set MODE="0666" for
#      the fuse misc device), which is what lets an unprivileged user mount FUSE in
#      its own user namespace. The original mode and owner are remembered.
# Both users carry the GECOS marker below; teardown only ever removes users with it.
# State (original /dev/fuse mode, pristine copies of the account files so that even
# shadow-utils' backup files "passwd-" etc. can be put back) lives in /run/mbx-e2e,
# which a reboot clears together with the /dev/fuse mode it describes.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/accounts.sh
. "$here/accounts.sh"

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (it creates users and changes /dev/fuse)" >&2
  exit 1
fi
for tool in useradd userdel newuidmap newgidmap setpriv; do
  command -v "$tool" >/dev/null || { echo "setup.sh: $tool not found (run scripts/install-deps)" >&2; exit 1; }
done

# Refuse to touch users that exist but are not ours.
for u in "${E2E_USERS[@]}"; do
  if getent passwd "$u" >/dev/null && ! e2e_user_is_ours "$u"; then
    echo "setup.sh: user $u exists and was not created by the e2e setup; refusing to touch it" >&2
    exit 1
  fi
done

# Leftovers of an earlier setup (crashed run, missing teardown): undo them first so the
# remembered originals below are the machine's real originals.
if [ -e "$E2E_STATE/setup-done" ] || [ -d "$E2E_STATE" ] || e2e_any_user_exists; then
  bash "$here/teardown.sh"
fi

declare -A dir_mtime
for d in "${E2E_TOUCHED_DIRS[@]}"; do dir_mtime[$d]=$(stat -c '%y' "$d"); done
mkdir -p "$E2E_STATE/orig"
chmod 700 "$E2E_STATE"
for d in "${E2E_TOUCHED_DIRS[@]}"; do
  echo "${dir_mtime[$d]}" >"$E2E_STATE/orig/$(echo "$d" | tr / _).mtime"
done

# Pristine copies (content, mode, owner, mtime) of every account file useradd/userdel
# rewrite, including their "-" backups, or a note that the file was absent.
for f in "${E2E_ACCOUNT_FILES[@]}"; do
  b=$(basename "$f")
  if [ -e "$f" ]; then
    cp -p "$f" "$E2E_STATE/orig/$b"
  else
    : >"$E2E_STATE/orig/$b.absent"
  fi
done

# /dev/fuse: remember, then make it like stock Debian.
if [ ! -c /dev/fuse ]; then
  echo "setup.sh: /dev/fuse is missing (modprobe fuse)" >&2
  exit 1
fi
stat -c '%a %u %g' /dev/fuse >"$E2E_STATE/fuse-mode"
chmod 0666 /dev/fuse

# Users. -l: keep them out of lastlog/faillog; SUB_*_COUNT=0: no automatic sub-ids.
useradd -m -l -c "$E2E_GECOS" -s /bin/bash -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 mbxtest
useradd -m -l -c "$E2E_GECOS" -s /bin/bash -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 mbxtest2

# Sub-id range for mbxtest: above every existing range in either file, 64Ki-aligned.
start=$(awk -F: 'NF >= 3 && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ {
                   e = $2 + $3; if (e > m) m = e }
                 END { s = (m > 100000 ? m : 100000); print int((s + 65535) / 65536) * 65536 }' \
         /etc/subuid /etc/subgid 2>/dev/null)
for f in /etc/subuid /etc/subgid; do
  [ -e "$f" ] || { : >"$f"; chmod 644 "$f"; }
  e2e_remove_lines "$f" mbxtest2   # in case an older useradd allocated one anyway
  printf 'mbxtest:%s:65536\n' "$start" >>"$f"
done
echo "mbxtest:$start:65536" >"$E2E_STATE/subid-line"

touch "$E2E_STATE/setup-done"
echo "setup.sh: users mbxtest (sub-ids $start..$((start + 65535))) and mbxtest2 (none) created; /dev/fuse 0666 (was $(cut -d' ' -f1 "$E2E_STATE/fuse-mode"))"
