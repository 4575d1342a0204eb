//! Copying disk images: reflink (FICLONE) where the file system allows,
//! otherwise a sparse-aware copy (SEEK_DATA/SEEK_HOLE + copy_file_range).

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Instant;

use crate::error::{Context, Result};

/// `FICLONE` = `_IOW(0x94, 9, int)`.
const FICLONE: libc::c_ulong = 0x4004_9409;

/// How a copy was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyKind {
    /// Shared extents (reflink), instantaneous.
    Reflink,
    /// Data ranges copied, holes kept.
    Sparse,
}

/// Copy `src` to the new file `dst` (which must not exist). On failure `dst` is removed.
pub fn copy_image(src: &Path, dst: &Path) -> Result<CopyKind> {
    let r = copy_inner(src, dst);
    if r.is_err() {
        let _ = std::fs::remove_file(dst);
    }
    r
}

fn copy_inner(src: &Path, dst: &Path) -> Result<CopyKind> {
    let input = File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let len = input
        .metadata()
        .with_context(|| format!("cannot stat {}", src.display()))?
        .len();
    let output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(dst)
        .with_context(|| format!("cannot create {}", dst.display()))?;
    if reflink(&input, &output).is_ok() {
        return Ok(CopyKind::Reflink);
    }
    output
        .set_len(len)
        .with_context(|| format!("cannot size {} (is the disk full?)", dst.display()))?;
    let mut progress = Progress::new(len);
    let mut pos: i64 = 0;
    let end = len as i64;
    while pos < end {
        // SAFETY: lseek on an open fd.
        let data = unsafe { libc::lseek(input.as_raw_fd(), pos, libc::SEEK_DATA) };
        if data < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break; // only a hole remains
            }
            if e.raw_os_error() == Some(libc::EINVAL) {
                // SEEK_DATA unsupported: treat the whole rest as data.
                copy_range(&input, &output, pos, end, &mut progress, dst)?;
                break;
            }
            return Err(e).with_context(|| format!("cannot read {}", src.display()));
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(input.as_raw_fd(), data, libc::SEEK_HOLE) };
        let hole = if hole < 0 { end } else { hole.min(end) };
        copy_range(&input, &output, data, hole, &mut progress, dst)?;
        pos = hole;
    }
    output
        .sync_all()
        .with_context(|| format!("cannot write {} (is the disk full?)", dst.display()))?;
    progress.finish();
    Ok(CopyKind::Sparse)
}

fn copy_range(
    input: &File,
    output: &File,
    start: i64,
    end: i64,
    progress: &mut Progress,
    dst: &Path,
) -> Result<()> {
    let mut off_in = start;
    let mut off_out = start;
    while off_in < end {
        let chunk = ((end - off_in) as usize).min(64 << 20);
        // SAFETY: valid fds and offset pointers that live across the call.
        let n = unsafe {
            libc::copy_file_range(
                input.as_raw_fd(),
                &mut off_in,
                output.as_raw_fd(),
                &mut off_out,
                chunk,
                0,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if matches!(
                e.raw_os_error(),
                Some(libc::EXDEV | libc::ENOSYS | libc::EOPNOTSUPP)
            ) {
                return rw_copy(input, output, off_in, end, progress, dst);
            }
            return Err(e)
                .with_context(|| format!("cannot write {} (is the disk full?)", dst.display()));
        }
        if n == 0 {
            break;
        }
        progress.advance(n as u64);
    }
    Ok(())
}

fn rw_copy(
    input: &File,
    output: &File,
    mut off: i64,
    end: i64,
    progress: &mut Progress,
    dst: &Path,
) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 1 << 20];
    while off < end {
        let want = ((end - off) as usize).min(buf.len());
        let n = input.read_at(&mut buf[..want], off as u64)?;
        if n == 0 {
            break;
        }
        output
            .write_all_at(&buf[..n], off as u64)
            .with_context(|| format!("cannot write {} (is the disk full?)", dst.display()))?;
        off += n as i64;
        progress.advance(n as u64);
    }
    Ok(())
}

/// A progress bar on stderr, shown only on a terminal once a copy takes over a second.
struct Progress {
    total: u64,
    done: u64,
    start: Instant,
    tty: bool,
    shown: bool,
}

impl Progress {
    fn new(total: u64) -> Progress {
        Progress {
            total,
            done: 0,
            start: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        if !self.tty || self.start.elapsed().as_millis() < 1000 {
            return;
        }
        self.shown = true;
        let pct = (self.done * 100)
            .checked_div(self.total)
            .unwrap_or(100)
            .min(100);
        let bar = "#".repeat((pct / 4) as usize);
        let _ = write!(
            std::io::stderr(),
            "\rcopying disk [{bar:<25}] {pct:3}% {}",
            crate::util::human_bytes(self.done)
        );
    }

    fn finish(&self) {
        if self.shown {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Make `dst` share all of `src`'s extents (`FICLONE`); fails where the
/// file system cannot (ext4, tmpfs) or the files are on different ones.
pub fn reflink(src: &File, dst: &File) -> std::io::Result<()> {
    // SAFETY: FICLONE takes the source fd as its argument; both fds are open.
    let rc = unsafe { libc::ioctl(dst.as_raw_fd(), FICLONE as _, src.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What a file's data extents hold (from `FIEMAP`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extents {
    /// Bytes in data extents.
    pub bytes: u64,
    /// Of those, bytes in extents shared with other files (reflinks).
    pub shared: u64,
    /// Number of extents.
    pub count: u64,
}

/// The data extents of `path`, and how much of them is shared with other
/// files: an instance disk reflinked from its image shares everything it
/// has not rewritten.
pub fn extents(path: &Path) -> Result<Extents> {
    const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
    const EXTENT_LAST: u32 = 0x1;
    const EXTENT_SHARED: u32 = 0x2000;
    const BATCH: usize = 256;
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Extent {
        logical: u64,
        physical: u64,
        length: u64,
        reserved64: [u64; 2],
        flags: u32,
        reserved: [u32; 3],
    }
    #[repr(C)]
    struct Map {
        start: u64,
        length: u64,
        flags: u32,
        mapped: u32,
        count: u32,
        reserved: u32,
        extents: [Extent; BATCH],
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = Extents::default();
    let mut start = 0u64;
    loop {
        // SAFETY: Map is plain old data; zero is valid for every field.
        let mut map: Box<Map> = Box::new(unsafe { std::mem::zeroed() });
        map.start = start;
        map.length = u64::MAX - start;
        map.count = BATCH as u32;
        // SAFETY: FS_IOC_FIEMAP fills the map, which holds `count` extents and outlives the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP as _, &mut *map) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot map the extents of {}", path.display()));
        }
        let n = (map.mapped as usize).min(BATCH);
        if n == 0 {
            return Ok(out);
        }
        for e in &map.extents[..n] {
            out.bytes += e.length;
            out.count += 1;
            if e.flags & EXTENT_SHARED != 0 {
                out.shared += e.length;
            }
            start = e.logical + e.length;
            if e.flags & EXTENT_LAST != 0 {
                return Ok(out);
            }
        }
    }
}

/// Bytes actually allocated by a file (sparse files use less than their length).
pub fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn sparse_copy_keeps_data_and_holes() {
        let dir = std::env::temp_dir().join(format!("boxctl-disk-{}", crate::util::random_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("src");
        let f = File::create(&src).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(b"hello", 0).unwrap();
        f.write_all_at(b"world", 32 << 20).unwrap();
        drop(f);
        let dst = dir.join("dst");
        copy_image(&src, &dst).unwrap();
        let out = File::open(&dst).unwrap();
        assert_eq!(out.metadata().unwrap().len(), 64 << 20);
        let mut b = [0u8; 5];
        out.read_exact_at(&mut b, 32 << 20).unwrap();
        assert_eq!(&b, b"world");
        out.read_exact_at(&mut b, 0).unwrap();
        assert_eq!(&b, b"hello");
        assert!(allocated_bytes(&dst) < 8 << 20, "copy is not sparse");
        // A second copy onto an existing file is refused.
        assert!(copy_image(&src, &dst).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
