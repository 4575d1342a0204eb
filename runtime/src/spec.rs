//! `boxrun spec`: the default config.json, identical in content to `runc spec`.

/// The default spec as JSON (runc 1.1's `runc spec`), optionally rootless.
pub fn default_spec(rootless: bool) -> serde_json::Value {
    let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut v = serde_json::json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
        v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": nix::unistd::getuid().as_raw(), "size": 1}]);
        v["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": nix::unistd::getgid().as_raw(), "size": 1}]);
        v["linux"]["resources"] = serde_json::Value::Null;
        if let Some(o) = v["linux"].as_object_mut() {
            o.remove("resources");
        }
        if let Some(mounts) = v["mounts"].as_array_mut() {
            mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
            for m in mounts.iter_mut() {
                if m["destination"] == "/sys" {
                    *m = serde_json::json!({"destination": "/sys", "type": "none", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
                }
                if m["destination"] == "/dev/pts" {
                    if let Some(opts) = m["options"].as_array_mut() {
                        opts.retain(|o| o != "gid=5");
                    }
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_spec_parses_and_validates() {
        for rootless in [false, true] {
            let v = super::default_spec(rootless);
            let spec: oci_spec::runtime::Spec = serde_json::from_value(v).expect("parse");
            crate::config::validate(&spec, true).expect("valid");
        }
    }
}
