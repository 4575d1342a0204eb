//! Device nodes in the container's /dev: the defaults every container gets
//! (null, zero, full, random, urandom, tty), `linux.devices`, and the /dev symlinks.
//! In a user namespace, where mknod is not allowed, host devices are bind-mounted.

use crate::error::{Error, Result, SysContext};
use crate::rootfs::{mkdir_all_in_root, open_in_root};
use crate::syscall::Syscall;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// A device to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dev {
    /// In-container path.
    pub path: PathBuf,
    /// 'c', 'b' or 'p'.
    pub kind: char,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// The devices every Linux container gets (runtime-spec config-linux.md "Default Devices").
pub fn defaults() -> Vec<Dev> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, ma, mi)| Dev {
        path: PathBuf::from(p),
        kind: 'c',
        major: ma,
        minor: mi,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

fn from_spec(d: &LinuxDevice) -> Result<Dev> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::P => 'p',
        LinuxDeviceType::A => {
            return Err(Error::Config(format!(
                "linux.devices {}: type \"a\" is only valid in cgroup device rules",
                d.path().display()
            )))
        }
    };
    if !d.path().is_absolute() {
        return Err(Error::Config(format!(
            "linux.devices {}: path must be absolute",
            d.path().display()
        )));
    }
    Ok(Dev {
        path: d.path().clone(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// The full device list for a spec: `linux.devices` first, then defaults not overridden.
pub fn list(spec: &Spec) -> Result<Vec<Dev>> {
    let mut out = Vec::new();
    if let Some(devs) = spec.linux().as_ref().and_then(|l| l.devices().as_ref()) {
        for d in devs {
            out.push(from_spec(d)?);
        }
    }
    for d in defaults() {
        if !out.iter().any(|o| o.path == d.path) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Whether the spec bind-mounts the host's /dev (then nothing is created).
pub fn dev_is_bind(spec: &Spec) -> bool {
    spec.mounts().as_ref().is_some_and(|ms| {
        ms.iter().any(|m| {
            m.destination() == Path::new("/dev")
                && (m.typ().as_deref() == Some("bind")
                    || m.options()
                        .as_ref()
                        .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind")))
        })
    })
}

/// Create every device under the rootfs (before pivot_root).
pub fn create_all(sys: &dyn Syscall, root: RawFd, devs: &[Dev], userns: bool) -> Result<()> {
    // With umask 0, mknod alone gives a node its exact mode (restored below).
    let old_umask = sys.umask(0);
    // SAFETY: plain getters.
    let root_ids = unsafe { libc::geteuid() == 0 && libc::getegid() == 0 };
    let mut dirs = Vec::new();
    let r = devs
        .iter()
        .try_for_each(|d| create(sys, root, d, userns, root_ids, &mut dirs));
    sys.umask(old_umask);
    r
}

/// The parent directory of device nodes, opened once for all of them (most are in /dev).
struct ParentDir {
    rel: PathBuf,
    fd: OwnedFd,
    /// mknod as root gives nodes root:root and the requested mode: the directory is
    /// not set-group-ID and has no default ACL (which would replace the umask).
    plain: bool,
}

fn parent_dir<'a>(root: RawFd, rel: &Path, dirs: &'a mut Vec<ParentDir>) -> Result<&'a ParentDir> {
    if let Some(i) = dirs.iter().position(|p| p.rel == rel) {
        return Ok(&dirs[i]);
    }
    let pfd = mkdir_all_in_root(root, rel, false)?;
    let fd = open_in_root(root, rel, libc::O_DIRECTORY | libc::O_RDONLY)
        .sys_ctx(|| format!("open {}", rel.display()))?;
    drop(pfd);
    // SAFETY: zeroed stat is valid storage.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat of an open fd into valid storage.
    let failed = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0;
    let setgid = failed || st.st_mode & libc::S_ISGID != 0;
    // SAFETY: size query (NULL buffer, 0 length) of an attribute on an open fd.
    let acl = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            c"system.posix_acl_default".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    } >= 0
        || !matches!(
            nix::Error::last(),
            nix::Error::ENODATA | nix::Error::EOPNOTSUPP
        );
    dirs.push(ParentDir {
        rel: rel.to_path_buf(),
        fd,
        plain: !setgid && !acl,
    });
    Ok(&dirs[dirs.len() - 1])
}

fn create(
    sys: &dyn Syscall,
    root: RawFd,
    d: &Dev,
    userns: bool,
    root_ids: bool,
    dirs: &mut Vec<ParentDir>,
) -> Result<()> {
    let rel: PathBuf = d.path.strip_prefix("/").unwrap_or(&d.path).to_path_buf();
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel
        .file_name()
        .ok_or_else(|| Error::Config(format!("linux.devices: bad path {}", d.path.display())))?;
    let pd = parent_dir(root, parent, dirs)?;
    let pdir = &pd.fd;
    let cname = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(name))
        .map_err(|e| Error::invalid_config("device name with NUL", e))?;
    let kind = match d.kind {
        'c' => libc::S_IFCHR,
        'b' => libc::S_IFBLK,
        _ => libc::S_IFIFO,
    };
    let dev = libc::makedev(d.major as u32, d.minor as u32);
    let mknod = || sys.mknodat(pdir.as_raw_fd(), &cname, kind | d.mode, dev);
    if !userns {
        match mknod() {
            Ok(()) => {}
            Err(nix::Error::EEXIST) => {
                remove_same_device(pdir, &cname, d, kind, dev)?;
                mknod().sys_ctx(|| format!("mknod {}", d.path.display()))?;
            }
            Err(e) => return Err(Error::sys(format!("mknod {}", d.path.display()), e)),
        }
    } else {
        remove_same_device(pdir, &cname, d, kind, dev)?;
        // Bind the host device over an empty file.
        // SAFETY: valid dir fd and name.
        let fd = unsafe {
            libc::openat(
                pdir.as_raw_fd(),
                cname.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o644,
            )
        };
        if fd < 0 {
            return Err(Error::sys(
                format!("create {}", d.path.display()),
                nix::Error::last(),
            ));
        }
        // SAFETY: fd was just opened.
        unsafe { libc::close(fd) };
        let target = open_in_root(root, &rel, libc::O_PATH)
            .sys_ctx(|| format!("open {}", d.path.display()))?;
        sys.mount(
            Some(&d.path),
            &PathBuf::from(format!("/proc/self/fd/{}", target.as_raw_fd())),
            None,
            nix::mount::MsFlags::MS_BIND,
            None,
        )
        .sys_ctx(|| format!("bind device {}", d.path.display()))?;
        return Ok(());
    }
    if pd.plain && root_ids && d.uid == 0 && d.gid == 0 {
        return Ok(());
    }
    sys.fchownat(pdir.as_raw_fd(), &cname, d.uid, d.gid)
        .sys_ctx(|| format!("chown {}", d.path.display()))?;
    // A default ACL replaces the umask; set the exact mode.
    sys.fchmodat(pdir.as_raw_fd(), &cname, d.mode)
        .sys_ctx(|| format!("chmod {}", d.path.display()))
}

/// A file already at a device's path must be the same device (config-linux.md: otherwise
/// the runtime MUST generate an error); a matching node is removed, to be made again.
fn remove_same_device(
    pdir: &OwnedFd,
    name: &CString,
    d: &Dev,
    kind: libc::mode_t,
    dev: libc::dev_t,
) -> Result<()> {
    // SAFETY: zeroed stat is valid storage.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid dir fd, NUL-terminated name, valid stat pointer.
    if unsafe {
        libc::fstatat(
            pdir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } != 0
    {
        return Ok(());
    }
    let same_kind = st.st_mode & libc::S_IFMT == kind;
    let same_dev = d.kind == 'p' || st.st_rdev == dev;
    if !(same_kind && same_dev) {
        return Err(Error::Config(format!(
            "linux.devices {}: a different file already exists at that path",
            d.path.display()
        )));
    }
    // SAFETY: valid dir fd and name.
    unsafe { libc::unlinkat(pdir.as_raw_fd(), name.as_ptr(), 0) };
    Ok(())
}

/// The standard /dev symlinks, and /dev/ptmx pointing at the container's devpts.
pub fn create_symlinks(sys: &dyn Syscall, root: RawFd) -> Result<()> {
    let dev = match open_in_root(root, Path::new("dev"), libc::O_DIRECTORY | libc::O_RDONLY) {
        Ok(fd) => fd,
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys("open /dev", e)),
    };
    let mut links = vec![
        (c"fd", c"/proc/self/fd"),
        (c"stdin", c"/proc/self/fd/0"),
        (c"stdout", c"/proc/self/fd/1"),
        (c"stderr", c"/proc/self/fd/2"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push((c"core", c"/proc/kcore"));
    }
    for (name, target) in links {
        match sys.symlinkat(target, dev.as_raw_fd(), name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => {
                let name = name.to_string_lossy();
                return Err(Error::sys(format!("symlink /dev/{name}"), e));
            }
        }
    }
    // /dev/ptmx -> pts/ptmx, replacing anything the image has.
    let (n, t) = (c"ptmx", c"pts/ptmx");
    // SAFETY: valid fd and string.
    unsafe { libc::unlinkat(dev.as_raw_fd(), n.as_ptr(), 0) };
    sys.symlinkat(t, dev.as_raw_fd(), n)
        .sys_ctx(|| "symlink /dev/ptmx".into())
}

/// The device cgroup rules the container gets, as runc computes them: the spec's
/// `linux.resources.devices` in order, then the devices every container may use (null,
/// zero, full, random, urandom, tty, console, ptmx, /dev/pts/*, /dev/net/tun and mknod
/// of anything). `linux.devices` entries are not allowed implicitly: a rule denying one
/// is honoured.
pub fn cgroup_rules(spec: &Spec) -> Result<Vec<oci_spec::runtime::LinuxDeviceCgroup>> {
    let mut v: Vec<serde_json::Value> = Vec::new();
    if let Some(rules) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_ref())
    {
        for r in rules {
            v.push(serde_json::to_value(r).map_err(|e| Error::json("encode device rule", e))?);
        }
    }
    let defaults = [
        ("c", None, None, "m"),
        ("b", None, None, "m"),
        ("c", Some(1), Some(3), "rwm"),
        ("c", Some(1), Some(8), "rwm"),
        ("c", Some(1), Some(7), "rwm"),
        ("c", Some(5), Some(0), "rwm"),
        ("c", Some(1), Some(5), "rwm"),
        ("c", Some(1), Some(9), "rwm"),
        ("c", Some(5), Some(1), "rwm"),
        ("c", Some(136), None, "rwm"),
        ("c", Some(5), Some(2), "rwm"),
        ("c", Some(10), Some(200), "rwm"),
    ];
    for (t, ma, mi, acc) in defaults {
        let mut r = serde_json::json!({"allow": true, "type": t, "access": acc});
        if let Some(ma) = ma {
            r["major"] = ma.into();
        }
        if let Some(mi) = mi {
            r["minor"] = mi.into();
        }
        v.push(r);
    }
    serde_json::from_value(serde_json::Value::Array(v)).map_err(|e| Error::field("device rules", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_devices_override_defaults() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "linux": {"devices": [
                {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 432, "uid": 5, "gid": 6},
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}
            ]}
        }))
        .expect("spec");
        let l = list(&spec).expect("list");
        assert_eq!(
            l.iter()
                .filter(|d| d.path == Path::new("/dev/null"))
                .count(),
            1
        );
        let null = l
            .iter()
            .find(|d| d.path == Path::new("/dev/null"))
            .expect("null");
        assert_eq!((null.mode, null.uid, null.gid), (0o660, 5, 6));
        assert!(l
            .iter()
            .any(|d| d.path == Path::new("/dev/fuse") && d.major == 10));
        assert_eq!(l.len(), 7);
    }
}
