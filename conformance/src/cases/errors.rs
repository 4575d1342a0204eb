//! Configurations the spec says a runtime MUST refuse: create must fail and,
//! per runtime.md "Errors", leave the environment "as if the operation were
//! never attempted" (no state, no state directory, no cgroup).

use crate::runner::{Case, CaseResult, Ctx};
use crate::{check, fail, skip};
use serde_json::json;

/// Cases of this area.
pub const CASES: &[Case] = &[
    Case {
        name: "errors.rlimits-duplicate",
        run: rlimits_duplicate,
    },
    Case {
        name: "errors.rlimits-unknown-type",
        run: rlimits_unknown,
    },
    Case {
        name: "errors.rlimits-soft-above-hard",
        run: rlimits_soft_above_hard,
    },
    Case {
        name: "errors.hook-timeout-zero",
        run: hook_timeout_zero,
    },
    Case {
        name: "errors.namespace-duplicate",
        run: ns_duplicate,
    },
    Case {
        name: "errors.namespace-unknown-type",
        run: ns_unknown,
    },
    Case {
        name: "errors.namespace-path-wrong-type",
        run: ns_wrong_path,
    },
    Case {
        name: "errors.device-path-conflict",
        run: device_conflict,
    },
    Case {
        name: "errors.rootfsPropagation-invalid",
        run: bad_propagation,
    },
    Case {
        name: "errors.cgroup-controller-absent",
        run: absent_controller,
    },
    Case {
        name: "errors.intelRdt-without-resctrl",
        run: intel_rdt,
    },
    Case {
        name: "errors.seccomp-listener-unreachable",
        run: seccomp_listener,
    },
    Case {
        name: "errors.start-without-process",
        run: no_process,
    },
    Case {
        name: "errors.memoryPolicy-offline-node",
        run: memory_policy_offline,
    },
];

/// Create must fail and leave nothing behind.
fn refused(c: &mut Ctx, what: &str) -> CaseResult {
    let id = c.id(1);
    let cg = c.use_cgroup(&id);
    c.set_args(&["/bin/true"]);
    let out = c.try_create(&id)?;
    if out.success() {
        fail!("create accepted {what}; the spec requires an error");
    }
    let st = c.rt(&["state", &id])?;
    check!(
        !st.success(),
        "failed create left a container: {}",
        st.stdout.trim()
    );
    check!(
        !c.root.join(&id).exists(),
        "failed create left {}",
        c.root.join(&id).display()
    );
    let left = super::cgroup_left(
        &cg,
        &[
            "memory", "pids", "cpu", "devices", "freezer", "blkio", "cpuset",
        ],
    );
    check!(
        left.is_empty(),
        "failed create left cgroup {cg} in {left:?}"
    );
    Ok(())
}

fn rlimits_duplicate(c: &mut Ctx) -> CaseResult {
    c.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024},
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}
    ]);
    refused(c, "duplicated rlimits entries")
}

fn rlimits_unknown(c: &mut Ctx) -> CaseResult {
    c.config["process"]["rlimits"] = json!([{"type": "RLIMIT_OC_BOGUS", "soft": 1, "hard": 1}]);
    refused(c, "an rlimit type getrlimit(2) does not define")
}

fn ns_duplicate(c: &mut Ctx) -> CaseResult {
    if let Some(a) = c.config["linux"]["namespaces"].as_array_mut() {
        a.push(json!({"type": "network"}));
    }
    refused(c, "a duplicated network namespace")
}

fn ns_unknown(c: &mut Ctx) -> CaseResult {
    if let Some(a) = c.config["linux"]["namespaces"].as_array_mut() {
        a.push(json!({"type": "oc-bogus"}));
    }
    refused(c, "an unknown namespace type")
}

fn ns_wrong_path(c: &mut Ctx) -> CaseResult {
    c.set_ns("network", Some("/proc/self/ns/ipc"));
    refused(c, "a network namespace path that is an ipc namespace")
}

fn device_conflict(c: &mut Ctx) -> CaseResult {
    std::fs::write(c.rootfs().join("oc-dev"), b"not a device").map_err(anyhow::Error::from)?;
    c.config["linux"]["devices"] = json!([
        {"path": "/oc-dev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}
    ]);
    refused(c, "a device whose path is an existing regular file")
}

fn bad_propagation(c: &mut Ctx) -> CaseResult {
    c.config["linux"]["rootfsPropagation"] = json!("sideways");
    refused(c, "rootfsPropagation \"sideways\"")
}

fn absent_controller(c: &mut Ctx) -> CaseResult {
    let has = |ctrl: &str| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|t| {
                t.lines()
                    .any(|l| l.contains(" - cgroup ") && l.split(',').any(|o| o.trim() == ctrl))
            })
            .unwrap_or(true)
    };
    if has("rdma") {
        skip!("host has the rdma controller; no absent controller to refer to");
    }
    c.config["linux"]["resources"]["rdma"] = json!({"oc0": {"hcaHandles": 3, "hcaObjects": 100}});
    refused(c, "rdma limits on a host without the rdma controller")
}

fn intel_rdt(c: &mut Ctx) -> CaseResult {
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| t.contains(" - resctrl "))
        .unwrap_or(false);
    if mounted {
        skip!("host has resctrl mounted; the no-resctrl error case cannot be tested");
    }
    c.config["linux"]["intelRdt"] = json!({"closID": "oc-conformance"});
    refused(c, "intelRdt without a mounted resctrl filesystem")
}

fn no_process(c: &mut Ctx) -> CaseResult {
    let id = c.id(1);
    c.config.as_object_mut().map(|o| o.remove("process"));
    let out = c.try_create(&id)?;
    if !out.success() {
        // Refusing at create is the earlier, stricter error.
        return Ok(());
    }
    let st = c.rt(&["start", &id])?;
    check!(
        !st.success(),
        "start succeeded on a container without process"
    );
    Ok(())
}

fn seccomp_listener(c: &mut Ctx) -> CaseResult {
    let sock = c.dir.join("no-such-listener.sock");
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "listenerPath": sock.to_string_lossy(),
        "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_NOTIFY"}]
    });
    refused(c, "a seccomp listenerPath nobody listens on")
}

fn rlimits_soft_above_hard(c: &mut Ctx) -> CaseResult {
    c.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]);
    refused(
        c,
        "an rlimit whose soft limit exceeds its hard limit (setrlimit cannot apply it)",
    )
}

fn hook_timeout_zero(c: &mut Ctx) -> CaseResult {
    // config.md: "If set, `timeout` MUST be greater than zero."
    c.config["hooks"] = json!({"createRuntime": [{"path": "/bin/true", "timeout": 0}]});
    refused(c, "a hook timeout of 0")
}

/// A memory policy on a node that is not online cannot be applied: create must
/// fail (a runtime that ignores `linux.memoryPolicy` accepts it and fails here).
fn memory_policy_offline(c: &mut Ctx) -> CaseResult {
    if std::path::Path::new("/sys/devices/system/node/node63").exists() {
        skip!("host has a NUMA node 63");
    }
    c.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "63"});
    refused(c, "memoryPolicy on node 63, which is not online")
}
