#!/bin/sh
# Build the web-server root filesystem: busybox (Debian's busybox-static) running
# `httpd`, serving a page that names the instance it runs in.
# Usage: bundles/images/build-web.sh DEST
# The instance's command is /usr/sbin/boxweb (written here): it writes /www/index.html
# with the instance's hostname at start, then runs httpd in the foreground on port 80.
set -eu
dest=${1:?usage: build-web.sh DEST}
here=$(cd "$(dirname "$0")" && pwd)
tmp="$dest.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
"$here/../busybox/build-rootfs.sh" "$tmp"
mkdir -p "$tmp/www" "$tmp/usr/sbin" "$tmp/etc"
cat >"$tmp/usr/sbin/boxweb" <<'EOS'
#!/bin/sh
# Serve a page naming this instance; /health answers for the proxy's checks.
name=$(hostname)
addr=$(ip -4 -o addr show eth0 2>/dev/null | awk '{print $4}' | head -n1)
cat >/www/index.html <<EOH
<!doctype html>
<html><head><title>boxrun web farm</title></head>
<body><h1>Hello from ${name}</h1><p>instance ${name} ${addr}</p></body></html>
EOH
echo ok >/www/health
# No -v: a log line per request would cost more than serving the page. HTTPD_VERBOSE=1 for it.
exec httpd -f ${HTTPD_VERBOSE:+-v} -p "${PORT:-80}" -h /www
EOS
chmod 755 "$tmp/usr/sbin/boxweb"
printf 'www-data:x:33:33:www-data:/www:/bin/false\n' >>"$tmp/etc/passwd"
printf 'www-data:x:33:\n' >>"$tmp/etc/group"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "build-web: $dest"
