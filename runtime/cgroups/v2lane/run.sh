#!/bin/bash
# The pure cgroup v2 test lane: boots Debian's 6.1 kernel under QEMU (TCG,
# software emulation) with an initramfs that mounts cgroup2 alone at
# /sys/fs/cgroup, runs the boxrun-cgroups test binaries and boxrun cases
# there, and reports one line per test and a closing "N passed, N failed".
#
# Usage (as root): runtime/cgroups/v2lane/run.sh
# Needs: qemu-system-x86 cpio busybox-static jq (apt), cargo.
# Environment:
#   CARGO_TARGET_DIR      where cargo builds (default: <repo>/target)
#   V2LANE_CACHE          kernel cache (default: /var/cache/boxrun-v2lane)
#   V2LANE_TIMEOUT        hard limit for the VM in seconds (default: 600)
#   V2LANE_NO_BUILD=1     use already built binaries (needs a previous run's json)
#   V2LANE_VERBOSE=1      boot messages on the console (for a VM that does not boot)
# The VM's serial log stays in $CARGO_TARGET_DIR/v2lane/serial.log.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cd "$repo" || exit 1
target=${CARGO_TARGET_DIR:-$repo/target}
cache=${V2LANE_CACHE:-/var/cache/boxrun-v2lane}
vm_timeout=${V2LANE_TIMEOUT:-600}
work=$target/v2lane
export CARGO_TERM_COLOR=never

say() { echo "v2lane: $*"; }
die() {
    say "$*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (the kernel download and cpio device nodes need it)"
for tool in qemu-system-x86_64 cpio gzip jq dpkg-deb apt-get; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool missing: apt-get install qemu-system-x86 cpio jq"
done
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 ||
    die "/bin/busybox must be static: apt-get install busybox-static"

qpid=""
cleanup() {
    if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
        kill "$qpid" 2>/dev/null
        wait "$qpid" 2>/dev/null
    fi
    rm -rf "$work/initramfs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- kernel: Debian's linux-image-amd64 (6.1 on Debian 12), downloaded once
kdir=$cache/kernel
# virtio for the disk; for criu's kernel feature detection (criu check fails without
# them): the socket diag modules, nf_tables, veth and tun. Dependencies first: stage2.sh
# loads them in this order.
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk
inet_diag tcp_diag udp_diag raw_diag unix_diag netlink_diag af_packet_diag
crc32c_generic libcrc32c nfnetlink nf_tables veth tun"
fetch_kernel() {
    mkdir -p "$cache" || return 1
    local dl
    dl=$(mktemp -d "$cache/dl.XXXXXX") || return 1
    (
        set -e
        cd "$dl"
        # apt-get download warns when _apt cannot write here; root downloads then
        apt-get download linux-image-amd64 >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 && apt-get download linux-image-amd64 >/dev/null 2>&1; }
        pkg=$(dpkg-deb -f linux-image-amd64_*.deb Depends | grep -oE 'linux-image-[0-9][^ ,(]*' | head -1)
        [ -n "$pkg" ]
        apt-get download "$pkg" >/dev/null 2>&1
        mkdir x
        dpkg -x "$pkg"_*.deb x
        mkdir -p k/modules
        cp x/boot/vmlinuz-* k/vmlinuz
        ls x/lib/modules >k/version
        for m in $modules; do
            find x/lib/modules -name "$m.ko" -exec cp {} k/modules/ \;
            [ -f "k/modules/$m.ko" ]
        done
        rm -rf "$kdir"
        mv k "$kdir"
    )
    local rc=$?
    rm -rf "$dl"
    return $rc
}
have_kernel() {
    [ -f "$kdir/vmlinuz" ] || return 1
    for m in $modules; do
        [ -f "$kdir/modules/$m.ko" ] || return 1
    done
}
if ! have_kernel; then
    say "downloading Debian's linux-image-amd64 into $cache"
    fetch_kernel || die "could not download linux-image-amd64 (apt-get download): check apt sources"
fi
say "kernel $(cat "$kdir/version")"

# ---- binaries: the cgroups crate's tests and boxrun, release-built
mkdir -p "$work" || die "cannot create $work"
json=$work/tests.json
if [ "${V2LANE_NO_BUILD:-0}" != 1 ]; then
    say "building boxrun-cgroups tests and boxrun (release)"
    cargo test --release -p boxrun-cgroups --no-run --message-format=json >"$json" 2>"$work/build.log" ||
        { tail -20 "$work/build.log"; die "cargo test --no-run -p boxrun-cgroups failed"; }
    if ! cargo build --release -p boxrun >>"$work/build.log" 2>&1; then
        tail -20 "$work/build.log"
        say "boxrun did not build: its cases are reported as failed"
        boxrun_failed=1
    fi
fi
mapfile -t tests < <(jq -r 'select(.reason == "compiler-artifact" and .profile.test == true and .executable != null) | .target.name + " " + .executable' "$json")
[ "${#tests[@]}" -gt 0 ] || die "no test executables in $json"
boxrun=$target/release/boxrun
# never test a stale binary
[ "${boxrun_failed:-0}" = 1 ] && boxrun=/nonexistent

# ---- initramfs
ir=$work/initramfs
rm -rf "$ir"
mkdir -p "$ir"/{bin,dev,lane/tests,lane/modules,lane/bundles,root} || die "cannot create $ir"
# the kernel opens /dev/console for PID 1 before anything is mounted
mknod "$ir/dev/console" c 5 1 || die "mknod $ir/dev/console failed"
cp /bin/busybox "$ir/bin/busybox"
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$ir/bin/$a"
done
ln -s bin "$ir/sbin"
mkdir -p "$ir/usr" && ln -s ../bin "$ir/usr/bin" && ln -s ../bin "$ir/usr/sbin"
install -m 755 "$here/init" "$ir/init"
install -m 755 "$here/stage2.sh" "$here/boxrun-cases.sh" "$ir/lane/"
cp "$kdir"/modules/*.ko "$ir/lane/modules/"
echo $modules >"$ir/lane/modules/order"

# a binary and the shared libraries it needs, at their host paths
add_bin() {
    install -m 755 "$1" "$2" || return 1
    strip --strip-debug "$2" 2>/dev/null
    ldd "$1" | grep -oE '/[^ ]+' | while read -r lib; do
        [ -e "$ir$lib" ] && continue
        mkdir -p "$ir$(dirname "$lib")"
        cp -L "$lib" "$ir$lib"
    done
}
for t in "${tests[@]}"; do
    add_bin "${t#* }" "$ir/lane/tests/${t%% *}" || die "cannot copy test ${t#* }"
done
if [ -x "$boxrun" ]; then
    add_bin "$boxrun" "$ir/lane/boxrun" || die "cannot copy $boxrun"
fi

# criu for the checkpoint cases (Debian's 3.17 works on this 6.1 kernel), and GNU
# tar in place of busybox's: criu archives tmpfs mounts with GNU tar's options
if [ -x "$boxrun" ] && command -v criu >/dev/null 2>&1; then
    add_bin "$(command -v criu)" "$ir/bin/criu" || die "cannot copy criu"
    rm -f "$ir/bin/tar"
    add_bin "$(readlink -f /bin/tar)" "$ir/bin/tar" || die "cannot copy GNU tar"
fi

# the containers' rootfs (shared, read-only for most cases) and bundles
bundles/busybox/build-rootfs.sh "$ir/lane/rootfs" || die "cannot build the busybox rootfs"
# bundle NAME READONLY RESOURCES_JSON EXTRA_JQ ARGS...
bundle() {
    local name=$1 ro=$2 res=$3 extra=$4
    shift 4
    mkdir -p "$ir/lane/bundles/$name"
    # (not jq --args: jq would take an argument "-c" as its own option)
    local args='[]' a
    for a in "$@"; do
        args=$(jq -c --arg a "$a" '. + [$a]' <<<"$args") || die "jq failed on $a"
    done
    jq --arg name "$name" --argjson ro "$ro" --argjson res "$res" --argjson args "$args" \
        '.root = {path: "/lane/rootfs", readonly: $ro}
        | .hostname = $name
        | .process.args = $args
        | del(.linux.seccomp)
        | .linux.resources = (.linux.resources + $res)
        | '"$extra" <bundles/busybox/config.json >"$ir/lane/bundles/$name/config.json" ||
        die "cannot write bundle $name"
}
deny_all='{"devices": [{"allow": false, "access": "rwm"}]}'
bundle limits true '{"memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000}, "pids": {"limit": 32}}' . sleep 600
bundle oom true '{"memory": {"limit": 33554432, "swap": 33554432}}' . sh -c \
    'dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd_exit=$?; exec sleep 600'
bundle forkbomb true '{"pids": {"limit": 16}}' . sh -c \
    '( while :; do sleep 600 & done; echo bomb_unbounded ) 2>/dev/null; echo bomb_stopped rc=$?; exec sleep 600'
bundle cpu true '{"cpu": {"quota": 20000, "period": 100000}}' . sh -c \
    'timeout 2 sh -c "while :; do :; done"; echo spin_done; exec sleep 600'
# the device cases use a node of the VM's virtio disk (b MAJ:MIN, made by
# boxrun-cases.sh, which also fills in the numbers): no driver permission
# check stands in front of the device program for a read-only open
bundle devdeny false "$deny_all" . sh -c \
    'true < /devnode && echo node_ok || echo node_denied; head -c 1 /dev/zero >/dev/null && echo zero_ok'
bundle devallow false '{"devices": [{"allow": false, "access": "rwm"},
    {"allow": true, "type": "b", "major": 999999, "minor": 999998, "access": "r"}]}' . sh -c \
    'true < /devnode && echo node_ok; (true > /devnode) 2>/dev/null && echo write_ok || echo write_denied'
bundle cgns true '{"pids": {"limit": 7}}' '.linux.namespaces += [{"type": "cgroup"}]' sh -c \
    'cat /proc/self/cgroup; echo pids=$(cat /sys/fs/cgroup/pids.max); mkdir /sys/fs/cgroup/x 2>/dev/null && echo ro_bad || echo ro_ok'
# rootless cases: util-linux setpriv (busybox's cannot change uids) and the bundle
# `boxrun spec --rootless` writes, as uid/gid 65534 would get it, with a pids limit
add_bin "$(command -v setpriv)" "$ir/lane/setpriv" || die "cannot copy setpriv"
if [ -x "$boxrun" ]; then
    rl=$ir/lane/bundles/rootless
    mkdir -p "$rl" "$rl-nolimit"
    "$boxrun" spec --rootless --bundle "$rl" || die "boxrun spec --rootless failed"
    jq '.linux.uidMappings[0].hostID = 65534 | .linux.gidMappings[0].hostID = 65534
        | .root.path = "/lane/rootfs" | .process.terminal = false
        | .process.args = ["sh", "-c", "cat /proc/self/uid_map /proc/self/cgroup; echo ready; exec sleep 600"]
        | .linux.resources = {pids: {limit: 9}}' "$rl/config.json" >"$rl/c.json" &&
        mv "$rl/c.json" "$rl/config.json" || die "cannot write the rootless bundle"
    jq 'del(.linux.resources) | .process.args = ["sh", "-c", "cat /proc/self/cgroup"]' \
        "$rl/config.json" >"$rl-nolimit/config.json" || die "cannot write the rootless bundle"
fi

# checkpoint/restore: a counter loop whose stdio and file stay inside the container
# (criu dumps what is in its mount namespace); the VM's network namespace (criu
# would need iproute2 to dump a new one). cr: no cgroup mount; crlr: the cgroup
# mount (a bind of the container's cgroup, an external mount for criu)
counter='exec </dev/null >/dev/null 2>&1; i=0; while :; do i=$((i+1)); echo $i >/dev/shm/count; sleep 1; done'
no_netns='.linux.namespaces -= [{"type": "network"}]'
bundle cr true '{}' "$no_netns"' | del(.mounts[] | select(.destination == "/sys/fs/cgroup"))' \
    sh -c "$counter"
bundle crlr true '{}' "$no_netns" sh -c "$counter"

(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz" || die "cpio failed"
say "initramfs $(du -h "$work/initrd.gz" | cut -f1), ${#tests[@]} test binaries$([ -x "$boxrun" ] && echo ", boxrun")"

# ---- boot (a virtio disk gives io.max a real major:minor)
truncate -s 64M "$work/disk.raw" || die "cannot create $work/disk.raw"
log=$work/serial.log
: >"$log"
say "booting (TCG, hard limit ${vm_timeout}s)"
start=$(date +%s)
kargs="quiet loglevel=1"
[ "${V2LANE_VERBOSE:-0}" = 1 ] && kargs="loglevel=7"
timeout --kill-after=10 "$vm_timeout" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp 2 -m 1536 \
    -nodefaults -no-user-config -display none -no-reboot -monitor none \
    -serial "file:$log" \
    -kernel "$kdir/vmlinuz" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 $kargs panic=-1 mitigations=off" \
    -drive "file=$work/disk.raw,if=virtio,format=raw" \
    </dev/null >"$work/qemu.log" 2>&1 &
qpid=$!

# live per-test lines while the VM runs, then the tally
# (in the background, so that a signal to this script is handled at once)
awk -v live=1 -f "$here/report.awk" < <(tail -n +1 -f --pid="$qpid" "$log") &
apid=$!
wait "$qpid"
qrc=$?
qpid=""
wait "$apid"
say "VM ran $(($(date +%s) - start))s (qemu exit $qrc); serial log: $log"
[ "$qrc" = 124 ] && say "VM killed at the ${vm_timeout}s limit"
[ -s "$work/qemu.log" ] && grep -v '^$' "$work/qemu.log" | head -5 | sed 's/^/v2lane: qemu: /'
awk -v live=0 -f "$here/report.awk" "$log"
