#!/usr/bin/env bash
# Files of the host kept open inside while their names change, now that the
# kernel opens files without asking the server (OPEN answered ENOSYS: reads
# and writes go through one descriptor per file, and a host file is copied
# into the layer at its first write, not when opened for writing). As root and
# as mbxtest, with the server's descriptor budget as usual and squeezed to 16
# (MBX_FD_BUDGET: descriptors evicted between calls):
#   a host file read through a descriptor opened before `rm` reads whole;
#   one opened read-write, then removed, then written and read back through
#     that descriptor, holds the data written (a private copy), and the host's
#     file is untouched;
#   the same after a new file was renamed over it (the new one is intact);
#   a removed host file's size, mode, owner and times set through its
#     descriptor read back there (fstat), it counts no links, and a reopen
#     through /proc/self/fd is the same file (also of one opened read-only);
#   a reader open before another process appends to the file sees the data
#     appended (the copy-up is seen by descriptors opened before it);
#   an open for writing that writes nothing leaves no change in the session,
#     and O_TRUNC empties the file inside only;
#   2000 new files and 300 copy-ups under an open-file limit of 256.
. "$(dirname "$0")/lib.sh"
e2e_init

# The program run inside (python3: descriptors kept across the steps).
# Arguments: the directory of the host files.
PROGRAM='
import os, sys
d = sys.argv[1]
def whole(fd):
    os.lseek(fd, 0, 0)
    out = b""
    while True:
        b = os.read(fd, 65536)
        if not b: return out
        out += b
r = os.open(d + "/read-then-rm", os.O_RDONLY)
os.unlink(d + "/read-then-rm")
print("read-then-rm", len(whole(r)), whole(r)[:4].decode(), os.path.exists(d + "/read-then-rm"))
w = os.open(d + "/write-after-rm", os.O_RDWR)
os.unlink(d + "/write-after-rm")
os.pwrite(w, b"NEW", 0)
print("write-after-rm", whole(w)[:4].decode())
o = os.open(d + "/renamed-over", os.O_RDWR)
with open(d + "/replacement", "w") as f: f.write("replacement\n")
os.rename(d + "/replacement", d + "/renamed-over")
os.pwrite(o, b"OLD", 0)
print("renamed-over", whole(o)[:4].decode(), open(d + "/renamed-over").read().strip())
before = oct(os.stat(d + "/renamed-over").st_mode & 0o7777)
os.fchmod(o, 0o600)
os.ftruncate(o, 3)
print("renamed-over-meta", os.fstat(o).st_size, oct(os.fstat(o).st_mode & 0o7777), before,
      oct(os.stat(d + "/renamed-over").st_mode & 0o7777), open(d + "/renamed-over").read().strip())
m = os.open(d + "/meta-after-rm", os.O_RDWR)
os.unlink(d + "/meta-after-rm")
os.pwrite(m, b"0123456789", 0)
big = os.fstat(m).st_size
os.ftruncate(m, 4)
os.fchmod(m, 0o640)
os.fchown(m, 1, 2)
os.utime(m, (1000, 2000))
s = os.fstat(m)
print("meta-after-rm", big > 100000, s.st_size, oct(s.st_mode & 0o7777), s.st_uid, s.st_gid, int(s.st_mtime),
      s.st_nlink, whole(m).decode())
again = os.open("/proc/self/fd/%d" % m, os.O_WRONLY | os.O_APPEND)
os.write(again, b"++")
print("meta-reopened", os.fstat(m).st_size, whole(m).decode())
q = os.open(d + "/reopen-after-rm", os.O_RDONLY)
os.unlink(d + "/reopen-after-rm")
w2 = os.open("/proc/self/fd/%d" % q, os.O_WRONLY)
os.pwrite(w2, b"NEW", 0)
print("reopen-after-rm", whole(q)[:4].decode(), os.fstat(w2).st_size == os.fstat(q).st_size)
a = os.open(d + "/appended", os.O_RDONLY)
before = len(whole(a))
with open(d + "/appended", "a") as f: f.write("more\n")
print("appended", before, len(whole(a)), whole(a).decode().split()[-1])
n = os.open(d + "/opened-for-write", os.O_WRONLY)
os.close(n)
t = os.open(d + "/truncated", os.O_WRONLY | os.O_TRUNC)
os.close(t)
print("truncated", os.stat(d + "/truncated").st_size)
'

checks() {
  local u=$1 budget=$2 mode=${3:-} dir f
  dir=$(user_area "$u")/host-$budget$mode
  mkdir -p "$dir"
  for f in read-then-rm write-after-rm renamed-over meta-after-rm reopen-after-rm appended opened-for-write truncated; do
    head -c 100000 /dev/urandom | base64 >"$dir/$f"
    sed -i "1s/^..../$(echo "$f" | cut -c1-4 | tr a-z A-Z)/" "$dir/$f"
  done
  chown -R "$u:" "$dir"
  host_snapshot -R "$dir"
  local size
  size=$(stat -c %s "$dir/read-then-rm")
  capture_as "$u" env MBX_FD_BUDGET="$budget" "$(user_exe "$u" "$MBX")" run $mode --session "open-$budget${mode:+-m}" -- \
    /usr/bin/python3 -c "$PROGRAM" "$dir"
  assert_rc 0 "the program with files open across their removal"
  assert_contains "$OUT" "read-then-rm $size READ False" "a host file removed while open reads whole through its descriptor"
  assert_contains "$OUT" "write-after-rm NEWT" "written after its removal: the descriptor holds what was written"
  assert_contains "$OUT" "renamed-over OLDA replacement" "written after a rename over it: the old file has it, the new one is intact"
  assert_match "$OUT" "renamed-over-meta 3 0o600 (0o[0-7]+) \\1 replacement" \
    "chmod and truncate through the old file's descriptor: the old file has them, the new one is untouched"
  assert_contains "$OUT" "meta-after-rm True 4 0o640 1 2 2000 0 0123" \
    "size, mode, owner and times set through the descriptor of a removed host file read back"
  assert_contains "$OUT" "meta-reopened 6 0123++" "reopened through /proc after removal: the same file"
  assert_contains "$OUT" "reopen-after-rm NEWP True" "opened read-only, removed, reopened for writing: one file"
  assert_match "$OUT" "appended ([0-9]+) [0-9]+ more" "a reader opened before an append sees it"
  local b a
  b=$(sed -n 's/^appended \([0-9]*\) \([0-9]*\) more$/\1/p' <<<"$OUT")
  a=$(sed -n 's/^appended \([0-9]*\) \([0-9]*\) more$/\2/p' <<<"$OUT")
  assert_eq $((b + 5)) "$a" "the reader sees exactly the 5 bytes appended"
  assert_contains "$OUT" "truncated 0" "O_TRUNC empties the file inside"
  host_unchanged "after the run"
  mbx_ok "$u" status --json "open-$budget${mode:+-m}"
  assert_not_contains "$OUT" "opened-for-write" "an open for writing without a write changes nothing"
  assert_contains "$OUT" "$dir/truncated" "the truncated file is a change of the session"
  assert_contains "$OUT" "$dir/read-then-rm" "the removed file is a change of the session"
}

# Many files made and copied up under a small open-file limit (256: the
# server's budget is half of it): every descriptor the server keeps for them
# (a handle and a data descriptor per new file, the same per copy-up) counts
# against the budget, so none of the operations runs out of descriptors.
many() {
  local u=$1 dir i
  dir=$(user_area "$u")/many
  mkdir -p "$dir/host"
  for ((i = 0; i < 300; i++)); do echo "h$i" >"$dir/host/f$i"; done
  chown -R "$u:" "$dir"
  host_snapshot -R "$dir"
  capture_as "$u" prlimit --nofile=256:256 "$(user_exe "$u" "$MBX")" run --session open-many -- sh -c '
    set -e
    mkdir "$1/new"
    i=0
    while [ $i -lt 2000 ]; do echo "n$i" >"$1/new/f$i"; i=$((i + 1)); done
    for f in "$1"/host/f*; do chmod 600 "$f"; echo more >>"$f"; done
    echo "new lines: $(cat "$1"/new/f* | wc -l)"
    echo "host lines: $(cat "$1"/host/f* | wc -l)"' sh "$dir"
  assert_rc 0 "2000 files made and 300 copied up with 256 descriptors"
  assert_contains "$OUT" "new lines: 2000" "every new file reads back"
  assert_contains "$OUT" "host lines: 600" "every copied-up file has its line appended"
  host_unchanged "after the run"
}

for u in $(test_users mbxtest root); do
  as_user "$u"
  part "host files open across removal, rename and append" checks "$u" 100000
  part "... with descriptors evicted (MBX_FD_BUDGET=16)" checks "$u" 16
  part "... monitored (the kernel's opens reach the server)" checks "$u" 100000 --monitor
  part "many files under an open-file limit of 256" many "$u"
  check_no_leftovers
done
e2e_done
