#!/bin/bash
# End-to-end lane: podman, containerd (ctr) and docker driving an OCI runtime.
#
#   conformance/engines/run.sh [RUNTIME_PATH]      (as root; default target/release/boxrun)
#
# Installs the engines if missing (apt), starts its own containerd and dockerd (state,
# sockets and pid files under a temporary directory, stopped by pid at the end even on
# failure), imports a local busybox image into each engine (no registry is needed), runs
# every check with RUNTIME_PATH as the engine's runtime, then checks that no container,
# process, mount, netns, bridge, cgroup or iptables rule is left behind. Run it with
# /usr/sbin/runc in place of boxrun to tell a runtime failure from an engine one.
#
# Output: one "ok N - name" / "not ok N - name: why" line per check and a closing line
# "N passed, N failed". Exit status 0 only when nothing failed.
# Environment: ENGINES_KEEP=1 keeps the temporary directory (logs) after a failure;
# ENGINES_ONLY="podman containerd docker rootless" selects lanes (rootless: podman run
# by a user the lane makes and removes, see rootless.sh).
set -uo pipefail
umask 022
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
RT=$(readlink -f "${1:-$repo/target/release/boxrun}")
ONLY=${ENGINES_ONLY:-podman containerd docker rootless}
IMG=boxtest/busybox
CTR_IMG=localhost/boxtest/busybox:latest
CTR_NS=bxengines
BRIDGE=bxeng0
BRIDGE_NET=10.213.77
CG_DOCKER=bxengines-docker
CG_PODMAN=bxengines-podman
CG_CTR=bxengines-ctr

n=0
passed=0
failed=0
ok() {
    n=$((n + 1)); passed=$((passed + 1))
    echo "ok $n - $1"
}
notok() {
    n=$((n + 1)); failed=$((failed + 1))
    echo "not ok $n - $1: $2"
}
# Run a command with a time limit; output (stdout+stderr) in OUT, exit status in RC.
run() {
    OUT=$(timeout -k 5 "${TMO:-60}" "$@" 2>&1 </dev/null)
    RC=$?
}
short() { printf '%s' "$1" | tail -n 6 | tr '\n' '|' | cut -c1-400; }
# check NAME WANT_RC REGEX CMD...: the command must exit WANT_RC and its output match REGEX.
check() {
    local name=$1 want=$2 re=$3
    shift 3
    run "$@"
    if [ "$RC" = "$want" ] && [[ $OUT =~ $re ]]; then
        ok "$name"
    else
        notok "$name" "exit $RC (want $want), output: $(short "$OUT") (want /$re/)"
    fi
}
# check_eq NAME WANT VALUE
check_eq() {
    if [ "$3" = "$2" ]; then ok "$1"; else notok "$1" "got '$(short "$3")', want '$2'"; fi
}
# Poll (bounded) until a command succeeds: engines report state asynchronously.
until_ok() {
    local tries=$1
    shift
    while [ "$tries" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        tries=$((tries - 1))
    done
    return 1
}
free_port() {
    local p
    for p in $(shuf -i 20000-29999 -n 50); do
        ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
    echo 29998
}
fetch_until() { # URL WANT: poll the published port until the page comes back
    local i
    for i in $(seq 50); do
        OUT=$(curl -s --max-time 2 "$1" 2>&1) && [ "$OUT" = "$2" ] && return 0
        sleep 0.2
    done
    return 1
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit $?
}

if [ "$(id -u)" != 0 ]; then
    echo "run.sh: run as root (engines, cgroups, mounts and bridges need it)" >&2
    notok "setup: root" "not root"
    finish
fi
if [ ! -x "$RT" ]; then
    notok "setup: runtime" "$RT is not executable: build it (cargo build --release -p boxrun) or pass the runtime's path"
    finish
fi
echo "# runtime under test: $RT"

# ---------------------------------------------------------------- packages
PACKAGES="jq podman conmon netavark containerd docker.io iptables iproute2 curl busybox-static util-linux uidmap"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "# installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
        apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $missing; } >/tmp/boxrun-engines-apt.log 2>&1; then
        notok "setup: packages" "apt-get install$missing failed (see /tmp/boxrun-engines-apt.log)"
        finish
    fi
fi
DOCKER=/usr/bin/docker # the packaged client, matching the packaged daemon's API

# One lane at a time on the host: podman's shm locks, netavark's global chains and the
# lane's bridge name are host-wide.
mkdir -p /run/lock
exec 9>/run/lock/boxrun-engines.lock
if ! flock -w 900 9; then
    notok "setup: lock" "another engines lane holds /run/lock/boxrun-engines.lock"
    finish
fi

T=$(mktemp -d /tmp/bxengines.XXXXXX)
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT # until the full clean-up below is defined
CTD_PID=""
DOCKERD_PID=""

# ---------------------------------------------------------------- host snapshots
ipt_norm() { # rules and user chains only: an empty table appearing is not a leak
    { iptables-save 2>/dev/null; ip6tables-save 2>/dev/null | sed 's/^/6 /'; } |
        grep -E '^(6 )?(\*|-A |:[^ ]+ - )' | sed 's/ \[[0-9:]*\]$//' | grep -vE '^(6 )?\*' | sort
}
links() { ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -v '^bx' | sort; }
procs_under() { # pid and command line of processes whose command line names DIR
    local f c
    for f in /proc/[0-9]*/cmdline; do
        c=$({ tr '\0' ' ' <"$f"; } 2>/dev/null) || continue
        [[ $c == *"$1"* ]] && f=${f#/proc/} && echo "${f%/cmdline} ${c:0:100}"
    done
}
netns_list() { ls /run/netns 2>/dev/null | sort; }
cg_parents() { for c in /sys/fs/cgroup/*/; do for p in libpod_parent $CG_DOCKER $CG_PODMAN $CG_CTR; do [ -d "$c$p" ] && echo "$c$p"; done; done; }
ipt_norm >"$T/ipt.before"
links >"$T/links.before"
netns_list >"$T/netns.before"
cg_parents >"$T/cg.before"
had_netavark=$(grep -c NETAVARK "$T/ipt.before")
# podman does not pass the runtime a --root for every call, so the runtime may use its
# default root (/run/boxrun for boxrun): what the lane creates there, it removes.
RT_DEFAULT_ROOT=/run/$(basename "$RT")
[ -e "$RT_DEFAULT_ROOT" ] && had_rt_root=1 || had_rt_root=0
[ -e "$RT_DEFAULT_ROOT/seccomp-cache" ] && had_rt_cache=1 || had_rt_cache=0

# ---------------------------------------------------------------- cleanup (trap)
stop_pid() { # PID: SIGTERM, wait up to 20 s, then SIGKILL; reaps our own children
    local pid=$1 i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}
# Wrappers (scripts, so that sh -c and the pty helper can call them too).
mkdir -p "$T/bin"
printf '#!/bin/sh\nexec podman --root "%s" --runroot "%s" --tmpdir "%s" --storage-driver vfs --network-config-dir "%s" --cgroup-manager cgroupfs --events-backend file --runtime "%s" "$@"\n' \
    "$T/podman/root" "$T/podman/run" "$T/podman/tmp" "$T/podman/net" "$RT" >"$T/bin/p"
printf '#!/bin/sh\nexec ctr -a "%s" -n "%s" "$@"\n' "$T/ctd/ctd.sock" "$CTR_NS" >"$T/bin/c"
printf '#!/bin/sh\nexec "%s" -H "unix://%s" "$@"\n' "$DOCKER" "$T/docker/docker.sock" >"$T/bin/d"
# pty CMD: CMD under script(1) on a pty, its stdin held open (an EOF on stdin makes the
# engines' -it clients detach before the output is copied).
printf '#!/bin/bash\nexec 3< <(sleep 300)\nsp=$!\nscript -qec "$1" /dev/null <&3\nrc=$?\nexec 3<&-\nkill "$sp" 2>/dev/null\nexit "$rc"\n' >"$T/bin/pty"
chmod +x "$T/bin/p" "$T/bin/c" "$T/bin/d" "$T/bin/pty"
PTY="$T/bin/pty"
P="$T/bin/p"
# podman runs the runtime with its default --root (its cleanup process does not get
# --runtime-flag): containers of this lane are told apart by their bundle path.
rt_left() { # [--root DIR]: ids of this lane's containers still in the runtime's state
    "$RT" "$@" list -f json 2>/dev/null | jq -r --arg t "$T" '.[]? | select(.bundle | startswith($t)) | .id'
}
C="$T/bin/c"
D="$T/bin/d"
engine_teardown() { # graceful, through the engines (what a user would do)
    if command -v podman >/dev/null && [ -d "$T/podman" ]; then
        timeout 60 "$P" rm -a -f -t 0 >/dev/null 2>&1
    fi
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        local ids
        ids=$(timeout 20 "$D" ps -aq 2>/dev/null)
        [ -n "$ids" ] && timeout 60 "$D" rm -f $ids >/dev/null 2>&1
    fi
    stop_pid "$DOCKERD_PID"
    DOCKERD_PID=""
    if [ -n "$CTD_PID" ] && kill -0 "$CTD_PID" 2>/dev/null; then
        local t
        for t in $(timeout 10 "$C" task ls -q 2>/dev/null); do
            timeout 10 "$C" task kill -s SIGKILL "$t" >/dev/null 2>&1
            timeout 20 "$C" task delete -f "$t" >/dev/null 2>&1
        done
        for t in $(timeout 10 "$C" container ls -q 2>/dev/null); do
            timeout 10 "$C" container delete "$t" >/dev/null 2>&1
        done
        timeout 20 "$C" images rm "$CTR_IMG" >/dev/null 2>&1
        timeout 20 "$C" namespaces rm "$CTR_NS" >/dev/null 2>&1
    fi
    stop_pid "$CTD_PID"
    CTD_PID=""
}
engine_housekeeping() { # what the engines leave on purpose, with any runtime
    # dockerd keeps a bind mount of the host netns (libnetwork "default" sandbox).
    [ -e "$T/docker/exec/netns/default" ] && umount "$T/docker/exec/netns/default" 2>/dev/null
    # netavark keeps its global chains once created; drop them (only if we created them)
    # with their static rules: a per-container rule left inside keeps the chain alive and
    # the iptables check below fails.
    if [ "$had_netavark" = 0 ]; then
        local t rule
        for t in filter nat; do
            iptables-save -t "$t" 2>/dev/null | grep -E '^-A ' | grep -E \
                -e '^-A (FORWARD|PREROUTING|OUTPUT|POSTROUTING) .*-j NETAVARK' \
                -e '^-A NETAVARK-HOSTPORT-MASQ .*netavark portfw masq mark' \
                -e '^-A NETAVARK-HOSTPORT-SETMARK -j MARK' |
                while read -r rule; do eval "iptables -t $t -D ${rule#-A }"; done
            for c in $(iptables-save -t "$t" 2>/dev/null | grep -oE '^:NETAVARK[^ ]*' | tr -d :); do
                iptables -t "$t" -X "$c" 2>/dev/null
            done
        done
    fi
    # Empty engine cgroup parents we created (rmdir fails on a non-empty one).
    local d
    for d in $(cg_parents | sort -r); do
        grep -qx "$d" "$T/cg.before" && continue
        [ -d "$d/conmon" ] && rmdir "$d/conmon" 2>/dev/null
        rmdir "$d" 2>/dev/null
    done
    ip link del "$BRIDGE" 2>/dev/null
}
force_cleanup() { # last resort after a failure: kill what is left, unmount, remove
    local f pid m
    for f in $(cg_parents); do
        grep -qx "$f" "$T/cg.before" 2>/dev/null && continue
        for pid in $(find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
            kill -KILL "$pid" 2>/dev/null
        done
    done
    for pid in $(procs_under "$T" | cut -d' ' -f1); do
        [ "$pid" = $$ ] || kill -KILL "$pid" 2>/dev/null
    done
    awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    engine_housekeeping
    [ "$had_rt_cache" = 0 ] && rm -rf "$RT_DEFAULT_ROOT/seccomp-cache"
    [ "$had_rt_root" = 0 ] && rmdir "$RT_DEFAULT_ROOT" 2>/dev/null
    for f in $(cg_parents); do
        grep -qx "$f" "$T/cg.before" 2>/dev/null || find "$f" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
}
# shellcheck source=conformance/engines/rootless.sh
. "$here/rootless.sh"
on_exit() {
    rootless_cleanup
    engine_teardown
    force_cleanup
    if [ "$failed" != 0 ] && [ "${ENGINES_KEEP:-0}" = 1 ]; then
        echo "# kept $T (engine logs: $T/*.log, $T/docker/log, $T/ctd/log)"
    else
        rm -rf "$T"
    fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- image
if ! "$repo/bundles/busybox/build-rootfs.sh" "$T/rootfs" >"$T/rootfs.log" 2>&1; then
    notok "setup: busybox rootfs" "$(short "$(cat "$T/rootfs.log")")"
    finish
fi
mkdir -p "$T/podman" "$T/ctd" "$T/docker"
cat >"$T/containers.conf" <<EOF
[containers]
# root may not raise rlimits past the host's hard limits here (no CAP_SYS_RESOURCE)
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/podman/events.log"
EOF
export CONTAINERS_CONF="$T/containers.conf"

# ---------------------------------------------------------------- podman
lane_podman() {
    local port name=podman
    [ "$PODMAN_IMAGE" = 1 ] || return
    local R=(--cgroup-parent "/$CG_PODMAN")
    check "$name: run --rm echo" 0 '(^|'$'\n'')hi$' "$P" run --rm "${R[@]}" $IMG echo hi
    check "$name: run --rm exit status" 7 '' "$P" run --rm "${R[@]}" $IMG sh -c 'exit 7'
    check "$name: run --rm stdin (-i)" 0 'piped-in' sh -c "echo piped-in | $P run --rm -i ${R[*]} $IMG cat"
    check "$name: run -d" 0 '^[0-9a-f]{64}' "$P" run -d --name bxe-p1 "${R[@]}" $IMG sleep 1000
    check "$name: ps lists it running" 0 'bxe-p1 Up' "$P" ps --format '{{.Names}} {{.Status}}'
    check "$name: exec" 0 'sleep 1000' "$P" exec bxe-p1 sh -c 'tr "\\0" " " </proc/1/cmdline'
    check "$name: exec exit status" 3 '' "$P" exec bxe-p1 sh -c 'exit 3'
    check "$name: exec -t" 0 '/dev/pts/' "$P" exec -t bxe-p1 tty
    check "$name: top" 0 'sleep 1000' "$P" top bxe-p1
    check "$name: pause" 0 bxe-p1 "$P" pause bxe-p1
    check "$name: inspect paused" 0 '^paused' "$P" inspect -f '{{.State.Status}}' bxe-p1
    check "$name: unpause" 0 bxe-p1 "$P" unpause bxe-p1
    check "$name: inspect running" 0 '^running' "$P" inspect -f '{{.State.Status}}' bxe-p1
    check "$name: stop" 0 bxe-p1 "$P" stop -t 1 bxe-p1
    check "$name: inspect exited" 0 '^exited' "$P" inspect -f '{{.State.Status}}' bxe-p1
    check "$name: start again" 0 bxe-p1 "$P" start bxe-p1
    check "$name: kill" 0 bxe-p1 "$P" kill bxe-p1
    until_ok 50 sh -c "test \"\$($P inspect -f '{{.State.Status}}' bxe-p1)\" = exited"
    check "$name: rm" 0 bxe-p1 "$P" rm bxe-p1
    check "$name: ps -a empty" 0 '^$' "$P" ps -a -q
    check "$name: run -t" 0 '/dev/pts/' "$P" run --rm -t "${R[@]}" $IMG tty
    check "$name: run -it (pty)" 0 '/dev/pts/[0-9]+.*done' "$PTY" "$P run --rm -it ${R[*]} $IMG sh -c 'tty; echo done'"
    check "$name: --network none has only lo, up" 0 '^1'$'\n''1: lo: <LOOPBACK,UP' "$P" run --rm "${R[@]}" --network none $IMG sh -c 'ip -o link | wc -l; ip -o link'
    check "$name: --network none loopback works" 0 '1 packets received' "$P" run --rm "${R[@]}" --network none $IMG ping -c 1 -W 2 127.0.0.1
    check "$name: default bridge gives eth0 an address" 0 'eth0 +inet [0-9.]+/' "$P" run --rm "${R[@]}" $IMG ip -o -4 addr
    port=$(free_port)
    check "$name: run -d -p 127.0.0.1:PORT:80 httpd" 0 '^[0-9a-f]{64}' "$P" run -d --name bxe-pweb "${R[@]}" -p "127.0.0.1:$port:80" $IMG \
        sh -c 'mkdir -p /www && echo hello-engines >/www/index.html && exec httpd -f -p 80 -h /www'
    if fetch_until "http://127.0.0.1:$port/" hello-engines; then ok "$name: -p traffic on 127.0.0.1:PORT"; else notok "$name: -p traffic on 127.0.0.1:PORT" "port $port: $(short "$OUT")"; fi
    check "$name: rm -f published container" 0 bxe-pweb "$P" rm -f -t 0 bxe-pweb
    opts_checks "$name" "$P" run --rm "${R[@]}"
    check "$name: run -dt (console socket), exec into it" 0 'in-tty-container' sh -c "$P run -dt --name bxe-p4 ${R[*]} $IMG sh >/dev/null && $P exec bxe-p4 echo in-tty-container"
    check "$name: rm -f tty container" 0 bxe-p4 "$P" rm -f -t 0 bxe-p4
    check "$name: kill -s HUP reaches the process" 0 '^0'$'\n''got-hup' sh -c "$P run -d --name bxe-p5 ${R[*]} $IMG sh -c 'trap \"echo got-hup; exit 0\" HUP; echo ready; while :; do sleep 0.1; done' >/dev/null && until $P logs bxe-p5 | grep -q ready; do sleep 0.1; done && $P kill -s HUP bxe-p5 >/dev/null && $P wait bxe-p5 && $P logs bxe-p5 | grep got-hup; $P rm -f -t 0 bxe-p5 >/dev/null"
    check "$name: --uidmap user namespace" 0 '^ +0 +100000 +65536' "$P" run --rm "${R[@]}" --uidmap 0:100000:65536 --gidmap 0:100000:65536 $IMG cat /proc/self/uid_map
    check "$name: exec -u -w -e" 0 'uid=65534.*/tmp bar' sh -c "$P run -d --name bxe-p2 ${R[*]} $IMG sleep 1000 >/dev/null && $P exec -u 65534 -w /tmp -e FOO=bar bxe-p2 sh -c 'id; echo \$PWD \$FOO'"
    check "$name: rm -f running container" 0 bxe-p2 "$P" rm -f -t 0 bxe-p2
    check "$name: logs of a detached container" 0 'logged-line' sh -c "$P run -d --name bxe-p3 ${R[*]} $IMG echo logged-line >/dev/null && $P wait bxe-p3 >/dev/null && $P logs bxe-p3 && $P rm bxe-p3 >/dev/null"
    check_eq "$name: runtime state has none of the lane's containers" "" "$(rt_left)"
}

# ---------------------------------------------------------------- run options (podman and docker)
# opts_checks NAME RUN-PREFIX...: the prefix ends with "run --rm" and its runtime options.
opts_checks() {
    local name=$1
    shift
    local E=("$@") hostns
    check "$name: default seccomp profile is loaded" 0 'Seccomp:[[:space:]]+2' "${E[@]}" $IMG grep -E '^Seccomp:' /proc/self/status
    # This host's bounding set lacks CAP_SYS_RESOURCE: docker's --privileged asks for it
    # and fails with any runtime (and ignores --cap-drop then); podman's takes the bounding set.
    if [ "$name" = docker ]; then
        # docker 20.10 knows capabilities up to AUDIT_READ (37): ALL is 0x3fffffffff.
        check "$name: all caps but SYS_RESOURCE, seccomp unconfined" 0 'CapEff:[[:space:]]+0000003ffeffffff.*Seccomp:[[:space:]]+0' \
            "${E[@]}" --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined $IMG grep -E "^(Seccomp|CapEff):" /proc/self/status
    else
        check "$name: --privileged: no seccomp, all caps, host devices" 0 'CapEff:[[:space:]]+'"$(awk '/^CapBnd/ {print $2}' /proc/self/status)"'.*Seccomp:[[:space:]]+0.*loop-control' \
            "${E[@]}" --privileged $IMG sh -c 'grep -E "^(Seccomp|CapEff):" /proc/self/status; ls /dev'
    fi
    check "$name: --user 65534:65534" 0 'uid=65534.*gid=65534' "${E[@]}" --user 65534:65534 $IMG id
    check "$name: -w -e --hostname" 0 '^/tmp bar bxhost' "${E[@]}" -w /tmp -e FOO=bar --hostname bxhost $IMG sh -c 'echo $PWD $FOO $(hostname)'
    check "$name: --read-only rootfs" 0 'rc=1' "${E[@]}" --read-only $IMG sh -c 'touch /x 2>/dev/null; echo rc=$?'
    check "$name: --cap-drop ALL" 0 'CapEff:[[:space:]]+0000000000000000' "${E[@]}" --cap-drop ALL $IMG grep CapEff /proc/self/status
    check "$name: NET_ADMIN missing by default" 0 'rc=[1-9]' "${E[@]}" --network none $IMG sh -c 'ip link set lo mtu 1500 2>/dev/null; echo rc=$?'
    check "$name: --cap-add NET_ADMIN" 0 'rc=0' "${E[@]}" --network none --cap-add NET_ADMIN $IMG sh -c 'ip link set lo mtu 1500; echo rc=$?'
    mkdir -p "$T/vol-$name"
    check "$name: -v bind mount, written from inside" 0 '' "${E[@]}" -v "$T/vol-$name:/data" $IMG sh -c 'echo from-inside >/data/f'
    check_eq "$name: bind mount file on the host" from-inside "$(cat "$T/vol-$name/f" 2>&1)"
    check "$name: --mount type=bind,readonly" 0 'rc=1' "${E[@]}" --mount "type=bind,src=$T/vol-$name,dst=/ro,readonly" $IMG sh -c 'cat /ro/f; touch /ro/g 2>/dev/null; echo rc=$?'
    check "$name: --tmpfs" 0 'tmpfs /scratch tmpfs' "${E[@]}" --tmpfs /scratch $IMG grep ' /scratch ' /proc/mounts
    check "$name: --memory in the container's cgroup" 0 '^33554432' "${E[@]}" --memory 32m $IMG cat /sys/fs/cgroup/memory/memory.limit_in_bytes
    check "$name: --pids-limit" 0 '^50' "${E[@]}" --pids-limit 50 $IMG cat /sys/fs/cgroup/pids/pids.max
    check "$name: --cpus" 0 '^50000' "${E[@]}" --cpus 0.5 $IMG cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us
    check "$name: --device" 0 '^4' "${E[@]}" --device /dev/zero:/dev/bxzero $IMG sh -c 'head -c 4 /dev/bxzero | wc -c'
    check "$name: --sysctl (net namespace)" 0 '^1234' "${E[@]}" --sysctl net.core.somaxconn=1234 $IMG cat /proc/sys/net/core/somaxconn
    check "$name: --ulimit" 0 '^1024' "${E[@]}" --ulimit nofile=1024:2048 --ulimit nproc=32768:32768 $IMG sh -c 'ulimit -n'
    check "$name: --oom-score-adj" 0 '^100' "${E[@]}" --oom-score-adj 100 $IMG cat /proc/self/oom_score_adj
    check "$name: no-new-privileges" 0 'NoNewPrivs:[[:space:]]+1' "${E[@]}" --security-opt no-new-privileges $IMG grep NoNewPrivs /proc/self/status
    check "$name: --shm-size" 0 '16384' "${E[@]}" --shm-size 16m $IMG df -k /dev/shm
    for ns in pid ipc uts; do
        hostns=$(readlink /proc/self/ns/$ns)
        check "$name: --$ns host" 0 "${hostns//[][]/.}" "${E[@]}" --$ns host $IMG readlink /proc/self/ns/$ns
    done
    check "$name: own pid namespace (pid 1 is the process)" 0 '^1$' "${E[@]}" $IMG sh -c 'echo $$'
    # The engines map the runtime's error text to 127/126, as for runc's messages.
    check "$name: missing command exits 127 with the reason" 127 '/nonexistent.*(no such file or directory|not found)' "${E[@]}" $IMG /nonexistent
    check "$name: non-executable command exits 126" 126 '/etc/passwd.*(permission denied|Permission denied)' "${E[@]}" $IMG /etc/passwd
}

# ---------------------------------------------------------------- containerd
start_containerd() {
    cat >"$T/ctd/config.toml" <<EOF
version = 2
root = "$T/ctd/root"
state = "$T/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/ctd/ctd.sock"
[ttrpc]
  address = "$T/ctd/ctd.sock.ttrpc"
[debug]
  address = ""
EOF
    containerd --config "$T/ctd/config.toml" >"$T/ctd/log" 2>&1 &
    CTD_PID=$!
    if until_ok 200 "$C" version; then ok "containerd: daemon up"; else notok "containerd: daemon up" "$(short "$(cat "$T/ctd/log")")"; return 1; fi
}
lane_containerd() {
    local name=containerd
    rr() { RR=(--runc-binary "$RT" --runc-root "$T/ctd/rr" --cgroup "/$CG_CTR/$1"); }
    rr bxe-c1
    check "$name: build OCI archive (podman save)" 0 '' "$P" save --format oci-archive -o "$T/busybox-oci.tar" $IMG
    check "$name: ctr image import" 0 "$CTR_IMG" "$C" images import "$T/busybox-oci.tar"
    check "$name: run --rm echo" 0 '(^|'$'\n'')hi' "$C" run --rm "${RR[@]}" $CTR_IMG bxe-c1 echo hi
    rr bxe-c5
    check "$name: run --seccomp (default profile)" 0 'Seccomp:[[:space:]]+2' "$C" run --rm --seccomp "${RR[@]}" $CTR_IMG bxe-c5 grep -E '^Seccomp:' /proc/self/status
    rr bxe-c6
    check "$name: run --net-host" 0 "$(readlink /proc/self/ns/net | sed 's/[][]/./g')" "$C" run --rm --net-host "${RR[@]}" $CTR_IMG bxe-c6 readlink /proc/self/ns/net
    rr bxe-c7
    check "$name: run -d --memory-limit" 0 '' "$C" run -d --memory-limit 33554432 "${RR[@]}" $CTR_IMG bxe-c7 sleep 1000
    check_eq "$name: memory limit in the container's cgroup" 33554432 "$(cat "/sys/fs/cgroup/memory/$CG_CTR/bxe-c7/memory.limit_in_bytes" 2>&1)"
    check "$name: task metrics" 0 'memory' "$C" task metrics bxe-c7
    check "$name: task kill + delete" 0 '' sh -c "$C task kill -s SIGKILL bxe-c7 && $C task delete bxe-c7 >/dev/null 2>&1 || $C task delete bxe-c7; $C container delete bxe-c7"
    rr bxe-c2
    check "$name: run --rm exit status" 7 '' "$C" run --rm "${RR[@]}" $CTR_IMG bxe-c2 sh -c 'exit 7'
    rr bxe-c3
    check "$name: run -d" 0 '' "$C" run -d "${RR[@]}" $CTR_IMG bxe-c3 sleep 1000
    check "$name: task ls running" 0 'bxe-c3 +[0-9]+ +RUNNING' "$C" task ls
    check "$name: task exec" 0 'exec-hi' "$C" task exec --exec-id e1 bxe-c3 echo exec-hi
    check "$name: task exec exit status" 4 '' "$C" task exec --exec-id e2 bxe-c3 sh -c 'exit 4'
    check "$name: task exec -t (pty)" 0 '/dev/pts/' "$PTY" "$C task exec -t --exec-id e3 bxe-c3 tty"
    check "$name: task ps" 0 'PID +INFO'$'\n''[0-9]+' "$C" task ps bxe-c3
    check "$name: task pause" 0 '' "$C" task pause bxe-c3
    check "$name: task ls paused" 0 'bxe-c3 +[0-9]+ +PAUSED' "$C" task ls
    check "$name: task resume" 0 '' "$C" task resume bxe-c3
    check "$name: task ls running again" 0 'bxe-c3 +[0-9]+ +RUNNING' "$C" task ls
    check "$name: task kill" 0 '' "$C" task kill -s SIGKILL bxe-c3
    if until_ok 100 sh -c "$C task ls | grep -Eq 'bxe-c3 +[0-9]+ +STOPPED'"; then ok "$name: task stopped"; else notok "$name: task stopped" "still not STOPPED"; fi
    check "$name: task delete" 0 '' "$C" task delete bxe-c3
    check "$name: container delete" 0 '' "$C" container delete bxe-c3
    rr bxe-c8
    check "$name: run -d -t, task exec into it" 0 'in-tty-container' sh -c "$PTY '$C run -d -t ${RR[*]} $CTR_IMG bxe-c8 sh' >/dev/null && $C task exec --exec-id e1 bxe-c8 echo in-tty-container"
    check "$name: task kill + delete tty task" 0 '' sh -c "$C task kill -s SIGKILL bxe-c8 && until $C task ls | grep -Eq 'bxe-c8 +[0-9]+ +STOPPED'; do sleep 0.1; done && $C task delete bxe-c8 >/dev/null && $C container delete bxe-c8"
    rr bxe-c4
    check "$name: run -t (pty)" 0 '/dev/pts/[0-9]+.*done' "$PTY" "$C run --rm -t ${RR[*]} $CTR_IMG bxe-c4 sh -c 'tty; echo done'"
    check "$name: no task left" 0 '^TASK +PID +STATUS *$' "$C" task ls
    check_eq "$name: runtime state empty" "" "$(rt_left --root "$T/ctd/rr/$CTR_NS")"
}

# ---------------------------------------------------------------- docker
start_dockerd() {
    # A bridge of the lane's own (bx prefix) instead of docker0; no iptables, no
    # forwarding sysctl, no masquerade: -p goes through docker-proxy on 127.0.0.1.
    ip link del "$BRIDGE" 2>/dev/null
    ip link add "$BRIDGE" type bridge && ip addr add "$BRIDGE_NET.1/24" dev "$BRIDGE" && ip link set "$BRIDGE" up ||
        { notok "docker: lane bridge $BRIDGE" "ip link add failed"; return 1; }
    dockerd --data-root "$T/docker/data" --exec-root "$T/docker/exec" -H "unix://$T/docker/docker.sock" \
        --pidfile "$T/docker/docker.pid" --containerd "$T/ctd/ctd.sock" --bridge "$BRIDGE" \
        --iptables=false --ip-forward=false --ip-masq=false --storage-driver vfs \
        --cgroup-parent "/$CG_DOCKER" --exec-opt native.cgroupdriver=cgroupfs \
        --add-runtime "bxtest=$RT" --default-ulimit nofile=20000:20000 >"$T/docker/log" 2>&1 &
    DOCKERD_PID=$!
    if until_ok 300 "$D" version; then ok "docker: daemon up"; else notok "docker: daemon up" "$(short "$(cat "$T/docker/log")")"; return 1; fi
}
lane_docker() {
    local name=docker R=(--runtime bxtest) id pid1 pid2 port
    check "$name: import busybox image" 0 'sha256:' sh -c "tar -C '$T/rootfs' -c . | $D import - $IMG"
    check "$name: run --rm echo" 0 '(^|'$'\n'')hi$' "$D" run "${R[@]}" --rm $IMG echo hi
    check "$name: run --rm exit status" 7 '' "$D" run "${R[@]}" --rm $IMG sh -c 'exit 7'
    check "$name: run -i stdin" 0 'piped-in' sh -c "echo piped-in | $D run --runtime bxtest --rm -i $IMG cat"
    check "$name: run -d" 0 '^[0-9a-f]{64}' "$D" run "${R[@]}" -d --name bxe-d1 $IMG sleep 1000
    check "$name: inspect runtime" 0 '^bxtest running' "$D" inspect -f '{{.HostConfig.Runtime}} {{.State.Status}}' bxe-d1
    check "$name: exec" 0 'sleep 1000' "$D" exec bxe-d1 sh -c 'tr "\\0" " " </proc/1/cmdline'
    check "$name: exec exit status" 5 '' "$D" exec bxe-d1 sh -c 'exit 5'
    check "$name: exec -it (pty)" 0 '/dev/pts/' "$PTY" "$D exec -it bxe-d1 tty"
    check "$name: top" 0 'sleep 1000' "$D" top bxe-d1
    check "$name: update --memory" 0 bxe-d1 "$D" update --memory 64m --memory-swap 128m --cpu-shares 512 bxe-d1
    id=$("$D" inspect -f '{{.Id}}' bxe-d1 2>/dev/null)
    check_eq "$name: update reached the cgroup (memory)" 67108864 "$(cat "/sys/fs/cgroup/memory/$CG_DOCKER/$id/memory.limit_in_bytes" 2>&1)"
    check_eq "$name: update reached the cgroup (cpu.shares)" 512 "$(cat "/sys/fs/cgroup/cpu/$CG_DOCKER/$id/cpu.shares" 2>&1)"
    check "$name: pause" 0 bxe-d1 "$D" pause bxe-d1
    check "$name: inspect paused" 0 '^paused' "$D" inspect -f '{{.State.Status}}' bxe-d1
    check_eq "$name: cgroup frozen" FROZEN "$(cat "/sys/fs/cgroup/freezer/$CG_DOCKER/$id/freezer.state" 2>&1)"
    check "$name: unpause" 0 bxe-d1 "$D" unpause bxe-d1
    check "$name: inspect running" 0 '^running' "$D" inspect -f '{{.State.Status}}' bxe-d1
    check "$name: stop" 0 bxe-d1 "$D" stop -t 1 bxe-d1
    check "$name: inspect exited" 0 '^exited' "$D" inspect -f '{{.State.Status}}' bxe-d1
    pid1=$("$D" inspect -f '{{.State.Pid}}' bxe-d1 2>/dev/null)
    check "$name: restart" 0 bxe-d1 "$D" restart -t 1 bxe-d1
    check "$name: inspect running after restart" 0 '^running [1-9]' "$D" inspect -f '{{.State.Status}} {{.State.Pid}}' bxe-d1
    check "$name: kill" 0 bxe-d1 "$D" kill bxe-d1
    check "$name: inspect killed" 0 '^exited 137' "$D" inspect -f '{{.State.Status}} {{.State.ExitCode}}' bxe-d1
    check "$name: rm" 0 bxe-d1 "$D" rm bxe-d1
    check "$name: run -it (pty)" 0 '/dev/pts/[0-9]+.*done' "$PTY" "$D run --runtime bxtest --rm -it $IMG sh -c 'tty; echo done'"
    check "$name: --network none has only lo, up" 0 '^1'$'\n''1: lo: <LOOPBACK,UP' "$D" run "${R[@]}" --rm --network none $IMG sh -c 'ip -o link | wc -l; ip -o link'
    check "$name: --network host shares the host netns" 0 "$(readlink /proc/self/ns/net | sed 's/[][]/\\&/g')" "$D" run "${R[@]}" --rm --network host $IMG readlink /proc/self/ns/net
    check "$name: --network bridge address on $BRIDGE" 0 "eth0 +inet ${BRIDGE_NET//./\\.}\.[0-9]+/24" "$D" run "${R[@]}" --rm --network bridge $IMG ip -o -4 addr
    check "$name: bridge reaches the host side" 0 '1 packets received' "$D" run "${R[@]}" --rm $IMG ping -c 1 -W 2 "$BRIDGE_NET.1"
    port=$(free_port)
    check "$name: run -d -p 127.0.0.1:PORT:80 httpd" 0 '^[0-9a-f]{64}' "$D" run "${R[@]}" -d --name bxe-dweb -p "127.0.0.1:$port:80" $IMG \
        sh -c 'mkdir -p /www && echo hello-engines >/www/index.html && exec httpd -f -p 80 -h /www'
    if fetch_until "http://127.0.0.1:$port/" hello-engines; then ok "$name: -p traffic on 127.0.0.1:PORT"; else notok "$name: -p traffic on 127.0.0.1:PORT" "port $port: $(short "$OUT")"; fi
    check "$name: rm -f published container" 0 bxe-dweb "$D" rm -f bxe-dweb
    opts_checks "$name" "$D" run --runtime bxtest --rm
    check "$name: run -dit (console socket), exec into it" 0 'in-tty-container' sh -c "$D run --runtime bxtest -dit --name bxe-d5 $IMG sh >/dev/null && $D exec bxe-d5 echo in-tty-container"
    check "$name: rm -f tty container" 0 bxe-d5 "$D" rm -f bxe-d5
    check "$name: kill -s HUP reaches the process" 0 '^0'$'\n''got-hup' sh -c "$D run --runtime bxtest -d --name bxe-d6 $IMG sh -c 'trap \"echo got-hup; exit 0\" HUP; echo ready; while :; do sleep 0.1; done' >/dev/null && until $D logs bxe-d6 | grep -q ready; do sleep 0.1; done && $D kill -s HUP bxe-d6 >/dev/null && $D wait bxe-d6 && $D logs bxe-d6 | grep got-hup; $D rm -f bxe-d6 >/dev/null"
    check "$name: --init (docker-init as pid 1)" 0 'docker-init' "$D" run --runtime bxtest --rm --init $IMG cat /proc/1/comm
    check "$name: exec -u -w -e" 0 'uid=65534.*/tmp bar' sh -c "$D run --runtime bxtest -d --name bxe-d2 $IMG sleep 1000 >/dev/null && $D exec -u 65534 -w /tmp -e FOO=bar bxe-d2 sh -c 'id; echo \$PWD \$FOO'"
    check "$name: rm -f running container" 0 bxe-d2 "$D" rm -f bxe-d2
    check "$name: wait + logs of a detached container" 0 '^0'$'\n''logged-line' sh -c "$D run --runtime bxtest -d --name bxe-d3 $IMG echo logged-line >/dev/null && $D wait bxe-d3 && $D logs bxe-d3 && $D rm bxe-d3 >/dev/null"
    check "$name: stats --no-stream" 0 'bxe-d4' sh -c "$D run --runtime bxtest -d --name bxe-d4 $IMG sleep 1000 >/dev/null && $D stats --no-stream --format '{{.Name}} {{.MemUsage}}' bxe-d4; $D rm -f bxe-d4 >/dev/null"
    check "$name: ps -a empty" 0 '^$' "$D" ps -aq
    check_eq "$name: runtime state empty" "" "$(ls "$T/docker/exec/runtime-bxtest/moby" 2>/dev/null)$(rt_left --root "$T/docker/exec/runtime-bxtest/moby")"
}

# The podman image is also the source of containerd's OCI archive.
PODMAN_IMAGE=0
check "podman: import busybox image" 0 '(^|'$'\n'')sha256:[0-9a-f]{64}' sh -c "tar -C '$T/rootfs' -c . | $P import - $IMG"
[ "$RC" = 0 ] && PODMAN_IMAGE=1
case " $ONLY " in *" podman "*) lane_podman ;; esac
case " $ONLY " in *" rootless "*) lane_rootless ;; esac
if [[ " $ONLY " == *" containerd "* || " $ONLY " == *" docker "* ]]; then
    if start_containerd; then
        case " $ONLY " in *" containerd "*) lane_containerd ;; esac
        case " $ONLY " in *" docker "*) start_dockerd && lane_docker ;; esac
    fi
fi

# ---------------------------------------------------------------- nothing left behind
engine_teardown
engine_housekeeping
left=$(procs_under "$T")
check_eq "leaks: no engine, shim or container process left" "" "$left"
left=$(pgrep -a -f "docker-proxy .*-container-ip $BRIDGE_NET\." || true)
check_eq "leaks: no docker-proxy left" "" "$left"
left=$(for f in $(cg_parents); do grep -qx "$f" "$T/cg.before" || echo "$f"; done)
check_eq "leaks: no engine cgroup left" "" "$left"
left=$(awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo)
check_eq "leaks: no mount left under the lane's directory" "" "$left"
check_eq "leaks: no netns left in /run/netns" "" "$(netns_list | comm -13 "$T/netns.before" -)"
check_eq "leaks: no network interface left" "" "$(links | comm -13 "$T/links.before" -; ip link show "$BRIDGE" 2>/dev/null)"
check_eq "leaks: iptables as before" "" "$(ipt_norm | diff "$T/ipt.before" - | grep '^[<>]')"
finish
