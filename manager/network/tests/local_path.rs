//! The in-kernel path of published ports for host clients (BPF
//! `connect4`/`getpeername4` on the cgroup v2 root), beside the forwarder.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use boxctl_network::bpf::{self, Asm, Reg};
use boxctl_network::forward::Forwarder;
use boxctl_network::local_path::{LocalPath, PROGRAM_PREFIX};
use boxctl_network::{netns, Error};
use common::*;

/// A server inside `inst` on `port`: for each connection, sends the peer
/// address it sees on `seen`, then echoes until end of stream.
fn peer_reporting_server(inst: &Instance, port: u16, seen: mpsc::Sender<SocketAddr>) -> SocketAddr {
    let listener = netns::run_in(inst.ns.path(), || {
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
    })
    .expect("enter netns")
    .expect("bind server");
    std::thread::spawn(move || {
        for c in listener.incoming() {
            let Ok(c) = c else { return };
            let Ok(peer) = c.peer_addr() else { continue };
            if seen.send(peer).is_err() {
                return;
            }
            std::thread::spawn(move || echo(c));
        }
    });
    SocketAddr::from((inst.addr, port))
}

/// Sends `msg`, half-closes, expects it back; returns (local, peer) as the
/// client sees them.
fn talk(c: &mut TcpStream, msg: &[u8]) -> (SocketAddr, SocketAddr) {
    let ends = (c.local_addr().unwrap(), c.peer_addr().unwrap());
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(msg).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, msg);
    ends
}

/// Taken by every test here: `beyond_64_paths_the_kernel_refuses_and_says_so`
/// fills the cgroup root's attach points for a moment.
static ROOT_HOOKS: Mutex<()> = Mutex::new(());

fn hooks() -> MutexGuard<'static, ()> {
    ROOT_HOOKS.lock().unwrap_or_else(|e| e.into_inner())
}

struct Setup {
    gw: Ipv4Addr,
    inst: Instance,
    _br: BridgeGuard,
}

fn setup() -> Setup {
    let subnet = free_subnet();
    let gw = subnet.default_gateway();
    let br = BridgeGuard::new(unique_ifname("lp"), Some((gw, subnet.prefix())));
    let inst = Instance::new(&br.0, Ipv4Addr::from(u32::from(gw) + 1), 24, Some(gw));
    Setup { gw, inst, _br: br }
}

fn programs_named_like_ours(ids: &[u32]) -> Vec<(u32, String)> {
    bpf::loaded_programs()
        .unwrap()
        .into_iter()
        .filter(|(id, name)| ids.contains(id) && name.starts_with(PROGRAM_PREFIX))
        .collect()
}

#[test]
fn host_client_on_loopback_goes_straight_to_the_instance() {
    let _hooks = hooks();
    let s = setup();
    let (tx, seen) = mpsc::channel();
    let target = peer_reporting_server(&s.inst, 8080, tx);
    let mut fwd = Forwarder::new().unwrap();
    let front = fwd
        .add(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), target)
        .unwrap();
    let wild = fwd
        .add(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), target)
        .unwrap();
    let _running = fwd.spawn().unwrap();
    let path = LocalPath::attach(&[(front, target), (wild, target)]).unwrap();
    let ids = path.program_ids().unwrap();
    assert_eq!(programs_named_like_ours(&ids).len(), 2, "{ids:?}");

    for dest in [
        front,
        SocketAddr::from((Ipv4Addr::LOCALHOST, wild.port())),
        SocketAddr::from((Ipv4Addr::new(127, 0, 0, 9), wild.port())),
        SocketAddr::from((s.gw, wild.port())),
    ] {
        let mut c = TcpStream::connect(dest).unwrap();
        let (local, peer) = talk(&mut c, b"hello");
        // getpeername() shows the published address ...
        assert_eq!(peer, dest);
        // ... but the socket is the bridge's: the server sees the client
        // itself, from the host's address on the bridge, not a forwarder.
        assert_eq!(local.ip(), s.gw, "connection to {dest} was not rewritten");
        assert_eq!(seen.recv_timeout(Duration::from_secs(5)).unwrap(), local);
    }

    // A socket bound to loopback first keeps the forwarder.
    let sock = socket2_bound_to_loopback();
    let mut c = connect_bound(sock, front);
    let (local, peer) = talk(&mut c, b"bound");
    assert_eq!(local.ip(), Ipv4Addr::LOCALHOST);
    assert_eq!(peer, front);
    let server_saw = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(server_saw.ip(), s.gw);
    assert_ne!(server_saw, local);

    drop(path);
    assert!(
        programs_named_like_ours(&ids).is_empty(),
        "programs left after drop"
    );
    // Without the path, the forwarder serves the same address.
    let mut c = TcpStream::connect(front).unwrap();
    let (local, _) = talk(&mut c, b"again");
    assert_eq!(local.ip(), Ipv4Addr::LOCALHOST);
}

fn socket2_bound_to_loopback() -> std::os::fd::OwnedFd {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::new(127, 0, 0, 1, 0),
    )
    .unwrap();
    fd
}

fn connect_bound(fd: std::os::fd::OwnedFd, to: SocketAddr) -> TcpStream {
    let SocketAddr::V4(v4) = to else {
        panic!("ipv4 only")
    };
    nix::sys::socket::connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &nix::sys::socket::SockaddrIn::from(v4),
    )
    .unwrap();
    TcpStream::from(fd)
}

#[test]
fn other_namespaces_use_the_forwarder_and_keep_their_own_loopback() {
    let _hooks = hooks();
    let s = setup();
    let (tx, seen) = mpsc::channel();
    let target = peer_reporting_server(&s.inst, 8081, tx);
    let mut fwd = Forwarder::new().unwrap();
    let wild = fwd
        .add(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), target)
        .unwrap();
    let _running = fwd.spawn().unwrap();
    let _path = LocalPath::attach(&[(wild, target)]).unwrap();

    // A remote client: its own namespace on the bridge, hitting the host's
    // address there on the published port: the forwarder answers.
    let client = Instance::new(
        &s._br.0,
        Ipv4Addr::from(u32::from(s.gw) + 2),
        24,
        Some(s.gw),
    );
    let front = SocketAddr::from((s.gw, wild.port()));
    let (local, peer) = netns::run_in(client.ns.path(), || {
        let mut c = TcpStream::connect(front).unwrap();
        talk(&mut c, b"remote")
    })
    .unwrap();
    assert_eq!(local.ip(), client.addr);
    assert_eq!(peer, front);
    let server_saw = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        server_saw.ip(),
        s.gw,
        "the forwarder connects from the host"
    );

    // The instance's own 127.0.0.1 on the published port number is its own.
    let own = netns::run_in(s.inst.ns.path(), || {
        TcpListener::bind((Ipv4Addr::LOCALHOST, wild.port()))
    })
    .unwrap()
    .unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = own.accept().unwrap();
        c.write_all(b"inside").unwrap();
    });
    let got = netns::run_in(s.inst.ns.path(), || {
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, wild.port())).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        got
    })
    .unwrap();
    server.join().unwrap();
    assert_eq!(got, b"inside");
    assert!(
        seen.try_recv().is_err(),
        "the instance's loopback was rewritten"
    );
}

#[test]
fn the_programs_go_with_the_process_even_on_sigkill() {
    let _hooks = hooks();
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    // The child attaches a path and reports its program ids; killed -9, its
    // links close with its descriptors.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "local_path_holder_child", "--nocapture"])
        .env("BOXCTL_NET_TEST_LOCAL_PATH_CHILD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut child = Reap(child);
    let mut ids = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("IDS ") {
            ids = rest.split(',').map(|s| s.parse::<u32>().unwrap()).collect();
            break;
        }
    }
    assert_eq!(ids.len(), 2, "the child reported no program ids");
    assert_eq!(programs_named_like_ours(&ids).len(), 2);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !programs_named_like_ours(&ids).is_empty() {
        assert!(
            Instant::now() < deadline,
            "programs {ids:?} outlived their process"
        );
        std::thread::yield_now();
    }
}

/// Helper for `the_programs_go_with_the_process_even_on_sigkill`: a no-op
/// unless started by it.
#[test]
fn local_path_holder_child() {
    if std::env::var_os("BOXCTL_NET_TEST_LOCAL_PATH_CHILD").is_none() {
        return;
    }
    let target = SocketAddr::from((Ipv4Addr::new(10, 231, 255, 2), 80));
    let path = LocalPath::attach(&[(SocketAddr::from((Ipv4Addr::LOCALHOST, 1)), target)]).unwrap();
    let ids: Vec<String> = path
        .program_ids()
        .unwrap()
        .iter()
        .map(u32::to_string)
        .collect();
    println!("IDS {}", ids.join(","));
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

#[test]
fn a_verifier_refusal_is_reported_with_its_log() {
    let mut asm = Asm::default();
    // Reads r2, which is never set.
    asm.mov(Reg::R0, Reg::R2).exit_with(1);
    let err = bpf::Prog::load_sock_addr("bx_pub_bad", bpf::ATTACH_INET4_CONNECT, &asm)
        .err()
        .expect("the verifier accepted an uninitialised register");
    assert!(matches!(err, Error::Bpf { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("load program bx_pub_bad"), "{text}");
    assert!(
        text.contains("verifier says:") && text.contains("R2"),
        "{text}"
    );
}

#[test]
fn beyond_64_paths_the_kernel_refuses_and_says_so() {
    let _hooks = hooks();
    let target = SocketAddr::from((Ipv4Addr::new(10, 231, 255, 2), 80));
    let mut paths = Vec::new();
    let err = loop {
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 1 + paths.len() as u16));
        match LocalPath::attach(&[(listen, target)]) {
            Ok(p) => paths.push(p),
            Err(e) => break e,
        }
        assert!(
            paths.len() <= 64,
            "more than 64 programs on one attach point"
        );
    };
    let ids: Vec<u32> = paths
        .iter()
        .flat_map(|p| p.program_ids().unwrap())
        .collect();
    drop(paths);
    assert!(matches!(err, Error::LocalPathUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("limit of 64 programs"), "{err}");
    // Nothing of the refused attempt nor of the others is left.
    assert!(programs_named_like_ours(&ids).is_empty());
}
