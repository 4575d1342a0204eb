//! The OCI bundle generated from an instance's characteristics:
//! `ROOT/instances/ID/config.json` with `root.path = "rootfs"` (the mounted disk).

use std::io::Read;
use std::path::Path;

use crate::error::{Context, Result};
use serde_json::{json, Value};

use crate::image::import_tar::open_in;
use crate::instance_file::Instance;

/// Docker's default capability set.
const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The default `PATH` when the image gives none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// cgroupsPath of an instance.
pub fn cgroups_path(id: &str) -> String {
    format!("/boxctl/{id}")
}

/// Resolve `user` (`uid[:gid]`, `name[:group]`) against the image's /etc/passwd and /etc/group.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32)> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let read = |f: &str| -> String {
        let mut s = String::new();
        if let Ok(mut file) = open_in(rootfs, Path::new(f)) {
            let _ = file.read_to_string(&mut s);
        }
        s
    };
    let passwd = read("etc/passwd");
    let lookup = |db: &str, name: &str| -> Option<(u32, u32)> {
        db.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4 && f[0] == name {
                Some((f[2].parse().ok()?, f[3].parse().ok()?))
            } else if f.len() >= 3 && f[0] == name {
                Some((f[2].parse().ok()?, 0))
            } else {
                None
            }
        })
    };
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(uid) => (
            uid,
            passwd
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 4 && f[2] == u)
                        .then(|| f[3].parse().ok())
                        .flatten()
                })
                .unwrap_or(0),
        ),
        Err(_) => lookup(&passwd, u)
            .with_context(|| format!("user {u:?} not found in the image's /etc/passwd"))?,
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(&read("etc/group"), g)
                .map(|(id, _)| id)
                .with_context(|| format!("group {g:?} not found in the image's /etc/group"))?,
        };
    }
    Ok((uid, gid))
}

/// Build config.json for `inst`. `dev`: the loop device's major:minor (for
/// I/O throttles); `netns`: a network namespace path to join (None: a new
/// empty one unless net_mode is host).
pub fn config(
    inst: &Instance,
    rootfs: &Path,
    devs: &[(u64, u64)],
    netns: Option<&Path>,
    extra_mounts: &[Value],
) -> Result<Value> {
    let (uid, gid) = resolve_user(rootfs, &inst.user)?;
    let mut env = inst.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={}", hostname(inst)));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match (inst.net_mode.as_str(), netns) {
        ("host", _) => {}
        (_, Some(p)) => namespaces.push(json!({"type": "network", "path": p})),
        _ => namespaces.push(json!({"type": "network"})),
    }
    let caps = json!(CAPS);
    let mut cfg = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": gid},
            "args": inst.command,
            "env": env,
            "cwd": if inst.workdir.is_empty() { "/" } else { inst.workdir.as_str() },
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile(), "soft": nofile()}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": hostname(inst),
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path(&inst.id),
            "resources": inst.limits.to_oci(devs),
            "namespaces": namespaces,
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                "/proc/sysrq-trigger"]
        }
    });
    if let Some(m) = cfg["mounts"].as_array_mut() {
        m.extend(extra_mounts.iter().cloned());
    }
    Ok(cfg)
}

/// The open-files limit: the caller's hard limit (a container may not exceed it).
fn nofile() -> u64 {
    // SAFETY: zeroed rlimit is valid; getrlimit fills it.
    let mut r: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return 1024;
    }
    r.rlim_max.min(1 << 20)
}

/// The instance's hostname (its name unless given).
pub fn hostname(inst: &Instance) -> &str {
    if inst.hostname.is_empty() {
        &inst.name
    } else {
        &inst.hostname
    }
}

/// Write config.json into `bundle`.
pub fn write(bundle: &Path, cfg: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(cfg).context("cannot serialise config.json")?;
    crate::store::write_quick(&bundle.join("config.json"), text.as_bytes())
}
