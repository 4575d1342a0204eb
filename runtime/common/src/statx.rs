//! `statx(2)` of a path (not following a final symlink), for the fields
//! `std::fs::Metadata` does not give: mount ids and the mount-root attribute.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, mask)`; the error is the
/// kernel's (`ENOENT` for a path that is gone).
pub fn statx(path: &Path, mask: u32) -> std::io::Result<libc::statx> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: an all-zero statx is a valid value of this plain C struct.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated and st is a statx the kernel fills.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            mask,
            &mut st,
        )
    };
    if rc == 0 {
        Ok(st)
    } else {
        Err(std::io::Error::last_os_error())
    }
}
