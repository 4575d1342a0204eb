#!/bin/bash
# Time to a running instance vs image size: `boxctl run -d` on a store on the
# default store's file system (/var/lib, ext4 on a default Debian install),
# beside `podman run -d` of the same image with runc and with boxrun.
#
#   benches/disk.sh [--sizes 100,1024,4096] [--rounds N] [--boxctl PATH] [--boxrun PATH]
#                   [--store-fs DIR] [--no-podman] [--no-copy]
#
# Images: the busybox rootfs plus one file of SIZE MiB from /dev/urandom
# (incompressible, no holes). For each size, each way is timed ROUNDS times
# cold (sync + `echo 3 > /proc/sys/vm/drop_caches` before, untimed) and
# ROUNDS times warm; the median is printed, one line per size:
#   boxctl       the default: storage pool, instance disk = reflink (FICLONE)
#   boxctl-copy  BOXCTL_STORAGE_POOL=off: full sparse copy into the instance directory
#   boxctl-cow   --cow: overlay of the shared image disk and a small upper disk
#   podman-runc / podman-boxrun  `podman run -d` (overlay storage) with that runtime
# Every run is `... IMAGE /bin/sleep 600` without networking (boxctl --net none,
# podman --network none); the instance/container is removed after each sample
# (untimed). Root is required; everything made is removed on exit (EXIT trap):
# the stores (and their storage pool mount and loop device), podman
# containers and images named bxdisk-<pid>-*.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=100,1024,4096
rounds=3
boxctl=$PWD/target/release/boxctl
boxrun=$PWD/target/release/boxrun
store_fs=/var/lib
podman=1
copy=1
while [ $# -gt 0 ]; do
    case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --boxctl) boxctl=$(realpath "$2"); shift 2 ;;
    --boxrun) boxrun=$(realpath "$2"); shift 2 ;;
    --store-fs) store_fs=$2; shift 2 ;;
    --no-podman) podman=""; shift ;;
    --no-copy) copy=""; shift ;;
    *) sed -n '5,7p' "$0" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "disk bench: run as root" >&2; exit 1; }
for f in "$boxctl" "$boxrun"; do
    [ -x "$f" ] || { echo "disk bench: $f missing: run scripts/build.sh" >&2; exit 1; }
done
tag=bxdisk-$$
work=$(mktemp -d "$store_fs/boxctl-disk-bench.XXXXXX")
pool_root=$work/pool-root
copy_root=$work/copy-root
made_podman=()

cleanup() {
    set +e
    for r in "$pool_root" "$copy_root"; do
        [ -d "$r" ] || continue
        for id in $("$boxctl" --root "$r" ps -a -q 2>/dev/null); do
            "$boxctl" --root "$r" rm -f "$id" >/dev/null 2>&1
        done
        # The pool's loop device is auto-cleared once unmounted.
        mountpoint -q "$r/pool/mnt" && umount "$r/pool/mnt"
    done
    if [ -n "$podman" ]; then
        podman ps -a --format '{{.Names}}' | grep "^$tag-" | xargs -r podman rm -f -t 0 >/dev/null
        for i in "${made_podman[@]}"; do podman rmi -f "$i" >/dev/null 2>&1; done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

now_ns() { date +%s%N; }

drop_caches() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

# time_one COLD|WARM CMD...: run CMD (which starts something), print ms.
time_one() {
    local mode=$1
    shift
    [ "$mode" = cold ] && drop_caches
    local t0 t1
    t0=$(now_ns)
    "$@" >/dev/null
    t1=$(now_ns)
    echo $(((t1 - t0) / 1000000))
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR + 1) / 2)] : "-")}'; }

# measure NAME START_CMD... : ROUNDS cold and ROUNDS warm samples; the
# removal command is in $remove (run after each sample, untimed).
measure() {
    local name=$1
    shift
    local cold=() warm=() i
    for ((i = 0; i < rounds; i++)); do
        cold+=("$(time_one cold "$@")")
        eval "$remove"
        warm+=("$(time_one warm "$@")")
        eval "$remove"
    done
    printf '%s cold %s ms warm %s ms' "$name" \
        "$(printf '%s\n' "${cold[@]}" | median)" "$(printf '%s\n' "${warm[@]}" | median)"
}

bctl() { "$boxctl" --root "$1" --runtime "$boxrun" "${@:2}"; }

fs_type=$(findmnt -n -o FSTYPE -T "$store_fs")
echo "# disk bench $(date -u +%FT%TZ): store file system $store_fs ($fs_type), $rounds rounds, load $(cut -d' ' -f1-3 /proc/loadavg)"
H="--ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
for mib in ${sizes//,/ }; do
    src=$work/src-$mib
    bundles/busybox/build-rootfs.sh "$src" >/dev/null
    head -c "$((mib << 20))" /dev/urandom >"$src/data.bin"
    img=bx$mib
    bctl "$pool_root" image import "$src" "$img" >/dev/null
    [ -n "$copy" ] && BOXCTL_STORAGE_POOL=off bctl "$copy_root" image import "$src" "$img" >/dev/null
    rm -rf "$src"
    line="size ${mib} MiB:"
    remove='bctl "$pool_root" rm -f bench >/dev/null'
    line+=" $(measure boxctl bctl "$pool_root" run -d --net none --name bench "$img" /bin/sleep 600) |"
    line+=" $(measure boxctl-cow bctl "$pool_root" run -d --cow --net none --name bench "$img" /bin/sleep 600) |"
    if [ -n "$copy" ]; then
        remove='bctl "$copy_root" rm -f bench >/dev/null'
        line+=" $(export BOXCTL_STORAGE_POOL=off; measure boxctl-copy bctl "$copy_root" run -d --net none --name bench "$img" /bin/sleep 600) |"
    fi
    if [ -n "$podman" ]; then
        archive=$work/$img.tar
        bctl "$pool_root" image export -o "$archive" "$img" >/dev/null
        pimg=localhost/$tag-$img:latest
        podman load -q -i "$archive" >/dev/null
        podman tag "localhost/$img:latest" "$pimg"
        podman rmi "localhost/$img:latest" >/dev/null
        made_podman+=("$pimg")
        rm -f "$archive"
        remove='podman rm -f -t 0 $tag-c >/dev/null'
        # shellcheck disable=SC2086
        line+=" $(measure podman-runc podman --runtime runc run -d $H --network none --name "$tag-c" "$pimg" /bin/sleep 600) |"
        # shellcheck disable=SC2086
        line+=" $(measure podman-boxrun podman --runtime "$boxrun" run -d $H --network none --name "$tag-c" "$pimg" /bin/sleep 600)"
    fi
    echo "$line"
    bctl "$pool_root" image rm "$img" >/dev/null
    [ -n "$copy" ] && bctl "$copy_root" image rm "$img" >/dev/null
done
echo "# done $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
