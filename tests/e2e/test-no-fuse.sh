#!/usr/bin/env bash
# Issue 2, must-show 5: without access to /dev/fuse, `mbx run` fails with exit 125 and
# a one-line error naming /dev/fuse. Run as mbxtest2 with /dev/fuse put back to this
# machine's shipped mode 0600 root for a moment (restored in a trap, and checked).
. "$(dirname "$0")/lib.sh"
e2e_init

u=mbxtest2
as_user "$u"
orig=$(stat -c '%a %u %g' /dev/fuse)
read -r omode ouid ogid <<<"$orig"
on_cleanup "chown $ouid:$ogid /dev/fuse; chmod $omode /dev/fuse"
chown 0:0 /dev/fuse
chmod 0600 /dev/fuse
mbx_as "$u" run -- true
chown "$ouid:$ogid" /dev/fuse
chmod "$omode" /dev/fuse
assert_eq "$orig" "$(stat -c '%a %u %g' /dev/fuse)" "/dev/fuse mode restored"
assert_mbx_error "/dev/fuse" "mbx run without /dev/fuse access"
check_no_leftovers

# With access back, the same user runs fine: the error really was about /dev/fuse.
mbx_as "$u" run -- true
assert_rc 0 "mbx run with /dev/fuse access"
check_no_leftovers
e2e_done
