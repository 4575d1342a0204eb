//! File operations relative to directory fds, for copies that must not be
//! redirected by symlinks: `openat2(RESOLVE_IN_ROOT)` resolution inside an
//! instance's root, and `*at` calls with `O_NOFOLLOW` for each entry.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Context, Result};

pub(crate) fn cstr(s: &OsStr) -> Result<CString> {
    Ok(CString::new(s.as_bytes())?)
}

pub(crate) fn errno_result(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

pub(crate) fn open_dir_path(p: &Path) -> Result<OwnedFd> {
    let c = cstr(p.as_os_str())?;
    // SAFETY: a valid C string; the returned fd is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    errno_result(fd as libc::c_long).with_context(|| format!("cannot open {}", p.display()))?;
    // SAFETY: fd was just opened and is ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat2(root, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: symlinks
/// and `..` in `path` cannot leave `root`.
pub(crate) fn open_in_root(root: &OwnedFd, path: &str, flags: i32) -> io::Result<OwnedFd> {
    open_in_root_bytes(root, path.trim_start_matches('/').as_bytes(), flags)
}

/// [`open_in_root`] of a relative path given as bytes (empty: `root` itself).
pub(crate) fn open_in_root_bytes(root: &OwnedFd, path: &[u8], flags: i32) -> io::Result<OwnedFd> {
    let c = CString::new(path)?;
    let c = if c.as_bytes().is_empty() {
        CString::new(".")?
    } else {
        c
    };
    // SAFETY: open_how is a plain C struct; zeroed is a valid start.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid fd, C string and open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    errno_result(fd)?;
    // SAFETY: the syscall returned a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

pub(crate) fn lstat_at(dir: RawFd, name: &OsStr) -> io::Result<libc::stat> {
    let c = CString::new(name.as_bytes())?;
    // SAFETY: stat is plain data, filled by fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, C string and stat buffer.
    let rc = unsafe { libc::fstatat(dir, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    errno_result(rc as libc::c_long)?;
    Ok(st)
}

pub(crate) fn open_at(
    dir: RawFd,
    name: &OsStr,
    flags: i32,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let c = CString::new(name.as_bytes())?;
    // SAFETY: valid fd and C string.
    let fd = unsafe {
        libc::openat(
            dir,
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    errno_result(fd as libc::c_long)?;
    // SAFETY: a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn open_child_dir(dir: RawFd, name: &OsStr) -> Result<OwnedFd> {
    open_at(dir, name, libc::O_DIRECTORY | libc::O_RDONLY, 0)
        .with_context(|| format!("cp: cannot open directory {}", name.to_string_lossy()))
}

/// `mkdirat`, an existing directory (not a symlink to one) being fine.
pub(crate) fn make_dir(dir: RawFd, name: &OsStr) -> Result<()> {
    let c = cstr(name)?;
    // SAFETY: valid fd and C string.
    let rc = unsafe { libc::mkdirat(dir, c.as_ptr(), 0o700) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match lstat_at(dir, name) {
        Ok(st)
            if err.raw_os_error() == Some(libc::EEXIST)
                && st.st_mode & libc::S_IFMT == libc::S_IFDIR =>
        {
            Ok(())
        }
        _ => Err(err).with_context(|| {
            format!(
                "cp: cannot make directory {} (a file is in the way?)",
                name.to_string_lossy()
            )
        }),
    }
}

pub(crate) fn set_mode(fd: RawFd, mode: libc::mode_t) -> Result<()> {
    // SAFETY: valid fd.
    let rc = unsafe { libc::fchmod(fd, mode & 0o7777) };
    errno_result(rc as libc::c_long).context("cp: cannot set a mode")?;
    Ok(())
}

/// Remove a non-directory `name` in `dir` (so a copy replaces it).
pub(crate) fn remove_non_dir(dir: RawFd, name: &OsStr) {
    if let Ok(st) = lstat_at(dir, name) {
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            if let Ok(c) = CString::new(name.as_bytes()) {
                // SAFETY: valid fd and C string.
                unsafe { libc::unlinkat(dir, c.as_ptr(), 0) };
            }
        }
    }
}

pub(crate) fn read_link(dir: RawFd, name: &OsStr) -> Result<Vec<u8>> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid fd, C string and buffer of the given length.
    let n = unsafe { libc::readlinkat(dir, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let n = errno_result(n as libc::c_long)
        .with_context(|| format!("cp: cannot read link {}", name.to_string_lossy()))?;
    buf.truncate(n as usize);
    Ok(buf)
}

pub(crate) fn list_dir(fd: RawFd) -> Result<Vec<OsString>> {
    // SAFETY: dup of a valid fd, owned by the Dir below.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    errno_result(dup as libc::c_long).context("cp: cannot read a directory")?;
    let mut dir = nix::dir::Dir::from_fd(dup).context("cp: cannot read a directory")?;
    let mut names = Vec::new();
    for e in dir.iter() {
        let e = e.context("cp: cannot read a directory")?;
        let n = OsStr::from_bytes(e.file_name().to_bytes());
        if n != "." && n != ".." {
            names.push(n.to_os_string());
        }
    }
    Ok(names)
}
