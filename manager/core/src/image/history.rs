//! `image history`: the steps an image was made by, newest first — the
//! OCI/docker config's history when it came from such an image, then its
//! import into boxctl.

use serde::Serialize;
use serde_json::Value;

use crate::error::Result;
use crate::store::Store;

use super::{get, OCI_CONFIG};

/// One step of an image's history.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    /// When (RFC 3339), as recorded.
    pub created: String,
    /// What made it (a Dockerfile instruction, `boxctl image import …`).
    pub created_by: String,
    /// Bytes it added (its layer; the disk for the import), when known.
    pub size: Option<u64>,
    /// A comment, when recorded.
    pub comment: String,
    /// Whether it added no layer.
    pub empty_layer: bool,
}

/// The history of image `name`, newest first.
pub fn history(store: &Store, name: &str) -> Result<Vec<Step>> {
    let img = get(store, name)?;
    let config: Value = std::fs::read_to_string(store.image_dir(name).join(OCI_CONFIG))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut layers = img.meta.layers.iter();
    let mut steps: Vec<Step> = config["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let empty_layer = h["empty_layer"].as_bool().unwrap_or(false);
            Step {
                created: text(&h["created"]),
                created_by: text(&h["created_by"]),
                size: if empty_layer {
                    Some(0)
                } else {
                    layers.next().map(|l| l.size)
                },
                comment: text(&h["comment"]),
                empty_layer,
            }
        })
        .collect();
    let origin = if img.meta.origin.is_empty() {
        String::new()
    } else {
        format!(" {}", img.meta.origin)
    };
    steps.push(Step {
        created: img.meta.created.clone(),
        created_by: format!("boxctl image import{origin} ({})", img.meta.source),
        size: Some(crate::disk::allocated_bytes(&img.disk)),
        comment: String::new(),
        empty_layer: false,
    });
    steps.reverse();
    Ok(steps)
}
