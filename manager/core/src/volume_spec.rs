//! What an instance mounts besides its root: `-v NAME:/path[:ro]` (a named
//! volume), `-v /host/dir:/path[:ro]` (a bind mount), `--tmpfs
//! /path[:size=64m,mode=1777]` and `--read-only` (the root file system
//! mounted read-only). Parsed and checked here, recorded in the instance
//! file as [`Storage`], turned into OCI mounts by [`crate::volumes`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::{invalid, limits, util};

/// An instance's volumes, bind mounts, tmpfs mounts and root mode, as the
/// instance file records them (`volumes = [...]`, `tmpfs = [...]`,
/// `read_only = true`; absent when empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Storage {
    /// `NAME:/path[:ro]` or `/host/dir:/path[:ro]`, as given to `-v`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// `/path[:OPTIONS]`, as given to `--tmpfs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// The root file system is mounted read-only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// Where a `-v` mount comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A named volume (`boxctl volume`), created on first use.
    Named(String),
    /// A directory (or file) of the host, bound as it is.
    Host(PathBuf),
}

/// One parsed `-v` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// Volume or host path.
    pub source: Source,
    /// Absolute path inside the instance.
    pub target: String,
    /// Mounted read-only in the instance.
    pub read_only: bool,
}

/// One parsed `--tmpfs` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsMount {
    /// Absolute path inside the instance.
    pub target: String,
    /// Mount options (`size=BYTES`, `mode=OCTAL`, `noexec`, ...).
    pub options: Vec<String>,
}

fn check_target(what: &str, entry: &str, target: &str) -> Result<()> {
    if !target.starts_with('/') {
        invalid!(
            "invalid {what} {entry:?}: the path in the instance must be absolute (e.g. /data)"
        );
    }
    if target == "/" || target.split('/').any(|c| c == "..") {
        invalid!("invalid {what} {entry:?}: the path in the instance cannot be / or contain ..");
    }
    Ok(())
}

impl VolumeMount {
    /// Parse `SOURCE:/path[:ro|:rw]`. A SOURCE starting with `/` is a host
    /// path, which must exist; otherwise it is a volume name. Relative host
    /// paths (`./x`, `x/y`) are refused: a name has no `/`.
    pub fn parse(entry: &str) -> Result<VolumeMount> {
        let usage = "expected NAME:/path[:ro] or /host/path:/path[:ro]";
        let parts: Vec<&str> = entry.split(':').collect();
        let (src, target, mode) = match parts.as_slice() {
            [s, t] => (*s, *t, None),
            [s, t, m] => (*s, *t, Some(*m)),
            _ => invalid!("invalid --volume {entry:?}: {usage}"),
        };
        let read_only = match mode {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(m) => invalid!("invalid --volume {entry:?}: unknown mode {m:?}, use ro or rw"),
        };
        check_target("--volume", entry, target)?;
        let source = if src.starts_with('/') {
            let p = Path::new(src);
            if src.split('/').any(|c| c == "..") {
                invalid!("invalid --volume {entry:?}: the host path cannot contain ..");
            }
            if !p.exists() {
                invalid!(
                    "invalid --volume {entry:?}: host path {src} does not exist: create it first"
                );
            }
            Source::Host(p.to_path_buf())
        } else if src.contains('/') || src.starts_with('.') || src.starts_with('~') {
            invalid!("invalid --volume {entry:?}: host path {src} is relative: give an absolute path (e.g. $PWD/{src})");
        } else if src.is_empty() {
            invalid!("invalid --volume {entry:?}: {usage}");
        } else {
            util::validate_name("volume", src)
                .map_err(|e| crate::error::Error::Invalid(e.to_string()))?;
            Source::Named(src.to_string())
        };
        Ok(VolumeMount {
            source,
            target: target.to_string(),
            read_only,
        })
    }
}

impl TmpfsMount {
    /// Parse `/path[:OPT,OPT...]`; `size=` takes a size (`64m`), `mode=` an
    /// octal mode; `noexec`, `exec`, `nosuid`, `suid`, `nodev`, `dev`, `ro`,
    /// `rw` are passed on.
    pub fn parse(entry: &str) -> Result<TmpfsMount> {
        let (target, opts) = entry.split_once(':').unwrap_or((entry, ""));
        check_target("--tmpfs", entry, target)?;
        let mut options = Vec::new();
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o.split_once('=') {
                Some(("size", s)) => {
                    let bytes = limits::parse_size("--tmpfs size", s)?;
                    if bytes < 4096 {
                        invalid!("invalid --tmpfs {entry:?}: size {s} is below one page (4k)");
                    }
                    options.push(format!("size={bytes}"));
                }
                Some(("mode", m)) => {
                    if m.is_empty() || m.len() > 4 || !m.bytes().all(|b| (b'0'..=b'7').contains(&b))
                    {
                        invalid!("invalid --tmpfs {entry:?}: mode {m:?} is not an octal mode such as 1777");
                    }
                    options.push(format!("mode={m}"));
                }
                None if matches!(
                    o,
                    "noexec" | "exec" | "nosuid" | "suid" | "nodev" | "dev" | "ro" | "rw"
                ) =>
                {
                    options.push(o.to_string())
                }
                _ => invalid!(
                    "invalid --tmpfs {entry:?}: unknown option {o:?} (use size=, mode=, noexec, nosuid, nodev, ro)"
                ),
            }
        }
        Ok(TmpfsMount {
            target: target.to_string(),
            options,
        })
    }
}

impl Storage {
    /// Check every entry (host paths exist, paths absolute, sizes valid, no
    /// two mounts on one path).
    pub fn new(volumes: &[String], tmpfs: &[String], read_only: bool) -> Result<Storage> {
        let mut targets: Vec<String> = Vec::new();
        let mut seen = |t: &str| -> Result<()> {
            let t = t.trim_end_matches('/').to_string();
            if targets.contains(&t) {
                invalid!("two mounts on {t}: give each --volume and --tmpfs its own path");
            }
            targets.push(t);
            Ok(())
        };
        for v in volumes {
            seen(&VolumeMount::parse(v)?.target)?;
        }
        for t in tmpfs {
            seen(&TmpfsMount::parse(t)?.target)?;
        }
        Ok(Storage {
            volumes: volumes.to_vec(),
            tmpfs: tmpfs.to_vec(),
            read_only,
        })
    }

    /// The `-v` entries, parsed (without checking host paths again: a
    /// vanished one fails at start, in the runtime).
    pub fn volume_mounts(&self) -> Vec<VolumeMount> {
        self.volumes
            .iter()
            .filter_map(|v| VolumeMount::parse(v).ok().or_else(|| lenient(v)))
            .collect()
    }

    /// The `--tmpfs` entries, parsed.
    pub fn tmpfs_mounts(&self) -> Vec<TmpfsMount> {
        self.tmpfs
            .iter()
            .filter_map(|t| TmpfsMount::parse(t).ok())
            .collect()
    }

    /// Names of the named volumes used.
    pub fn volume_names(&self) -> Vec<String> {
        self.volume_mounts()
            .into_iter()
            .filter_map(|m| match m.source {
                Source::Named(n) => Some(n),
                Source::Host(_) => None,
            })
            .collect()
    }
}

/// A recorded host bind whose host path has gone since: kept, so that the
/// runtime names the missing path at start.
fn lenient(entry: &str) -> Option<VolumeMount> {
    let mut parts = entry.split(':');
    let (src, target) = (parts.next()?, parts.next()?);
    Some(VolumeMount {
        source: Source::Host(PathBuf::from(src)),
        target: target.to_string(),
        read_only: parts.next() == Some("ro"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_volumes_binds_and_tmpfs() {
        let v = VolumeMount::parse("data:/var/data:ro").unwrap();
        assert_eq!(v.source, Source::Named("data".into()));
        assert_eq!(v.target, "/var/data");
        assert!(v.read_only);
        let b = VolumeMount::parse("/tmp:/host-tmp").unwrap();
        assert_eq!(b.source, Source::Host("/tmp".into()));
        assert!(!b.read_only);
        let t = TmpfsMount::parse("/run:size=64m,mode=1777,noexec").unwrap();
        assert_eq!(t.options, ["size=67108864", "mode=1777", "noexec"]);
        assert!(TmpfsMount::parse("/t").unwrap().options.is_empty());
    }

    #[test]
    fn refuses_bad_entries() {
        for bad in [
            "data",
            "data:rel/path",
            "./dir:/x",
            "dir/sub:/x",
            "/no/such/boxctl/dir:/x",
            "data:/x:rx",
            "data:/",
            "bad name:/x",
            "data:/a/../b",
        ] {
            let e = VolumeMount::parse(bad).expect_err(bad);
            assert!(matches!(e, crate::Error::Invalid(_)), "{bad}: {e:?}");
        }
        for bad in ["rel", "/t:size=abc", "/t:mode=999", "/t:uid=0", "/t:size=1"] {
            assert!(TmpfsMount::parse(bad).is_err(), "{bad}");
        }
        assert!(Storage::new(&["a:/x".into()], &["/x".into()], false).is_err());
    }

    #[test]
    fn storage_round_trips_through_the_instance_file() {
        let mut inst = crate::instance_file::tests::sample();
        inst.storage = Storage::new(&["data:/d:ro".into()], &["/t:size=1m".into()], true).unwrap();
        let text = crate::instance_file::render(std::slice::from_ref(&inst));
        assert!(text.contains("volumes = [\"data:/d:ro\"]"), "{text}");
        assert!(text.contains("read_only = true"), "{text}");
        assert_eq!(crate::instance_file::parse(&text).unwrap(), vec![inst]);
        assert_eq!(Storage::default().volume_names(), Vec::<String>::new());
    }
}
