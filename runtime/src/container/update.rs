//! `update`: change the resources of a running container's cgroup.

use super::load::load;
use crate::error::{Error, Result};
use crate::state::Status;
use oci_spec::runtime::LinuxResources;
use std::path::Path;

/// Apply the resources `resources` builds to the container's cgroups; a stopped
/// container is refused before they are built.
pub fn update(
    root: &Path,
    id: &str,
    resources: impl FnOnce() -> Result<LinuxResources>,
) -> Result<()> {
    let (_, rec, st) = load(root, id)?;
    if st == Status::Stopped {
        return Err(Error::BadState {
            id: id.into(),
            status: "stopped".into(),
            msg: "cannot update a stopped container".into(),
        });
    }
    let res = resources()?;
    let cg = rec
        .cgroup
        .ok_or_else(|| Error::Other(format!("container {id} has no cgroup")))?;
    cg.apply(&res)?;
    Ok(())
}
