#!/bin/sh
# Install everything the build, tests and demo need on a fresh Debian 12 machine.
# Idempotent: already-installed packages are skipped quickly.
set -eu
PACKAGES="
build-essential pkg-config
busybox-static
runc crun
hyperfine strace jq
e2fsprogs xfsprogs util-linux iproute2 iptables procps psmisc kmod
curl wrk
debootstrap nginx-light haproxy
skopeo umoci docker-registry apache2-utils openssl zstd
qemu-system-x86 cpio time linux-perf bsdutils
podman conmon netavark containerd docker.io uidmap criu
containernetworking-plugins protobuf-compiler
"
# kubectl (tests/compose.rs parses the Kubernetes export with it): Debian's, unless
# another package already provides /usr/bin/kubectl (the two conflict).
command -v kubectl >/dev/null 2>&1 || PACKAGES="$PACKAGES kubernetes-client"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo not found: install a Rust toolchain (rustup) first" >&2
    exit 1
fi
