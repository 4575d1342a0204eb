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
            // runc's oom event has no `data` key.
            emit("oom", serde_json::Value::Null);
            ooms = now;
        }
        std::thread::sleep(every);
    }
}

/// One event line as runc prints it: keys `type`, `id`, `data` in that order, and no
/// `data` when there is none (the oom event).
pub fn line(typ: &str, id: &str, data: &serde_json::Value) -> String {
    let head = format!(
        "{{\"type\":{},\"id\":{}",
        serde_json::Value::from(typ),
        serde_json::Value::from(id)
    );
    if data.is_null() {
        format!("{head}}}")
    } else {
        format!("{head},\"data\":{data}}}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_keys_in_runc_order() {
        let stats = serde_json::json!({"pids": {"current": 1}});
        assert_eq!(
            super::line("stats", "c1", &stats),
            r#"{"type":"stats","id":"c1","data":{"pids":{"current":1}}}"#
        );
        assert_eq!(
            super::line("oom", "c1", &serde_json::Value::Null),
            r#"{"type":"oom","id":"c1"}"#
        );
    }
}
