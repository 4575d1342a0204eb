#!/bin/bash
# Scale bench: N busybox instances (`sleep`) on one boxctl store, for N = 10, 100,
# 1,000, without a network (`--net none`) and on one bridge. For each N it reports:
# the time to start them all (`boxctl run -d --cow`, one after another), the time of
# `ps`, `ps --json` and `stats --no-stream` (medians of 5), the monitors' PSS per
# instance (smaps_rollup), the descriptors and inotify instances one monitor holds,
# and the time of one `rm -f` of all of them; then it checks nothing is left (instance
# directories, records, cgroups, veths, monitors) and fails loudly if anything is.
# `ps` is also measured in CPU time (`perf stat -r 5`, when perf is installed). At the
# end a growth table gives, per operation, the figure at each count and the ratio
# between successive counts (x10 instances: ~10 is O(n), ~1 is O(1), ~100 is O(n^2)).
#
#   benches/scale.sh [--counts 10,100,1000] [--net none|bridge|both] [--boxctl PATH] [--runtime PATH]
#
# Default: --counts 10,100 --net both (the 1,000 case takes minutes: ask for it).
# Root is required. Everything lives in a temp store (/tmp/boxctl-scale.XXXXXX) removed
# on exit; the bridge is a /22 in 10.224.0.0/16 that no host route uses.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)
# shellcheck source=benches/lib.sh
. benches/lib.sh
counts=10,100
nets=both
boxctl=target/release/boxctl
runtime=target/release/boxrun
usage() { sed -n '13,15p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
    --counts) counts=$2; shift 2 ;;
    --net) nets=$2; shift 2 ;;
    --boxctl) boxctl=$2; shift 2 ;;
    --runtime) runtime=$2; shift 2 ;;
    *) usage >&2; exit 2 ;;
    esac
done
case $nets in none) nets="none" ;; bridge) nets="bridge" ;; both) nets="none bridge" ;; *) usage >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "scale bench: run as root" >&2; exit 1; }
for b in "$boxctl" "$runtime"; do
    [ -x "$b" ] || { echo "scale bench: $b missing: run scripts/build.sh" >&2; exit 1; }
done
boxctl=$(readlink -f "$boxctl")
runtime=$(readlink -f "$runtime")

work=$(mktemp -d /tmp/boxctl-scale.XXXXXX)
chmod 0711 "$work" # unprivileged instances' roots must reach their disks below it
root=$work/root
net=bxsc$(( $$ % 100000 ))
bx() { "$boxctl" --root "$root" "$@"; }
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# Median wall time in ms of 5 runs of "$@" (output discarded).
time5() {
    local i t
    for i in 1 2 3 4 5; do
        t=$(now_ns)
        "$@" >/dev/null
        ms_since "$t"
    done | median
}
monitors() { pgrep -f -- "--root $root __monitor" || true; }
# CPU ms of one `ps` (task-clock, mean of 5), or "-" without perf.
ps_cpu() {
    command -v perf >/dev/null || { echo -; return; }
    perf stat -r 5 -x, -e task-clock "$boxctl" --root "$root" ps 2>&1 >/dev/null |
        awk -F, '/task-clock/ { printf "%.1f", $1 }'
}

remove_all() {
    local ids
    ids=$(bx ps -aq 2>/dev/null || true)
    [ -z "$ids" ] || bx rm -f $ids >/dev/null
}
cleanup() {
    remove_all || true
    bx network rm "$net" >/dev/null 2>&1 || true
    bench_release_mounts "$work"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Anything an instance of this store left behind: instance directories, cgroups
# named after its ids, veths on the bench's bridge.
leftovers() { # ids
    local id c n=0
    n=$(find "$root/instances" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    for id in "$@"; do
        for c in /sys/fs/cgroup/*/boxctl/"$id" /sys/fs/cgroup/boxctl/"$id"; do
            [ -e "$c" ] && n=$((n + 1))
        done
    done
    n=$((n + $(grep -c '^\[' "$root/instances.toml" 2>/dev/null || true)))
    n=$((n + $(monitors | grep -c . || true)))
    if [ -d "/sys/class/net/$net/brif" ]; then
        n=$((n + $(find "/sys/class/net/$net/brif" -mindepth 1 -maxdepth 1 | wc -l)))
    fi
    echo "$n"
}

echo "scale bench: store $root, boxctl $boxctl, runtime $runtime"
"$here/bundles/busybox/build-rootfs.sh" "$work/rootfs" >/dev/null
bx image import --size 64m "$work/rootfs" bb >/dev/null

rows=()
for mode in $nets; do
    netarg=none
    if [ "$mode" = bridge ]; then
        subnet=""
        for k in $(seq 0 4 252); do
            if ! ip -4 route show | grep -qE "^10\.224\.($k|$((k + 1))|$((k + 2))|$((k + 3)))\."; then
                subnet=10.224.$k.0/22
                break
            fi
        done
        [ -n "$subnet" ] || { echo "scale bench: no free /22 in 10.224.0.0/16" >&2; exit 1; }
        bx network create --subnet "$subnet" "$net" >/dev/null
        netarg=$net
    fi
    for n in ${counts//,/ }; do
        echo "scale bench: $n instances, --net $netarg"
        if [ "$mode" = bridge ]; then
            # Limits a bridge of n instances meets: ports (1,023 per Linux bridge; boxctl
            # refuses the next one clearly), the /22 (1,021 addresses), the host's
            # neighbour table (entries only for addresses the host talks to).
            [ "$n" -le 1021 ] || { echo "scale bench: $n instances do not fit the bench's /22 (1,021 addresses)" >&2; exit 1; }
            g3=$(cat /proc/sys/net/ipv4/neigh/default/gc_thresh3)
            [ "$n" -lt "$g3" ] || echo "scale bench: note: $n instances >= net.ipv4.neigh.default.gc_thresh3 ($g3): the host can keep ARP entries for only $g3 of them at once" >&2
        fi
        t=$(now_ns)
        for i in $(seq "$n"); do
            if ! bx run -d --cow --runtime "$runtime" --net "$netarg" --name "sc$i" bb sleep 1000000 >/dev/null 2>"$work/run.err"; then
                echo "scale bench: FAILED: instance $i of $n (--net $netarg): $(cat "$work/run.err")" >&2
                exit 1
            fi
        done
        start_ms=$(ms_since "$t")
        running=$(bx ps -q | wc -l)
        [ "$running" = "$n" ] || { echo "scale bench: FAILED: $running of $n instances running" >&2; exit 1; }
        ps_ms=$(time5 bx ps)
        psj_ms=$(time5 bx ps --json)
        pscpu=$(ps_cpu)
        stats_ms=$(time5 bx stats --no-stream)
        mons=$(monitors)
        nmon=$(echo "$mons" | grep -c . || true)
        pss=0
        for p in $mons; do
            v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
            pss=$((pss + ${v:-0}))
        done
        first=${mons%%$'\n'*}
        fds=$(find "/proc/$first/fd" -mindepth 1 2>/dev/null | wc -l)
        inotify=$(find "/proc/$first/fd" -mindepth 1 -lname 'anon_inode:inotify' 2>/dev/null | wc -l)
        ids=$(bx ps -aq)
        t=$(now_ns)
        remove_all
        rm_ms=$(ms_since "$t")
        # shellcheck disable=SC2086
        left=$(leftovers $ids)
        [ "$left" = 0 ] || { echo "scale bench: FAILED: $left things left behind after rm -f of $n instances" >&2; exit 1; }
        [ "$nmon" = "$n" ] || { echo "scale bench: FAILED: $nmon monitors for $n instances" >&2; exit 1; }
        each=$(awk -v a="$start_ms" -v b="$n" 'BEGIN { printf "%.1f", a / b }')
        rows+=("$(printf '| %s | %d | %d ms (%s ms each) | %d ms (%s ms CPU) | %d ms | %d ms | %d KiB (%d monitors) | %d / %d | %d ms |' \
            "$netarg" "$n" "$start_ms" "$each" "$ps_ms" "$pscpu" "$psj_ms" "$stats_ms" "$((pss / nmon))" "$nmon" "$fds" "$inotify" "$rm_ms")")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$netarg" "$n" "$start_ms" "$each" "$ps_ms" "$pscpu" \
            "$psj_ms" "$stats_ms" "$((pss / nmon))" "$fds" "$inotify" "$rm_ms" >>"$work/rows.tsv"
        echo "${rows[-1]}" # as soon as measured: a later failure keeps it
    done
    if [ "$mode" = bridge ]; then bx network rm "$net" >/dev/null; fi
done

echo
echo "| net | instances | start all (run -d --cow, sequential) | ps (wall, CPU) | ps --json | stats --no-stream | monitor PSS per instance | fds / inotify of one monitor | rm -f of all |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "nothing left behind (instance dirs, cgroups, veths); $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg); limits: fs.inotify.max_user_instances=$(cat /proc/sys/fs/inotify/max_user_instances), kernel.pid_max=$(cat /proc/sys/kernel/pid_max), ulimit -n $(ulimit -n)"
echo
echo "growth (figure at each count; xN: ratio to the previous count)"
awk -F'\t' '
    BEGIN { split("start all (ms)|start, per instance (ms)|ps (ms)|ps CPU (ms)|ps --json (ms)|stats --no-stream (ms)|monitor PSS (KiB)|fds per monitor|inotify per monitor|rm -f of all (ms)", name, "|")
            split("3 4 5 6 7 8 9 10 11 12", col, " ") }
    { net[$1] = 1; k = $1 SUBSEP (++cnt[$1]); n[k] = $2; for (c = 3; c <= 12; c++) v[k, c] = $c }
    END {
        for (m in net) {
            printf "\n| %s: operation |", m
            for (j = 1; j <= cnt[m]; j++) printf " %s |", n[m SUBSEP j]
            printf "\n|---|"; for (j = 1; j <= cnt[m]; j++) printf "---:|"; printf "\n"
            for (o = 1; o <= 10; o++) {
                printf "| %s |", name[o]
                for (j = 1; j <= cnt[m]; j++) {
                    x = v[m SUBSEP j, col[o]]; printf " %s", x
                    if (j > 1) { p = v[m SUBSEP (j - 1), col[o]]; if (p + 0 > 0 && x != "-") printf " (x%.1f)", x / p }
                    printf " |"
                }
                printf "\n"
            }
        }
    }' "$work/rows.tsv"
