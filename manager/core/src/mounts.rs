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

/// Whether `path` is a mount point.
pub fn is_mount_point(path: &Path) -> bool {
    mounts_under(path).iter().any(|p| p == path)
}

/// `(major, minor)` of the device mounted at `target`, from /proc/self/mountinfo.
pub fn device_of(target: &Path) -> Option<(u64, u64)> {
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
}
