#!/bin/bash
# Build the release binaries into target/release/: boxctl, the conformance tools, and
# boxrun linked statically against glibc (no dynamic loader at start-up: ~1 MiB less
# peak RSS and a faster exec per container; see benches/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# The CRI lane's client (conformance/cri) is a test tool: built in debug by its run.sh.
cargo build --release --workspace --bins --exclude boxrun-cri-lane
host=$(rustc -vV | sed -n 's/^host: //p')
# crt-static only for the target crates (--target keeps proc-macros and build scripts dynamic).
# relocation-model=static: a non-PIE executable has nothing to relocate at start-up, so
# fewer pages are dirtied per run (benches: -0.2 MiB peak RSS, ~-0.3 ms per `run`); the
# binary's own text loses ASLR, its heap, stack and mappings keep it.
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
    cargo build --release -p boxrun --target "$host"
# The conformance checker runs inside containers, so it is static too.
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p boxrun-conformance --bin oci-checker --target "$host"
install -m 0755 "target/$host/release/boxrun" target/release/boxrun
echo "build: target/release/boxrun (static), target/release/boxctl"
