//! `stats`: CPU, memory, pids and block I/O from the instances' cgroups.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use boxrun_cgroups::{Cgroup, Layout, Stats};
use serde_json::json;

use crate::instance_file::{Instance, Status};
use crate::store::Store;
use crate::util::human_bytes;

/// Read the cgroup statistics of `inst`.
pub fn read(inst: &Instance) -> Result<Stats> {
    let layout = Layout::host().context("cannot read the host's cgroup layout")?;
    let path = crate::bundle::cgroups_path(&inst.id);
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

/// Print stats; `once`: one sample pair and exit; `json`: machine-readable.
pub fn run(store: &Store, names: &[String], once: bool, json: bool) -> Result<i32> {
    loop {
        let list = targets(store, names)?;
        let t0 = Instant::now();
        let first: Vec<Option<Stats>> = list.iter().map(|i| read(i).ok()).collect();
        std::thread::sleep(Duration::from_millis(if once { 500 } else { 1000 }));
        let wall = t0.elapsed().as_nanos().max(1) as f64;
        let mut rows = vec![[
            "ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "PIDS",
            "BLOCK I/O",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
        let mut out = Vec::new();
        for (inst, before) in list.iter().zip(first) {
            let Ok(now) = read(inst) else { continue };
            let cpu = before
                .map(|b| {
                    (now.cpu.usage.total.saturating_sub(b.cpu.usage.total)) as f64 / wall * 100.0
                })
                .unwrap_or(0.0);
            let host_mem = host_memory();
            let limit = now.memory.usage.limit.min(host_mem);
            let usage = now.memory.usage.usage;
            let pct = if limit > 0 {
                usage as f64 * 100.0 / limit as f64
            } else {
                0.0
            };
            let (r, w) = io_totals(&now);
            if json {
                out.push(json!({
                    "id": inst.id, "name": inst.name, "cpu_percent": cpu,
                    "cpu_total_ns": now.cpu.usage.total,
                    "cpu_throttled_periods": now.cpu.throttling.throttled_periods,
                    "memory_usage": usage, "memory_limit": limit, "memory_max_usage": now.memory.usage.max,
                    "memory_failcnt": now.memory.usage.failcnt,
                    "pids": now.pids.current, "pids_limit": now.pids.limit,
                    "block_read": r, "block_write": w,
                }));
            } else {
                rows.push(vec![
                    inst.id.clone(),
                    inst.name.clone(),
                    format!("{cpu:.2}%"),
                    format!("{} / {}", human_bytes(usage), human_bytes(limit)),
                    format!("{pct:.2}%"),
                    now.pids.current.to_string(),
                    format!("{} / {}", human_bytes(r), human_bytes(w)),
                ]);
            }
        }
        if json {
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            if !once {
                print!("\x1b[2J\x1b[H");
            }
            crate::commands::print_table(&rows);
        }
        if once {
            return Ok(0);
        }
    }
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

/// Write the block I/O throttles of `limits` for device `dev` straight into
/// the instance's cgroup: some runtimes (runc 1.1) ignore `blockIO` in `update`.
pub fn apply_io_throttles(
    inst: &Instance,
    limits: &crate::limits::Limits,
    dev: (u64, u64),
) -> Result<()> {
    use boxrun_cgroups::Version;
    let layout = Layout::host().context("cannot read the host's cgroup layout")?;
    let path = crate::bundle::cgroups_path(&inst.id);
    let cg = Cgroup::resolve(layout, Some(Path::new(&path)), &inst.id)?;
    let Some(h) = cg.controller("blkio").or_else(|| cg.controller("io")) else {
        anyhow::bail!("no blkio/io cgroup controller on this host: cannot limit disk throughput");
    };
    let (major, minor) = dev;
    let pairs = [
        ("blkio.throttle.read_bps_device", "rbps", limits.io_read_bps),
        (
            "blkio.throttle.write_bps_device",
            "wbps",
            limits.io_write_bps,
        ),
        (
            "blkio.throttle.read_iops_device",
            "riops",
            limits.io_read_iops,
        ),
        (
            "blkio.throttle.write_iops_device",
            "wiops",
            limits.io_write_iops,
        ),
    ];
    for (v1file, v2key, value) in pairs {
        let Some(v) = value else { continue };
        let (file, text) = match h.version {
            Version::V1 => (h.path.join(v1file), format!("{major}:{minor} {v}")),
            Version::V2 => (
                h.path.join("io.max"),
                format!("{major}:{minor} {v2key}={v}"),
            ),
        };
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(())
}
