//! Starting and stopping the health checker of an instance (`boxctl
//! __health ID`, [`crate::health::main`]) from its monitor.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::error::{Context, Result};
use crate::instance_file::Instance;
use crate::store::Store;

/// The running checker process of one instance (a child of its monitor).
pub struct Checker {
    pidfd: OwnedFd,
}

/// Start the checker of `inst` (`EXE --root ROOT __health ID`) when it has
/// a health check. It dies with the monitor (parent-death signal).
pub fn spawn(store: &Store, inst: &Instance) -> Result<Option<Checker>> {
    if !inst.health.enabled() {
        return Ok(None);
    }
    let exe = std::env::current_exe().context("cannot find the boxctl executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(store.root())
        .arg("__health")
        .arg(&inst.id)
        .stdin(Stdio::null())
        .current_dir("/");
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start the health checker of {}", inst.name))?;
    let pid = child.id() as i32;
    // SAFETY: pidfd_open on our own unreaped child: the pid cannot be reused yet.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .context("cannot open a pidfd for the health checker");
    }
    // SAFETY: fd was just returned by pidfd_open and is ours.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    Ok(Some(Checker { pidfd }))
}

impl Checker {
    /// Kill the checker and reap it (the monitor's reaping loop may have
    /// reaped it already if it died on its own).
    pub fn stop(self) {
        // SAFETY: pidfd_send_signal on a pidfd we own; a gone process is ESRCH.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        // SAFETY: waitid on the pidfd of our child; ECHILD if it was reaped already.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above, with a valid siginfo pointer.
        unsafe {
            libc::waitid(
                libc::P_PIDFD,
                self.pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
    }
}
