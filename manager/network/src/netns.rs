//! Network namespaces bind-mounted on a file, like `ip netns add` does,
//! created from a short-lived helper thread so the caller's own namespace is
//! never touched.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{Error, Result};
use crate::nl::Handle;

fn ns_err(path: &Path, op: &'static str, source: io::Error) -> Error {
    Error::Netns {
        path: path.to_path_buf(),
        op,
        source,
    }
}

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Creates a new network namespace and bind-mounts it at `path` (a file
/// that must not exist yet; missing parent directories are created, mode
/// 0755). Loopback is brought up inside. The calling thread stays in its
/// namespace.
///
/// Fails with `EEXIST` if `path` exists: call [`delete`] first to recreate.
pub fn create(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ns_err(path, "create the parent directory", e))?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map_err(|e| ns_err(path, "create the mount point file", e))?;
    let made = std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            // Only this helper thread moves to the new namespace.
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| ns_err(path, "unshare the network namespace", errno(e)))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| ns_err(path, "bind-mount the namespace", errno(e)))?;
            let mut nl = Handle::new()?;
            let lo = nl
                .link_by_name("lo")?
                .ok_or_else(|| Error::NoSuchInterface {
                    name: "lo".into(),
                    hint: " in the new namespace".into(),
                })?;
            nl.set_up(lo.index, "lo")
        })
        .join()
    });
    let made = made.unwrap_or_else(|_| {
        Err(Error::ThreadPanicked {
            what: format!("create network namespace {}", path.display()),
        })
    });
    if made.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = delete(path);
    }
    made
}

/// Unmounts and removes a namespace created by [`create`]. Idempotent: a
/// missing path, or a plain file that is not mounted, is fine. The namespace
/// itself disappears once no process lives in it any more.
pub fn delete(path: &Path) -> Result<()> {
    // A path may in theory carry several stacked mounts; peel them all.
    for _ in 0..16 {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) => break,
            Err(nix::Error::ENOENT) => return Ok(()),
            Err(e) => return Err(ns_err(path, "unmount", errno(e))),
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(ns_err(path, "remove", e)),
        _ => Ok(()),
    }
}

/// Whether `path` is a mounted network namespace.
pub fn exists(path: &Path) -> bool {
    match nix::sys::statfs::statfs(path) {
        Ok(st) => st.filesystem_type() == nix::sys::statfs::NSFS_MAGIC,
        Err(_) => false,
    }
}

/// Runs `f` on a fresh thread that has entered the network namespace at
/// `path`, and returns its result. Sockets created by `f` stay in that
/// namespace and can be returned to the caller. A panic in `f` is resumed in
/// the caller.
pub fn run_in<T, F>(path: &Path, f: F) -> Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let ns = File::open(path).map_err(|e| ns_err(path, "open", e))?;
    let joined = std::thread::scope(|s| {
        s.spawn(|| -> Result<T> {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| ns_err(path, "enter (setns)", errno(e)))?;
            Ok(f())
        })
        .join()
    });
    match joined {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
