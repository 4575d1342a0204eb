//! `start`: release a created container's init through its exec fifo, then run the
//! poststart hooks.

use super::delete::destroy;
use super::kill::{signal_pid, wait_gone};
use super::load::{load_locked, load_saved_spec};
use crate::error::{Error, Result};
use crate::hooks;
use crate::procfs;
use crate::state::{Record, StateDir, Status};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// `start`: release a created container's init and run poststart hooks.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let (dir, mut rec) = load_locked(root, id)?;
    let status = rec.live_status(&dir.path);
    if status != Status::Created {
        return Err(Error::BadState {
            id: id.into(),
            status: status.as_str().into(),
            msg: "start needs a created container".into(),
        });
    }
    let spec = load_saved_spec(&dir)?;
    if spec.process().is_none() {
        // runtime-spec: start MUST generate an error if process was not set. The
        // container cannot ever run, so it is stopped rather than left waiting.
        let _ = signal_pid(&rec, libc::SIGKILL);
        wait_gone(
            rec.pid,
            rec.pid_start_time,
            std::time::Duration::from_secs(10),
        );
        rec.status = Status::Stopped;
        dir.save(&rec)?;
        return Err(Error::Config(format!(
            "container {id} has no process in its config.json: nothing to start"
        )));
    }
    crate::failpoint::hit("start:before-release");
    if let Err(e) = release_fifo(&dir, &rec) {
        if matches!(e, Error::Hook(_)) {
            // A startContainer hook failed: stop the container and destroy it (poststop too).
            let _ = signal_pid(&rec, libc::SIGKILL);
            wait_gone(
                rec.pid,
                rec.pid_start_time,
                std::time::Duration::from_secs(10),
            );
            rec.status = Status::Stopped;
            let _ = destroy(dir, &rec, None);
        }
        return Err(e);
    }
    crate::failpoint::hit("start:released");
    rec.status = Status::Running;
    dir.save(&rec)?;
    let state = rec.oci_state(Status::Running).to_string().into_bytes();
    hooks::run_all_warn(
        spec.hooks().as_ref().and_then(|h| h.poststart().as_ref()),
        &state,
        "poststart",
    );
    Ok(())
}

fn release_fifo(dir: &StateDir, rec: &Record) -> Result<()> {
    let p = dir.fifo_path();
    // Non-blocking open of the read end never blocks; then wait for the init's status
    // or its death (pidfd), so an init that dies right now cannot hang `start`.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&p)
        .map_err(|e| Error::io(&p, e))?;
    // SAFETY: pidfd_open with a pid; failure leaves -1 (then only the fifo is polled).
    let pfd = unsafe { libc::syscall(libc::SYS_pidfd_open, rec.pid, 0) } as i32;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pfd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfd entries (a negative fd is ignored by poll).
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 && nix::Error::last() == nix::Error::EINTR {
            continue;
        }
        if fds[0].revents != 0 || fds[1].revents != 0 || r < 0 {
            break;
        }
    }
    if pfd >= 0 {
        // SAFETY: closing our pidfd.
        unsafe { libc::close(pfd) };
    }
    // Data (or the init's exit) is there: read it all in blocking mode.
    // SAFETY: clearing O_NONBLOCK on our fd.
    unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, 0) };
    let mut b = Vec::new();
    let mut f = f;
    if procfs::is_alive(rec.pid, rec.pid_start_time) || has_data(&f) {
        std::io::Read::read_to_end(&mut f, &mut b).map_err(|e| Error::io(&p, e))?;
    }
    let _ = std::fs::remove_file(&p);
    match b.first() {
        None => Err(Error::Init(
            "container init exited before it could be started".into(),
        )),
        Some(b'0') => Ok(()),
        Some(_) => Err(Error::Hook(String::from_utf8_lossy(&b[1..]).into_owned())),
    }
}

fn has_data(f: &std::fs::File) -> bool {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD into an int.
    unsafe { libc::ioctl(f.as_raw_fd(), libc::FIONREAD, &mut n) == 0 && n > 0 }
}
