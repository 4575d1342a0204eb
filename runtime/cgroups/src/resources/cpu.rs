//! `linux.resources.cpu` (cpu and cpuset controllers).

use std::io;
use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use crate::cgroup::{Cgroup, Version};
use crate::error::{CgroupError, Result};
use crate::fsutil::{self, write_setting};

/// The range of v1 `cpu.shares` the kernel accepts.
pub const SHARES_MIN: u64 = 2;
/// The largest v1 `cpu.shares`.
pub const SHARES_MAX: u64 = 262_144;

/// runc's mapping of v1 shares ([2, 262144]) to v2 weight ([1, 10000]).
pub fn shares_to_weight(shares: u64) -> Result<u64> {
    if !(SHARES_MIN..=SHARES_MAX).contains(&shares) {
        return Err(CgroupError::invalid(
            "linux.resources.cpu.shares",
            format!("{shares} is outside {SHARES_MIN}..={SHARES_MAX}"),
        ));
    }
    Ok(1 + ((shares - 2) * 9999) / 262_142)
}

/// The `cpu.max` value for a quota/period pair; `current` is the existing
/// file content, used to keep the other half when only one is given.
pub(crate) fn cpu_max(quota: Option<i64>, period: Option<u64>, current: &str) -> Result<String> {
    let mut cur = current.split_whitespace();
    let cur_quota = cur.next().unwrap_or("max").to_string();
    let cur_period = cur.next().unwrap_or("100000").to_string();
    let q = match quota {
        Some(q) if q > 0 => q.to_string(),
        Some(-1) => "max".to_string(),
        Some(q) if q < 0 => {
            return Err(CgroupError::invalid(
                "linux.resources.cpu.quota",
                format!("{q} is negative; use -1 for no limit"),
            ))
        }
        _ => cur_quota,
    };
    let p = match period {
        Some(p) if p > 0 => p.to_string(),
        _ => cur_period,
    };
    Ok(format!("{q} {p}"))
}

struct Want {
    cpu: bool,
    cpuset: bool,
}

fn wanted(c: &LinuxCpu) -> Want {
    Want {
        cpu: c.shares().is_some_and(|s| s != 0)
            || c.quota().is_some_and(|q| q != 0)
            || c.period().is_some_and(|p| p != 0)
            || c.burst().is_some()
            || c.realtime_runtime().is_some_and(|r| r != 0)
            || c.realtime_period().is_some_and(|p| p != 0)
            || c.idle().is_some(),
        cpuset: c.cpus().as_deref().is_some_and(|s| !s.is_empty())
            || c.mems().as_deref().is_some_and(|s| !s.is_empty()),
    }
}

pub(crate) fn apply(cg: &Cgroup, c: &LinuxCpu) -> Result<()> {
    let want = wanted(c);
    if want.cpu {
        let h = cg.require("cpu", "linux.resources.cpu")?;
        match h.version {
            Version::V1 => apply_v1(&h.path, c)?,
            Version::V2 => apply_v2(&h.path, c)?,
        }
    }
    if want.cpuset {
        let h = cg.require("cpuset", "linux.resources.cpu.cpus/mems")?;
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            write_setting(&h.path, "cpuset.cpus", cpus, "linux.resources.cpu.cpus")?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            write_setting(&h.path, "cpuset.mems", mems, "linux.resources.cpu.mems")?;
        }
    }
    Ok(())
}

fn apply_v1(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        const W: &str = "linux.resources.cpu.shares";
        write_setting(dir, "cpu.shares", &shares.to_string(), W)?;
        // The kernel clamps silently; refuse instead of running with a
        // different value than requested.
        let path = dir.join("cpu.shares");
        let got = fsutil::parse_u64(&fsutil::read(&path)?, &path)?;
        if got != shares {
            return Err(CgroupError::invalid(
                W,
                format!("{shares} is outside what the kernel accepts (it set {got}); use {SHARES_MIN}..={SHARES_MAX}"),
            ));
        }
    }
    const QW: &str = "linux.resources.cpu.quota";
    const PW: &str = "linux.resources.cpu.period";
    let period = c.period().filter(|p| *p != 0).map(|p| p.to_string());
    let quota = match c.quota() {
        Some(q) if q < -1 => {
            return Err(CgroupError::invalid(
                QW,
                format!("{q} is negative; use -1 for no limit"),
            ))
        }
        Some(q) if q != 0 => Some(q.to_string()),
        _ => None,
    };
    if let Some(p) = &period {
        match fsutil::write_raw(&dir.join("cpu.cfs_period_us"), p) {
            Ok(()) => {
                if let Some(q) = &quota {
                    write_setting(dir, "cpu.cfs_quota_us", q, QW)?;
                }
            }
            // A shorter period can conflict with the current quota (and the
            // other way round): try the other order before giving up.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && quota.is_some() => {
                write_setting(
                    dir,
                    "cpu.cfs_quota_us",
                    quota.as_deref().unwrap_or("-1"),
                    QW,
                )?;
                write_setting(dir, "cpu.cfs_period_us", p, PW)?;
            }
            Err(source) => return Err(setting_err(dir, "cpu.cfs_period_us", p, PW, source)),
        }
    } else if let Some(q) = &quota {
        write_setting(dir, "cpu.cfs_quota_us", q, QW)?;
    }
    if let Some(b) = c.burst() {
        write_setting(
            dir,
            "cpu.cfs_burst_us",
            &b.to_string(),
            "linux.resources.cpu.burst",
        )?;
    }
    if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
        write_setting(
            dir,
            "cpu.rt_period_us",
            &p.to_string(),
            "linux.resources.cpu.realtimePeriod",
        )?;
    }
    if let Some(r) = c.realtime_runtime().filter(|r| *r != 0) {
        write_setting(
            dir,
            "cpu.rt_runtime_us",
            &r.to_string(),
            "linux.resources.cpu.realtimeRuntime",
        )?;
    }
    if let Some(i) = c.idle() {
        write_setting(dir, "cpu.idle", &i.to_string(), "linux.resources.cpu.idle")?;
    }
    Ok(())
}

fn setting_err(dir: &Path, file: &str, value: &str, what: &str, source: io::Error) -> CgroupError {
    let path = dir.join(file);
    if source.kind() == io::ErrorKind::NotFound {
        CgroupError::MissingFile {
            path,
            what: what.into(),
        }
    } else {
        CgroupError::Write {
            path,
            value: value.into(),
            source,
        }
    }
}

fn apply_v2(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        let w = shares_to_weight(shares)?;
        write_setting(
            dir,
            "cpu.weight",
            &w.to_string(),
            "linux.resources.cpu.shares",
        )?;
    }
    let quota = c.quota().filter(|q| *q != 0);
    let period = c.period().filter(|p| *p != 0);
    if quota.is_some() || period.is_some() {
        const W: &str = "linux.resources.cpu.quota/period";
        let cur = if quota.is_none() || period.is_none() {
            fsutil::read_opt(&dir.join("cpu.max"))?.unwrap_or_default()
        } else {
            String::new()
        };
        write_setting(dir, "cpu.max", &cpu_max(quota, period, &cur)?, W)?;
    }
    if let Some(b) = c.burst() {
        write_setting(
            dir,
            "cpu.max.burst",
            &b.to_string(),
            "linux.resources.cpu.burst",
        )?;
    }
    if c.realtime_period().is_some_and(|p| p != 0) || c.realtime_runtime().is_some_and(|r| r != 0) {
        return Err(CgroupError::Unsupported {
            what: "linux.resources.cpu.realtimePeriod/realtimeRuntime".into(),
            reason: "cgroup v2 has no real-time group scheduling; remove them from the config"
                .into(),
        });
    }
    if let Some(i) = c.idle() {
        write_setting(dir, "cpu.idle", &i.to_string(), "linux.resources.cpu.idle")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversion_matches_runc() {
        assert_eq!(shares_to_weight(2).unwrap(), 1);
        assert_eq!(shares_to_weight(1024).unwrap(), 39);
        assert_eq!(shares_to_weight(262_144).unwrap(), 10_000);
        assert!(shares_to_weight(1).is_err());
        assert!(shares_to_weight(262_145).is_err());
    }

    #[test]
    fn cpu_max_values() {
        assert_eq!(
            cpu_max(Some(50_000), Some(100_000), "").unwrap(),
            "50000 100000"
        );
        assert_eq!(cpu_max(Some(-1), Some(20_000), "").unwrap(), "max 20000");
        // only period: keep the current quota
        assert_eq!(
            cpu_max(None, Some(20_000), "30000 100000\n").unwrap(),
            "30000 20000"
        );
        // only quota: keep the current period
        assert_eq!(
            cpu_max(Some(5_000), None, "max 50000\n").unwrap(),
            "5000 50000"
        );
        assert_eq!(cpu_max(Some(5_000), None, "").unwrap(), "5000 100000");
        assert!(cpu_max(Some(-3), None, "").is_err());
    }
}
