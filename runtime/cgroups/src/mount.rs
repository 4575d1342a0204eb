//! The container's view of its cgroups: the OCI mount of type `cgroup`.

use std::ffi::OsStr;
use std::io;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::cgroup::{Cgroup, Hierarchy, Version};
use crate::error::{CgroupError, Result};
use crate::layout::Mode;

/// The per-mount flags that make sense on each cgroup mount; anything else
/// in the caller's flags (bind, rec, propagation…) is dropped.
fn per_mount(flags: MsFlags) -> MsFlags {
    flags
        & (MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC
            | MsFlags::MS_NOATIME
            | MsFlags::MS_NODIRATIME
            | MsFlags::MS_RELATIME
            | MsFlags::MS_STRICTATIME)
}

fn mount_err(
    what: impl Into<String>,
    target: &Path,
) -> impl FnOnce(nix::Error) -> CgroupError + '_ {
    let what = what.into();
    move |source| CgroupError::Mount {
        what,
        target: target.to_path_buf(),
        source,
    }
}

fn prep_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::MountPrep {
        path: path.to_path_buf(),
        source,
    }
}

/// Flags the kernel will not let a bind remount clear (they are locked
/// when the source was mounted in a more privileged mount namespace).
fn locked_flags(path: &Path) -> MsFlags {
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    if f.contains(FsFlags::ST_NOSUID) {
        out |= MsFlags::MS_NOSUID;
    }
    if f.contains(FsFlags::ST_NODEV) {
        out |= MsFlags::MS_NODEV;
    }
    if f.contains(FsFlags::ST_NOEXEC) {
        out |= MsFlags::MS_NOEXEC;
    }
    out
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// The `MOUNT_ATTR_*` bits of mount_setattr(2) (libc has none yet).
pub mod attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x1;
    /// Ignore suid and sgid bits.
    pub const NOSUID: u64 = 0x2;
    /// Disallow access to device files.
    pub const NODEV: u64 = 0x4;
    /// Disallow program execution.
    pub const NOEXEC: u64 = 0x8;
    /// The mask of the atime mode (an enum, not bits: clear it to set one).
    pub const ATIME_MASK: u64 = 0x70;
    /// atime mode: relatime (the value 0 within [`ATIME_MASK`]).
    pub const RELATIME: u64 = 0x0;
    /// atime mode: noatime.
    pub const NOATIME: u64 = 0x10;
    /// atime mode: strictatime.
    pub const STRICTATIME: u64 = 0x20;
    /// Do not update directory access times.
    pub const NODIRATIME: u64 = 0x80;
    /// Do not follow symlinks (Linux 5.14+).
    pub const NOSYMFOLLOW: u64 = 0x20_0000;
}
use attr::RDONLY as MOUNT_ATTR_RDONLY;
use attr::{NODEV as MOUNT_ATTR_NODEV, NOEXEC as MOUNT_ATTR_NOEXEC, NOSUID as MOUNT_ATTR_NOSUID};

/// Set `attr_set` and clear `attr_clr` (`MOUNT_ATTR_*` bits, see [`attr`]) on `path`
/// and every mount below it with one mount_setattr(2) (Linux 5.12+).
pub fn mount_setattr_recursive(path: &Path, attr_set: u64, attr_clr: u64) -> io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let attr = MountAttr {
        attr_set,
        attr_clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a NUL-terminated path and a mount_attr of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Set `flags` (read-only, nosuid, nodev, noexec only) on `dest` and every mount
/// below it at once. False when the kernel cannot (before 5.12) or `flags` hold
/// something else (atime modes), so the caller remounts one by one.
fn set_recursive(dest: &Path, flags: MsFlags) -> bool {
    let simple = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    // relatime is the default of every mount made here; other atime modes need a remount.
    if !(flags & !(simple | MsFlags::MS_RELATIME)).is_empty() {
        return false;
    }
    let mut set = 0u64;
    for (ms, attr) in [
        (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
    ] {
        if flags.contains(ms) {
            set |= attr;
        }
    }
    mount_setattr_recursive(dest, set, 0).is_ok()
}

/// Bind `h`'s host directory at `target` without applying `flags` yet.
fn bind_one(h: &Hierarchy, target: &Path) -> Result<()> {
    mount(
        Some(&h.path),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(mount_err(format!("bind of {}", h.path.display()), target))
}

/// Remount a bind made by [`bind_one`] with `flags` (keeping locked flags).
fn remount_one(h: &Hierarchy, target: &Path, flags: MsFlags) -> Result<()> {
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | locked_flags(&h.path);
    mount(None::<&str>, target, None::<&str>, remount, None::<&str>).map_err(mount_err(
        format!("remount of bind of {}", h.path.display()),
        target,
    ))
}

/// Mount one hierarchy at `target`: a fresh cgroup file system when the
/// process is in its own cgroup namespace, else a bind of its host dir.
fn mount_one(h: &Hierarchy, target: &Path, cgroupns: bool, flags: MsFlags) -> Result<()> {
    if cgroupns {
        match h.version {
            Version::V1 => {
                let opts = h.controllers.join(",");
                mount(
                    Some("cgroup"),
                    target,
                    Some("cgroup"),
                    flags,
                    Some(opts.as_str()),
                )
                .map_err(mount_err(format!("cgroup ({opts})"), target))
            }
            Version::V2 => mount(
                Some("cgroup2"),
                target,
                Some("cgroup2"),
                flags,
                None::<&str>,
            )
            .map_err(mount_err("cgroup2", target)),
        }
    } else {
        bind_one(h, target)?;
        remount_one(h, target, flags)
    }
}

impl Cgroup {
    /// Populate the container's cgroup mount at `dest` (an existing
    /// directory, absolute host path inside the new rootfs; called in the
    /// container's mount namespace before pivot_root).
    ///
    /// Unified hosts: cgroup2 at `dest` (`cgroupns`) or a bind of the
    /// container's v2 dir. v1/hybrid: a tmpfs at `dest` holding one
    /// directory per hierarchy named like on the host (`cpu,cpuacct`,
    /// `systemd`, `unified`), each a fresh `cgroup`/`cgroup2` mount
    /// (`cgroupns`) or a bind of the container's host dir, plus symlinks for
    /// co-mounted controllers (`cpu` → `cpu,cpuacct`). `flags` (e.g.
    /// `MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC`) apply to every mount; with
    /// `MS_RDONLY` the tmpfs is made read-only at the end.
    pub fn mount_into(&self, dest: &Path, cgroupns: bool, flags: MsFlags) -> Result<()> {
        let flags = per_mount(flags);
        if self.mode == Mode::Unified {
            let h = self.v2().ok_or_else(|| CgroupError::Unsupported {
                what: "cgroup mount".into(),
                reason: "no cgroup2 hierarchy recorded for this container".into(),
            })?;
            return mount_one(h, dest, cgroupns, flags);
        }
        let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(
            Some("tmpfs"),
            dest,
            Some("tmpfs"),
            tmpfs_flags,
            Some("mode=755"),
        )
        .map_err(mount_err("tmpfs", dest))?;
        let mut binds = Vec::new();
        for h in &self.hierarchies {
            let Some(name) = h.mount_point.file_name() else {
                continue;
            };
            let sub = dest.join(name);
            match std::fs::create_dir(&sub) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(prep_err(&sub)(e)),
            }
            if cgroupns {
                mount_one(h, &sub, cgroupns, flags)?;
            } else {
                bind_one(h, &sub)?;
                binds.push((h, sub));
            }
            if h.version == Version::V1 {
                symlink_comounts(dest, name)?;
            }
        }
        // Binds: one recursive mount_setattr for the tmpfs and all of them (23 fewer
        // mount syscalls on a hybrid host), else a remount each as before.
        if !binds.is_empty() && set_recursive(dest, flags) {
            return Ok(());
        }
        for (h, sub) in &binds {
            remount_one(h, sub, flags)?;
        }
        if !(flags & !tmpfs_flags & !MsFlags::MS_RELATIME).is_empty() {
            mount(
                None::<&str>,
                dest,
                None::<&str>,
                MsFlags::MS_REMOUNT | flags | tmpfs_flags,
                Some("mode=755"),
            )
            .map_err(mount_err("remount of tmpfs", dest))?;
        }
        Ok(())
    }
}

/// For a hierarchy directory named `cpu,cpuacct` create `cpu` and `cpuacct`
/// symlinks next to it.
fn symlink_comounts(dest: &Path, name: &OsStr) -> Result<()> {
    let Some(s) = name.to_str() else {
        return Ok(());
    };
    if !s.contains(',') {
        return Ok(());
    }
    for part in s.split(',') {
        let link = dest.join(part);
        match std::os::unix::fs::symlink(s, &link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(prep_err(&link)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_mount_drops_bind_flags() {
        let f =
            per_mount(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(f, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
    }
}
