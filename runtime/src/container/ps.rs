//! `ps`: the processes of a container.

use super::load::load;
use crate::error::Result;
use std::path::Path;

/// The host pids of every process in the container's cgroup; without one (rootless),
/// those in its own pid namespace, else the init alone.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let (_, rec, _) = load(root, id)?;
    Ok(members(&rec)?)
}

/// The container's processes (see [`pids`]).
pub(super) fn members(rec: &crate::state::Record) -> boxrun_cgroups::Result<Vec<i32>> {
    match &rec.cgroup {
        Some(cg) => cg.pids(),
        None if rec.own_pidns => Ok(crate::procfs::pidns_members(rec.pid)),
        None => Ok(vec![rec.pid]),
    }
}
