#!/bin/bash
# The showcase: a private web-server farm behind a reverse proxy, every piece an instance.
#
#   scripts/demo.sh          # from a fresh Debian 12: deps, build, images, farm up
#   scripts/demo.sh down     # remove the farm (instances, networks; images stay)
#   scripts/demo.sh status   # ps and three answers
#
# Store: the default /var/lib/boxctl. Root filesystems are built once and cached in
# /var/cache/boxrun-images/{web,proxy} (rebuilt when their recipe is newer); the proxy's
# is a debootstrap of Debian bookworm + nginx-light (1-3 minutes, needs the Debian mirror).
set -euo pipefail
cd "$(dirname "$0")/.."
farm=bundles/webfarm/farm.toml
cache=/var/cache/boxrun-images
boxctl=${BOXCTL:-target/release/boxctl}   # BOXCTL: another build of boxctl (runtime: boxrun beside it)
url=http://127.0.0.1:8080/

say() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "demo: run as root (containers, cgroups and bridges need it)" >&2
    exit 1
fi

answers() {
    local i
    for i in 1 2 3; do
        printf '  curl %s -> ' "$url"
        curl -fsS --max-time 5 "$url" | sed -n 's/.*<h1>\(.*\)<\/h1>.*/\1/p'
    done
}

case "${1:-up}" in
down)
    if [ ! -x "$boxctl" ]; then
        echo "demo: $boxctl is not built: nothing of the demo can be running" >&2
        exit 1
    fi
    "$boxctl" down -f "$farm"
    exit 0
    ;;
status)
    "$boxctl" ps
    answers
    exit 0
    ;;
up) ;;
*)
    echo "usage: scripts/demo.sh [up|down|status]" >&2
    exit 2
    ;;
esac

if [ -n "${DEMO_SKIP_BUILD:-}" ] && [ -x "$boxctl" ]; then
    say "DEMO_SKIP_BUILD: using $boxctl as it is"
else
    say "dependencies (scripts/install-deps.sh)"
    scripts/install-deps.sh
    say "release binaries (scripts/build.sh): target/release/boxrun (static) and boxctl"
    scripts/build.sh
fi

say "root filesystems, cached in $cache"
mkdir -p "$cache"
for img in web proxy; do
    recipe=bundles/images/build-$img.sh
    if [ -d "$cache/$img" ] && [ ! "$recipe" -nt "$cache/$img" ]; then
        echo "  $img: cached ($cache/$img)"
        continue
    fi
    [ "$img" = proxy ] && echo "  proxy: debootstrap bookworm + nginx-light, 1-3 minutes"
    "$recipe" "$cache/$img"
    # A stale imported image would be used as is: drop it (and the farm using it).
    if "$boxctl" image ls --json | grep -q "\"name\": \"$img\""; then
        "$boxctl" down -f "$farm" >/dev/null
        "$boxctl" image rm "$img" >/dev/null
    fi
done

say "boxctl up -f $farm"
"$boxctl" up -f "$farm"

say "instances"
"$boxctl" ps

say "open $url  (three answers, round robin over the backends)"
answers

cat <<EOF

Try:
  $boxctl scale -f $farm web=5      # more backends, graceful nginx reload
  $boxctl exec webfarm-proxy cat /etc/nginx/conf.d/farm.conf
  kill -9 \$($boxctl inspect webfarm-web-2 | sed -n 's/ *"pid": \([0-9]*\),/\1/p')   # restart always
  wrk -t2 -c8 -d10s $url
  scripts/demo.sh down
EOF
