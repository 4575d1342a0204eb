//! One compose service mapped onto a farm service.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

use super::walk::{index, join, shell_join, Problems};
use crate::farm::spec::{Balance, Farm, HealthSpec, Service};

/// The service keys boxctl maps.
const SERVICE: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "networks",
    "network_mode",
    "volumes",
    "tmpfs",
    "read_only",
    "depends_on",
    "healthcheck",
    "restart",
    "deploy",
    "labels",
    "x-boxctl",
];
const HEALTHCHECK: &[&str] = &[
    "test",
    "interval",
    "timeout",
    "start_period",
    "retries",
    "disable",
];
const LIMITS: &[&str] = &["cpus", "memory", "pids"];
const EXTENSION: &[&str] = &["cow", "port", "ready", "balance"];
/// The network a service without `networks` joins, as in compose.
pub const DEFAULT_NETWORK: &str = "default";

/// Map `services` into `farm.services` (`volumes`: the declared named volumes).
pub fn map_all(p: &mut Problems, v: &Value, farm: &mut Farm, volumes: &BTreeSet<String>) {
    let Some(map) = v.as_mapping() else {
        p.bad("services", "expected a mapping");
        return;
    };
    for (k, sv) in map {
        let Some(key) = k.as_str() else {
            p.bad("services", "keys must be strings");
            continue;
        };
        let svc = map_one(p, &join("services", key), sv, farm, volumes);
        if svc.networks.iter().any(|n| n == DEFAULT_NETWORK) {
            farm.networks
                .entry(DEFAULT_NETWORK.to_string())
                .or_default();
        }
        farm.services.insert(key.to_string(), svc);
    }
}

fn map_one(
    p: &mut Problems,
    path: &str,
    v: &Value,
    farm: &Farm,
    volumes: &BTreeSet<String>,
) -> Service {
    let mut s = Service {
        image: String::new(),
        command: Vec::new(),
        entrypoint: None,
        labels: Vec::new(),
        depends_on: Vec::new(),
        replicas: None,
        networks: vec![DEFAULT_NETWORK.to_string()],
        publish: Vec::new(),
        env: Vec::new(),
        memory: None,
        cpus: None,
        pids: None,
        restart: None,
        cow: false,
        port: 80,
        health: HealthSpec::default(),
        balance: None,
        volumes: Vec::new(),
        tmpfs: Vec::new(),
        read_only: false,
    };
    let mut image = None;
    let mut environment = Vec::new();
    for (k, fv) in p.fields(path, v, SERVICE) {
        let fpath = join(path, k);
        match k {
            "image" => image = p.scalar(&fpath, fv),
            "command" => s.command = p.command(&fpath, fv),
            "entrypoint" => s.entrypoint = Some(p.command(&fpath, fv)),
            "environment" => environment = p.pairs(&fpath, fv),
            "env_file" => {
                for f in p.one_or_many(&fpath, fv) {
                    env_file(p, &fpath, &farm.path(&f), &mut s.env);
                }
            }
            "labels" => s.labels = p.pairs(&fpath, fv),
            "ports" => s.publish = ports(p, &fpath, fv),
            "networks" => s.networks = networks(p, &fpath, fv),
            "network_mode" => {
                if fv.as_str() == Some("none") {
                    s.networks.clear();
                } else {
                    p.bad(&fpath, "only `none` is supported (services join networks)");
                }
            }
            "volumes" => s.volumes = mounts(p, &fpath, fv, farm, volumes),
            "tmpfs" => s.tmpfs = p.one_or_many(&fpath, fv),
            "read_only" => s.read_only = p.boolean(&fpath, fv),
            "depends_on" => s.depends_on = depends_on(p, &fpath, fv),
            "healthcheck" => healthcheck(p, &fpath, fv, &mut s.health),
            "restart" => {
                s.restart = p.scalar(&fpath, fv).map(|r| match r.as_str() {
                    // boxctl has no daemon restart to survive: the same as always.
                    "unless-stopped" => "always".into(),
                    _ => r,
                })
            }
            "deploy" => deploy(p, &fpath, fv, &mut s),
            _ => extension(p, &fpath, fv, &mut s),
        }
    }
    s.env.extend(environment);
    match image {
        Some(i) => s.image = i,
        None => p.bad(
            &join(path, "image"),
            "missing: name the boxctl image to run",
        ),
    }
    s
}

/// Append an env file's `KEY=VALUE` lines (blank lines and `#` comments skipped).
fn env_file(p: &mut Problems, path: &str, file: &std::path::Path, env: &mut Vec<String>) {
    match std::fs::read_to_string(file) {
        Ok(text) => env.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        ),
        Err(e) => p.bad(path, &format!("cannot read {}: {e}", file.display())),
    }
}

/// `ports`: `[IP:]HOST:CONTAINER[/tcp]` strings or the long form
/// (`target`, `published`, `host_ip`, `protocol`).
fn ports(p: &mut Problems, path: &str, v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(seq) = v.as_sequence() else {
        p.bad(path, "expected a list");
        return out;
    };
    for (i, item) in seq.iter().enumerate() {
        let ipath = index(path, i);
        let spec = if item.is_mapping() {
            let (mut target, mut published, mut ip) = (None, None, None);
            for (k, fv) in p.fields(
                &ipath,
                item,
                &["target", "published", "host_ip", "protocol"],
            ) {
                let fpath = join(&ipath, k);
                match k {
                    "target" => target = p.scalar(&fpath, fv),
                    "published" => published = p.scalar(&fpath, fv),
                    "host_ip" => ip = p.scalar(&fpath, fv),
                    _ => {
                        if fv.as_str() != Some("tcp") {
                            p.bad(&fpath, "only tcp ports are supported");
                        }
                    }
                }
            }
            let (Some(t), Some(pb)) = (target, published) else {
                p.bad(&ipath, "needs target and published");
                continue;
            };
            match ip {
                Some(ip) => format!("{ip}:{pb}:{t}"),
                None => format!("{pb}:{t}"),
            }
        } else {
            let Some(s) = p.scalar(&ipath, item) else {
                continue;
            };
            match s.split_once('/') {
                Some((s, "tcp")) => s.to_string(),
                Some(_) => {
                    p.bad(&ipath, "only tcp ports are supported");
                    continue;
                }
                None => s,
            }
        };
        if !spec.contains(':') {
            p.bad(
                &ipath,
                "give the host port too (HOST:CONTAINER): boxctl picks none",
            );
            continue;
        }
        out.push(spec);
    }
    out
}

/// Service `networks`: a list of names, or a mapping of names to nothing.
fn networks(p: &mut Problems, path: &str, v: &Value) -> Vec<String> {
    match v.as_mapping() {
        Some(map) => {
            let mut out = Vec::new();
            for (k, nv) in map {
                let Some(k) = k.as_str() else {
                    p.bad(path, "keys must be strings");
                    continue;
                };
                p.fields(&join(path, k), nv, &[]);
                out.push(k.to_string());
            }
            out
        }
        None => p.list(path, v),
    }
}

/// Service `volumes`: `SOURCE:TARGET[:ro]` strings or the long form
/// (`type` volume or bind, `source`, `target`, `read_only`). A bind's
/// relative source is taken from the file's directory; a named volume must
/// be declared under the top-level `volumes`.
fn mounts(
    p: &mut Problems,
    path: &str,
    v: &Value,
    farm: &Farm,
    declared: &BTreeSet<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let Some(seq) = v.as_sequence() else {
        p.bad(path, "expected a list");
        return out;
    };
    for (i, item) in seq.iter().enumerate() {
        let ipath = index(path, i);
        let (source, target, ro) = if item.is_mapping() {
            let (mut source, mut target, mut ro) = (None, None, false);
            for (k, fv) in p.fields(&ipath, item, &["type", "source", "target", "read_only"]) {
                let fpath = join(&ipath, k);
                match k {
                    "type" => {
                        if !matches!(fv.as_str(), Some("volume" | "bind")) {
                            p.bad(&fpath, "only volume and bind are supported");
                        }
                    }
                    "source" => source = p.scalar(&fpath, fv),
                    "target" => target = p.scalar(&fpath, fv),
                    _ => ro = p.boolean(&fpath, fv),
                }
            }
            let (Some(s), Some(t)) = (source, target) else {
                p.bad(
                    &ipath,
                    "needs source and target (anonymous volumes are not supported)",
                );
                continue;
            };
            (s, t, ro)
        } else {
            let Some(s) = p.scalar(&ipath, item) else {
                continue;
            };
            let parts: Vec<&str> = s.split(':').collect();
            match parts.as_slice() {
                [src, dst] => (src.to_string(), dst.to_string(), false),
                [src, dst, "ro"] => (src.to_string(), dst.to_string(), true),
                [src, dst, "rw"] => (src.to_string(), dst.to_string(), false),
                _ => {
                    p.bad(
                        &ipath,
                        "expected SOURCE:TARGET[:ro] (anonymous volumes are not supported)",
                    );
                    continue;
                }
            }
        };
        let source = if source.starts_with('.') || source.starts_with('/') {
            let rel = source.strip_prefix("./").unwrap_or(&source);
            farm.path(rel).display().to_string()
        } else {
            if !declared.contains(&source) {
                p.bad(
                    &ipath,
                    &format!("volume {source} is not declared: add it under the top-level volumes"),
                );
            }
            source
        };
        out.push(format!("{source}:{target}{}", if ro { ":ro" } else { "" }));
    }
    out
}

/// `depends_on`: a list of services, or a mapping with `condition`
/// `service_started` or `service_healthy` (both wait, as a farm does, until
/// the service's instances answer on their ready path).
fn depends_on(p: &mut Problems, path: &str, v: &Value) -> Vec<String> {
    let Some(map) = v.as_mapping() else {
        return p.list(path, v);
    };
    let mut out = Vec::new();
    for (k, dv) in map {
        let Some(k) = k.as_str() else {
            p.bad(path, "keys must be strings");
            continue;
        };
        let dpath = join(path, k);
        for (f, fv) in p.fields(&dpath, dv, &["condition", "required"]) {
            let fpath = join(&dpath, f);
            if f == "condition"
                && !matches!(fv.as_str(), Some("service_started" | "service_healthy"))
            {
                p.bad(
                    &fpath,
                    "only service_started and service_healthy are supported",
                );
            } else if f == "required" && fv.as_bool() != Some(true) {
                p.bad(&fpath, "only required: true is supported");
            }
        }
        out.push(k.to_string());
    }
    out
}

/// `healthcheck`: `test` (`[CMD-SHELL, cmd]`, `[CMD, args...]`, a string,
/// or `[NONE]`), `interval`, `timeout`, `start_period`, `retries`, `disable`.
fn healthcheck(p: &mut Problems, path: &str, v: &Value, h: &mut HealthSpec) {
    for (k, fv) in p.fields(path, v, HEALTHCHECK) {
        let fpath = join(path, k);
        let c = &mut h.check;
        match k {
            "test" => match fv {
                Value::String(s) => c.cmd = Some(s.clone()),
                _ => {
                    let words = p.list(&fpath, fv);
                    match words.split_first() {
                        Some((first, rest)) if first == "CMD-SHELL" && rest.len() == 1 => {
                            c.cmd = Some(rest[0].clone())
                        }
                        Some((first, rest)) if first == "CMD" && !rest.is_empty() => {
                            c.cmd = Some(shell_join(rest))
                        }
                        Some((first, [])) if first == "NONE" => c.disabled = true,
                        _ => p.bad(
                            &fpath,
                            "expected [CMD-SHELL, COMMAND], [CMD, ARG...] or [NONE]",
                        ),
                    }
                }
            },
            "interval" => c.interval = p.scalar(&fpath, fv),
            "timeout" => c.timeout = p.scalar(&fpath, fv),
            "start_period" => c.start_period = p.scalar(&fpath, fv),
            "retries" => c.retries = p.scalar(&fpath, fv),
            _ => c.disabled = p.boolean(&fpath, fv),
        }
    }
    if h.check.disabled {
        h.check = crate::healthcheck::HealthOptions::default();
    }
}

/// `deploy`: `replicas` and `resources.limits` (`cpus`, `memory`, `pids`).
fn deploy(p: &mut Problems, path: &str, v: &Value, s: &mut Service) {
    for (k, fv) in p.fields(path, v, &["replicas", "resources"]) {
        let fpath = join(path, k);
        if k == "replicas" {
            s.replicas = p.number(&fpath, fv);
            continue;
        }
        for (_, lv) in p.fields(&fpath, fv, &["limits"]) {
            let lpath = join(&fpath, "limits");
            for (l, x) in p.fields(&lpath, lv, LIMITS) {
                let value = p.scalar(&join(&lpath, l), x);
                match l {
                    "cpus" => s.cpus = value,
                    "memory" => s.memory = value,
                    _ => s.pids = value,
                }
            }
        }
    }
}

/// The service's `x-boxctl`: `cow`, `port` (where it answers HTTP),
/// `ready` (the path answering 200 once it is ready) and `balance` (an
/// nginx reverse proxy in front of another service).
fn extension(p: &mut Problems, path: &str, v: &Value, s: &mut Service) {
    for (k, fv) in p.fields(path, v, EXTENSION) {
        let fpath = join(path, k);
        match k {
            "cow" => s.cow = p.boolean(&fpath, fv),
            "port" => s.port = p.number(&fpath, fv).unwrap_or(80),
            "ready" => {
                if let Some(r) = p.scalar(&fpath, fv) {
                    s.health.path = r;
                }
            }
            _ => match serde_yaml_ng::from_value::<Balance>(fv.clone()) {
                Ok(b) => s.balance = Some(b),
                Err(e) => p.bad(&fpath, &e.to_string()),
            },
        }
    }
}
