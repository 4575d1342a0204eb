#!/bin/bash
# Where does the time go? Syscall counts (strace -c) and perf counters
# (perf stat) for one `run` of /bin/true with RUNTIME.
#
#   benches/profile.sh [--case 1|2] [--repeat N] [--no-strace] [--no-perf] RUNTIME
#
# RUNTIME is boxrun, runc, crun or a path to a runc-compatible binary.
# --case 1: the default `runc spec` bundle (default); --case 2: with Docker's
# default seccomp profile, a cgroup namespace and memory/pids/cpu limits.
# --repeat N: perf stat repeats the run N times (default 1); strace always
# traces one run. crun runs inside a private mount namespace with the cgroup2
# controllers hidden (see README.md); strace and perf run inside it too, so
# the wrapper is not counted.
set -euo pipefail
# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
case=1 repeat=1 do_strace=1 do_perf=1 rt=
while [ $# -gt 0 ]; do
    case $1 in
    --case) case=${2:?--case needs 1 or 2}; shift 2 ;;
    --repeat) repeat=${2:?--repeat needs a number}; shift 2 ;;
    --no-strace) do_strace=0; shift ;;
    --no-perf) do_perf=0; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "profile: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) rt=$1; shift ;;
    esac
done
[ -n "$rt" ] || { usage >&2; exit 2; }
case $case in 1 | 2) ;; *) echo "profile: --case must be 1 or 2" >&2; exit 2 ;; esac
case $rt in
boxrun) bin=$repo_dir/target/release/boxrun ;;
runc) bin=$(command -v runc || echo /usr/sbin/runc) ;;
crun) bin=$(command -v crun || echo /usr/bin/crun) ;;
*) bin=$rt ;;
esac
if [ ! -x "$bin" ]; then
    echo "profile: $rt: $bin not found or not executable${rt:+ (boxrun: cargo build --release -p boxrun)}" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "profile: must run as root" >&2
    exit 1
fi
ns=0
[ "$(basename "$bin")" = crun ] && ns=1
bench_build_harness

nonce=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
work=$(mktemp -d /tmp/boxrun-bench.XXXXXX)
trap 'bench_cleanup "$work" "$nonce"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
BENCH_EMPTY=$work/empty
: >"$BENCH_EMPTY"
mkdir -p "$work/roots"
mount -t tmpfs -o mode=0700 bxbench-roots "$work/roots" # state on tmpfs, as under /run
mkdir -p "$work/roots/rt"
printf 'bin=%s\nns=%s\n' "$bin" "$ns" >"$work/roots/rt.meta"
"$repo_dir/bundles/busybox/build-rootfs.sh" "$work/rootfs"
cg=()
[ "$case" = 2 ] && cg=(--cgroups-path "/boxrun-bench/$nonce-profile")
"$BENCH_BIN" bundle --repo "$repo_dir" --case "$case" --rootfs "$work/rootfs" \
    --out "$work/bundle" ${cg[@]+"${cg[@]}"}
root=$work/roots/rt
id=bxbench-$nonce-prof

wrap() {
    if [ "$ns" = 1 ]; then in_crun_ns "$@"; else "$@"; fi
}

echo "profile: $bin ($("$bin" --version 2>/dev/null | head -1)), case $case, $(uname -r)"
[ "$ns" = 1 ] && echo "profile: crun runs in a private mount namespace with $UNIFIED_CONTROLLERS hidden"
if [ "$do_strace" = 1 ]; then
    if command -v strace >/dev/null; then
        echo
        echo "== strace -f -c: syscalls of the whole process tree, one run (sorted by calls)"
        wrap strace -f -c -S calls -o "$work/strace.txt" \
            "$bin" --root "$root" run -b "$work/bundle" "$id-s"
        cat "$work/strace.txt"
        echo "== processes in the tree (strace -f -e trace=clone,clone3,fork,vfork,execve):"
        wrap strace -f -qq -e trace=clone,clone3,fork,vfork,execve -o "$work/procs.txt" \
            "$bin" --root "$root" run -b "$work/bundle" "$id-p"
        awk '{print $2}' "$work/procs.txt" | sed 's/(.*//' | sort | uniq -c | sort -rn
    else
        echo "profile: strace not installed (apt-get install strace)"
    fi
fi
if [ "$do_perf" = 1 ]; then
    if command -v perf >/dev/null && perf --version >/dev/null 2>&1; then
        echo
        echo "== perf stat, $repeat run(s)"
        wrap perf stat -r "$repeat" \
            -e task-clock,context-switches,cpu-migrations,page-faults,cycles,instructions \
            "$bin" --root "$root" run -b "$work/bundle" "$id-perf" 2>&1 | sed '/^$/d'
    else
        echo "profile: perf not installed (apt-get install linux-perf)"
    fi
fi
