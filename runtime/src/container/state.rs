//! `state`: the OCI state of a container.

use crate::error::Result;
use crate::state::StateDir;
use std::path::Path;

/// The OCI state of a container (a stopped one whose record is gone reads as stopped).
pub fn state(root: &Path, id: &str) -> Result<serde_json::Value> {
    let dir = StateDir::open_unlocked(root, id)?;
    match dir.load()? {
        Some(rec) => Ok(rec.oci_state(rec.live_status(&dir.path))),
        None => Ok(
            serde_json::json!({"ociVersion": "1.0.2", "id": id, "pid": 0, "status": "stopped",
            "bundle": "", "rootfs": "", "created": "", "owner": ""}),
        ),
    }
}
