//! Registry credentials in docker's `config.json` format (`{"auths":
//! {"HOST": {"auth": base64("USER:PASSWORD")}}}`): `login` writes
//! `<store>/auth.json` (mode 0600); lookups read it first, then
//! `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json` and
//! `~/.docker/config.json`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::error::{Context, Result};
use crate::store::Store;
use crate::{bail, util};

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <hidden>)", self.user)
    }
}

/// `<store>/auth.json`.
pub fn store_file(store: &Store) -> PathBuf {
    store.root().join("auth.json")
}

/// The files credentials are looked up in, first match wins.
fn lookup_files(store: &Store) -> Vec<PathBuf> {
    let mut v = vec![store_file(store)];
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE") {
        v.push(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_RUNTIME_DIR") {
        v.push(Path::new(&p).join("containers/auth.json"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        v.push(Path::new(&h).join(".docker/config.json"));
    }
    v
}

/// The keys a registry may be stored under (docker hub has its legacy URL).
fn keys(registry: &str) -> Vec<String> {
    let mut k = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        k.push("https://index.docker.io/v1/".to_string());
        k.push("docker.io".to_string());
        k.push("index.docker.io".to_string());
    }
    k
}

fn decode(entry: &Value) -> Option<Credentials> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(entry["auth"].as_str()?.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Credentials {
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// The stored credentials for `registry`, if any.
pub fn lookup(store: &Store, registry: &str) -> Result<Option<Credentials>> {
    for f in lookup_files(store) {
        let text = match fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", f.display())),
        };
        let v: Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "credentials file {} is not valid JSON: fix or remove it",
                f.display()
            )
        })?;
        for k in keys(registry) {
            if let Some(c) = v["auths"].get(&k).and_then(decode) {
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

fn read_store_file(path: &Path) -> Result<Value> {
    match fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t).with_context(|| {
            format!(
                "credentials file {} is not valid JSON: fix or remove it",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({"auths": {}})),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Write `v` to `path` with mode 0600, atomically.
fn write_store_file(path: &Path, v: &Value) -> Result<()> {
    let tmp = path.with_file_name(format!(".auth-{}.json", util::random_id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let done = f
        .write_all(serde_json::to_string_pretty(v)?.as_bytes())
        .and_then(|_| f.sync_all())
        .and_then(|_| fs::rename(&tmp, path));
    if let Err(e) = done {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Store `creds` for `registry` in `<store>/auth.json`.
pub fn save(store: &Store, registry: &str, creds: &Credentials) -> Result<()> {
    let path = store_file(store);
    let _lock = crate::store::lock_file(&store.root().join("auth.lock"))?;
    let mut v = read_store_file(&path)?;
    let entry = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.user, creds.password));
    if !v["auths"].is_object() {
        v["auths"] = json!({});
    }
    v["auths"][registry] = json!({ "auth": entry });
    write_store_file(&path, &v)
}

/// Forget the credentials stored for `registry` in `<store>/auth.json`.
pub fn remove(store: &Store, registry: &str) -> Result<()> {
    let path = store_file(store);
    let _lock = crate::store::lock_file(&store.root().join("auth.lock"))?;
    let mut v = read_store_file(&path)?;
    let removed = v["auths"]
        .as_object_mut()
        .map(|m| {
            keys(registry)
                .iter()
                .filter(|k| m.remove(*k).is_some())
                .count()
        })
        .unwrap_or(0);
    if removed == 0 {
        bail!(
            "not logged in to {registry}: nothing to remove from {}",
            path.display()
        );
    }
    write_store_file(&path, &v)
}
