//! `stats`: CPU, memory, pids and block I/O from the instances' cgroups.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Context, Result};
use boxrun_cgroups::{Cgroup, Layout, Stats};

use crate::bundle;
use crate::instance_file::{Instance, Status};
use crate::store::Store;

/// Read the cgroup statistics of `inst`.
pub fn read(inst: &Instance) -> Result<Stats> {
    let layout = Layout::host().context("cannot read the host's cgroup layout")?;
    let path = bundle::cgroups_path(&inst.id);
    let cg = Cgroup::resolve(layout, Some(Path::new(&path)), &inst.id)
        .with_context(|| format!("cannot find the cgroups of {}", inst.name))?;
    cg.stats()
        .with_context(|| format!("cannot read the cgroups of {}", inst.name))
}

fn io_totals(s: &Stats) -> (u64, u64) {
    let mut r = 0;
    let mut w = 0;
    for e in &s.blkio.io_service_bytes_recursive {
        match e.op.to_ascii_lowercase().as_str() {
            "read" => r += e.value,
            "write" => w += e.value,
            _ => {}
        }
    }
    (r, w)
}

fn targets(store: &Store, names: &[String]) -> Result<Vec<Instance>> {
    if names.is_empty() {
        return Ok(store
            .load()?
            .into_iter()
            .filter(|i| i.status == Status::Running && i.pid.is_some())
            .collect());
    }
    names.iter().map(|n| store.find(n)).collect()
}

/// One instance's usage over a sampling interval.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Instance id.
    pub id: String,
    /// Instance name.
    pub name: String,
    /// CPU time used over the interval, in percent of one CPU.
    pub cpu_percent: f64,
    /// Memory in use, bytes.
    pub memory_usage: u64,
    /// Memory limit, bytes (the host's memory when unlimited).
    pub memory_limit: u64,
    /// Bytes read from block devices.
    pub block_read: u64,
    /// Bytes written to block devices.
    pub block_write: u64,
    /// The raw cgroup statistics at the end of the interval.
    pub stats: Stats,
}

impl Sample {
    /// Memory in use, in percent of the limit.
    pub fn memory_percent(&self) -> f64 {
        if self.memory_limit > 0 {
            self.memory_usage as f64 * 100.0 / self.memory_limit as f64
        } else {
            0.0
        }
    }
}

/// Sample the instances `names` (all running ones when empty) over
/// `interval`; instances whose cgroups cannot be read are left out.
pub fn sample(store: &Store, names: &[String], interval: Duration) -> Result<Vec<Sample>> {
    let list = targets(store, names)?;
    let t0 = Instant::now();
    let first: Vec<Option<Stats>> = list.iter().map(|i| read(i).ok()).collect();
    std::thread::sleep(interval);
    let wall = t0.elapsed().as_nanos().max(1) as f64;
    let mut out = Vec::new();
    for (inst, before) in list.iter().zip(first) {
        let Ok(now) = read(inst) else { continue };
        let cpu_percent = before
            .map(|b| (now.cpu.usage.total.saturating_sub(b.cpu.usage.total)) as f64 / wall * 100.0)
            .unwrap_or(0.0);
        let (block_read, block_write) = io_totals(&now);
        out.push(Sample {
            id: inst.id.clone(),
            name: inst.name.clone(),
            cpu_percent,
            memory_usage: now.memory.usage.usage,
            memory_limit: now.memory.usage.limit.min(host_memory()),
            block_read,
            block_write,
            stats: now,
        });
    }
    Ok(out)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(u64::MAX)
}
