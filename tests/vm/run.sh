#!/usr/bin/env bash
# Runs SCRIPT as root in the qemu guest of tests/vm/vm.sh (Debian's cloud kernel,
# BPF LSM on), with the built mbx on PATH, and exits with SCRIPT's status (125
# if the VM itself failed). Run from anywhere in the source tree:
#
#   tests/vm/run.sh [SCRIPT]        default SCRIPT: tests/vm/guard-battery.sh
#
# mbx comes from the meson build directory $MBX_BUILD_DIR, used as it is; without
# it, build-vm/ in the source tree is set up and built first. The guest also has
# /usr/local/bin/escape (tests/vm/escape.c), make, and mbx-guardd where the build
# has one; SCRIPT sees MBX and ESCAPE naming them, and runs from /usr/local/lib,
# beside battery-lib.sh (helpers it may source).
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
script=$(readlink -f "${1:-$repo/tests/vm/guard-battery.sh}")
[ -f "$script" ] || { echo "run.sh: no such script: ${1:-}" >&2; exit 125; }

if [ -n "${MBX_BUILD_DIR:-}" ]; then
  build=$(readlink -f "$MBX_BUILD_DIR")
else
  build=$repo/build-vm
  [ -f "$build/build.ninja" ] || meson setup "$build" "$repo" >&2
  ninja -C "$build" >&2
fi
[ -x "$build/src/mbx" ] || { echo "run.sh: no mbx in $build (build it, or set MBX_BUILD_DIR)" >&2; exit 125; }

tmp=$(mktemp -d /tmp/mbx-vm-run.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cc -static -O2 -o "$tmp/escape" "$repo/tests/vm/escape.c"
cat >"$tmp/guest.sh" <<'GUEST'
export MBX=/usr/local/bin/mbx ESCAPE=/usr/local/bin/escape
cd /usr/local/lib && sh /usr/local/lib/vm-script.sh
GUEST
files=("$build/src/mbx=/usr/local/bin/mbx" "$tmp/escape=/usr/local/bin/escape"
  "$script=/usr/local/lib/vm-script.sh" "$repo/tests/vm/battery-lib.sh=/usr/local/lib/battery-lib.sh"
  "$(command -v make)=/usr/bin/make")
[ -x "$build/src/mbx-guardd" ] && files+=("$build/src/mbx-guardd=/usr/local/sbin/mbx-guardd")
# The built-in profiles, where an installed mbx finds them.
for p in "$build"/profiles/*.toml; do
  [ -e "$p" ] && files+=("$p=/usr/local/share/mbx/profiles/$(basename "$p")")
done
rc=0
bash "$repo/tests/vm/vm.sh" "$tmp/guest.sh" "${files[@]}" || rc=$?
exit "$rc"
