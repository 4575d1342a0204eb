//! Raw ext4 disk images: recognising them and making them from a directory.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::bail;
use crate::error::{Context, Result};

/// Whether `path` starts with an ext2/3/4 superblock.
pub fn is_ext4(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    let mut magic = [0u8; 2];
    f.read_exact_at(&mut magic, 1080).is_ok() && magic == [0x53, 0xEF]
}

/// Bytes and inodes used by the tree at `dir` (symlinks not followed).
pub fn tree_usage(dir: &Path) -> Result<(u64, u64)> {
    let mut bytes = 0u64;
    let mut inodes = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
            let e = e?;
            let m = e.metadata()?;
            inodes += 1;
            bytes += m.size().div_ceil(4096) * 4096;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Ok((bytes, inodes))
}

/// Make the sparse ext4 image `out` holding the tree `dir`. `size`: the
/// image size; by default the content plus 20 % plus 256 MiB of free space
/// for the instances.
pub fn make_from_dir(dir: &Path, out: &Path, size: Option<u64>) -> Result<()> {
    let (bytes, inodes) = tree_usage(dir)?;
    let needed = bytes + inodes * 512 + (16 << 20);
    let size = match size {
        Some(s) if s < needed => bail!(
            "image size {} is too small for {} of content: give at least {}",
            crate::util::human_bytes(s),
            crate::util::human_bytes(bytes),
            crate::util::human_bytes(needed)
        ),
        Some(s) => s,
        None => bytes + bytes / 5 + inodes * 512 + (256 << 20),
    };
    let inode_count = (inodes + 4096).max(16_384).to_string();
    mkfs(
        out,
        size,
        &[
            "-N".as_ref(),
            inode_count.as_ref(),
            "-d".as_ref(),
            dir.as_os_str(),
        ],
        "build the image",
    )
}

/// Make the empty sparse ext4 file system `out` of `size` bytes.
pub fn make_empty(out: &Path, size: u64) -> Result<()> {
    mkfs(out, size, &[], &format!("make {}", out.display()))
}

/// Create the sparse file `out` of `size` bytes (rounded up to MiB) and run
/// mkfs.ext4 on it with `extra` arguments; on any failure `out` is removed.
fn mkfs(out: &Path, size: u64, extra: &[&std::ffi::OsStr], what: &str) -> Result<()> {
    let size = size.div_ceil(1 << 20) << 20;
    let f = File::create_new(out).with_context(|| format!("cannot create {}", out.display()))?;
    if let Err(e) = f.set_len(size) {
        drop(f);
        let _ = std::fs::remove_file(out);
        return Err(e)
            .with_context(|| format!("cannot size {} (is the disk full?)", out.display()));
    }
    drop(f);
    let mut cmd = Command::new("mkfs.ext4");
    cmd.args(["-q", "-F", "-t", "ext4", "-E", "root_owner=0:0"])
        .args(extra)
        .arg(out);
    // A boxctl killed meanwhile takes mkfs with it: nothing goes on writing
    // a disk that its clean-up removes (or in a pool being unmounted).
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = cmd.output();
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            let _ = std::fs::remove_file(out);
            return Err(e).context("cannot run mkfs.ext4: install e2fsprogs");
        }
    };
    if !output.status.success() {
        let _ = std::fs::remove_file(out);
        let err = String::from_utf8_lossy(&output.stderr);
        bail!(
            "mkfs.ext4 failed to {what}: {}",
            err.lines().last().unwrap_or("no message").trim()
        );
    }
    Ok(())
}
