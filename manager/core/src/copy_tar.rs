//! `cp NAME:/path -`: an instance's tree as a tar stream, read through
//! directory fds (see [`crate::fs_at`]).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result};
use crate::fs_at::{list_dir, lstat_at, open_at, open_child_dir, read_link};

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Files, directories and symlinks written.
    pub entries: u64,
    /// Bytes of file data written.
    pub bytes: u64,
    /// Special files (devices, fifos, sockets) left out.
    pub skipped: u64,
}

/// Write entry `sname` of `sdir` (a tree, recursively) as a tar stream
/// named by its last component, symlinks as links.
pub(crate) fn write_tar(sdir: &OwnedFd, sname: &OsStr, out: &mut dyn Write) -> Result<CopyReport> {
    let mut report = CopyReport::default();
    let mut b = tar::Builder::new(out);
    let name = if sname == "." {
        PathBuf::from(".")
    } else {
        PathBuf::from(sname)
    };
    tar_entry(&mut b, sdir.as_raw_fd(), sname, &name, &mut report)?;
    b.finish().context("cp: cannot write the tar stream")?;
    Ok(report)
}

pub(crate) fn tar_entry(
    b: &mut tar::Builder<&mut dyn Write>,
    dir: RawFd,
    name: &OsStr,
    path: &Path,
    report: &mut CopyReport,
) -> Result<()> {
    let st =
        lstat_at(dir, name).with_context(|| format!("cp: no such source: {}", path.display()))?;
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid.into());
    h.set_gid(st.st_gid.into());
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    let werr =
        |e: io::Error| crate::error::Error::from(e).context("cp: cannot write the tar stream");
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            h.set_entry_type(tar::EntryType::Directory);
            b.append_data(&mut h, path, io::empty()).map_err(werr)?;
            let d = open_child_dir(dir, name)?;
            for child in list_dir(d.as_raw_fd())? {
                tar_entry(b, d.as_raw_fd(), &child, &path.join(&child), report)?;
            }
        }
        libc::S_IFREG => {
            let f = File::from(
                open_at(dir, name, libc::O_RDONLY, 0)
                    .with_context(|| format!("cp: cannot open {}", path.display()))?,
            );
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(st.st_size as u64);
            b.append_data(&mut h, path, f.take(st.st_size as u64))
                .map_err(werr)?;
            report.bytes += st.st_size as u64;
        }
        libc::S_IFLNK => {
            let target = read_link(dir, name)?;
            h.set_entry_type(tar::EntryType::Symlink);
            b.append_link(&mut h, path, OsStr::from_bytes(&target))
                .map_err(werr)?;
        }
        _ => {
            report.skipped += 1;
            return Ok(());
        }
    }
    report.entries += 1;
    Ok(())
}
