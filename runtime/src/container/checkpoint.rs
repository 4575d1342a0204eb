//! `checkpoint`: dump a running container with CRIU (see [`crate::criu`]). As runc,
//! the container is gone afterwards (criu killed it; its cgroups and state are
//! removed) unless `--leave-running` or `--pre-dump`; `restore` brings it back.

use super::delete::destroy;
use super::kill::wait_gone;
use super::load::{load_locked, load_saved_spec};
use crate::args::CheckpointArgs;
use crate::criu::{self, Criu};
use crate::error::{Error, Result};
use crate::state::Status;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `checkpoint`: dump the container's process tree into the image directory.
pub fn checkpoint(root: &Path, criu_bin: Option<&str>, a: &CheckpointArgs) -> Result<()> {
    let id = &a.criu.id;
    let (dir, mut rec) = load_locked(root, id)?;
    let status = rec.live_status(&dir.path);
    if status != Status::Running {
        return Err(Error::BadState {
            id: id.clone(),
            status: status.as_str().into(),
            msg: "checkpoint needs a running container".into(),
        });
    }
    let spec = load_saved_spec(&dir)?;
    let criu = Criu::ready(criu_bin)?;
    let (images, work) = criu::dirs(&a.criu)?;
    let mut args = criu::common_args(&a.criu, &images)?;
    args.extend(["--tree".into(), rec.pid.to_string().into()]);
    let keep = a.leave_running || a.pre_dump;
    if a.leave_running {
        args.push("--leave-running".into());
    }
    if a.pre_dump {
        args.push("--track-mem".into());
    }
    if let Some(parent) = &a.parent_path {
        args.extend([
            "--prev-images-dir".into(),
            parent.into(),
            "--track-mem".into(),
        ]);
    }
    if let Some(ps) = &a.page_server {
        let (addr, port) = ps
            .rsplit_once(':')
            .ok_or_else(|| Error::Other(format!("--page-server {ps:?}: use ADDRESS:PORT")))?;
        args.extend(["--page-server", "--address", addr, "--port", port].map(OsString::from));
    }
    for ns in &a.criu.empty_ns {
        if ns != "network" {
            return Err(Error::Other(format!(
                "--empty-ns {ns:?}: only network can be left empty"
            )));
        }
        args.extend(["--empty-ns".into(), "net".into()]);
    }
    for (dest, _) in external_mounts(&spec, rec.cgroup.as_ref()) {
        args.extend(criu::external_mount(&dest, &dest));
    }
    let action = if a.pre_dump { "pre-dump" } else { "dump" };
    criu.run(action, &args, &work, None)?;
    if keep {
        return Ok(());
    }
    wait_gone(
        rec.pid,
        rec.pid_start_time,
        std::time::Duration::from_secs(10),
    );
    rec.status = Status::Stopped;
    destroy(dir, &rec, Some(&spec))
}

/// The container's mounts whose source is outside its mount namespace, as
/// (destination, host source): bind mounts, and the cgroup mount on a pure v2 host
/// without a cgroup namespace (a bind of the container's cgroup directory). criu
/// records them by destination and mounts the host source again at restore.
pub(super) fn external_mounts(
    spec: &Spec,
    cg: Option<&boxrun_cgroups::Cgroup>,
) -> Vec<(PathBuf, PathBuf)> {
    let linux = spec.linux().as_ref();
    let cgroupns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|v| v.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup));
    let v2_dir = cg
        .filter(|c| c.is_unified() && !cgroupns)
        .and_then(|c| c.v2())
        .map(|h| h.path.clone());
    let mut out = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        let typ = m.typ().as_deref().unwrap_or("");
        let opts = m.options().as_deref().unwrap_or(&[]);
        let bind = typ == "bind" || opts.iter().any(|o| o == "bind" || o == "rbind");
        if bind {
            if let Some(src) = m.source() {
                out.push((m.destination().clone(), src.clone()));
            }
        } else if typ == "cgroup" || typ == "cgroup2" {
            if let Some(d) = &v2_dir {
                out.push((m.destination().clone(), d.clone()));
            }
        }
    }
    out
}
