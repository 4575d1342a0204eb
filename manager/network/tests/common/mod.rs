//! Shared test helpers: unique names, free subnets, clean-up guards.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use boxctl_network::{bridge, netns, veth, Subnet};

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SUBNETS: Mutex<u32> = Mutex::new(0);

/// A host interface name unique to this process and call: `bxt<pid><n><tag>`.
pub fn unique_ifname(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let name = format!("bxt{:x}{n:x}{tag}", std::process::id() & 0xfffff);
    assert!(name.len() <= 15, "test name {name} too long");
    name
}

/// A /24 in 10.231.0.0/16 that no host route covers yet; distinct per call.
/// (The manager's tests use 10.213-10.218, the showcase farm 10.210: stay out of their way.)
pub fn free_subnet() -> Subnet {
    let mut next = SUBNETS.lock().unwrap_or_else(|e| e.into_inner());
    let routes = boxctl_network::host_ipv4_routes().expect("dump host routes");
    let start = (std::process::id() % 256) as u32;
    loop {
        let third = ((start + *next) % 256) as u8;
        *next += 1;
        assert!(*next < 256, "no free test subnet left in 10.231.0.0/16");
        let net = Ipv4Addr::new(10, 231, third, 0);
        let taken = routes.iter().any(|r| {
            let mask = if r.prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(r.prefix))
            };
            r.prefix > 0 && (u32::from(net) & mask) == (u32::from(r.destination) & mask)
        });
        if !taken {
            return Subnet::new(net, 24).expect("valid subnet");
        }
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "boxctl-network-test-{}-{n}-{tag}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deletes a bridge on drop.
pub struct BridgeGuard(pub String);

impl BridgeGuard {
    pub fn new(name: String, gateway: Option<(Ipv4Addr, u8)>) -> BridgeGuard {
        let guard = BridgeGuard(name);
        bridge::ensure(&guard.0, gateway).expect("create test bridge");
        guard
    }
}

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        if let Err(e) = bridge::delete(&self.0) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// A network namespace in its own temp dir, deleted on drop.
pub struct NetnsGuard {
    pub path: PathBuf,
    _dir: TempDir,
}

impl NetnsGuard {
    pub fn new(tag: &str) -> NetnsGuard {
        let dir = TempDir::new(tag);
        let path = dir.0.join("netns");
        netns::create(&path).expect("create test netns");
        NetnsGuard { path, _dir: dir }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(e) = netns::delete(&self.path) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// Deletes a veth pair on drop.
pub struct VethGuard(pub String);

impl Drop for VethGuard {
    fn drop(&mut self) {
        if let Err(e) = veth::detach(&self.0) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// An instance: a namespace attached to a bridge with one address.
pub struct Instance {
    pub addr: Ipv4Addr,
    pub veth: VethGuard,
    pub ns: NetnsGuard,
}

impl Instance {
    pub fn new(bridge: &str, addr: Ipv4Addr, prefix: u8, gateway: Option<Ipv4Addr>) -> Instance {
        let ns = NetnsGuard::new("inst");
        let host = unique_ifname("v");
        veth::attach(ns.path(), bridge, "eth0", addr, prefix, gateway, &host)
            .expect("attach instance");
        Instance {
            addr,
            veth: VethGuard(host),
            ns,
        }
    }

    /// Starts an echo server inside the instance on `0.0.0.0:port`
    /// (read to end of stream, send everything back, close) serving
    /// `connections` connections on a background thread.
    pub fn echo_server(&self, port: u16, connections: usize) -> SocketAddr {
        let listener = netns::run_in(self.ns.path(), || {
            TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        })
        .expect("enter netns")
        .expect("bind echo server");
        std::thread::spawn(move || {
            for _ in 0..connections {
                let Ok((conn, _)) = listener.accept() else {
                    return;
                };
                std::thread::spawn(move || echo(conn));
            }
        });
        SocketAddr::from((self.addr, port))
    }
}

/// Reads to end of stream, writes it all back, closes.
pub fn echo(mut conn: TcpStream) {
    let mut data = Vec::new();
    if conn.read_to_end(&mut data).is_ok() {
        let _ = conn.write_all(&data);
    }
}

/// Connects to `addr`, sends `payload`, half-closes, returns what comes back.
pub fn round_trip(addr: SocketAddr, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    round_trip_within(addr, payload, Duration::from_secs(5))
}

/// [`round_trip`] with a connect timeout.
pub fn round_trip_within(
    addr: SocketAddr,
    payload: &[u8],
    connect_timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, connect_timeout)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(payload)?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut back = Vec::new();
    s.read_to_end(&mut back)?;
    Ok(back)
}

/// Expects that a connection from `ns` to `addr` cannot be made within 2 s.
pub fn unreachable_from(ns: &Path, addr: SocketAddr) -> std::io::Error {
    let res = netns::run_in(ns, || round_trip_within(addr, b"x", Duration::from_secs(2)))
        .expect("enter netns");
    match res {
        Ok(_) => panic!("{addr} is reachable from {}", ns.display()),
        Err(e) => e,
    }
}

/// Same as [`round_trip`] but from inside a namespace.
pub fn round_trip_from(ns: &Path, addr: SocketAddr, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    netns::run_in(ns, || round_trip(addr, payload)).expect("enter netns")
}

/// Host interface names whose name starts with `bx`, by index.
pub fn bx_indexes() -> std::collections::HashMap<u32, String> {
    boxctl_network::interfaces()
        .expect("list interfaces")
        .into_iter()
        .filter(|(_, n)| n.starts_with("bx"))
        .collect()
}

/// A child process killed and reaped when dropped (a test's helper child, even on failure).
pub struct Reap(pub std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
