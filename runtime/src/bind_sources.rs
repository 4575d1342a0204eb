//! Bind mounts: the targets runc refuses (inside `/proc`), and the sources of a
//! container with a user namespace, taken by the runtime before the init enters it
//! (runc's mount source fds): the container's root may not reach the source path (a
//! file in a 0700 root directory), but it may attach a copy of the mount that the
//! runtime made.
//!
//! The runtime clones each bind source's mount (`open_tree(OPEN_TREE_CLONE)`, recursive
//! for `rbind`) before the clone; the init inherits the detached trees and attaches
//! each with `move_mount` where it would have bind-mounted the path.

use crate::error::{Error, Result};
use crate::mounts;
use oci_spec::runtime::{Mount, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// A bind mount's source path: relative ones are in the bundle.
pub fn source_path(m: &Mount, bundle: &Path) -> Option<PathBuf> {
    let src = m.source().as_deref()?;
    Some(if src.is_absolute() {
        src.to_path_buf()
    } else {
        bundle.join(src)
    })
}

/// A detached copy of every bind source's mount, by index in `mounts` (`None` for
/// other mounts and for sources that cannot be taken: the init then binds the path
/// and reports its error as before).
pub fn take(spec: &Spec, bundle: &Path) -> Vec<Option<OwnedFd>> {
    let take_one = |m: &Mount| {
        let opts = mounts::parse(m.options().as_deref().unwrap_or(&[]));
        if !opts.bind && m.typ().as_deref() != Some("bind") {
            return None;
        }
        let recursive = opts.flags.contains(nix::mount::MsFlags::MS_REC);
        clone_tree(&source_path(m, bundle)?, recursive)
    };
    spec.mounts().iter().flatten().map(take_one).collect()
}

fn clone_tree(src: &Path, recursive: bool) -> Option<OwnedFd> {
    let c = CString::new(src.as_os_str().as_bytes()).ok()?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: open_tree with a NUL-terminated path; returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    // SAFETY: a fresh fd owned by nobody else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Attach the detached tree `tree` on the file or directory open as `target`.
pub fn attach(tree: &OwnedFd, target: &OwnedFd, what: &dyn Fn() -> String) -> Result<()> {
    // SAFETY: move_mount between two open fds, with empty NUL-terminated paths.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if r != 0 {
        return Err(Error::sys(what(), nix::Error::last()));
    }
    Ok(())
}

/// Files below `/proc` a bind may cover, as runc's (lxcfs emulates them).
const PROC_BINDS_ALLOWED: &[&str] = &[
    "cpuinfo",
    "diskstats",
    "meminfo",
    "stat",
    "swaps",
    "uptime",
    "loadavg",
    "slabinfo",
    "net/dev",
    "sys/kernel/ns_last_pid",
];

/// Refuse a bind whose target, resolved in the rootfs (`resolved`, a host path, so
/// symlinks in the image are followed), is inside the container's `/proc`, as runc's
/// `checkProcMount`: only the files lxcfs emulates, and `/proc` itself from a procfs.
pub fn check_proc_target(rootfs: &Path, resolved: &Path, m: &Mount, src: &Path) -> Result<()> {
    let Ok(below) = resolved.strip_prefix(rootfs.join("proc")) else {
        return Ok(());
    };
    let refuse = |why: &str| {
        Err(Error::Config(format!(
            "mounts: error mounting {:?} to rootfs at {:?}: {:?} {why}",
            src,
            m.destination(),
            resolved
        )))
    };
    if below.as_os_str().is_empty() {
        let is_proc = nix::sys::statfs::statfs(src)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
        return if is_proc {
            Ok(())
        } else {
            refuse("cannot be mounted because it is not of type proc")
        };
    }
    if PROC_BINDS_ALLOWED.iter().any(|a| below == Path::new(a)) {
        return Ok(());
    }
    refuse("cannot be mounted because it is inside /proc")
}
