//! `run`: create and start; in the foreground, wait for the container while forwarding
//! signals (or proxying its terminal), then delete it.

use super::create::{self, create, CreateOpts, Created};
use super::delete::destroy;
use super::start::start;
use crate::error::Result;
use crate::hooks;
use crate::state::{StateDir, Status};
use std::os::fd::AsRawFd;

/// `run`: create and start, then (unless detached) wait, forward signals, delete, and
/// return the exit code (128+n for a signal, like a shell).
pub fn run(opts: &CreateOpts, detach: bool, keep: bool) -> Result<i32> {
    if detach {
        let c = create(opts, true)?;
        drop(c);
        start(&opts.root, &opts.id)?;
        return Ok(0);
    }
    // Block the signals we forward before the child exists; the child unblocks them.
    let fwd = crate::signals::forwardable();
    // SAFETY: blocking signals in a single-threaded process.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &fwd, std::ptr::null_mut()) };
    let Created {
        pid,
        dir,
        record,
        spec,
        console_proxy,
    } = create::create_inner(opts, false, true)?;
    let master = match &console_proxy {
        Some(sock) => Some(crate::console::recv_master(sock.as_raw_fd())?),
        None => None,
    };
    let state = record.oci_state(Status::Running).to_string().into_bytes();
    hooks::run_all_warn(
        spec.hooks().as_ref().and_then(|h| h.poststart().as_ref()),
        &state,
        "poststart",
    );
    drop(dir);
    let code = match master {
        Some(m) => crate::console::proxy_until_exit(&m, pid, &fwd),
        None => crate::signals::wait_forwarding(pid, &fwd),
    };
    if !keep {
        let dir = StateDir::open(&opts.root, &opts.id)?;
        let mut rec = dir.load()?.unwrap_or(record);
        rec.status = Status::Stopped;
        destroy(dir, &rec, Some(&spec))?;
    }
    Ok(code)
}
