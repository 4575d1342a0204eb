//! Resource usage statistics in the shape of runc's `events --stats` "data"
//! object, plus the OOM-kill counter.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::cgroup::{Cgroup, Hierarchy, Version};
use crate::error::{CgroupError, Result};
use crate::fsutil::{self, flat_key, read_opt, read_u64_or_zero};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// `cpu.usage` (nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Total CPU time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Per CPU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Per CPU, kernel mode.
    #[serde(
        default,
        rename = "percpu_kernel",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub percpu_kernel: Vec<u64>,
    /// Per CPU, user mode.
    #[serde(default, rename = "percpu_user", skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// Kernel mode.
    #[serde(default)]
    pub kernel: u64,
    /// User mode.
    #[serde(default)]
    pub user: u64,
}

/// `cpu.throttling`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    /// Enforcement periods.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the quota was exhausted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Total throttled time (ns).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// `cpu`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    /// Usage.
    #[serde(default)]
    pub usage: CpuUsage,
    /// Throttling.
    #[serde(default)]
    pub throttling: Throttling,
}

/// One memory counter group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// Limit (`u64::MAX`-ish values when unlimited, as the kernel reports).
    #[serde(default)]
    pub limit: u64,
    /// Current usage.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak usage.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times the limit was hit.
    #[serde(default)]
    pub failcnt: u64,
}

/// `memory`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Page cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    #[serde(default)]
    pub usage: MemoryEntry,
    /// Memory + swap.
    #[serde(default)]
    pub swap: MemoryEntry,
    /// Kernel memory.
    #[serde(default)]
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers.
    #[serde(default, rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// `memory.stat` as is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// `pids`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pids {
    /// Tasks now.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    /// Limit (0: unlimited).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// One blkio counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    /// Device major.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub major: u64,
    /// Device minor.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard`, `Total`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// Value.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// `blkio`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    /// Bytes transferred.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// I/O operations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One hugetlb page size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hugetlb {
    /// Usage in bytes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Peak usage.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Allocation failures due to the limit.
    #[serde(default)]
    pub failcnt: u64,
}

/// The `data` object of runc's `events --stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU.
    pub cpu: Cpu,
    /// Memory.
    pub memory: Memory,
    /// Tasks.
    pub pids: Pids,
    /// Block I/O.
    pub blkio: Blkio,
    /// Hugetlb per page size (`2MB`, `1GB`).
    pub hugetlb: HashMap<String, Hugetlb>,
}

/// `USER_HZ`, the unit of v1 `cpuacct.stat` (100 on every Linux ABI).
const USER_HZ: u64 = 100;
const NS_PER_SEC: u64 = 1_000_000_000;

fn parse_list(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

fn flat_map(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

/// Parse v1 `cpuacct.usage_all` (`cpu user system` per line).
pub(crate) fn parse_usage_all(text: &str) -> (Vec<u64>, Vec<u64>) {
    let mut user = Vec::new();
    let mut sys = Vec::new();
    for l in text.lines().skip(1) {
        let v = parse_list(l);
        if v.len() == 3 {
            user.push(v[1]);
            sys.push(v[2]);
        }
    }
    (user, sys)
}

/// Parse v1 blkio `maj:min Op value` lines.
pub(crate) fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() != 3 {
            continue; // "Total N"
        }
        let Some((maj, min)) = f[0].split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor), Ok(value)) = (maj.parse(), min.parse(), f[2].parse()) else {
            continue;
        };
        out.push(BlkioEntry {
            major,
            minor,
            op: f[1].to_string(),
            value,
        });
    }
    out
}

/// Parse v2 `io.stat` into (bytes, ios) entries with v1-style ops.
pub(crate) fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "dbytes" => (&mut bytes, "Discard"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                "dios" => (&mut ios, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    (bytes, ios)
}

/// Hugepage sizes of this machine as cgroup file names use them (`2MB`).
pub(crate) fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(kb) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hugepages-"))
            .and_then(|n| n.strip_suffix("kB"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push(page_size_name(kb));
    }
    out.sort();
    out
}

/// `2048` kB → `2MB`, `1048576` → `1GB`, `64` → `64KB`.
pub(crate) fn page_size_name(kb: u64) -> String {
    if kb >= 1 << 20 && kb & ((1 << 20) - 1) == 0 {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb & ((1 << 10) - 1) == 0 {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

impl Cgroup {
    fn stat_dir(&self, controller: &str) -> Option<&Hierarchy> {
        self.controller(controller)
    }

    /// Usage statistics (runc's `events --stats` data). Controllers that are
    /// not available leave their section empty.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        self.cpu_stats(&mut s.cpu)?;
        self.memory_stats(&mut s.memory)?;
        if let Some(h) = self.stat_dir("pids") {
            s.pids.current = read_u64_or_zero(&h.path, "pids.current")?;
            let l = read_u64_or_zero(&h.path, "pids.max")?;
            s.pids.limit = if l == u64::MAX { 0 } else { l };
        }
        self.blkio_stats(&mut s.blkio)?;
        if let Some(h) = self.stat_dir("hugetlb") {
            for ps in hugepage_sizes() {
                let e = match h.version {
                    Version::V1 => Hugetlb {
                        usage: read_u64_or_zero(&h.path, &format!("hugetlb.{ps}.usage_in_bytes"))?,
                        max: read_u64_or_zero(
                            &h.path,
                            &format!("hugetlb.{ps}.max_usage_in_bytes"),
                        )?,
                        failcnt: read_u64_or_zero(&h.path, &format!("hugetlb.{ps}.failcnt"))?,
                    },
                    Version::V2 => Hugetlb {
                        usage: read_u64_or_zero(&h.path, &format!("hugetlb.{ps}.current"))?,
                        max: 0,
                        failcnt: read_opt(&h.path.join(format!("hugetlb.{ps}.events")))?
                            .and_then(|t| flat_key(&t, "max"))
                            .unwrap_or(0),
                    },
                };
                s.hugetlb.insert(ps, e);
            }
        }
        Ok(s)
    }

    fn cpu_stats(&self, cpu: &mut Cpu) -> Result<()> {
        if let Some(h) = self.stat_dir("cpu") {
            let text = read_opt(&h.path.join("cpu.stat"))?.unwrap_or_default();
            match h.version {
                Version::V1 => {
                    cpu.throttling.periods = flat_key(&text, "nr_periods").unwrap_or(0);
                    cpu.throttling.throttled_periods = flat_key(&text, "nr_throttled").unwrap_or(0);
                    cpu.throttling.throttled_time = flat_key(&text, "throttled_time").unwrap_or(0);
                }
                Version::V2 => {
                    cpu.usage.total = flat_key(&text, "usage_usec").unwrap_or(0) * 1000;
                    cpu.usage.user = flat_key(&text, "user_usec").unwrap_or(0) * 1000;
                    cpu.usage.kernel = flat_key(&text, "system_usec").unwrap_or(0) * 1000;
                    cpu.throttling.periods = flat_key(&text, "nr_periods").unwrap_or(0);
                    cpu.throttling.throttled_periods = flat_key(&text, "nr_throttled").unwrap_or(0);
                    cpu.throttling.throttled_time =
                        flat_key(&text, "throttled_usec").unwrap_or(0) * 1000;
                }
            }
        }
        if let Some(h) = self
            .hierarchies
            .iter()
            .find(|h| h.version == Version::V1 && h.has("cpuacct"))
        {
            let d = &h.path;
            cpu.usage.total = read_u64_or_zero(d, "cpuacct.usage")?;
            cpu.usage.percpu =
                parse_list(&read_opt(&d.join("cpuacct.usage_percpu"))?.unwrap_or_default());
            let (user, sys) =
                parse_usage_all(&read_opt(&d.join("cpuacct.usage_all"))?.unwrap_or_default());
            cpu.usage.percpu_user = user;
            cpu.usage.percpu_kernel = sys;
            let st = read_opt(&d.join("cpuacct.stat"))?.unwrap_or_default();
            cpu.usage.user = flat_key(&st, "user").unwrap_or(0) * (NS_PER_SEC / USER_HZ);
            cpu.usage.kernel = flat_key(&st, "system").unwrap_or(0) * (NS_PER_SEC / USER_HZ);
        }
        Ok(())
    }

    fn memory_stats(&self, m: &mut Memory) -> Result<()> {
        let Some(h) = self.stat_dir("memory") else {
            return Ok(());
        };
        let d = &h.path;
        m.raw = flat_map(&read_opt(&d.join("memory.stat"))?.unwrap_or_default());
        let entry = |prefix: &str| -> Result<MemoryEntry> {
            Ok(MemoryEntry {
                limit: read_u64_or_zero(d, &format!("{prefix}.limit_in_bytes"))?,
                usage: read_u64_or_zero(d, &format!("{prefix}.usage_in_bytes"))?,
                max: read_u64_or_zero(d, &format!("{prefix}.max_usage_in_bytes"))?,
                failcnt: read_u64_or_zero(d, &format!("{prefix}.failcnt"))?,
            })
        };
        match h.version {
            Version::V1 => {
                m.cache = m
                    .raw
                    .get("total_cache")
                    .or_else(|| m.raw.get("cache"))
                    .copied()
                    .unwrap_or(0);
                m.usage = entry("memory")?;
                m.swap = entry("memory.memsw")?;
                m.kernel = entry("memory.kmem")?;
                m.kernel_tcp = entry("memory.kmem.tcp")?;
            }
            Version::V2 => {
                m.cache = m.raw.get("file").copied().unwrap_or(0);
                let events = read_opt(&d.join("memory.events"))?.unwrap_or_default();
                m.usage = MemoryEntry {
                    limit: read_u64_or_zero(d, "memory.max")?,
                    usage: read_u64_or_zero(d, "memory.current")?,
                    max: read_u64_or_zero(d, "memory.peak")?,
                    failcnt: flat_key(&events, "max").unwrap_or(0),
                };
                // v1 semantics: swap is memory+swap.
                let swap_cur = read_u64_or_zero(d, "memory.swap.current")?;
                let swap_max = read_u64_or_zero(d, "memory.swap.max")?;
                let swap_events = read_opt(&d.join("memory.swap.events"))?.unwrap_or_default();
                m.swap = MemoryEntry {
                    limit: m.usage.limit.saturating_add(swap_max),
                    usage: m.usage.usage.saturating_add(swap_cur),
                    max: 0,
                    failcnt: flat_key(&swap_events, "max").unwrap_or(0),
                };
            }
        }
        Ok(())
    }

    fn blkio_stats(&self, b: &mut Blkio) -> Result<()> {
        if let Some(h) = self
            .hierarchies
            .iter()
            .find(|h| h.version == Version::V1 && h.has("blkio"))
        {
            let d = &h.path;
            let pick = |names: &[&str]| -> Result<Vec<BlkioEntry>> {
                for n in names {
                    if let Some(t) = read_opt(&d.join(n))? {
                        let e = parse_blkio_v1(&t);
                        if !e.is_empty() {
                            return Ok(e);
                        }
                    }
                }
                Ok(Vec::new())
            };
            b.io_service_bytes_recursive = pick(&[
                "blkio.io_service_bytes_recursive",
                "blkio.bfq.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes_recursive",
            ])?;
            b.io_serviced_recursive = pick(&[
                "blkio.io_serviced_recursive",
                "blkio.bfq.io_serviced_recursive",
                "blkio.throttle.io_serviced_recursive",
            ])?;
        } else if let Some(h) = self.v2().filter(|h| h.has("io")) {
            let (bytes, ios) =
                parse_io_stat(&read_opt(&h.path.join("io.stat"))?.unwrap_or_default());
            b.io_service_bytes_recursive = bytes;
            b.io_serviced_recursive = ios;
        }
        Ok(())
    }

    /// How many times the kernel OOM killer killed a process in this cgroup
    /// (v1 `memory.oom_control` `oom_kill`, v2 `memory.events` `oom_kill`).
    pub fn oom_kill_count(&self) -> Result<u64> {
        let h = self.require("memory", "OOM event counting")?;
        let (file, key) = match h.version {
            Version::V1 => ("memory.oom_control", "oom_kill"),
            Version::V2 => ("memory.events", "oom_kill"),
        };
        let path = h.path.join(file);
        let text = fsutil::read(&path)?;
        flat_key(&text, key).ok_or_else(|| CgroupError::Parse {
            path,
            reason: format!("no {key} counter (kernel older than 4.13?)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_names() {
        assert_eq!(page_size_name(2048), "2MB");
        assert_eq!(page_size_name(1_048_576), "1GB");
        assert_eq!(page_size_name(64), "64KB");
    }

    #[test]
    fn blkio_v1_lines() {
        let t = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Total 12288\nTotal 12288\n";
        let e = parse_blkio_v1(t);
        assert_eq!(e.len(), 5);
        assert_eq!(
            e[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 8192
            }
        );
    }

    #[test]
    fn io_stat_v2() {
        let (b, i) = parse_io_stat("8:16 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].op, "Read");
        assert_eq!(b[1].value, 20);
        assert_eq!(
            i[1],
            BlkioEntry {
                major: 8,
                minor: 16,
                op: "Write".into(),
                value: 2
            }
        );
    }

    #[test]
    fn usage_all() {
        let (u, s) = parse_usage_all("cpu user system\n0 10 20\n1 30 40\n");
        assert_eq!(u, vec![10, 30]);
        assert_eq!(s, vec![20, 40]);
    }

    #[test]
    fn json_shape_matches_runc() {
        let mut s = Stats::default();
        s.memory.kernel_tcp.limit = 5;
        s.cpu.throttling.throttled_periods = 2;
        s.hugetlb.insert("2MB".into(), Hugetlb::default());
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["memory"]["kernelTCP"]["limit"], 5);
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 2);
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert!(
            v["cpu"]["usage"].get("total").is_none(),
            "omitempty like runc"
        );
        assert_eq!(v["hugetlb"]["2MB"]["failcnt"], 0);
        assert!(v["blkio"].as_object().unwrap().is_empty());
        assert!(v["pids"].as_object().unwrap().is_empty());
    }
}
