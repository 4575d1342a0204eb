//! The container's root filesystem: mounts in order, devices, /dev links, pivot_root,
//! masked and read-only paths. Runs in the container's mount namespace, in the child.
//!
//! Every path inside the rootfs is opened with `openat2(RESOLVE_IN_ROOT)` and mounted
//! on through `/proc/self/fd/N`, so a symlink planted in the image cannot redirect a
//! mount onto the host (CVE-2021-30465 class).

use crate::error::{Error, Result, SysContext};
use crate::mounts;
use crate::syscall::Syscall;
use nix::mount::{MntFlags, MsFlags};
use oci_spec::runtime::{Mount, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Everything rootfs set-up needs to know.
pub struct Ctx<'a> {
    /// The spec.
    pub spec: &'a Spec,
    /// Absolute rootfs path on the host.
    pub rootfs: &'a Path,
    /// Absolute bundle path (relative bind sources resolve against it).
    pub bundle: &'a Path,
    /// The container's cgroups, for `cgroup` mounts.
    pub cgroup: Option<&'a boxrun_cgroups::Cgroup>,
    /// The container has its own cgroup namespace.
    pub cgroupns: bool,
    /// The container has its own user namespace (devices are bind-mounted, not made).
    pub userns: bool,
    /// Waits until the runtime has made the container's cgroup directories (called
    /// before the first cgroup mount).
    pub cgroup_ready: &'a dyn Fn() -> Result<()>,
    /// The privileged calls.
    pub sys: &'a dyn Syscall,
    /// Bind sources the runtime took before the user namespace, by index in `mounts`
    /// ([`crate::bind_sources::take`]); empty without a user namespace.
    pub bind_sources: &'a [Option<OwnedFd>],
}

/// A path relative to the rootfs from an absolute in-container path.
fn rel(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(dirfd, path, flags, RESOLVE_IN_ROOT): resolution cannot leave `dirfd`.
pub fn open_in_root(
    root: RawFd,
    path: &Path,
    flags: libc::c_int,
) -> std::result::Result<OwnedFd, nix::Error> {
    let bytes = path.as_os_str().as_bytes();
    let c = CString::new(if bytes.is_empty() {
        b"." as &[u8]
    } else {
        bytes
    })
    .map_err(|_| nix::Error::EINVAL)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    };
    loop {
        // SAFETY: c is NUL-terminated, how is a valid open_how of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root,
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: openat2 returned a fresh fd.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let e = nix::Error::last();
        if e != nix::Error::EAGAIN && e != nix::Error::EINTR {
            return Err(e);
        }
    }
}

/// Create `path` (a directory, or an empty file when `file`) and its parents inside
/// `root`, and return an O_PATH fd on it.
pub fn mkdir_all_in_root(root: RawFd, path: &Path, file: bool) -> Result<OwnedFd> {
    let path = rel(path);
    if let Ok(fd) = open_in_root(root, &path, libc::O_PATH) {
        return Ok(fd);
    }
    let made = || format!("create {} in rootfs", path.display());
    let comps: Vec<_> = path.components().collect();
    // Usually only the last level is missing (`dev/pts` on a fresh /dev): make it in its
    // parent directly instead of walking every level from the root.
    let last_parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    match last_parent.map(|p| open_in_root(root, p, libc::O_PATH | libc::O_DIRECTORY)) {
        Some(Ok(parent)) => {
            make_in(&parent, comps[comps.len() - 1].as_os_str(), file).sys_ctx(made)?
        }
        _ => {
            let mut cur = PathBuf::new();
            for (i, c) in comps.iter().enumerate() {
                let parent = open_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY)
                    .sys_ctx(|| format!("open {} in rootfs", cur.display()))?;
                cur.push(c);
                let last = i + 1 == comps.len();
                if !last && open_in_root(root, &cur, libc::O_PATH).is_ok() {
                    continue;
                }
                make_in(&parent, c.as_os_str(), last && file)
                    .sys_ctx(|| format!("create {} in rootfs", cur.display()))?;
            }
        }
    }
    open_in_root(root, &path, libc::O_PATH).sys_ctx(|| format!("open {} in rootfs", path.display()))
}

/// Make `name` (one path component) in the directory `parent`: a directory, or an empty
/// file when `file`; one that exists already is fine.
fn make_in(parent: &OwnedFd, name: &std::ffi::OsStr, file: bool) -> nix::Result<()> {
    let name = CString::new(name.as_bytes()).map_err(|_| nix::Error::EINVAL)?;
    // SAFETY: parent is a valid dir fd, name is NUL-terminated.
    let r = unsafe {
        if file {
            let fd = libc::openat(
                parent.as_raw_fd(),
                name.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o644,
            );
            if fd >= 0 {
                libc::close(fd);
                0
            } else {
                -1
            }
        } else {
            libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755)
        }
    };
    match r {
        0 => Ok(()),
        _ => match nix::Error::last() {
            nix::Error::EEXIST => Ok(()),
            e => Err(e),
        },
    }
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn do_mount(
    sys: &dyn Syscall,
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    what: &dyn Fn() -> String,
) -> Result<()> {
    sys.mount(src, target, fstype, flags, data).sys_ctx(what)
}

/// Flags of the mount at `p` that a remount must keep (locked in a user namespace).
fn locked_flags(sys: &dyn Syscall, p: &Path) -> MsFlags {
    match sys.mount_flags(p) {
        Ok(f) => {
            use nix::sys::statvfs::FsFlags;
            let mut m = MsFlags::empty();
            for (a, b) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
                (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
            ] {
                if f.contains(a) {
                    m |= b;
                }
            }
            m
        }
        Err(_) => MsFlags::empty(),
    }
}

/// Remount a bind mount with `flags`, keeping flags the kernel locked on it.
fn remount_bind(sys: &dyn Syscall, target: &Path, flags: MsFlags) -> Result<()> {
    let f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
    match sys.mount(None, target, None, f, None) {
        Ok(()) => Ok(()),
        Err(nix::Error::EPERM) => {
            let keep = locked_flags(sys, target) & !MsFlags::MS_RDONLY;
            sys.mount(None, target, None, f | keep, None)
                .sys_ctx(|| format!("remount {}", target.display()))
        }
        Err(e) => Err(Error::sys(format!("remount {}", target.display()), e)),
    }
}

/// Step 1: make the mount tree private to the container and the rootfs a mount point.
pub fn prepare_root(ctx: &Ctx) -> Result<()> {
    let prop = match ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
        .as_deref()
    {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some("shared") => MsFlags::MS_SHARED,
        Some("rshared") => MsFlags::MS_SHARED | MsFlags::MS_REC,
        Some("slave") => MsFlags::MS_SLAVE,
        Some("rslave") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some("private") => MsFlags::MS_PRIVATE,
        Some("rprivate") => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Some("unbindable") => MsFlags::MS_UNBINDABLE,
        Some("runbindable") => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        Some(other) => {
            return Err(Error::Config(format!(
                "linux.rootfsPropagation {other:?} is not a propagation mode"
            )))
        }
    };
    // Default and non-shared modes: apply to the whole tree so nothing leaks back.
    // Shared modes, as runc: `/` shared first, so that a bind of a shared host mount
    // stays in the host's peer group (an `rshared` bind then propagates both ways);
    // only the rootfs's parent mount is made private. Shared and unbindable modes are
    // applied to the new root at the end (apply_root_propagation): an unbindable tree
    // could not be bind-mounted now.
    let base = if prop.contains(MsFlags::MS_SHARED) {
        prop
    } else if prop.contains(MsFlags::MS_PRIVATE) {
        MsFlags::MS_PRIVATE | MsFlags::MS_REC
    } else {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    };
    do_mount(ctx.sys, None, Path::new("/"), None, base, None, &|| {
        "set propagation of /".into()
    })?;
    // pivot_root needs the rootfs's parent mount not to be shared. A recursive slave or
    // private `base` leaves no shared mount in this namespace (a shared mount becomes a
    // slave, or private when it had no peer); a shared one needs the mountinfo scan.
    if prop.contains(MsFlags::MS_SHARED) {
        make_parent_mount_private(ctx.sys, ctx.rootfs)?;
    }
    do_mount(
        ctx.sys,
        Some(ctx.rootfs),
        ctx.rootfs,
        Some("bind"),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        &|| format!("bind rootfs {}", ctx.rootfs.display()),
    )?;
    Ok(())
}

/// Make the mount that `rootfs` lives on private when it is shared (runc's
/// `rootfsParentMountPrivate`): the rootfs bind and pivot_root must not propagate.
fn make_parent_mount_private(sys: &dyn Syscall, rootfs: &Path) -> Result<()> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("/proc/self/mountinfo", e))?;
    // The deepest mount point above the rootfs; of stacked mounts, the last (top) one.
    let parent = boxrun_common::mountinfo::parse_mountinfo(&text)
        .into_iter()
        .filter(|m| rootfs.starts_with(&m.mount_point))
        .fold(
            None::<boxrun_common::mountinfo::MountInfo>,
            |best, m| match best {
                Some(b) if b.mount_point.len() > m.mount_point.len() => Some(b),
                _ => Some(m),
            },
        );
    match parent {
        Some(m) if m.optional.iter().any(|o| o.starts_with("shared:")) => {
            let at = Path::new(&m.mount_point);
            do_mount(sys, None, at, None, MsFlags::MS_PRIVATE, None, &|| {
                format!("make {} private (parent mount of the rootfs)", at.display())
            })
        }
        _ => Ok(()),
    }
}

/// Apply rootfsPropagation on the new root once mounts are done.
pub fn apply_root_propagation(ctx: &Ctx) -> Result<()> {
    let p = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone());
    let flags = match p.as_deref() {
        Some("shared") => MsFlags::MS_SHARED,
        Some("rshared") => MsFlags::MS_SHARED | MsFlags::MS_REC,
        Some("private") => MsFlags::MS_PRIVATE,
        Some("rprivate") => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Some("unbindable") => MsFlags::MS_UNBINDABLE,
        Some("runbindable") => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return Ok(()),
    };
    do_mount(ctx.sys, None, Path::new("/"), None, flags, None, &|| {
        "set rootfsPropagation".into()
    })
}

/// Step 2: every entry of `mounts`, in order.
pub fn mount_all(ctx: &Ctx, rootfd: RawFd) -> Result<()> {
    let Some(list) = ctx.spec.mounts() else {
        return Ok(());
    };
    for (i, m) in list.iter().enumerate() {
        let opened = ctx.bind_sources.get(i).and_then(Option::as_ref);
        mount_one(ctx, rootfd, m, opened)?;
    }
    Ok(())
}

fn mount_one(ctx: &Ctx, rootfd: RawFd, m: &Mount, opened: Option<&OwnedFd>) -> Result<()> {
    let dest = m.destination();
    let typ = m.typ().as_deref().unwrap_or("");
    let opts = mounts::parse(m.options().as_deref().unwrap_or(&[]));
    let is_bind = opts.bind || typ == "bind";
    let what = || format!("mount {} on {}", typ_or_src(m), dest.display());

    if typ == "cgroup" || typ == "cgroup2" {
        let target = mkdir_all_in_root(rootfd, dest, false)?;
        let host_path = std::fs::read_link(fd_path(&target)).map_err(|e| Error::io(dest, e))?;
        if ctx.cgroup.is_some() {
            (ctx.cgroup_ready)()?;
        }
        return match ctx.cgroup {
            Some(cg) => cg
                .mount_into(&host_path, ctx.cgroupns, opts.flags & !MsFlags::MS_BIND)
                .map_err(|e| Error::context(format!("mount cgroup on {}", dest.display()), e)),
            None => Ok(()),
        };
    }

    if is_bind {
        let src = crate::bind_sources::source_path(m, ctx.bundle).ok_or_else(|| {
            Error::Config(format!(
                "mounts: bind mount on {} has no source",
                dest.display()
            ))
        })?;
        let meta = std::fs::metadata(opened.map(fd_path).as_ref().unwrap_or(&src))
            .map_err(|e| Error::field(format!("mounts: bind source {}", src.display()), e))?;
        let target = mkdir_all_in_root(rootfd, dest, !meta.is_dir())?;
        let tp = fd_path(&target);
        let resolved = std::fs::read_link(&tp).map_err(|e| Error::io(dest, e))?;
        crate::bind_sources::check_proc_target(ctx.rootfs, &resolved, m, &src)?;
        let mut bflags = MsFlags::MS_BIND;
        if opts.flags.contains(MsFlags::MS_REC) {
            bflags |= MsFlags::MS_REC;
        }
        match opened {
            Some(tree) => crate::bind_sources::attach(tree, &target, &what)?,
            None => do_mount(ctx.sys, Some(&src), &tp, None, bflags, None, &what)?,
        }
        // Reopen: the fd still points at the covered directory, not the new mount.
        let target = open_in_root(rootfd, &rel(dest), libc::O_PATH).sys_ctx(what)?;
        let tp = fd_path(&target);
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount_bind(ctx.sys, &tp, extra)?;
        }
        set_recursive(ctx.sys, &tp, &opts.recursive)?;
        for p in &opts.propagation {
            do_mount(ctx.sys, None, &tp, None, *p, None, &what)?;
        }
        return Ok(());
    }

    if typ == "proc" || typ == "sysfs" {
        ordinary_directory(rootfd, dest, typ)?;
    }
    let target = mkdir_all_in_root(rootfd, dest, false)?;
    let tp = fd_path(&target);
    let src = m
        .source()
        .as_deref()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(typ));
    let data = if opts.data.is_empty() {
        None
    } else {
        Some(opts.data.as_str())
    };
    let mut flags = opts.flags & !MsFlags::MS_REMOUNT;
    if is_dev(m) {
        // Populated first, read-only at the end (remount_dev_readonly), as runc.
        flags &= !MsFlags::MS_RDONLY;
    }
    let res = ctx.sys.mount(Some(&src), &tp, Some(typ), flags, data);
    match res {
        Ok(()) => {}
        Err(nix::Error::EPERM) | Err(nix::Error::EBUSY) if typ == "sysfs" && ctx.userns => {
            // A user namespace without its own network namespace may not mount sysfs.
            do_mount(
                ctx.sys,
                Some(Path::new("/sys")),
                &tp,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
                &what,
            )?;
        }
        Err(nix::Error::EPERM) if typ == "mqueue" && ctx.userns => {
            do_mount(
                ctx.sys,
                Some(Path::new("/dev/mqueue")),
                &tp,
                None,
                MsFlags::MS_BIND,
                None,
                &what,
            )?;
        }
        Err(e) => return Err(Error::sys(what(), e)),
    }
    if !opts.propagation.is_empty() || !opts.recursive.is_empty() {
        let target = open_in_root(rootfd, &rel(dest), libc::O_PATH).sys_ctx(what)?;
        let tp = fd_path(&target);
        set_recursive(ctx.sys, &tp, &opts.recursive)?;
        for p in &opts.propagation {
            do_mount(ctx.sys, None, &tp, None, *p, None, &what)?;
        }
    }
    Ok(())
}

/// proc and sysfs go only on a directory (or a path to be made): a symlink or file in
/// the image is refused with runc's words, which tools match.
fn ordinary_directory(rootfd: RawFd, dest: &Path, typ: &str) -> Result<()> {
    let found = match open_in_root(rootfd, &rel(dest), libc::O_PATH | libc::O_NOFOLLOW) {
        Ok(fd) => fd,
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("look up {}", dest.display()), e)),
    };
    let st = nix::sys::stat::fstat(found.as_raw_fd())
        .map_err(|e| Error::sys(format!("stat {}", dest.display()), e))?;
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return Ok(());
    }
    Err(Error::Config(format!(
        "mounts: {}: filesystem {typ:?} must be mounted on ordinary directory",
        dest.display()
    )))
}

fn typ_or_src(m: &Mount) -> String {
    m.typ()
        .clone()
        .or_else(|| m.source().as_ref().map(|s| s.display().to_string()))
        .unwrap_or_default()
}

/// The recursive mount options (`rro`, `rnosuid`...) on `target` and every mount below.
fn set_recursive(sys: &dyn Syscall, target: &Path, r: &mounts::Recursive) -> Result<()> {
    if r.is_empty() {
        return Ok(());
    }
    sys.mount_setattr_recursive(target, r.set, r.clr)
        .map_err(|e| {
            Error::context(
                format!(
                    "apply the recursive mount options to {} (mount_setattr needs Linux 5.12, rnosymfollow 5.14)",
                    target.display()
                ),
                e,
            )
        })
}

/// Step 4: move into the new root (pivot_root, or chroot with `--no-pivot`).
pub fn pivot(sys: &dyn Syscall, rootfs: &Path, no_pivot: bool) -> Result<()> {
    let root = Path::new("/");
    if no_pivot {
        hide_full_proc_and_sys(sys, rootfs)?;
        sys.chdir(rootfs)
            .sys_ctx(|| format!("chdir {}", rootfs.display()))?;
        do_mount(
            sys,
            Some(rootfs),
            root,
            None,
            MsFlags::MS_MOVE,
            None,
            &|| "move rootfs to /".into(),
        )?;
        sys.chroot(Path::new(".")).sys_ctx(|| "chroot".into())?;
        sys.chdir(root).sys_ctx(|| "chdir /".into())?;
        return Ok(());
    }
    let old = crate::util::open_owned(root, nix::fcntl::OFlag::O_DIRECTORY)
        .sys_ctx(|| "open /".into())?;
    let here = Path::new(".");
    sys.chdir(rootfs)
        .sys_ctx(|| format!("chdir {}", rootfs.display()))?;
    sys.pivot_root(here, here)
        .sys_ctx(|| format!("pivot_root {}", rootfs.display()))?;
    sys.fchdir(old.as_raw_fd())
        .sys_ctx(|| "fchdir old root".into())?;
    // The old root must not propagate the unmount to the host.
    do_mount(
        sys,
        None,
        here,
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
        &|| "make old root slave".into(),
    )?;
    sys.umount2(here, MntFlags::MNT_DETACH)
        .sys_ctx(|| "detach old root".into())?;
    sys.chdir(root).sys_ctx(|| "chdir /".into())?;
    Ok(())
}

fn is_dev(m: &Mount) -> bool {
    rel(m.destination()) == Path::new("dev")
}

/// A `/dev` mount with `ro`, mounted read-write to be populated, is made read-only
/// once the set-up is done with it (devices, links, /dev/pts, the console), as runc.
pub fn remount_dev_readonly(sys: &dyn Syscall, spec: &Spec) -> Result<()> {
    let Some(m) = spec.mounts().iter().flatten().rev().find(|m| is_dev(m)) else {
        return Ok(());
    };
    let opts = mounts::parse(m.options().as_deref().unwrap_or(&[]));
    if opts.bind || m.typ().as_deref() == Some("bind") || !opts.flags.contains(MsFlags::MS_RDONLY) {
        return Ok(());
    }
    let keep = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    remount_bind(sys, Path::new("/dev"), keep)
}

/// `--no-pivot` (runc's `msMoveRoot`): the kernel lets a process mount a fresh procfs
/// or sysfs only while a full one (its root mounted, nothing locked over it) is in its
/// mount namespace. Without pivot_root the host's stay there under the chroot, so each
/// full proc and sysfs mount outside the rootfs is detached (slave first, so the host
/// keeps its own), or covered with a tmpfs where it cannot be: the container cannot
/// get a procfs without its masked paths.
fn hide_full_proc_and_sys(sys: &dyn Syscall, rootfs: &Path) -> Result<()> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("/proc/self/mountinfo", e))?;
    let full = boxrun_common::mountinfo::parse_mountinfo(&text)
        .into_iter()
        .filter(|m| m.root == "/" && (m.fstype == "proc" || m.fstype == "sysfs"))
        .filter(|m| !Path::new(&m.mount_point).starts_with(rootfs));
    for m in full {
        let p = Path::new(&m.mount_point);
        let what = || format!("--no-pivot: detach {} {}", m.fstype, p.display());
        match sys.mount(None, p, None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None) {
            Ok(()) => {}
            // A parent was detached already.
            Err(nix::Error::ENOENT) => continue,
            Err(e) => return Err(Error::sys(what(), e)),
        }
        match sys.umount2(p, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::Error::EINVAL | nix::Error::EPERM) => do_mount(
                sys,
                Some(Path::new("tmpfs")),
                p,
                Some("tmpfs"),
                MsFlags::empty(),
                None,
                &what,
            )?,
            Err(e) => return Err(Error::sys(what(), e)),
        }
    }
    Ok(())
}

/// Step 5 (after pivot): masked paths, read-only paths, read-only root.
pub fn finalize(sys: &dyn Syscall, spec: &Spec) -> Result<()> {
    if let Some(l) = spec.linux() {
        if let Some(paths) = l.readonly_paths() {
            for p in paths {
                readonly_path(sys, Path::new(p))?;
            }
        }
        if let Some(paths) = l.masked_paths() {
            for p in paths {
                mask_path(sys, Path::new(p))?;
            }
        }
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        remount_bind(sys, Path::new("/"), MsFlags::MS_RDONLY)?;
    }
    Ok(())
}

/// A masked path: `/dev/null` bound over a file, a read-only tmpfs over a directory.
/// A directory is recognised by stat first: binding `/dev/null` on it fails only after
/// the kernel has cloned the mount, and undoing that clone waits for an expedited RCU
/// grace period (~0.15 ms each, two per `run` of the default bundle). When stat cannot
/// tell, the bind decides, as before.
fn mask_path(sys: &dyn Syscall, p: &Path) -> Result<()> {
    match sys.is_dir(p) {
        Ok(true) => return mask_dir(sys, p),
        Err(nix::Error::ENOENT) => return Ok(()),
        Ok(false) | Err(_) => {}
    }
    match sys.mount(
        Some(Path::new("/dev/null")),
        p,
        None,
        MsFlags::MS_BIND,
        None,
    ) {
        Ok(()) => Ok(()),
        Err(nix::Error::ENOENT) => Ok(()),
        Err(nix::Error::ENOTDIR) => mask_dir(sys, p),
        Err(e) => Err(Error::sys(format!("mask {}", p.display()), e)),
    }
}

fn mask_dir(sys: &dyn Syscall, p: &Path) -> Result<()> {
    do_mount(
        sys,
        Some(Path::new("tmpfs")),
        p,
        Some("tmpfs"),
        MsFlags::MS_RDONLY,
        None,
        &|| format!("mask {}", p.display()),
    )
}

fn readonly_path(sys: &dyn Syscall, p: &Path) -> Result<()> {
    match sys.mount(Some(p), p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None) {
        Ok(()) => {}
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("make {} read-only", p.display()), e)),
    }
    remount_bind(
        sys,
        p,
        MsFlags::MS_RDONLY | MsFlags::MS_REC | locked_flags(sys, p),
    )
}

/// Write `linux.sysctl` values through /proc/sys (after /proc is mounted).
pub fn write_sysctls(sys: &dyn Syscall, spec: &Spec) -> Result<()> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (k, v) in map {
        if k.is_empty() || k.contains("..") || k.contains('/') {
            return Err(Error::Config(format!("linux.sysctl: bad key {k:?}")));
        }
        let path = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
        sys.write_file(&path, v.as_bytes())
            .map_err(|e| Error::context(format!("linux.sysctl {k}={v}"), e))?;
    }
    Ok(())
}
