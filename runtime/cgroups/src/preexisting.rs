//! A container cgroup that existed before the runtime made it: whether it is frozen
//! and whether other processes already use it (runc refuses the first, warns about the
//! second). Only pre-existing directories are read, so a fresh cgroup costs nothing.

use crate::cgroup::{Cgroup, Hierarchy, Version};
use crate::error::Result;
use crate::fsutil;

/// What a pre-existing container cgroup holds before the container joins it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Preexisting {
    /// A pre-existing directory is frozen (v1 `freezer.state` `FROZEN` or `FREEZING`,
    /// v2 `cgroup.freeze` 1): a container joining it would never run.
    pub frozen: bool,
    /// Processes found in the pre-existing directories (the runtime's init excluded).
    pub processes: usize,
}

impl Cgroup {
    /// The state of the made hierarchies whose container directory this runtime did not
    /// create; `None` when there are none (nothing is read then). `init` (the
    /// container's own init, or 0) is not counted as a process.
    pub fn preexisting(&self, init: i32) -> Result<Option<Preexisting>> {
        let mut found = None;
        let mut pids: Vec<i32> = Vec::new();
        for h in self.hierarchies.iter().filter(|h| is_preexisting(h)) {
            let state = found.get_or_insert_with(Preexisting::default);
            state.frozen |= frozen(h)?;
            if let Some(text) = fsutil::read_opt(&h.path.join("cgroup.procs"))? {
                let more = text.lines().filter_map(|l| l.trim().parse::<i32>().ok());
                for pid in more.filter(|&p| p != init) {
                    if !pids.contains(&pid) {
                        pids.push(pid);
                    }
                }
            }
            state.processes = pids.len();
        }
        Ok(found)
    }
}

/// Made, and its container directory was there before (not among the created ones).
fn is_preexisting(h: &Hierarchy) -> bool {
    h.made && !h.created.contains(&h.path)
}

fn frozen(h: &Hierarchy) -> Result<bool> {
    let (file, values): (&str, &[&str]) = match h.version {
        Version::V1 if h.has("freezer") => ("freezer.state", &["FROZEN", "FREEZING"]),
        Version::V1 => return Ok(false),
        Version::V2 => ("cgroup.freeze", &["1"]),
    };
    Ok(fsutil::read_opt(&h.path.join(file))?.is_some_and(|s| values.contains(&s.trim())))
}
