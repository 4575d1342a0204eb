//! Attaching to an instance's stdio over a unix socket the monitor serves
//! (`ROOT/instances/ID/attach.sock`), as conmon does for podman: the monitor
//! keeps the terminal's master (or the stdin pipe) and the output, clients
//! come and go (`run` in the foreground, `attach`, `wait`).
//!
//! Every message is a frame: a kind byte, a big-endian `u32` length, the
//! payload. A client first sends `HELLO` (flags: bit 0 wants the output;
//! then an optional window size, rows and columns as `u16`s), then `DATA`
//! (its input), `RESIZE` and `CLOSE_STDIN`. The monitor sends `OUTPUT` and,
//! when the instance has exited for good, `EXIT` with the code as `i32`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::console::RawMode;
use crate::error::{Context, Result};

const HELLO: u8 = 1;
const DATA: u8 = 2;
const RESIZE: u8 = 3;
const CLOSE_STDIN: u8 = 4;
const OUTPUT: u8 = 5;
const EXIT: u8 = 6;
const FRAME_MAX: usize = 1 << 20;
const CTRL_P: u8 = 0x10;
const CTRL_Q: u8 = 0x11;

/// The attach socket of the instance whose directory is `dir`.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("attach.sock")
}

fn write_frame(mut w: impl Write, kind: u8, data: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(5 + data.len());
    buf.push(kind);
    buf.extend_from_slice(&(data.len() as u32).to_be_bytes());
    buf.extend_from_slice(data);
    w.write_all(&buf)
}

fn read_frame(mut r: impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > FRAME_MAX {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "attach frame too large",
        ));
    }
    let mut data = vec![0u8; len];
    r.read_exact(&mut data)?;
    Ok(Some((head[0], data)))
}

/// A terminal's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    /// Rows.
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

impl WinSize {
    fn encode(self) -> [u8; 4] {
        let [a, b] = self.rows.to_be_bytes();
        let [c, d] = self.cols.to_be_bytes();
        [a, b, c, d]
    }

    fn decode(b: &[u8]) -> Option<WinSize> {
        match b {
            [a, b, c, d, ..] => Some(WinSize {
                rows: u16::from_be_bytes([*a, *b]),
                cols: u16::from_be_bytes([*c, *d]),
            }),
            _ => None,
        }
    }

    /// The size of the terminal on `fd`, if it is one.
    fn of(fd: impl AsRawFd) -> Option<WinSize> {
        // SAFETY: winsize is plain old data; TIOCGWINSZ writes one.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ with a valid winsize pointer.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        (rc == 0).then_some(WinSize {
            rows: ws.ws_row,
            cols: ws.ws_col,
        })
    }

    fn apply(self, fd: &OwnedFd) {
        let ws = libc::winsize {
            ws_row: self.rows,
            ws_col: self.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize; the kernel signals the
        // terminal's foreground process group (SIGWINCH).
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}

/// The size of the caller's terminal (stdin), if it is one.
pub fn stdin_winsize() -> Option<WinSize> {
    WinSize::of(std::io::stdin())
}

struct Client {
    id: u64,
    stream: UnixStream,
    output: bool,
}

#[derive(Default)]
struct State {
    clients: Vec<Client>,
    next_id: u64,
    registered: u64,
    terminal: Option<OwnedFd>,
    exit: Option<i32>,
}

/// The monitor's side: the attach socket, its clients, and where their
/// input goes (the terminal's master or the process's stdin pipe).
pub struct Hub {
    state: Mutex<State>,
    registered: Condvar,
    // Apart from `state`: a write to a full stdin pipe must not hold up the output.
    input: Mutex<Option<File>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Hub {
    /// Listen on `path` (a stale socket there is replaced) and serve clients
    /// on background threads for as long as the process lives.
    pub fn serve(path: &Path) -> Result<Arc<Hub>> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot create the attach socket {}", path.display()))?;
        let hub = Arc::new(Hub {
            state: Mutex::new(State::default()),
            registered: Condvar::new(),
            input: Mutex::new(None),
        });
        let h = hub.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let h = h.clone();
                std::thread::spawn(move || h.serve_client(stream));
            }
        });
        Ok(hub)
    }

    fn serve_client(&self, stream: UnixStream) {
        let hello = match read_frame(&stream) {
            Ok(Some((HELLO, h))) => h,
            _ => return,
        };
        let Ok(writer) = stream.try_clone() else {
            return;
        };
        // A client that stops reading is dropped instead of stalling the instance.
        let _ = writer.set_write_timeout(Some(Duration::from_secs(5)));
        let id = {
            let mut st = lock(&self.state);
            if let (Some(ws), Some(t)) =
                (WinSize::decode(hello.get(1..).unwrap_or(&[])), &st.terminal)
            {
                ws.apply(t);
            }
            if let Some(code) = st.exit {
                let _ = write_frame(&writer, EXIT, &code.to_be_bytes());
                return;
            }
            st.next_id += 1;
            st.registered += 1;
            let id = st.next_id;
            st.clients.push(Client {
                id,
                stream: writer,
                output: hello.first().is_some_and(|f| f & 1 != 0),
            });
            id
        };
        self.registered.notify_all();
        while let Ok(Some((kind, data))) = read_frame(&stream) {
            match kind {
                DATA => {
                    if let Some(f) = lock(&self.input).as_mut() {
                        let _ = f.write_all(&data);
                    }
                }
                RESIZE => {
                    if let (Some(ws), Some(t)) =
                        (WinSize::decode(&data), &lock(&self.state).terminal)
                    {
                        ws.apply(t);
                    }
                }
                // On a terminal, end of input is the process's business (^D).
                CLOSE_STDIN if lock(&self.state).terminal.is_none() => {
                    *lock(&self.input) = None;
                }
                _ => {}
            }
        }
        lock(&self.state).clients.retain(|c| c.id != id);
    }

    /// The process runs on the terminal whose master is `master`: clients'
    /// input and window sizes go there.
    pub fn set_terminal(&self, master: &OwnedFd) -> Result<()> {
        *lock(&self.input) = Some(File::from(master.try_clone()?));
        lock(&self.state).terminal = Some(master.try_clone()?);
        Ok(())
    }

    /// Clients' input goes to the process's stdin pipe `w`.
    pub fn set_stdin(&self, w: OwnedFd) {
        *lock(&self.input) = Some(File::from(w));
    }

    /// The process is gone: forget its terminal and stdin.
    pub fn clear_io(&self) {
        *lock(&self.input) = None;
        lock(&self.state).terminal = None;
    }

    /// Send the process's output to every client that wants it.
    pub fn broadcast(&self, data: &[u8]) {
        let mut st = lock(&self.state);
        st.clients
            .retain(|c| !c.output || write_frame(&c.stream, OUTPUT, data).is_ok());
    }

    /// Wait until a client has said hello, at most `timeout`. True if one did.
    pub fn wait_client(&self, timeout: Duration) -> bool {
        let st = lock(&self.state);
        let (st, _) = self
            .registered
            .wait_timeout_while(st, timeout, |s| s.registered == 0)
            .unwrap_or_else(|e| e.into_inner());
        st.registered > 0
    }

    /// The instance has exited for good with `code`: tell every client (and
    /// those that come later, while this process lives) and hang up.
    pub fn finish(&self, code: i32) {
        self.clear_io();
        let mut st = lock(&self.state);
        st.exit = Some(code);
        for c in st.clients.drain(..) {
            let _ = write_frame(&c.stream, EXIT, &code.to_be_bytes());
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// How a client session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The instance exited for good with this code.
    Exited(i32),
    /// The user detached (Ctrl-P Ctrl-Q); the instance runs on.
    Detached,
    /// The monitor went away without an exit code (it was killed).
    Lost,
}

/// What a client session forwards.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientOptions {
    /// Send this process's stdin as the instance's input.
    pub stdin: bool,
    /// The instance runs on a terminal: raw mode, window size followed,
    /// Ctrl-P Ctrl-Q detaches.
    pub tty: bool,
    /// At the end of stdin, close the instance's stdin (`run -i`).
    pub close_stdin_on_eof: bool,
}

/// Block SIGWINCH in the calling thread (and the threads it starts later),
/// so that a client session reads it from a signalfd: call it before
/// starting any thread.
pub fn block_winch() -> Result<()> {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGWINCH);
    set.thread_block().context("cannot block SIGWINCH")?;
    Ok(())
}

fn winch_fd() -> Result<OwnedFd> {
    block_winch()?;
    // SAFETY: sigset_t is plain old data, filled by sigemptyset/sigaddset.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointer and signal number; signalfd(-1) makes a new fd.
    let fd = unsafe {
        libc::sigemptyset(&mut mask);
        libc::sigaddset(&mut mask, libc::SIGWINCH);
        libc::signalfd(-1, &mask, libc::SFD_CLOEXEC)
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot watch SIGWINCH");
    }
    // SAFETY: fd was just returned by signalfd and is ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A client's connection to an instance's attach socket.
pub struct Connection {
    stream: UnixStream,
}

impl Connection {
    /// Connect to the attach socket at `path`; `output`: receive the
    /// instance's output; `winsize`: the terminal size to set now.
    pub fn connect(path: &Path, output: bool, winsize: Option<WinSize>) -> Result<Connection> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("cannot connect to {}", path.display()))?;
        let mut hello = vec![u8::from(output)];
        if let Some(ws) = winsize {
            hello.extend_from_slice(&ws.encode());
        }
        write_frame(&stream, HELLO, &hello).context("cannot greet the instance's monitor")?;
        Ok(Connection { stream })
    }

    /// Wait for the exit code, ignoring any output.
    pub fn wait_exit(self) -> Result<End> {
        loop {
            match read_frame(&self.stream) {
                Ok(Some((EXIT, code))) => return Ok(exit_of(&code)),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return Ok(End::Lost),
            }
        }
    }

    /// Copy the instance's output to stdout and, per `opts`, stdin and
    /// window sizes to the instance, until it exits or the user detaches.
    pub fn run(self, opts: &ClientOptions) -> Result<End> {
        let winch = if opts.tty { Some(winch_fd()?) } else { None };
        let raw = (opts.tty && opts.stdin).then(RawMode::enter);
        let detached = Arc::new(AtomicBool::new(false));
        if opts.stdin || winch.is_some() {
            let stream = self.stream.try_clone()?;
            let detached = detached.clone();
            let opts = *opts;
            std::thread::spawn(move || forward_input(stream, winch, opts, &detached));
        }
        let mut out = std::io::stdout();
        let end = loop {
            match read_frame(&self.stream) {
                Ok(Some((OUTPUT, data))) => {
                    let _ = out.write_all(&data).and_then(|_| out.flush());
                }
                Ok(Some((EXIT, code))) => break exit_of(&code),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) if detached.load(Ordering::SeqCst) => break End::Detached,
                Ok(None) | Err(_) => break End::Lost,
            }
        };
        drop(raw);
        Ok(end)
    }
}

fn exit_of(code: &[u8]) -> End {
    match code {
        [a, b, c, d] => End::Exited(i32::from_be_bytes([*a, *b, *c, *d])),
        _ => End::Lost,
    }
}

/// Strips the detach sequence Ctrl-P Ctrl-Q from typed input; a Ctrl-P is
/// held back until the next byte tells whether it starts the sequence.
#[derive(Default)]
struct DetachKeys {
    pending: bool,
}

impl DetachKeys {
    /// The bytes to send for `input`, and whether the user detached.
    fn filter(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len() + 1);
        for &b in input {
            if self.pending {
                self.pending = false;
                if b == CTRL_Q {
                    return (out, true);
                }
                out.push(CTRL_P);
            }
            if b == CTRL_P {
                self.pending = true;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// The input side of a session: stdin and SIGWINCH to frames, in the order
/// they happened (a resize that came before typed input is sent first).
fn forward_input(
    stream: UnixStream,
    winch: Option<OwnedFd>,
    opts: ClientOptions,
    detached: &AtomicBool,
) {
    let stdin = std::io::stdin();
    let mut stdin_open = opts.stdin;
    let mut keys = DetachKeys::default();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = Vec::with_capacity(2);
        if let Some(w) = &winch {
            fds.push(libc::pollfd {
                fd: w.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if stdin_open {
            fds.push(libc::pollfd {
                fd: stdin.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if fds.is_empty() {
            return;
        }
        // SAFETY: fds is a valid array of pollfds of this length.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if rc < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if let Some(w) = winch.as_ref().filter(|_| fds[0].revents != 0) {
            let mut info = [0u8; 128];
            // SAFETY: reading one signalfd_siginfo (128 bytes) into a buffer of that size.
            unsafe { libc::read(w.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
            if let Some(ws) = stdin_winsize() {
                if write_frame(&stream, RESIZE, &ws.encode()).is_err() {
                    return;
                }
            }
        }
        if !(stdin_open && fds.last().is_some_and(|p| p.revents != 0)) {
            continue;
        }
        // SAFETY: reading into a buffer of this length from stdin.
        let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            stdin_open = false;
            if opts.close_stdin_on_eof && write_frame(&stream, CLOSE_STDIN, &[]).is_err() {
                return;
            }
            continue;
        }
        let input = &buf[..n as usize];
        let (data, detach) = if opts.tty {
            keys.filter(input)
        } else {
            (input.to_vec(), false)
        };
        if !data.is_empty() && write_frame(&stream, DATA, &data).is_err() {
            return;
        }
        if detach {
            detached.store(true, Ordering::SeqCst);
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_are_stripped_and_a_lone_ctrl_p_passes() {
        let mut k = DetachKeys::default();
        assert_eq!(k.filter(b"ls\r"), (b"ls\r".to_vec(), false));
        assert_eq!(k.filter(&[b'a', CTRL_P]), (b"a".to_vec(), false));
        assert_eq!(k.filter(b"b"), (vec![CTRL_P, b'b'], false));
        assert_eq!(
            k.filter(&[b'x', CTRL_P, CTRL_Q, b'y']),
            (b"x".to_vec(), true)
        );
    }

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, DATA, b"hello").unwrap();
        write_frame(&mut buf, EXIT, &7i32.to_be_bytes()).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).unwrap(), Some((DATA, b"hello".to_vec())));
        let (k, code) = read_frame(&mut r).unwrap().unwrap();
        assert_eq!((k, exit_of(&code)), (EXIT, End::Exited(7)));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        let big = [OUTPUT, 0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&big[..]).is_err());
        let ws = WinSize {
            rows: 30,
            cols: 100,
        };
        assert_eq!(WinSize::decode(&ws.encode()), Some(ws));
    }
}
