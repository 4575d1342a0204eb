//! The defaults an image gives its instances, shared by the importers and
//! the image store.

use serde::{Deserialize, Serialize};

/// Defaults an image gives its instances (from an OCI/docker config).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `Entrypoint`.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// `Env`.
    #[serde(default)]
    pub env: Vec<String>,
    /// `WorkingDir`.
    #[serde(default)]
    pub workdir: String,
    /// `User`.
    #[serde(default)]
    pub user: String,
}
