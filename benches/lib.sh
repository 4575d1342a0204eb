# Shared helpers of the bench scripts (sourced, not run).
# shellcheck shell=bash

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$bench_dir")
UNIFIED_CONTROLLERS=/sys/fs/cgroup/unified/cgroup.controllers

# Build the harness (standalone crate, own target dir) and set BENCH_BIN.
bench_build_harness() {
    : "${BENCH_TARGET_DIR:=$repo_dir/target-bench}"
    if ! command -v cargo >/dev/null 2>&1; then
        echo "bench: cargo not found: install a Rust toolchain" >&2
        return 1
    fi
    cargo build --release --quiet --manifest-path "$bench_dir/harness/Cargo.toml" \
        --target-dir "$BENCH_TARGET_DIR" || {
        echo "bench: building benches/harness failed" >&2
        return 1
    }
    BENCH_BIN=$BENCH_TARGET_DIR/release/boxrun-bench
}

# Run "$@" inside a private mount namespace in which an empty file hides the
# cgroup2 controllers of this hybrid host (crun 1.8.1 refuses hybrid hosts).
# $BENCH_EMPTY must name an empty file.
in_crun_ns() {
    unshare -m --propagation private sh -c \
        'mount --bind "$0" '"$UNIFIED_CONTROLLERS"' && exec "$@"' "$BENCH_EMPTY" "$@"
}

# Best-effort removal of everything a bench run may have left behind:
# containers in every root under $1/roots (via the runtime that owns the
# root, see <root>.meta), cgroups whose name carries nonce $2, mounts under
# $1, and $1 itself.
bench_cleanup() {
    local work=$1 nonce=$2 meta root bin ns id d pid
    [ -n "$work" ] && [ -d "$work" ] || return 0
    BENCH_EMPTY=$work/empty
    [ -f "$BENCH_EMPTY" ] || : >"$BENCH_EMPTY"
    for meta in "$work"/roots/*.meta; do
        [ -f "$meta" ] || continue
        root=${meta%.meta}
        bin=$(sed -n 's/^bin=//p' "$meta")
        ns=$(sed -n 's/^ns=//p' "$meta")
        [ -x "$bin" ] || continue
        for d in "$root"/bxbench-*; do
            [ -e "$d" ] || continue
            id=$(basename "$d")
            if [ "$ns" = 1 ]; then
                in_crun_ns "$bin" --root "$root" delete -f "$id" >/dev/null 2>&1 || true
            else
                "$bin" --root "$root" delete -f "$id" >/dev/null 2>&1 || true
            fi
        done
    done
    # boxctl roots of case 6 (<root>.boxctl): remove their instances (crun's
    # inside the crun namespace). 6b's 1,000 fake instances hold nothing.
    for meta in "$work"/boxctl/*.boxctl; do
        [ -f "$meta" ] || continue
        root=${meta%.boxctl}
        bin=$(sed -n 's/^bin=//p' "$meta")
        [ -x "$bin" ] && [ "$(basename "$root")" != 6b ] || continue
        for id in $("$bin" --root "$root" ps -aq 2>/dev/null); do
            case $root in
            *crun*) in_crun_ns "$bin" --root "$root" --runtime "$(command -v crun)" rm -f "$id" ;;
            *) "$bin" --root "$root" rm -f "$id" ;;
            esac >/dev/null 2>&1 || true
        done
    done
    if [ -n "$nonce" ]; then
        # Deepest first: kill what is left, then rmdir.
        for d in $(find /sys/fs/cgroup/ -maxdepth 3 -type d \
            \( -name "bxbench-$nonce-*" -o -path "*/boxrun-bench/$nonce-*" \) 2>/dev/null | sort -r); do
            if [ -f "$d/cgroup.procs" ]; then
                while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$d/cgroup.procs"
            fi
            rmdir "$d" 2>/dev/null || { sleep 0.1; rmdir "$d" 2>/dev/null || true; }
        done
        rmdir /sys/fs/cgroup/*/boxrun-bench 2>/dev/null || true
    fi
    # Mounts under the work dir (runtimes mount in their own namespaces; a
    # boxctl store keeps its storage pool mounted).
    bench_release_mounts "$work"
    rm -rf "$work"
}

# Unmount everything mounted under directory $1 (innermost first) and detach
# the loop devices backed by files under it: a boxctl store's storage pool
# stays mounted after its last instance is removed, by design.
bench_release_mounts() {
    local dir=${1%/}/
    awk -v w="$dir" 'index($5, w) == 1 { print length($5), $5 }' /proc/self/mountinfo |
        sort -rn | while read -r _ m; do umount -l "$m" 2>/dev/null || true; done
    losetup -a | awk -F: -v w="$dir" 'index($0, w) { print $1 }' |
        while read -r d; do losetup -d "$d" 2>/dev/null || true; done
}
