//! `pause` and `resume`: freeze and thaw the container's cgroup.

use super::load::load_locked;
use crate::error::{Error, Result};
use crate::state::Status;
use std::path::Path;

/// `pause` (`freeze`) or `resume` (not `freeze`).
pub fn set_frozen(root: &Path, id: &str, freeze: bool) -> Result<()> {
    // The lock is held until the freezer state is written.
    let (dir, rec) = load_locked(root, id)?;
    let status = rec.live_status(&dir.path);
    let ok = if freeze {
        status == Status::Running
    } else {
        status == Status::Paused
    };
    if !ok {
        return Err(Error::BadState {
            id: id.into(),
            status: status.as_str().into(),
            msg: if freeze {
                "only a running container can be paused".into()
            } else {
                "only a paused container can be resumed".into()
            },
        });
    }
    let cg = rec
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::Other(format!("container {id} has no cgroup")))?;
    if freeze {
        cg.freeze()?
    } else {
        cg.thaw()?
    }
    Ok(())
}
