#!/bin/bash
# The whole test suite, from a fresh Debian 12 machine (run as root):
#   scripts/test.sh
# Installs what it needs (apt packages), builds the workspace, runs every crate's unit
# and integration tests (runtime, cgroups, seccomp, manager, network), the OCI
# conformance suite against boxrun, and prints one closing line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "test.sh: run as root (containers, cgroups, mounts and bridges need it)" >&2
    exit 1
fi
scripts/install-deps.sh || exit 1
export CARGO_TERM_COLOR=never
log=$(mktemp /tmp/boxrun-test-log.XXXXXX)
trap 'rm -f "$log"' EXIT
status=0

echo "== build (release: the binaries the conformance suite, benches and demo use)"
scripts/build.sh 2>&1 | tail -3
[ "${PIPESTATUS[0]}" = 0 ] || exit 1

echo "== cargo test (workspace)"
# Tests run as root and each uses its own runtime root, bundle, cgroup names and bridges.
cargo test --workspace --no-fail-fast -- --test-threads=2 2>&1 | tee -a "$log" | grep -E '^test |test result|panicked|FAILED|error(\[|:)' || true
if grep -q "^test result: FAILED\|error: test failed\|error: could not compile" "$log"; then
    status=1
fi

echo "== OCI conformance suite against boxrun"
host=$(rustc -vV | sed -n 's/^host: //p')
target/release/oci-conformance --runtime "$PWD/target/release/boxrun" \
    --checker "$PWD/target/$host/release/oci-checker" --jobs 2 2>&1 | tee -a "$log" | tail -25
[ "${PIPESTATUS[0]}" = 0 ] || status=1

echo "== pure cgroup v2 lane (Debian kernel under qemu, TCG)"
CARGO_TARGET_DIR="$PWD/target" runtime/cgroups/v2lane/run.sh 2>&1 | tee -a "$log" | grep -E '^v2lane: (FAIL|failures|  )|^[0-9]+ passed'
[ "${PIPESTATUS[0]}" = 0 ] || status=1
# the lane rebuilds target/release/boxrun dynamically for its initramfs: restore the static one
install -m 0755 "target/$host/release/boxrun" target/release/boxrun

if [ -x conformance/engines/run.sh ]; then
    echo "== podman, containerd and docker with boxrun as their runtime"
    conformance/engines/run.sh "$PWD/target/release/boxrun" 2>&1 | tee -a "$log" | tail -15
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
fi

if [ -x conformance/cri/run.sh ]; then
    echo "== Kubernetes node: containerd's CRI plugin with boxrun and with runc"
    conformance/cri/run.sh "$PWD/target/release/boxrun" 2>&1 | tee -a "$log" | tail -60
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
fi

if [ -x conformance/swarm/run.sh ]; then
    echo "== Docker Swarm: three dockerd nodes with boxrun, then with runc, as the default runtime"
    conformance/swarm/run.sh "$PWD/target/release/boxrun" 2>&1 | tee -a "$log" | grep -vE '^ok [0-9]+ - '
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
fi

# cargo's "test result:" lines plus each lane's own closing "N passed, N failed" line.
passed=$( (grep -oE 'test result: [A-Za-z]+\. [0-9]+ passed' "$log"; grep -E '^[0-9]+ passed, [0-9]+ failed' "$log") | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$( (grep -oE 'test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed' "$log"; grep -E '^[0-9]+ passed, [0-9]+ failed' "$log") | grep -oE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
echo "$passed passed, $failed failed"
if [ "$failed" != 0 ]; then
    status=1
fi
exit $status
