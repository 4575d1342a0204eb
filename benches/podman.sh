#!/bin/bash
# boxctl beside podman on the same busybox image: the time of `run -d` (returns once the
# instance runs), `stop -t 0` and `rm`, for boxctl (over boxrun), podman with runc and
# podman with boxrun. Rounds are interleaved (boxctl, podman+runc, podman+boxrun, then
# rotated), medians are reported. No network on either side (`--net none`,
# `--network none`); boxctl runs on an overlay of the image (`--cow`), podman on its
# storage (vfs, a private root); cgroups through cgroupfs for podman.
#
#   benches/podman.sh [-r ROUNDS] [--boxctl PATH] [--boxrun PATH] [--runc PATH]
#
# Root is required; podman holds the engines lane's lock (/run/lock/boxrun-engines.lock)
# while it runs, as podman's locks are host-wide. Everything is under a temp dir removed
# on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)
# shellcheck source=benches/lib.sh
. benches/lib.sh
rounds=10
boxctl=target/release/boxctl
boxrun=target/release/boxrun
runc=$(command -v runc || echo /usr/sbin/runc)
while [ $# -gt 0 ]; do
    case "$1" in
    -r) rounds=$2; shift 2 ;;
    --boxctl) boxctl=$2; shift 2 ;;
    --boxrun) boxrun=$2; shift 2 ;;
    --runc) runc=$2; shift 2 ;;
    *) sed -n '9p' "$0" | sed 's/^# //' >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "podman bench: run as root" >&2; exit 1; }
command -v podman >/dev/null || { echo "podman bench: podman missing: apt-get install podman" >&2; exit 1; }
for b in "$boxctl" "$boxrun" "$runc"; do
    [ -x "$b" ] || { echo "podman bench: $b missing (scripts/build.sh)" >&2; exit 1; }
done
boxctl=$(readlink -f "$boxctl")
boxrun=$(readlink -f "$boxrun")
runc=$(readlink -f "$runc")

mkdir -p /run/lock
exec 9>/run/lock/boxrun-engines.lock
flock -w 900 9 || { echo "podman bench: another engines lane holds /run/lock/boxrun-engines.lock" >&2; exit 1; }

T=$(mktemp -d /tmp/bxpodman-bench.XXXXXX)
chmod 755 "$T"
cat >"$T/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/podman/events.log"
EOF
export CONTAINERS_CONF="$T/containers.conf"
pm() { # runtime args...
    local rt=$1
    shift
    podman --root "$T/podman/root" --runroot "$T/podman/run" --tmpdir "$T/podman/tmp" \
        --storage-driver vfs --cgroup-manager cgroupfs --events-backend file --runtime "$rt" "$@"
}
bx() { "$boxctl" --root "$T/boxctl" "$@"; }
cleanup() {
    pm "$runc" rm -a -f -t 0 >/dev/null 2>&1 || true
    pm "$boxrun" rm -a -f -t 0 >/dev/null 2>&1 || true
    local ids
    ids=$(bx ps -aq 2>/dev/null || true)
    [ -z "$ids" ] || bx rm -f $ids >/dev/null 2>&1 || true
    pm "$runc" system reset -f >/dev/null 2>&1 || true
    bench_release_mounts "$T"
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$here/bundles/busybox/build-rootfs.sh" "$T/rootfs" >/dev/null
tar -C "$T/rootfs" -c . | pm "$runc" import -q - localhost/bxbench-busybox >/dev/null
bx image import --size 64m "$T/rootfs" bb >/dev/null

now_ns() { date +%s%N; }
# Appends "ENGINE STEP MS" to $T/samples after running "$@" (fails loudly).
timed() { # engine step cmd...
    local e=$1 s=$2 t
    shift 2
    t=$(now_ns)
    if ! "$@" >/dev/null 2>"$T/err"; then
        echo "podman bench: FAILED: $e $s: $(cat "$T/err")" >&2
        exit 1
    fi
    echo "$e $s $(( ($(now_ns) - t) / 1000 ))" >>"$T/samples"
}
one() { # engine round
    local e=$1 n=bxpb$2
    case $e in
    boxctl)
        timed "$e" "run -d" bx run -d --cow --runtime "$boxrun" --net none --name "$n" bb sleep 1000
        timed "$e" "stop -t 0" bx stop -t 0 "$n"
        timed "$e" "rm" bx rm "$n" ;;
    podman+runc | podman+boxrun)
        local rt=$runc
        [ "$e" = podman+boxrun ] && rt=$boxrun
        timed "$e" "run -d" pm "$rt" run -d --network none --name "$n" localhost/bxbench-busybox sleep 1000
        timed "$e" "stop -t 0" pm "$rt" stop -t 0 "$n"
        timed "$e" "rm" pm "$rt" rm "$n" ;;
    esac
}
engines=(boxctl podman+runc podman+boxrun)
# One untimed warm-up each (page cache, podman's first-use set-up).
for e in "${engines[@]}"; do one "$e" w >/dev/null; done
: >"$T/samples"
for r in $(seq "$rounds"); do
    for k in 0 1 2; do one "${engines[$(( (r + k) % 3 ))]}" "$r$k"; done
done

echo "| step | boxctl → boxrun | podman → runc | podman → boxrun |"
echo "|---|---:|---:|---:|"
for s in "run -d" "stop -t 0" "rm"; do
    row="| \`$s\` |"
    for e in "${engines[@]}"; do
        m=$(awk -v e="$e" -v s="$s" '{ st = $2; for (i = 3; i < NF; i++) st = st " " $i }
            $1 == e && st == s { print $NF }' "$T/samples" | sort -n |
            awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f ms", m / 1000 }')
        row="$row $m |"
    done
    echo "$row"
done
echo "medians of $rounds rounds; podman $(podman --version | awk '{print $3}'), $("$runc" --version | head -1); load: $(cut -d' ' -f1-3 /proc/loadavg)"
