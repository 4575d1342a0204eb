//! Handing a seccomp listener fd to the agent at `listenerPath`, as runc does: connect a unix
//! stream socket, send the container process state JSON with the fd in SCM_RIGHTS.

use std::io::{IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::SeccompError;

/// runc's protocol: connect to `listener_path` (unix stream) and send `process_state_json`
/// (runc's `specs.ContainerProcessState`: ociVersion, fds ["seccompFd"], pid, metadata, state)
/// with `listener_fd` attached in SCM_RIGHTS, then close the connection.
pub fn send_listener_fd(
    listener_path: &Path,
    listener_fd: BorrowedFd,
    process_state_json: &[u8],
) -> Result<(), SeccompError> {
    let err = |source: std::io::Error| SeccompError::Listener {
        path: listener_path.to_path_buf(),
        source,
    };
    let mut conn =
        UnixStream::connect(listener_path).map_err(|source| SeccompError::AgentUnreachable {
            path: listener_path.to_path_buf(),
            source,
        })?;
    let fds = [listener_fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(process_state_json)];
    let sent = loop {
        match sendmsg::<()>(conn.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => break n,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(err(e.into())),
        }
    };
    if sent < process_state_json.len() {
        conn.write_all(&process_state_json[sent..]).map_err(err)?;
    }
    Ok(())
}
