//! Loading `config.json` from a bundle and validating it before anything is made.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::{Path, PathBuf};

/// A parsed bundle: the spec, its raw bytes (copied verbatim into the state directory),
/// and resolved absolute paths.
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute rootfs directory.
    pub rootfs: PathBuf,
    /// The parsed configuration.
    pub spec: Spec,
    /// The bytes of config.json as read.
    pub raw: Vec<u8>,
}

/// Parse config.json bytes; the error names the line and column.
pub fn parse(raw: &[u8]) -> Result<Spec> {
    serde_json::from_slice::<Spec>(raw).map_err(|source| Error::Spec { source })
}

/// Error text quoting user data (an unknown enum value holding a newline) kept on one
/// line: control characters are escaped.
pub fn one_line(msg: &str) -> String {
    if !msg.chars().any(char::is_control) {
        return msg.to_string();
    }
    msg.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Load and validate `<bundle>/config.json`.
pub fn load_bundle(bundle: &Path) -> Result<Bundle> {
    let dir = if bundle.is_absolute() {
        bundle.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(".", e))?
            .join(bundle)
    };
    let dir = std::fs::canonicalize(&dir)
        .map_err(|e| Error::context(format!("bundle {}", dir.display()), e))?;
    let cfg = dir.join("config.json");
    let raw = std::fs::read(&cfg).map_err(|e| Error::io(&cfg, e))?;
    let spec = parse(&raw)?;
    let rootfs = rootfs_path(&dir, &spec)?;
    // process is REQUIRED only when start is called (runtime-spec config.md): checked there.
    validate(&spec, false)?;
    if let Some(p) = spec.process() {
        check_process(p)?;
    }
    Ok(Bundle {
        dir,
        rootfs,
        spec,
        raw,
    })
}

/// The absolute rootfs path of a spec relative to its bundle.
pub fn rootfs_path(bundle: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::Config("root is required".into()))?;
    let p = root.path();
    if p.as_os_str().is_empty() {
        return Err(Error::Config("root.path is empty".into()));
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        bundle.join(p)
    };
    let abs = std::fs::canonicalize(&abs)
        .map_err(|e| Error::field(format!("root.path {}", abs.display()), e))?;
    if !abs.is_dir() {
        return Err(Error::Config(format!(
            "root.path {} is not a directory",
            abs.display()
        )));
    }
    Ok(abs)
}

fn check_version(v: &str) -> Result<()> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let ok = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(Error::Config(format!(
            "ociVersion {v:?} is not a SemVer version (e.g. \"1.0.2\")"
        )));
    }
    if parts[0] != "1" {
        return Err(Error::Config(format!(
            "ociVersion {v:?} is not supported: boxrun implements runtime-spec 1.x"
        )));
    }
    Ok(())
}

/// Validate everything that can be checked before touching the host.
pub fn validate(spec: &Spec, need_process: bool) -> Result<()> {
    check_version(spec.version())?;
    crate::unsupported::check(spec)?;
    if let Some(h) = spec.hostname() {
        if h.len() > 64 {
            return Err(Error::Config(format!(
                "hostname {h:?} is longer than 64 bytes"
            )));
        }
    }
    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_ref());
    let has_ns = |t: LinuxNamespaceType| {
        namespaces
            .map(|n| n.iter().any(|ns| ns.typ() == t))
            .unwrap_or(false)
    };
    if let Some(nss) = namespaces {
        let mut seen = Vec::new();
        for ns in nss {
            if seen.contains(&ns.typ()) {
                return Err(Error::Config(format!(
                    "linux.namespaces: {:?} namespace listed twice",
                    ns.typ()
                )));
            }
            seen.push(ns.typ());
            if let Some(p) = ns.path() {
                if !p.is_absolute() {
                    return Err(Error::Config(format!(
                        "linux.namespaces: path {} must be absolute",
                        p.display()
                    )));
                }
            }
        }
    }
    if (spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        || spec.domainname().as_deref().is_some_and(|h| !h.is_empty()))
        && !has_ns(LinuxNamespaceType::Uts)
    {
        return Err(Error::Config(
            "hostname/domainname need a new uts namespace in linux.namespaces".into(),
        ));
    }
    if let Some(l) = linux {
        let has_maps = l.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || l.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if has_maps && !has_ns(LinuxNamespaceType::User) {
            return Err(Error::Config(
                "linux.uidMappings/gidMappings need a user namespace in linux.namespaces".into(),
            ));
        }
        if let Some(sysctl) = l.sysctl() {
            for k in sysctl.keys() {
                if k.starts_with("net.") && !has_ns(LinuxNamespaceType::Network) {
                    return Err(Error::Config(format!(
                        "linux.sysctl {k}: net.* sysctls need a network namespace"
                    )));
                }
                if (k.starts_with("kernel.msg")
                    || k.starts_with("kernel.sem")
                    || k.starts_with("kernel.shm")
                    || k.starts_with("fs.mqueue."))
                    && !has_ns(LinuxNamespaceType::Ipc)
                {
                    return Err(Error::Config(format!(
                        "linux.sysctl {k}: ipc sysctls need an ipc namespace"
                    )));
                }
                if (k == "kernel.hostname" || k == "kernel.domainname")
                    && !has_ns(LinuxNamespaceType::Uts)
                {
                    return Err(Error::Config(format!(
                        "linux.sysctl {k}: needs a uts namespace"
                    )));
                }
            }
        }
        if let Some(tns) = l.time_offsets() {
            if !tns.is_empty() && !has_ns(LinuxNamespaceType::Time) {
                return Err(Error::Config(
                    "linux.timeOffsets need a time namespace in linux.namespaces".into(),
                ));
            }
        }
        if let Some(mp) = l.memory_policy() {
            crate::mempolicy::policy(mp)?;
        }
    }
    if let Some(mounts) = spec.mounts() {
        for m in mounts {
            if m.destination().as_os_str().is_empty() {
                return Err(Error::Config(
                    "mounts: a mount has an empty destination".into(),
                ));
            }
        }
    }
    if let Some(hooks) = spec.hooks() {
        let all = [
            hooks.prestart(),
            hooks.create_runtime(),
            hooks.create_container(),
            hooks.start_container(),
            hooks.poststart(),
            hooks.poststop(),
        ];
        for h in all.into_iter().flatten().flatten() {
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(Error::Config(format!(
                    "hooks: {} has timeout {}: it must be greater than zero",
                    h.path().display(),
                    h.timeout().unwrap_or(0)
                )));
            }
            if !h.path().is_absolute() {
                return Err(Error::Config(format!(
                    "hooks: path {} must be absolute",
                    h.path().display()
                )));
            }
        }
    }
    if need_process {
        let p = spec
            .process()
            .as_ref()
            .ok_or_else(|| Error::Config("process is required".into()))?;
        check_process(p)?;
    }
    Ok(())
}

/// Checks of `process` that hold whenever it is present.
pub fn check_process(p: &oci_spec::runtime::Process) -> Result<()> {
    if let Some(rl) = p.rlimits() {
        let mut seen = Vec::new();
        for r in rl {
            if seen.contains(&r.typ()) {
                return Err(Error::Config(format!(
                    "process.rlimits: {:?} is listed twice",
                    r.typ()
                )));
            }
            seen.push(r.typ());
        }
    }
    match p.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => return Err(Error::Config("process.args must not be empty".into())),
    }
    if !p.cwd().is_absolute() {
        return Err(Error::Config(format!(
            "process.cwd {:?} must be an absolute path",
            p.cwd()
        )));
    }
    check_exec_strings("process.args", p.args().as_deref().unwrap_or_default())?;
    check_exec_strings("process.env", p.env().as_deref().unwrap_or_default())?;
    Ok(())
}

/// The kernel's limit on one argv/envp string, NUL included (MAX_ARG_STRLEN, 32 pages).
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Strings execve(2) would refuse after set-up, where its error could no longer be
/// reported (a foreground `run` has already let the init go): refuse them up front.
fn check_exec_strings(what: &str, list: &[String]) -> Result<()> {
    for (i, s) in list.iter().enumerate() {
        if s.contains('\0') {
            return Err(Error::Config(format!("{what}[{i}] contains a NUL byte")));
        }
        if s.len() >= MAX_ARG_STRLEN {
            return Err(Error::Config(format!(
                "{what}[{i}] is {} bytes: the kernel allows at most {} per string",
                s.len(),
                MAX_ARG_STRLEN - 1
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<()> {
        let spec = parse(v.to_string().as_bytes())?;
        validate(&spec, true)
    }

    #[test]
    fn parse_errors_quoting_newlines_stay_on_one_line() {
        let mut v = base();
        v["linux"]["namespaces"][0]["type"] = "pid\nx".into();
        let e = check(v).unwrap_err().to_string();
        assert!(!e.contains('\n') && e.contains("pid\\nx"), "{e:?}");
    }

    #[test]
    fn accepts_minimal() {
        check(base()).expect("valid");
    }

    #[test]
    fn rejects_bad_version() {
        let mut v = base();
        v["ociVersion"] = "2.0.0".into();
        assert!(check(v).unwrap_err().to_string().contains("not supported"));
        let mut v = base();
        v["ociVersion"] = "one".into();
        assert!(check(v).unwrap_err().to_string().contains("SemVer"));
    }

    #[test]
    fn rejects_unknown_capability_and_rlimit() {
        let mut v = base();
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_NOPE"]});
        assert!(check(v).is_err());
        let mut v = base();
        v["process"]["rlimits"] =
            serde_json::json!([{"type": "RLIMIT_NOPE", "hard": 1, "soft": 1}]);
        assert!(check(v).is_err());
    }

    #[test]
    fn rejects_relative_cwd_and_empty_args() {
        let mut v = base();
        v["process"]["cwd"] = "tmp".into();
        assert!(check(v).is_err());
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert!(check(v).is_err());
    }

    #[test]
    fn rejects_exec_strings_the_kernel_would_refuse() {
        // found by tests/reliability.rs: a 1 MiB argument made `run` exit 1 without a word
        let mut v = base();
        v["process"]["args"] = serde_json::json!(["/bin/true", "x".repeat(MAX_ARG_STRLEN)]);
        assert!(check(v)
            .unwrap_err()
            .to_string()
            .contains("process.args[1]"));
        let mut v = base();
        v["process"]["env"] = serde_json::json!(["A=1", "B=\u{0}"]);
        assert!(check(v).unwrap_err().to_string().contains("process.env[1]"));
        let mut v = base();
        v["process"]["args"] = serde_json::json!(["/bin/true", "x".repeat(MAX_ARG_STRLEN - 1)]);
        check(v).expect("longest allowed argument");
    }

    #[test]
    fn rejects_hostname_without_uts() {
        let mut v = base();
        v["hostname"] = "box".into();
        assert!(check(v).unwrap_err().to_string().contains("uts"));
    }

    #[test]
    fn rejects_duplicate_namespace_and_relative_hook() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        assert!(check(v).is_err());
        let mut v = base();
        v["hooks"] = serde_json::json!({"poststop": [{"path": "rel/hook"}]});
        assert!(check(v).is_err());
    }

    #[test]
    fn rejects_net_sysctl_without_netns() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert!(check(v).is_err());
    }

    #[test]
    fn malformed_json_names_position() {
        let e = parse(b"{\"ociVersion\": ").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
