//! Running a command with a deadline, and waiting for arbitrary pids, using
//! pidfds and poll instead of sleeps.

use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Captured result of one command.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit status (a timed-out command reports the SIGKILL it got).
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// True if the command hit its deadline and was killed.
    pub timed_out: bool,
    /// Wall time.
    pub elapsed: Duration,
}

impl Output {
    /// True for exit status 0 within the deadline.
    pub fn success(&self) -> bool {
        self.status.success() && !self.timed_out
    }

    /// One-line description for failure reasons.
    pub fn describe(&self) -> String {
        let code = match (self.status.code(), self.status.signal()) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("signal {s}"),
            _ => "unknown status".into(),
        };
        let err = self.stderr.trim();
        let err: String = err.chars().take(300).collect();
        if self.timed_out {
            format!("timed out after {:?}; stderr: {err}", self.elapsed)
        } else {
            format!("{code}; stderr: {err}")
        }
    }
}

/// Open a pidfd for `pid`.
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no memory.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Wait until `fd` is readable (a pidfd: the process exited) or `timeout`.
/// Returns true if readable.
pub fn poll_readable(fd: &impl AsRawFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: p is a valid pollfd array of length 1.
        let rc = unsafe { libc::poll(&mut p, 1, ms) };
        if rc > 0 {
            return true;
        }
        if rc == 0 {
            return false;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// Wait for an arbitrary (not necessarily child) process to exit.
/// Returns Ok(true) if it exited (or never existed), Ok(false) on timeout.
pub fn wait_pid_exit(pid: i32, timeout: Duration) -> Result<bool> {
    match pidfd_open(pid) {
        Ok(fd) => Ok(poll_readable(&fd, timeout)),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(true),
        Err(e) => Err(e).with_context(|| format!("pidfd_open({pid})")),
    }
}

/// Run `prog args` in `cwd` with stdin from /dev/null, stdout/stderr to
/// files `out_base.{out,err}`; kill its process group at the deadline.
pub fn run(
    prog: &Path,
    args: &[String],
    cwd: &Path,
    out_base: &Path,
    timeout: Duration,
) -> Result<Output> {
    let out_path = out_base.with_extension("out");
    let err_path = out_base.with_extension("err");
    let out = std::fs::File::create(&out_path)
        .with_context(|| format!("create {}", out_path.display()))?;
    let err = std::fs::File::create(&err_path)
        .with_context(|| format!("create {}", err_path.display()))?;
    let start = Instant::now();
    let mut child = Command::new(prog)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("spawn {}", prog.display()))?;
    let pid = child.id() as i32;
    let fd = pidfd_open(pid).with_context(|| format!("pidfd_open for {}", prog.display()))?;
    let exited = poll_readable(&fd, timeout);
    if !exited {
        // SAFETY: signalling the process group we created; no memory involved.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let status = child.wait().context("wait for runtime command")?;
    let stdout =
        String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default()).into_owned();
    let stderr =
        String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default()).into_owned();
    Ok(Output {
        status,
        stdout,
        stderr,
        timed_out: !exited,
        elapsed: start.elapsed(),
    })
}

/// Fail unless `out` succeeded.
pub fn require(what: &str, out: Output) -> Result<Output> {
    if !out.success() {
        bail!("{what} failed: {}", out.describe());
    }
    Ok(out)
}
