//! Safe tar extraction: nothing is ever written outside the target directory.
//!
//! Every entry path is normalised (leading `/` and `.` dropped, `..`
//! refused); parent directories are opened with `openat2(RESOLVE_IN_ROOT)`,
//! so symlinks already extracted resolve inside the target; the last
//! component is created with `O_EXCL|O_NOFOLLOW` relative to that parent.
//! Hard links are resolved the same way; device nodes are skipped. In layer
//! mode, OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) delete from the lower
//! layers already extracted, again resolved inside the target.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use crate::bail;
use crate::error::{Context, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Open a possibly gzip-compressed tar file as a byte stream.
pub fn open_maybe_gzip(path: &Path) -> Result<Box<dyn Read>> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut f, &mut magic)?;
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(
            f,
        ))))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        bail!(
            "{} is zstd-compressed, which boxctl does not support: decompress it first",
            path.display()
        )
    } else {
        Ok(Box::new(BufReader::new(f)))
    }
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// Names of the entries of a tar file (normalised), for format sniffing.
pub fn list_entries(path: &Path) -> Result<Vec<String>> {
    let mut ar = tar::Archive::new(open_maybe_gzip(path)?);
    let mut names = Vec::new();
    for e in ar
        .entries()
        .with_context(|| format!("{} is not a tar archive", path.display()))?
    {
        let e = e.with_context(|| format!("{} is not a valid tar archive", path.display()))?;
        let p = e.path_bytes();
        if let Ok(n) = normalize(&p) {
            names.push(n.to_string_lossy().into_owned());
        }
        if names.len() > 100_000 {
            break;
        }
    }
    Ok(names)
}

/// Normalise an archive path: relative, no `.`, no `..` (refused).
pub fn normalize(raw: &[u8]) -> Result<PathBuf> {
    let p = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => bail!(
                "archive entry {:?} points outside the target directory: refusing the archive",
                p
            ),
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

/// Statistics of one extraction.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extracted {
    /// Entries written.
    pub entries: u64,
    /// Device nodes skipped.
    pub skipped_devices: u64,
}

/// Extract the tar stream `reader` into `target` (an existing directory).
/// `layer`: treat OCI whiteouts as deletions (they must already have been
/// applied with [`apply_whiteouts`]; here they are skipped).
pub fn extract(reader: impl Read, target: &Path, layer: bool) -> Result<Extracted> {
    let root = Root::open(target)?;
    let mut ar = tar::Archive::new(reader);
    let mut stats = Extracted::default();
    for entry in ar.entries().context("not a tar archive")? {
        let mut entry = entry.context("damaged tar archive")?;
        let rel = normalize(&entry.path_bytes())?;
        if rel.as_os_str().is_empty() {
            continue; // the root itself
        }
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if layer && name.starts_with(WHITEOUT_PREFIX) {
            continue;
        }
        let header = entry.header().clone();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        let mtime = header.mtime().unwrap_or(0) as i64;
        let kind = header.entry_type();
        let (parent, cname) = root.parent_of(&rel, true)?;
        let pfd = parent.as_raw_fd();
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                if let Some(st) = lstat_at(pfd, &cname) {
                    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                        remove_at(pfd, &cname)?;
                    }
                }
                // SAFETY: valid fd and C string.
                let rc = unsafe { libc::mkdirat(pfd, cname.as_ptr(), 0o700) };
                if rc != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
                    return Err(io::Error::last_os_error())
                        .with_context(|| format!("cannot create directory {}", rel.display()));
                }
                let fd = open_at(
                    pfd,
                    &cname,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                )
                .with_context(|| format!("cannot open directory {}", rel.display()))?;
                chown_chmod(fd.as_raw_fd(), uid, gid, mode)?;
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                remove_existing(pfd, &cname)?;
                let fd = open_at(
                    pfd,
                    &cname,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                )
                .with_context(|| format!("cannot create {}", rel.display()))?;
                let mut file = File::from(fd);
                io::copy(&mut entry, &mut file).with_context(|| {
                    format!("cannot write {} (is the disk full?)", rel.display())
                })?;
                chown_chmod(file.as_raw_fd(), uid, gid, mode)?;
                let ts = [
                    libc::timespec {
                        tv_sec: mtime,
                        tv_nsec: 0,
                    },
                    libc::timespec {
                        tv_sec: mtime,
                        tv_nsec: 0,
                    },
                ];
                // SAFETY: valid fd and a two-element timespec array.
                unsafe { libc::futimens(file.as_raw_fd(), ts.as_ptr()) };
            }
            T::Symlink => {
                let target_bytes = entry
                    .link_name_bytes()
                    .with_context(|| format!("symlink {} has no target", rel.display()))?
                    .into_owned();
                remove_existing(pfd, &cname)?;
                let t = CString::new(target_bytes)?;
                // SAFETY: valid C strings and fd.
                if unsafe { libc::symlinkat(t.as_ptr(), pfd, cname.as_ptr()) } != 0 {
                    return Err(io::Error::last_os_error())
                        .with_context(|| format!("cannot create symlink {}", rel.display()));
                }
                // SAFETY: as above; AT_SYMLINK_NOFOLLOW changes the link itself.
                unsafe { libc::fchownat(pfd, cname.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) };
            }
            T::Link => {
                let link = entry
                    .link_name_bytes()
                    .with_context(|| format!("hard link {} has no target", rel.display()))?
                    .into_owned();
                let link_rel = normalize(&link)?;
                let src = root
                    .resolve(&link_rel, libc::O_PATH | libc::O_NOFOLLOW)
                    .with_context(|| {
                        format!(
                            "hard link {} -> {}: target missing",
                            rel.display(),
                            link_rel.display()
                        )
                    })?;
                remove_existing(pfd, &cname)?;
                let empty = CString::default();
                // SAFETY: valid fds and C strings; AT_EMPTY_PATH links the O_PATH fd itself.
                let rc = unsafe {
                    libc::linkat(
                        src.as_raw_fd(),
                        empty.as_ptr(),
                        pfd,
                        cname.as_ptr(),
                        libc::AT_EMPTY_PATH,
                    )
                };
                if rc != 0 {
                    return Err(io::Error::last_os_error())
                        .with_context(|| format!("cannot create hard link {}", rel.display()));
                }
            }
            T::Fifo => {
                remove_existing(pfd, &cname)?;
                // SAFETY: valid fd and C string.
                let rc = unsafe { libc::mknodat(pfd, cname.as_ptr(), libc::S_IFIFO | mode, 0) };
                if rc != 0 {
                    return Err(io::Error::last_os_error())
                        .with_context(|| format!("cannot create fifo {}", rel.display()));
                }
            }
            T::Char | T::Block => {
                stats.skipped_devices += 1;
                continue;
            }
            _ => continue,
        }
        stats.entries += 1;
    }
    Ok(stats)
}

/// Apply the whiteouts of one layer to `target` (the lower layers extracted so far).
pub fn apply_whiteouts(reader: impl Read, target: &Path) -> Result<()> {
    let root = Root::open(target)?;
    let mut ar = tar::Archive::new(reader);
    for entry in ar.entries().context("not a tar archive")? {
        let entry = entry.context("damaged tar archive")?;
        let rel = normalize(&entry.path_bytes())?;
        let Some(name) = rel.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if name == OPAQUE {
            let dir = rel.parent().unwrap_or(Path::new(""));
            let Ok(fd) = root.resolve(dir, libc::O_RDONLY | libc::O_DIRECTORY) else {
                continue; // nothing below to hide
            };
            let proc_path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            for child in std::fs::read_dir(&proc_path)
                .with_context(|| format!("cannot list {}", dir.display()))?
            {
                let child = child?;
                let c = CString::new(child.file_name().as_bytes())?;
                remove_at(fd.as_raw_fd(), &c)?;
            }
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
                bail!(
                    "whiteout {} is malformed: refusing the layer",
                    rel.display()
                );
            }
            let target_rel = rel.with_file_name(hidden);
            let (parent, cname) = match root.parent_of(&target_rel, false) {
                Ok(x) => x,
                Err(_) => continue, // parent missing: nothing to delete
            };
            if lstat_at(parent.as_raw_fd(), &cname).is_some() {
                remove_at(parent.as_raw_fd(), &cname)?;
            }
        }
    }
    Ok(())
}

/// The extraction target, held open.
struct Root {
    fd: OwnedFd,
}

impl Root {
    fn open(target: &Path) -> Result<Root> {
        // O_PATH: a handle to resolve from, never read (std adds O_CLOEXEC).
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(target)
            .with_context(|| format!("cannot open {}", target.display()))?;
        Ok(Root {
            fd: OwnedFd::from(dir),
        })
    }

    /// Open `rel` (resolved inside the root, symlinks included) with `flags`.
    fn resolve(&self, rel: &Path, flags: i32) -> io::Result<OwnedFd> {
        crate::fs_at::open_in_root_bytes(&self.fd, rel.as_os_str().as_bytes(), flags)
    }

    /// The directory holding `rel`'s last component (created if `create`)
    /// and that component's name.
    fn parent_of(&self, rel: &Path, create: bool) -> Result<(OwnedFd, CString)> {
        let name = rel
            .file_name()
            .with_context(|| format!("archive entry {} has no name", rel.display()))?;
        let cname = CString::new(name.as_bytes())?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        match self.resolve(parent, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(fd) => return Ok((fd, cname)),
            Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot open directory {}", parent.display()))
            }
        }
        // Create the missing directories one level at a time, each inside the root.
        let mut prefix = PathBuf::new();
        for comp in parent.components() {
            let up = self
                .resolve(&prefix, libc::O_PATH | libc::O_DIRECTORY)
                .with_context(|| format!("cannot open directory {}", prefix.display()))?;
            prefix.push(comp);
            if self
                .resolve(&prefix, libc::O_PATH | libc::O_DIRECTORY)
                .is_ok()
            {
                continue;
            }
            let c = CString::new(comp.as_os_str().as_bytes())?;
            // SAFETY: valid fd and C string.
            let rc = unsafe { libc::mkdirat(up.as_raw_fd(), c.as_ptr(), 0o755) };
            if rc != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
                return Err(io::Error::last_os_error())
                    .with_context(|| format!("cannot create directory {}", prefix.display()));
            }
        }
        let fd = self
            .resolve(parent, libc::O_PATH | libc::O_DIRECTORY)
            .with_context(|| format!("cannot open directory {}", parent.display()))?;
        Ok((fd, cname))
    }
}

fn open_at(dir: RawFd, name: &CString, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: valid fd and C string.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by openat.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn lstat_at(dir: RawFd, name: &CString) -> Option<libc::stat> {
    // SAFETY: zeroed stat is valid; fstatat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, C string, and stat buffer.
    let rc = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    (rc == 0).then_some(st)
}

/// Remove `name` in `dir` whatever it is (directories recursively).
fn remove_at(dir: RawFd, name: &CString) -> Result<()> {
    // SAFETY: valid fd and C string.
    if unsafe { libc::unlinkat(dir, name.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOENT) => Ok(()),
        Some(libc::EISDIR) | Some(libc::EPERM) => {
            // Recursive removal through the held parent fd; remove_dir_all never follows symlinks.
            let p = PathBuf::from(format!("/proc/self/fd/{dir}"))
                .join(OsStr::from_bytes(name.as_bytes()));
            std::fs::remove_dir_all(&p).with_context(|| format!("cannot remove {}", p.display()))
        }
        _ => Err(e).context("cannot remove an entry replaced by the archive"),
    }
}

fn remove_existing(dir: RawFd, name: &CString) -> Result<()> {
    if lstat_at(dir, name).is_some() {
        remove_at(dir, name)?;
    }
    Ok(())
}

fn chown_chmod(fd: RawFd, uid: u32, gid: u32, mode: u32) -> Result<()> {
    // SAFETY: valid fd.
    unsafe {
        libc::fchown(fd, uid, gid);
        if libc::fchmod(fd, mode) != 0 {
            return Err(io::Error::last_os_error()).context("cannot set permissions");
        }
    }
    Ok(())
}

/// Open the file `rel` inside `dir`, resolving symlinks inside `dir` only.
pub fn open_in(dir: &Path, rel: &Path) -> Result<File> {
    let root = Root::open(dir)?;
    let fd = root
        .resolve(rel, libc::O_RDONLY)
        .with_context(|| format!("cannot open {} in {}", rel.display(), dir.display()))?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("boxctl-tar-{}", crate::util::random_id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        // set_path refuses `..`; write the raw name bytes like a hostile archive would.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    fn build(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = if *kind == tar::EntryType::Regular {
                header(path, *kind, data.len() as u64)
            } else {
                header(path, *kind, 0)
            };
            if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                h.set_link_name(data).unwrap();
                h.set_cksum();
                b.append(&h, io::empty()).unwrap();
            } else if *kind == tar::EntryType::Regular {
                b.append(&h, data.as_bytes()).unwrap();
            } else {
                b.append(&h, io::empty()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn plain_extraction() {
        let d = tmpdir();
        let t = d.join("t");
        std::fs::create_dir(&t).unwrap();
        let data = build(&[
            ("/etc/", tar::EntryType::Directory, ""),
            ("./etc/hostname", tar::EntryType::Regular, "box\n"),
            ("deep/a/b/c", tar::EntryType::Regular, "x"),
            ("etc/link", tar::EntryType::Symlink, "hostname"),
            ("etc/hard", tar::EntryType::Link, "etc/hostname"),
            ("dev/null", tar::EntryType::Char, ""),
        ]);
        let s = extract(&data[..], &t, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.join("etc/hostname")).unwrap(),
            "box\n"
        );
        assert_eq!(std::fs::read_to_string(t.join("deep/a/b/c")).unwrap(), "x");
        assert_eq!(
            std::fs::read_to_string(t.join("etc/hard")).unwrap(),
            "box\n"
        );
        assert_eq!(s.skipped_devices, 1);
        assert!(!t.join("dev/null").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn nothing_escapes() {
        let d = tmpdir();
        let t = d.join("t");
        std::fs::create_dir(&t).unwrap();
        // `..` is refused outright.
        let bad = build(&[("../escape", tar::EntryType::Regular, "x")]);
        assert!(extract(&bad[..], &t, false).is_err());
        assert!(!d.join("escape").exists());
        // A symlink to the outside is followed only inside the target.
        let sym = build(&[
            ("out", tar::EntryType::Symlink, &d.display().to_string()),
            ("out/escape2", tar::EntryType::Regular, "x"),
            ("up", tar::EntryType::Symlink, "../../../.."),
            ("up/escape3", tar::EntryType::Regular, "x"),
        ]);
        let _ = extract(&sym[..], &t, false);
        assert!(!d.join("escape2").exists());
        assert!(!Path::new("/escape3").exists());
        // A hard link to a host file is resolved inside the target (and fails).
        let hard = build(&[("h", tar::EntryType::Link, "/etc/passwd")]);
        assert!(extract(&hard[..], &t, false).is_err());
        // Whiteouts pointing outside are refused or resolved inside.
        std::fs::write(d.join("victim"), "v").unwrap();
        let wh = build(&[("../.wh.victim", tar::EntryType::Regular, "")]);
        assert!(apply_whiteouts(&wh[..], &t).is_err());
        let wh2 = build(&[("out/.wh.victim", tar::EntryType::Regular, "")]);
        apply_whiteouts(&wh2[..], &t).unwrap();
        assert!(d.join("victim").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn whiteouts_delete_lower_layers() {
        let d = tmpdir();
        let lower = build(&[
            ("a/keep", tar::EntryType::Regular, "k"),
            ("a/gone", tar::EntryType::Regular, "g"),
            ("o/old", tar::EntryType::Regular, "o"),
        ]);
        extract(&lower[..], &d, true).unwrap();
        let upper = build(&[
            ("a/.wh.gone", tar::EntryType::Regular, ""),
            ("o/.wh..wh..opq", tar::EntryType::Regular, ""),
            ("o/new", tar::EntryType::Regular, "n"),
        ]);
        apply_whiteouts(&upper[..], &d).unwrap();
        extract(&upper[..], &d, true).unwrap();
        assert!(d.join("a/keep").exists());
        assert!(!d.join("a/gone").exists());
        assert!(!d.join("a/.wh.gone").exists());
        assert!(!d.join("o/old").exists());
        assert!(d.join("o/new").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
