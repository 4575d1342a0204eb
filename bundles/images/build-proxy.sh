#!/bin/sh
# Build the reverse-proxy root filesystem: Debian bookworm (debootstrap minbase) with
# nginx-light, trimmed of docs, man pages and the apt cache.
# Usage: bundles/images/build-proxy.sh DEST [MIRROR]
# The nginx configuration (upstreams) is written by `boxctl up` into the instance;
# the image ships a placeholder and /usr/sbin/boxproxy, the instance's command.
set -eu
dest=${1:?usage: build-proxy.sh DEST [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
command -v debootstrap >/dev/null || { echo "build-proxy: debootstrap missing: apt-get install debootstrap" >&2; exit 1; }
tmp="$dest.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
debootstrap --variant=minbase --include=nginx-light bookworm "$tmp" "$mirror" >"$tmp.log" 2>&1 || {
    echo "build-proxy: debootstrap failed, last lines of its log:" >&2
    tail -n 20 "$tmp.log" >&2
    rm -f "$tmp.log"
    exit 1
}
rm -f "$tmp.log"
rm -rf "$tmp/var/cache/apt/archives/"*.deb "$tmp/var/lib/apt/lists/"* \
    "$tmp/usr/share/doc" "$tmp/usr/share/man" "$tmp/usr/share/info" "$tmp/usr/share/locale"
rm -f "$tmp/etc/nginx/sites-enabled/default"
mkdir -p "$tmp/etc/nginx/conf.d"
cat >"$tmp/etc/nginx/conf.d/farm.conf" <<'EOC'
# Placeholder: boxctl up writes the real upstream list here.
server { listen 80 default_server; return 503 "no backends yet\n"; }
EOC
cat >"$tmp/usr/sbin/boxproxy" <<'EOS'
#!/bin/sh
# Run nginx in the foreground; `nginx -s reload` (boxctl exec) reloads the upstreams.
exec nginx -g 'daemon off; error_log stderr warn;'
EOS
chmod 755 "$tmp/usr/sbin/boxproxy"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "build-proxy: $dest"
