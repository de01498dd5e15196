#!/usr/bin/env bash
# /tmp and /var/tmp inside are private tmpfs: the host's files there are invisible,
# what the command writes there reaches neither the host nor the session (a later
# run does not see it, mbx status does not list it). With --keep-tmp the host's
# /tmp is visible. As root and as mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

for u in $(test_users root mbxtest); do
  as_user "$u"
  b=$(fixture_base "$u")
  host_fixture "/tmp/$b-host" root:root 644 $'host tmp file\n'
  host_fixture "/var/tmp/$b-host" root:root 644 $'host var tmp file\n'
  absent_on_host "/tmp/$b-inside" "/var/tmp/$b-inside"
  host_snapshot "/tmp/$b-host" "/var/tmp/$b-host" "/tmp/$b-inside" "/var/tmp/$b-inside"
  s=tmp-$u
  probe='for f in "$@"; do if [ -e "$f" ]; then echo "seen $f"; else echo "absent $f"; fi; done'

  mbx_as "$u" run --session "$s" -- sh -c '
set -e
echo "tmp $(stat -f -c %T /tmp)"
echo "vartmp $(stat -f -c %T /var/tmp)"
echo inside >"$3"
echo inside >"$4"
'"$probe" sh "/tmp/$b-host" "/var/tmp/$b-host" "/tmp/$b-inside" "/var/tmp/$b-inside"
  assert_rc 0 "mbx run (private /tmp)"
  assert_eq "tmp tmpfs
vartmp tmpfs
absent /tmp/$b-host
absent /var/tmp/$b-host
seen /tmp/$b-inside
seen /var/tmp/$b-inside" "$OUT" "/tmp and /var/tmp inside"
  host_unchanged "after writing to /tmp inside"

  mbx_as "$u" run --session "$s" -- sh -c "$probe" sh "/tmp/$b-inside" "/var/tmp/$b-inside"
  assert_rc 0 "second run"
  assert_eq "absent /tmp/$b-inside
absent /var/tmp/$b-inside" "$OUT" "a later run's /tmp"
  mbx_ok "$u" status "$s"
  assert_eq "" "$OUT" "mbx status after writing only to /tmp"

  mbx_as "$u" run --keep-tmp --session "$s" -- cat "/tmp/$b-host"
  assert_rc 0 "mbx run --keep-tmp"
  assert_eq "host tmp file" "$OUT" "the host's /tmp with --keep-tmp"
  host_unchanged "after --keep-tmp"
  check_no_leftovers
done
e2e_done
