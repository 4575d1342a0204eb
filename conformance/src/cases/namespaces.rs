//! `linux.namespaces` (new, shared, joined), user namespace mappings, time
//! namespace offsets, hostname and domainname.

use crate::runner::{Case, CaseResult, Ctx};
use crate::{check, skip};
use anyhow::Context;
use serde_json::json;
use std::io::BufRead;
use std::process::{Command, Stdio};

/// Cases of this area.
pub const CASES: &[Case] = &[
    Case {
        name: "namespaces.default",
        run: default,
    },
    Case {
        name: "namespaces.host-shared",
        run: host_shared,
    },
    Case {
        name: "namespaces.cgroup",
        run: cgroup,
    },
    Case {
        name: "namespaces.user",
        run: user,
    },
    Case {
        name: "namespaces.time",
        run: time,
    },
    Case {
        name: "namespaces.join-path",
        run: join,
    },
    Case {
        name: "namespaces.hostname-domainname",
        run: hostname,
    },
    Case {
        name: "namespaces.time-user",
        run: time_user,
    },
];

fn default(c: &mut Ctx) -> CaseResult {
    c.expect_checks(&["ns."])
}

fn host_shared(c: &mut Ctx) -> CaseResult {
    for ty in ["network", "ipc", "uts"] {
        c.drop_ns(ty);
    }
    c.config["hostname"] = serde_json::Value::Null;
    // sysfs cannot be mounted fresh without a network namespace.
    if let Some(m) = c.config["mounts"].as_array_mut() {
        for x in m.iter_mut() {
            if x["destination"] == "/sys" {
                *x = json!({"destination": "/sys", "type": "bind", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
        }
    }
    c.expect_checks(&["ns."])
}

fn cgroup(c: &mut Ctx) -> CaseResult {
    c.set_ns("cgroup", None);
    c.expect_checks(&["ns."])
}

fn user(c: &mut Ctx) -> CaseResult {
    c.set_ns("user", None);
    c.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    // A cgroup v1 mount is not permitted from a non-initial user namespace
    // without a cgroup namespace; keep the case about the user namespace.
    if let Some(m) = c.config["mounts"].as_array_mut() {
        m.retain(|x| x["destination"] != "/sys/fs/cgroup");
    }
    c.expect_checks(&["ns.", "idmap", "process.user"])
}

fn time(c: &mut Ctx) -> CaseResult {
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        skip!("kernel without time namespaces");
    }
    c.set_ns("time", None);
    c.config["linux"]["timeOffsets"] = json!({
        "monotonic": {"secs": 86400, "nanosecs": 0},
        "boottime": {"secs": 3600, "nanosecs": 500}
    });
    c.expect_checks_optional(&["ns.", "timeOffsets"], "the time namespace")
}

fn join(c: &mut Ctx) -> CaseResult {
    // A holder process in fresh net/ipc/uts namespaces; it prints once the
    // namespaces exist.
    let child = c.spawn(
        Command::new("unshare")
            .args([
                "--net",
                "--ipc",
                "--uts",
                "--",
                "/bin/sh",
                "-c",
                "echo ready; exec sleep 600",
            ])
            .stdout(Stdio::piped())
            .stdin(Stdio::null()),
    )?;
    let pid = child.id();
    let out = child.stdout.take().context("holder stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(out)
        .read_line(&mut line)
        .context("read holder readiness")?;
    check!(
        line.trim() == "ready",
        "holder process did not start: {line:?}"
    );
    for (ty, n) in [("network", "net"), ("ipc", "ipc"), ("uts", "uts")] {
        let p = format!("/proc/{pid}/ns/{n}");
        c.set_ns(ty, Some(&p));
    }
    // The joined UTS namespace is not ours to rename.
    c.config["hostname"] = serde_json::Value::Null;
    c.expect_checks(&["ns."])
}

fn hostname(c: &mut Ctx) -> CaseResult {
    c.config["hostname"] = json!("oc-host");
    c.config["domainname"] = json!("oc.example");
    c.expect_checks_optional(&["hostname", "domainname"], "domainname")
}

/// `linux.timeOffsets` in a time namespace owned by a new user namespace: the
/// offsets must be written while the runtime still may (before the identity
/// change), and the checker reads them back.
fn time_user(c: &mut Ctx) -> CaseResult {
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        skip!("kernel without time namespaces");
    }
    c.set_ns("user", None);
    c.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    if let Some(m) = c.config["mounts"].as_array_mut() {
        m.retain(|x| x["destination"] != "/sys/fs/cgroup");
    }
    c.set_ns("time", None);
    c.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}});
    c.expect_checks_optional(
        &["ns.time", "ns.user", "timeOffsets"],
        "a time namespace in a user namespace",
    )
}
