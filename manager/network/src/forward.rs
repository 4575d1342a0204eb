//! A userspace TCP port forwarder, the equivalent of docker-proxy: it
//! listens on host addresses and relays every connection to an instance
//! address, with no packet filtering rule involved.
//!
//! Design: a few worker threads (one per CPU, at most [`MAX_WORKERS`]), each
//! running its own edge-triggered epoll loop over the connections it
//! accepted (no thread per connection, no lock between workers). Every
//! listening socket is registered in every worker's epoll with
//! `EPOLLEXCLUSIVE`, so the kernel wakes one idle worker per incoming
//! connection and that worker owns it until it closes: the load spreads over
//! the CPUs, and the port is still bound once (no `SO_REUSEPORT`, which
//! would let another listener of the same user silently share a published
//! port). Each direction has its own 32 KiB buffer; an end-of-stream from
//! one side is passed on as a write shutdown to the other (half-close), and
//! the connection is closed once both directions are finished, or at the
//! first error (reset) on either side.
//!
//! Cost: per forwarded message one read, one write and a share of an
//! `epoll_wait` (readiness is tracked per socket, so no system call is
//! spent on probing a drained socket); per connection accept, socket,
//! connect, two `epoll_ctl`, one `SO_ERROR` check. Bytes are copied through
//! user space rather than spliced: splice(2) needs two pipes (four
//! descriptors, two more system calls) per connection, which costs more
//! than it saves on small request/response traffic; a 2 GiB loopback bulk
//! transfer costs about 1.2 s of extra system time per GiB on this class of
//! machine (`examples/forward_bench.rs`).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{
    connect, getsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn,
    SockaddrIn6,
};

use crate::error::{Error, Result};

const BUF_SIZE: usize = 32 * 1024;
const STOP_TOKEN: u64 = u64::MAX;
const LISTENER_BIT: u64 = 1 << 62;
/// The most worker threads a forwarder runs, whatever the CPU count.
pub const MAX_WORKERS: usize = 4;

fn fwd_err(op: impl Into<String>, source: io::Error) -> Error {
    Error::Forward {
        op: op.into(),
        source,
    }
}

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// How a worker's epoll watches a listener: level-triggered, and only one of
/// the workers blocked in `epoll_wait` is woken per event.
fn listener_flags() -> EpollFlags {
    EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE
}

struct Listener {
    socket: Arc<TcpListener>,
    target: SocketAddr,
    paused: bool,
}

/// The `http://` URL a client on this host uses for a port published on
/// `listen`: a port published on every address (`0.0.0.0`, `::`) is
/// reached through loopback.
pub fn local_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, listen.port()))
}

/// A set of `listen address -> instance address` TCP forwards served by a
/// few worker threads. Build it with [`Forwarder::new`] (or
/// [`Forwarder::with_workers`]) and [`Forwarder::add`], then call
/// [`Forwarder::run`] (blocks) or [`Forwarder::spawn`].
pub struct Forwarder {
    workers: Vec<Worker>,
    stop: Arc<EventFd>,
    sockets: Vec<Arc<TcpListener>>,
}

/// Stops a running [`Forwarder`] from any thread (or a signal handler's
/// helper thread). Cheap to clone.
#[derive(Clone)]
pub struct StopHandle(Arc<EventFd>);

impl StopHandle {
    /// Asks the forwarder to stop; [`Forwarder::run`] returns soon after and
    /// open connections are closed.
    pub fn stop(&self) -> Result<()> {
        self.0
            .write(1)
            .map(|_| ())
            .map_err(|e| fwd_err("signal the stop event", errno(e)))
    }
}

/// The default number of workers: one per CPU this process may run on, at
/// most [`MAX_WORKERS`].
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_WORKERS)
}

impl Forwarder {
    /// An empty forwarder with [`default_workers`] workers.
    pub fn new() -> Result<Forwarder> {
        Forwarder::with_workers(default_workers())
    }

    /// An empty forwarder with `workers` worker threads (at least one).
    pub fn with_workers(workers: usize) -> Result<Forwarder> {
        let stop = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| fwd_err("create stop eventfd", errno(e)))?;
        let workers = (0..workers.max(1))
            .map(|_| Worker::new(&stop))
            .collect::<Result<Vec<_>>>()?;
        Ok(Forwarder {
            workers,
            stop: Arc::new(stop),
            sockets: Vec::new(),
        })
    }

    /// Listens on `listen` (e.g. `0.0.0.0:8080`, or port 0 for an ephemeral
    /// port) and forwards its connections to `target` (the instance's
    /// `ADDR:PORT`). Returns the address actually bound.
    pub fn add(&mut self, listen: SocketAddr, target: SocketAddr) -> Result<SocketAddr> {
        let op = || format!("listen on {listen} for {target}");
        let socket = TcpListener::bind(listen).map_err(|e| fwd_err(op(), e))?;
        socket.set_nonblocking(true).map_err(|e| fwd_err(op(), e))?;
        let local = socket.local_addr().map_err(|e| fwd_err(op(), e))?;
        let socket = Arc::new(socket);
        for w in &mut self.workers {
            w.watch(Arc::clone(&socket), target)
                .map_err(|e| fwd_err(op(), errno(e)))?;
        }
        self.sockets.push(socket);
        Ok(local)
    }

    /// The addresses bound by [`Forwarder::add`], in order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// A handle that stops [`Forwarder::run`].
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.stop))
    }

    /// Runs the workers on new threads.
    pub fn spawn(self) -> Result<RunningForwarder> {
        let stop = self.stop_handle();
        let mut running = RunningForwarder {
            stop,
            threads: Vec::new(),
        };
        for w in self.workers {
            let thread = std::thread::Builder::new()
                .name("boxctl-forward".into())
                .spawn(move || w.run())
                .map_err(|e| fwd_err("start a forwarding thread", e))?;
            running.threads.push(thread);
        }
        Ok(running)
    }

    /// Serves connections until [`StopHandle::stop`] is called, the last
    /// worker on the calling thread. Errors on a single connection only
    /// close that connection.
    pub fn run(mut self) -> Result<()> {
        let Some(last) = self.workers.pop() else {
            return Ok(());
        };
        let others = Forwarder {
            workers: self.workers,
            stop: Arc::clone(&self.stop),
            sockets: Vec::new(),
        }
        .spawn()?;
        let result = last.run();
        let _ = others.stop.stop();
        result.and(others.join())
    }
}

/// One worker: an epoll loop over every listener and the connections it
/// accepted.
struct Worker {
    epoll: Epoll,
    listeners: Vec<Listener>,
}

impl Worker {
    fn new(stop: &EventFd) -> Result<Worker> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| fwd_err("create epoll instance", errno(e)))?;
        // Level-triggered and never read: once signalled, every worker sees it.
        epoll
            .add(stop, EpollEvent::new(EpollFlags::EPOLLIN, STOP_TOKEN))
            .map_err(|e| fwd_err("watch stop eventfd", errno(e)))?;
        Ok(Worker {
            epoll,
            listeners: Vec::new(),
        })
    }

    fn watch(&mut self, socket: Arc<TcpListener>, target: SocketAddr) -> nix::Result<()> {
        let token = LISTENER_BIT | self.listeners.len() as u64;
        self.epoll
            .add(&*socket, EpollEvent::new(listener_flags(), token))?;
        self.listeners.push(Listener {
            socket,
            target,
            paused: false,
        });
        Ok(())
    }

    fn run(mut self) -> Result<()> {
        let mut conns = Slab::default();
        let mut events = vec![EpollEvent::empty(); 256];
        loop {
            // A listener paused for lack of descriptors is retried every
            // second even if no connection of ours closes.
            let timeout = if self.listeners.iter().any(|l| l.paused) {
                EpollTimeout::from(1000u16)
            } else {
                EpollTimeout::NONE
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(fwd_err("wait for events", errno(e))),
            };
            for ev in &events[..n] {
                let token = ev.data();
                if token == STOP_TOKEN {
                    return Ok(());
                }
                if token & LISTENER_BIT != 0 {
                    let idx = (token & !LISTENER_BIT) as usize;
                    self.accept_all(idx, &mut conns)?;
                    continue;
                }
                let slot = (token >> 1) as usize;
                let side = (token & 1) as usize;
                let Some(conn) = conns.get_mut(slot) else {
                    continue; // closed earlier in this batch
                };
                if !conn.on_event(side, ev.events()) {
                    conns.remove(slot);
                }
            }
            // Slots freed in this batch are reused only now, so a later
            // event of the batch can never reach a new connection.
            if conns.recycle() || n == 0 {
                self.resume_listeners()?;
            }
        }
    }

    fn accept_all(&mut self, idx: usize, conns: &mut Slab) -> Result<()> {
        let Some(listener) = self.listeners.get_mut(idx) else {
            return Ok(());
        };
        loop {
            let client = match listener.socket.accept() {
                Ok((client, _)) => client,
                // Another worker took it, or the queue is drained.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ECONNABORTED) | Some(libc::EPROTO) | Some(libc::EPERM)
                    ) =>
                {
                    continue
                }
                Err(_) => {
                    // Out of descriptors or memory: stop accepting on this
                    // listener until a connection closes, instead of spinning.
                    listener.paused = true;
                    let _ = self.epoll.delete(&*listener.socket);
                    return Ok(());
                }
            };
            let Ok(upstream) = start_connect(listener.target) else {
                continue; // drops the client: it sees the connection closed
            };
            if client.set_nonblocking(true).is_err() {
                continue;
            }
            let _ = client.set_nodelay(true);
            let slot = conns.insert(Conn::new(client, upstream));
            let flags = EpollFlags::EPOLLIN
                | EpollFlags::EPOLLOUT
                | EpollFlags::EPOLLRDHUP
                | EpollFlags::EPOLLET;
            let Some(conn) = conns.get_mut(slot) else {
                continue;
            };
            let registered = self
                .epoll
                .add(
                    &conn.sides[0].stream,
                    EpollEvent::new(flags, (slot as u64) << 1),
                )
                .and_then(|_| {
                    self.epoll.add(
                        &conn.sides[1].stream,
                        EpollEvent::new(flags, ((slot as u64) << 1) | 1),
                    )
                });
            if registered.is_err() {
                conns.remove(slot);
            }
        }
    }

    fn resume_listeners(&mut self) -> Result<()> {
        for (idx, l) in self.listeners.iter_mut().enumerate() {
            if l.paused {
                let token = LISTENER_BIT | idx as u64;
                self.epoll
                    .add(&*l.socket, EpollEvent::new(listener_flags(), token))
                    .map_err(|e| fwd_err("resume listening", errno(e)))?;
                l.paused = false;
            }
        }
        Ok(())
    }
}

/// A [`Forwarder`] running on its own threads; dropping it stops it.
pub struct RunningForwarder {
    stop: StopHandle,
    threads: Vec<JoinHandle<Result<()>>>,
}

impl RunningForwarder {
    /// A handle that stops the forwarder.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Stops the forwarder and waits for its threads; returns the first
    /// worker's error, if any.
    pub fn stop(mut self) -> Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<()> {
        if self.threads.is_empty() {
            return Ok(());
        }
        self.stop.stop()?;
        self.join_threads()
    }

    fn join(mut self) -> Result<()> {
        self.join_threads()
    }

    fn join_threads(&mut self) -> Result<()> {
        let mut result = Ok(());
        for thread in self.threads.drain(..) {
            let r = thread.join().unwrap_or_else(|_| {
                Err(Error::ThreadPanicked {
                    what: "port forwarder".into(),
                })
            });
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

impl Drop for RunningForwarder {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Starts a non-blocking connect to `target`.
fn start_connect(target: SocketAddr) -> io::Result<TcpStream> {
    let family = match target {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd: OwnedFd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(errno)?;
    let res = match target {
        SocketAddr::V4(a) => connect(fd.as_raw_fd(), &SockaddrIn::from(a)),
        SocketAddr::V6(a) => connect(fd.as_raw_fd(), &SockaddrIn6::from(a)),
    };
    match res {
        Ok(()) | Err(nix::Error::EINPROGRESS) => {}
        Err(e) => return Err(errno(e)),
    }
    let stream = TcpStream::from(fd);
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// One direction's bytes in flight.
struct Buf {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            data: vec![0u8; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }
    fn is_empty(&self) -> bool {
        self.start == self.end
    }
    fn has_space(&self) -> bool {
        self.end < self.data.len()
    }
}

/// One socket of a connection, with edge-triggered readiness tracking: a
/// flag is set by an epoll event and cleared once the kernel says "would
/// block" (or a short read shows the queue is drained), so no system call is
/// spent on a socket known to have nothing to offer.
struct Side {
    stream: TcpStream,
    readable: bool,
    writable: bool,
    /// The peer has shut down (or reset): a short read no longer means the
    /// queue is drained, since the end of stream may follow the data
    /// without a new edge.
    hup: bool,
    /// End of stream read from this socket.
    eof: bool,
    /// Write side shut down (after passing on the other side's end of stream).
    shut: bool,
}

impl Side {
    fn new(stream: TcpStream, writable: bool) -> Side {
        Side {
            stream,
            readable: true,
            writable,
            hup: false,
            eof: false,
            shut: false,
        }
    }
}

/// Moves bytes `from -> to` through `buf` as far as readiness allows
/// (`to` is only written to or shut down when `connected`). Returns false
/// when the connection must be closed.
fn pump_one(from: &mut Side, to: &mut Side, buf: &mut Buf, connected: bool) -> bool {
    loop {
        let mut progress = false;
        if from.readable && !from.eof && buf.has_space() {
            let space = buf.data.len() - buf.end;
            match (&from.stream).read(&mut buf.data[buf.end..]) {
                Ok(0) => {
                    from.eof = true;
                    progress = true;
                }
                Ok(n) => {
                    buf.end += n;
                    // A short read drained the queue: new data brings a new
                    // edge. Not so for an end of stream already signalled.
                    from.readable = n == space || from.hup;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => from.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                Err(_) => return false,
            }
        }
        if connected && to.writable && !buf.is_empty() {
            match (&to.stream).write(&buf.data[buf.start..buf.end]) {
                Ok(n) => {
                    buf.start += n;
                    if buf.is_empty() {
                        buf.start = 0;
                        buf.end = 0;
                    }
                    progress = progress || n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => to.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                Err(_) => return false,
            }
        }
        if connected && from.eof && buf.is_empty() && !to.shut {
            if to.stream.shutdown(Shutdown::Write).is_err() {
                return false;
            }
            to.shut = true;
        }
        if !progress {
            return true;
        }
    }
}

struct Conn {
    /// `[client, upstream]`.
    sides: [Side; 2],
    /// `[client -> upstream, upstream -> client]`.
    bufs: [Buf; 2],
    connecting: bool,
}

impl Conn {
    fn new(client: TcpStream, upstream: TcpStream) -> Conn {
        Conn {
            sides: [Side::new(client, true), Side::new(upstream, false)],
            bufs: [Buf::new(), Buf::new()],
            connecting: true,
        }
    }

    /// Records an epoll event for side 0 (client) or 1 (upstream), moves
    /// what can be moved; returns false when the connection is over.
    fn on_event(&mut self, side: usize, flags: EpollFlags) -> bool {
        let hup = EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP | EpollFlags::EPOLLRDHUP;
        if flags.intersects(EpollFlags::EPOLLIN | hup) {
            self.sides[side].readable = true;
        }
        if flags.intersects(hup) {
            self.sides[side].hup = true;
        }
        if flags.intersects(EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP) {
            self.sides[side].writable = true;
        }
        if self.connecting {
            if side == 0 {
                // Buffer what the client sends until the upstream is ready.
                let [client, upstream] = &mut self.sides;
                return pump_one(client, upstream, &mut self.bufs[0], false);
            }
            if !self.finish_connect(flags) {
                return false;
            }
            if self.connecting {
                return true;
            }
        }
        let [client, upstream] = &mut self.sides;
        pump_one(client, upstream, &mut self.bufs[0], true)
            && pump_one(upstream, client, &mut self.bufs[1], true)
            && !(client.shut && upstream.shut)
    }

    /// Called on an upstream event while connecting; false if it failed.
    /// A connecting socket polls as neither readable nor writable, so
    /// writable or error means the connect is over (slots are never reused
    /// within a batch, so the event is this socket's).
    fn finish_connect(&mut self, flags: EpollFlags) -> bool {
        let done = EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP;
        let upstream = &mut self.sides[1];
        if !flags.intersects(done) {
            upstream.writable = false;
            return true;
        }
        match getsockopt(&upstream.stream.as_fd(), sockopt::SocketError) {
            Ok(0) => {
                self.connecting = false;
                upstream.writable = true;
                upstream.readable = true;
                true
            }
            _ => false,
        }
    }
}

/// Connections indexed by slot; freed slots are reused after
/// [`Slab::recycle`].
#[derive(Default)]
struct Slab {
    slots: Vec<Option<Conn>>,
    free: Vec<usize>,
    retired: Vec<usize>,
}

impl Slab {
    fn insert(&mut self, conn: Conn) -> usize {
        if let Some(i) = self.free.pop() {
            self.slots[i] = Some(conn);
            i
        } else {
            self.slots.push(Some(conn));
            self.slots.len() - 1
        }
    }
    fn get_mut(&mut self, i: usize) -> Option<&mut Conn> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }
    fn remove(&mut self, i: usize) {
        if let Some(slot) = self.slots.get_mut(i) {
            if slot.take().is_some() {
                self.retired.push(i);
            }
        }
    }
    /// Makes the slots removed since the last call reusable; returns
    /// whether there were any.
    fn recycle(&mut self) -> bool {
        let any = !self.retired.is_empty();
        self.free.append(&mut self.retired);
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_urls() {
        let url = |s: &str| local_url(s.parse().unwrap());
        assert_eq!(url("127.0.0.1:8080"), "http://127.0.0.1:8080/");
        assert_eq!(url("0.0.0.0:80"), "http://127.0.0.1:80/");
        assert_eq!(url("192.0.2.7:8443"), "http://192.0.2.7:8443/");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080/");
    }
}
