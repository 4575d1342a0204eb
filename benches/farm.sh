#!/bin/bash
# Web farm bench: requests/s and p99 latency through the farm's nginx proxy instance,
# beside the same nginx configuration (same upstream list, same backend instances)
# running directly on the host, in one run; the ratios are reported.
#
#   benches/farm.sh [-d SECONDS] [-r ROUNDS] [-c CONNECTIONS] [-t THREADS] [--boxctl PATH] [--bridge]
#
# The farm is bundles/webfarm/farm.toml with its own root (a temp dir), its own subnets
# and loopback ports; the web instances run without their CPU limit so the proxy, not
# the busybox backends, is what is measured (as far as 2 shared cores allow). Every
# client connection stays on this host: wrk -> 127.0.0.1:PORT (the instance's published
# port; a host client takes the in-kernel path, a connect() rewritten by the monitor's
# BPF program straight to the proxy's front-bridge address), wrk in a network namespace
# of its own (bxcl*, a veth to the host) -> the host end's address on the same published
# port (a remote client: served by boxctl's userspace forwarder), or wrk -> 127.0.0.1:PORT2
# (host nginx); both proxies reach the backends over the farm's back bridge. The proxy
# is also measured through its front-bridge address (the baseline of both published
# paths; --bridge is kept for old command lines and changes nothing), and the three
# instance paths once more on a static page its nginx answers itself (port 81, also
# published), where the forwarder's cost is not hidden behind the backends. The proxy
# monitor's CPU per 1,000 requests (its forwarder's work) is printed beside each.
# The bench's copy of the farm makes the back network non-internal: an internal network
# has no host address, so host nginx could not reach the backends (every request of
# that baseline failed before). Any error on either side of a comparison (socket
# errors, timeouts, non-2xx answers) fails the bench: it prints which side and exits 1
# instead of printing a ratio against failures.
# Images come from /var/cache/boxrun-images (built by `boxctl up` when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)
# shellcheck source=benches/lib.sh
. benches/lib.sh
dur=10
rounds=3
conns=8
threads=2
boxctl=target/release/boxctl
while [ $# -gt 0 ]; do
    case "$1" in
    -d) dur=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    -c) conns=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    --boxctl) boxctl=$2; shift 2 ;;
    --bridge) shift ;; # the bridge line is always measured now
    *) echo "usage: benches/farm.sh [-d SECONDS] [-r ROUNDS] [-c CONNECTIONS] [-t THREADS] [--boxctl PATH] [--bridge]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "farm bench: run as root" >&2; exit 1; }
for t in wrk nginx; do
    command -v $t >/dev/null || { echo "farm bench: $t missing: apt-get install wrk nginx-light" >&2; exit 1; }
done
[ -x "$boxctl" ] || { echo "farm bench: $boxctl missing: run scripts/build.sh (or --boxctl PATH)" >&2; exit 1; }
boxctl=$(readlink -f "$boxctl")

work=$(mktemp -d /tmp/boxctl-farm-bench.XXXXXX)
chmod 755 "$work" # unprivileged instances' roots must reach their disks below it
name=fb$(( $$ % 100000 ))
bx() { "$boxctl" --root "$work/root" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $(( 20000 + RANDOM % 20000 )); }
# Three free /24s in 10.219.0.0/16 (no host route there): back, front, remote client.
third=""
for k in $(seq 0 3 249); do
    t=$(( ( $$ * 3 + k ) % 252 ))
    if ! ip -4 route show | grep -qE "^10\.219\.($t|$((t + 1))|$((t + 2)))\."; then third=$t; break; fi
done
[ -n "$third" ] || { echo "farm bench: no free 10.219.x.0/24 triple" >&2; exit 1; }
remote_host=10.219.$((third + 2)).1
remote_ns=bxcl$(( $$ % 100000 ))
remote_if=$remote_ns
port=$(free_port)
port2=$(free_port)
while [ "$port2" = "$port" ]; do port2=$(free_port); done
port3=$(free_port)
while [ "$port3" = "$port" ] || [ "$port3" = "$port2" ]; do port3=$(free_port); done

cleanup() {
    if [ -s "$work/nginx/nginx.pid" ]; then
        kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
        sleep 0.3
    fi
    bx down -f "$work/farm.toml" >/dev/null 2>&1 || true
    ip link del "${remote_if}h" 2>/dev/null || true
    ip netns del "$remote_ns" 2>/dev/null || true
    bench_release_mounts "$work"
    rm -rf "$work"
}
trap cleanup EXIT

sed -e "s/^name = \"webfarm\"/name = \"$name\"/" \
    -e "s#10\.210\.200\.0/24#10.219.$third.0/24#" \
    -e "s#10\.210\.201\.0/24#10.219.$((third + 1)).0/24#" \
    -e "s/127\.0\.0\.1:8080:80/127.0.0.1:$port:80\", \"$remote_host:$port:80\", \"127.0.0.1:$port3:81\", \"$remote_host:$port3:81/" \
    -e "s#\"\.\./images/#\"$here/bundles/images/#" \
    -e '/^cpus = "0.5"/d' \
    -e '/^internal = true/d' \
    bundles/webfarm/farm.toml >"$work/farm.toml"

# The remote client: a namespace with a veth to the host (before `up`: the proxy
# publishes on the host end's address too).
ip netns add "$remote_ns"
ip link add "${remote_if}h" type veth peer name "${remote_if}c" netns "$remote_ns"
ip addr add "$remote_host/24" dev "${remote_if}h"
ip link set "${remote_if}h" up
ip -n "$remote_ns" addr add "10.219.$((third + 2)).2/24" dev "${remote_if}c"
ip -n "$remote_ns" link set "${remote_if}c" up
ip -n "$remote_ns" link set lo up

echo "farm bench: up ($name, 10.219.$third.0/24 + 10.219.$((third + 1)).0/24, port $port; remote client $remote_ns -> $remote_host)"
bx up -f "$work/farm.toml" >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
proxy_front=$(bx inspect "$name-proxy" | sed -n "s/.*\"$name-front=\([0-9.]*\)\/.*/\1/p")

# The same configuration on the host: the proxy's farm.conf, listening on loopback.
mkdir -p "$work/nginx"
bx exec "$name-proxy" cat /etc/nginx/conf.d/farm.conf |
    sed "s/listen 80 default_server;/listen 127.0.0.1:$port2 default_server;/" >"$work/nginx/farm.conf"
cat >"$work/nginx/nginx.conf" <<EOF
# Debian's nginx.conf (the proxy image's) minus logging, with the farm's server.
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 768; }
http {
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    include $work/nginx/farm.conf;
}
EOF
nginx -t -q -c "$work/nginx/nginx.conf" -p "$work/nginx"
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx"

run() { # label url [netns]
    local in=()
    [ -z "${3:-}" ] || in=(ip netns exec "$3")
    "${in[@]}" wrk -t "$threads" -c "$conns" -d 2s "$2" >/dev/null 2>&1 || true
    "${in[@]}" wrk -t "$threads" -c "$conns" -d "${dur}s" --timeout 5s --latency "$2" >"$work/$1.txt" 2>&1
}
ms() { # wrk time (e.g. 1.23ms, 850.00us, 1.10s) -> milliseconds
    awk -v t="$1" 'BEGIN { v = t + 0; if (t ~ /us$/) v /= 1000; else if (t ~ /ms$/) v = v; else if (t ~ /s$/) v *= 1000; printf "%.2f", v }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rps() { for f in "$work/$1".*.txt; do awk '/^Requests\/sec:/ {print $2}' "$f"; done | median; }
p99() { for f in "$work/$1".*.txt; do ms "$(awk '$1 == "99%" {print $2}' "$f")"; echo; done | median; }
errs() {
    cat "$work/$1".*.txt |
        awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}'
}

# The forwarder's cost alone: the proxy's nginx also answers a static page on port 81
# (no backend behind it), published like port 80; the paths are measured against it too.
bx exec "$name-proxy" sh -c 'printf "server { listen 81; access_log off; location / { return 200 \"static\\n\"; } }\n" >/etc/nginx/conf.d/bench-static.conf && nginx -s reload' ||
    { echo "farm bench: cannot add the static page to the proxy's nginx" >&2; exit 1; }
deadline=$((SECONDS + 30))
until (exec 3<>"/dev/tcp/$proxy_front/81") 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "farm bench: the proxy's static page on $proxy_front:81 never answered" >&2; exit 1; }
    sleep 0.1
done

# CPU (ms) of the proxy's monitor, i.e. of its forwarder, over each measured run.
monitor=$(bx inspect "$name-proxy" | sed -n 's/.*"monitor_pid": *\([0-9]*\).*/\1/p')
[ -n "$monitor" ] || { echo "farm bench: no monitor pid for $name-proxy" >&2; exit 1; }
tck=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$tck" '{ sub(/.*\) /, ""); split($0, f, " "); printf "%d\n", (f[12] + f[13]) * 1000 / t }' "/proc/$monitor/stat"; }

# Rounds alternate between the paths (the machine is shared: load drifts); each run
# has a 2 s warm-up; the medians over the rounds are reported.
run() { # label url [netns]
    local in=() before
    [ -z "${3:-}" ] || in=(ip netns exec "$3")
    "${in[@]}" wrk -t "$threads" -c "$conns" -d 2s "$2" >/dev/null 2>&1 || true
    before=$(cpu_ms)
    "${in[@]}" wrk -t "$threads" -c "$conns" -d "${dur}s" --timeout 5s --latency "$2" >"$work/$1.txt" 2>&1
    echo "monitor-cpu-ms: $(( $(cpu_ms) - before ))" >>"$work/$1.txt"
}
ms() { # wrk time (e.g. 1.23ms, 850.00us, 1.10s) -> milliseconds
    awk -v t="$1" 'BEGIN { v = t + 0; if (t ~ /us$/) v /= 1000; else if (t ~ /ms$/) v = v; else if (t ~ /s$/) v *= 1000; printf "%.2f", v }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rps() { for f in "$work/$1".*.txt; do awk '/^Requests\/sec:/ {print $2}' "$f"; done | median; }
p99() { for f in "$work/$1".*.txt; do ms "$(awk '$1 == "99%" {print $2}' "$f")"; echo; done | median; }
# Monitor CPU per 1,000 requests (ms), median over the rounds.
cpu() { for f in "$work/$1".*.txt; do awk '/requests in/ {n = $1} /^monitor-cpu-ms:/ {c = $2} END { printf "%.2f\n", n ? c * 1000 / n : 0 }' "$f"; done | median; }
errs() {
    cat "$work/$1".*.txt |
        awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}'
}

paths="instance remote bridge host s_instance s_remote s_bridge"
echo "farm bench: $rounds rounds of wrk -t $threads -c $conns -d ${dur}s per path (2 s warm-up each)"
for r in $(seq "$rounds"); do
    run "instance.$r" "http://127.0.0.1:$port/"
    run "remote.$r" "http://$remote_host:$port/" "$remote_ns"
    run "bridge.$r" "http://$proxy_front:80/"
    run "host.$r" "http://127.0.0.1:$port2/"
    run "s_instance.$r" "http://127.0.0.1:$port3/"
    run "s_remote.$r" "http://$remote_host:$port3/" "$remote_ns"
    run "s_bridge.$r" "http://$proxy_front:81/"
    echo "  round $r done"
done

row() { printf '%-52s %11s %9s %7s %14s\n' "$@"; }
echo
row "path (medians of $rounds)" "requests/s" "p99 (ms)" "errors" "fwd CPU ms/1k"
echo "farm page (nginx proxy -> 3 busybox backends):"
row "  published port, host client (127.0.0.1:$port)" "$(rps instance)" "$(p99 instance)" "$(errs instance)" "$(cpu instance)"
row "  published port, other netns ($remote_host:$port)" "$(rps remote)" "$(p99 remote)" "$(errs remote)" "$(cpu remote)"
row "  the proxy's bridge address ($proxy_front:80)" "$(rps bridge)" "$(p99 bridge)" "$(errs bridge)" "$(cpu bridge)"
row "  host nginx, same config (127.0.0.1:$port2)" "$(rps host)" "$(p99 host)" "$(errs host)" "-"
echo "static page (the proxy's nginx alone, port 81):"
row "  published port, host client (127.0.0.1:$port3)" "$(rps s_instance)" "$(p99 s_instance)" "$(errs s_instance)" "$(cpu s_instance)"
row "  published port, other netns ($remote_host:$port3)" "$(rps s_remote)" "$(p99 s_remote)" "$(errs s_remote)" "$(cpu s_remote)"
row "  the proxy's bridge address ($proxy_front:81)" "$(rps s_bridge)" "$(p99 s_bridge)" "$(errs s_bridge)" "$(cpu s_bridge)"
echo "backends: 3 busybox httpd instances (no CPU limit), shared 2-core machine; load: $(cut -d' ' -f1-3 /proc/loadavg)"
failed=""
for side in $paths; do
    n=$(errs "$side")
    if [ "$n" != 0 ]; then
        echo "farm bench: FAILED: the $side side had $n errors (socket errors, timeouts or non-2xx answers); wrk said:" >&2
        grep -hE "Socket errors|Non-2xx" "$work/$side".*.txt >&2 || true
        failed=1
    fi
    if [ -z "$(rps "$side")" ] || [ "$(rps "$side")" = 0 ]; then
        echo "farm bench: FAILED: no requests/s figure for the $side side; wrk said:" >&2
        cat "$work/$side".*.txt >&2
        failed=1
    fi
done
[ -z "$failed" ] || { echo "farm bench: no ratio: a comparison with errors on either side means nothing" >&2; exit 1; }
ratio() { # label a b
    awk -v l="$1" -v a="$(rps "$2")" -v b="$(rps "$3")" -v pa="$(p99 "$2")" -v pb="$(p99 "$3")" 'BEGIN {
        printf "ratio %-58s requests/s %.2f, p99 latency %.2f\n", l ":", a / b, pa / pb }'
}
echo
ratio "farm, published port (host client) / host nginx" instance host
ratio "farm, published port (host client) / bridge address" instance bridge
ratio "farm, published port (other netns, forwarder) / bridge address" remote bridge
ratio "static, published port (host client) / bridge address" s_instance s_bridge
ratio "static, published port (other netns, forwarder) / bridge address" s_remote s_bridge
# Which path the host client took: the monitor's log says when it is the forwarder.
if grep -qh "userspace forwarder" "$work"/root/instances/*/monitor.log 2>/dev/null; then
    echo "note: host clients went through the forwarder:"
    grep -h "userspace forwarder" "$work"/root/instances/*/monitor.log
fi
