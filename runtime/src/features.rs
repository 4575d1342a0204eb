//! `boxrun features`: the OCI features document (runtime-spec features.md).

/// The features JSON.
pub fn document() -> serde_json::Value {
    let caps: Vec<String> = caps::all()
        .iter()
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let apparmor = std::path::Path::new("/sys/kernel/security/apparmor").exists();
    let selinux = std::path::Path::new("/sys/fs/selinux").exists();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": {"enabled": apparmor},
            "selinux": {"enabled": selinux},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
            "memoryPolicy": {
                "modes": ["MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
                    "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"],
                "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
            }
        },
        "annotations": {
            "io.github.boxrun.version": env!("CARGO_PKG_VERSION"),
            "org.opencontainers.runc.checkpoint.enabled": "true"
        }
    })
}

/// Every mount option word boxrun applies: the mount(2) flags, propagation and the
/// recursive (mount_setattr) options.
fn mount_options() -> Vec<&'static str> {
    let mut all = vec![
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "loud",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "nosymfollow",
        "private",
        "rbind",
        "relatime",
        "remount",
        "ro",
        "rprivate",
        "rshared",
        "rslave",
        "runbindable",
        "rw",
        "shared",
        "silent",
        "slave",
        "strictatime",
        "suid",
        "symfollow",
        "sync",
        "unbindable",
    ];
    all.extend(crate::mounts::RECURSIVE_OPTIONS);
    all.sort_unstable();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &serde_json::Value) -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn every_listed_mount_option_is_one_boxrun_applies() {
        let doc = document();
        let listed = strings(&doc["mountOptions"]);
        for w in &listed {
            let o = crate::mounts::parse(std::slice::from_ref(w));
            assert_eq!(o.data, "", "{w} is listed but passed on as filesystem data");
        }
        for w in crate::mounts::RECURSIVE_OPTIONS {
            assert!(
                listed.iter().any(|l| l == w),
                "{w} is applied but not listed"
            );
        }
        for w in ["idmap", "ridmap", "tmpcopyup"] {
            assert!(
                !listed.iter().any(|l| l == w),
                "{w} is listed but not applied"
            );
        }
    }

    #[test]
    fn every_listed_memory_policy_mode_and_flag_is_accepted() {
        let doc = document();
        let flags = strings(&doc["linux"]["memoryPolicy"]["flags"]);
        for mode in strings(&doc["linux"]["memoryPolicy"]["modes"]) {
            let nodes = if matches!(mode.as_str(), "MPOL_DEFAULT" | "MPOL_LOCAL") {
                serde_json::Value::Null
            } else {
                "0".into()
            };
            let p = serde_json::json!({"mode": mode, "nodes": nodes, "flags": flags});
            let p: oci_spec::runtime::LinuxMemoryPolicy =
                serde_json::from_value(p).expect("listed names parse");
            assert!(crate::mempolicy::policy(&p).is_ok(), "{mode} refused");
        }
    }
}
