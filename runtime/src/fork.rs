//! Fork-like clone(2) and clone3(2): a child in new namespaces, born in its cgroup v2
//! directory when one is given.

use crate::error::{Error, Result};
use boxrun_common::clone3::{CloneArgs, CLONE_INTO_CGROUP};
use std::os::fd::{AsRawFd, OwnedFd};

/// Which side of [`fork`] the caller is on.
pub enum Forked {
    /// The new process.
    Child,
    /// The caller, with the child's pid and whether the child was born in the cgroup.
    Parent {
        /// The child's pid.
        pid: i32,
        /// Whether clone3(CLONE_INTO_CGROUP) put the child in the given cgroup.
        in_cgroup: bool,
    },
}

/// Fork with the namespace `flags` (`CLONE_NEW*`, or 0). With `cgroup`, an `O_PATH`
/// descriptor of a cgroup v2 directory, clone3(CLONE_INTO_CGROUP) is tried first: the
/// child is born there, which spares the cgroup.procs write that waits for an RCU grace
/// period. When clone3 fails (old kernel, a seccomp filter), plain clone is used and
/// `in_cgroup` is false. `what` names the child in the error.
///
/// # Safety
/// The caller must be single-threaded: the child continues on a copy of the caller's
/// only thread (it may allocate, as no other thread can hold a lock).
pub unsafe fn fork(flags: libc::c_int, cgroup: Option<&OwnedFd>, what: &str) -> Result<Forked> {
    if let Some(cfd) = cgroup {
        let args = CloneArgs {
            flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: cfd.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        // SAFETY: clone3 with a fork-like (no stack) argument block; the caller
        // guarantees a single thread.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        match pid {
            0 => return Ok(Forked::Child),
            p if p > 0 => {
                return Ok(Forked::Parent {
                    pid: p as i32,
                    in_cgroup: true,
                })
            }
            _ => crate::logging::debug(&format!(
                "clone3 into cgroup failed ({}), falling back to clone",
                nix::Error::last()
            )),
        }
    }
    // SAFETY: raw clone with a NULL stack behaves like fork; single-threaded caller.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match pid {
        0 => Ok(Forked::Child),
        p if p > 0 => Ok(Forked::Parent {
            pid: p as i32,
            in_cgroup: false,
        }),
        _ => Err(Error::sys(format!("clone {what}"), nix::Error::last())),
    }
}
