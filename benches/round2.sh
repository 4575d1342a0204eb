#!/bin/bash
# Issue 21's figures from one run at one commit: cases 1 and 5 (boxrun, runc, crun,
# unshare+chroot), the published port and the farm (farm.sh --bridge), boxctl beside
# podman (podman.sh) and N instances on one store (scale.sh), one after another on a
# machine left alone. Builds the release binaries first so the figures belong to HEAD.
#
#   benches/round2.sh [--quick] [--counts 10,100,1000]
#
# Writes every script's output and a header (commit, time, load) to
# benches/results/round2-<UTC time>/ and exits 1 if any script failed.
set -uo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
quick=
counts=10,100,1000
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=--quick; shift ;;
    --counts) counts=${2:?--counts needs a list}; shift 2 ;;
    *) echo "usage: benches/round2.sh [--quick] [--counts 10,100,1000]" >&2; exit 2 ;;
    esac
done
"$dir/../scripts/build.sh" >/dev/null || { echo "round2: scripts/build.sh failed" >&2; exit 1; }
out=$dir/results/round2-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$out"
commit=$(git -C "$dir/.." rev-parse --short HEAD)
git -C "$dir/.." diff --quiet HEAD || commit="$commit (plus uncommitted changes)"
echo "round two at commit $commit, $(date -u '+%F %T UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs" |
    tee "$out/header"
failed=()
step() {
    local name=$1
    shift
    echo "== $name: ${*#"$dir/"} (load $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$out/header"
    "$@" 2>&1 | tee "$out/$name.txt" || failed+=("$name")
}
step cases "$dir/run.sh" $quick --cases 1,5 --results "$out/cases"
step farm "$dir/farm.sh" -d 10 -r 3 --bridge
step podman "$dir/podman.sh" -r 10
step scale "$dir/scale.sh" --counts "$counts" --net both
echo "round2: results in $out"
if [ ${#failed[@]} -gt 0 ]; then
    echo "round2: failed: ${failed[*]}" >&2
    exit 1
fi
