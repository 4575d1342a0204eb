//! `linux.cgroupsPath` and basic `linux.resources`, read back from the host
//! hierarchy and from inside the container.

use crate::runner::{Case, CaseResult, Ctx};
use crate::{check, fail, skip};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Cases of this area.
pub const CASES: &[Case] = &[
    Case {
        name: "cgroups.host-readback",
        run: host_readback,
    },
    Case {
        name: "cgroups.inside-view",
        run: inside,
    },
    Case {
        name: "cgroups.delete-removes",
        run: delete_removes,
    },
    Case {
        name: "cgroups.inside-view-more",
        run: inside_more,
    },
];

fn resources() -> serde_json::Value {
    json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "memory": {"limit": 67108864, "reservation": 33554432},
        "pids": {"limit": 77},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}
    })
}

fn v1() -> Result<(), crate::runner::Outcome> {
    if !Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        skip!("host is not cgroup v1 (no /sys/fs/cgroup/memory)");
    }
    Ok(())
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("<{e}>"))
}

fn host_dir(ctrl: &str, cg: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(ctrl)
        .join(cg.trim_start_matches('/'))
}

fn host_readback(c: &mut Ctx) -> CaseResult {
    v1()?;
    let id = c.id(1);
    let cg = c.use_cgroup(&id);
    c.config["linux"]["resources"] = resources();
    c.set_args(&["/bin/sleep", "600"]);
    c.create(&id)?;
    let pid = c.pid(&id)?;
    let mut errs = Vec::new();
    for (ctrl, file, want) in [
        ("memory", "memory.limit_in_bytes", "67108864"),
        ("memory", "memory.soft_limit_in_bytes", "33554432"),
        ("cpuset", "cpuset.cpus", "0"),
        ("cpuset", "cpuset.mems", "0"),
        ("pids", "pids.max", "77"),
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.cfs_period_us", "100000"),
    ] {
        let got = read(&host_dir(ctrl, &cg).join(file));
        if got != want {
            errs.push(format!("{ctrl}/{cg}/{file}: expected {want} got {got}"));
        }
    }
    let procs = read(&host_dir("pids", &cg).join("cgroup.procs"));
    if !procs.lines().any(|l| l == pid.to_string()) {
        errs.push(format!(
            "pid {pid} not in pids{cg}/cgroup.procs ({procs:?})"
        ));
    }
    check!(errs.is_empty(), "{}", errs.join("; "));
    Ok(())
}

fn inside(c: &mut Ctx) -> CaseResult {
    v1()?;
    let id = c.id(0);
    c.use_cgroup(&id);
    c.config["linux"]["resources"] = resources();
    c.expect_checks(&["cgroups"])
}

fn delete_removes(c: &mut Ctx) -> CaseResult {
    v1()?;
    let id = c.id(1);
    let cg = c.use_cgroup(&id);
    // A pre-existing cgroup the container is not responsible for.
    let keep = format!("{cg}-keep");
    let keep_dir = host_dir("pids", &keep);
    std::fs::create_dir_all(&keep_dir).map_err(anyhow::Error::from)?;
    let guard = KeepGuard(keep.clone());
    c.config["linux"]["resources"] = resources();
    c.set_args(&["/bin/true"]);
    c.create(&id)?;
    check!(
        host_dir("pids", &cg).is_dir(),
        "create made no pids cgroup {cg}"
    );
    c.rt_ok(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.rt_ok(&["delete", &id])?;
    let left: Vec<String> = ["memory", "pids", "cpu"]
        .iter()
        .filter(|ctrl| host_dir(ctrl, &cg).exists())
        .map(|s| s.to_string())
        .collect();
    if !left.is_empty() {
        fail!("cgroup {cg} still exists in {left:?} after delete");
    }
    check!(
        keep_dir.is_dir(),
        "delete removed the unrelated cgroup {keep}"
    );
    drop(guard);
    Ok(())
}

struct KeepGuard(String);

impl Drop for KeepGuard {
    fn drop(&mut self) {
        crate::runner::ctx::remove_cgroup(&self.0);
    }
}

/// The resources beyond the basic set, each read back from inside through the
/// container's cgroup mount (a runtime that accepts one and writes nothing fails).
fn inside_more(c: &mut Ctx) -> CaseResult {
    v1()?;
    let id = c.id(0);
    c.use_cgroup(&id);
    c.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864, "reservation": 33554432, "swappiness": 30,
                   "disableOOMKiller": true, "kernelTCP": 16777216},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "pids": {"limit": 50}
    });
    c.expect_checks_optional(&["cgroups"], "these cgroup resources")
}
