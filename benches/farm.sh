#!/bin/bash
# Web farm bench: requests/s and p99 latency through the farm's nginx proxy instance,
# beside the same nginx configuration (same upstream list, same backend instances)
# running directly on the host, in one run; the ratio is reported.
#
#   benches/farm.sh [-d SECONDS] [-r ROUNDS] [-c CONNECTIONS] [-t THREADS] [--boxctl PATH] [--bridge]
#
# The farm is bundles/webfarm/farm.toml with its own root (a temp dir), its own subnets
# and loopback ports; the web instances run without their CPU limit so the proxy, not
# the busybox backends, is what is measured (as far as 2 shared cores allow). Every
# client connection is on loopback: wrk -> 127.0.0.1:PORT (the instance's published
# port, served by boxctl's userspace forwarder, then the farm's front bridge) or
# wrk -> 127.0.0.1:PORT2 (host nginx); both proxies reach the backends over the farm's
# back bridge. With --bridge, one more line measures the proxy instance through its
# front-bridge address (no forwarder) to separate the forwarder's cost.
# The bench's copy of the farm makes the back network non-internal: an internal network
# has no host address, so host nginx could not reach the backends (every request of
# that baseline failed before). Any error on either side of a comparison (socket
# errors, timeouts, non-2xx answers) fails the bench: it prints which side and exits 1
# instead of printing a ratio against failures.
# Images come from /var/cache/boxrun-images (built by `boxctl up` when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)
dur=10
rounds=3
conns=8
threads=2
boxctl=target/release/boxctl
bridge=""
while [ $# -gt 0 ]; do
    case "$1" in
    -d) dur=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    -c) conns=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    --boxctl) boxctl=$2; shift 2 ;;
    --bridge) bridge=1; shift ;;
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
name=fb$(( $$ % 100000 ))
bx() { "$boxctl" --root "$work/root" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $(( 20000 + RANDOM % 20000 )); }
# Two free /24s in 10.219.0.0/16 (no host route there).
third=""
for k in $(seq 0 2 250); do
    t=$(( ( $$ * 2 + k ) % 254 ))
    if ! ip -4 route show | grep -qE "^10\.219\.($t|$((t + 1)))\."; then third=$t; break; fi
done
[ -n "$third" ] || { echo "farm bench: no free 10.219.x.0/24 pair" >&2; exit 1; }
port=$(free_port)
port2=$(free_port)
while [ "$port2" = "$port" ]; do port2=$(free_port); done

cleanup() {
    if [ -s "$work/nginx/nginx.pid" ]; then
        kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
        sleep 0.3
    fi
    bx down -f "$work/farm.toml" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

sed -e "s/^name = \"webfarm\"/name = \"$name\"/" \
    -e "s#10\.210\.200\.0/24#10.219.$third.0/24#" \
    -e "s#10\.210\.201\.0/24#10.219.$((third + 1)).0/24#" \
    -e "s/127\.0\.0\.1:8080:80/127.0.0.1:$port:80/" \
    -e "s#\"\.\./images/#\"$here/bundles/images/#" \
    -e '/^cpus = "0.5"/d' \
    -e '/^internal = true/d' \
    bundles/webfarm/farm.toml >"$work/farm.toml"

echo "farm bench: up ($name, 10.219.$third.0/24 + 10.219.$((third + 1)).0/24, port $port)"
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

# Rounds alternate between the proxies (the machine is shared: load drifts); each run
# has a 2 s warm-up; the medians over the rounds are reported.
run() { # label url
    wrk -t "$threads" -c "$conns" -d 2s "$2" >/dev/null 2>&1 || true
    wrk -t "$threads" -c "$conns" -d "${dur}s" --timeout 5s --latency "$2" >"$work/$1.txt" 2>&1
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

echo "farm bench: $rounds rounds of wrk -t $threads -c $conns -d ${dur}s per proxy (2 s warm-up each)"
for r in $(seq "$rounds"); do
    run "instance.$r" "http://127.0.0.1:$port/"
    run "host.$r" "http://127.0.0.1:$port2/"
    if [ -n "$bridge" ]; then run "bridge.$r" "http://$proxy_front:80/"; fi
    echo "  round $r done"
done

printf '\n%-44s %12s %12s %8s\n' "proxy (medians of $rounds)" "requests/s" "p99 (ms)" "errors"
printf '%-44s %12s %12s %8s\n' "instance, published port (127.0.0.1:$port)" "$(rps instance)" "$(p99 instance)" "$(errs instance)"
printf '%-44s %12s %12s %8s\n' "host nginx, same config (127.0.0.1:$port2)" "$(rps host)" "$(p99 host)" "$(errs host)"
if [ -n "$bridge" ]; then
    printf '%-44s %12s %12s %8s\n' "instance, front bridge ($proxy_front:80)" "$(rps bridge)" "$(p99 bridge)" "$(errs bridge)"
fi
echo "backends: 3 busybox httpd instances (no CPU limit), shared 2-core machine; load: $(cut -d' ' -f1-3 /proc/loadavg)"
failed=""
sides="instance host"
[ -n "$bridge" ] && sides="$sides bridge"
for side in $sides; do
    n=$(errs "$side")
    if [ "$n" != 0 ]; then
        echo "farm bench: FAILED: the $side side had $n errors (socket errors, timeouts or non-2xx answers); wrk said:" >&2
        grep -hE "Socket errors|Non-2xx" "$work/$side".*.txt >&2 || true
        failed=1
    fi
done
[ -z "$failed" ] || { echo "farm bench: no ratio: a comparison with errors on either side means nothing" >&2; exit 1; }
awk -v a="$(rps instance)" -v b="$(rps host)" -v pa="$(p99 instance)" -v pb="$(p99 host)" 'BEGIN {
    printf "\nratio instance/host: requests/s %.2f, p99 latency %.2f\n", a / b, pa / pb }'
if [ -n "$bridge" ]; then
    awk -v a="$(rps instance)" -v b="$(rps bridge)" -v pa="$(p99 instance)" -v pb="$(p99 bridge)" 'BEGIN {
        printf "ratio published port/bridge address: requests/s %.2f, p99 latency %.2f\n", a / b, pa / pb }'
fi
