//! Small helpers: time formatting, atomic file writes, fd hygiene.

use crate::error::{Error, Result};
use boxrun_common::civil::civil_from_days;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Format a Unix time (seconds, nanoseconds) as RFC 3339 in UTC with nanoseconds,
/// the way Go's `time.RFC3339Nano` prints it.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    if nanos == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        let frac = format!("{nanos:09}");
        let frac = frac.trim_end_matches('0');
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{frac}Z")
    }
}

/// The current time as RFC 3339.
pub fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Write `data` to `path` atomically: a temporary file in the same directory, then
/// rename over the target. A reader sees the old or the new file, never a torn one,
/// whatever happens to the writer (kill -9).
///
/// No fsync: runtime state describes live processes, which a power loss kills too; the
/// next command finds the pid gone and reports the container stopped. On this host
/// /run is not a tmpfs and two fsyncs cost ~7 ms per container start.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    write_replace(path, data, mode, false)
}

/// Like [`atomic_write`], with fsync of the file and its directory, for state that must
/// survive a power loss (pid files read by supervisors).
pub fn durable_write(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    write_replace(path, data, mode, true)
}

fn write_replace(path: &Path, data: &[u8], mode: u32, sync: bool) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Other(format!("{}: no parent directory", path.display())))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        if sync {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if sync {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Mark every fd >= `from` close-on-exec (one syscall with close_range).
pub fn cloexec_from(from: u32) {
    // SAFETY: close_range only changes fd flags; no memory is touched.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            from,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        // Old kernel: walk /proc/self/fd.
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = rd
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            for fd in fds {
                if fd >= from as i32 {
                    // SAFETY: setting FD_CLOEXEC on an fd number is harmless if it is stale.
                    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
                }
            }
        }
    }
}

/// Only stdio and `preserve` fds after it go through exec: everything from
/// 3+preserve is marked close-on-exec, and the preserved ones the caller handed in
/// (see [`note_inherited_fds`]) are cleared of it, except the runtime's own fds in
/// `keep_private` (e.g. its sync channel).
pub fn pass_through_fds(preserve: u32, keep_private: &[i32]) {
    cloexec_from(3 + preserve);
    let inherited = INHERITED.get().map(Vec::as_slice).unwrap_or(&[]);
    for fd in 3..3 + preserve as i32 {
        // Only what the caller handed in is passed on: a runtime fd that took a free
        // number in the range (a lock, the exec fifo) stays close-on-exec.
        let flags = if inherited.contains(&fd) && !keep_private.contains(&fd) {
            0
        } else {
            libc::FD_CLOEXEC
        };
        // SAFETY: changing the close-on-exec flag of an fd number; harmless if stale.
        unsafe { libc::fcntl(fd, libc::F_SETFD, flags) };
    }
}

/// The fds among the `--preserve-fds` range that the caller handed the runtime.
static INHERITED: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();

/// Note which of fds `3..3+count` are open, at start-up before the runtime opens any of
/// its own, so [`pass_through_fds`] passes only those.
pub fn note_inherited_fds(count: u32) {
    let open = (3..3i32.saturating_add(count as i32))
        // SAFETY: F_GETFD only reads the fd's flags.
        .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0)
        .collect();
    let _ = INHERITED.set(open);
}

/// Validate a container id the way runc does (and so that it cannot escape the root).
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

/// Write all of `data` to a raw fd, retrying on EINTR.
pub fn write_all_fd(fd: i32, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        // SAFETY: data is a valid buffer of data.len() bytes.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// open(2) `path` read-only with extra `flags` (`O_PATH`, `O_DIRECTORY`; close-on-exec is
/// always added) as an owned fd: the same single open call as `nix::fcntl::open`, whose
/// 0.29 API returns a raw fd. The error is the errno, as nix gives it.
pub fn open_owned(path: &Path, flags: nix::fcntl::OFlag) -> nix::Result<std::os::fd::OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .map(std::os::fd::OwnedFd::from)
        .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_owned_gives_an_owned_close_on_exec_fd_or_the_errno() {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
        use std::os::fd::AsRawFd;
        let fd = open_owned(Path::new("/proc"), OFlag::O_PATH | OFlag::O_DIRECTORY).expect("/proc");
        let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFD).expect("F_GETFD");
        assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
        assert_eq!(
            open_owned(Path::new("/proc/self/status"), OFlag::O_DIRECTORY).err(),
            Some(nix::Error::ENOTDIR)
        );
        assert_eq!(
            open_owned(Path::new("/nonexistent/boxrun"), OFlag::empty()).err(),
            Some(nix::Error::ENOENT)
        );
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400, 500_000_000), "2000-02-29T00:00:00.5Z");
        assert_eq!(rfc3339(1_795_000_000, 1), "2026-11-18T11:06:40.000000001Z");
    }

    #[test]
    fn ids_are_validated() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b", "a\0b"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
