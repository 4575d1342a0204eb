//! `list`: the OCI state of every container under the runtime root.

use crate::error::Result;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// One container of `list --format json`: runc's fields in runc's order, annotations
/// only when there are some (runc's `omitempty`), the owner as the table shows it.
#[derive(Serialize)]
pub struct Entry<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a Value,
    id: &'a Value,
    pid: &'a Value,
    status: &'a Value,
    bundle: &'a Value,
    rootfs: &'a Value,
    created: &'a Value,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'a str, &'a Value>,
    owner: &'a str,
}

impl<'a> Entry<'a> {
    /// The entry of one OCI state document.
    pub fn of(state: &'a Value) -> Entry<'a> {
        Entry {
            oci_version: &state["ociVersion"],
            id: &state["id"],
            pid: &state["pid"],
            status: &state["status"],
            bundle: &state["bundle"],
            rootfs: &state["rootfs"],
            created: &state["created"],
            annotations: state["annotations"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
                .unwrap_or_default(),
            owner: owner(state),
        }
    }
}

/// The owner column of a state document: `root` for an empty owner, as runc.
pub fn owner(state: &Value) -> &str {
    match state["owner"].as_str().unwrap_or("") {
        "" => "root",
        o => o,
    }
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn entries_in_runc_order() {
        let mut state = serde_json::json!({
            "ociVersion": "1.0.2", "id": "c", "pid": 7, "status": "running",
            "bundle": "/b", "rootfs": "/b/rootfs", "created": "t", "owner": "",
            "annotations": {},
        });
        let text = serde_json::to_string(&super::Entry::of(&state)).expect("encode");
        assert_eq!(
            text,
            r#"{"ociVersion":"1.0.2","id":"c","pid":7,"status":"running","bundle":"/b","rootfs":"/b/rootfs","created":"t","owner":"root"}"#
        );
        state["annotations"] = serde_json::json!({"k": "v"});
        let text = serde_json::to_string(&super::Entry::of(&state)).expect("encode");
        assert!(
            text.ends_with(r#""created":"t","annotations":{"k":"v"},"owner":"root"}"#),
            "{text}"
        );
    }
}
