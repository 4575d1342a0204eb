//! Security options users pass as they do to docker: capabilities
//! (`--cap-add/--cap-drop`), `--security-opt no-new-privileges|seccomp=…`,
//! host devices (`--device`), `--ulimit`, `--shm-size` and `--privileged`;
//! checked at create into [`Security`] (recorded in the instance file) and
//! applied to the instance's config.json by [`apply`] at each start.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, Capability, LinuxDeviceBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxSeccomp, PosixRlimitBuilder, PosixRlimitType, Spec,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Context, Result};
use crate::invalid;

/// File of an instance's seccomp profile (a checked copy of the user's).
pub const SECCOMP_FILE: &str = "seccomp.json";

/// The security options as a user writes them on `create`/`run`.
#[derive(Debug, Clone, Default)]
pub struct SecurityOptions {
    /// `--cap-add` each (docker names, with or without `CAP_`, or `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop` each.
    pub cap_drop: Vec<String>,
    /// `--security-opt` each.
    pub security_opt: Vec<String>,
    /// `--device HOST[:CTR][:rwm]` each.
    pub devices: Vec<String>,
    /// `--ulimit NAME=SOFT[:HARD]` each.
    pub ulimits: Vec<String>,
    /// `--shm-size`.
    pub shm_size: Option<String>,
    /// `--privileged`.
    pub privileged: bool,
}

/// The checked security options of an instance, as the instance file keeps
/// them (absent keys: boxctl's defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// Capabilities added to docker's default set (`CAP_…` names or `ALL`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Capabilities dropped from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// `no_new_privs` (None: set, unless privileged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_new_privileges: Option<bool>,
    /// Empty: no filter (boxctl's default); `unconfined`; or the path of the
    /// profile given, whose checked copy is the instance's `seccomp.json`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub seccomp: String,
    /// Host devices as `HOST:CTR:PERMS`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Resource limits as `NAME=SOFT:HARD` (`-1`: unlimited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<String>,
    /// Size of /dev/shm in bytes (None: 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// All capabilities, all host devices, no seccomp filter, no masked or
    /// read-only paths, /sys writable.
    #[serde(default, skip_serializing_if = "is_false")]
    pub privileged: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Every capability by kernel number (capability.h).
const ALL_CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// docker's `--ulimit` names.
const ULIMITS: [(&str, PosixRlimitType); 16] = [
    ("as", PosixRlimitType::RlimitAs),
    ("core", PosixRlimitType::RlimitCore),
    ("cpu", PosixRlimitType::RlimitCpu),
    ("data", PosixRlimitType::RlimitData),
    ("fsize", PosixRlimitType::RlimitFsize),
    ("locks", PosixRlimitType::RlimitLocks),
    ("memlock", PosixRlimitType::RlimitMemlock),
    ("msgqueue", PosixRlimitType::RlimitMsgqueue),
    ("nice", PosixRlimitType::RlimitNice),
    ("nofile", PosixRlimitType::RlimitNofile),
    ("nproc", PosixRlimitType::RlimitNproc),
    ("rss", PosixRlimitType::RlimitRss),
    ("rtprio", PosixRlimitType::RlimitRtprio),
    ("rttime", PosixRlimitType::RlimitRttime),
    ("sigpending", PosixRlimitType::RlimitSigpending),
    ("stack", PosixRlimitType::RlimitStack),
];

impl SecurityOptions {
    /// Check every option; returns the instance's [`Security`] and, for
    /// `seccomp=FILE`, the checked profile to copy into the instance.
    pub fn parse(&self) -> Result<(Security, Option<String>)> {
        let caps = |opt: &str, list: &[String]| -> Result<Vec<String>> {
            list.iter().map(|c| cap_name(opt, c)).collect()
        };
        let have = all_caps();
        if let Some(c) = self
            .cap_add
            .iter()
            .filter_map(|c| cap_name("--cap-add", c).ok())
            .find(|c| c != "ALL" && !have.contains(&&c[4..]))
        {
            invalid!(
                "cannot add capability {c}: boxctl itself does not have it (not in its bounding \
                 set), so no instance can be given it"
            );
        }
        let mut sec = Security {
            cap_add: caps("--cap-add", &self.cap_add)?,
            cap_drop: caps("--cap-drop", &self.cap_drop)?,
            privileged: self.privileged,
            ..Security::default()
        };
        let mut profile = None;
        for o in &self.security_opt {
            let (key, value) = o
                .split_once(['=', ':'])
                .map_or((o.as_str(), None), |(k, v)| (k, Some(v)));
            match (key, value) {
                ("no-new-privileges", None | Some("true")) => sec.no_new_privileges = Some(true),
                ("no-new-privileges", Some("false")) => sec.no_new_privileges = Some(false),
                ("seccomp", Some("unconfined")) => {
                    sec.seccomp = "unconfined".into();
                    profile = None;
                }
                ("seccomp", Some(file)) if !file.is_empty() => {
                    let (path, text) = read_profile(Path::new(file))?;
                    sec.seccomp = path.display().to_string();
                    profile = Some(text);
                }
                _ => invalid!(
                    "unsupported --security-opt {o:?}: boxctl takes no-new-privileges[=true|false], \
                     seccomp=PROFILE.json and seccomp=unconfined (no AppArmor or SELinux labels)"
                ),
            }
        }
        for d in &self.devices {
            sec.devices.push(parse_device(d)?);
        }
        for u in &self.ulimits {
            let (name, soft, hard) = parse_ulimit(u)?;
            sec.ulimits.retain(|x| !x.starts_with(&format!("{name}=")));
            sec.ulimits
                .push(format!("{name}={}:{}", limit_text(soft), limit_text(hard)));
        }
        if let Some(s) = &self.shm_size {
            let n = crate::limits::parse_size("--shm-size", s)?;
            if n == 0 {
                invalid!("invalid --shm-size {s:?}: expected a size above 0 (e.g. 64m, 1g)");
            }
            sec.shm_size = Some(n);
        }
        Ok((sec, profile))
    }
}

/// `name` as `CAP_NAME`, or `ALL`; an unknown one is refused, named.
fn cap_name(opt: &str, name: &str) -> Result<String> {
    if name.eq_ignore_ascii_case("all") {
        return Ok("ALL".into());
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if !ALL_CAPS.contains(&bare) {
        invalid!(
            "unknown capability {name:?} in {opt}: expected a name such as NET_ADMIN or \
             CAP_SYS_PTRACE, or ALL (see capabilities(7))"
        );
    }
    Ok(format!("CAP_{bare}"))
}

fn capability(name: &str) -> Result<Capability> {
    serde_json::from_value(Value::String(name.to_string()))
        .with_context(|| format!("unknown capability {name}"))
}

/// Every capability boxctl itself may hand on: those in its own bounding
/// set (a sandboxed host may lack some the kernel knows).
fn all_caps() -> Vec<&'static str> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(n, _)| bounding & (1 << n) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// The capability set of an instance: docker's defaults, or all with
/// `--privileged` or `--cap-add ALL`; less `--cap-drop` (all with `ALL`);
/// plus the other `--cap-add`s.
pub fn capabilities(sec: &Security) -> Result<Capabilities> {
    let all = || -> Result<Capabilities> {
        all_caps()
            .into_iter()
            .map(|c| capability(&format!("CAP_{c}")))
            .collect()
    };
    let mut set: Capabilities = if sec.privileged || sec.cap_add.iter().any(|c| c == "ALL") {
        all()?
    } else {
        crate::bundle::CAPS.into_iter().collect()
    };
    if !sec.privileged {
        for c in &sec.cap_drop {
            if c == "ALL" {
                set.clear();
            } else {
                set.remove(&capability(c)?);
            }
        }
    }
    for c in sec.cap_add.iter().filter(|c| *c != "ALL") {
        set.insert(capability(c)?);
    }
    Ok(set)
}

/// Read and check a seccomp profile: the OCI `linux.seccomp` form or
/// docker's (`archMap` becomes `architectures`; conditional rules with
/// `includes`/`excludes` are refused). Returns the absolute path and the
/// profile as config.json will carry it.
fn read_profile(file: &Path) -> Result<(PathBuf, String)> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        crate::error::Error::Invalid(format!(
            "cannot read seccomp profile {}: {e}: give an existing JSON file or seccomp=unconfined",
            file.display()
        ))
    })?;
    let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let bad = |why: String| -> crate::error::Error {
        crate::error::Error::Invalid(format!("invalid seccomp profile {}: {why}", path.display()))
    };
    let mut v: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| bad("expected a JSON object".into()))?;
    if !obj.contains_key("defaultAction") {
        return Err(bad("no defaultAction".into()));
    }
    if let Some(map) = obj.remove("archMap") {
        let mut arches = Vec::new();
        for a in map.as_array().into_iter().flatten() {
            arches.extend(a.get("architecture").cloned());
            arches.extend(
                a["subArchitectures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
        obj.insert("architectures".into(), Value::Array(arches));
    }
    for (i, rule) in obj
        .get_mut("syscalls")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(rule) = rule.as_object_mut() else {
            return Err(bad(format!("syscalls[{i}] is not an object")));
        };
        for key in ["includes", "excludes"] {
            if let Some(c) = rule.remove(key) {
                if c.as_object().is_some_and(|m| !m.is_empty()) {
                    return Err(bad(format!(
                        "syscalls[{i}] has conditional {key}, which boxctl does not evaluate: \
                         write the rules for this host without them"
                    )));
                }
            }
        }
        rule.remove("comment");
        if rule
            .get("names")
            .and_then(Value::as_array)
            .is_none_or(|n| n.is_empty())
        {
            return Err(bad(format!("syscalls[{i}] names no system call")));
        }
    }
    let seccomp: LinuxSeccomp = serde_json::from_value(v).map_err(|e| bad(e.to_string()))?;
    Ok((path, serde_json::to_string_pretty(&seccomp)?))
}

/// Check `HOST[:CTR][:PERMS]` against the host; returns `HOST:CTR:PERMS`.
fn parse_device(spec: &str) -> Result<String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let is_perms =
        |s: &str| !s.is_empty() && s.len() <= 3 && s.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if is_perms(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => invalid!("invalid --device {spec:?}: expected HOST[:CONTAINER][:PERMISSIONS]"),
    };
    if !host.starts_with('/') || !ctr.starts_with('/') {
        invalid!("invalid --device {spec:?}: device paths must be absolute (e.g. /dev/fuse)");
    }
    if !is_perms(perms) {
        invalid!("invalid --device {spec:?}: permissions are letters of rwm");
    }
    host_device(Path::new(host))?;
    Ok(format!("{host}:{ctr}:{perms}"))
}

/// Type, major, minor and mode of host device `path`; refused unless it is
/// a character or block device.
fn host_device(path: &Path) -> Result<(LinuxDeviceType, i64, i64, u32)> {
    let md = std::fs::metadata(path).map_err(|e| {
        crate::error::Error::Invalid(format!(
            "cannot use device {}: {e}: give an existing device node",
            path.display()
        ))
    })?;
    let typ = if md.file_type().is_char_device() {
        LinuxDeviceType::C
    } else if md.file_type().is_block_device() {
        LinuxDeviceType::B
    } else {
        invalid!(
            "cannot use device {}: not a character or block device",
            path.display()
        );
    };
    let dev = md.rdev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    Ok((typ, major as i64, minor as i64, md.mode() & 0o7777))
}

fn parse_ulimit(u: &str) -> Result<(&str, u64, u64)> {
    let bad = || {
        crate::error::Error::Invalid(format!(
            "invalid --ulimit {u:?}: expected NAME=SOFT[:HARD] with NAME one of {} and numbers \
             or -1 (unlimited)",
            ULIMITS.map(|(n, _)| n).join(", ")
        ))
    };
    let (name, values) = u.split_once('=').ok_or_else(bad)?;
    if !ULIMITS.iter().any(|(n, _)| *n == name) {
        return Err(bad());
    }
    let num = |s: &str| -> Result<u64> {
        match s {
            "-1" | "unlimited" => Ok(u64::MAX),
            _ => s.parse().map_err(|_| bad()),
        }
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => (num(values)?, num(values)?),
    };
    if soft > hard {
        invalid!("invalid --ulimit {u:?}: the soft limit is above the hard limit");
    }
    Ok((name, soft, hard))
}

fn limit_text(n: u64) -> String {
    if n == u64::MAX {
        "-1".into()
    } else {
        n.to_string()
    }
}

/// Apply `sec` to config.json `spec` of the instance whose directory is
/// `dir` (built with boxctl's defaults by [`crate::bundle::config`]).
pub fn apply(sec: &Security, dir: &Path, spec: &mut Spec) -> Result<()> {
    let mut process = spec.process().clone().unwrap_or_default();
    let caps = capabilities(sec)?;
    if let Some(mut c) = process.capabilities().clone() {
        c.set_bounding(Some(caps.clone()));
        c.set_effective(Some(caps.clone()));
        c.set_permitted(Some(caps));
        process.set_capabilities(Some(c));
    }
    process.set_no_new_privileges(Some(sec.no_new_privileges.unwrap_or(!sec.privileged)));
    let mut rlimits = process.rlimits().clone().unwrap_or_default();
    for u in &sec.ulimits {
        let (name, soft, hard) = parse_ulimit(u)?;
        let typ = ULIMITS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .context("unknown ulimit")?;
        rlimits.retain(|r| r.typ() != typ);
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()?,
        );
    }
    process.set_rlimits(Some(rlimits));
    spec.set_process(Some(process));

    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in mounts.iter_mut() {
        let dest = m.destination().clone();
        let Some(opts) = m.options().clone() else {
            continue;
        };
        let opts: Vec<String> = match dest.to_str() {
            Some("/dev/shm") => opts
                .into_iter()
                .map(|o| match sec.shm_size {
                    Some(n) if o.starts_with("size=") => format!("size={n}"),
                    _ => o,
                })
                .collect(),
            Some("/sys" | "/sys/fs/cgroup") if sec.privileged => {
                opts.into_iter().filter(|o| o != "ro").collect()
            }
            _ => opts,
        };
        m.set_options(Some(opts));
    }
    spec.set_mounts(Some(mounts));

    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut devices = Vec::new();
    let mut rules = Vec::new();
    if sec.privileged {
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::A)
                .access("rwm")
                .build()?,
        );
        for path in host_devices(Path::new("/dev")) {
            let host = path.display().to_string();
            devices.push(format!("{host}:{host}:rwm"));
        }
    }
    devices.extend(sec.devices.iter().cloned());
    let mut nodes: Vec<oci_spec::runtime::LinuxDevice> = Vec::new();
    for d in &devices {
        let mut it = d.splitn(3, ':');
        let (host, ctr, perms) = (
            it.next().unwrap_or_default(),
            it.next().unwrap_or_default(),
            it.next().unwrap_or("rwm"),
        );
        let (typ, major, minor, mode) = match host_device(Path::new(host)) {
            Ok(t) => t,
            // A host device that went away is skipped under --privileged only.
            Err(_) if sec.privileged && !sec.devices.contains(d) => continue,
            Err(e) => return Err(e),
        };
        nodes.retain(|n| n.path() != Path::new(ctr));
        nodes.push(
            LinuxDeviceBuilder::default()
                .path(ctr)
                .typ(typ)
                .major(major)
                .minor(minor)
                .file_mode(mode)
                .uid(0u32)
                .gid(0u32)
                .build()?,
        );
        if !sec.privileged {
            rules.push(
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(typ)
                    .major(major)
                    .minor(minor)
                    .access(perms)
                    .build()?,
            );
        }
    }
    if !nodes.is_empty() {
        linux.set_devices(Some(nodes));
    }
    if !rules.is_empty() {
        let mut res = linux.resources().clone().unwrap_or_default();
        let mut all = res.devices().clone().unwrap_or_default();
        all.extend(rules);
        res.set_devices(Some(all));
        linux.set_resources(Some(res));
    }
    if !sec.seccomp.is_empty() && sec.seccomp != "unconfined" {
        let file = dir.join(SECCOMP_FILE);
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read the seccomp profile {}", file.display()))?;
        let profile: LinuxSeccomp = serde_json::from_str(&text)
            .with_context(|| format!("invalid seccomp profile {}", file.display()))?;
        linux.set_seccomp(Some(profile));
    }
    spec.set_linux(Some(linux));
    Ok(())
}

/// Character and block devices under `dir` (not pts, shm, mqueue, the
/// console and ptmx, which every instance gets its own of).
fn host_devices(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        if matches!(
            name.to_str(),
            Some("pts" | "shm" | "mqueue" | "console" | "ptmx" | "tty")
        ) {
            continue;
        }
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            out.extend(host_devices(&e.path()));
        } else if ft.is_char_device() || ft.is_block_device() {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SecurityOptions {
        SecurityOptions::default()
    }

    #[test]
    fn capability_names_as_docker_takes_them() {
        let o = SecurityOptions {
            cap_add: vec!["net_admin".into(), "CAP_SYS_PTRACE".into()],
            cap_drop: vec!["all".into()],
            ..opts()
        };
        let (s, _) = o.parse().unwrap();
        assert_eq!(s.cap_add, ["CAP_NET_ADMIN", "CAP_SYS_PTRACE"]);
        assert_eq!(s.cap_drop, ["ALL"]);
        let set = capabilities(&s).unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.contains(&Capability::NetAdmin));
        let e = SecurityOptions {
            cap_add: vec!["NET_FOO".into()],
            ..opts()
        }
        .parse()
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown capability \"NET_FOO\""), "{e}");
    }

    #[test]
    fn ulimits_and_security_opts_are_checked() {
        let o = SecurityOptions {
            ulimits: vec!["nofile=100:200".into(), "core=-1".into()],
            security_opt: vec!["no-new-privileges=false".into()],
            shm_size: Some("128m".into()),
            ..opts()
        };
        let (s, p) = o.parse().unwrap();
        assert_eq!(s.ulimits, ["nofile=100:200", "core=-1:-1"]);
        assert_eq!(s.no_new_privileges, Some(false));
        assert_eq!(s.shm_size, Some(128 << 20));
        assert!(p.is_none());
        for bad in ["nofile", "files=1", "nofile=2:1", "nofile=x"] {
            let o = SecurityOptions {
                ulimits: vec![bad.into()],
                ..opts()
            };
            assert!(o.parse().is_err(), "{bad}");
        }
        let o = SecurityOptions {
            security_opt: vec!["apparmor=x".into()],
            ..opts()
        };
        assert!(o.parse().is_err());
    }

    #[test]
    fn docker_profiles_become_oci_ones_and_conditions_are_refused() {
        let dir = std::env::temp_dir().join(format!("boxctl-seccomp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("p.json");
        let docker = r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                         "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW",
                          "comment": "", "includes": {}, "excludes": {}}]}"#;
        std::fs::write(&file, docker).unwrap();
        let (_, text) = read_profile(&file).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert_eq!(
            v["syscalls"][0]["names"],
            serde_json::json!(["read", "write"])
        );
        assert!(v["syscalls"][0].get("includes").is_none(), "{v}");
        let conditional = docker.replace(
            r#""includes": {}"#,
            r#""includes": {"caps": ["CAP_SYS_ADMIN"]}"#,
        );
        std::fs::write(&file, conditional).unwrap();
        let e = read_profile(&file).unwrap_err().to_string();
        assert!(e.contains("syscalls[0] has conditional includes"), "{e}");
        for bad in [
            "[]",
            r#"{"syscalls": []}"#,
            r#"{"defaultAction": "SCMP_ACT_NOPE"}"#,
        ] {
            std::fs::write(&file, bad).unwrap();
            assert!(read_profile(&file).is_err(), "{bad}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn devices_must_be_device_nodes() {
        let d = |s: &str| parse_device(s);
        assert_eq!(d("/dev/null").unwrap(), "/dev/null:/dev/null:rwm");
        assert_eq!(d("/dev/null:r").unwrap(), "/dev/null:/dev/null:r");
        assert_eq!(d("/dev/null:/dev/x:rw").unwrap(), "/dev/null:/dev/x:rw");
        assert!(d("/dev/nonexistent-bx").is_err());
        assert!(d("/etc/passwd").is_err());
        assert!(d("dev/null").is_err());
        assert!(d("/dev/null:/x:q").is_err());
    }
}
