//! The farm file: a compose-like TOML description of images, networks and
//! services, parsed and checked before anything is touched.
//!
//! ```toml
//! name = "webfarm"
//! [images.web]
//! rootfs = "/var/cache/boxrun-images/web"   # imported when the image is missing
//! build = "../images/build-web.sh"          # run as `build ROOTFS` when rootfs is missing
//! [networks.back]
//! subnet = "10.210.100.0/24"
//! internal = true
//! [services.web]
//! image = "web"
//! command = ["/usr/sbin/boxweb"]
//! replicas = 3
//! networks = ["back"]
//! memory = "64m"
//! [services.proxy]
//! image = "proxy"
//! networks = ["front", "back"]
//! publish = ["127.0.0.1:8080:80"]
//! [services.proxy.balance]
//! backends = "web"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::bail;
use crate::error::{Context, Result};
use serde::Deserialize;

use crate::error::Error;
use crate::healthcheck::HealthOptions;
use crate::limits::{LimitSpec, Limits, RestartPolicy};
use crate::util;
use crate::volume_spec::{Source, Storage, VolumeMount};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Farm {
    /// Project name: prefix of every network and instance name.
    pub name: String,
    /// Images the services use, by boxctl image name.
    #[serde(default)]
    pub images: BTreeMap<String, ImageSpec>,
    /// Networks, by short name (the boxctl network is `NAME-KEY`).
    #[serde(default)]
    pub networks: BTreeMap<String, NetSpec>,
    /// Services, by short name.
    pub services: BTreeMap<String, Service>,
    /// Directory of the file: relative paths are taken from here.
    #[serde(skip)]
    pub dir: PathBuf,
}

/// Where an image comes from when it is missing.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// Root filesystem directory (or any source `image import` takes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<String>,
    /// Script run as `build ROOTFS` when `rootfs` does not exist yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Disk size of the imported image (e.g. `256m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// One network.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    /// Subnet in CIDR form (default: a free /24 of 10.209.0.0/16, see
    /// [`crate::networking::DEFAULT_SUBNET_RANGE`]).
    pub subnet: Option<String>,
    /// No port may be published from a service only on internal networks.
    #[serde(default)]
    pub internal: bool,
}

/// One service: one instance, or `replicas` numbered ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Image name.
    pub image: String,
    /// Command (default: the image's).
    #[serde(default)]
    pub command: Vec<String>,
    /// Entrypoint replacing the image's (compose `entrypoint`).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Labels, `KEY=VALUE`, given to every instance.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Services started (and ready) before this one.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Numbered instances `NAME-SERVICE-1..N`; absent: one instance `NAME-SERVICE`.
    pub replicas: Option<u32>,
    /// Networks (short names), the first one carries the default route.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Published ports, `[IP:]HOSTPORT:PORT`.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Environment, `KEY=VALUE`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Memory limit (e.g. `64m`).
    #[serde(default, deserialize_with = "string_or_number")]
    pub memory: Option<String>,
    /// CPUs (fractional).
    #[serde(default, deserialize_with = "string_or_number")]
    pub cpus: Option<String>,
    /// Maximum number of tasks.
    #[serde(default, deserialize_with = "string_or_number")]
    pub pids: Option<String>,
    /// Restart policy (`no`, `always`, `on-failure[:N]`); default `always`.
    pub restart: Option<String>,
    /// Copy-on-write instances (overlay on the shared image).
    #[serde(default)]
    pub cow: bool,
    /// TCP port the service answers HTTP on (readiness check, proxy upstream).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Path answering 200 once an instance is ready (`health = "/"`), or a
    /// table with that `path` and a health check run in each instance
    /// (`health = { cmd = "test -f /ok", interval = "5s" }`).
    #[serde(default)]
    pub health: HealthSpec,
    /// Makes this service an nginx reverse proxy in front of another one.
    pub balance: Option<Balance>,
    /// `NAME:/path[:ro]` (the farm's named volume `FARM-NAME`, made by `up`,
    /// kept by `down` unless `--volumes`) or `/host/dir:/path[:ro]`.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// `/path[:size=64m,mode=1777]` tmpfs mounts.
    #[serde(default)]
    pub tmpfs: Vec<String>,
    /// Root file system mounted read-only.
    #[serde(default)]
    pub read_only: bool,
}

/// A limit written as a string (`"64m"`) or a bare number (`64`, `0.5`).
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        I(i64),
        F(f64),
    }
    Ok(Some(match Raw::deserialize(d)? {
        Raw::S(s) => s,
        Raw::I(i) => i.to_string(),
        Raw::F(f) => f.to_string(),
    }))
}

fn default_port() -> u16 {
    80
}
/// A service's `health`: the readiness path and the health check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSpec {
    /// Path answering 200 once an instance is ready (default `/`).
    pub path: String,
    /// Health check of each instance (`cmd`, `interval`, `timeout`,
    /// `start_period`, `retries`), checked by the command line's parser.
    pub check: HealthOptions,
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec {
            path: "/".into(),
            check: HealthOptions::default(),
        }
    }
}

impl<'de> Deserialize<'de> for HealthSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            path: Option<String>,
            cmd: Option<String>,
            interval: Option<String>,
            timeout: Option<String>,
            start_period: Option<String>,
            #[serde(default, deserialize_with = "string_or_number")]
            retries: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Path(String),
            Table(Table),
        }
        let raw = Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "health must be a path (\"/\") or a table { path, cmd, interval, timeout, start_period, retries }",
            )
        })?;
        Ok(match raw {
            Raw::Path(path) => HealthSpec {
                path,
                ..HealthSpec::default()
            },
            Raw::Table(t) => HealthSpec {
                path: t.path.unwrap_or_else(|| "/".into()),
                check: HealthOptions {
                    cmd: t.cmd,
                    interval: t.interval,
                    timeout: t.timeout,
                    start_period: t.start_period,
                    retries: t.retries,
                    disabled: false,
                },
            },
        })
    }
}

/// The nginx reverse-proxy settings of a service.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Balance {
    /// The service whose instances are the upstream servers.
    pub backends: String,
    /// Network (short name) the backends are reached on (default: the
    /// first network both services share).
    pub network: Option<String>,
    /// Port nginx listens on inside the proxy instance.
    #[serde(default = "default_port")]
    pub listen: u16,
    /// Failed attempts before a backend is taken out for `fail_timeout`.
    #[serde(default = "default_max_fails")]
    pub max_fails: u32,
    /// How long a failed backend is left out before it is tried again.
    #[serde(default = "default_fail_timeout")]
    pub fail_timeout: String,
    /// Connect timeout to a backend (a dead one does not answer ARP).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: String,
    /// Where the generated configuration goes inside the proxy instance.
    #[serde(default = "default_config_path")]
    pub config_path: String,
}

fn default_max_fails() -> u32 {
    1
}
fn default_fail_timeout() -> String {
    "2s".into()
}
fn default_connect_timeout() -> String {
    "1500ms".into()
}
fn default_config_path() -> String {
    "/etc/nginx/conf.d/farm.conf".into()
}

impl Farm {
    /// Parse and check the text of a farm file.
    pub fn parse(text: &str) -> Result<Farm> {
        let farm: Farm = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => {
                let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                Error::Invalid(format!("line {line}: {}", e.message()))
            }
            None => Error::Invalid(e.message().to_string()),
        })?;
        farm.check()?;
        Ok(farm)
    }

    /// Check a parsed farm (any source format) before anything is touched.
    pub(crate) fn check(&self) -> Result<()> {
        util::validate_name("farm", &self.name)?;
        if self.services.is_empty() {
            bail!("no [services.NAME] section: describe at least one service");
        }
        for key in self.networks.keys() {
            util::validate_name("network", &self.network_name(key))?;
        }
        for (key, svc) in &self.services {
            let what = format!("service {key}");
            if key
                .rsplit_once('-')
                .is_some_and(|(_, n)| n.bytes().all(|b| b.is_ascii_digit()))
            {
                bail!("{what}: a service name cannot end with -NUMBER (replica names do)");
            }
            util::validate_name(
                "instance",
                &self.instance_name(key, svc.replicas.map(|_| 1)),
            )?;
            for d in &svc.depends_on {
                if !self.services.contains_key(d) {
                    bail!("{what}: depends on unknown service {d}");
                }
            }
            crate::labels::parse(&svc.labels)
                .map_err(|e| e.context(format!("{what}: bad label")))?;
            if svc.replicas.is_some() && svc.balance.is_some() {
                bail!("{what}: a balancing service has one instance: remove `replicas`");
            }
            for n in &svc.networks {
                if !self.networks.contains_key(n) {
                    bail!("{what}: unknown network {n}: add a [networks.{n}] section");
                }
            }
            if !svc.publish.is_empty() {
                if svc.networks.is_empty() {
                    bail!("{what}: published ports need a network");
                }
                if svc.networks.iter().all(|n| self.networks[n].internal) {
                    bail!("{what}: publishes ports but is only on internal networks");
                }
                for p in &svc.publish {
                    crate::networking::parse_publish(p)?;
                }
            }
        }
        for (key, svc) in &self.services {
            let what = format!("service {key}");
            if let Some(b) = &svc.balance {
                let back = self.services.get(&b.backends).with_context(|| {
                    format!(
                        "{what}: balance.backends names unknown service {}",
                        b.backends
                    )
                })?;
                if back.balance.is_some() {
                    bail!("{what}: backends {} is itself a proxy", b.backends);
                }
                self.backend_network(svc)
                    .with_context(|| format!("{what}: no network shared with {}", b.backends))?;
                for t in [&b.fail_timeout, &b.connect_timeout] {
                    if !is_nginx_time(t) {
                        bail!("{what}: invalid time {t:?}: use e.g. 500ms, 2s, 1m");
                    }
                }
                if !b.config_path.starts_with('/') || b.config_path.contains(['\'', '"', ' ']) {
                    bail!(
                        "{what}: config_path {:?} must be an absolute path without quotes or spaces",
                        b.config_path
                    );
                }
            }
            if !svc.health.path.starts_with('/') || svc.health.path.contains(char::is_whitespace) {
                bail!(
                    "{what}: health {:?} must be a path such as /",
                    svc.health.path
                );
            }
            let check = svc
                .health
                .check
                .parse()
                .map_err(|e| e.context(format!("{what}: bad health")))?;
            if svc.restart_policy()?.acts_on_unhealthy() && !check.enabled() {
                bail!(
                    "{what}: restart {} needs health.cmd",
                    svc.restart.as_deref().unwrap_or("")
                );
            }
            svc.limits()
                .map_err(|e| e.context(format!("{what}: bad limit")))?;
            self.storage(svc)
                .map_err(|e| e.context(format!("{what}: bad volume")))?;
            svc.restart_policy()
                .with_context(|| format!("{what}: bad restart"))?;
        }
        if self.start_order().len() < self.services.len() {
            bail!("depends_on forms a cycle: break it");
        }
        for (key, img) in &self.images {
            util::validate_name("image", key)?;
            if img.rootfs.is_none() && img.build.is_some() {
                bail!("image {key}: `build` needs `rootfs` (where the build goes)");
            }
        }
        Ok(())
    }

    /// The boxctl volume name of the farm's named volume `key`.
    pub fn volume_name(&self, key: &str) -> String {
        format!("{}-{key}", self.name)
    }

    /// The volumes, tmpfs mounts and root mode of `svc`, its named volumes
    /// renamed to the farm's ([`Farm::volume_name`]).
    pub fn storage(&self, svc: &Service) -> Result<Storage> {
        let mut volumes = Vec::new();
        for v in &svc.volumes {
            let m = VolumeMount::parse(v)?;
            volumes.push(match m.source {
                Source::Named(n) => format!(
                    "{}:{}{}",
                    self.volume_name(&n),
                    m.target,
                    if m.read_only { ":ro" } else { "" }
                ),
                Source::Host(_) => v.clone(),
            });
        }
        Storage::new(&volumes, &svc.tmpfs, svc.read_only)
    }

    /// Every named volume the farm's services use (boxctl names).
    pub fn volume_names(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for svc in self.services.values() {
            for n in self.storage(svc)?.volume_names() {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }

    /// The boxctl network name of network `key`.
    pub fn network_name(&self, key: &str) -> String {
        format!("{}-{key}", self.name)
    }

    /// The instance name of a service's instance (`index` None: the only one).
    pub fn instance_name(&self, key: &str, index: Option<u32>) -> String {
        match index {
            Some(i) => format!("{}-{key}-{i}", self.name),
            None => format!("{}-{key}", self.name),
        }
    }

    /// The network (short name) a proxy reaches its backends on.
    pub fn backend_network(&self, proxy: &Service) -> Option<String> {
        let b = proxy.balance.as_ref()?;
        let back = self.services.get(&b.backends)?;
        match &b.network {
            Some(n) => (proxy.networks.contains(n) && back.networks.contains(n)).then(|| n.clone()),
            None => back
                .networks
                .iter()
                .find(|n| proxy.networks.contains(n))
                .cloned(),
        }
    }

    /// Service keys in start order: plain services, then proxies, each
    /// after the services it depends on (a cycle leaves its services out:
    /// [`Farm::check`] refuses it).
    pub fn start_order(&self) -> Vec<&str> {
        let mut pending: Vec<&str> = self
            .services
            .iter()
            .filter(|(_, s)| s.balance.is_none())
            .chain(self.services.iter().filter(|(_, s)| s.balance.is_some()))
            .map(|(k, _)| k.as_str())
            .collect();
        let mut keys: Vec<&str> = Vec::with_capacity(pending.len());
        while let Some(i) = pending.iter().position(|k| {
            self.services[*k]
                .depends_on
                .iter()
                .all(|d| keys.contains(&d.as_str()))
        }) {
            keys.push(pending.remove(i));
        }
        keys
    }

    /// A path from the file, relative to the file's directory.
    pub fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}

impl Service {
    /// The restart policy (default always).
    pub fn restart_policy(&self) -> Result<RestartPolicy> {
        self.restart.as_deref().unwrap_or("always").parse()
    }

    /// The service's limits, through the same parser as the command line's.
    pub fn limits(&self) -> Result<Limits> {
        LimitSpec {
            memory: self.memory.clone(),
            cpus: self.cpus.clone(),
            pids: self.pids.clone(),
            ..LimitSpec::default()
        }
        .parse()
    }
}

/// Whether `t` is an nginx time such as `500ms`, `2s`, `1m`.
fn is_nginx_time(t: &str) -> bool {
    let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &t[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(unit, "" | "ms" | "s" | "m" | "h")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "wf"
[images.web]
rootfs = "/tmp/x"
[networks.back]
subnet = "10.1.2.0/24"
internal = true
[networks.front]
[services.web]
image = "web"
replicas = 2
networks = ["back"]
memory = "64m"
[services.proxy]
image = "proxy"
networks = ["front", "back"]
publish = ["127.0.0.1:8080:80"]
[services.proxy.balance]
backends = "web"
"#;

    #[test]
    fn parses_and_derives_names() {
        let f = Farm::parse(GOOD).unwrap();
        assert_eq!(f.network_name("back"), "wf-back");
        assert_eq!(f.instance_name("web", Some(2)), "wf-web-2");
        assert_eq!(f.instance_name("proxy", None), "wf-proxy");
        assert_eq!(f.start_order(), vec!["web", "proxy"]);
        assert_eq!(
            f.backend_network(&f.services["proxy"]).as_deref(),
            Some("back")
        );
        let b = f.services["proxy"].balance.as_ref().unwrap();
        let n = Farm::parse(&GOOD.replace(
            "memory = \"64m\"",
            "memory = 67108864\npids = 64\ncpus = 0.5",
        ))
        .unwrap();
        let w = &n.services["web"];
        assert_eq!(w.memory.as_deref(), Some("67108864"));
        assert_eq!(w.pids.as_deref(), Some("64"));
        assert_eq!(w.cpus.as_deref(), Some("0.5"));
        assert_eq!(b.max_fails, 1);
        assert_eq!(b.config_path, "/etc/nginx/conf.d/farm.conf");
    }

    #[test]
    fn rejects_bad_files() {
        let cases = [
            (
                GOOD.replace("backends = \"web\"", "backends = \"nope\""),
                "unknown service",
            ),
            (
                GOOD.replace("networks = [\"back\"]", "networks = [\"x\"]"),
                "unknown network",
            ),
            (
                GOOD.replace("[\"front\", \"back\"]", "[\"back\"]"),
                "internal",
            ),
            (
                GOOD.replace("memory = \"64m\"", "memory = \"lots\""),
                "bad limit",
            ),
            (GOOD.replace("name = \"wf\"", "name = \"w f\""), "farm"),
            (
                GOOD.replace("replicas = 2", "replicas = 2\nbogus = 1"),
                "bogus",
            ),
            (
                GOOD.replace("[services.web]", "[services.web-2]")
                    .replace("backends = \"web\"", "backends = \"web-2\""),
                "-NUMBER",
            ),
            (
                GOOD.replace(
                    "backends = \"web\"",
                    "backends = \"web\"\nfail_timeout = \"2 s\"",
                ),
                "invalid time",
            ),
        ];
        for (text, want) in cases {
            let e = Farm::parse(&text).unwrap_err().chain();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn health_is_a_path_or_a_check() {
        let f = Farm::parse(&GOOD.replace(
            "memory = \"64m\"",
            "memory = \"64m\"\nhealth = { cmd = \"test -f /ok\", interval = \"2s\", retries = 2 }",
        ))
        .unwrap();
        let h = &f.services["web"].health;
        assert_eq!(h.path, "/");
        let c = h.check.parse().unwrap();
        assert_eq!(c.cmd.as_deref(), Some("test -f /ok"));
        assert_eq!(c.retries(), 2);
        let f = Farm::parse(&GOOD.replace("memory = \"64m\"", "health = \"/ready\"")).unwrap();
        assert_eq!(f.services["web"].health.path, "/ready");
        assert!(!f.services["web"].health.check.parse().unwrap().enabled());
        for bad in [
            "health = { cmd = \"true\", interval = \"0s\" }",
            "health = { cmd = \"true\", often = 1 }",
            "health = 3",
            "restart = \"on-unhealthy\"",
        ] {
            let text = GOOD.replace("memory = \"64m\"", bad);
            assert!(Farm::parse(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn nginx_times() {
        for t in ["500ms", "2s", "1m", "10"] {
            assert!(is_nginx_time(t), "{t}");
        }
        for t in ["", "s", "2 s", "1.5s", "2x"] {
            assert!(!is_nginx_time(t), "{t}");
        }
    }
}
