//! Mounting instance disks and finding leftover mounts.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result};

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

/// Mount points at or under `dir`, from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Whether `path` is a mount point.
pub fn is_mount_point(path: &Path) -> bool {
    mounts_under(path).iter().any(|p| p == path)
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `(major, minor)` of the device mounted at `target`, from /proc/self/mountinfo.
pub fn device_of(target: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        if f.len() > 4 && Path::new(&unescape(f[4])) == target {
            let (a, b) = f[2].split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        } else {
            None
        }
    })
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
