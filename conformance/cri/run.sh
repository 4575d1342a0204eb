#!/bin/bash
# CRI lane: containerd's CRI plugin driven as a kubelet drives it, with boxrun and with runc.
#
#   conformance/cri/run.sh [RUNTIME_PATH]      (as root; default target/release/boxrun)
#
# For each runtime (runc first, then RUNTIME_PATH) it starts a private containerd (root,
# state, sockets, config, CNI conf and IPAM state under a temporary directory; CNI from
# Debian's containernetworking-plugins: bridge + host-local on the private bridge bxcri0,
# subnet 10.213.78.0/24, and loopback), imports a local busybox image and a pause image
# built from it (no registry, no network), and runs every case of the cri-lane binary
# against the CRI socket. With boxrun, containerd's io.containerd.runc.v2 runtime has
# boxrun as its BinaryName both as the default handler and as the handler "boxrun" (the
# form a RuntimeClass selects); the cases run through the "boxrun" handler, one case
# checks the default one. Then it checks that nothing is left behind: processes, shims,
# mounts, netns, the bridge, CNI state, cgroups, iptables rules.
#
# Output: a table "case | runc | boxrun" and a closing line "N passed, N failed", where a
# case fails when runc passes it and boxrun does not (a case both fail is an engine or
# host limit, shown as such). Exit status 0 only when nothing failed.
# Environment: CRI_KEEP=1 keeps the temporary directory (logs) after a failure;
# CRI_LANE_BIN=path uses an already built cri-lane binary; CRI_ONLY=REGEX runs only the
# matching cases.
set -uo pipefail
umask 022
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
RT=$(readlink -f "${1:-$repo/target/release/boxrun}")
RUNC=/usr/sbin/runc
BRIDGE=bxcri0
SUBNET=10.213.78
CG=bxcri
IMG=localhost/boxtest/busybox:latest
PAUSE=localhost/boxtest/pause:latest
NS=k8s.io

failed_setup() {
    echo "not ok - setup: $1"
    echo "0 passed, 1 failed"
    exit 1
}
[ "$(id -u)" = 0 ] || failed_setup "run as root (containerd, cgroups, mounts and bridges need it)"
[ -x "$RT" ] || failed_setup "$RT is not executable: build it (scripts/build.sh) or pass the runtime's path"
for p in containerd containernetworking-plugins runc busybox-static jq iproute2 iptables; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        failed_setup "package $p missing: scripts/install-deps.sh installs it"
done
LANE=${CRI_LANE_BIN:-}
if [ -z "$LANE" ]; then
    (cd "$repo" && cargo build -q -p boxrun-cri-lane) || failed_setup "cargo build -p boxrun-cri-lane failed"
    LANE=${CARGO_TARGET_DIR:-$repo/target}/debug/cri-lane
fi

# One CRI lane at a time on the host: the bridge name and subnet are host-wide.
mkdir -p /run/lock
exec 9>/run/lock/boxrun-cri.lock
flock -w 900 9 || failed_setup "another CRI lane holds /run/lock/boxrun-cri.lock"

T=$(mktemp -d /tmp/bxcri.XXXXXX)
chmod 755 "$T"
CTD_PID=""
LANE_PID=""
LANE_DIR=""

# ---------------------------------------------------------------- host snapshots
# Rules and chains that could be the lane's (CNI chains, its subnet or bridge): other
# lanes on the host add and remove rules of their own meanwhile.
ipt_norm() {
    { iptables-save 2>/dev/null; ip6tables-save 2>/dev/null | sed 's/^/6 /'; } |
        grep -E '^(6 )?(-A |:[^ ]+ - )' | sed 's/ \[[0-9:]*\]$//' |
        grep -E "CNI-|${SUBNET//./\\.}\.|$BRIDGE" | sort
}
# The lane's links: its bridge and the veths the bridge plugin made (other lanes on the
# host make bx* links of their own at the same time).
links() { ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^($BRIDGE|veth)" | sort; }
netns_list() { ls /run/netns 2>/dev/null | sort; }
cni_state() { find /var/lib/cni -mindepth 1 2>/dev/null | sort; }
cg_dirs() { for c in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do [ -d "$c$CG" ] && echo "$c$CG"; done; }
procs_under() { # pid and command line of processes whose command line names DIR
    local f c
    for f in /proc/[0-9]*/cmdline; do
        c=$({ tr '\0' ' ' <"$f"; } 2>/dev/null) || continue
        [[ $c == *"$1"* ]] && f=${f#/proc/} && echo "${f%/cmdline} ${c:0:100}"
    done
}
ipt_norm >"$T/ipt.before"
links >"$T/links.before"
netns_list >"$T/netns.before"
cni_state >"$T/cni.before"
[ -d /var/lib/cni ] && had_cni_dir=1 || had_cni_dir=0
had_cg=$(cg_dirs)

# ---------------------------------------------------------------- cleanup (trap)
stop_pid() { # PID: SIGTERM, wait up to 20 s, then SIGKILL
    local pid=$1 i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}
# Through the CRI first (what a kubelet would do), then containerd itself.
containerd_teardown() {
    local dir=$1
    if [ -n "$CTD_PID" ] && kill -0 "$CTD_PID" 2>/dev/null; then
        timeout 120 "$LANE" --socket "$dir/ctd.sock" cleanup >>"$dir/lane.log" 2>&1
        timeout 20 ctr -a "$dir/ctd.sock" -n "$NS" images rm "$IMG" "$PAUSE" >/dev/null 2>&1
    fi
    stop_pid "$CTD_PID"
    CTD_PID=""
    housekeeping
}
# What a kubelet and a node's network set-up remove, not the runtime: the bridge the CNI
# bridge plugin made, and the empty pod cgroups under the lane's cgroup parent.
housekeeping() {
    local d
    ip link del "$BRIDGE" 2>/dev/null
    if [ -z "$had_cg" ]; then
        for d in $(cg_dirs); do find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
    fi
    # libcni's cache directories the lane created, once CNI DEL has emptied them
    for d in $(find /var/lib/cni -depth -type d -empty 2>/dev/null); do
        grep -qx "$d" "$T/cni.before" || rmdir "$d" 2>/dev/null
    done
    [ "$had_cni_dir" = 0 ] && rmdir /var/lib/cni 2>/dev/null
    return 0
}
force_cleanup() { # last resort after a failure: kill what is left, unmount, remove
    local pid m n d
    for d in $(cg_dirs); do
        for pid in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
            kill -KILL "$pid" 2>/dev/null
        done
    done
    for pid in $(procs_under "$T" | cut -d' ' -f1); do
        [ "$pid" = $$ ] || kill -KILL "$pid" 2>/dev/null
    done
    awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    for n in $(netns_list | comm -13 "$T/netns.before" -); do
        [[ $n == cni-* ]] && { umount -l "/run/netns/$n" 2>/dev/null; rm -f "/run/netns/$n"; }
    done
    for m in $(cni_state | comm -13 "$T/cni.before" - | sort -r); do
        rm -rf "$m" 2>/dev/null
    done
    housekeeping
}
on_exit() {
    stop_pid "$LANE_PID"
    containerd_teardown "$LANE_DIR"
    force_cleanup
    if [ "${failed:-1}" != 0 ] && [ "${CRI_KEEP:-0}" = 1 ]; then
        echo "# kept $T (containerd logs: $T/*/containerd.log, lane logs: $T/*/lane.log)"
    else
        rm -rf "$T"
    fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- images (OCI archives)
# image_tar NAME OUT CONFIG_JSON: one layer (the busybox rootfs), an image config, an OCI
# layout archive naming the image for `ctr images import`.
sha() { sha256sum "$1" | cut -d' ' -f1; }
image_tar() {
    local name=$1 out=$2 cfg=$3 d l c m
    d=$(mktemp -d "$T/img.XXXXXX")
    mkdir -p "$d/blobs/sha256"
    cp "$T/layer.tar" "$d/layer"
    l=$(sha "$d/layer")
    mv "$d/layer" "$d/blobs/sha256/$l"
    jq -cn --arg l "sha256:$l" --argjson cfg "$cfg" \
        '{architecture: "amd64", os: "linux", config: $cfg, rootfs: {type: "layers", diff_ids: [$l]}}' >"$d/config"
    c=$(sha "$d/config")
    mv "$d/config" "$d/blobs/sha256/$c"
    jq -cn --arg c "sha256:$c" --arg l "sha256:$l" --argjson cs "$(stat -c %s "$d/blobs/sha256/$c")" \
        --argjson ls "$(stat -c %s "$d/blobs/sha256/$l")" \
        '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
          layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls}]}' >"$d/manifest"
    m=$(sha "$d/manifest")
    jq -cn --arg m "sha256:$m" --argjson ms "$(stat -c %s "$d/manifest")" --arg n "$name" \
        '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest: $m, size: $ms, platform: {architecture: "amd64", os: "linux"},
          annotations: {"io.containerd.image.name": $n, "org.opencontainers.image.ref.name": "latest"}}]}' >"$d/index.json"
    mv "$d/manifest" "$d/blobs/sha256/$m"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
    tar -C "$d" -cf "$out" oci-layout index.json blobs && rm -rf "$d"
}
"$repo/bundles/busybox/build-rootfs.sh" "$T/rootfs" >"$T/rootfs.log" 2>&1 ||
    failed_setup "busybox rootfs: $(tail -3 "$T/rootfs.log")"
tar -C "$T/rootfs" --numeric-owner -cf "$T/layer.tar" . || failed_setup "layer tar"
image_tar "$IMG" "$T/busybox.tar" '{"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}' ||
    failed_setup "busybox image archive"
# The pause process: pid 1 of the sandbox, exits on TERM/INT, sleeps otherwise.
image_tar "$PAUSE" "$T/pause.tar" '{"Entrypoint": ["/bin/sh", "-c", "trap \"exit 0\" TERM INT; while :; do sleep 3600 & wait $!; done"], "Env": ["PATH=/bin"]}' ||
    failed_setup "pause image archive"

# ---------------------------------------------------------------- one containerd per runtime
# start_containerd DIR BINARY: the CRI plugin with handlers "runc" (default) and "boxrun",
# both io.containerd.runc.v2 with BINARY as BinaryName.
start_containerd() {
    local dir=$1 bin=$2 h
    mkdir -p "$dir/cni/conf" "$dir/opt"
    cat >"$dir/cni/conf/10-bxcri.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "bxcri",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": false,
     "ipam": {"type": "host-local", "dataDir": "$dir/cni/ipam",
              "ranges": [[{"subnet": "$SUBNET.0/24", "gateway": "$SUBNET.1"}]]}},
    {"type": "loopback"}
  ]
}
EOF
    {
        cat <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
[grpc]
  address = "$dir/ctd.sock"
[ttrpc]
  address = "$dir/ctd.sock.ttrpc"
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # containerd gives the pause process -998: a host without CAP_SYS_RESOURCE refuses it
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/conf"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
EOF
        for h in runc boxrun; do
            cat <<EOF
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$h]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$h.options]
        BinaryName = "$bin"
        Root = "$dir/rt-$h"
        SystemdCgroup = false
EOF
        done
    } >"$dir/config.toml"
    containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
    CTD_PID=$!
    local i
    for i in $(seq 300); do
        [ -S "$dir/ctd.sock" ] && ctr -a "$dir/ctd.sock" version >/dev/null 2>&1 && break
        kill -0 "$CTD_PID" 2>/dev/null || break
        sleep 0.1
    done
    ctr -a "$dir/ctd.sock" version >/dev/null 2>&1 || return 1
    ctr -a "$dir/ctd.sock" -n "$NS" images import --no-unpack=false "$T/busybox.tar" >>"$dir/containerd.log" 2>&1 &&
        ctr -a "$dir/ctd.sock" -n "$NS" images import "$T/pause.tar" >>"$dir/containerd.log" 2>&1
}

# lane NAME BINARY HANDLER: results in $T/NAME.results ("case<TAB>ok|fail<TAB>detail").
lane() {
    local name=$1 bin=$2 handler=$3 dir=$T/$1
    LANE_DIR=$dir
    mkdir -p "$dir"
    if ! start_containerd "$dir" "$bin"; then
        printf 'containerd with %s starts, images imported\tfail\t%s\n' "$name" \
            "$(tail -5 "$dir/containerd.log" | tr '\n' '|' | cut -c1-300)" >"$T/$name.results"
        containerd_teardown "$dir"
        return
    fi
    # in the background: a signal to this script then runs its clean-up at once
    timeout 900 "$LANE" --socket "$dir/ctd.sock" run --handler "$handler" --runtime "$bin" \
        --runtime-root "$dir/rt-$handler/$NS" --default-runtime-root "$dir/rt-runc/$NS" \
        --work "$dir/work" --cgroup-parent "/$CG" --image "$IMG" --subnet "$SUBNET" \
        ${CRI_ONLY:+--only "$CRI_ONLY"} >"$T/$name.results" 2>"$dir/lane.log" &
    LANE_PID=$!
    wait "$LANE_PID"
    LANE_PID=""
    containerd_teardown "$dir"
}

lane runc "$RUNC" runc
lane boxrun "$RT" boxrun

# ---------------------------------------------------------------- table
passed=0
failed=0
printf '%-58s | %-6s | %-6s\n' case runc boxrun
printf '%s\n' "-----------------------------------------------------------+--------+-------"
while IFS= read -r c; do
    r=$(awk -F'\t' -v c="$c" '$1 == c {print $2}' "$T/runc.results" | head -1)
    b=$(awk -F'\t' -v c="$c" '$1 == c {print $2}' "$T/boxrun.results" | head -1)
    printf '%-58s | %-6s | %-6s\n' "$c" "${r:-none}" "${b:-none}"
    if [ "$b" = ok ] || { [ "$r" != ok ] && [ -n "$b" ]; }; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done < <(cut -f1 "$T/runc.results" "$T/boxrun.results" | awk '!seen[$0]++')
for name in runc boxrun; do
    awk -F'\t' -v n="$name" '$2 != "ok" {print "# " n ": " $1 ": " $3}' "$T/$name.results"
done

# ---------------------------------------------------------------- nothing left behind
leak() { # NAME LEFT: one row, counted like a case both runtimes share
    if [ -z "$2" ]; then
        printf '%-58s | %-6s | %-6s\n' "$1" ok ok
        passed=$((passed + 1))
    else
        printf '%-58s | %-6s | %-6s\n' "$1" fail fail
        echo "# $1: $(printf '%s' "$2" | tr '\n' '|' | cut -c1-300)"
        failed=$((failed + 1))
    fi
}
leak "leaks: no containerd, shim or container process" "$(procs_under "$T")"
leak "leaks: no mount under the lane's directory" "$(awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo)"
leak "leaks: no netns left in /run/netns" "$(netns_list | comm -13 "$T/netns.before" -)"
leak "leaks: no network interface (bridge, veth) left" "$(links | comm -13 "$T/links.before" -)"
leak "leaks: no CNI state under /var/lib/cni" "$(cni_state | comm -13 "$T/cni.before" -)"
leak "leaks: iptables as before" "$(ipt_norm | diff "$T/ipt.before" - | grep '^[<>]')"
left=""
for d in $(cg_dirs); do
    [ -z "$had_cg" ] && left="$left $(find "$d" -mindepth 1 -type d | head -3)"
done
leak "leaks: no pod or container cgroup left under $CG" "$(echo $left)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
