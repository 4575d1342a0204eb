//! The userspace port forwarder, on loopback and into an instance.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use boxctl_network::forward::Forwarder;
use common::*;

fn loopback_any() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// An echo server on host loopback serving `n` connections.
fn loopback_echo(n: usize) -> SocketAddr {
    let listener = TcpListener::bind(loopback_any()).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((c, _)) = listener.accept() else {
                return;
            };
            std::thread::spawn(move || echo(c));
        }
    });
    addr
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// `n` concurrent clients through `front`, client `i` sending `base + i * step`
/// bytes; each must get its bytes back.
fn echo_concurrently(front: SocketAddr, n: u8, base: usize, step: usize) {
    let clients: Vec<_> = (0..n)
        .map(|i| {
            std::thread::spawn(move || {
                let data = payload(base + usize::from(i) * step, i);
                (round_trip(front, &data).unwrap(), data)
            })
        })
        .collect();
    for c in clients {
        let (back, sent) = c.join().unwrap();
        assert!(back == sent, "echo of {} bytes differs", sent.len());
    }
}

#[test]
fn forwards_on_loopback_with_half_close_and_many_connections() {
    let target = loopback_echo(21);
    let mut fwd = Forwarder::new().unwrap();
    let front = fwd.add(loopback_any(), target).unwrap();
    assert_ne!(front.port(), 0);
    assert_eq!(fwd.local_addrs(), vec![front]);
    let running = fwd.spawn().unwrap();

    // A large transfer exercises full buffers in both directions.
    let big = payload(4 << 20, 7);
    assert!(
        round_trip(front, &big).unwrap() == big,
        "4 MiB echo differs"
    );

    // Many concurrent connections.
    echo_concurrently(front, 20, 1000, 7919);
    running.stop().unwrap();
}

#[test]
fn server_closing_first_is_passed_on() {
    // The server speaks first and closes without reading.
    let listener = TcpListener::bind(loopback_any()).unwrap();
    let target = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        c.write_all(b"220 banner\r\n").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        // Still reads what the client sends after the server's FIN.
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        rest
    });
    let mut fwd = Forwarder::new().unwrap();
    let front = fwd.add(loopback_any(), target).unwrap();
    let running = fwd.spawn().unwrap();

    let mut c = TcpStream::connect(front).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"220 banner\r\n");
    // Half-closed by the server only: the client can still talk.
    c.write_all(b"QUIT\r\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.join().unwrap(), b"QUIT\r\n");
    running.stop().unwrap();
}

#[test]
fn unreachable_target_closes_the_client() {
    // A port with nothing listening: bind, note the port, close.
    let dead = TcpListener::bind(loopback_any())
        .unwrap()
        .local_addr()
        .unwrap();
    let mut fwd = Forwarder::new().unwrap();
    let front = fwd.add(loopback_any(), dead).unwrap();
    let running = fwd.spawn().unwrap();
    let mut c = TcpStream::connect(front).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    match c.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection to be closed, got {other:?}"),
    }
    running.stop().unwrap();
}

#[test]
fn stop_closes_the_listeners() {
    let target = loopback_echo(1);
    let mut fwd = Forwarder::new().unwrap();
    let front = fwd.add(loopback_any(), target).unwrap();
    let stop = fwd.stop_handle();
    let thread = std::thread::spawn(move || fwd.run());
    assert_eq!(round_trip(front, b"one").unwrap(), b"one");
    stop.stop().unwrap();
    thread.join().unwrap().unwrap();
    let err = TcpStream::connect(front).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn listen_conflict_is_reported() {
    let taken = TcpListener::bind(loopback_any()).unwrap();
    let mut fwd = Forwarder::new().unwrap();
    let err = fwd
        .add(taken.local_addr().unwrap(), loopback_any())
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    assert!(err.to_string().contains("listen on 127.0.0.1:"), "{err}");
}

#[test]
fn forwards_from_host_loopback_into_an_instance() {
    let subnet = free_subnet();
    let gw = subnet.default_gateway();
    let br = BridgeGuard::new(unique_ifname("fw"), Some((gw, subnet.prefix())));
    let inst = Instance::new(&br.0, Ipv4Addr::from(u32::from(gw) + 1), 24, Some(gw));
    let target = inst.echo_server(8080, 3);

    let mut fwd = Forwarder::new().unwrap();
    let front = fwd.add(loopback_any(), target).unwrap();
    let running = fwd.spawn().unwrap();
    for i in 0..3u8 {
        let data = payload(100_000, i);
        assert!(round_trip(front, &data).unwrap() == data);
    }
    running.stop().unwrap();
}

#[test]
fn client_reset_closes_the_upstream_connection() {
    let listener = TcpListener::bind(loopback_any()).unwrap();
    let target = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        // Ends with EOF or a reset once the forwarder drops the pair; a
        // timeout would mean the forwarder kept the upstream side open.
        loop {
            match c.read(&mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(got),
                Err(e) => return Err(e),
            }
        }
    });
    let mut fwd = Forwarder::new().unwrap();
    let front = fwd.add(loopback_any(), target).unwrap();
    let running = fwd.spawn().unwrap();

    let mut c = TcpStream::connect(front).unwrap();
    c.write_all(b"partial request").unwrap();
    // Abortive close: RST instead of FIN.
    nix::sys::socket::setsockopt(
        &c,
        nix::sys::socket::sockopt::Linger,
        &libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    )
    .unwrap();
    drop(c);
    let got = server
        .join()
        .unwrap()
        .expect("upstream connection left open");
    // Whatever arrived before the reset is a prefix of what was sent.
    assert!(b"partial request".starts_with(&got), "{got:?}");
    running.stop().unwrap();
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Helper for `running_out_of_descriptors_pauses_then_resumes`: a no-op
/// unless started by it (environment variable set), in which case it runs a
/// forwarder with room for only two connections' descriptors.
#[test]
fn descriptor_limited_forwarder_child() {
    let Ok(target) = std::env::var("BOXCTL_NET_TEST_FD_CHILD") else {
        return;
    };
    let target: SocketAddr = target.parse().unwrap();
    let mut fwd = Forwarder::new().unwrap();
    let front = fwd.add(loopback_any(), target).unwrap();
    // Descriptors are numbered from the lowest free one: fill every hole,
    // then allow 4 more (client + upstream of two connections).
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .max()
        .unwrap();
    let mut fillers = Vec::new();
    let top = loop {
        let f = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
        fillers.push(f);
        if fd >= highest {
            break fd;
        }
    };
    let limit = top as u64 + 1 + 4;
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, limit, hard)
        .unwrap();
    let running = fwd.spawn().unwrap();
    println!("PORT {}", front.port());
    // Serve until the parent closes our stdin.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    running.stop().unwrap();
}

#[test]
fn running_out_of_descriptors_pauses_then_resumes() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    // Echo every read back (request/response on a kept-open connection).
    let listener = TcpListener::bind(loopback_any()).unwrap();
    let target = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = c.read(&mut buf) {
                    if c.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "descriptor_limited_forwarder_child",
            "--nocapture",
        ])
        .env("BOXCTL_NET_TEST_FD_CHILD", target.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut child = Reap(child);
    let mut stdout = std::io::BufReader::new(stdout);
    let mut port = None;
    let mut line = String::new();
    while port.is_none() && stdout.read_line(&mut line).unwrap() > 0 {
        port = line
            .trim()
            .strip_prefix("PORT ")
            .map(|p| p.parse::<u16>().unwrap());
        line.clear();
    }
    let port = port.expect("the child did not report its port");
    let front = SocketAddr::from((Ipv4Addr::LOCALHOST, port));

    let ping = |c: &mut TcpStream, msg: &[u8], wait: Duration| -> std::io::Result<Vec<u8>> {
        c.set_read_timeout(Some(wait))?;
        c.write_all(msg)?;
        let mut buf = vec![0u8; msg.len()];
        c.read_exact(&mut buf)?;
        Ok(buf)
    };
    let long = Duration::from_secs(5);
    let mut c1 = TcpStream::connect(front).unwrap();
    assert_eq!(ping(&mut c1, b"one", long).unwrap(), b"one");
    let mut c2 = TcpStream::connect(front).unwrap();
    assert_eq!(ping(&mut c2, b"two", long).unwrap(), b"two");
    // The third waits in the kernel's accept queue: no descriptor left.
    // Meanwhile the forwarder must not spin on the failing accept.
    let cpu_before = cpu_ticks(child.0.id());
    let mut c3 = TcpStream::connect(front).unwrap();
    let err = ping(&mut c3, b"three", Duration::from_millis(500)).unwrap_err();
    let spent = cpu_ticks(child.0.id()) - cpu_before;
    assert!(
        spent < 5,
        "the forwarder burnt {spent} ticks while out of descriptors"
    );
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    // Closing one connection frees descriptors: the third is served.
    drop(c1);
    let mut buf = [0u8; 5];
    c3.set_read_timeout(Some(long)).unwrap();
    c3.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"three");
    assert_eq!(ping(&mut c2, b"2again", long).unwrap(), b"2again");
    drop(stdin);
    // Drain the child's output so its harness can report.
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "child forwarder failed: {status}");
}

#[test]
fn several_workers_share_one_listener() {
    let target = loopback_echo(40);
    let mut fwd = Forwarder::with_workers(3).unwrap();
    assert_eq!(fwd.workers(), 3);
    assert_eq!(Forwarder::with_workers(0).unwrap().workers(), 1);
    let front = fwd.add(loopback_any(), target).unwrap();
    // The port is bound once: a second plain bind still conflicts.
    let err = TcpListener::bind(front).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    let stop = fwd.stop_handle();
    let thread = std::thread::spawn(move || fwd.run());
    echo_concurrently(front, 40, 5000, 1009);
    stop.stop().unwrap();
    thread.join().unwrap().unwrap();
    let err = TcpStream::connect(front).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}
