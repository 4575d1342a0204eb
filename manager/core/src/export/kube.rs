//! A farm as Kubernetes manifests: the `boxrun` RuntimeClass, then a
//! Deployment and a Service per service, every pod with
//! `runtimeClassName: boxrun`. Networks have no counterpart (a cluster's
//! pod network is flat) and neither has a pids limit; a balancing service's
//! backends are also reachable through their own Service, which balances.

use serde_yaml_ng::Value;

use super::{map, put, strings, to_yaml};
use crate::error::Result;
use crate::farm::spec::{Farm, Service};
use crate::networking::parse_publish;
use crate::volume_spec::{Source, VolumeMount};

/// The RuntimeClass (and its handler in containerd or CRI-O) pods select.
pub const RUNTIME_CLASS: &str = "boxrun";

/// The manifests of `farm`, as one multi-document YAML text.
pub fn render(farm: &Farm) -> Result<String> {
    let mut docs = vec![map([
        ("apiVersion", Value::from("node.k8s.io/v1")),
        ("kind", Value::from("RuntimeClass")),
        ("metadata", map([("name", Value::from(RUNTIME_CLASS))])),
        ("handler", Value::from(RUNTIME_CLASS)),
    ])];
    for key in farm.start_order() {
        let svc = &farm.services[key];
        let name = dns_name(&farm.instance_name(key, None));
        let selector = map([
            ("app.kubernetes.io/name", Value::from(dns_name(key))),
            (
                "app.kubernetes.io/part-of",
                Value::from(dns_name(&farm.name)),
            ),
        ]);
        docs.push(deployment(&name, key, svc, &selector)?);
        docs.push(service(&name, svc, &selector)?);
    }
    let mut out = format!(
        "# Farm {} for `kubectl apply -f FILE` (written by `boxctl farm export`): pods run\n\
         # under boxrun through RuntimeClass {RUNTIME_CLASS} (see docs/cluster.md).\n",
        farm.name
    );
    for d in &docs {
        out.push_str("---\n");
        out.push_str(&to_yaml(d)?);
    }
    Ok(out)
}

/// A DNS-1123 label from a boxctl name (lower case; `_` and `.` become `-`).
pub fn dns_name(s: &str) -> String {
    s.to_ascii_lowercase().replace(['_', '.'], "-")
}

fn deployment(name: &str, key: &str, svc: &Service, selector: &Value) -> Result<Value> {
    let mut c = map([
        ("name", Value::from(dns_name(key))),
        ("image", Value::from(svc.image.as_str())),
    ]);
    if let Some(e) = &svc.entrypoint {
        put(&mut c, "command", strings(e));
    }
    if !svc.command.is_empty() {
        put(&mut c, "args", strings(&svc.command));
    }
    if !svc.env.is_empty() {
        let env = svc
            .env
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                map([("name", Value::from(k)), ("value", Value::from(v))])
            })
            .collect();
        put(&mut c, "env", Value::Sequence(env));
    }
    put(
        &mut c,
        "ports",
        Value::Sequence(vec![map([("containerPort", Value::from(svc.port))])]),
    );
    let limits = svc.limits()?;
    let mut l = map([]);
    if let Some(cpus) = limits.cpus {
        put(
            &mut l,
            "cpu",
            Value::from(format!("{}m", (cpus * 1000.0).round() as u64)),
        );
    }
    if let Some(mem) = limits.memory {
        put(&mut l, "memory", Value::from(memory_quantity(mem)));
    }
    if l.as_mapping().is_some_and(|m| !m.is_empty()) {
        put(&mut c, "resources", map([("limits", l)]));
    }
    if svc.balance.is_none() {
        put(
            &mut c,
            "readinessProbe",
            map([(
                "httpGet",
                map([
                    ("path", Value::from(svc.health.path.as_str())),
                    ("port", Value::from(svc.port)),
                ]),
            )]),
        );
    }
    if let Some(cmd) = &svc.health.check.cmd {
        let exec = strings(&["sh".into(), "-c".into(), cmd.clone()]);
        put(
            &mut c,
            "livenessProbe",
            map([("exec", map([("command", exec)]))]),
        );
    }
    if svc.read_only {
        put(
            &mut c,
            "securityContext",
            map([("readOnlyRootFilesystem", Value::Bool(true))]),
        );
    }
    let (mounts, volumes) = volumes(svc)?;
    if !mounts.is_empty() {
        put(&mut c, "volumeMounts", Value::Sequence(mounts));
    }
    let mut pod = map([
        ("runtimeClassName", Value::from(RUNTIME_CLASS)),
        ("containers", Value::Sequence(vec![c])),
    ]);
    if !volumes.is_empty() {
        put(&mut pod, "volumes", Value::Sequence(volumes));
    }
    let mut meta = map([("labels", selector.clone())]);
    if !svc.labels.is_empty() {
        // Annotations: a label's value need not be a valid Kubernetes label value.
        let a = svc
            .labels
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (Value::from(k), Value::from(v))
            })
            .collect();
        put(&mut meta, "annotations", Value::Mapping(a));
    }
    Ok(map([
        ("apiVersion", Value::from("apps/v1")),
        ("kind", Value::from("Deployment")),
        (
            "metadata",
            map([("name", Value::from(name)), ("labels", selector.clone())]),
        ),
        (
            "spec",
            map([
                ("replicas", Value::from(svc.replicas.unwrap_or(1))),
                ("selector", map([("matchLabels", selector.clone())])),
                ("template", map([("metadata", meta), ("spec", pod)])),
            ]),
        ),
    ]))
}

/// A memory size as a Kubernetes quantity (`32Mi`, or bytes).
fn memory_quantity(bytes: u64) -> String {
    const MI: u64 = 1 << 20;
    if bytes.is_multiple_of(MI) {
        format!("{}Mi", bytes / MI)
    } else {
        bytes.to_string()
    }
}

/// The pod's volumes: a named volume or tmpfs is an `emptyDir` (memory for
/// tmpfs), a host directory a `hostPath`.
fn volumes(svc: &Service) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut mounts = Vec::new();
    let mut vols = Vec::new();
    for (i, v) in svc.volumes.iter().enumerate() {
        let m = VolumeMount::parse(v)?;
        let name = format!("vol{i}");
        vols.push(match &m.source {
            Source::Named(_) => map([("name", Value::from(name.as_str())), ("emptyDir", map([]))]),
            Source::Host(p) => map([
                ("name", Value::from(name.as_str())),
                (
                    "hostPath",
                    map([("path", Value::from(p.display().to_string()))]),
                ),
            ]),
        });
        let mut mount = map([
            ("name", Value::from(name)),
            ("mountPath", Value::from(m.target.as_str())),
        ]);
        if m.read_only {
            put(&mut mount, "readOnly", Value::Bool(true));
        }
        mounts.push(mount);
    }
    for (i, t) in svc.tmpfs.iter().enumerate() {
        let name = format!("tmp{i}");
        let target = t.split(':').next().unwrap_or(t);
        vols.push(map([
            ("name", Value::from(name.as_str())),
            ("emptyDir", map([("medium", Value::from("Memory"))])),
        ]));
        mounts.push(map([
            ("name", Value::from(name)),
            ("mountPath", Value::from(target)),
        ]));
    }
    Ok((mounts, vols))
}

fn service(name: &str, svc: &Service, selector: &Value) -> Result<Value> {
    let mut ports = Vec::new();
    for p in &svc.publish {
        let (listen, target) = parse_publish(p)?;
        ports.push(map([
            ("name", Value::from(format!("p{}", listen.port()))),
            ("port", Value::from(listen.port())),
            ("targetPort", Value::from(target)),
        ]));
    }
    let kind = if ports.is_empty() {
        ports.push(map([
            ("name", Value::from("http")),
            ("port", Value::from(svc.port)),
            ("targetPort", Value::from(svc.port)),
        ]));
        "ClusterIP"
    } else {
        "LoadBalancer"
    };
    Ok(map([
        ("apiVersion", Value::from("v1")),
        ("kind", Value::from("Service")),
        (
            "metadata",
            map([("name", Value::from(name)), ("labels", selector.clone())]),
        ),
        (
            "spec",
            map([
                ("type", Value::from(kind)),
                ("selector", selector.clone()),
                ("ports", Value::Sequence(ports)),
            ]),
        ),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_quantities() {
        assert_eq!(dns_name("Web_Farm.x"), "web-farm-x");
        assert_eq!(memory_quantity(32 << 20), "32Mi");
        assert_eq!(memory_quantity(1000), "1000");
    }

    #[test]
    fn volumes_become_pod_volumes() {
        let farm = Farm::parse(
            "name = \"f\"\n[services.db]\nimage = \"bb\"\nvolumes = [\"data:/var/db\", \"/tmp:/srv:ro\"]\n\
             tmpfs = [\"/run:size=8m\"]\nread_only = true\nentrypoint = [\"/bin/env\"]\nenv = [\"A=1\"]\n",
        )
        .unwrap();
        let text = render(&farm).unwrap();
        for want in [
            "emptyDir: {}",
            "path: /tmp",
            "medium: Memory",
            "mountPath: /run",
            "readOnly: true",
            "readOnlyRootFilesystem: true",
            "- /bin/env",
            "value: '1'",
            "runtimeClassName: boxrun",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
    }
}
