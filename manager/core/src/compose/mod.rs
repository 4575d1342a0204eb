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

#[cfg(test)]
mod tests {
    use super::*;

    const STACK: &str = r#"
name: shop
services:
  db:
    image: bb
    command: sh -c 'exec httpd -f -p 80'
    entrypoint: ["/bin/env"]
    environment: {A: "1", B: 2}
    env_file: [app.env]
    labels: [tier=db]
    volumes: ["data:/var/db", "./site:/www:ro", {type: bind, source: /srv, target: /srv, read_only: true}]
    tmpfs: /run
    read_only: true
    healthcheck:
      test: ["CMD", "test", "-f", "/ready file"]
      interval: 5s
      retries: 2
    restart: unless-stopped
  web:
    image: bb
    ports: ["8080:80/tcp", {target: 81, published: 8081, host_ip: 127.0.0.1}]
    depends_on: {db: {condition: service_healthy}}
    deploy: {replicas: 2, resources: {limits: {memory: 64m, cpus: 0.5, pids: 32}}}
volumes:
  data:
"#;

    /// A test's directory, removed when the test ends, failed or not.
    struct TestDir(std::path::PathBuf);

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl std::ops::Deref for TestDir {
        type Target = std::path::Path;
        fn deref(&self) -> &std::path::Path {
            &self.0
        }
    }

    fn dir(tag: &str) -> TestDir {
        let d =
            std::env::temp_dir().join(format!("boxctl-compose-unit-{tag}-{}", std::process::id()));
        let guard = TestDir(d.clone());
        std::fs::create_dir_all(d.join("site")).unwrap();
        std::fs::write(d.join("app.env"), "# comment\n\nA=0\nC=3\n").unwrap();
        guard
    }

    #[test]
    fn maps_every_supported_key() {
        let d = dir("map");
        let f = parse(STACK, &d).unwrap();
        let db = &f.services["db"];
        assert_eq!(f.name, "shop");
        assert_eq!(db.command, ["sh", "-c", "exec httpd -f -p 80"]);
        assert_eq!(
            db.entrypoint.as_deref(),
            Some(&["/bin/env".to_string()][..])
        );
        // env_file first, environment overrides it (later wins).
        assert_eq!(db.env, ["A=0", "C=3", "A=1", "B=2"]);
        assert_eq!(db.labels, ["tier=db"]);
        let site = d.join("site").display().to_string();
        assert_eq!(
            db.volumes,
            [
                "data:/var/db".to_string(),
                format!("{site}:/www:ro"),
                "/srv:/srv:ro".into()
            ]
        );
        assert_eq!(
            (db.tmpfs.as_slice(), db.read_only),
            (&["/run".to_string()][..], true)
        );
        let h = db.health.check.parse().unwrap();
        assert_eq!(h.cmd.as_deref(), Some("test -f '/ready file'"));
        assert_eq!(h.retries(), 2);
        assert_eq!(db.restart.as_deref(), Some("always"));
        assert_eq!(db.networks, ["default"]);
        let web = &f.services["web"];
        assert_eq!(web.publish, ["8080:80", "127.0.0.1:8081:81"]);
        assert_eq!(web.depends_on, ["db"]);
        assert_eq!(web.replicas, Some(2));
        let l = web.limits().unwrap();
        assert_eq!(
            (l.memory, l.cpus, l.pids),
            (Some(64 << 20), Some(0.5), Some(32))
        );
        assert!(f.networks.contains_key("default"));
        assert_eq!(f.start_order(), ["db", "web"]);
    }

    #[test]
    fn refuses_what_it_cannot_map() {
        let d = dir("refuse");
        let cases = [
            (
                "    cap_add: [ALL]\n",
                "services.db.cap_add: not supported by boxctl",
            ),
            (
                "    ports: [\"80\"]\n",
                "services.db.ports[0]: give the host port",
            ),
            ("    ports: [\"53:53/udp\"]\n", "only tcp"),
            (
                "    network_mode: host\n",
                "services.db.network_mode: only `none`",
            ),
            (
                "    depends_on: {web: {condition: service_completed_successfully}}\n",
                "condition",
            ),
            (
                "    deploy: {replicas: two}\n",
                "services.db.deploy.replicas: expected a whole number",
            ),
            (
                "    x-boxctl: {balance: {backend: web}}\n",
                "services.db.x-boxctl.balance",
            ),
        ];
        for (extra, want) in cases {
            let text = STACK.replace("    restart: unless-stopped\n", extra);
            let e = parse(&text, &d).unwrap_err().chain();
            assert!(e.contains(want), "{extra}: {e}");
        }
        let bad_test = STACK.replace(r#"["CMD", "test", "-f", "/ready file"]"#, "[CMD]");
        let e = parse(&bad_test, &d).unwrap_err().chain();
        assert!(e.contains("services.db.healthcheck.test: expected"), "{e}");
        let undeclared = STACK.replace("data:/var/db", "other:/x");
        let e = parse(&undeclared, &d).unwrap_err().chain();
        assert!(
            e.contains("services.db.volumes[0]: volume other is not declared"),
            "{e}"
        );
        let subst = STACK.replace("B: 2", "B: \"${HOME}\"");
        let e = parse(&subst, &d).unwrap_err().chain();
        assert!(
            e.contains("services.db.environment.B: variable substitution"),
            "{e}"
        );
        let cycle = STACK.replace("    restart: unless-stopped\n", "    depends_on: [web]\n");
        assert!(parse(&cycle, &d).unwrap_err().chain().contains("cycle"));
        assert!(parse("services: [a]", &d)
            .unwrap_err()
            .chain()
            .contains("services: expected a mapping"));
        assert!(parse("a: [", &d)
            .unwrap_err()
            .chain()
            .contains("not a valid YAML file"));
    }
}
