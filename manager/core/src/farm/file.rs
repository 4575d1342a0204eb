//! Reading a farm file in either of its forms: a TOML farm file ([`super::spec`])
//! or a docker compose file ([`crate::compose`]), told apart by its name.

use std::path::{Path, PathBuf};

use super::spec::Farm;
use crate::error::{Context, Result};

/// Read and check a farm file: a compose file when its name ends in `.yaml` or
/// `.yml`, else a TOML farm file.
pub fn load(path: &Path) -> Result<Farm> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read farm file {}", path.display()))?;
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = abs
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    from_text(&text, &dir, crate::compose::is_compose(path))
        .with_context(|| format!("farm file {}", path.display()))
}

/// Parse and check a farm file's text (`compose`: a compose file) whose relative
/// paths are taken from `dir`.
pub fn from_text(text: &str, dir: &Path, compose: bool) -> Result<Farm> {
    let mut farm = if compose {
        crate::compose::parse(text, dir)?
    } else {
        Farm::parse(text)?
    };
    farm.dir = dir.to_path_buf();
    Ok(farm)
}
