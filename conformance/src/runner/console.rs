//! The receiving end of `--console-socket`: accept the runtime's connection
//! and take the pty master it passes with SCM_RIGHTS.

use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

/// A listening console socket.
pub struct ConsoleSocket {
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Bind a socket at `path`.
    pub fn bind(path: &Path) -> Result<ConsoleSocket> {
        let listener =
            UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
        listener.set_nonblocking(true)?;
        Ok(ConsoleSocket { listener })
    }

    /// Accept one connection and receive the pty master fd.
    pub fn receive(&self, timeout: Duration) -> Result<OwnedFd> {
        if !super::cmd::poll_readable(&self.listener, timeout) {
            bail!("the runtime never connected to the console socket within {timeout:?}");
        }
        let (conn, _) = self
            .listener
            .accept()
            .context("accept console connection")?;
        conn.set_nonblocking(false)?;
        let mut buf = [0u8; 4096];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut cbuf = [0u64; 16];
        // SAFETY: msghdr is plain data; zeroed is a valid empty header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        // SAFETY: msg points at live buffers sized as declared above.
        let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).context("recvmsg on console socket");
        }
        // SAFETY: msg was filled by recvmsg; CMSG_* walk its control buffer.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            if c.is_null()
                || (*c).cmsg_level != libc::SOL_SOCKET
                || (*c).cmsg_type != libc::SCM_RIGHTS
            {
                bail!("console socket message carried no file descriptor");
            }
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
            Ok(OwnedFd::from_raw_fd(fd))
        }
    }
}

/// Read everything from a pty master until the slave side closes (EIO) or
/// `timeout` passes.
pub fn read_all(master: &OwnedFd, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !super::cmd::poll_readable(master, left) {
            break;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: reading into a live local buffer of the stated size.
        let n = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&out).into_owned()
}
