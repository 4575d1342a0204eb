#!/bin/bash
# Benchmark boxrun next to runc and crun (and boxctl, when it exists).
#
#   benches/run.sh [--quick] [--cases 1,2,3] [--rounds N] [--iters N]
#                  [--settle SECS] [--boxrun PATH] [--runc PATH] [--crun PATH]
#                  [--results DIR]
#
# Prints one table per case and writes summary.json, samples.tsv and report.md
# to benches/results/<UTC time>/ (and benches/results/latest). Must run as
# root. See benches/README.md for the method.
set -euo pipefail
# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

case " $* " in
*" -h "* | *" --help "*)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
if [ "$(id -u)" != 0 ]; then
    echo "bench: must run as root (runtimes create namespaces and cgroups)" >&2
    exit 1
fi
bench_build_harness

results=
args=()
while [ $# -gt 0 ]; do
    case $1 in
    --results)
        results=${2:?--results needs a directory}
        shift 2
        ;;
    *)
        args+=("$1")
        shift
        ;;
    esac
done
stamp=$(date -u +%Y%m%d-%H%M%S)
if [ -z "$results" ]; then
    results=$bench_dir/results/$stamp
    latest=$bench_dir/results/latest
fi

nonce=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
work=$(mktemp -d /tmp/boxrun-bench.XXXXXX)
# boxctl's unprivileged instances (6d) reach their rootfs as their own root: searchable by others.
chmod 0711 "$work"
trap 'bench_cleanup "$work" "$nonce"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# Runtime state lives on tmpfs, as in production (/run/boxrun, /run/runc, /run/crun):
# on the work dir's ext4 every state-file write would pay inode allocation for all three.
mkdir -p "$work/roots"
mount -t tmpfs -o mode=0700 bxbench-roots "$work/roots"
echo "bench: runtime roots on tmpfs ($work/roots), bundles and rootfs in $work"

"$BENCH_BIN" run --repo "$repo_dir" --work "$work" --nonce "$nonce" \
    --results "$results" --command "benches/run.sh${args[*]:+ ${args[*]}}" ${args[@]+"${args[@]}"}
if [ -n "${latest:-}" ]; then
    ln -sfn "$stamp" "$latest"
fi
