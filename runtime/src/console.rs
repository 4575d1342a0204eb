//! Terminals: with `process.terminal`, the container gets a new pty whose master is
//! sent over `--console-socket` (SCM_RIGHTS, payload = pty name, as runc does) and
//! whose slave becomes the process's stdio, controlling terminal and /dev/console.

use crate::error::{Error, Result, SysContext};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Connect to the console socket (in the runtime, before clone; the fd is inherited).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let sock = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| Error::context(format!("console socket {}", path.display()), e))?;
    Ok(OwnedFd::from(sock))
}

/// Open a new pty pair in the container's devpts. Returns (master, slave, slave name).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd, String)> {
    let master = OwnedFd::from(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open("/dev/ptmx")
            .map_err(|e| Error::io("/dev/ptmx", e))?,
    );
    let m = master.as_raw_fd();
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to int.
    if unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &mut unlock) } != 0 {
        return Err(Error::sys("unlock pty", nix::Error::last()));
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN takes a pointer to unsigned int.
    if unsafe { libc::ioctl(m, libc::TIOCGPTN, &mut n) } != 0 {
        return Err(Error::sys("get pty number", nix::Error::last()));
    }
    let name = format!("/dev/pts/{n}");
    // Open the slave through the master (TIOCGPTPEER), immune to /dev/pts tricks.
    // SAFETY: TIOCGPTPEER returns a new fd.
    let s = unsafe {
        libc::ioctl(
            m,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if s < 0 {
        return Err(Error::sys("open pty slave", nix::Error::last()));
    }
    // SAFETY: fresh fd.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    Ok((master, slave, name))
}

/// Set the terminal size.
pub fn set_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ takes a pointer to winsize.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// Send the master fd over the console socket.
pub fn send_master(sock: RawFd, master: RawFd, name: &str) -> Result<()> {
    let iov = [std::io::IoSlice::new(name.as_bytes())];
    let fds = [master];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(sock, &iov, &cmsg, nix::sys::socket::MsgFlags::empty(), None)
        .sys_ctx(|| "send pty master to console socket".into())?;
    Ok(())
}

/// Make the slave the process's stdio and controlling terminal, owned by `uid` (the
/// process user; its group, tty, kept) as runc's: the user can use its terminal.
pub fn take_slave(slave: &OwnedFd, uid: u32) -> Result<()> {
    // SAFETY: fchown of an open fd; gid -1 keeps the group.
    if unsafe { libc::fchown(slave.as_raw_fd(), uid, u32::MAX) } != 0 {
        let e = nix::Error::last();
        // As runc: an unmapped owner or group, or a read-only /dev, leaves it as it is.
        if !matches!(
            e,
            nix::Error::EINVAL | nix::Error::EPERM | nix::Error::EROFS
        ) {
            return Err(Error::sys("chown pty slave", e));
        }
    }
    for fd in 0..3 {
        // SAFETY: dup2 onto stdio numbers.
        if unsafe { libc::dup2(slave.as_raw_fd(), fd) } < 0 {
            return Err(Error::sys("dup pty slave onto stdio", nix::Error::last()));
        }
    }
    // SAFETY: TIOCSCTTY with arg 0.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(Error::sys("set controlling terminal", nix::Error::last()));
    }
    Ok(())
}

/// Bind the pty slave over /dev/console (after pivot_root).
pub fn bind_console(slave_name: &str) -> Result<()> {
    let console = Path::new("/dev/console");
    if !console.exists() {
        // An empty file as mount point; a failure shows in the bind mount below.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(console);
    }
    nix::mount::mount(
        Some(slave_name),
        console,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .sys_ctx(|| format!("bind {slave_name} on /dev/console"))
}

/// Receive a pty master sent with [`send_master`].
pub fn recv_master(sock: RawFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        sock,
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .sys_ctx(|| "receive pty master".into())?;
    for c in msg
        .cmsgs()
        .map_err(|e| Error::sys("receive pty master", e))?
    {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(v) = c {
            if let Some(&fd) = v.first() {
                // SAFETY: the kernel installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Other(
        "no pty master received from the container".into(),
    ))
}

/// Restores the terminal mode of stdin on drop.
struct RawMode(Option<libc::termios>);

impl RawMode {
    fn enter() -> RawMode {
        // SAFETY: termios calls on fd 0 with valid pointers.
        unsafe {
            if libc::isatty(0) == 0 {
                return RawMode(None);
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return RawMode(None);
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(0, libc::TCSANOW, &t);
            RawMode(Some(saved))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            // SAFETY: restoring the saved termios of fd 0.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
        }
    }
}

fn copy_winsize(master: RawFd) {
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a winsize pointer.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Foreground `run` with a terminal: copy stdin to the pty and the pty to stdout,
/// forward signals (SIGWINCH resizes), until the container's init exits. Returns its
/// exit code (128+n for a signal).
pub fn proxy_until_exit(master: &OwnedFd, pid: i32, blocked: &libc::sigset_t) -> i32 {
    let _raw = RawMode::enter();
    copy_winsize(master.as_raw_fd());
    // SAFETY: a signalfd for the signals the caller blocked.
    let sfd = unsafe { libc::signalfd(-1, blocked, libc::SFD_CLOEXEC) };
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    let mut code = None;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if stdin_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: three valid pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, -1) };
        if r < 0 {
            if nix::Error::last() == nix::Error::EINTR {
                continue;
            }
            break;
        }
        if fds[0].revents != 0 {
            // SAFETY: reading into a local buffer.
            let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                let _ = crate::util::write_all_fd(1, &buf[..n as usize]);
            } else if code.is_some() {
                break;
            }
        }
        if fds[2].revents != 0 {
            // SAFETY: reading into a local buffer.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                let _ = crate::util::write_all_fd(master.as_raw_fd(), &buf[..n as usize]);
            } else {
                stdin_open = false;
                // end of input: send EOF (^D) to the pty
                let _ = crate::util::write_all_fd(master.as_raw_fd(), &[4]);
            }
        }
        if fds[1].revents != 0 {
            // SAFETY: signalfd_siginfo is plain data.
            let mut si: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            // SAFETY: reading one siginfo record.
            unsafe {
                libc::read(
                    sfd,
                    (&mut si as *mut libc::signalfd_siginfo).cast(),
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                )
            };
            let sig = si.ssi_signo as i32;
            if sig == libc::SIGWINCH {
                copy_winsize(master.as_raw_fd());
            } else if sig != libc::SIGCHLD {
                // SAFETY: forwarding to our child.
                unsafe { libc::kill(pid, sig) };
            }
        }
        if code.is_none() {
            let mut st = 0;
            // SAFETY: reaping our own child without blocking.
            if unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) } == pid {
                code = Some(crate::signals::exit_code(st));
                // drain what is left, then stop at EOF/EIO
                let mut p = libc::pollfd {
                    fd: master.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one pollfd.
                if unsafe { libc::poll(&mut p, 1, 0) } <= 0 {
                    break;
                }
            }
        }
    }
    if sfd >= 0 {
        // SAFETY: closing our signalfd.
        unsafe { libc::close(sfd) };
    }
    code.unwrap_or(255)
}
