//! Mounting instance disks and finding leftover mounts.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result};
use boxrun_common::mountinfo::{parse_mountinfo, MountInfo};

/// Mount the ext4 file system on `dev` at `target`.
pub fn mount_ext4(dev: &Path, target: &Path, read_only: bool) -> Result<()> {
    let src = CString::new(dev.as_os_str().as_encoded_bytes())?;
    let dst = CString::new(target.as_os_str().as_encoded_bytes())?;
    let fstype = CString::new("ext4")?;
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME;
    if read_only {
        flags |= libc::MS_RDONLY;
    }
    // SAFETY: valid C strings; null data.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            fstype.as_ptr(),
            flags,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!(
                "cannot mount {} on {}: is the disk image a valid ext4 file system?",
                dev.display(),
                target.display()
            )
        });
    }
    Ok(())
}

/// Unmount `target` if it is a mount point; falls back on a lazy unmount when busy.
pub fn unmount(target: &Path) -> Result<()> {
    let dst = CString::new(target.as_os_str().as_encoded_bytes())?;
    for _ in 0..16 {
        if !is_mount_point(target) {
            return Ok(());
        }
        // SAFETY: valid C string.
        let rc = unsafe { libc::umount2(dst.as_ptr(), libc::UMOUNT_NOFOLLOW) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::ENOENT) => return Ok(()),
                Some(libc::EBUSY) => {
                    // SAFETY: valid C string.
                    let rc = unsafe {
                        libc::umount2(dst.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW)
                    };
                    if rc != 0 {
                        return Err(std::io::Error::last_os_error())
                            .with_context(|| format!("cannot unmount {}", target.display()));
                    }
                }
                _ => return Err(e).with_context(|| format!("cannot unmount {}", target.display())),
            }
        }
    }
    Ok(())
}

/// The mounts of this process, from /proc/self/mountinfo (none if it cannot be read).
fn own_mounts() -> Vec<MountInfo> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default()
}

/// Mount points at or under `dir`, from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    own_mounts()
        .into_iter()
        .map(|m| PathBuf::from(m.mount_point))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Whether `path` is a mount point. One `statx` where the kernel reports
/// mount roots (5.8+), else a scan of /proc/self/mountinfo, which grows with
/// every instance's mounts.
pub fn is_mount_point(path: &Path) -> bool {
    match mount_root(path) {
        Some(root) => root.is_some(),
        None => mounts_under(path).iter().any(|p| p == path),
    }
}

/// Whether `path` is a mount root and the device of its file system, by
/// `statx`: `Some(Some(dev))` for a mount root, `Some(None)` for another
/// path or none, `None` when the kernel does not say.
fn mount_root(path: &Path) -> Option<Option<(u64, u64)>> {
    let st = match boxrun_common::statx::statx(path, libc::STATX_BASIC_STATS) {
        Ok(st) => st,
        Err(e) => return (e.raw_os_error() == Some(libc::ENOENT)).then_some(None),
    };
    let bit = libc::STATX_ATTR_MOUNT_ROOT as u64;
    if st.stx_attributes_mask & bit == 0 {
        return None;
    }
    let dev = (u64::from(st.stx_dev_major), u64::from(st.stx_dev_minor));
    Some((st.stx_attributes & bit != 0).then_some(dev))
}

/// `(major, minor)` of the device mounted at `target` (see [`is_mount_point`]
/// for how it is found).
pub fn device_of(target: &Path) -> Option<(u64, u64)> {
    if let Some(root) = mount_root(target) {
        return root;
    }
    own_mounts()
        .into_iter()
        .rev()
        .find(|m| Path::new(&m.mount_point) == target)
        .map(|m| (m.major, m.minor))
}

/// Mount an overlay with `options` (lowerdir=…,upperdir=…,workdir=…) on `target`.
pub fn mount_overlay(target: &Path, options: &str) -> Result<()> {
    let dst = CString::new(target.as_os_str().as_encoded_bytes())?;
    let fstype = CString::new("overlay")?;
    let data = CString::new(options)?;
    // SAFETY: valid C strings.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            dst.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot mount the overlay on {}", target.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_process_mounts() {
        // /proc is mounted in every environment these tests run in; /proc/self is not a mount.
        assert!(is_mount_point(Path::new("/proc")));
        assert!(!is_mount_point(Path::new("/proc/self")));
        assert!(mounts_under(Path::new("/proc")).contains(&PathBuf::from("/proc")));
        let (major, _) = device_of(Path::new("/proc")).expect("device of /proc");
        assert_eq!(major, 0, "procfs has an anonymous device");
        assert_eq!(device_of(Path::new("/no/such/mount")), None);
    }

    #[test]
    fn statx_and_mountinfo_give_the_same_device() {
        for p in ["/", "/proc", "/sys"] {
            let listed = own_mounts()
                .into_iter()
                .rev()
                .find(|m| m.mount_point == p)
                .map(|m| (m.major, m.minor));
            assert_eq!(device_of(Path::new(p)), listed, "{p}");
        }
        assert_eq!(mount_root(Path::new("/proc/self/status")), Some(None));
    }
}
