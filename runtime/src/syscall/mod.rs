//! The seam between the container set-up and the kernel: every privileged call the
//! init makes between clone and exec (namespaces, mounts, pivot_root, device nodes,
//! names, credentials and capabilities, sysctl writes, exec) goes through [`Syscall`].
//!
//! [`Linux`] makes the real calls, one system call per method, so the start path
//! makes the same calls as without the seam (dispatch is through `&dyn Syscall`, with
//! no allocation). The unit tests use a recording fake (`syscall::recording`) that logs
//! each call with its arguments and can be told to fail one, so the order of the
//! set-up is tested without root.

mod linux;
#[cfg(test)]
pub mod recording;

pub use linux::Linux;

use crate::capabilities::Sets;
use nix::mount::{MntFlags, MsFlags};
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::path::Path;

/// The privileged calls of the container set-up. Errors are the kernel's errno; the
/// callers add what was being done.
pub trait Syscall {
    /// setns(2) on an open namespace fd.
    fn setns(&self, fd: RawFd, nstype: libc::c_int) -> nix::Result<()>;
    /// unshare(2) with CLONE_NEW* flags.
    fn unshare(&self, flags: libc::c_int) -> nix::Result<()>;
    /// setsid(2) (its result is not needed: the init is never a group leader).
    fn setsid(&self);
    /// Join (creating it) the session keyring `name`; failure is ignored, as runc does.
    fn join_session_keyring(&self, name: &CStr);
    /// Bring up `lo` in the current network namespace.
    fn loopback_up(&self) -> crate::error::Result<()>;
    /// sethostname(2).
    fn sethostname(&self, name: &str) -> nix::Result<()>;
    /// setdomainname(2).
    fn setdomainname(&self, name: &str) -> nix::Result<()>;
    /// umask(2); the previous mask.
    fn umask(&self, mask: libc::mode_t) -> libc::mode_t;
    /// Write a kernel setting file (a sysctl, /proc/self/timens_offsets…).
    fn write_file(&self, path: &Path, data: &[u8]) -> std::io::Result<()>;
    /// mount(2).
    fn mount(
        &self,
        src: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()>;
    /// umount2(2).
    fn umount2(&self, target: &Path, flags: MntFlags) -> nix::Result<()>;
    /// mount_setattr(2) with AT_RECURSIVE: set `set` and clear `clr` (`MOUNT_ATTR_*`
    /// bits) on the mount at `target` and every mount below it.
    fn mount_setattr_recursive(&self, target: &Path, set: u64, clr: u64) -> std::io::Result<()>;
    /// The flags of the mount at `path` (statvfs(3)), to keep the locked ones on a remount.
    fn mount_flags(&self, path: &Path) -> nix::Result<nix::sys::statvfs::FsFlags>;
    /// Whether `path` is a directory (stat(2), following symlinks as mount(2) does).
    fn is_dir(&self, path: &Path) -> nix::Result<bool>;
    /// pivot_root(2).
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> nix::Result<()>;
    /// chroot(2).
    fn chroot(&self, path: &Path) -> nix::Result<()>;
    /// chdir(2).
    fn chdir(&self, path: &Path) -> nix::Result<()>;
    /// fchdir(2).
    fn fchdir(&self, fd: RawFd) -> nix::Result<()>;
    /// mknodat(2).
    fn mknodat(
        &self,
        dir: RawFd,
        name: &CStr,
        mode: libc::mode_t,
        dev: libc::dev_t,
    ) -> nix::Result<()>;
    /// fchownat(2) without following a symlink.
    fn fchownat(&self, dir: RawFd, name: &CStr, uid: u32, gid: u32) -> nix::Result<()>;
    /// fchmodat(2).
    fn fchmodat(&self, dir: RawFd, name: &CStr, mode: libc::mode_t) -> nix::Result<()>;
    /// symlinkat(2): `dir`/`name` pointing at `target`.
    fn symlinkat(&self, target: &CStr, dir: RawFd, name: &CStr) -> nix::Result<()>;
    /// setgroups(2).
    fn setgroups(&self, gids: &[libc::gid_t]) -> nix::Result<()>;
    /// setresgid(2) with the same id three times.
    fn setresgid(&self, gid: libc::gid_t) -> nix::Result<()>;
    /// setresuid(2) with the same id three times.
    fn setresuid(&self, uid: libc::uid_t) -> nix::Result<()>;
    /// The highest capability number the running kernel knows.
    fn cap_last(&self) -> u8;
    /// Drop capability `n` from the bounding set.
    fn cap_drop_bound(&self, n: u8) -> nix::Result<()>;
    /// PR_SET_KEEPCAPS.
    fn set_keepcaps(&self, keep: bool);
    /// capset(2) of the effective, permitted and inheritable sets.
    fn capset(&self, sets: &Sets) -> nix::Result<()>;
    /// Clear the ambient set.
    fn ambient_clear(&self);
    /// Raise capability `n` in the ambient set.
    fn ambient_raise(&self, n: u8) -> nix::Result<()>;
    /// PR_SET_NO_NEW_PRIVS.
    fn set_no_new_privs(&self) -> nix::Result<()>;
    /// execve(2); returns only on failure.
    fn execve(&self, exe: &CStr, args: &[CString], env: &[CString]) -> nix::Error;
}
