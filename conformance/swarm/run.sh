#!/bin/bash
# Docker Swarm lane: three dockerd nodes on one machine, each in its own network
# namespace, with an OCI runtime as their default runtime, run the showcase web farm
# as a stack; the same lane with runc, side by side.
#
#   conformance/swarm/run.sh [RUNTIME_PATH]     (as root; default target/release/boxrun)
#
# For each runtime (RUNTIME_PATH, then /usr/sbin/runc) a fresh cluster: netns bxsw1..3
# joined by the bridge bxsw0 (10.213.79.0/24), one dockerd per netns (data-root,
# exec-root, pidfile and socket under a temporary directory, its own containerd,
# iptables rules in its netns only, `--add-runtime NAME=PATH --default-runtime NAME`),
# images built from bundles/images and `docker load`ed into every node, a swarm, the
# stack of stack.yml, scale, rolling update, node 3 killed (-9) and the time until its
# tasks run elsewhere and the farm answers again, then teardown and leak checks.
#
# Output: "ok N - name" / "not ok N - name: why" per check of each runtime, a table of
# both side by side and a closing line "N passed, N failed". Exit status 0 only when
# nothing failed. Environment: SWARM_RUNTIMES="PATH ..." replaces the pair;
# SWARM_KEEP=1 keeps the temporary directory (daemon logs) after a failure;
# SWARM_FAILOVER_BOUND seconds (default 30) is the asserted failover bound (README).
set -uo pipefail
umask 022
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [ "${1:-}" != --one ]; then
    # ------------------------------------------------------------ driver: both runtimes
    RT=$(readlink -f "${1:-$repo/target/release/boxrun}")
    runtimes=${SWARM_RUNTIMES:-$RT /usr/sbin/runc}
    out=$(mktemp -d /tmp/bxswarm-out.XXXXXX)
    trap 'rm -rf "$out"' EXIT
    start=$(date +%s)
    labels=()
    for rt in $runtimes; do
        label=$(basename "$rt")
        [ "$label" = runc ] && label="runc $(runc --version 2>/dev/null | sed -n 's/^runc version //p')"
        labels+=("$label")
        echo "# ---- $label ($rt)"
        SWARM_ROWS="$out/${#labels[@]}.rows" "$0" --one "$rt" | tee "$out/${#labels[@]}"
        rc=${PIPESTATUS[0]}
        if [ "$rc" != 0 ] && ! grep -q '^fail ' "$out/${#labels[@]}.rows" 2>/dev/null; then
            echo "fail lane: exited $rc before its checks" >>"$out/${#labels[@]}.rows"
        fi
    done
    echo "# lane time: $(($(date +%s) - start)) s for ${#labels[@]} runtimes"
    # Side by side: one row per check name, one column per runtime.
    printf '| %s |' step
    for l in "${labels[@]}"; do printf ' %s |' "$l"; done
    printf '\n|---|'
    for l in "${labels[@]}"; do printf -- '---|'; done
    echo
    cat "$out"/*.rows 2>/dev/null | cut -d' ' -f2- | awk '!seen[$0]++' |
        while IFS= read -r name; do
            printf '| %s |' "$name"
            for i in $(seq ${#labels[@]}); do
                r=$(awk -v n="$name" '{l=$0; sub(/^[a-z]+ /,"",l); if (l==n) {print ($1=="ok") ? "ok" : "**fail**"; exit}}' "$out/$i.rows" 2>/dev/null)
                printf ' %s |' "${r:--}"
            done
            echo
        done
    printf '| update: requests not served during the rolling update |'
    for i in $(seq ${#labels[@]}); do printf ' %s |' "$(sed -n 's/^# update: \([0-9]* of [0-9]*\) .*/\1/p' "$out/$i" | head -1)"; done
    echo
    for what in "node down" "rescheduled" "answering"; do
        printf '| failover: %s after (s) |' "$what"
        for i in $(seq ${#labels[@]}); do printf ' %s |' "$(sed -n "s/^# failover $what: //p" "$out/$i" | head -1)"; done
        echo
    done
    passed=$(cat "$out"/*.rows 2>/dev/null | grep -c '^ok ')
    failed=$(cat "$out"/*.rows 2>/dev/null | grep -c '^fail ')
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit $?
fi

# ---------------------------------------------------------------- one runtime
RT=$(readlink -f "$2")
NET=10.213.79
BR=bxsw0
NODES="1 2 3"
STACK=farm
PORT=8080
# Failover bound: node 3 is marked down after 3 missed heartbeats (--dispatcher-heartbeat
# 2s: ~6 s), its tasks restart elsewhere after the 1 s restart delay, start, and the
# proxies pick them up from DNS within a second: ~10 s; 30 s leaves room for a loaded
# 2-core machine.
BOUND=${SWARM_FAILOVER_BOUND:-30}
DOCKER=/usr/bin/docker # the packaged client, matching the packaged daemon's API
RTNAME=$(basename "$RT")
# docker reserves the name runc for its built-in runtime (runc from PATH).
[ "$RTNAME" = runc ] && RTOPTS=(--default-runtime runc) || RTOPTS=(--add-runtime "$RTNAME=$RT" --default-runtime "$RTNAME")

n=0
passed=0
failed=0
ROWS=${SWARM_ROWS:-/dev/null} # "ok|fail NAME" per check, for the driver's table
T0=$(date +%s)
ok() {
    n=$((n + 1)); passed=$((passed + 1))
    echo "ok $n - $1 [+$(($(date +%s) - T0)) s]"
    echo "ok $1" >>"$ROWS"
}
notok() {
    n=$((n + 1)); failed=$((failed + 1))
    echo "not ok $n - $1: $2 [+$(($(date +%s) - T0)) s]"
    echo "fail $1" >>"$ROWS"
}
run() { # CMD...: output (stdout+stderr) in OUT, exit status in RC, with a time limit
    OUT=$(timeout -k 5 "${TMO:-120}" "$@" 2>&1 </dev/null)
    RC=$?
}
short() { printf '%s' "$1" | tail -n 6 | tr '\n' '|' | cut -c1-400; }
check() { # NAME CMD...: the command must succeed
    local name=$1
    shift
    run "$@"
    if [ "$RC" = 0 ]; then ok "$name"; else notok "$name" "exit $RC: $(short "$OUT")"; fi
}
check_eq() { # NAME WANT VALUE
    if [ "$3" = "$2" ]; then ok "$1"; else notok "$1" "got '$(short "$3")', want '$2'"; fi
}
until_ok() { # TENTHS CMD...: poll (bounded) until CMD succeeds: swarm converges asynchronously
    local tries=$1
    shift
    while [ "$tries" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
        tries=$((tries - 1))
    done
    return 1
}
finish() {
    echo "# $RTNAME: $passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit $?
}
if [ "$(id -u)" != 0 ]; then
    notok "setup: root" "run as root (netns, bridges, dockerd need it)"
    finish
fi
if [ ! -x "$RT" ]; then
    notok "setup: runtime" "$RT is not executable: build it (scripts/build.sh) or pass the runtime's path"
    finish
fi
echo "# runtime under test: $RT (dockerd ${RTOPTS[*]})"

PACKAGES="docker.io containerd iptables iproute2 curl busybox-static util-linux"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
        apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $missing; } >/tmp/boxrun-swarm-apt.log 2>&1; then
        notok "setup: packages" "apt-get install$missing failed (see /tmp/boxrun-swarm-apt.log)"
        finish
    fi
fi

# One lane at a time per host: the netns, bridge and subnet names are fixed.
mkdir -p /run/lock
exec 9>/run/lock/boxrun-swarm.lock
if ! flock -w 900 9; then
    notok "setup: lock" "another swarm lane holds /run/lock/boxrun-swarm.lock"
    finish
fi

T=$(mktemp -d /tmp/bxsw.XXXXXX) # short: containerd's socket path must fit in sun_path
chmod 755 "$T"
declare -A PID NSINO NODEID

# ---------------------------------------------------------------- host snapshots
ours_re="bxsw|$NET\.|10\.213\.80\.|DOCKER|INGRESS"
ipt_ours() { { iptables-save 2>/dev/null; ip6tables-save 2>/dev/null; } | grep -E '^(-A |:)' | grep -E "$ours_re" | sed 's/ \[[0-9:]*\]$//' | sort; }
links() { ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort; }
procs_under() { # pid and command line of processes whose command line names DIR
    local f c
    for f in /proc/[0-9]*/cmdline; do
        c=$({ tr '\0' ' ' <"$f"; } 2>/dev/null) || continue
        [[ $c == *"$1"* ]] && f=${f#/proc/} && echo "${f%/cmdline} ${c:0:100}"
    done
}
procs_in_netns() { # INODE: pids whose network namespace is INODE
    local f
    for f in /proc/[0-9]*/ns/net; do
        [ "$(stat -L -c %i "$f" 2>/dev/null)" = "$1" ] && { f=${f#/proc/}; echo "${f%/ns/net}"; }
    done
}
cg_dirs() { # the lane's cgroup parents (one per node) in every hierarchy
    local c
    for c in /sys/fs/cgroup/*/bxswarm-* /sys/fs/cgroup/bxswarm-*; do [ -d "$c" ] && echo "$c"; done
}
procs_in_cgroups() { cg_dirs | while read -r d; do find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -u; }
ipt_ours >"$T/ipt.before"
links | grep -v '^bx' >"$T/links.before"
had_ipvs=$([ -e /proc/net/ip_vs ] && wc -l </proc/net/ip_vs || echo none)

# ---------------------------------------------------------------- teardown (trap)
# D NODE ARGS...: the docker client of node NODE (a script, so that timeout can run it)
mkdir -p "$T/bin"
printf '#!/bin/sh\nn=$1\nshift\nexec "%s" -H "unix://%s/n$n/sock" "$@"\n' "$DOCKER" "$T" >"$T/bin/d"
chmod +x "$T/bin/d"
D="$T/bin/d"
d() { "$D" "$@"; }
stop_pid() { # PID: SIGTERM, wait up to 30 s, then SIGKILL
    local pid=$1 i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    return 0
}
kill_node() { # NODE: everything of the node, -9: its netns's processes (dockerd, containerd, shims, docker-proxy) and its containers (cgroup)
    local i=$1 pid d
    for pid in $(procs_in_netns "${NSINO[$i]:-none}") $(procs_under "$T/n$i/" | cut -d' ' -f1); do
        kill -KILL "$pid" 2>/dev/null
    done
    for d in $(cg_dirs | grep "/bxswarm-$i\$"); do
        for pid in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    done
}
teardown() {
    local i pid m d
    # graceful first: each live node leaves the swarm (workers first), then each daemon
    # stops (TERM: dockerd stops its containers, then the containerd it started)
    for i in 3 2 1; do
        kill -0 "${PID[$i]:-0}" 2>/dev/null || continue
        timeout 30 "$DOCKER" -H "unix://$T/n$i/sock" swarm leave --force >/dev/null 2>&1
    done
    for i in $NODES; do stop_pid "${PID[$i]:-}" & done
    wait # the stop_pid jobs
    # then whatever is left, -9: processes of the nodes (by netns, path, cgroup)
    for i in $NODES; do kill_node "$i"; done
    for pid in $(procs_under "$T" | cut -d' ' -f1); do [ "$pid" = $$ ] || kill -KILL "$pid" 2>/dev/null; done
    for pid in $(procs_in_cgroups); do kill -KILL "$pid" 2>/dev/null; done
    # mounts under the data and exec roots (overlays, netns bind mounts, shm, configs)
    awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    # deleting a netns frees what lives in it: iptables rules, IPVS, bridges, vxlans, veths
    for i in $NODES; do ip netns del "bxsw$i" 2>/dev/null; done
    ip link del "$BR" 2>/dev/null
    iptables -D FORWARD -i "$BR" -o "$BR" -j ACCEPT -m comment --comment bxswarm 2>/dev/null
    for d in $(cg_dirs | sort -r); do find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
}
on_exit() {
    teardown
    if [ "$failed" != 0 ] && [ "${SWARM_KEEP:-0}" = 1 ]; then
        echo "# kept $T (daemon logs: $T/n*/log)"
    else
        rm -rf "$T"
    fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- images
imgs_ok=1
cache=${BOXRUN_IMAGE_CACHE:-/var/cache/boxrun-images}
if ! "$repo/bundles/images/build-web.sh" "$T/web" >"$T/web.log" 2>&1; then
    notok "setup: web image rootfs" "$(short "$(cat "$T/web.log")")"
    imgs_ok=0
fi
if [ ! -d "$cache/proxy" ] && ! { mkdir -p "$cache" && "$repo/bundles/images/build-proxy.sh" "$cache/proxy"; } >"$T/proxy.log" 2>&1; then
    notok "setup: proxy image rootfs" "not in $cache/proxy and debootstrap failed (needs the Debian mirror; build it once with bundles/images/build-proxy.sh $cache/proxy): $(short "$(cat "$T/proxy.log")")"
    imgs_ok=0
fi
[ "$imgs_ok" = 1 ] || finish

# ---------------------------------------------------------------- network: netns, veths, bridge
net_ok=1
ip link del "$BR" 2>/dev/null
ip link add "$BR" type bridge && ip addr add "$NET.1/24" dev "$BR" && ip link set "$BR" up || net_ok=0
# bridged traffic crosses the host's FORWARD chain (br_netfilter): let the nodes talk
iptables -I FORWARD -i "$BR" -o "$BR" -j ACCEPT -m comment --comment bxswarm 2>/dev/null || net_ok=0
for i in $NODES; do
    ip netns del "bxsw$i" 2>/dev/null
    { ip netns add "bxsw$i" &&
        ip link add "bxsw${i}h" type veth peer name "bxsw${i}n" netns "bxsw$i" &&
        ip link set "bxsw${i}h" master "$BR" up &&
        ip -n "bxsw$i" addr add "$NET.1$i/24" dev "bxsw${i}n" &&
        ip -n "bxsw$i" link set "bxsw${i}n" up &&
        ip -n "bxsw$i" link set lo up; } || net_ok=0
    NSINO[$i]=$(stat -L -c %i "/run/netns/bxsw$i" 2>/dev/null)
done
if [ "$net_ok" = 1 ] && until_ok 50 ip netns exec bxsw1 busybox ping -c1 -W1 "$NET.13"; then
    ok "setup: netns bxsw1-3 on bridge $BR ($NET.0/24), node 1 reaches node 3"
else
    notok "setup: netns bxsw1-3 on bridge $BR ($NET.0/24), node 1 reaches node 3" "ip netns/link failed"
    finish
fi

# ---------------------------------------------------------------- dockerd per node
echo '{}' >"$T/daemon.json"
for i in $NODES; do
    mkdir -p "$T/n$i"
    # nsenter, not `ip netns exec`: the latter remounts /sys and hides the cgroup mounts.
    # DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1: a task's image is used as it is on the node;
    # without it every task start first tries to pull its tag from the registry.
    DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 nsenter --net="/run/netns/bxsw$i" dockerd --config-file "$T/daemon.json" \
        --data-root "$T/n$i/data" --exec-root "$T/n$i/x" --pidfile "$T/n$i/pid" \
        -H "unix://$T/n$i/sock" "${RTOPTS[@]}" --storage-driver overlay2 \
        --cgroup-parent "/bxswarm-$i" --exec-opt native.cgroupdriver=cgroupfs \
        --default-ulimit nofile=20000:20000 --log-level warn >"$T/n$i/log" 2>&1 &
    PID[$i]=$!
    disown "${PID[$i]}" # its death (node 3's kill -9) is no news for the job table
done
up=1
for i in $NODES; do until_ok 600 d "$i" version || { up=0; notok "setup: dockerd node $i up" "$(short "$(cat "$T/n$i/log")")"; }; done
[ "$up" = 1 ] || finish
want=$RTNAME
check_eq "setup: three dockerd up, the runtime under test their default" "$want $want $want" \
    "$(for i in $NODES; do d "$i" info -f '{{.DefaultRuntime}}' 2>&1; done | tr '\n' ' ' | sed 's/ $//')"

# dockerd's --iptables rules: in each node's netns, none on the host
inside=$(for i in $NODES; do ip netns exec "bxsw$i" iptables-save 2>/dev/null | grep -q '^:DOCKER ' && echo yes || echo no; done | tr '\n' ' ')
check_eq "setup: docker's iptables chains in each node's netns, none on the host" "yes yes yes |" \
    "$inside|$(ipt_ours | diff "$T/ipt.before" - | grep '^[<>]' | grep -v 'comment bxswarm')"

# images: imported into node 1 from the recipes' root filesystems, saved once, loaded into every node
check "images: web:1, web:2, proxy:1 imported (node 1)" sh -c "
    tar -C '$T/web' -c . | $DOCKER -H unix://$T/n1/sock import --change 'CMD [\"/usr/sbin/boxweb\"]' - bxswarm/web:1 &&
    tar -C '$T/web' -c . | $DOCKER -H unix://$T/n1/sock import --change 'CMD [\"/usr/sbin/boxweb\"]' --change 'ENV FARM_RELEASE=2' - bxswarm/web:2 &&
    tar -C '$cache/proxy' -c . | $DOCKER -H unix://$T/n1/sock import --change 'CMD [\"/usr/sbin/boxproxy\"]' - bxswarm/proxy:1 &&
    $DOCKER -H unix://$T/n1/sock save -o '$T/images.tar' bxswarm/web:1 bxswarm/web:2 bxswarm/proxy:1"
check "images: docker load into nodes 2 and 3" sh -c "$DOCKER -H unix://$T/n2/sock load -i '$T/images.tar' && $DOCKER -H unix://$T/n3/sock load -i '$T/images.tar'"

# ---------------------------------------------------------------- swarm
check "swarm: init on node 1 (manager)" "$D" 1 swarm init --advertise-addr "$NET.11" --listen-addr "$NET.11:2377" \
    --data-path-addr "$NET.11" --dispatcher-heartbeat 2s
token=$(d 1 swarm join-token -q worker 2>/dev/null)
for i in 2 3; do
    check "swarm: node $i joins as worker" "$D" "$i" swarm join --token "$token" --advertise-addr "$NET.1$i" \
        --listen-addr "$NET.1$i:2377" --data-path-addr "$NET.1$i" "$NET.11:2377"
done
ready() { [ "$(d 1 node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$')" = 3 ]; }
if until_ok 600 ready; then ok "swarm: three nodes Ready"; else notok "swarm: three nodes Ready" "$(short "$(d 1 node ls 2>&1)")"; fi
for i in $NODES; do NODEID[$i]=$(d "$i" info -f '{{.Swarm.NodeID}}' 2>/dev/null); done

# ---------------------------------------------------------------- the stack
running_tasks() { # SERVICE: "NODEID TASKID IMAGE" of its running tasks
    local ids
    ids=$(d 1 service ps -q --filter desired-state=running "${STACK}_$1" 2>/dev/null) || return 1
    [ -n "$ids" ] && d 1 inspect -f '{{if eq .Status.State "running"}}{{.NodeID}} {{.ID}} {{.Spec.ContainerSpec.Image}}{{end}}' $ids 2>/dev/null | grep .
}
converged() { # SERVICE N: exactly N tasks running [none on node $3]
    local t
    t=$(running_tasks "$1") || return 1
    [ "$(echo "$t" | wc -l)" = "$2" ] || return 1
    [ -z "${3:-}" ] || ! echo "$t" | grep -q "^${NODEID[$3]} "
}
# answers NODE COUNT: the distinct pages served by the proxy published on NODE's address
# among COUNT requests ("failed" for a request without a 200).
answers() {
    local k
    for k in $(seq "$2"); do
        curl -s -f --max-time 5 "http://$NET.1$1:$PORT/" 2>/dev/null | sed -n 's/.*<h1>Hello from \([^<]*\)<.*/\1/p' | grep . || echo failed
    done | sort -u
}
all_answer() { # NODE N [EXCLUDED_NODE]: N requests in a row all served, by N distinct replicas (none on EXCLUDED)
    local a
    a=$(answers "$1" "$2")
    [ "$(echo "$a" | grep -c .)" = "$2" ] && ! echo "$a" | grep -qx failed || return 1
    [ -z "${3:-}" ] || ! echo "$a" | grep -q -- "-${NODEID[$3]}-"
}
check "stack: deploy --resolve-image never" sh -c "cd '$here' && $DOCKER -H unix://$T/n1/sock stack deploy --resolve-image never -c stack.yml $STACK"
if until_ok 1200 converged web 3 && until_ok 600 converged proxy 3; then
    ok "stack: web 3/3 and proxy 3/3 (global) running"
else
    notok "stack: web 3/3 and proxy 3/3 (global) running" "$(short "$(d 1 service ps "${STACK}_web" "${STACK}_proxy" 2>&1)")"
fi
cid=$(d 1 ps -q --filter "label=com.docker.swarm.service.name=${STACK}_proxy" 2>/dev/null | head -1)
check_eq "stack: task containers run by the default runtime" "$RTNAME" "$(d 1 inspect -f '{{.HostConfig.Runtime}}' "$cid" 2>&1)"
# the runtime itself holds the container in its state: `RUNTIME --root ROOT state ID`, ROOT
# being what dockerd gave the shim (options.json of the task's bundle, {"binary_name":
# PATH, "root": DIR}; the shim's default if none)
full=$(d 1 inspect -f '{{.Id}}' "$cid" 2>/dev/null)
rtroot=$(sed -n 's/.*"root":"\([^"]*\)".*/\1/p' "$T/n1/x/containerd/daemon/io.containerd.runtime.v2.task/moby/$full/options.json" 2>/dev/null)
rtroot=${rtroot:-/run/containerd/runc}/moby
check "stack: the proxy task is running in the runtime's own state" sh -c "'$RT' --root '$rtroot' state '$full' | grep -q '\"status\": *\"running\"'"
for i in $NODES; do
    if until_ok 300 all_answer "$i" 3; then
        ok "stack: node $i's published port: 3 requests, 3 replicas answer"
    else
        notok "stack: node $i's published port: 3 requests, 3 replicas answer" "$(answers "$i" 6 | tr '\n' ' ')"
    fi
done

# ---------------------------------------------------------------- scale
check "scale: docker service scale web=5" "$D" 1 service scale -d "${STACK}_web=5"
if until_ok 1200 converged web 5 && until_ok 300 all_answer 1 5; then
    ok "scale: 5 replicas running, 5 distinct answers"
else
    notok "scale: 5 replicas running, 5 distinct answers" "$(short "$(d 1 service ps "${STACK}_web" 2>&1)")"
fi

# ---------------------------------------------------------------- rolling update
old=$(running_tasks web | awk '{print $2}')
# clients during the update: requests in a row through node 2, counted
(
    t=0 f=0
    while [ ! -e "$T/update.done" ]; do
        t=$((t + 1))
        curl -s -f --max-time 5 -o /dev/null "http://$NET.12:$PORT/" || f=$((f + 1))
        sleep 0.05
    done
    echo "$t $f" >"$T/update.clients"
) &
clients=$!
check "update: service update --image web:2 --update-parallelism 1" "$D" 1 service update -d --image bxswarm/web:2 \
    --update-parallelism 1 --update-delay 0s "${STACK}_web"
updated() {
    [ "$(d 1 service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "${STACK}_web" 2>/dev/null)" = completed ] &&
        converged web 5 && ! running_tasks web | grep -qv ' bxswarm/web:2$'
}
if until_ok 1800 updated; then ok "update: completed, 5 tasks on web:2"; else notok "update: completed, 5 tasks on web:2" "$(short "$(d 1 service ps "${STACK}_web" 2>&1)")"; fi
touch "$T/update.done"
wait "$clients"
read -r total lost <"$T/update.clients" 2>/dev/null
echo "# update: $lost of $total requests during the rolling update not served"
new=$(running_tasks web | awk '{print $2}')
check_eq "update: every running task is new" "" "$(comm -12 <(echo "$old" | sort) <(echo "$new" | sort))"
if until_ok 300 all_answer 1 5; then ok "update: 5 distinct answers after the update"; else notok "update: 5 distinct answers after the update" "$(answers 1 10 | tr '\n' ' ')"; fi

# ---------------------------------------------------------------- failover: node 3 dies
on3=$(running_tasks web | grep -c "^${NODEID[3]} ")
echo "# failover: node 3 runs $on3 of the 5 web tasks"
if [ "$on3" -ge 1 ]; then ok "failover: node 3 runs web tasks before the kill"; else notok "failover: node 3 runs web tasks before the kill" "none: $(running_tasks web | tr '\n' '|')"; fi
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; } # seconds since $1
t0=$(date +%s.%N)
kill_node 3
left=$( (procs_in_netns "${NSINO[3]}"; cg_dirs | grep '/bxswarm-3$' | while read -r c; do find "$c" -name cgroup.procs -exec cat {} +; done) 2>/dev/null | sort -u | tr '\n' ' ')
check_eq "failover: node 3 killed (-9: dockerd, containerd, shims, containers)" "" "$left"
t_resched=""
t_answer=""
deadline=$(($(date +%s) + BOUND + 60))
t_down=""
while [ "$(date +%s)" -lt "$deadline" ]; do
    if [ -z "$t_down" ] && [ "$(d 1 node inspect -f '{{.Status.State}}' "${NODEID[3]}" 2>/dev/null)" = down ]; then
        t_down=$(since "$t0")
    fi
    if [ -z "$t_resched" ] && converged web 5 3; then
        t_resched=$(since "$t0")
    fi
    if [ -n "$t_resched" ] && all_answer 1 5 3 && all_answer 2 5 3; then
        t_answer=$(since "$t0")
        break
    fi
    sleep 0.5
done
printf '# failover node down: %.1f\n# failover rescheduled: %.1f\n# failover answering: %.1f\n' "${t_down:-0}" "${t_resched:-0}" "${t_answer:-0}"
t_resched=${t_resched:+$(printf '%.1f' "$t_resched")}
t_answer=${t_answer:+$(printf '%.1f' "$t_answer")}
if [ -n "$t_answer" ] && awk -v t="$t_answer" -v b="$BOUND" 'BEGIN {exit !(t <= b)}'; then
    ok "failover: node 3's tasks on nodes 1-2, all 5 replicas answer on both within ${BOUND} s"
else
    notok "failover: node 3's tasks on nodes 1-2, all 5 replicas answer on both within ${BOUND} s" \
        "rescheduled after ${t_resched:-never} s, answering after ${t_answer:-never} s: $(short "$(d 1 service ps "${STACK}_web" 2>&1)")"
fi
node3=$(d 1 node inspect -f '{{.Status.State}}' "${NODEID[3]}" 2>&1)
check_eq "failover: the manager sees node 3 down" down "$node3"

# ---------------------------------------------------------------- teardown and leaks
teardown
check_eq "leaks: no dockerd, containerd, shim or container process" "" \
    "$( (procs_under "$T"; for i in $NODES; do procs_in_netns "${NSINO[$i]}"; done; procs_in_cgroups) | sort -u | tr '\n' '|')"
check_eq "leaks: no mount under the data and exec roots" "" "$(awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo)"
check_eq "leaks: no bxsw netns" "" "$(ip netns list | grep '^bxsw')"
check_eq "leaks: no network interface (bridge, veths) left" "" "$(links | grep '^bxsw'; links | grep -v '^bx' | comm -13 "$T/links.before" -)"
check_eq "leaks: host iptables rules of the lane as before (none)" "" "$(ipt_ours | diff "$T/ipt.before" - | grep '^[<>]')"
check_eq "leaks: host IPVS as before" "$had_ipvs" "$([ -e /proc/net/ip_vs ] && wc -l </proc/net/ip_vs || echo none)"
check_eq "leaks: no bxswarm cgroup" "" "$(cg_dirs)"
finish
