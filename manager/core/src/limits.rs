//! Resource limits: parsing the command-line forms and turning them into
//! OCI `linux.resources`.

use crate::error::{Context, Error, Result};
use crate::invalid;
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxPidsBuilder,
    LinuxResources, LinuxResourcesBuilder, LinuxThrottleDevice, LinuxThrottleDeviceBuilder,
};
use serde::{Deserialize, Serialize};

/// CFS period used for `--cpus` (the same as docker's).
pub const CPU_PERIOD: u64 = 100_000;

/// Limits of one instance. Every field is optional; absent means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Number of CPUs (fractional), enforced as a CFS quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// CPUs the instance may run on (`0-1,3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
    /// Maximum number of tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
    /// Read throughput limit on the instance's disk, bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_read_bps: Option<u64>,
    /// Write throughput limit on the instance's disk, bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_write_bps: Option<u64>,
    /// Read operations per second on the instance's disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_read_iops: Option<u64>,
    /// Write operations per second on the instance's disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_write_iops: Option<u64>,
}

/// The smallest memory limit an instance may have (the runtime and the
/// kernel need some room of their own below it).
pub const MIN_MEMORY: u64 = 4 << 20;

/// Limits as a user writes them, one string per limit (`--memory 256m` on the
/// command line, `memory = "64m"` in a farm file). Both front ends fill this
/// in and [`LimitSpec::parse`] is the one parser and validation behind them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitSpec {
    /// Memory limit (e.g. `256m`, `1g`).
    pub memory: Option<String>,
    /// CPUs, fractional (e.g. `0.5`).
    pub cpus: Option<String>,
    /// CPUs allowed (e.g. `0-1`).
    pub cpuset: Option<String>,
    /// Maximum number of processes.
    pub pids: Option<String>,
    /// Read throughput limit on the instance's disk, per second (e.g. `10m`).
    pub io_read_bps: Option<String>,
    /// Write throughput limit on the instance's disk, per second.
    pub io_write_bps: Option<String>,
    /// Read operations per second on the instance's disk.
    pub io_read_iops: Option<String>,
    /// Write operations per second on the instance's disk.
    pub io_write_iops: Option<String>,
}

impl LimitSpec {
    /// Parse and check every limit given; errors name the option
    /// (`invalid --memory "1k": the minimum is 4m`).
    pub fn parse(&self) -> Result<Limits> {
        fn each<T>(v: &Option<String>, f: impl Fn(&str) -> Result<T>) -> Result<Option<T>> {
            v.as_deref().map(f).transpose()
        }
        let memory = each(&self.memory, |s| {
            let m = parse_size("--memory", s)?;
            if m < MIN_MEMORY {
                invalid!("invalid --memory {s}: the minimum is 4m");
            }
            Ok(m)
        })?;
        Ok(Limits {
            memory,
            cpus: each(&self.cpus, parse_cpus)?,
            cpuset: each(&self.cpuset, parse_cpuset)?,
            pids: each(&self.pids, parse_pids)?,
            io_read_bps: each(&self.io_read_bps, |s| parse_size("--io-read-bps", s))?,
            io_write_bps: each(&self.io_write_bps, |s| parse_size("--io-write-bps", s))?,
            io_read_iops: each(&self.io_read_iops, |s| parse_iops("--io-read-iops", s))?,
            io_write_iops: each(&self.io_write_iops, |s| parse_iops("--io-write-iops", s))?,
        })
    }
}

/// Parse a size such as `256m`, `1g`, `1.5G`, `512k`, `1024` or `64MiB`.
pub fn parse_size(what: &str, s: &str) -> Result<u64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let expected = || {
        Error::Invalid(format!(
            "invalid {what} {s:?}: expected a number with an optional k, m, g or t suffix (e.g. 256m)"
        ))
    };
    let mult: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(expected()),
    };
    let value: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(expected)?;
    let bytes = value * mult as f64;
    if bytes > u64::MAX as f64 / 2.0 {
        invalid!("invalid {what} {s:?}: too large");
    }
    Ok(bytes as u64)
}

/// Parse `--cpus`: a positive number no larger than the host's CPU count.
fn parse_cpus(s: &str) -> Result<f64> {
    let v: f64 = s
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "invalid --cpus {s:?}: expected a number such as 0.5 or 2"
            ))
        })?;
    let host = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    if v <= 0.0 || v * CPU_PERIOD as f64 <= 1000.0 {
        invalid!("invalid --cpus {s:?}: must be at least 0.01");
    }
    if v > host {
        invalid!("invalid --cpus {s:?}: this host has only {host} CPUs");
    }
    Ok(v)
}

/// Check a cpuset list such as `0`, `0-1` or `0,2-3`.
fn parse_cpuset(s: &str) -> Result<String> {
    let ok = !s.is_empty()
        && s.split(',').all(|part| {
            let mut it = part.splitn(2, '-');
            let a = it.next().and_then(|a| a.parse::<u32>().ok());
            match (a, it.next()) {
                (Some(_), None) => true,
                (Some(a), Some(b)) => b.parse::<u32>().map(|b| b >= a).unwrap_or(false),
                _ => false,
            }
        });
    if !ok {
        invalid!("invalid --cpuset {s:?}: expected a list such as 0, 0-1 or 0,2-3");
    }
    Ok(s.to_string())
}

/// Parse `--pids`: a positive count, or -1/0 for unlimited.
fn parse_pids(s: &str) -> Result<i64> {
    let v: i64 = s.trim().parse().map_err(|e| Error::Context {
        msg: format!("invalid --pids {s:?}: expected a whole number"),
        source: Box::new(e),
    })?;
    if v < -1 {
        invalid!("invalid --pids {s:?}: expected a positive number, or -1 for unlimited");
    }
    Ok(v)
}

/// Parse an operations-per-second count.
fn parse_iops(what: &str, s: &str) -> Result<u64> {
    s.trim().parse().map_err(|e| Error::Context {
        msg: format!("invalid {what} {s:?}: expected a whole number of operations per second"),
        source: Box::new(e),
    })
}

impl Limits {
    /// OCI `linux.resources` for these limits (and no device access); block
    /// I/O throttles apply to the block devices `devs` (the instance's loop
    /// devices) when given.
    pub fn to_oci(&self, devs: &[(u64, u64)]) -> Result<LinuxResources> {
        let mut r =
            LinuxResourcesBuilder::default().devices(vec![LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()?]);
        if let Some(m) = self.memory {
            r = r.memory(LinuxMemoryBuilder::default().limit(m as i64).build()?);
        }
        if self.cpus.is_some() || self.cpuset.is_some() {
            let mut cpu = LinuxCpuBuilder::default();
            if let Some(c) = self.cpus {
                cpu = cpu
                    .quota((c * CPU_PERIOD as f64).round() as i64)
                    .period(CPU_PERIOD);
            }
            if let Some(s) = &self.cpuset {
                cpu = cpu.cpus(s.clone());
            }
            r = r.cpu(cpu.build()?);
        }
        if let Some(p) = self.pids.filter(|p| *p > 0) {
            r = r.pids(LinuxPidsBuilder::default().limit(p).build()?);
        }
        let throttle = |v: Option<u64>| -> Result<Option<Vec<LinuxThrottleDevice>>> {
            let (Some(rate), false) = (v, devs.is_empty()) else {
                return Ok(None);
            };
            let list = devs
                .iter()
                .map(|&(major, minor)| {
                    LinuxThrottleDeviceBuilder::default()
                        .major(major as i64)
                        .minor(minor as i64)
                        .rate(rate)
                        .build()
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(Some(list))
        };
        let mut bio = LinuxBlockIo::default();
        bio.set_throttle_read_bps_device(throttle(self.io_read_bps)?);
        bio.set_throttle_write_bps_device(throttle(self.io_write_bps)?);
        bio.set_throttle_read_iops_device(throttle(self.io_read_iops)?);
        bio.set_throttle_write_iops_device(throttle(self.io_write_iops)?);
        if bio != LinuxBlockIo::default() {
            r = r.block_io(bio);
        }
        Ok(r.build()?)
    }

    /// These limits with every limit `change` sets taken from it (`update`).
    pub fn merged(&self, change: &Limits) -> Limits {
        fn pick<T: Clone>(new: &Option<T>, old: &Option<T>) -> Option<T> {
            new.clone().or_else(|| old.clone())
        }
        Limits {
            memory: pick(&change.memory, &self.memory),
            cpus: pick(&change.cpus, &self.cpus),
            cpuset: pick(&change.cpuset, &self.cpuset),
            pids: pick(&change.pids, &self.pids),
            io_read_bps: pick(&change.io_read_bps, &self.io_read_bps),
            io_write_bps: pick(&change.io_write_bps, &self.io_write_bps),
            io_read_iops: pick(&change.io_read_iops, &self.io_read_iops),
            io_write_iops: pick(&change.io_write_iops, &self.io_write_iops),
        }
    }

    /// A short summary for `ps` ("mem=256MiB cpus=0.5").
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.memory {
            parts.push(format!("mem={}", crate::util::human_bytes(m)));
        }
        if let Some(c) = self.cpus {
            parts.push(format!("cpus={c}"));
        }
        if let Some(c) = &self.cpuset {
            parts.push(format!("cpuset={c}"));
        }
        if let Some(p) = self.pids {
            parts.push(format!("pids={p}"));
        }
        let io = [
            ("rbps", self.io_read_bps),
            ("wbps", self.io_write_bps),
            ("riops", self.io_read_iops),
            ("wiops", self.io_write_iops),
        ];
        for (k, v) in io {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        parts.join(" ")
    }
}

/// When the monitor restarts an instance whose process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Never.
    #[default]
    No,
    /// After a non-zero exit, at most `max` times (0 = no maximum).
    OnFailure {
        /// Maximum number of restarts, 0 for unbounded.
        max: u32,
    },
    /// Always, whatever the exit status (but not after `boxctl stop`).
    Always,
    /// As `OnFailure`, and the instance is also killed (then restarted)
    /// when its health check reports it unhealthy.
    OnUnhealthy {
        /// Maximum number of restarts, 0 for unbounded.
        max: u32,
    },
}

impl std::str::FromStr for RestartPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "no" => Ok(Self::No),
            "always" => Ok(Self::Always),
            "on-failure" => Ok(Self::OnFailure { max: 0 }),
            "on-unhealthy" => Ok(Self::OnUnhealthy { max: 0 }),
            _ => {
                if let Some(n) = s.strip_prefix("on-unhealthy:") {
                    let max = n.parse().with_context(|| {
                        format!("invalid --restart {s:?}: the retry count must be a whole number")
                    })?;
                    return Ok(Self::OnUnhealthy { max });
                }
                if let Some(n) = s.strip_prefix("on-failure:") {
                    let max = n.parse().with_context(|| {
                        format!("invalid --restart {s:?}: the retry count must be a whole number")
                    })?;
                    Ok(Self::OnFailure { max })
                } else {
                    invalid!("invalid --restart {s:?}: use no, always, on-failure[:N] or on-unhealthy[:N]")
                }
            }
        }
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::No => f.write_str("no"),
            Self::Always => f.write_str("always"),
            Self::OnFailure { max: 0 } => f.write_str("on-failure"),
            Self::OnFailure { max } => write!(f, "on-failure:{max}"),
            Self::OnUnhealthy { max: 0 } => f.write_str("on-unhealthy"),
            Self::OnUnhealthy { max } => write!(f, "on-unhealthy:{max}"),
        }
    }
}

impl RestartPolicy {
    /// Whether to restart after exit `code` given `restarts` done so far.
    pub fn should_restart(self, code: i32, restarts: u32) -> bool {
        match self {
            Self::No => false,
            Self::Always => true,
            Self::OnFailure { max } | Self::OnUnhealthy { max } => {
                code != 0 && (max == 0 || restarts < max)
            }
        }
    }

    /// Whether an unhealthy instance is killed (and so restarted).
    pub fn acts_on_unhealthy(self) -> bool {
        matches!(self, Self::OnUnhealthy { .. })
    }

    /// Back-off before restart number `restarts + 1`: 100 ms doubling, at most 10 s.
    pub fn backoff(restarts: u32) -> std::time::Duration {
        let ms = 100u64.saturating_mul(1u64 << restarts.min(7));
        std::time::Duration::from_millis(ms.min(10_000))
    }
}

impl Serialize for RestartPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for RestartPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("--memory", "256m").unwrap(), 256 << 20);
        assert_eq!(parse_size("--memory", "1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("--memory", "1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("--memory", "4096").unwrap(), 4096);
        assert_eq!(parse_size("--memory", "64MiB").unwrap(), 64 << 20);
        let e = parse_size("--memory", "12Q").unwrap_err().to_string();
        assert!(e.contains("12Q") && e.contains("--memory"), "{e}");
        assert!(parse_size("--memory", "").is_err());
        assert!(parse_size("--memory", "-1m").is_err());
    }

    #[test]
    fn one_parser_for_every_front_end() {
        let spec = LimitSpec {
            memory: Some("64m".into()),
            cpus: Some("0.5".into()),
            io_write_bps: Some("2m".into()),
            ..Default::default()
        };
        let l = spec.parse().unwrap();
        assert_eq!(l.memory, Some(64 << 20));
        assert_eq!(l.io_write_bps, Some(2 << 20));
        let small = LimitSpec {
            memory: Some("1m".into()),
            ..Default::default()
        };
        let e = small.parse().unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
        assert_eq!(e.to_string(), "invalid --memory 1m: the minimum is 4m");
        let l = Limits {
            memory: Some(1),
            pids: Some(5),
            ..Default::default()
        };
        let m = l.merged(&Limits {
            memory: Some(2),
            ..Default::default()
        });
        assert_eq!((m.memory, m.pids), (Some(2), Some(5)));
    }

    #[test]
    fn cpus_and_sets() {
        assert_eq!(parse_cpus("0.5").unwrap(), 0.5);
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("1000").is_err());
        assert!(parse_cpus("x").is_err());
        assert!(parse_cpuset("0-1,3").is_ok());
        assert!(parse_cpuset("1-0").is_err());
        assert!(parse_cpuset("a").is_err());
    }

    #[test]
    fn oci_resources() {
        let l = Limits {
            memory: Some(1 << 20),
            cpus: Some(0.5),
            io_write_bps: Some(1000),
            ..Default::default()
        };
        let v = serde_json::to_value(l.to_oci(&[(7, 3)]).unwrap()).unwrap();
        assert_eq!(v["memory"]["limit"], 1 << 20);
        assert_eq!(v["cpu"]["quota"], 50_000);
        assert_eq!(v["cpu"]["period"], 100_000);
        assert_eq!(v["blockIO"]["throttleWriteBpsDevice"][0]["major"], 7);
        assert_eq!(v["blockIO"]["throttleWriteBpsDevice"][0]["rate"], 1000);
    }

    #[test]
    fn restart_policies() {
        let p: RestartPolicy = "on-failure:3".parse().unwrap();
        assert_eq!(p, RestartPolicy::OnFailure { max: 3 });
        assert!(p.should_restart(1, 2));
        assert!(!p.should_restart(1, 3));
        assert!(!p.should_restart(0, 0));
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert_eq!(p.to_string(), "on-failure:3");
        let u: RestartPolicy = "on-unhealthy:2".parse().unwrap();
        assert_eq!(u, RestartPolicy::OnUnhealthy { max: 2 });
        assert!(u.acts_on_unhealthy() && u.should_restart(137, 1) && !u.should_restart(137, 2));
        assert_eq!(u.to_string(), "on-unhealthy:2");
        assert!(!RestartPolicy::Always.acts_on_unhealthy());
    }
}
