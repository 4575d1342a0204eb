//! `restore`: bring a checkpointed container back with CRIU (see [`crate::criu`]).
//! The bundle is validated and the state directory and cgroups are made as by
//! `create`; then `criu restore` rebuilds the namespaces, mounts and processes from
//! the images on the bundle's rootfs, in the container's cgroups. The container is
//! then `running` with the restored init's new host pid. Without `--detach`, boxrun
//! waits for it as `run` does, as its subreaper, and deletes it; with
//! `--no-subreaper` it cannot wait (the init is not its child) and returns at once.

use super::checkpoint::external_mounts;
use super::create::{host, validate, write_pid_file, CreateOpts};
use super::delete::destroy;
use crate::args::RestoreArgs;
use crate::criu::{self, Criu};
use crate::error::{Error, Result};
use crate::procfs;
use crate::state::{StateDir, Status};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `restore`: restore the container `a.criu.id` from its images; returns the exit
/// code (0 with `--detach`).
pub fn restore(root: &Path, criu_bin: Option<&str>, a: &RestoreArgs) -> Result<i32> {
    if a.console_socket.is_some() {
        return Err(Error::Other(
            "restore --console-socket is not supported by boxrun: restore a container without a terminal".into(),
        ));
    }
    let criu = Criu::ready(criu_bin)?;
    let (images, work) = criu::dirs(&a.criu)?;
    let mut args = criu::common_args(&a.criu, &images)?;
    let opts = CreateOpts {
        root: root.to_path_buf(),
        id: a.criu.id.clone(),
        bundle: a.bundle.clone(),
        ..CreateOpts::default()
    };
    let (valid, cgroup) = validate::validate(&opts, false, false)?;
    let mut host = host::prepare(&opts, &valid, cgroup)?;
    let mut cg = host.cgroup.clone().ok_or_else(|| {
        Error::Other(
            "restore needs a cgroup of its own and none is writable here: restore as root or from a delegated cgroup".into(),
        )
    })?;
    if !cg.is_unified() {
        let made = cg.materialize_or_keep(Some(&valid.resources));
        host.cgroup = Some(cg.clone());
        host.guard.cgroup = Some(cg.clone());
        host.record.cgroup = Some(cg.clone());
        made?;
    }
    for h in &cg.hierarchies {
        let rel = h.path.strip_prefix(&h.mount_point).unwrap_or(&h.path);
        let mut v = OsString::new();
        if h.version == boxrun_cgroups::Version::V1 {
            v.push(h.controllers.join(","));
            v.push(":");
        }
        v.push(Path::new("/").join(rel));
        args.extend(["--cgroup-root".into(), v]);
    }
    for (dest, src) in external_mounts(&valid.spec, Some(&cg)) {
        let src = if src.is_absolute() {
            src
        } else {
            valid.bundle.join(src)
        };
        args.extend(criu::external_mount(&dest, &src));
    }
    let pidfile = host.dir.path.join("criu.pid");
    args.extend([
        "--restore-detached".into(),
        "--pidfile".into(),
        pidfile.clone().into(),
    ]);
    if !a.no_subreaper {
        // SAFETY: prctl with integer arguments; the restored init becomes our child.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let ran = {
        let croot = RootMount::new(&host.dir.path.join("criu-root"), &valid.rootfs)?;
        let mut all = vec!["--root".into(), croot.path.clone().into_os_string()];
        all.extend(args);
        criu.run("restore", &all, &work, Some(&cg))
    };
    ran?;
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            Error::Other(format!(
                "criu restore wrote no pid to {}",
                pidfile.display()
            ))
        })?;
    let _ = std::fs::remove_file(&pidfile);
    host.guard.pid = pid;
    host.record.pid = pid;
    host.record.pid_start_time = procfs::stat(pid).map(|s| s.start_time).unwrap_or(0);
    host.record.status = Status::Running;
    host.dir.save(&host.record)?;
    if let Some(p) = &a.pid_file {
        write_pid_file(p, pid)?;
    }
    let host::Host {
        mut guard,
        dir,
        record,
        ..
    } = host;
    guard.disarm();
    drop(guard);
    drop(dir);
    if a.detach || a.no_subreaper {
        return Ok(0);
    }
    let fwd = crate::signals::forwardable();
    // SAFETY: blocking signals in a single-threaded process, to forward them.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &fwd, std::ptr::null_mut()) };
    let code = crate::signals::wait_forwarding(pid, &fwd);
    let dir = StateDir::open(root, &a.criu.id)?;
    let mut rec = dir.load()?.unwrap_or(record);
    rec.status = Status::Stopped;
    destroy(dir, &rec, Some(&valid.spec))?;
    Ok(code)
}

/// The rootfs bind-mounted at a mount point of its own for `criu restore --root`
/// (runc's `criu-root`); unmounted and removed on drop, before the state directory
/// could be removed with the rootfs still below it.
struct RootMount {
    path: PathBuf,
}

impl RootMount {
    fn new(path: &Path, rootfs: &Path) -> Result<RootMount> {
        std::fs::create_dir(path).map_err(|e| Error::io(path, e))?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
        if let Err(e) = mount(Some(rootfs), path, None::<&str>, flags, None::<&str>) {
            let _ = std::fs::remove_dir(path);
            return Err(Error::sys(
                format!("bind {} on {}", rootfs.display(), path.display()),
                e,
            ));
        }
        Ok(RootMount {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for RootMount {
    fn drop(&mut self) {
        let _ = umount2(&self.path, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.path);
    }
}
