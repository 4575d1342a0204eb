//! `cp`: copy files and directory trees between the host and an instance's
//! root file system, running (its mounted `rootfs/`) or stopped (its disk
//! mounted for the copy, under the store lock so no start races it).
//!
//! Paths in the instance are resolved inside its root as
//! `openat2(RESOLVE_IN_ROOT)` does: a symlink in the instance pointing to
//! `/etc/shadow` means the instance's `/etc/shadow`, never the host's. The
//! last component of a source is not followed (a symlink is copied as a
//! symlink), and nothing is created through a symlink (`O_NOFOLLOW`).
//! Modes (with setuid/setgid/sticky bits) are kept; new files belong to the
//! caller (root), as with `docker cp`. `-` on the host side is a tar stream:
//! `cp NAME:/path -` writes one, `cp - NAME:/dir` extracts one into an
//! existing directory (through the image importer's in-root extraction).

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::copy_tar::write_tar;
use crate::error::{Context, Result};
use crate::fs_at::{
    cstr, errno_result, list_dir, lstat_at, make_dir, open_at, open_child_dir, open_dir_path,
    open_in_root, read_link, remove_non_dir, set_mode,
};
use crate::instance_file::{Instance, Status};
use crate::store::Store;
use crate::{bail, instance_disk, invalid, mounts};

/// One side of a `cp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A host path.
    Host(PathBuf),
    /// `-`: a tar stream on stdin (source) or stdout (destination).
    Stream,
    /// `NAME:/path` in an instance.
    Instance {
        /// Instance name or id.
        key: String,
        /// Absolute path in the instance.
        path: String,
    },
}

impl Endpoint {
    /// `NAME:/path` is an instance's path; anything else (a path with a `/`
    /// before any `:`, like `./a:b`) is a host path.
    pub fn parse(s: &str) -> Result<Endpoint> {
        if s.is_empty() {
            invalid!("cp: an empty path: give a host path or NAME:/path");
        }
        if s == "-" {
            return Ok(Endpoint::Stream);
        }
        match s.split_once(':') {
            Some((key, path)) if !key.is_empty() && !key.contains('/') => {
                if !path.starts_with('/') {
                    invalid!("cp: {s:?}: the path in instance {key} must be absolute (NAME:/path)");
                }
                Ok(Endpoint::Instance {
                    key: key.to_string(),
                    path: path.to_string(),
                })
            }
            _ => Ok(Endpoint::Host(PathBuf::from(s))),
        }
    }
}

pub use crate::copy_tar::CopyReport;

/// Copy `src` to `dst` (`NAME:/path` on exactly one side), `cp -a`-like:
/// into `dst` when it is an existing directory, else to `dst` itself; a
/// source ending in `/.` copies the directory's contents. A `-` side is a
/// tar stream read from `input` or written to `output`.
pub fn copy(
    store: &Store,
    src: &str,
    dst: &str,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<CopyReport> {
    let (src, dst) = (Endpoint::parse(src)?, Endpoint::parse(dst)?);
    let key = match (&src, &dst) {
        (Endpoint::Instance { key, .. }, Endpoint::Host(_) | Endpoint::Stream)
        | (Endpoint::Host(_) | Endpoint::Stream, Endpoint::Instance { key, .. }) => key.clone(),
        (Endpoint::Instance { .. }, Endpoint::Instance { .. }) => {
            invalid!("cp: both paths name an instance: copy through a host directory")
        }
        _ => invalid!("cp: neither path names an instance: write NAME:/path on one side"),
    };
    let inst = store.find(&key)?;
    if inst.storage.read_only && matches!(dst, Endpoint::Instance { .. }) {
        bail!(
            "cp: the root file system of {} is read-only (--read-only): nothing copied",
            inst.name
        );
    }
    for e in [&src, &dst] {
        if let Endpoint::Instance { path, .. } = e {
            refuse_mounted_path(&inst, path)?;
        }
    }
    // Into an instance with a user namespace, files are made as its root
    // (host root is no id on its idmapped disk).
    let range = match dst {
        Endpoint::Instance { .. } => crate::userns::IdRange::of(&inst),
        _ => None,
    };
    with_root(store, &inst, |root| {
        let root = open_dir_path(root)?;
        crate::userns::as_container_root(range, || match (&src, &dst) {
            (Endpoint::Instance { path, .. }, Endpoint::Host(host)) => {
                let (sdir, sname) = resolve_parent(Some(&root), path)?;
                copy_to(&sdir, &sname, contents_only(path), None, host_str(host)?)
            }
            (Endpoint::Host(host), Endpoint::Instance { path, .. }) => {
                let hs = host_str(host)?;
                let (sdir, sname) = resolve_parent(None, hs)?;
                copy_to(&sdir, &sname, contents_only(hs), Some(&root), path)
            }
            (Endpoint::Instance { path, .. }, Endpoint::Stream) => {
                let (sdir, sname) = resolve_parent(Some(&root), path)?;
                write_tar(&sdir, &sname, output)
            }
            (Endpoint::Stream, Endpoint::Instance { path, .. }) => {
                let dir = open_in_root(&root, path, libc::O_DIRECTORY | libc::O_RDONLY)
                    .with_context(|| {
                        format!("cp: {path} is not an existing directory in the instance (a tar stream is extracted into one)")
                    })?;
                let target = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
                let x = crate::image::import_tar::extract(input, &target, false)
                    .context("cp: cannot extract the tar stream")?;
                Ok(CopyReport {
                    entries: x.entries,
                    bytes: 0,
                    skipped: x.skipped_devices,
                })
            }
            _ => unreachable!("checked above"),
        })
    })
}

fn host_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("cp: host path {} is not UTF-8", p.display()))
}

fn contents_only(path: &str) -> bool {
    path.ends_with("/.")
}

/// `-v`/`--tmpfs` targets are other file systems the host-side root does not
/// show: a copy there would land under the mount point instead.
fn refuse_mounted_path(inst: &Instance, path: &str) -> Result<()> {
    let targets = inst
        .storage
        .volume_mounts()
        .into_iter()
        .map(|m| m.target)
        .chain(inst.storage.tmpfs_mounts().into_iter().map(|m| m.target));
    for t in targets {
        let t = t.trim_end_matches('/');
        if path == t || path.starts_with(&format!("{t}/")) {
            bail!(
                "cp: {path} is on a volume or tmpfs of {} mounted at {t}: cp reaches only the instance's own disk (use `boxctl exec` or the volume)",
                inst.name
            );
        }
    }
    Ok(())
}

/// Run `f` with the host path of the instance's root file system: the
/// mounted `rootfs/` of a running instance, or its disk mounted for the
/// time of `f` (holding the store lock) when it is stopped.
fn with_root<R>(store: &Store, inst: &Instance, f: impl FnOnce(&Path) -> Result<R>) -> Result<R> {
    let rootfs = store.instance_dir(&inst.id).join("rootfs");
    match inst.status {
        Status::Running if mounts::is_mount_point(&rootfs) => f(&rootfs),
        Status::Created | Status::Exited => {
            let _lock = store.lock()?;
            let cur = crate::store::find_in(&store.load()?, &inst.id)?.clone();
            if !matches!(cur.status, Status::Created | Status::Exited) {
                bail!("instance {} changed state during cp: try again", inst.name);
            }
            instance_disk::mount(store, &cur)
                .with_context(|| format!("cannot mount the disk of {}", inst.name))?;
            let r = f(&rootfs);
            let u = instance_disk::unmount(store, &cur);
            let r = r?;
            u?;
            Ok(r)
        }
        _ => bail!(
            "instance {} is {}: cp works on running, created and exited instances; try again",
            inst.name,
            crate::lifecycle::status_text(inst, crate::util::now_secs())
        ),
    }
}

/// The directory holding `path`'s last component (resolved in `root` when
/// given, else on the host) and that component.
fn resolve_parent(root: Option<&OwnedFd>, path: &str) -> Result<(OwnedFd, OsString)> {
    let trimmed = path.trim_end_matches("/.").trim_end_matches('/');
    let p = Path::new(if trimmed.is_empty() { "/" } else { trimmed });
    let name = match p.file_name() {
        Some(n) => n.to_os_string(),
        // `/` itself, or a path ending in `..`: resolve it whole and use `.`.
        None => OsString::from("."),
    };
    let parent = if name == "." {
        p.to_path_buf()
    } else {
        p.parent().unwrap_or(Path::new("/")).to_path_buf()
    };
    let parent = if parent.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        parent
    };
    let dir = match root {
        Some(r) => open_in_root(
            r,
            &parent.to_string_lossy(),
            libc::O_DIRECTORY | libc::O_RDONLY,
        )
        .with_context(|| {
            format!(
                "cp: cannot open directory {} in the instance",
                parent.display()
            )
        })?,
        None => open_dir_path(&parent)?,
    };
    Ok((dir, name))
}

/// Copy entry `sname` of `sdir` to the destination path `dst` (in `root`
/// when given): into it when it is a directory, else as it.
fn copy_to(
    sdir: &OwnedFd,
    sname: &OsStr,
    contents: bool,
    root: Option<&OwnedFd>,
    dst: &str,
) -> Result<CopyReport> {
    let st = lstat_at(sdir.as_raw_fd(), sname)
        .with_context(|| format!("cp: no such source: {}", sname.to_string_lossy()))?;
    let mut report = CopyReport::default();
    let existing_dir = match root {
        Some(r) => open_in_root(r, dst, libc::O_DIRECTORY | libc::O_RDONLY).ok(),
        None => open_dir_path(Path::new(dst)).ok(),
    };
    if contents {
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            bail!("cp: the source of /. must be a directory");
        }
        let target = match existing_dir {
            Some(d) => d,
            None => {
                let (ddir, dname) = resolve_parent(root, dst)?;
                make_dir(ddir.as_raw_fd(), &dname)?;
                open_child_dir(ddir.as_raw_fd(), &dname)?
            }
        };
        let from = open_child_dir(sdir.as_raw_fd(), sname)?;
        copy_children(from.as_raw_fd(), target.as_raw_fd(), &mut report)?;
        set_mode(target.as_raw_fd(), st.st_mode)?;
        return Ok(report);
    }
    if dst.ends_with('/') && existing_dir.is_none() {
        bail!("cp: destination directory {dst} does not exist");
    }
    let (ddir, dname) = match existing_dir {
        Some(d) => (d, sname.to_os_string()),
        None => resolve_parent(root, dst)?,
    };
    if dname == "." || dname == ".." {
        bail!("cp: cannot write to {dst}: name a file or an existing directory");
    }
    copy_entry(
        sdir.as_raw_fd(),
        sname,
        ddir.as_raw_fd(),
        &dname,
        &mut report,
    )?;
    Ok(report)
}

fn copy_entry(
    sdir: RawFd,
    sname: &OsStr,
    ddir: RawFd,
    dname: &OsStr,
    report: &mut CopyReport,
) -> Result<()> {
    let st = lstat_at(sdir, sname)
        .with_context(|| format!("cp: cannot read {}", sname.to_string_lossy()))?;
    let what = || sname.to_string_lossy().into_owned();
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            remove_non_dir(ddir, dname);
            make_dir(ddir, dname)?;
            let from = open_child_dir(sdir, sname)?;
            let to = open_child_dir(ddir, dname)?;
            copy_children(from.as_raw_fd(), to.as_raw_fd(), report)?;
            set_mode(to.as_raw_fd(), st.st_mode)?;
        }
        libc::S_IFREG => {
            let from = open_at(sdir, sname, libc::O_RDONLY, 0)
                .with_context(|| format!("cp: cannot open {}", what()))?;
            remove_non_dir(ddir, dname);
            let to = open_at(
                ddir,
                dname,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                0o600,
            )
            .with_context(|| format!("cp: cannot create {}", dname.to_string_lossy()))?;
            let (mut from, mut to) = (File::from(from), File::from(to));
            report.bytes += io::copy(&mut from, &mut to)
                .with_context(|| format!("cp: cannot copy {} (is the disk full?)", what()))?;
            set_mode(to.as_raw_fd(), st.st_mode)?;
        }
        libc::S_IFLNK => {
            let buf = read_link(sdir, sname)?;
            remove_non_dir(ddir, dname);
            let target = CString::new(buf)?;
            let d = cstr(dname)?;
            // SAFETY: valid C strings and fd.
            let rc = unsafe { libc::symlinkat(target.as_ptr(), ddir, d.as_ptr()) };
            errno_result(rc as libc::c_long)
                .with_context(|| format!("cp: cannot create link {}", dname.to_string_lossy()))?;
        }
        _ => {
            report.skipped += 1;
            return Ok(());
        }
    }
    report.entries += 1;
    Ok(())
}

fn copy_children(from: RawFd, to: RawFd, report: &mut CopyReport) -> Result<()> {
    for n in list_dir(from)? {
        copy_entry(from, &n, to, &n, report)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("web:/etc/x").unwrap(),
            Endpoint::Instance {
                key: "web".into(),
                path: "/etc/x".into()
            }
        );
        assert_eq!(
            Endpoint::parse("./a:b").unwrap(),
            Endpoint::Host("./a:b".into())
        );
        assert_eq!(
            Endpoint::parse("/tmp/x").unwrap(),
            Endpoint::Host("/tmp/x".into())
        );
        assert!(Endpoint::parse("web:etc").is_err());
        assert_eq!(Endpoint::parse("-").unwrap(), Endpoint::Stream);
    }
}
