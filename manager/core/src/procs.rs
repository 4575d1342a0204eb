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
///
/// One open and one read of `/proc/PID/cmdline` (`ps` makes this check for
/// every running instance): a zombie or an exiting process has no memory
/// left and reads as an empty command line, so no `stat` read is needed.
pub fn is_monitor(pid: i32, id: &str) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(c) = read_cmdline(pid) else {
        return false;
    };
    let mut args = c.split(|b| *b == 0);
    while let Some(a) = args.next() {
        if a == b"__monitor" {
            return args.next() == Some(id.as_bytes());
        }
    }
    false
}

/// `/proc/PID/cmdline`, in one read(2) when it fits in 4 KiB (the kernel
/// returns all of it up to the buffer's size).
fn read_cmdline(pid: i32) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(format!("/proc/{pid}/cmdline"))?;
    let mut buf = vec![0u8; 4096];
    let n = f.read(&mut buf)?;
    buf.truncate(n);
    if n == 4096 {
        f.read_to_end(&mut buf)?;
    }
    Ok(buf)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A process whose command line carries `__monitor ID` is that
    /// instance's monitor until it exits: as a zombie it no longer is.
    #[test]
    fn monitor_check_reads_the_command_line_and_skips_zombies() {
        use std::io::BufRead;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "echo ready; read x", "__monitor", "abc123"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        // Once sh speaks, its exec is complete and its command line readable.
        let mut line = String::new();
        let stdout = child.stdout.take().expect("sh's stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read sh's output");
        let is_it = is_monitor(pid, "abc123");
        let other = is_monitor(pid, "abc12");
        drop(child.stdin.take()); // EOF: `read` returns, sh exits
        let zombie_gone = wait_exit(pid, Duration::from_secs(10));
        let as_zombie = is_monitor(pid, "abc123");
        let _ = child.wait();
        assert!(is_it, "the monitor was not recognised");
        assert!(!other, "another instance's id matched");
        assert!(
            zombie_gone && !as_zombie,
            "a zombie counted as a live monitor"
        );
        assert!(!is_monitor(0, "abc123"));
    }
}
