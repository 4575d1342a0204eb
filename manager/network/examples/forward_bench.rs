//! Rough numbers for the port forwarder on loopback, direct vs forwarded:
//! bulk throughput, small request/response round trips on one connection,
//! and short connections per second.
//!
//! `cargo run --release -p boxctl-network --example forward_bench [ping-pong|bulk-direct|bulk-forwarded]`

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

use boxctl_network::forward::Forwarder;

/// Serves forever: each connection echoes every read back until EOF.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = c.set_nodelay(true);
                let mut c = c;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn bulk(addr: SocketAddr, total: usize) -> f64 {
    let mut c = TcpStream::connect(addr).expect("connect");
    let mut r = c.try_clone().expect("clone");
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0;
        while got < total {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        got
    });
    let chunk = vec![7u8; 256 * 1024];
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        c.write_all(&chunk).expect("write");
        sent += chunk.len();
    }
    let got = reader.join().expect("reader");
    let secs = start.elapsed().as_secs_f64();
    let _ = c.shutdown(Shutdown::Both);
    assert_eq!(got, total);
    total as f64 / secs / 1e6
}

fn ping_pong(addr: SocketAddr, rounds: u32) -> f64 {
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_nodelay(true).expect("nodelay");
    let mut buf = [0u8; 64];
    let start = Instant::now();
    for _ in 0..rounds {
        c.write_all(&buf).expect("write");
        c.read_exact(&mut buf).expect("read");
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

fn short_connections(addr: SocketAddr, n: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
        let mut buf = [0u8; 64];
        c.read_exact(&mut buf[..18]).expect("read");
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn main() -> Result<(), boxctl_network::Error> {
    let target = echo_server();
    let mut fwd = Forwarder::new()?;
    let front = fwd.add(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), target)?;
    let running = fwd.spawn()?;
    // Single measurements, for `strace -c -f` or `time`.
    match std::env::args().nth(1).as_deref() {
        Some("ping-pong") => {
            println!("{:.1} us/round trip", ping_pong(front, 20_000));
            return running.stop();
        }
        Some("bulk-direct") => {
            println!("{:.0} MB/s", bulk(target, 2 << 30));
            return running.stop();
        }
        Some("bulk-forwarded") => {
            println!("{:.0} MB/s", bulk(front, 2 << 30));
            return running.stop();
        }
        _ => {}
    }
    for (name, addr) in [("direct", target), ("forwarded", front)] {
        println!(
            "{name:>9}: bulk {:7.0} MB/s, ping-pong {:6.1} us/round trip, {:6.0} connections/s",
            bulk(addr, 1 << 30),
            ping_pong(addr, 20_000),
            short_connections(addr, 5_000),
        );
    }
    running.stop()
}
