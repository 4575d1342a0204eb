//! Loading a container's saved record and spec, for the commands that act on it.

use crate::config;
use crate::error::{Error, Result};
use crate::state::{Record, StateDir, Status};
use oci_spec::runtime::Spec;
use std::path::Path;

/// Load a container record with its live status, without the lock (ps, events,
/// update, exec).
pub fn load(root: &Path, id: &str) -> Result<(StateDir, Record, Status)> {
    let dir = StateDir::open_unlocked(root, id)?;
    let rec = dir.load()?.ok_or_else(|| Error::NotFound(id.to_string()))?;
    let st = rec.live_status(&dir.path);
    Ok((dir, rec, st))
}

/// Open a container's state directory under its lock and load its record (start,
/// kill, pause, resume).
pub(super) fn load_locked(root: &Path, id: &str) -> Result<(StateDir, Record)> {
    let dir = StateDir::open(root, id)?;
    let rec = dir.load()?.ok_or_else(|| Error::NotFound(id.to_string()))?;
    Ok((dir, rec))
}

/// The spec saved at create time.
pub fn load_saved_spec(dir: &StateDir) -> Result<Spec> {
    let raw = std::fs::read(dir.config_path()).map_err(|e| Error::io(dir.config_path(), e))?;
    config::parse(&raw)
}
