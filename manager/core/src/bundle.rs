//! The OCI bundle generated from an instance's characteristics:
//! `ROOT/instances/ID/config.json` with `root.path = "rootfs"` (the mounted disk).

use std::io::Read;
use std::path::Path;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use serde_json::Value;

use crate::error::{Context, Result};

use crate::image::import_tar::open_in;
use crate::instance_file::Instance;

/// Docker's default capability set.
pub const CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
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

/// Build config.json for `inst`. `devs`: the loop devices' major:minor (for
/// I/O throttles); `netns`: a network namespace path to join (None: a new
/// empty one unless net_mode is host); `extra_mounts`: bind mounts of the
/// instance's own files (hosts, resolv.conf).
pub fn config(
    inst: &Instance,
    rootfs: &Path,
    devs: &[(u64, u64)],
    netns: Option<&Path>,
    extra_mounts: &[Mount],
) -> Result<Spec> {
    let (uid, gid) = resolve_user(rootfs, &inst.user)?;
    let mut env = inst.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={}", hostname(inst)));
    }
    if inst.session.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_string());
    }
    let caps: Capabilities = CAPS.into_iter().collect();
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()?;
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);
    let process = ProcessBuilder::default()
        .terminal(inst.session.tty)
        .user(UserBuilder::default().uid(uid).gid(gid).build()?)
        .args(inst.command.clone())
        .env(env)
        .cwd(if inst.workdir.is_empty() {
            "/"
        } else {
            inst.workdir.as_str()
        })
        .capabilities(capabilities)
        .rlimits(vec![PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .hard(nofile())
            .soft(nofile())
            .build()?])
        .no_new_privileges(true)
        .build()?;
    let mut namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ]
    .into_iter()
    .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
    .collect::<std::result::Result<Vec<_>, _>>()?;
    let net = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
    match (inst.net_mode.as_str(), netns) {
        ("host", _) => {}
        (_, Some(p)) => namespaces.push(net.path(p).build()?),
        _ => namespaces.push(net.build()?),
    }
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &[])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
    ];
    mounts.extend(extra_mounts.iter().cloned());
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let linux = LinuxBuilder::default()
        .cgroups_path(cgroups_path(&inst.id))
        .resources(inst.limits.to_oci(devs)?)
        .namespaces(namespaces)
        .masked_paths(strings(&[
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
        ]))
        .readonly_paths(strings(&[
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ]))
        .build()?;
    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .process(process)
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(inst.storage.read_only)
                .build()?,
        )
        .hostname(hostname(inst))
        .mounts(mounts)
        .linux(linux)
        .build()?;
    spec.set_annotations(None);
    let dir = rootfs.parent().unwrap_or(rootfs);
    crate::security::apply(&inst.security, dir, &mut spec)?;
    crate::userns::apply(inst, &mut spec)?;
    Ok(spec)
}

/// One mount of the bundle: `options` empty leaves them out.
pub fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    let b = MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source);
    let b = if options.is_empty() {
        b
    } else {
        b.options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
    };
    Ok(b.build()?)
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
pub fn write(bundle: &Path, cfg: &Spec) -> Result<()> {
    crate::store::write_quick(&bundle.join("config.json"), render(cfg)?.as_bytes())
}

/// config.json's text, the same for the same spec: oci-spec keeps capability sets as
/// hash sets (random order), so they go through a JSON value and come out sorted by
/// name; that value's objects (no `preserve_order`) list their keys sorted too.
fn render(cfg: &Spec) -> Result<String> {
    let mut v = serde_json::to_value(cfg).context("cannot serialise config.json")?;
    if let Some(Value::Object(sets)) = v.pointer_mut("/process/capabilities") {
        for set in sets.values_mut() {
            if let Value::Array(caps) = set {
                caps.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    Ok(serde_json::to_string_pretty(&v)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;

    fn sample() -> Instance {
        let mut inst = crate::instance_file::tests::sample();
        inst.command = vec!["sleep".into(), "5".into()];
        inst.env = vec!["A=B".into()];
        inst.workdir = String::new();
        inst.limits = Limits {
            memory: Some(64 << 20),
            cpus: Some(0.5),
            io_write_bps: Some(1 << 20),
            ..Default::default()
        };
        inst
    }

    #[test]
    fn config_json_carries_the_instance() {
        let bind = mount("/etc/hosts", "bind", "/x/hosts", &["rbind"]).unwrap();
        let ns = Path::new("/run/netns/x");
        let spec = config(
            &sample(),
            Path::new("/nonexistent"),
            &[(7, 3)],
            Some(ns),
            &[bind],
        );
        let v = serde_json::to_value(spec.unwrap()).unwrap();
        assert_eq!(v["ociVersion"], "1.0.2");
        assert_eq!(
            v["root"],
            serde_json::json!({"path": "rootfs", "readonly": false})
        );
        assert_eq!(v["hostname"], "web1");
        assert!(v.get("annotations").is_none(), "{v}");
        let p = &v["process"];
        assert_eq!(p["args"], serde_json::json!(["sleep", "5"]));
        assert_eq!(
            p["env"],
            serde_json::json!([DEFAULT_PATH, "A=B", "HOSTNAME=web1"])
        );
        assert_eq!(p["cwd"], "/");
        assert_eq!(p["user"], serde_json::json!({"uid": 0, "gid": 0}));
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(
            p["capabilities"]["bounding"].as_array().map(Vec::len),
            Some(14)
        );
        assert!(p["capabilities"].get("ambient").is_none(), "{v}");
        let mounts = v["mounts"].as_array().unwrap();
        assert_eq!(mounts.len(), 8);
        assert_eq!(
            mounts[0],
            serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc"})
        );
        assert_eq!(mounts[7]["destination"], "/etc/hosts");
        let l = &v["linux"];
        assert_eq!(l["cgroupsPath"], "/boxctl/0123456789ab");
        assert_eq!(
            l["namespaces"][4],
            serde_json::json!({"type": "network", "path": ns})
        );
        assert_eq!(l["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(l["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(
            l["resources"]["devices"],
            serde_json::json!([{"allow": false, "access": "rwm"}])
        );
        assert_eq!(
            l["resources"]["blockIO"]["throttleWriteBpsDevice"],
            serde_json::json!([{"major": 7, "minor": 3, "rate": 1 << 20}])
        );
        assert_eq!(l["maskedPaths"].as_array().map(Vec::len), Some(10));
        assert_eq!(l["readonlyPaths"].as_array().map(Vec::len), Some(5));
    }

    #[test]
    fn config_json_text_is_the_same_every_time() {
        let text = || {
            let spec = config(&sample(), Path::new("/nonexistent"), &[], None, &[]);
            render(&spec.unwrap()).unwrap()
        };
        let first = text();
        // each build makes new hash sets, each with its own random order
        for _ in 0..8 {
            assert_eq!(text(), first);
        }
        let v: Value = serde_json::from_str(&first).unwrap();
        let caps = &v["process"]["capabilities"];
        for set in ["bounding", "effective", "permitted"] {
            let names: Vec<&str> = caps[set]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(names.len(), 14, "{set}");
            assert!(names.windows(2).all(|w| w[0] < w[1]), "{set}: {names:?}");
            assert_eq!(names[0], "CAP_AUDIT_WRITE", "{set}");
        }
    }
}
