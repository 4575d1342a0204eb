//! The guard against silently dropped fields: every field a config.json can carry
//! (runtime-spec config.md and config-linux.md, v1.2 plus memoryPolicy and netDevices)
//! is either applied, and then the conformance checker verifies it from inside the
//! container (or a conformance case from outside, for what acts outside: hooks,
//! annotations, the state), or boxrun refuses it at create with an error naming it.
//! A field with neither has no row, and a new row must say which (issue 22).

mod common;
use common::*;
use serde_json::{json, Value};

/// How a field is shown to be applied or refused.
enum How {
    /// A conformance checker check (its name, or the prefix of a family such as
    /// `sysctl.`) compares it with what the container sees.
    Inside(&'static str),
    /// A conformance case verifies it from outside the container.
    Case(&'static str),
    /// boxrun's create fails with this fragment in the error; the JSON is the value
    /// that sets the field.
    Refused(&'static str, &'static str),
    /// The spec lets a runtime ignore it; the sentence says so.
    MayIgnore(&'static str),
}
use How::*;

/// Every field, as a JSON pointer (`/0/` stands for each array element).
const FIELDS: &[(&str, How)] = &[
    ("/ociVersion", Case("lifecycle.state-transitions")),
    ("/root/path", Case("mounts.root-absolute-path")),
    ("/root/readonly", Inside("root.readonly")),
    ("/mounts/0/destination", Inside("mounts.order")),
    ("/mounts/0/type", Inside("mounts.")),
    ("/mounts/0/source", Inside("mounts.")),
    ("/mounts/0/options", Inside("mounts.")),
    ("/mounts/0/uidMappings", Refused(r#"[{"containerID": 0, "hostID": 1000, "size": 1}]"#, "idmapped mount")),
    ("/mounts/0/gidMappings", Refused(r#"[{"containerID": 0, "hostID": 1000, "size": 1}]"#, "idmapped mount")),
    ("/process/terminal", Inside("process.terminal")),
    ("/process/consoleSize", Inside("process.consoleSize")),
    ("/process/user/uid", Inside("process.user.uid")),
    ("/process/user/gid", Inside("process.user.gid")),
    ("/process/user/umask", Inside("process.user.umask")),
    ("/process/user/additionalGids", Inside("process.user.additionalGids")),
    ("/process/user/username", Refused(r#""root""#, "process.user.username")),
    ("/process/args", Inside("process.args")),
    ("/process/commandLine", Refused(r#""sh""#, "process.commandLine")),
    ("/process/env", Inside("process.env")),
    ("/process/cwd", Inside("process.cwd")),
    ("/process/capabilities/bounding", Inside("process.capabilities")),
    ("/process/capabilities/effective", Inside("process.capabilities")),
    ("/process/capabilities/permitted", Inside("process.capabilities")),
    ("/process/capabilities/inheritable", Inside("process.capabilities")),
    ("/process/capabilities/ambient", Inside("process.capabilities")),
    ("/process/rlimits", Inside("process.rlimits.")),
    ("/process/noNewPrivileges", Inside("process.noNewPrivileges")),
    ("/process/oomScoreAdj", Inside("process.oomScoreAdj")),
    ("/process/scheduler", Inside("process.scheduler")),
    ("/process/ioPriority", Inside("process.ioPriority")),
    ("/process/execCPUAffinity", Case("cli.exec-cpu-affinity")),
    // This host has neither AppArmor nor SELinux: both are refused naming the field
    // (with them, init.rs writes the profile and label; case process.apparmorProfile).
    ("/process/apparmorProfile", Refused(r#""unconfined""#, "process.apparmorProfile")),
    ("/process/selinuxLabel", Refused(r#""system_u:system_r:container_t:s0""#, "process.selinuxLabel")),
    ("/hostname", Inside("hostname")),
    ("/domainname", Inside("domainname")),
    ("/hooks/prestart", Case("hooks.order-timing-namespace-state")),
    ("/hooks/createRuntime", Case("hooks.order-timing-namespace-state")),
    ("/hooks/createContainer", Case("hooks.order-timing-namespace-state")),
    ("/hooks/startContainer", Case("hooks.startContainer-env")),
    ("/hooks/poststart", Case("hooks.order-timing-namespace-state")),
    ("/hooks/poststop", Case("hooks.order-timing-namespace-state")),
    ("/hooks/prestart/0/args", Case("hooks.args-env")),
    ("/hooks/prestart/0/env", Case("hooks.args-env")),
    ("/hooks/prestart/0/timeout", Case("hooks.timeout")),
    ("/annotations", Case("lifecycle.annotations")),
    ("/linux/namespaces", Inside("ns.")),
    ("/linux/uidMappings", Inside("idmap.uid")),
    ("/linux/gidMappings", Inside("idmap.gid")),
    ("/linux/timeOffsets", Inside("timeOffsets")),
    ("/linux/devices", Inside("devices.config.")),
    ("/linux/cgroupsPath", Case("cgroups.host-readback")),
    ("/linux/rootfsPropagation", Inside("rootfsPropagation")),
    ("/linux/seccomp/defaultAction", Inside("seccomp")),
    ("/linux/seccomp/defaultErrnoRet", Inside("seccomp")),
    ("/linux/seccomp/architectures", Inside("seccomp")),
    ("/linux/seccomp/flags", Inside("seccomp")),
    ("/linux/seccomp/syscalls", Inside("seccomp")),
    ("/linux/seccomp/listenerPath", Case("errors.seccomp-listener-unreachable")),
    ("/linux/seccomp/listenerMetadata", Case("errors.seccomp-listener-unreachable")),
    ("/linux/sysctl", Inside("sysctl.")),
    ("/linux/maskedPaths", Inside("maskedPaths.")),
    ("/linux/readonlyPaths", Inside("readonlyPaths.")),
    ("/linux/mountLabel", Refused(r#""system_u:object_r:container_file_t:s0""#, "linux.mountLabel")),
    ("/linux/intelRdt", Refused(r#"{"closID": "boxrun-fields"}"#, "linux.intelRdt")),
    ("/linux/personality", Inside("personality")),
    ("/linux/memoryPolicy", Inside("memoryPolicy")),
    ("/linux/netDevices", Refused(r#"{"bxfields0": {"name": "eth9"}}"#, "linux.netDevices")),
    ("/linux/resources/devices", Inside("devices.access.")),
    ("/linux/resources/memory/limit", Inside("cgroups.memory.limit")),
    ("/linux/resources/memory/reservation", Inside("cgroups.memory.reservation")),
    ("/linux/resources/memory/swap", Inside("cgroups.memory.swap")),
    ("/linux/resources/memory/kernel", MayIgnore(
        "config-linux.md: kernel memory limits are deprecated (Linux 5.16 stopped enforcing them); runc ignores them too")),
    ("/linux/resources/memory/kernelTCP", Inside("cgroups.memory.kernelTCP")),
    ("/linux/resources/memory/swappiness", Inside("cgroups.memory.swappiness")),
    ("/linux/resources/memory/disableOOMKiller", Inside("cgroups.memory.disableOOMKiller")),
    ("/linux/resources/memory/useHierarchy", Inside("cgroups.memory.useHierarchy")),
    ("/linux/resources/memory/checkBeforeUpdate", Case("cli.update-resources")),
    ("/linux/resources/cpu/shares", Inside("cgroups.cpu.shares")),
    ("/linux/resources/cpu/quota", Inside("cgroups.cpu.quota")),
    ("/linux/resources/cpu/period", Inside("cgroups.cpu.quota")),
    ("/linux/resources/cpu/burst", Inside("cgroups.cpu.burst")),
    ("/linux/resources/cpu/realtimeRuntime", Inside("cgroups.cpu.realtimeRuntime")),
    ("/linux/resources/cpu/realtimePeriod", Inside("cgroups.cpu.realtimePeriod")),
    ("/linux/resources/cpu/cpus", Inside("cgroups.cpuset.cpus")),
    ("/linux/resources/cpu/mems", Inside("cgroups.cpuset.mems")),
    ("/linux/resources/cpu/idle", Inside("cgroups.cpu.idle")),
    ("/linux/resources/pids/limit", Inside("cgroups.pids.limit")),
    ("/linux/resources/blockIO/weight", Inside("cgroups.blockIO.weight")),
    ("/linux/resources/blockIO/leafWeight", Inside("cgroups.blockIO.leafWeight")),
    ("/linux/resources/blockIO/weightDevice", Inside("cgroups.blockIO.")),
    ("/linux/resources/blockIO/throttleReadBpsDevice", Inside("cgroups.blockIO.")),
    ("/linux/resources/blockIO/throttleWriteBpsDevice", Inside("cgroups.blockIO.")),
    ("/linux/resources/blockIO/throttleReadIOPSDevice", Inside("cgroups.blockIO.")),
    ("/linux/resources/blockIO/throttleWriteIOPSDevice", Inside("cgroups.blockIO.")),
    ("/linux/resources/hugepageLimits", Inside("cgroups.hugepageLimits.")),
    ("/linux/resources/network/classID", Inside("cgroups.network.classID")),
    ("/linux/resources/network/priorities", Inside("cgroups.network.priorities")),
    ("/linux/resources/rdma", Inside("cgroups.rdma.")),
    ("/linux/resources/unified", Inside("cgroups.unified.")),
    ("/solaris", Refused(r#"{"milestone": "x"}"#, "solaris")),
    ("/windows", Refused(r#"{"layerFolders": ["C:\\x"]}"#, "windows")),
    ("/vm", Refused(r#"{"hypervisor": {"path": "/bin/true"}, "kernel": {"path": "/bin/true"}}"#, "vm")),
];

/// The conformance checker's source: its check names are literals there.
const CHECKER: &[&str] = &[
    include_str!("../../conformance/src/checker/mod.rs"),
    include_str!("../../conformance/src/checker/namespaces.rs"),
    include_str!("../../conformance/src/checker/process.rs"),
    include_str!("../../conformance/src/checker/mounts.rs"),
    include_str!("../../conformance/src/checker/devices.rs"),
    include_str!("../../conformance/src/checker/kernel.rs"),
];

/// The conformance cases' source: each case is `name: "area.case"`.
const CASES: &[&str] = &[
    include_str!("../../conformance/src/cases/lifecycle.rs"),
    include_str!("../../conformance/src/cases/hooks.rs"),
    include_str!("../../conformance/src/cases/errors.rs"),
    include_str!("../../conformance/src/cases/cli.rs"),
    include_str!("../../conformance/src/cases/process.rs"),
    include_str!("../../conformance/src/cases/namespaces.rs"),
    include_str!("../../conformance/src/cases/mounts.rs"),
    include_str!("../../conformance/src/cases/devices.rs"),
    include_str!("../../conformance/src/cases/cgroups.rs"),
    include_str!("../../conformance/src/cases/kernel.rs"),
];

/// A check of this name (or family) exists: `"name"`, `"name{` (a format!), or a
/// `cgroups.` entry of the checker's table of cgroup files (`"memory.swap",`).
fn checker_has(name: &str) -> bool {
    CHECKER.iter().any(|src| {
        src.contains(&format!("\"{name}\""))
            || src.contains(&format!("\"{name}{{"))
            || name.strip_prefix("cgroups.").is_some_and(|n| {
                src.contains(&format!("\"{n}\",")) || src.contains(&format!("\"cgroups.{n}{{"))
            })
    })
}

fn case_exists(name: &str) -> bool {
    CASES
        .iter()
        .any(|src| src.contains(&format!("name: \"{name}\"")))
}

/// Set `ptr` in `v`, making objects and one-element arrays on the way.
fn set_at(v: &mut Value, ptr: &str, value: Value) {
    let parts: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
    let mut cur = v;
    for (i, p) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        cur = if let Ok(n) = p.parse::<usize>() {
            let a = cur.as_array_mut().expect("an array on the way");
            while a.len() <= n {
                a.push(json!({}));
            }
            &mut a[n]
        } else {
            if !cur.is_object() {
                *cur = json!({});
            }
            let o = cur.as_object_mut().expect("an object");
            if last {
                o.insert(p.to_string(), value);
                return;
            }
            o.entry(p.to_string()).or_insert(json!({}))
        };
    }
}

#[test]
fn every_field_is_verified_from_inside_or_refused_naming_it() {
    let mut missing = Vec::new();
    for (field, how) in FIELDS {
        match how {
            Inside(check) if !checker_has(check) => {
                missing.push(format!("{field}: no checker check {check:?}"))
            }
            Case(case) if !case_exists(case) => {
                missing.push(format!("{field}: no conformance case {case:?}"))
            }
            MayIgnore("") => missing.push(format!("{field}: no reason")),
            _ => {}
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    let mut seen = std::collections::BTreeSet::new();
    for (field, _) in FIELDS {
        assert!(seen.insert(*field), "{field} is listed twice");
    }
}

#[test]
fn every_refused_field_fails_create_with_its_name() {
    let mut wrong = Vec::new();
    for (i, (field, how)) in FIELDS.iter().enumerate() {
        let Refused(value, fragment) = how else {
            continue;
        };
        let mut f = Fixture::new();
        let v: Value = serde_json::from_str(value).expect("row's JSON");
        match field.strip_prefix("/mounts/0/") {
            // A mount of its own, after the default ones.
            Some(key) => {
                let mut m = json!({"destination": "/fields", "type": "bind", "source": "/tmp",
                    "options": ["rbind"]});
                m[key] = v;
                f.config["mounts"].as_array_mut().expect("mounts").push(m);
            }
            None => set_at(&mut f.config, field, v),
        }
        f.save();
        let id = format!("fields{i}");
        let o = f.create(&id);
        let err = format!("{}{}", stderr(&o), f.container_stdout(&id));
        if o.status.success() {
            wrong.push(format!("{field}: create accepted it"));
        } else if !err.contains(fragment) {
            wrong.push(format!("{field}: error does not name {fragment:?}: {err}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
