//! `events`: resource statistics and OOM events of a running container.

use super::load::load;
use crate::error::{Error, Result};
use crate::state::Status;
use std::path::Path;
use std::time::Duration;

/// Report the container's stats once (`once`), or every `every` with an `oom` event
/// whenever the OOM-kill count grows, until the container stops or is deleted. Each
/// event goes to `emit` as its type and data.
pub fn watch(
    root: &Path,
    id: &str,
    every: Duration,
    once: bool,
    mut emit: impl FnMut(&str, serde_json::Value),
) -> Result<()> {
    let (_, rec, _) = load(root, id)?;
    let cg = rec
        .cgroup
        .ok_or_else(|| Error::Other(format!("container {id} has no cgroup")))?;
    if once {
        let s = cg.stats()?;
        emit("stats", serde_json::to_value(&s).unwrap_or_default());
        return Ok(());
    }
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    loop {
        match load(root, id) {
            Ok((_, _, st)) if st != Status::Stopped => {}
            _ => return Ok(()),
        }
        if let Ok(s) = cg.stats() {
            emit("stats", serde_json::to_value(&s).unwrap_or_default());
        }
        let now = cg.oom_kill_count().unwrap_or(ooms);
        if now > ooms {
            emit("oom", serde_json::Value::Null);
            ooms = now;
        }
        std::thread::sleep(every);
    }
}
