#!/usr/bin/env bash
# --net none: the sandbox has its own network namespace with only a loopback
# interface; --net host: it sees the host's interfaces. As root and as mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

ifaces='tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort'
host_ifaces=$(sh -c "$ifaces")
note "host interfaces: $(echo "$host_ifaces" | tr '\n' ' ')"

for u in $(test_users root mbxtest); do
  as_user "$u"
  mbx_as "$u" run --net none -- sh -c "$ifaces"
  assert_rc 0 "mbx run --net none"
  assert_eq lo "$OUT" "interfaces with --net none"
  mbx_as "$u" run --net host -- sh -c "$ifaces"
  assert_rc 0 "mbx run --net host"
  assert_eq "$host_ifaces" "$OUT" "interfaces with --net host"
  check_no_leftovers
done
e2e_done
