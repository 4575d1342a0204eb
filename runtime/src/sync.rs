//! The channel between the runtime process and the container's init during set-up.
//!
//! A `SOCK_SEQPACKET` socketpair: each message is one datagram, a tag byte followed by
//! an optional payload. A peer that dies closes its end, so a read returns EOF instead
//! of hanging: no timeouts needed.

use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Messages exchanged during set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    /// parent → child: id maps written (create, new user namespace), or the exec'd
    /// process is in its cgroup (exec); go on.
    Go = 1,
    /// child → parent: namespaces and mounts exist; run prestart/createRuntime hooks.
    RuntimeHooks = 2,
    /// parent → child: hooks done, continue.
    Continue = 3,
    /// child → parent: set-up complete, blocking on the exec fifo (or about to exec).
    Ready = 4,
    /// parent → child: abort set-up (a hook failed).
    Abort = 5,
    /// child → parent: a failure, payload is the message.
    Error = 6,
    /// child → parent: a seccomp notify fd is being handed over (payload: fd via SCM_RIGHTS).
    SeccompFd = 7,
    /// child → parent (exec): the pid of the process, payload is its pid as decimal text.
    Pid = 8,
    /// parent → child: the runtime is done with the cgroups and the child is in them.
    CgroupJoined = 9,
    /// child → parent: a createContainer hook failed (payload: the message); poststop
    /// hooks must run as the container is destroyed.
    HookFailed = 10,
    /// parent → child: the cgroup directories exist (cgroup mounts can be made). With
    /// fds (the v1 `tasks` files), the child moves itself in; CgroupJoined follows.
    CgroupMade = 11,
}

impl Tag {
    fn from_u8(b: u8) -> Option<Tag> {
        Some(match b {
            1 => Tag::Go,
            2 => Tag::RuntimeHooks,
            3 => Tag::Continue,
            4 => Tag::Ready,
            5 => Tag::Abort,
            6 => Tag::Error,
            7 => Tag::SeccompFd,
            8 => Tag::Pid,
            9 => Tag::CgroupJoined,
            10 => Tag::HookFailed,
            11 => Tag::CgroupMade,
            _ => return None,
        })
    }
}

/// A received message: its tag, payload and the fds passed with it, if any.
pub type Message = (Tag, Vec<u8>, Vec<OwnedFd>);

/// Most fds one message can carry (a v1 host has at most ~15 hierarchies).
const MAX_FDS: usize = 32;

/// One end of the set-up channel.
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair: (parent end, child end). Both are close-on-exec.
pub fn pair() -> Result<(Channel, Channel)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", e))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Raw fd, for closing the other side after fork.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Send a message.
    pub fn send(&self, tag: Tag, payload: &[u8]) -> Result<()> {
        let mut buf = Vec::with_capacity(1 + payload.len());
        buf.push(tag as u8);
        buf.extend_from_slice(payload);
        loop {
            // SAFETY: buf is valid for buf.len() bytes.
            let n = unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = nix::Error::last();
            if e != nix::Error::EINTR {
                return Err(Error::sys("send to peer", e));
            }
        }
    }

    /// Send a message carrying a file descriptor.
    pub fn send_fd(&self, tag: Tag, fd: RawFd) -> Result<()> {
        self.send_fds(tag, &[fd])
    }

    /// Send a message carrying file descriptors (a plain message when `fds` is empty).
    pub fn send_fds(&self, tag: Tag, fds: &[RawFd]) -> Result<()> {
        if fds.is_empty() {
            return self.send(tag, &[]);
        }
        if fds.len() > MAX_FDS {
            return Err(Error::Other(format!(
                "{} fds in one message, at most {MAX_FDS}",
                fds.len()
            )));
        }
        let data = [tag as u8];
        let iov = [std::io::IoSlice::new(&data)];
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(fds)];
        nix::sys::socket::sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsg,
            nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| Error::sys("send fd to peer", e))?;
        Ok(())
    }

    /// Receive a message; `None` means the peer closed its end (exited).
    pub fn recv(&self) -> Result<Option<Message>> {
        let mut buf = vec![0u8; 8192];
        let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
        let mut resets = 0;
        loop {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            match nix::sys::socket::recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_space),
                nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let n = msg.bytes;
                    let mut got_fds = Vec::new();
                    if let Ok(cmsgs) = msg.cmsgs() {
                        for c in cmsgs {
                            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                                // SAFETY: the kernel just installed these fds for us.
                                got_fds.extend(
                                    fds.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }),
                                );
                            }
                        }
                    }
                    if n == 0 {
                        return Ok(None);
                    }
                    let tag = Tag::from_u8(buf[0])
                        .ok_or_else(|| Error::Other(format!("bad sync message {}", buf[0])))?;
                    return Ok(Some((tag, buf[1..n].to_vec(), got_fds)));
                }
                Err(nix::Error::EINTR) => continue,
                // A peer that exits with our messages unread resets the connection; the
                // error is reported once, and what it sent before exiting is still queued.
                Err(nix::Error::ECONNRESET) if resets < 2 => {
                    resets += 1;
                    continue;
                }
                Err(e) => return Err(Error::sys("receive from peer", e)),
            }
        }
    }

    /// Wait for a specific tag; an `Error` message or EOF becomes an error.
    pub fn expect(&self, want: Tag, what: &str) -> Result<Vec<u8>> {
        match self.recv()? {
            Some((t, p, _)) if t == want => Ok(p),
            Some((Tag::Error, p, _)) => Err(Error::Init(String::from_utf8_lossy(&p).into_owned())),
            Some((Tag::Abort, _, _)) => Err(Error::Init("aborted by the runtime".into())),
            Some((t, _, _)) => Err(Error::Init(format!("{what}: unexpected message {t:?}"))),
            None => Err(Error::Init(format!("{what}: peer exited"))),
        }
    }
}
