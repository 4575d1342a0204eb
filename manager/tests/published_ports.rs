//! Published ports: host clients take the in-kernel path (BPF programs of
//! the monitor), other clients the forwarder; the programs go with the
//! monitor, and `BOXCTL_PUBLISH_BPF=off` keeps everyone on the forwarder.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use boxctl_network::bpf;
use boxctl_network::local_path::PROGRAM_PREFIX;
use common::*;

const WEB: &str =
    "mkdir -p /www && echo hello-pub > /www/index.html && exec httpd -f -p 80 -h /www";

/// One GET through `addr`, retried while the server starts (at most 5 s;
/// on the direct path a connection before it listens is refused):
/// (the client's local address, its peer address, the body).
fn get(addr: SocketAddr) -> (SocketAddr, SocketAddr, String) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
                std::thread::yield_now();
                continue;
            }
            Err(e) => panic!("connect to {addr}: {e}"),
        };
        let ends = (s.local_addr().unwrap(), s.peer_addr().unwrap());
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        if body.contains("hello-pub") || Instant::now() > deadline {
            return (ends.0, ends.1, body);
        }
        std::thread::yield_now();
    }
}

/// Ids of the BPF programs the process `pid` holds (from its fdinfo).
fn bpf_prog_ids_of(pid: i32) -> Vec<u32> {
    let mut ids = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return ids;
    };
    for e in dir.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        for l in text.lines() {
            if let Some(id) = l.strip_prefix("prog_id:") {
                ids.extend(id.trim().parse::<u32>().ok());
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

/// Which of `ids` are still loaded `bx_pub_*` programs.
fn still_loaded(ids: &[u32]) -> Vec<(u32, String)> {
    bpf::loaded_programs()
        .unwrap()
        .into_iter()
        .filter(|(id, n)| ids.contains(id) && n.starts_with(PROGRAM_PREFIX))
        .collect()
}

fn assert_gone_within(ids: &[u32], secs: u64, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = still_loaded(ids);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{when}: programs left: {left:?}");
        std::thread::yield_now();
    }
}

fn monitor_of(env: &Env, name: &str) -> i32 {
    env.inspect(name)["monitor_pid"].as_i64().unwrap() as i32
}

#[test]
fn published_port_host_clients_go_straight_in_and_programs_go_with_the_monitor() {
    let env = Env::new("pubbpf");
    let net = format!("pb{}", std::process::id() % 100_000);
    let pre = env.create_network(214, &[&net]);
    let _guard = NetGuard(&env, net.clone());
    let gw: Ipv4Addr = format!("{pre}1").parse().unwrap();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    env.ok(&[
        "run", "-d", "--name", "web", "--net", &net, "-p", &publish, "bb", "sh", "-c", WEB,
    ]);
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (local, peer, body) = get(front);
    assert!(body.contains("hello-pub"), "{body}");
    assert_eq!(peer, front, "getpeername() must show the published address");
    assert_eq!(
        local.ip(),
        gw,
        "a host client did not go straight over the bridge"
    );

    let monitor = monitor_of(&env, "web");
    let ids = bpf_prog_ids_of(monitor);
    assert_eq!(still_loaded(&ids).len(), 2, "monitor holds {ids:?}");
    // A stop takes them away with the forwarder.
    env.ok(&["stop", "-t", "1", "web"]);
    assert_gone_within(&ids, 10, "after stop");
    assert!(TcpStream::connect(front).is_err(), "port open after stop");

    // Started again, then its monitor killed -9: nothing is left either.
    env.ok(&["start", "web"]);
    let (local, _, body) = get(front);
    assert!(body.contains("hello-pub"), "{body}");
    assert_eq!(local.ip(), gw);
    let monitor = monitor_of(&env, "web");
    let ids = bpf_prog_ids_of(monitor);
    assert_eq!(still_loaded(&ids).len(), 2, "monitor holds {ids:?}");
    // SAFETY: killing the monitor this test started.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    assert!(wait_pid(monitor, 10));
    assert_gone_within(&ids, 10, "after kill -9 of the monitor");
    env.ok(&["rm", "-f", "web"]);
}

/// The line the monitor of instance `name` wrote about host clients using
/// the forwarder (the test fails without one).
fn forwarder_reason(env: &Env, name: &str) -> String {
    let id = env.inspect(name)["id"].as_str().unwrap().to_string();
    let log = std::fs::read_to_string(env.root.join("instances").join(&id).join("monitor.log"))
        .unwrap_or_default();
    log.lines()
        .find(|l| l.contains("userspace forwarder"))
        .unwrap_or_else(|| panic!("no line saying why in the monitor's log: {log:?}"))
        .to_string()
}

#[test]
fn published_port_on_an_internal_network_keeps_the_forwarder_and_says_why() {
    let env = Env::new("pubint");
    let net = format!("pi{}", std::process::id() % 100_000);
    env.create_network(214, &["--internal", &net]);
    let _guard = NetGuard(&env, net.clone());
    let publish = format!("127.0.0.1:{}:80", free_port());
    env.ok(&[
        "run", "-d", "--name", "web", "--net", &net, "-p", &publish, "bb", "sleep", "1000",
    ]);
    assert!(bpf_prog_ids_of(monitor_of(&env, "web")).is_empty());
    let line = forwarder_reason(&env, "web");
    assert!(
        line.contains(&format!("network {net} is internal")),
        "{line}"
    );
    env.ok(&["rm", "-f", "web"]);
}

#[test]
fn published_port_with_bpf_off_goes_through_the_forwarder() {
    let env = Env::new("pubfwd");
    let net = format!("pf{}", std::process::id() % 100_000);
    env.create_network(214, &[&net]);
    let _guard = NetGuard(&env, net.clone());
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let out = Command::new(env!("CARGO_BIN_EXE_boxctl"))
        .arg("--root")
        .arg(&env.root)
        .arg("--runtime")
        .arg(&env.runtime)
        .args(["run", "-d", "--name", "web", "--net", &net, "-p", &publish])
        .args(["bb", "sh", "-c", WEB])
        .env("BOXCTL_PUBLISH_BPF", "off")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let (local, peer, body) = get(front);
    assert!(body.contains("hello-pub"), "{body}");
    assert_eq!(peer, front);
    assert_eq!(
        local.ip(),
        Ipv4Addr::LOCALHOST,
        "the forwarder was bypassed"
    );
    assert!(bpf_prog_ids_of(monitor_of(&env, "web")).is_empty());
    let line = forwarder_reason(&env, "web");
    assert!(line.contains("BOXCTL_PUBLISH_BPF=off"), "{line}");
    env.ok(&["rm", "-f", "web"]);
}
