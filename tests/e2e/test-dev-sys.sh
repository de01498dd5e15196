#!/usr/bin/env bash
# The sandbox's /dev is a safe one: null, zero, urandom and tty are character devices
# that work, no block device (such as the host's disks) is there; /sys is mounted
# read-only. As root and as mbxtest.
. "$(dirname "$0")/lib.sh"
e2e_init

probe='
for d in null zero urandom tty; do stat -c "%n %F" "/dev/$d"; done
echo discard >/dev/null && echo "null writable"
echo "zero $(head -c 8 /dev/zero | od -An -tx1 | tr -d " ")"
echo "urandom $(head -c 16 /dev/urandom | wc -c)"
echo "block devices: $(find /dev -type b 2>/dev/null | wc -l)"
awk "\$5 == \"/sys\" { n = split(\$6, o, \",\"); for (i = 1; i <= n; i++) if (o[i] == \"ro\") print \"sys ro\" }" /proc/self/mountinfo
'
for u in $(test_users root mbxtest); do
  as_user "$u"
  mbx_as "$u" run -- sh -c "$probe"
  assert_rc 0 "mbx run (/dev and /sys probe)"
  assert_eq "/dev/null character special file
/dev/zero character special file
/dev/urandom character special file
/dev/tty character special file
null writable
zero 0000000000000000
urandom 16
block devices: 0
sys ro" "$OUT" "/dev and /sys inside"
  check_no_leftovers
done
e2e_done
