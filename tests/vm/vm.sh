#!/usr/bin/env bash
# Runs a script as root in a qemu guest with Debian's cloud kernel, where BPF LSM
# programs load (they do not on the host kernel of these machines; see
# shared/VM.md for the measured recipe). The guest's root is a tmpfs made of
# busybox, kmod's modprobe, the fuse, loop and af_key modules, the programs given (with their shared libraries) and
# the script, and a scratch ext4 at /data; its serial console is printed; the exit status is the script's
# (the guest writes it to an isa-debug-exit port), or 125 if the VM failed.
#
#   tests/vm/vm.sh SCRIPT [FILE | FILE=GUEST_PATH]...
#
# Files (programs come with their shared libraries) are placed at the same path
# in the guest, or at GUEST_PATH; not under /tmp, /run or /data, which the guest
# mounts over. MBX_VM_CACHE (default
# /var/cache/mbx-vm) keeps the kernel between runs; MBX_VM_TIMEOUT (default 600)
# bounds a boot in seconds; MBX_VM_CPUS (default 2) is the guest's vCPUs.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

SCRIPT=$1
shift
CACHE=${MBX_VM_CACHE:-/var/cache/mbx-vm}
TIMEOUT=${MBX_VM_TIMEOUT:-600}
CPUS=${MBX_VM_CPUS:-2}
mkdir -p "$CACHE"

vm_fail() { echo "vm: $*" >&2; exit 125; }

# ---- the kernel: Debian's cloud image package, unpacked (never installed)
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
  awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$pkg" ] || vm_fail "cannot find the cloud kernel package (run apt-get update)"
kver=${pkg#linux-image-}
kdir=$CACHE/$kver
if [ ! -f "$kdir/boot/vmlinuz-$kver" ]; then
  echo "vm: fetching $pkg into $CACHE" >&2
  rm -rf "$kdir" "$CACHE"/"$pkg"_*.deb
  (cd "$CACHE" && apt-get download -q "$pkg" >/dev/null 2>&1) || vm_fail "apt-get download $pkg failed"
  dpkg-deb -x "$CACHE"/"$pkg"_*.deb "$kdir.tmp"
  mv "$kdir.tmp" "$kdir"
  rm -f "$CACHE"/"$pkg"_*.deb
fi

work=$(mktemp -d /tmp/mbx-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,mnt,tmp,run,root,var/tmp,lib/modules}

# ---- busybox, the modules, the programs with their libraries
cp /bin/busybox "$root/bin/busybox"
for a in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
mdir=$kdir/lib/modules/$kver
mkdir -p "$root/lib/modules/$kver"
# af_key (and what it needs): a module the guard's battery asks the kernel to
# autoload, through kmod's modprobe as the kernel's usermode helper.
for m in fs/fuse/fuse.ko drivers/block/loop.ko net/key/af_key.ko net/xfrm/xfrm_algo.ko; do
  mkdir -p "$root/lib/modules/$kver/kernel/$(dirname "$m")"
  cp "$mdir/kernel/$m" "$root/lib/modules/$kver/kernel/$m"
done
cp "$mdir"/modules.order "$mdir"/modules.builtin "$mdir"/modules.builtin.modinfo "$root/lib/modules/$kver/"
depmod -b "$root" "$kver"

copy_with_libs() {
  local f=$1 dest=${2:-$1} lib
  mkdir -p "$root$(dirname "$dest")"
  cp -aL "$f" "$root$dest"
  [ -x "$f" ] || return 0
  for lib in $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*'); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
copy_with_libs "$(command -v mke2fs)"
copy_with_libs "$(command -v kmod)" /sbin/modprobe
cp /etc/mke2fs.conf "$root/etc/" 2>/dev/null || true
for f in "$@"; do
  src=${f%%=*} dest=${f#*=}
  [ -e "$src" ] || vm_fail "no such file: $src"
  case $dest in /tmp/* | /run/* | /data/*) vm_fail "$dest: the guest mounts over it; give FILE=GUEST_PATH" ;; /*) ;;
    *) vm_fail "give absolute paths: $dest" ;; esac
  copy_with_libs "$src" "$dest"
done
cc -static -O2 -o "$root/bin/vm-exit" "$(dirname "$0")/vm-exit.c" || vm_fail "cannot build vm-exit"
cp "$SCRIPT" "$root/test.sh"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

# ---- init: pivot_root does not work from the initramfs itself, so the first
# stage moves everything to a tmpfs and switches to it.
cat >"$root/init" <<'EOF'
#!/bin/sh
if [ ! -e /.stage2 ]; then
  /bin/mount -t tmpfs -o size=1g,mode=755 root /mnt
  for d in /*; do [ "$d" = /mnt ] || [ "$d" = /proc ] || [ "$d" = /sys ] || [ "$d" = /dev ] || cp -a "$d" /mnt/; done
  mkdir -p /mnt/proc /mnt/sys /mnt/dev /mnt/mnt
  : >/mnt/.stage2
  exec switch_root /mnt /init
fi
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs shm /dev/shm
mount -t securityfs securityfs /sys/kernel/security
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
modprobe fuse
ip link set lo up
# A scratch ext4 at /data: the guest's tmpfs has no user xattrs before Linux
# 6.6, and session layers need them (MBX_HOME goes there).
modprobe loop
mkdir -p /data /var/lib
truncate -s 2G /var/lib/data.img
/usr/sbin/mke2fs -q -t ext4 -F /var/lib/data.img
mount -t ext4 -o loop /var/lib/data.img /data
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
echo "vm: guest up ($(uname -r)), lsm=$(cat /sys/kernel/security/lsm)"
cd /
sh /test.sh
status=$?
echo "vm: test exited with $status"
vm-exit "$status"
poweroff -f
EOF
chmod 755 "$root/init"
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null) >"$work/initrd"

# ---- boot (TCG: the nested KVM here cannot run a stock kernel)
rc=0
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -accel tcg -m 2048 -smp "$CPUS" -cpu max \
  -kernel "$kdir/boot/vmlinuz-$kver" -initrd "$work/initrd" \
  -append "console=ttyS0 lsm=landlock,lockdown,yama,bpf panic=-1 quiet loglevel=3" \
  -no-reboot -display none -serial stdio -monitor none \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 </dev/null || rc=$?
# The port turns status N into exit 2N+1; anything else is the VM's failure
# (0: the guest panicked or powered off without a status; 124: timeout).
if [ $((rc % 2)) = 1 ]; then exit $(((rc - 1) / 2)); fi
vm_fail "the guest ended without a test status (qemu exit $rc)"
