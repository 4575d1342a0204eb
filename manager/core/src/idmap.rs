//! Idmapped mounts: a clone of a mounted tree whose on-disk ids 0..65535
//! read and write as an instance's host range (see [`crate::userns`]), so
//! images and volumes keep root-owned files on disk and need no chown.
//!
//! `open_tree(OPEN_TREE_CLONE)` makes a detached copy of the mount,
//! `mount_setattr(MOUNT_ATTR_IDMAP)` gives it the user namespace's mapping,
//! and `move_mount` attaches it; attached on its own source it stacks on top,
//! so the path shows the idmapped view and one more unmount removes it.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::error::{Context, Result};
use crate::instance_file::Instance;
use crate::userns::IdRange;

/// Clone the mount at `source` (with its submounts when `recursive`),
/// idmap the clone with `userns`'s mapping and attach it on `target`.
pub fn mount(source: &Path, target: &Path, userns: BorrowedFd, recursive: bool) -> Result<()> {
    let what = || {
        format!(
            "cannot make an idmapped mount of {} on {}",
            source.display(),
            target.display()
        )
    };
    let src = CString::new(source.as_os_str().as_encoded_bytes())?;
    let dst = CString::new(target.as_os_str().as_encoded_bytes())?;
    let rec = if recursive { libc::AT_RECURSIVE } else { 0 };
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | rec as libc::c_uint;
    // SAFETY: valid C string; the kernel returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, src.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).with_context(what);
    }
    // SAFETY: a descriptor open_tree just returned to us.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: valid descriptor, empty path with AT_EMPTY_PATH, attr of its declared size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH | rec,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("{}: does its file system support idmapped mounts?", what()));
    }
    // SAFETY: valid descriptor and C strings.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(what);
    }
    Ok(())
}

/// Stack an idmapped clone of the mount at `path` on itself when `inst` has
/// a user namespace (nothing for a privileged instance).
pub fn stack_for(inst: &Instance, path: &Path) -> Result<()> {
    let Some(range) = IdRange::of(inst) else {
        return Ok(());
    };
    let ns = crate::userns::open(range)?;
    mount(path, path, ns.as_fd(), false)
}

/// Give the top directory of a copy-on-write instance's upper layer (the
/// overlay's root) to its container root: the upper layer is not idmapped
/// (overlayfs writes its whiteouts there as host root), so what the
/// container writes lands in it with host ids.
pub fn own_upper_root(inst: &Instance, data: &Path) -> Result<()> {
    let Some(range) = IdRange::of(inst) else {
        return Ok(());
    };
    std::os::unix::fs::lchown(data, Some(range.base), Some(range.base))
        .with_context(|| format!("cannot give {} to uid {}", data.display(), range.base))
}
