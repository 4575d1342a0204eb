//! The reverse proxy's nginx configuration and the script that installs it
//! inside the proxy instance and reloads nginx gracefully.

use std::net::Ipv4Addr;

use super::spec::Balance;

/// One upstream server: the instance name (for the comment) and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Instance name.
    pub name: String,
    /// Address on the backend network.
    pub addr: Ipv4Addr,
}

/// The configuration of a proxy in front of `backends` (listening on
/// `b.listen`, upstreams on `port`): round robin, passive health checks
/// (`max_fails`/`fail_timeout`), a failed attempt retried on the next server.
pub fn render(farm: &str, b: &Balance, port: u16, backends: &[Backend]) -> String {
    let mut s = format!(
        "# Written by boxctl for farm {farm}: `boxctl up` and `boxctl scale` rewrite it.\n"
    );
    if backends.is_empty() {
        s.push_str(&format!(
            "server {{\n    listen {} default_server;\n    access_log off;\n    \
             return 503 \"no backends\\n\";\n}}\n",
            b.listen
        ));
        return s;
    }
    // A shared zone: one round robin and one view of failed servers for all workers.
    s.push_str("upstream farm_backends {\n    zone farm_backends 64k;\n");
    for be in backends {
        s.push_str(&format!(
            "    server {}:{port} max_fails={} fail_timeout={}; # {}\n",
            be.addr, b.max_fails, b.fail_timeout, be.name
        ));
    }
    s.push_str("}\n");
    s.push_str(&format!(
        "server {{
    listen {listen} default_server;
    access_log off;
    location / {{
        proxy_pass http://farm_backends;
        # A refused, reset or timed-out attempt (or a 502/503) is retried on the next
        # server; a dead backend is left out for fail_timeout after max_fails failures.
        proxy_next_upstream error timeout http_502 http_503;
        proxy_connect_timeout {connect};
        proxy_read_timeout 30s;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        add_header X-Upstream $upstream_addr always;
    }}
}}
",
        listen = b.listen,
        connect = b.connect_timeout,
    ));
    s
}

/// Shell script run inside the proxy instance as `sh -c SCRIPT sh CONF` with
/// the new configuration on stdin. It waits for nginx to run, leaves an
/// identical file alone (prints `unchanged`), else installs the file, checks
/// it with `nginx -t` (the old one is put back on failure), sends the
/// graceful reload and waits until new workers run and every old worker has
/// finished its requests and exited (prints `reloaded`): after it returns,
/// no request is still on its way to a server that the new file dropped.
pub const INSTALL_SCRIPT: &str = r#"set -u
conf=$1
i=0
until [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 300 ]; then
        echo "nginx is not running in the proxy instance (no live /run/nginx.pid after 30 s)" >&2
        exit 1
    fi
    sleep 0.1
done
cat >"$conf.new" || exit 1
if [ -f "$conf" ] && cmp -s "$conf" "$conf.new"; then
    rm -f "$conf.new"
    echo unchanged
    exit 0
fi
[ -f "$conf" ] && cp -p "$conf" "$conf.old"
mv "$conf.new" "$conf" || exit 1
if ! out=$(nginx -t 2>&1); then
    if [ -f "$conf.old" ]; then mv "$conf.old" "$conf"; else rm -f "$conf"; fi
    echo "nginx rejected the new configuration: $out" | tr '\n' ' ' >&2
    echo >&2
    exit 1
fi
rm -f "$conf.old"
workers() {
    for p in /proc/[0-9]*; do
        c=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
        case $c in "nginx: worker process"*) printf '%s ' "${p#/proc/}" ;; esac
    done
}
old=" $(workers)"
nginx -s reload || exit 1
i=0
while :; do
    busy=
    for p in $old; do [ -d "/proc/$p" ] && busy=1; done
    fresh=
    for p in $(workers); do
        case "$old " in *" $p "*) ;; *) fresh=1 ;; esac
    done
    [ -z "$busy" ] && [ -n "$fresh" ] && break
    i=$((i + 1))
    if [ "$i" -gt 600 ]; then
        echo "nginx reload did not finish in 60 s (old workers still busy)" >&2
        exit 1
    fi
    sleep 0.05
done
echo reloaded
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn balance() -> Balance {
        let f = super::super::spec::Farm::parse(
            "name = \"f\"\n[networks.n]\n[services.w]\nimage = \"w\"\nreplicas = 1\n\
             networks = [\"n\"]\n[services.p]\nimage = \"p\"\nnetworks = [\"n\"]\n\
             [services.p.balance]\nbackends = \"w\"\nfail_timeout = \"3s\"\n",
        )
        .unwrap();
        f.services["p"].balance.clone().unwrap()
    }

    #[test]
    fn upstream_list_with_passive_health_and_retries() {
        let be = [
            Backend {
                name: "f-w-1".into(),
                addr: Ipv4Addr::new(10, 0, 0, 2),
            },
            Backend {
                name: "f-w-2".into(),
                addr: Ipv4Addr::new(10, 0, 0, 3),
            },
        ];
        let c = render("f", &balance(), 8000, &be);
        assert!(c.contains("server 10.0.0.2:8000 max_fails=1 fail_timeout=3s; # f-w-1\n"));
        assert!(c.contains("server 10.0.0.3:8000 max_fails=1 fail_timeout=3s; # f-w-2\n"));
        assert!(c.contains("proxy_next_upstream error timeout http_502 http_503;"));
        assert!(c.contains("proxy_connect_timeout 1500ms;"));
        assert!(c.contains("zone farm_backends 64k;"));
        assert!(c.contains("listen 80 default_server;"));
        assert_eq!(c.matches('{').count(), c.matches('}').count());
    }

    #[test]
    fn no_backends_is_a_503_server() {
        let c = render("f", &balance(), 80, &[]);
        assert!(!c.contains("upstream"));
        assert!(c.contains("return 503"));
    }
}
