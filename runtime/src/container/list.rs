//! `list`: the OCI state of every container under the runtime root.

use crate::error::Result;
use std::path::Path;

/// The states of all containers, in directory order; one whose state cannot be read
/// (being deleted right now) is left out.
pub fn list(root: &Path) -> Result<Vec<serde_json::Value>> {
    let mut rows = Vec::new();
    for id in crate::state::list_ids(root)? {
        if let Ok(v) = super::state(root, &id) {
            rows.push(v);
        }
    }
    Ok(rows)
}
