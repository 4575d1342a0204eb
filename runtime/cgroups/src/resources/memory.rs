//! `linux.resources.memory`.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use crate::cgroup::{Cgroup, Version};
use crate::error::{CgroupError, Result};
use crate::fsutil::{self, write_setting};

/// A byte limit for v1 files: -1 (unlimited) or a non-negative number.
fn v1_bytes(what: &str, v: i64) -> Result<String> {
    if v < -1 {
        return Err(CgroupError::invalid(
            what,
            format!("{v} is negative; use -1 for unlimited or a byte count"),
        ));
    }
    Ok(v.to_string())
}

/// A byte limit for v2 files: `max` for -1, else the number.
fn v2_bytes(what: &str, v: i64) -> Result<String> {
    match v {
        -1 => Ok("max".into()),
        v if v < 0 => Err(CgroupError::invalid(
            what,
            format!("{v} is negative; use -1 for unlimited or a byte count"),
        )),
        v => Ok(v.to_string()),
    }
}

/// runc's conversion of the OCI (v1) memory+swap limit to v2's swap-only
/// `memory.swap.max`: `None` means "leave unset".
pub(crate) fn swap_to_v2(swap: Option<i64>, limit: Option<i64>) -> Result<Option<i64>> {
    let memory = limit.unwrap_or(0);
    let swap = swap.unwrap_or(0);
    // memory unlimited and swap unset: both unlimited, as on v1
    if memory == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    if swap == -1 {
        return Ok(Some(-1));
    }
    if swap == 0 {
        return Ok(None);
    }
    const WHAT: &str = "linux.resources.memory.swap";
    if swap < 0 {
        return Err(CgroupError::invalid(WHAT, format!("{swap} is negative")));
    }
    if memory == 0 || memory == -1 {
        return Err(CgroupError::invalid(
            WHAT,
            "a swap limit needs a memory limit on cgroup v2 (swap is memory+swap); set memory.limit too",
        ));
    }
    if memory < 0 {
        return Err(CgroupError::invalid(
            "linux.resources.memory.limit",
            format!("{memory} is negative"),
        ));
    }
    if swap < memory {
        return Err(CgroupError::invalid(
            WHAT,
            format!("memory+swap limit {swap} is below the memory limit {memory}; it must be >= the memory limit"),
        ));
    }
    Ok(Some(swap - memory))
}

fn any_set(m: &LinuxMemory) -> bool {
    m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some()
        || m.kernel_tcp().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer().is_some()
        || m.use_hierarchy().is_some()
}

pub(crate) fn apply(cg: &Cgroup, m: &LinuxMemory) -> Result<()> {
    // `kernel` (kmem) is deprecated by the spec and unenforceable since
    // Linux 5.16; like runc we accept and ignore it.
    if !any_set(m) {
        return Ok(());
    }
    let h = cg.require("memory", "linux.resources.memory")?;
    if m.check_before_update() == Some(true) {
        if let Some(limit) = m.limit().filter(|l| *l > 0) {
            let usage_file = match h.version {
                Version::V1 => "memory.usage_in_bytes",
                Version::V2 => "memory.current",
            };
            let usage = fsutil::read_u64_or_zero(&h.path, usage_file)?;
            if limit as u64 <= usage {
                return Err(CgroupError::invalid(
                    "linux.resources.memory.limit",
                    format!("new limit {limit} is not above the current usage {usage} (checkBeforeUpdate)"),
                ));
            }
        }
    }
    match h.version {
        Version::V1 => apply_v1(&h.path, m),
        Version::V2 => apply_v2(&h.path, m),
    }
}

fn apply_v1(dir: &Path, m: &LinuxMemory) -> Result<()> {
    const LIMIT: &str = "linux.resources.memory.limit";
    const SWAP: &str = "linux.resources.memory.swap";
    let limit = m
        .limit()
        .map(|v| v1_bytes(LIMIT, v).map(|s| (v, s)))
        .transpose()?;
    // An unlimited memory limit with swap unset means unlimited swap too
    // (the kernel refuses limit > memsw), where swap accounting exists.
    let swap_req = match (m.limit(), m.swap()) {
        (Some(-1), None) if dir.join("memory.memsw.limit_in_bytes").exists() => Some(-1),
        (_, s) => s,
    };
    let swap = swap_req
        .map(|v| v1_bytes(SWAP, v).map(|s| (v, s)))
        .transpose()?;
    match (limit, swap) {
        (Some((l, ls)), Some((s, ss))) => {
            if s != -1 && (l == -1 || s < l) {
                return Err(CgroupError::invalid(
                    SWAP,
                    format!("memory+swap limit {s} is below the memory limit {l}; it must be >= the memory limit"),
                ));
            }
            // The kernel keeps memsw >= limit at every step: pick the order
            // that never violates it.
            let cur_memsw = dir.join("memory.memsw.limit_in_bytes");
            let cur = match fsutil::read_opt(&cur_memsw)? {
                Some(t) => fsutil::parse_u64(&t, &cur_memsw)?,
                None => {
                    return Err(CgroupError::MissingFile {
                        path: cur_memsw,
                        what: "linux.resources.memory.swap (swap accounting is off; boot with swapaccount=1)".into(),
                    })
                }
            };
            let limit_fits = l != -1 && (l as u64) <= cur;
            if limit_fits {
                write_setting(dir, "memory.limit_in_bytes", &ls, LIMIT)?;
                write_setting(dir, "memory.memsw.limit_in_bytes", &ss, SWAP)?;
            } else {
                write_setting(dir, "memory.memsw.limit_in_bytes", &ss, SWAP)?;
                write_setting(dir, "memory.limit_in_bytes", &ls, LIMIT)?;
            }
        }
        (Some((_, ls)), None) => write_setting(dir, "memory.limit_in_bytes", &ls, LIMIT)?,
        (None, Some((_, ss))) => write_setting(dir, "memory.memsw.limit_in_bytes", &ss, SWAP)?,
        (None, None) => {}
    }
    if let Some(r) = m.reservation() {
        const W: &str = "linux.resources.memory.reservation";
        write_setting(dir, "memory.soft_limit_in_bytes", &v1_bytes(W, r)?, W)?;
    }
    if let Some(t) = m.kernel_tcp() {
        const W: &str = "linux.resources.memory.kernelTCP";
        write_setting(dir, "memory.kmem.tcp.limit_in_bytes", &v1_bytes(W, t)?, W)?;
    }
    if let Some(s) = m.swappiness() {
        const W: &str = "linux.resources.memory.swappiness";
        if s > 100 {
            return Err(CgroupError::invalid(
                W,
                format!("{s} is above 100; use 0..=100"),
            ));
        }
        write_setting(dir, "memory.swappiness", &s.to_string(), W)?;
    }
    if let Some(d) = m.disable_oom_killer() {
        write_setting(
            dir,
            "memory.oom_control",
            if d { "1" } else { "0" },
            "linux.resources.memory.disableOOMKiller",
        )?;
    }
    if let Some(u) = m.use_hierarchy() {
        write_setting(
            dir,
            "memory.use_hierarchy",
            if u { "1" } else { "0" },
            "linux.resources.memory.useHierarchy",
        )?;
    }
    Ok(())
}

fn apply_v2(dir: &Path, m: &LinuxMemory) -> Result<()> {
    const LIMIT: &str = "linux.resources.memory.limit";
    const SWAP: &str = "linux.resources.memory.swap";
    if let Some(l) = m.limit() {
        write_setting(dir, "memory.max", &v2_bytes(LIMIT, l)?, LIMIT)?;
    }
    if m.swap().is_some() || m.limit() == Some(-1) {
        if let Some(s) = swap_to_v2(m.swap(), m.limit())? {
            let what = "linux.resources.memory.swap (swap accounting may be off)";
            write_setting(dir, "memory.swap.max", &v2_bytes(SWAP, s)?, what)?;
        }
    }
    if let Some(r) = m.reservation() {
        const W: &str = "linux.resources.memory.reservation";
        write_setting(dir, "memory.low", &v2_bytes(W, r)?, W)?;
    }
    let unsupported = |what: &str| CgroupError::Unsupported {
        what: format!("linux.resources.memory.{what}"),
        reason: "cgroup v2 has no equivalent; remove it from the config".into(),
    };
    if m.kernel_tcp().is_some() {
        return Err(unsupported("kernelTCP"));
    }
    if m.swappiness().is_some() {
        return Err(unsupported("swappiness"));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(unsupported("disableOOMKiller"));
    }
    if m.use_hierarchy() == Some(false) {
        return Err(CgroupError::Unsupported {
            what: "linux.resources.memory.useHierarchy=false".into(),
            reason: "cgroup v2 accounting is always hierarchical".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_conversion_matches_runc() {
        assert_eq!(swap_to_v2(None, Some(-1)).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(Some(-1), Some(100)).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(None, Some(100)).unwrap(), None);
        assert_eq!(swap_to_v2(Some(0), Some(100)).unwrap(), None);
        assert_eq!(swap_to_v2(Some(300), Some(100)).unwrap(), Some(200));
        assert_eq!(swap_to_v2(Some(100), Some(100)).unwrap(), Some(0));
        assert!(swap_to_v2(Some(50), Some(100)).is_err());
        assert!(swap_to_v2(Some(50), None).is_err());
        assert!(swap_to_v2(Some(50), Some(-1)).is_err());
        assert!(swap_to_v2(Some(-5), Some(100)).is_err());
    }

    #[test]
    fn byte_values() {
        assert_eq!(v2_bytes("x", -1).unwrap(), "max");
        assert_eq!(v2_bytes("x", 4096).unwrap(), "4096");
        assert!(v2_bytes("x", -2).is_err());
        assert_eq!(v1_bytes("x", -1).unwrap(), "-1");
        assert!(v1_bytes("x", -7).is_err());
    }
}
