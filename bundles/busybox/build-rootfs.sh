#!/bin/sh
# Build a minimal busybox rootfs from Debian's busybox-static.
# Usage: bundles/busybox/build-rootfs.sh DEST
# DEST is created (or refreshed) with /bin/busybox, an applet symlink per
# command, and the empty directories an OCI runtime expects to mount on.
set -eu
dest=${1:?usage: build-rootfs.sh DEST}
bb=/bin/busybox
if [ ! -x "$bb" ] || ! "$bb" --list >/dev/null 2>&1; then
    echo "build-rootfs: $bb missing: apt-get install busybox-static" >&2
    exit 1
fi
if ldd "$bb" >/dev/null 2>&1; then
    echo "build-rootfs: $bb is dynamically linked: install busybox-static, not busybox" >&2
    exit 1
fi
tmp="$dest.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
for d in bin sbin usr/bin usr/sbin etc dev proc sys tmp root run var/tmp var/log home; do
    mkdir -p "$tmp/$d"
done
chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
cp "$bb" "$tmp/bin/busybox"
for applet in $("$bb" --list); do
    [ "$applet" = busybox ] && continue
    ln -sf busybox "$tmp/bin/$applet"
done
# /bin/true and friends must resolve for `runc spec`-style bundles.
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$tmp/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/etc/group"
: >"$tmp/etc/hostname"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
