#!/usr/bin/env bash
# Build the L1 initramfs of the hardware-KVM lane (docs/testing.md, "The
# hardware-KVM lane"): busybox-static, an /init (scripts/nested/init), and
# the kernel modules the L1 needs before it can reach the host's files
# (virtio, 9p) and run KVM (kvm, kvm-amd), each with its dependencies as
# modules.dep lists them, in load order.
#   scripts/nested/mkinitrd.sh KVER OUT.gz
set -euo pipefail
kver=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
moddir=/lib/modules/$kver
die() {
	echo "lane: error: $*" >&2
	exit 1
}
[ -f "$moddir/modules.dep" ] || die "$moddir/modules.dep is missing (is linux-image-$kver installed?)"
[ -x /bin/busybox ] || die "/bin/busybox is missing (apt-get install busybox-static)"
ldd /bin/busybox >/dev/null 2>&1 &&
	die "/bin/busybox is not statically linked (apt-get install busybox-static)"

# The module path of NAME from modules.dep ('-' and '_' are the same in names).
modpath() {
	local re=${1//[-_]/[-_]}
	grep -E "(^|/)${re}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | head -1 | cut -d: -f1
}
# NAME's dependencies first (depth-first, as modprobe would load them), then NAME.
order=()
add() {
	local p deps d
	p=$(modpath "$1")
	[ -n "$p" ] || die "module $1 is not in $moddir/modules.dep"
	for d in "${order[@]}"; do [ "$d" = "$p" ] && return 0; done
	deps=$(grep -E "^${p}:" "$moddir/modules.dep" | cut -d: -f2)
	for d in $deps; do add "$(basename "$d" | sed -E 's/\.ko(\.[a-z]+)?$//')"; done
	order+=("$p")
}
for m in virtio_pci 9pnet_virtio 9p kvm-amd; do add "$m"; done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,dev,proc,sys,host,mod}
cp /bin/busybox "$tmp/bin/busybox"
for a in sh mount umount mkdir insmod chroot poweroff cat echo sleep ls; do
	ln -s busybox "$tmp/bin/$a"
done
: >"$tmp/mod/order"
for p in "${order[@]}"; do
	f=$(basename "$p")
	case "$f" in
	*.ko) cp "$moddir/$p" "$tmp/mod/$f" ;;
	*.ko.xz) xz -dc "$moddir/$p" >"$tmp/mod/${f%.xz}"; f=${f%.xz} ;;
	*.ko.zst) zstd -qdc "$moddir/$p" >"$tmp/mod/${f%.zst}"; f=${f%.zst} ;;
	*) die "cannot unpack module $p" ;;
	esac
	echo "$f" >>"$tmp/mod/order"
done
install -m 755 "$here/init" "$tmp/init"
(cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
