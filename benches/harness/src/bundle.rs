//! OCI bundles for the cases: the repository's `runc spec` busybox config
//! (terminal=false) running `/bin/true`, optionally hardened like Docker's
//! default (seccomp profile, cgroup namespace, memory/pids/cpu limits).

use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};

type Error = Box<dyn std::error::Error>;

/// Memory limit of the hardened bundle (256 MiB).
pub const MEMORY_LIMIT: u64 = 256 << 20;
/// Pids limit of the hardened bundle.
pub const PIDS_LIMIT: i64 = 128;

/// The docker-default seccomp profile (OCI `linux.seccomp` form) to use and a
/// note saying where it came from: the seccomp crate's fixture when present,
/// else the benches' own copy.
pub fn seccomp_profile(repo: &Path) -> Result<(Value, String), Error> {
    let shared = repo.join("runtime/seccomp/tests/fixtures");
    let mut candidates: Vec<PathBuf> = vec![shared.join("docker-default.json")];
    if let Ok(rd) = fs::read_dir(&shared) {
        let mut others: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
                n.is_some_and(|n| n.contains("docker") && n.ends_with(".json"))
            })
            .collect();
        others.sort();
        candidates.extend(others);
    }
    candidates.push(repo.join("benches/fixtures/docker-default.json"));
    for path in candidates {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| format!("seccomp profile {}: bad json: {e}", path.display()))?;
        // Accept a bare `linux.seccomp` object or a whole config.json.
        let profile = if v.get("defaultAction").is_some() {
            v
        } else if let Some(s) = v.pointer("/linux/seccomp") {
            s.clone()
        } else {
            continue;
        };
        let rel = path
            .strip_prefix(repo)
            .unwrap_or(&path)
            .display()
            .to_string();
        return Ok((profile, rel));
    }
    Err(
        "no docker-default seccomp profile found: expected benches/fixtures/docker-default.json"
            .into(),
    )
}

/// Options of a generated bundle.
pub struct BundleOpts<'a> {
    /// Absolute path of the (shared, read-only) rootfs.
    pub rootfs: &'a Path,
    /// Add the Docker-like hardening of case 2.
    pub hardened: Option<&'a Value>,
    /// `linux.cgroupsPath`, if any.
    pub cgroups_path: Option<String>,
}

/// Build the config.json value of a bundle from the repository's base config.
pub fn config(repo: &Path, opts: &BundleOpts<'_>) -> Result<Value, Error> {
    let base = repo.join("bundles/busybox/config.json");
    let text = fs::read_to_string(&base)
        .map_err(|e| format!("read base config {}: {e}", base.display()))?;
    let mut v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("base config {}: bad json: {e}", base.display()))?;
    v["process"]["terminal"] = json!(false);
    v["process"]["args"] = json!(["/bin/true"]);
    v["root"]["path"] = json!(opts.rootfs.display().to_string());
    if let Some(profile) = opts.hardened {
        let linux = v
            .get_mut("linux")
            .and_then(Value::as_object_mut)
            .ok_or("base config has no linux object")?;
        let ns = linux
            .entry("namespaces")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .ok_or("base config: linux.namespaces is not an array")?;
        if !ns.iter().any(|n| n["type"] == "cgroup") {
            ns.push(json!({"type": "cgroup"}));
        }
        let res = linux
            .entry("resources")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or("base config: linux.resources is not an object")?;
        res.insert("memory".into(), json!({"limit": MEMORY_LIMIT}));
        res.insert("pids".into(), json!({"limit": PIDS_LIMIT}));
        res.insert(
            "cpu".into(),
            json!({"shares": 512, "quota": 50000, "period": 100000}),
        );
        linux.insert("seccomp".into(), profile.clone());
    }
    if let Some(p) = &opts.cgroups_path {
        v["linux"]["cgroupsPath"] = json!(p);
    }
    Ok(v)
}

/// Write a bundle directory (config.json only; the rootfs is referenced by
/// absolute path so every bundle shares one copy).
pub fn write(dir: &Path, config: &Value) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|e| format!("create bundle dir {}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(config)?;
    fs::write(dir.join("config.json"), text)
        .map_err(|e| format!("write {}/config.json: {e}", dir.display()))?;
    Ok(())
}
