//! A farm as a compose file that `docker stack deploy` takes (replicas,
//! resource limits, ports, networks) and `boxctl up` reads back into the
//! same farm (boxctl's own settings under `x-boxctl`).

use std::collections::BTreeSet;

use serde_yaml_ng::{Mapping, Value};

use super::{map, put, strings, to_yaml, yaml_err};
use crate::error::Result;
use crate::farm::spec::{Farm, Service};
use crate::volume_spec::{Source, VolumeMount};

/// The compose file of `farm`.
pub fn render(farm: &Farm) -> Result<String> {
    let mut services = Mapping::new();
    let mut volumes = BTreeSet::new();
    for (key, svc) in &farm.services {
        for v in &svc.volumes {
            if let Source::Named(n) = VolumeMount::parse(v)?.source {
                volumes.insert(n);
            }
        }
        services.insert(Value::from(key.as_str()), service(svc)?);
    }
    let mut networks = Mapping::new();
    for (key, net) in &farm.networks {
        let mut n = map([]);
        if net.internal {
            put(&mut n, "internal", Value::Bool(true));
        }
        if let Some(s) = &net.subnet {
            put(
                &mut n,
                "ipam",
                map([(
                    "config",
                    Value::Sequence(vec![map([("subnet", Value::from(s.as_str()))])]),
                )]),
            );
        }
        networks.insert(Value::from(key.as_str()), n);
    }
    let mut doc = map([
        ("version", Value::from("3.9")),
        ("services", Value::Mapping(services)),
        ("networks", Value::Mapping(networks)),
    ]);
    if !volumes.is_empty() {
        let v: Mapping = volumes
            .iter()
            .map(|n| (Value::from(n.as_str()), map([])))
            .collect();
        put(&mut doc, "volumes", Value::Mapping(v));
    }
    let mut images = Mapping::new();
    for (key, img) in &farm.images {
        let mut img = img.clone();
        // Absolute: the exported file may be written anywhere.
        for p in [&mut img.rootfs, &mut img.build].into_iter().flatten() {
            *p = farm.path(p).display().to_string();
        }
        images.insert(
            Value::from(key.as_str()),
            serde_yaml_ng::to_value(&img).map_err(yaml_err)?,
        );
    }
    put(
        &mut doc,
        "x-boxctl",
        map([
            ("name", Value::from(farm.name.as_str())),
            ("images", Value::Mapping(images)),
        ]),
    );
    Ok(format!(
        "# Farm {} for `docker stack deploy -c FILE {}` (written by `boxctl farm export`);\n\
         # `boxctl up -f FILE` reads it back into the same farm.\n{}",
        farm.name,
        farm.name,
        to_yaml(&doc)?
    ))
}

/// A whole number as a YAML number (the stack schema wants `retries` and
/// `pids` as numbers), anything else as a string.
fn number_or_string(v: &str) -> Value {
    v.parse::<u64>()
        .map_or_else(|_| Value::from(v), Value::from)
}

/// One service.
fn service(svc: &Service) -> Result<Value> {
    let mut s = map([("image", Value::from(svc.image.as_str()))]);
    if !svc.command.is_empty() {
        put(&mut s, "command", strings(&svc.command));
    }
    if let Some(e) = &svc.entrypoint {
        put(&mut s, "entrypoint", strings(e));
    }
    for (k, list) in [
        ("environment", &svc.env),
        ("labels", &svc.labels),
        ("ports", &svc.publish),
        ("volumes", &svc.volumes),
        ("tmpfs", &svc.tmpfs),
        ("depends_on", &svc.depends_on),
    ] {
        if !list.is_empty() {
            put(&mut s, k, strings(list));
        }
    }
    if svc.networks.is_empty() {
        put(&mut s, "network_mode", Value::from("none"));
    } else {
        put(&mut s, "networks", strings(&svc.networks));
    }
    if svc.read_only {
        put(&mut s, "read_only", Value::Bool(true));
    }
    let c = &svc.health.check;
    if let Some(cmd) = &c.cmd {
        let mut h = map([("test", strings(&["CMD-SHELL".to_string(), cmd.clone()]))]);
        for (k, v) in [
            ("interval", &c.interval),
            ("timeout", &c.timeout),
            ("start_period", &c.start_period),
            ("retries", &c.retries),
        ] {
            if let Some(v) = v {
                put(&mut h, k, number_or_string(v));
            }
        }
        put(&mut s, "healthcheck", h);
    }
    if let Some(r) = &svc.restart {
        put(&mut s, "restart", Value::from(r.as_str()));
    }
    let mut deploy = map([]);
    if let Some(n) = svc.replicas {
        put(&mut deploy, "replicas", Value::from(n));
    }
    let mut limits = map([]);
    for (k, v) in [
        ("cpus", &svc.cpus),
        ("memory", &svc.memory),
        ("pids", &svc.pids),
    ] {
        if let Some(v) = v {
            let v = if k == "pids" {
                number_or_string(v)
            } else {
                Value::from(v.as_str())
            };
            put(&mut limits, k, v);
        }
    }
    if limits.as_mapping().is_some_and(|m| !m.is_empty()) {
        put(&mut deploy, "resources", map([("limits", limits)]));
    }
    if deploy.as_mapping().is_some_and(|m| !m.is_empty()) {
        put(&mut s, "deploy", deploy);
    }
    let mut x = map([("port", Value::from(svc.port))]);
    if svc.cow {
        put(&mut x, "cow", Value::Bool(true));
    }
    put(&mut x, "ready", Value::from(svc.health.path.as_str()));
    if let Some(b) = &svc.balance {
        put(
            &mut x,
            "balance",
            serde_yaml_ng::to_value(b).map_err(yaml_err)?,
        );
    }
    put(&mut s, "x-boxctl", x);
    Ok(s)
}
