#!/bin/sh
# The swarm lane's proxy task: nginx balancing round robin over every task of the web
# service, the upstream list rewritten from Docker's DNS ($BACKENDS, e.g. tasks.farm_web)
# and reloaded (graceful) whenever the set of addresses changes, checked every second.
set -u
conf=/etc/nginx/conf.d/farm.conf
render() {
    echo 'upstream farm_backends {'
    echo '    zone farm_backends 64k;'
    [ -n "$1" ] || echo '    server 127.0.0.1:9 down;'
    for a in $1; do echo "    server $a:80 max_fails=1 fail_timeout=2s;"; done
    echo '}'
    cat <<'EOC'
server {
    listen 80 default_server;
    access_log off;
    location / {
        proxy_pass http://farm_backends;
        proxy_next_upstream error timeout http_502 http_503;
        proxy_connect_timeout 1s;
        proxy_read_timeout 5s;
        add_header X-Upstream $upstream_addr always;
    }
}
EOC
}
addrs() { getent ahostsv4 "$BACKENDS" | awk '{print $1}' | sort -u | tr '\n' ' '; }
cur=$(addrs)
render "$cur" >"$conf"
nginx -g 'daemon off; error_log stderr warn;' &
pid=$!
trap 'kill -TERM "$pid"; wait "$pid"; exit 0' TERM INT
while kill -0 "$pid" 2>/dev/null; do
    sleep 1 &
    wait $!
    new=$(addrs)
    if [ "$new" != "$cur" ]; then
        cur=$new
        render "$cur" >"$conf" && nginx -s reload
    fi
done
