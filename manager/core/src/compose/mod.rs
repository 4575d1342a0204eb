//! Compose files: `boxctl up -f compose.yaml` reads the docker compose
//! subset a small web stack uses and maps it onto the farm model
//! ([`crate::farm::spec::Farm`]), which then runs exactly as a TOML farm
//! file does. Every key boxctl does not map is refused with one line naming
//! its path (`services.web.cap_add: not supported by boxctl`), before
//! anything is touched.
//!
//! What has no compose key (where an image's root filesystem comes from,
//! the nginx balancing of a proxy, the readiness path) lives under the
//! extension key `x-boxctl`, which other compose tools ignore.

mod service;
mod walk;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_yaml_ng::Value;

use crate::error::{Error, Result};
use crate::farm::spec::{Farm, ImageSpec, NetSpec};
use walk::{join, Problems};
pub use walk::{shell_join, split_words};

/// The top-level keys boxctl maps (`version` is accepted and ignored, as compose does).
const TOP: &[&str] = &[
    "name", "version", "services", "networks", "volumes", "x-boxctl",
];
/// Keys of a top-level network.
const NETWORK: &[&str] = &["internal", "driver", "ipam"];

/// Whether `path` names a compose file (`.yaml` or `.yml`) rather than a TOML farm file.
pub fn is_compose(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// Parse a compose file's text (relative paths from `dir`) into a checked
/// farm; an error lists every problem, one per line.
pub fn parse(text: &str, dir: &Path) -> Result<Farm> {
    let root: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| Error::Invalid(format!("not a valid YAML file: {e}")))?;
    let mut p = Problems::default();
    let mut name = None;
    let mut services = None;
    let mut networks = BTreeMap::new();
    let mut volumes = BTreeSet::new();
    let mut images = BTreeMap::new();
    let mut x_name = None;
    for (k, v) in p.fields("", &root, TOP) {
        match k {
            "name" => name = p.scalar(k, v),
            "version" => {}
            "services" => services = Some(v),
            "networks" => networks = top_networks(&mut p, v),
            "volumes" => volumes = top_volumes(&mut p, v),
            _ => (images, x_name) = extension(&mut p, v),
        }
    }
    if root.as_mapping().is_none() {
        p.bad("", "a compose file is a mapping with a `services` key");
    }
    let name = name.or(x_name).unwrap_or_else(|| project_name(dir));
    let mut farm = Farm {
        name,
        images,
        networks,
        services: BTreeMap::new(),
        dir: dir.to_path_buf(),
    };
    match services {
        Some(v) => service::map_all(&mut p, v, &mut farm, &volumes),
        None => p.bad("services", "missing: describe at least one service"),
    }
    match p.0.as_slice() {
        [] => {}
        [one] => return Err(Error::Invalid(one.clone())),
        many => {
            return Err(Error::Invalid(format!(
                "{} problems, nothing was started:\n  {}",
                many.len(),
                many.join("\n  ")
            )))
        }
    }
    farm.check()?;
    Ok(farm)
}

/// Top-level `volumes`: names only (boxctl makes each as the farm's named
/// volume); options such as `driver` are refused.
fn top_volumes(p: &mut Problems, v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Some(map) = v.as_mapping() else {
        p.bad("volumes", "expected a mapping");
        return out;
    };
    for (k, vv) in map {
        let Some(key) = k.as_str() else {
            p.bad("volumes", "keys must be strings");
            continue;
        };
        p.fields(&join("volumes", key), vv, &[]);
        out.insert(key.to_string());
    }
    out
}

/// Compose's default project name: the file's directory name, lower case,
/// with characters a boxctl name cannot hold dropped.
fn project_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| {
            n.to_string_lossy()
                .to_ascii_lowercase()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .unwrap_or_else(|| "default".into())
}

/// Top-level `networks`: internal, ipam.config[0].subnet; driver bridge
/// (or overlay, as a stack file says: on one host both are a boxctl bridge).
fn top_networks(p: &mut Problems, v: &Value) -> BTreeMap<String, NetSpec> {
    let mut out = BTreeMap::new();
    let Some(map) = v.as_mapping() else {
        p.bad("networks", "expected a mapping");
        return out;
    };
    for (k, nv) in map {
        let Some(key) = k.as_str() else {
            p.bad("networks", "keys must be strings");
            continue;
        };
        let path = join("networks", key);
        let mut spec = NetSpec::default();
        for (f, fv) in p.fields(&path, nv, NETWORK) {
            let fpath = join(&path, f);
            match f {
                "internal" => spec.internal = p.boolean(&fpath, fv),
                "driver" => {
                    if !matches!(fv.as_str(), Some("bridge" | "overlay")) {
                        p.bad(
                            &fpath,
                            "only bridge (or overlay, made a bridge here) is supported",
                        );
                    }
                }
                _ => spec.subnet = ipam_subnet(p, &fpath, fv),
            }
        }
        out.insert(key.to_string(), spec);
    }
    out
}

/// `ipam: {config: [{subnet: CIDR}]}`: one subnet.
fn ipam_subnet(p: &mut Problems, path: &str, v: &Value) -> Option<String> {
    let mut subnet = None;
    for (_, cv) in p.fields(path, v, &["config"]) {
        let cpath = join(path, "config");
        let Some(seq) = cv.as_sequence() else {
            p.bad(&cpath, "expected a list");
            continue;
        };
        if seq.len() > 1 {
            p.bad(&cpath, "one subnet per network is supported");
        }
        for (i, item) in seq.iter().enumerate() {
            let ipath = walk::index(&cpath, i);
            for (_, sv) in p.fields(&ipath, item, &["subnet"]) {
                subnet = p.scalar(&join(&ipath, "subnet"), sv);
            }
        }
    }
    subnet
}

/// Top-level `x-boxctl`: `images` (where each image's root filesystem
/// comes from) and `name` (the project name, where a stack file cannot
/// have a top-level `name`).
fn extension(p: &mut Problems, v: &Value) -> (BTreeMap<String, ImageSpec>, Option<String>) {
    let mut out = BTreeMap::new();
    let mut name = None;
    for (k, iv) in p.fields("x-boxctl", v, &["images", "name"]) {
        if k == "name" {
            name = p.scalar("x-boxctl.name", iv);
            continue;
        }
        let Some(map) = iv.as_mapping() else {
            p.bad("x-boxctl.images", "expected a mapping");
            continue;
        };
        for (k, spec) in map {
            let key = k.as_str().unwrap_or_default().to_string();
            match serde_yaml_ng::from_value::<ImageSpec>(spec.clone()) {
                Ok(s) => {
                    out.insert(key, s);
                }
                Err(e) => p.bad(&format!("x-boxctl.images.{key}"), &e.to_string()),
            }
        }
    }
    (out, name)
}
