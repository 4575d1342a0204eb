//! The channel between the runtime process and the container's init (or an exec'd
//! process) during set-up, and the messages it carries.
//!
//! A `SOCK_SEQPACKET` socketpair: each message is one datagram, a tag byte followed by
//! an optional text payload, with the fds a message carries passed along as
//! `SCM_RIGHTS`. A peer that dies closes its end, so a read returns EOF instead of
//! hanging: no timeouts needed. Each direction has its own message type ([`ToInit`],
//! [`FromInit`]) and each end its own channel type ([`RuntimeEnd`], [`InitEnd`]), so an
//! end can only send what its peer reads.

use crate::error::{Error, Result};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Messages from the runtime to the init (create) or the exec'd process (exec).
#[derive(Debug)]
pub enum ToInit {
    /// Id maps written (create, new user namespace), or the exec'd process is in its
    /// cgroup (exec): go on.
    Go,
    /// The runtime-side hooks ran, or the seccomp listener was handed over: continue.
    Continue,
    /// Abort set-up (a hook failed).
    Abort,
    /// The cgroup directories exist (cgroup mounts can be made). With `tasks` (the v1
    /// `tasks` files, opened by the runtime), the init moves itself in; `CgroupJoined`
    /// follows.
    CgroupMade {
        /// One open `tasks` file per v1 hierarchy (none on a pure v2 host).
        tasks: Vec<OwnedFd>,
    },
    /// The runtime is done with the cgroups and the init is in them.
    CgroupJoined,
}

/// Messages from the init (create) or the exec'd process (exec) to the runtime.
#[derive(Debug)]
pub enum FromInit {
    /// Namespaces and mounts exist: run the prestart/createRuntime hooks.
    RuntimeHooks,
    /// Set-up complete: blocking on the exec fifo (or about to exec).
    Ready,
    /// Set-up failed.
    Error(String),
    /// A createContainer hook failed: poststop hooks must run as the container is
    /// destroyed.
    HookFailed(String),
    /// A seccomp notify listener, to hand over to `linux.seccomp.listenerPath`.
    SeccompFd {
        /// The listener fd, installed by the filter.
        listener: OwnedFd,
    },
}

impl FromInit {
    /// The error a failure message stands for; any other message is given back.
    pub fn into_failure(self) -> std::result::Result<Error, FromInit> {
        match self {
            FromInit::Error(m) => Ok(Error::Init(m)),
            FromInit::HookFailed(m) => Ok(Error::Hook(m)),
            other => Err(other),
        }
    }
}

/// The wire bytes of each message (shared by both directions, so a message sent the
/// wrong way is refused rather than misread).
mod tag {
    pub const GO: u8 = 1;
    pub const RUNTIME_HOOKS: u8 = 2;
    pub const CONTINUE: u8 = 3;
    pub const READY: u8 = 4;
    pub const ABORT: u8 = 5;
    pub const ERROR: u8 = 6;
    pub const SECCOMP_FD: u8 = 7;
    pub const CGROUP_JOINED: u8 = 9;
    pub const HOOK_FAILED: u8 = 10;
    pub const CGROUP_MADE: u8 = 11;
}

/// A message as it goes on the wire: tag, payload and the fds passed with it.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The tag byte.
    pub tag: u8,
    /// The payload after the tag (text for the failure messages, else empty).
    pub payload: &'a [u8],
    /// The fds the message carries (borrowed from it: nothing is allocated).
    pub fds: &'a [OwnedFd],
}

/// A message type of the channel: how it becomes a frame and back.
pub trait Message: Sized {
    /// The frame to send; borrows the message's payload and fds.
    fn encode(&self) -> Frame<'_>;
    /// Rebuild a message from a received tag, payload and fds. Fds the message does not
    /// carry are closed.
    fn decode(tag: u8, payload: &[u8], fds: Vec<OwnedFd>) -> Result<Self>;
}

fn frame(tag: u8) -> Frame<'static> {
    Frame {
        tag,
        payload: &[],
        fds: &[],
    }
}

fn bad_message(tag: u8, dir: &str) -> Error {
    Error::Other(format!(
        "bad set-up message {tag} {dir}: the runtime and the container init disagree; \
         use the same boxrun binary on both sides"
    ))
}

fn text(payload: &[u8]) -> String {
    String::from_utf8_lossy(payload).into_owned()
}

impl Message for ToInit {
    fn encode(&self) -> Frame<'_> {
        match self {
            ToInit::Go => frame(tag::GO),
            ToInit::Continue => frame(tag::CONTINUE),
            ToInit::Abort => frame(tag::ABORT),
            ToInit::CgroupMade { tasks } => Frame {
                tag: tag::CGROUP_MADE,
                payload: &[],
                fds: tasks,
            },
            ToInit::CgroupJoined => frame(tag::CGROUP_JOINED),
        }
    }

    fn decode(t: u8, _payload: &[u8], fds: Vec<OwnedFd>) -> Result<Self> {
        Ok(match t {
            tag::GO => ToInit::Go,
            tag::CONTINUE => ToInit::Continue,
            tag::ABORT => ToInit::Abort,
            tag::CGROUP_MADE => ToInit::CgroupMade { tasks: fds },
            tag::CGROUP_JOINED => ToInit::CgroupJoined,
            _ => return Err(bad_message(t, "from the runtime")),
        })
    }
}

impl Message for FromInit {
    fn encode(&self) -> Frame<'_> {
        match self {
            FromInit::RuntimeHooks => frame(tag::RUNTIME_HOOKS),
            FromInit::Ready => frame(tag::READY),
            FromInit::Error(m) => Frame {
                tag: tag::ERROR,
                payload: m.as_bytes(),
                fds: &[],
            },
            FromInit::HookFailed(m) => Frame {
                tag: tag::HOOK_FAILED,
                payload: m.as_bytes(),
                fds: &[],
            },
            FromInit::SeccompFd { listener } => Frame {
                tag: tag::SECCOMP_FD,
                payload: &[],
                fds: std::slice::from_ref(listener),
            },
        }
    }

    fn decode(t: u8, payload: &[u8], fds: Vec<OwnedFd>) -> Result<Self> {
        Ok(match t {
            tag::RUNTIME_HOOKS => FromInit::RuntimeHooks,
            tag::READY => FromInit::Ready,
            tag::ERROR => FromInit::Error(text(payload)),
            tag::HOOK_FAILED => FromInit::HookFailed(text(payload)),
            tag::SECCOMP_FD => {
                let listener = fds.into_iter().next().ok_or_else(|| {
                    Error::Init("seccomp listener message came without its fd".into())
                })?;
                FromInit::SeccompFd { listener }
            }
            _ => return Err(bad_message(t, "from the container")),
        })
    }
}

/// Most fds one message can carry (a v1 host has at most ~15 hierarchies).
const MAX_FDS: usize = 32;

/// Largest payload a received message can have (an error text).
const MAX_PAYLOAD: usize = 8191;

/// One end of the set-up channel: sends `Out` messages, receives `In` messages.
pub struct Channel<Out, In> {
    fd: OwnedFd,
    _dir: PhantomData<fn(Out) -> In>,
}

/// The runtime's end.
pub type RuntimeEnd = Channel<ToInit, FromInit>;

/// The init's (or the exec'd process's) end.
pub type InitEnd = Channel<FromInit, ToInit>;

/// A connected pair: (runtime end, init end). Both are close-on-exec.
pub fn pair() -> Result<(RuntimeEnd, InitEnd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::sys("socketpair", e))?;
    Ok((Channel::new(a), Channel::new(b)))
}

impl<Out: Message, In: Message> Channel<Out, In> {
    fn new(fd: OwnedFd) -> Self {
        Channel {
            fd,
            _dir: PhantomData,
        }
    }

    /// Raw fd, for closing the other side after fork.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Send a message (its fds are closed on this side once sent).
    pub fn send(&self, msg: Out) -> Result<()> {
        let f = msg.encode();
        if f.fds.is_empty() {
            self.send_plain(f.tag, f.payload)
        } else {
            self.send_with_fds(f.tag, f.fds)
        }
    }

    fn send_plain(&self, tag: u8, payload: &[u8]) -> Result<()> {
        let mut buf = Vec::with_capacity(1 + payload.len());
        buf.push(tag);
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

    fn send_with_fds(&self, tag: u8, fds: &[OwnedFd]) -> Result<()> {
        if fds.len() > MAX_FDS {
            return Err(Error::Other(format!(
                "{} fds in one set-up message, at most {MAX_FDS}",
                fds.len()
            )));
        }
        let mut raw = [0 as RawFd; MAX_FDS];
        for (r, f) in raw.iter_mut().zip(fds) {
            *r = f.as_raw_fd();
        }
        let fds = &raw[..fds.len()];
        let data = [tag];
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

    /// Receive a message; `None` means the peer closed its end (exited, or exec'd).
    pub fn recv(&self) -> Result<Option<In>> {
        let mut buf = vec![0u8; MAX_PAYLOAD + 1];
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
                    return In::decode(buf[0], &buf[1..n], got_fds).map(Some);
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
}

impl InitEnd {
    /// Wait for `want` (a message without fds: `Go` or `Continue`); an `Abort`, another
    /// message or EOF becomes an error naming `what` was awaited.
    pub fn expect(&self, want: ToInit, what: &str) -> Result<()> {
        match self.recv()? {
            Some(m) if std::mem::discriminant(&m) == std::mem::discriminant(&want) => Ok(()),
            Some(ToInit::Abort) => Err(Error::Init("aborted by the runtime".into())),
            Some(m) => Err(Error::Init(format!("{what}: unexpected message {m:?}"))),
            None => Err(Error::Init(format!("{what}: runtime exited"))),
        }
    }
}

impl RuntimeEnd {
    /// Send to the init; if it already failed and closed its end, return the error it
    /// sent before exiting instead of the send error.
    pub fn send_or_child_error(&self, msg: ToInit) -> Result<()> {
        match self.send(msg) {
            Ok(()) => Ok(()),
            Err(e) => match self.recv() {
                Ok(Some(m)) => Err(m.into_failure().unwrap_or(e)),
                _ => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn round_trip<M: Message>(m: &M) -> M {
        let f = m.encode();
        // The fds travel as duplicates, as SCM_RIGHTS would install them.
        let fds = f
            .fds
            .iter()
            .map(|fd| fd.try_clone().expect("dup"))
            .collect();
        M::decode(f.tag, f.payload, fds).expect("decode")
    }

    fn pipe() -> (std::fs::File, std::fs::File) {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        (std::fs::File::from(r), std::fs::File::from(w))
    }

    #[test]
    fn to_init_messages_survive_encode_and_decode() {
        assert!(matches!(round_trip(&ToInit::Go), ToInit::Go));
        assert!(matches!(round_trip(&ToInit::Continue), ToInit::Continue));
        assert!(matches!(round_trip(&ToInit::Abort), ToInit::Abort));
        assert!(matches!(
            round_trip(&ToInit::CgroupJoined),
            ToInit::CgroupJoined
        ));
        let (r1, _w1) = pipe();
        let (r2, _w2) = pipe();
        let m = ToInit::CgroupMade {
            tasks: vec![r1.into(), r2.into()],
        };
        match round_trip(&m) {
            ToInit::CgroupMade { tasks } => assert_eq!(tasks.len(), 2),
            other => panic!("got {other:?}"),
        }
    }

    #[test]
    fn from_init_messages_survive_encode_and_decode() {
        assert!(matches!(
            round_trip(&FromInit::RuntimeHooks),
            FromInit::RuntimeHooks
        ));
        assert!(matches!(round_trip(&FromInit::Ready), FromInit::Ready));
        match round_trip(&FromInit::Error("mount /proc: EPERM".into())) {
            FromInit::Error(m) => assert_eq!(m, "mount /proc: EPERM"),
            other => panic!("got {other:?}"),
        }
        match round_trip(&FromInit::HookFailed("hook exited 1".into())) {
            FromInit::HookFailed(m) => assert_eq!(m, "hook exited 1"),
            other => panic!("got {other:?}"),
        }
        let (r, _w) = pipe();
        assert!(matches!(
            round_trip(&FromInit::SeccompFd { listener: r.into() }),
            FromInit::SeccompFd { .. }
        ));
    }

    #[test]
    fn decode_refuses_unknown_tags_and_the_other_direction() {
        assert!(ToInit::decode(200, &[], Vec::new()).is_err());
        assert!(FromInit::decode(0, &[], Vec::new()).is_err());
        let ready = FromInit::Ready.encode().tag;
        assert!(ToInit::decode(ready, &[], Vec::new()).is_err());
        let go = ToInit::Go.encode().tag;
        assert!(FromInit::decode(go, &[], Vec::new()).is_err());
    }

    #[test]
    fn seccomp_message_without_its_fd_is_refused() {
        let t = tag::SECCOMP_FD;
        assert!(FromInit::decode(t, &[], Vec::new()).is_err());
    }

    #[test]
    fn failure_messages_become_their_errors() {
        assert!(matches!(
            FromInit::Error("x".into()).into_failure(),
            Ok(Error::Init(m)) if m == "x"
        ));
        assert!(matches!(
            FromInit::HookFailed("y".into()).into_failure(),
            Ok(Error::Hook(m)) if m == "y"
        ));
        assert!(matches!(
            FromInit::Ready.into_failure(),
            Err(FromInit::Ready)
        ));
    }

    #[test]
    fn fds_cross_the_socket_and_stay_usable() {
        let (runtime, init) = pair().expect("socketpair");
        let (r, mut w) = pipe();
        runtime
            .send(ToInit::CgroupMade {
                tasks: vec![r.into()],
            })
            .expect("send");
        let Some(ToInit::CgroupMade { mut tasks }) = init.recv().expect("recv") else {
            panic!("expected CgroupMade");
        };
        assert_eq!(tasks.len(), 1);
        w.write_all(b"ok").expect("write");
        drop(w);
        let mut got = String::new();
        std::fs::File::from(tasks.remove(0))
            .read_to_string(&mut got)
            .expect("read");
        assert_eq!(got, "ok");

        init.send(FromInit::Error("bad rootfs".into()))
            .expect("send");
        assert!(matches!(
            runtime.recv().expect("recv"),
            Some(FromInit::Error(m)) if m == "bad rootfs"
        ));
    }

    #[test]
    fn expect_names_what_was_awaited_and_sees_eof() {
        let (runtime, init) = pair().expect("socketpair");
        runtime.send(ToInit::Go).expect("send");
        init.expect(ToInit::Go, "id maps").expect("go");
        runtime.send(ToInit::Continue).expect("send");
        let e = init.expect(ToInit::Go, "id maps").unwrap_err();
        assert!(e.to_string().contains("id maps"), "{e}");
        runtime.send(ToInit::Abort).expect("send");
        let e = init.expect(ToInit::Go, "id maps").unwrap_err();
        assert!(e.to_string().contains("aborted"), "{e}");
        drop(runtime);
        let e = init.expect(ToInit::Go, "id maps").unwrap_err();
        assert!(e.to_string().contains("runtime exited"), "{e}");
    }

    #[test]
    fn send_to_a_dead_init_returns_its_last_error() {
        let (runtime, init) = pair().expect("socketpair");
        init.send(FromInit::HookFailed("createContainer: exit 3".into()))
            .expect("send");
        drop(init);
        let e = runtime
            .send_or_child_error(ToInit::CgroupJoined)
            .unwrap_err();
        assert!(
            matches!(&e, Error::Hook(m) if m == "createContainer: exit 3"),
            "{e}"
        );
    }
}
