//! Process helpers: liveness checks and waiting on pids that are not our children.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Whether a process with this pid exists.
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks existence.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether `pid` is the monitor of instance `id` (guards against pid reuse).
pub fn is_monitor(pid: i32, id: &str) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(c) => {
            let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
            args.windows(2)
                .any(|w| w[0] == b"__monitor" && w[1] == id.as_bytes())
                && !is_zombie(pid)
        }
        Err(_) => false,
    }
}

/// Whether `pid` is a zombie (exited, not yet reaped).
pub fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Wait until `pid` exits, at most `timeout`. True if it is gone.
pub fn wait_exit(pid: i32, timeout: Duration) -> bool {
    if pid <= 0 {
        return true;
    }
    // SAFETY: pidfd_open takes a pid and flags.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return !alive(pid);
    }
    // SAFETY: fd was just returned by pidfd_open.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if is_zombie(pid) {
            return true;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // A zombie child of someone else never becomes "readable" before it is reaped
        // in some kernels' eyes; poll in slices so the zombie check above runs.
        let slice = left.min(Duration::from_millis(200)).as_millis() as i32;
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut p, 1, slice) };
        if rc > 0 {
            return true;
        }
        if left.is_zero() {
            return false;
        }
    }
}
