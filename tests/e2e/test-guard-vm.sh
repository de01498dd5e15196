#!/usr/bin/env bash
# The BPF LSM guard, where it can be loaded: in a qemu guest with Debian's cloud
# kernel (tests/vm/vm.sh), and where it cannot: on this host.
#  1. host: `mbx doctor` finds BPF LSM unusable by trying to load and attach the
#     guard, and says why and how to fix it; its other checks pass.
#  2. guest: `mbx doctor` loads and attaches the guard ("bpf lsm ok").
# e2e-timeout: 900
. "$(dirname "$0")/lib.sh"
e2e_init

part_host() {
  capture_raw "$MBX" doctor
  assert_rc 0 "mbx doctor on the host"
  assert_match "$OUT" '^bpf lsm +no +.*the guard does not load \(load: ' "BPF LSM found unusable by loading it"
  assert_match "$OUT" '^ +fix: ' "a fix is given"
  assert_match "$OUT" '^fuse +ok ' "the FUSE check"
}

part_guest() {
  cat >"$T/guest.sh" <<GUEST
set -e
$MBX doctor >/tmp/doctor.out || true
cat /tmp/doctor.out
grep -Eq '^bpf lsm +ok ' /tmp/doctor.out
GUEST
  capture_raw bash "$REPO/tests/vm/vm.sh" "$T/guest.sh" "$MBX"
  assert_rc 0 "the guest's checks"
  assert_match "$OUT" '^bpf lsm +ok +the guard loads and attaches' "the guard loads in the guest"
}

part "host" part_host
part "guest" part_guest
e2e_done
