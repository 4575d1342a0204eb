//! The default network: `run`/`create` without `--net` join the store's
//! bridge network `boxctl0`, made on first use; `--net none` keeps loopback
//! only. Run as root with the release boxrun built (`scripts/build.sh`).
//! Traffic stays on the test stores' own bridges.

mod common;

use std::path::Path;

use common::Env;

/// Deletes bridges on drop (they go with `network rm` in Env's drop too; this
/// covers a store the test broke).
struct BridgeGuard(Vec<String>);

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        for b in &self.0 {
            let _ = boxctl_network::bridge::delete(b);
        }
    }
}

fn iface_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The bridge the default network of `env`'s store gets: `bx0-` + 8 hex digits of its id.
fn default_bridge(env: &Env) -> String {
    let id = std::fs::read_to_string(env.root.join("store-id")).expect("the store has an id");
    format!("bx0-{}", &id.trim()[..8])
}

/// The `network ls` row of NAME: [name, subnet, gateway, bridge, instances].
fn net_row(env: &Env, name: &str) -> Option<Vec<String>> {
    env.ok(&["network", "ls"])
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|r| r.first().map(String::as_str) == Some(name))
}

/// The instance's address on `net` (from `inspect`), without the prefix.
fn address(env: &Env, name: &str, net: &str) -> String {
    let v = env.inspect(name);
    v["networks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .find_map(|n| n.strip_prefix(&format!("{net}=")))
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("{name} has no address on {net}: {v}"))
        .to_string()
}

fn id_of(env: &Env, name: &str) -> String {
    env.inspect(name)["id"].as_str().unwrap().to_string()
}

/// Two instances run without any flag share boxctl0: each reaches the other
/// by address and by name (the store's /etc/hosts), and the host's gateway
/// address on the bridge, through which their default route goes.
#[test]
fn instances_without_flags_reach_each_other_and_the_host() {
    let env = Env::new("dnreach");
    env.ok(&["run", "-d", "--name", "a", "bb", "sleep", "1000"]);
    let _bridge = BridgeGuard(vec![default_bridge(&env)]);
    env.ok(&["run", "-d", "--name", "b", "bb", "sleep", "1000"]);
    let row = net_row(&env, "boxctl0").expect("network ls shows boxctl0");
    let (subnet, gateway, bridge) = (&row[1], &row[2], &row[3]);
    assert_eq!(bridge, &default_bridge(&env), "{row:?}");
    assert_eq!(row[4], "2", "{row:?}");
    assert!(
        subnet.starts_with("10.209.") && subnet.ends_with(".0/24"),
        "{subnet}"
    );
    let (a_ip, b_ip) = (address(&env, "a", "boxctl0"), address(&env, "b", "boxctl0"));
    assert_ne!(a_ip, b_ip);
    for (from, to) in [
        ("a", b_ip.as_str()),
        ("b", a_ip.as_str()),
        ("a", "b"),
        ("b", "a"),
    ] {
        env.ok(&["exec", from, "ping", "-c", "1", "-W", "5", to]);
    }
    env.ok(&["exec", "a", "ping", "-c", "1", "-W", "5", gateway]);
    let routes = env.ok(&["exec", "a", "ip", "route"]);
    assert!(
        routes.contains(&format!("default via {gateway} dev eth0")),
        "{routes}"
    );
    // TCP to a host listener on the gateway address: the host reads one line
    // and closes, which ends busybox nc (it waits for the peer to close).
    let listener =
        std::net::TcpListener::bind((gateway.as_str(), 0)).expect("listen on the gateway");
    let port = listener.local_addr().unwrap().port().to_string();
    let server = std::thread::spawn(move || {
        let (conn, peer) = listener.accept().expect("a connection from a");
        conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(conn), &mut line).unwrap();
        (peer.ip().to_string(), line)
    });
    let cmd = format!("echo hello-host | nc {gateway} {port}");
    env.ok(&["exec", "a", "sh", "-c", &cmd]);
    let (peer, got) = server.join().expect("the listener thread");
    assert_eq!(peer, a_ip);
    assert_eq!(got.trim(), "hello-host");
    // The host has no ping of its own here: busybox's (a static binary).
    let st = std::process::Command::new("/bin/busybox")
        .args(["ping", "-c", "1", "-W", "5", &b_ip])
        .output()
        .expect("run ping");
    assert!(st.status.success(), "the host cannot ping b at {b_ip}");
    let ids: Vec<String> = ["a", "b"].iter().map(|n| id_of(&env, n)).collect();
    env.ok(&["rm", "-f", "a", "b"]);
    for id in &ids {
        let v = boxctl_network::veth_name_for(id, 0);
        assert!(!iface_exists(&v), "leaked veth {v}");
        assert!(!env.root.join("instances").join(id).exists());
    }
    env.assert_no_leaks(&ids);
}

/// `--net none` keeps today's no-network behaviour: loopback only, and no
/// default network made for it.
#[test]
fn net_none_has_only_loopback() {
    let env = Env::new("dnnone");
    let out = env.ok(&["run", "--rm", "--net", "none", "bb", "ls", "/sys/class/net"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["lo"], "{out}");
    assert!(
        net_row(&env, "boxctl0").is_none(),
        "--net none made boxctl0"
    );
    // `create` too; `--publish` still needs a network.
    env.ok(&["create", "--name", "quiet", "--net", "none", "bb", "true"]);
    assert_eq!(env.inspect("quiet")["net_mode"], "none");
    let e = env.fails(&["run", "-d", "--net", "none", "-p", "18080:80", "bb", "true"]);
    assert!(
        e.contains("--publish needs the instance on a network"),
        "{e}"
    );
    assert!(net_row(&env, "boxctl0").is_none());
    env.ok(&["rm", "quiet"]);
    // Made by hand before the first run (to choose its subnet): runs use it,
    // on the store's own bridge name.
    let pre = env.create_network(222, &["boxctl0"]);
    let _bridge = BridgeGuard(vec![default_bridge(&env)]);
    assert_eq!(net_row(&env, "boxctl0").unwrap()[3], default_bridge(&env));
    env.ok(&["run", "-d", "--name", "later", "bb", "sleep", "1000"]);
    assert_eq!(address(&env, "later", "boxctl0"), format!("{pre}2"));
    env.ok(&["rm", "-f", "later"]);
    env.ok(&["network", "rm", "boxctl0"]);
    assert!(!iface_exists(&default_bridge(&env)));
}

/// boxctl0 is made once and reused; `network rm` is refused while an
/// instance uses it and leaves the bridge; after rm the veths are gone and
/// the bridge stays until `network rm boxctl0`; the next run makes it again.
#[test]
fn default_network_is_made_once_reused_and_kept_while_used() {
    let env = Env::new("dnonce");
    let e = env.fails(&["run", "-d", "--net", "nosuch", "bb", "true"]);
    assert!(e.contains("no such network: nosuch"), "{e}");
    assert!(
        net_row(&env, "boxctl0").is_none(),
        "a refused run made boxctl0"
    );
    assert!(env.ps_all().is_empty());

    env.ok(&["run", "-d", "--name", "one", "bb", "sleep", "1000"]);
    let bridge = default_bridge(&env);
    let _bridge = BridgeGuard(vec![bridge.clone()]);
    let first = net_row(&env, "boxctl0").expect("boxctl0 made on first use");
    assert!(iface_exists(&bridge), "no bridge {bridge}");
    // `create` + `start` and an explicit `--net boxctl0` use the same network.
    env.ok(&["create", "--name", "two", "bb", "sleep", "1000"]);
    env.ok(&["start", "two"]);
    env.ok(&[
        "run", "-d", "--name", "three", "--net", "boxctl0", "bb", "sleep", "1000",
    ]);
    let rows = env.ok(&["network", "ls"]);
    assert_eq!(rows.lines().count(), 2, "one network expected: {rows}");
    let now = net_row(&env, "boxctl0").unwrap();
    assert_eq!(
        now[..4],
        first[..4],
        "boxctl0 changed: {first:?} -> {now:?}"
    );
    assert_eq!(now[4], "3");
    let e = env.fails(&["network", "rm", "boxctl0"]);
    assert!(e.contains("network boxctl0 is used by instance(s)"), "{e}");
    let e = env.fails(&["network", "create", "boxctl0"]);
    assert!(e.contains("network boxctl0 already exists"), "{e}");
    assert!(iface_exists(&bridge));
    // Stop and start keep the address and re-attach to the same bridge.
    let before = address(&env, "one", "boxctl0");
    env.ok(&["stop", "-t", "1", "one"]);
    env.ok(&["start", "one"]);
    assert_eq!(address(&env, "one", "boxctl0"), before);
    env.ok(&["exec", "one", "ping", "-c", "1", "-W", "5", "two"]);

    let ids: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|n| id_of(&env, n))
        .collect();
    env.ok(&["rm", "-f", "one", "two", "three"]);
    for id in &ids {
        let v = boxctl_network::veth_name_for(id, 0);
        assert!(!iface_exists(&v), "leaked veth {v}");
    }
    env.assert_no_leaks(&ids);
    // The bridge stays as the store's default network, unused.
    assert!(
        iface_exists(&bridge),
        "bridge {bridge} went with the instances"
    );
    assert_eq!(net_row(&env, "boxctl0").unwrap()[4], "0");
    env.ok(&["network", "rm", "boxctl0"]);
    assert!(!iface_exists(&bridge), "network rm left {bridge}");
    assert!(net_row(&env, "boxctl0").is_none());
    // Made again by the next run without --net.
    let out = env.ok(&["run", "--rm", "bb", "cat", "/sys/class/net/eth0/operstate"]);
    assert_eq!(out.trim(), "up");
    assert!(iface_exists(&bridge));
    env.ok(&["network", "rm", "boxctl0"]);
}

/// Two stores on one host each get their own default bridge and subnet, also
/// when their first runs (two at once in store a) race; removing one store's
/// boxctl0 leaves the other's alone.
#[test]
fn two_stores_get_their_own_default_bridge() {
    let a = Env::new("dnstorea");
    let b = Env::new("dnstoreb");
    std::thread::scope(|s| {
        let runs = [(&a, "x"), (&a, "y"), (&b, "x")].map(|(env, name)| {
            s.spawn(move || env.ok(&["run", "-d", "--name", name, "bb", "sleep", "1000"]))
        });
        for r in runs {
            r.join().expect("a first run");
        }
    });
    assert_eq!(net_row(&a, "boxctl0").unwrap()[4], "2");
    assert_eq!(a.ok(&["network", "ls"]).lines().count(), 2);
    a.ok(&["exec", "x", "ping", "-c", "1", "-W", "5", "y"]);
    let (bra, brb) = (default_bridge(&a), default_bridge(&b));
    let _bridges = BridgeGuard(vec![bra.clone(), brb.clone()]);
    assert_ne!(bra, brb);
    let (ra, rb) = (
        net_row(&a, "boxctl0").unwrap(),
        net_row(&b, "boxctl0").unwrap(),
    );
    assert_eq!(
        (ra[3].as_str(), rb[3].as_str()),
        (bra.as_str(), brb.as_str())
    );
    assert_ne!(ra[1], rb[1], "both stores took subnet {}", ra[1]);
    assert!(iface_exists(&bra) && iface_exists(&brb));
    // Each instance reaches its own store's gateway.
    a.ok(&["exec", "x", "ping", "-c", "1", "-W", "5", &ra[2]]);
    b.ok(&["exec", "x", "ping", "-c", "1", "-W", "5", &rb[2]]);
    let ids = [id_of(&a, "x"), id_of(&a, "y"), id_of(&b, "x")];
    a.ok(&["rm", "-f", "x", "y"]);
    a.ok(&["network", "rm", "boxctl0"]);
    assert!(!iface_exists(&bra));
    assert!(
        iface_exists(&brb),
        "store a's network rm took store b's bridge"
    );
    b.ok(&["exec", "x", "ping", "-c", "1", "-W", "5", &rb[2]]);
    b.ok(&["rm", "-f", "x"]);
    b.ok(&["network", "rm", "boxctl0"]);
    assert!(!iface_exists(&brb));
    a.assert_no_leaks(&ids[..2]);
    b.assert_no_leaks(&ids[2..]);
}
