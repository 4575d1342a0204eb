//! `delete`: tear a stopped container down (with `--force`, kill it first): cgroups,
//! poststop hooks, state directory.

use super::kill::{signal_pid, wait_gone};
use super::load::load_saved_spec;
use crate::error::{Error, Result};
use crate::hooks;
use crate::state::{Record, StateDir, Status};
use oci_spec::runtime::Spec;
use std::path::Path;

/// `delete`: remove a stopped container (with `force`, kill it first). With `force`, a
/// missing container is not an error (engines rely on that).
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = match StateDir::open(root, id) {
        Ok(d) => d,
        Err(Error::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(rec) = dir.load()? else {
        // A create that died before writing state: nothing else was made.
        return dir.remove();
    };
    let status = rec.live_status(&dir.path);
    if status != Status::Stopped {
        if !force {
            return Err(Error::BadState {
                id: id.into(),
                status: status.as_str().into(),
                msg: "delete needs a stopped container: kill it first or use --force".into(),
            });
        }
        if let Some(cg) = &rec.cgroup {
            if status == Status::Paused {
                let _ = cg.thaw();
            }
        }
        if rec.pid > 0 {
            let _ = signal_pid(&rec, libc::SIGKILL);
        }
        if !rec.own_pidns {
            if let Some(cg) = &rec.cgroup {
                let _ = cg.kill_all(libc::SIGKILL);
            }
        }
        crate::failpoint::hit("delete:killed");
        if rec.pid > 0
            && !wait_gone(
                rec.pid,
                rec.pid_start_time,
                std::time::Duration::from_secs(10),
            )
        {
            return Err(Error::Other(format!(
                "container {id}: process {} did not die after SIGKILL",
                rec.pid
            )));
        }
    }
    destroy(dir, &rec, None)
}

/// Tear down a stopped container: cgroups, poststop hooks, state directory.
/// `spec`: the container's config when the caller has it (`run`), else the saved copy
/// is read for the poststop hooks.
pub(super) fn destroy(dir: StateDir, rec: &Record, spec: Option<&Spec>) -> Result<()> {
    if let Some(cg) = &rec.cgroup {
        if !rec.own_pidns {
            let _ = cg.kill_all(libc::SIGKILL);
        }
        cg.destroy()?;
        crate::failpoint::hit("delete:cgroup-removed");
    }
    let saved;
    let spec = match spec {
        Some(s) => Some(s),
        None => {
            saved = load_saved_spec(&dir).ok();
            saved.as_ref()
        }
    };
    if let Some(spec) = spec {
        let state = rec.oci_state(Status::Stopped).to_string().into_bytes();
        hooks::run_all_warn(
            spec.hooks().as_ref().and_then(|h| h.poststop().as_ref()),
            &state,
            "poststop",
        );
    }
    dir.remove()
}
