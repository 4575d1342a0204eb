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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result};
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
    with_root(store, &inst, |root| {
        let root = open_dir_path(root)?;
        match (&src, &dst) {
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
        }
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

fn cstr(s: &OsStr) -> Result<CString> {
    Ok(CString::new(s.as_bytes())?)
}

fn errno_result(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn open_dir_path(p: &Path) -> Result<OwnedFd> {
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
fn open_in_root(root: &OwnedFd, path: &str, flags: i32) -> io::Result<OwnedFd> {
    let c = CString::new(path.trim_start_matches('/').as_bytes())?;
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

fn lstat_at(dir: RawFd, name: &OsStr) -> io::Result<libc::stat> {
    let c = CString::new(name.as_bytes())?;
    // SAFETY: stat is plain data, filled by fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, C string and stat buffer.
    let rc = unsafe { libc::fstatat(dir, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    errno_result(rc as libc::c_long)?;
    Ok(st)
}

fn open_at(dir: RawFd, name: &OsStr, flags: i32, mode: libc::mode_t) -> io::Result<OwnedFd> {
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

fn open_child_dir(dir: RawFd, name: &OsStr) -> Result<OwnedFd> {
    open_at(dir, name, libc::O_DIRECTORY | libc::O_RDONLY, 0)
        .with_context(|| format!("cp: cannot open directory {}", name.to_string_lossy()))
}

/// `mkdirat`, an existing directory (not a symlink to one) being fine.
fn make_dir(dir: RawFd, name: &OsStr) -> Result<()> {
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

fn set_mode(fd: RawFd, mode: libc::mode_t) -> Result<()> {
    // SAFETY: valid fd.
    let rc = unsafe { libc::fchmod(fd, mode & 0o7777) };
    errno_result(rc as libc::c_long).context("cp: cannot set a mode")?;
    Ok(())
}

/// Remove a non-directory `name` in `dir` (so a copy replaces it).
fn remove_non_dir(dir: RawFd, name: &OsStr) {
    if let Ok(st) = lstat_at(dir, name) {
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            if let Ok(c) = CString::new(name.as_bytes()) {
                // SAFETY: valid fd and C string.
                unsafe { libc::unlinkat(dir, c.as_ptr(), 0) };
            }
        }
    }
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

/// Write entry `sname` of `sdir` (a tree, recursively) as a tar stream
/// named by its last component, symlinks as links.
fn write_tar(sdir: &OwnedFd, sname: &OsStr, out: &mut dyn Write) -> Result<CopyReport> {
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

fn tar_entry(
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

fn read_link(dir: RawFd, name: &OsStr) -> Result<Vec<u8>> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid fd, C string and buffer of the given length.
    let n = unsafe { libc::readlinkat(dir, c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let n = errno_result(n as libc::c_long)
        .with_context(|| format!("cp: cannot read link {}", name.to_string_lossy()))?;
    buf.truncate(n as usize);
    Ok(buf)
}

fn list_dir(fd: RawFd) -> Result<Vec<OsString>> {
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
