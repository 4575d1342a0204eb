//! `ps`: the processes of a container.

use super::load::load;
use crate::error::Result;
use std::path::Path;

/// The host pids of every process in the container's cgroup (the init alone when it
/// has none).
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let (_, rec, _) = load(root, id)?;
    match &rec.cgroup {
        Some(cg) => Ok(cg.pids()?),
        None => Ok(vec![rec.pid]),
    }
}
