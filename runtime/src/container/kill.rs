//! `kill`: signal a container's init (or every process in its cgroup), and the
//! pidfd-based signalling and waiting that `start` and `delete` use too.

use super::load::load_locked;
use crate::error::{Error, Result};
use crate::procfs;
use crate::state::{Record, Status};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// runc's wording for a signal to a container whose init is gone; containerd treats a
/// kill error as "already finished" only when its text contains this phrase.
const NOT_RUNNING: &str = "container not running";

/// The error of a signal to a container that has no live init.
fn not_running(id: &str, status: &str) -> Error {
    Error::BadState {
        id: id.into(),
        status: status.into(),
        msg: format!("{NOT_RUNNING}: nothing to signal (delete it to remove it)"),
    }
}

/// `kill`: signal the init (or, with `all`, every process in the container's cgroup).
/// Signal 0 only checks that the init is alive. After SIGKILL it returns once the
/// init is gone (at most [`KILL_SETTLE`]), so a client that looks right after finds it stopped. As runc 1.1, `all` on a stopped
/// container succeeds (containerd sends `kill --all KILL` before deleting one).
pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let (dir, rec) = load_locked(root, id)?;
    let status = rec.live_status(&dir.path);
    if status == Status::Stopped && all {
        return Ok(());
    }
    if matches!(status, Status::Stopped | Status::Creating) {
        return Err(not_running(id, status.as_str()));
    }
    if all {
        if let Some(cg) = &rec.cgroup {
            cg.kill_all(sig)?;
            return Ok(());
        }
        // No cgroup (rootless): the other processes of its own pid namespace.
        for pid in super::ps::members(&rec)?
            .into_iter()
            .filter(|&p| p != rec.pid)
        {
            // SAFETY: kill with pid and signal numbers; a process gone meanwhile is fine.
            unsafe { libc::kill(pid, sig) };
        }
    }
    signal_pid(&rec, sig)
}

pub(super) fn signal_pid(rec: &Record, sig: i32) -> Result<()> {
    // Use a pidfd so a recycled pid is never signalled.
    // SAFETY: pidfd_open with a pid.
    let pfd = unsafe { libc::syscall(libc::SYS_pidfd_open, rec.pid, 0) };
    if pfd >= 0 {
        // SAFETY: fresh fd.
        let pfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pfd as i32) };
        if !procfs::is_alive(rec.pid, rec.pid_start_time) {
            return Err(not_running(&rec.id, "stopped"));
        }
        // SAFETY: pidfd_send_signal with a valid pidfd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pfd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r != 0 {
            return Err(Error::sys(
                format!("signal container {}", rec.id),
                nix::Error::last(),
            ));
        }
        if sig == libc::SIGKILL {
            // A client's next look (podman polls every 100 ms) then finds the
            // init gone: a SIGKILLed process is normally gone in a few ms.
            poll_gone(&pfd, KILL_SETTLE);
        }
        return Ok(());
    }
    // SAFETY: kill with pid and signal numbers.
    if unsafe { libc::kill(rec.pid, sig) } != 0 {
        return Err(Error::sys(
            format!("signal container {}", rec.id),
            nix::Error::last(),
        ));
    }
    Ok(())
}

/// Wait until `pid` is gone (or a zombie), using a pidfd; bounded by `timeout`.
pub(super) fn wait_gone(pid: i32, start: u64, timeout: std::time::Duration) -> bool {
    // SAFETY: pidfd_open with a pid.
    let pfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pfd < 0 {
        return !procfs::is_alive(pid, start);
    }
    // SAFETY: fresh fd.
    let pfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pfd as i32) };
    poll_gone(&pfd, timeout) || !procfs::is_alive(pid, start)
}

/// How long `kill` with SIGKILL waits for the init to be gone before it returns
/// anyway (a frozen container dies only when thawed).
const KILL_SETTLE: std::time::Duration = std::time::Duration::from_millis(100);

/// Whether the process of `pidfd` exited within `timeout` (pidfds poll readable then).
fn poll_gone(pidfd: &OwnedFd, timeout: std::time::Duration) -> bool {
    let mut p = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) };
    r > 0
}
