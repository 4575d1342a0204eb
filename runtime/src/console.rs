//! Terminals: with `process.terminal`, the container gets a new pty whose master is
//! sent over `--console-socket` (SCM_RIGHTS, payload = pty name, as runc does) and
//! whose slave becomes the process's stdio, controlling terminal and /dev/console.

use crate::error::{Error, Result, SysContext};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Connect to the console socket (in the runtime, before clone; the fd is inherited).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let sock = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| Error::Other(format!("console socket {}: {e}", path.display())))?;
    Ok(OwnedFd::from(sock))
}

/// Open a new pty pair in the container's devpts. Returns (master, slave, slave name).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd, String)> {
    // SAFETY: open with a constant path.
    let m = unsafe { libc::open(c"/dev/ptmx".as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if m < 0 {
        return Err(Error::sys("open /dev/ptmx", nix::Error::last()));
    }
    // SAFETY: fresh fd.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
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
    let s = unsafe { libc::ioctl(m, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if s < 0 {
        return Err(Error::sys("open pty slave", nix::Error::last()));
    }
    // SAFETY: fresh fd.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    Ok((master, slave, name))
}

/// Set the terminal size.
pub fn set_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
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

/// Make the slave the process's stdio and controlling terminal.
pub fn take_slave(slave: &OwnedFd) -> Result<()> {
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
        // SAFETY: create an empty file as mount point.
        let fd = unsafe { libc::open(c"/dev/console".as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o600) };
        if fd >= 0 {
            // SAFETY: fd just opened.
            unsafe { libc::close(fd) };
        }
    }
    nix::mount::mount(Some(slave_name), console, None::<&str>, nix::mount::MsFlags::MS_BIND, None::<&str>)
        .sys_ctx(|| format!("bind {slave_name} on /dev/console"))
}
