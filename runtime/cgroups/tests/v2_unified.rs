//! Pure cgroup v2 (unified) host tests: every value mapping the crate does
//! for the v2 files, read back from a real cgroup2 tree. They skip on hosts
//! that are not pure v2 (the hybrid development host); the v2 test lane
//! (`runtime/cgroups/v2lane/run.sh`) runs them in a VM that mounts cgroup2
//! alone at /sys/fs/cgroup. Each test works below its own
//! `/boxrun-test-<random>` parent, removed by a Drop guard.

mod common;

use std::path::Path;

use boxrun_cgroups::layout::{Layout, Mode};
use boxrun_cgroups::{Cgroup, CgroupError, Version};
use common::{read, resources, Blocker, TestRoot};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;

/// True on a pure v2 host run as root; otherwise says why the test skips.
fn unified_or_skip() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    match Layout::detect() {
        Ok(l) if l.mode == Mode::Unified => true,
        Ok(l) => {
            eprintln!("skipped: host is {}, not pure cgroup v2", l.mode.as_str());
            false
        }
        Err(e) => {
            eprintln!("skipped: no cgroup layout: {e}");
            false
        }
    }
}

/// The single v2 directory of a cgroup on a unified host.
fn v2dir(cg: &Cgroup) -> &Path {
    assert_eq!(cg.hierarchies.len(), 1, "{:?}", cg.hierarchies);
    let h = &cg.hierarchies[0];
    assert_eq!(h.version, Version::V2);
    &h.path
}

#[test]
fn layout_is_unified_with_the_usual_controllers() {
    if !unified_or_skip() {
        return;
    }
    let l = Layout::detect().unwrap();
    assert!(l.v1.is_empty(), "{:?}", l.v1);
    let v2 = l.v2.as_ref().expect("cgroup2 mount");
    assert_eq!(v2.mount_point, Path::new("/sys/fs/cgroup"));
    for c in ["cpuset", "cpu", "io", "memory", "pids", "hugetlb"] {
        assert!(
            v2.controllers.iter().any(|x| x == c),
            "{c} missing from {:?}",
            v2.controllers
        );
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(Some(&t.path("l")), "x", None).unwrap();
    assert_eq!(cg.mode, Mode::Unified);
    let d = v2dir(&cg).to_path_buf();
    assert_eq!(d, Path::new("/sys/fs/cgroup").join(&t.name).join("l"));
    // every controller was enabled for the container's directory
    let have = read(&d.join("cgroup.controllers"));
    for c in ["cpuset", "cpu", "io", "memory", "pids", "hugetlb"] {
        assert!(have.split(' ').any(|x| x == c), "{c} not enabled: {have}");
    }
    cg.destroy().unwrap();
    assert!(!d.exists());
}

#[test]
fn memory_max_swap_max_low_high() {
    if !unified_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(
        Some(&t.path("m")),
        "x",
        Some(&resources(
            r#"{"memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432}}"#,
        )),
    )
    .unwrap();
    let d = v2dir(&cg).to_path_buf();
    assert_eq!(read(&d.join("memory.max")), "67108864");
    // OCI swap is memory+swap; memory.swap.max is the swap part alone
    assert_eq!(read(&d.join("memory.swap.max")), "67108864");
    assert_eq!(read(&d.join("memory.low")), "33554432");
    // swap equal to the limit: no swap at all
    cg.apply(&resources(
        r#"{"memory": {"limit": 33554432, "swap": 33554432}}"#,
    ))
    .unwrap();
    assert_eq!(read(&d.join("memory.max")), "33554432");
    assert_eq!(read(&d.join("memory.swap.max")), "0");
    // unlimited
    cg.apply(&resources(r#"{"memory": {"limit": -1, "swap": -1}}"#))
        .unwrap();
    assert_eq!(read(&d.join("memory.max")), "max");
    assert_eq!(read(&d.join("memory.swap.max")), "max");
    // unified keys are written as they are
    cg.apply(&resources(r#"{"unified": {"memory.high": "50331648"}}"#))
        .unwrap();
    assert_eq!(read(&d.join("memory.high")), "50331648");
    // swap below the limit is refused, v1-only knobs are errors on v2
    let e = cg
        .apply(&resources(
            r#"{"memory": {"limit": 100000000, "swap": 50}}"#,
        ))
        .unwrap_err();
    assert!(matches!(e, CgroupError::InvalidValue { .. }), "{e}");
    let e = cg
        .apply(&resources(r#"{"memory": {"swappiness": 10}}"#))
        .unwrap_err();
    assert!(matches!(e, CgroupError::Unsupported { .. }), "{e}");
    let st = cg.stats().unwrap();
    assert!(st.memory.usage.limit > 0, "{:?}", st.memory.usage);
    cg.destroy().unwrap();
}

#[test]
fn cpu_weight_max_and_cpuset() {
    if !unified_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(
        Some(&t.path("c")),
        "x",
        Some(&resources(
            r#"{"cpu": {"shares": 1024, "quota": 25000, "period": 50000, "cpus": "0", "mems": "0"}}"#,
        )),
    )
    .unwrap();
    let d = v2dir(&cg).to_path_buf();
    // 1 + (1024-2)*9999/262142 = 39
    assert_eq!(read(&d.join("cpu.weight")), "39");
    assert_eq!(read(&d.join("cpu.max")), "25000 50000");
    assert_eq!(read(&d.join("cpuset.cpus")), "0");
    assert_eq!(read(&d.join("cpuset.mems")), "0");
    // a quota-only update keeps the period, -1 lifts the quota
    cg.apply(&resources(r#"{"cpu": {"quota": 10000}}"#))
        .unwrap();
    assert_eq!(read(&d.join("cpu.max")), "10000 50000");
    cg.apply(&resources(r#"{"cpu": {"quota": -1}}"#)).unwrap();
    assert_eq!(read(&d.join("cpu.max")), "max 50000");
    // the extremes of the shares range
    cg.apply(&resources(r#"{"cpu": {"shares": 2}}"#)).unwrap();
    assert_eq!(read(&d.join("cpu.weight")), "1");
    cg.apply(&resources(r#"{"cpu": {"shares": 262144}}"#))
        .unwrap();
    assert_eq!(read(&d.join("cpu.weight")), "10000");
    // realtime is v1 only
    let e = cg
        .apply(&resources(r#"{"cpu": {"realtimeRuntime": 1000}}"#))
        .unwrap_err();
    assert!(matches!(e, CgroupError::Unsupported { .. }), "{e}");
    cg.destroy().unwrap();
}

#[test]
fn pids_max_and_events() {
    if !unified_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(
        Some(&t.path("p")),
        "x",
        Some(&resources(r#"{"pids": {"limit": 3}}"#)),
    )
    .unwrap();
    let d = v2dir(&cg).to_path_buf();
    assert_eq!(read(&d.join("pids.max")), "3");
    let mut b = Blocker::spawn();
    cg.add_process(b.pid.as_raw()).unwrap();
    assert_eq!(read(&d.join("pids.current")), "1");
    assert_eq!(cg.stats().unwrap().pids.current, 1);
    cg.apply(&resources(r#"{"pids": {"limit": -1}}"#)).unwrap();
    assert_eq!(read(&d.join("pids.max")), "max");
    b.release();
    assert_eq!(b.wait(), WaitStatus::Exited(b.pid, 0));
    cg.destroy().unwrap();
}

/// io.weight (iocost, or io.bfq.weight where BFQ is the scheduler) and
/// io.max on the first whole disk (the lane adds a virtio disk).
#[test]
fn io_weight_and_max_on_a_real_disk() {
    if !unified_or_skip() {
        return;
    }
    let dev = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            !n.starts_with("loop") && !n.starts_with("ram") && !n.starts_with("zram")
        })
        .find_map(|p| std::fs::read_to_string(p.join("dev")).ok())
        .map(|s| s.trim().to_string());
    let Some(dev) = dev else {
        eprintln!("skipped: no block device");
        return;
    };
    let (maj, min) = dev.split_once(':').unwrap();
    let t = TestRoot::new();
    let json = format!(
        r#"{{"blockIO": {{"weight": 300,
            "throttleReadBpsDevice": [{{"major": {maj}, "minor": {min}, "rate": 1048576}}],
            "throttleWriteBpsDevice": [{{"major": {maj}, "minor": {min}, "rate": 2097152}}],
            "throttleReadIOPSDevice": [{{"major": {maj}, "minor": {min}, "rate": 55}}],
            "throttleWriteIOPSDevice": [{{"major": {maj}, "minor": {min}, "rate": 77}}]}}}}"#
    );
    let cg = Cgroup::create(Some(&t.path("io")), "x", Some(&resources(&json))).unwrap();
    let d = v2dir(&cg).to_path_buf();
    if d.join("io.bfq.weight").exists() {
        assert!(read(&d.join("io.bfq.weight")).contains("300"));
    } else {
        // 1 + (300-10)*9999/990 = 2930
        assert_eq!(read(&d.join("io.weight")), "default 2930");
    }
    assert_eq!(
        read(&d.join("io.max")),
        format!("{dev} rbps=1048576 wbps=2097152 riops=55 wiops=77")
    );
    let e = cg
        .apply(&resources(r#"{"blockIO": {"leafWeight": 500}}"#))
        .unwrap_err();
    assert!(matches!(e, CgroupError::Unsupported { .. }), "{e}");
    cg.destroy().unwrap();
}

#[test]
fn hugetlb_max() {
    if !unified_or_skip() {
        return;
    }
    if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        eprintln!("skipped: no 2MB huge pages");
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(
        Some(&t.path("h")),
        "x",
        Some(&resources(
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#,
        )),
    )
    .unwrap();
    let d = v2dir(&cg).to_path_buf();
    assert_eq!(read(&d.join("hugetlb.2MB.max")), "4194304");
    assert!(cg.stats().unwrap().hugetlb.contains_key("2MB"));
    cg.destroy().unwrap();
}

/// cgroup.kill ends every process of the cgroup, also frozen ones, and
/// non-SIGKILL signals reach a frozen cgroup's processes after the thaw.
#[test]
fn kill_all_through_cgroup_kill_and_frozen_delivery() {
    if !unified_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(Some(&t.path("k")), "x", None).unwrap();
    let d = v2dir(&cg).to_path_buf();
    let mut a = Blocker::spawn();
    let mut b = Blocker::spawn();
    cg.add_process(a.pid.as_raw()).unwrap();
    cg.add_process(b.pid.as_raw()).unwrap();
    let mut pids = cg.pids().unwrap();
    pids.sort();
    let mut want = vec![a.pid.as_raw(), b.pid.as_raw()];
    want.sort();
    assert_eq!(pids, want);
    cg.freeze().unwrap();
    assert!(read(&d.join("cgroup.events")).contains("frozen 1"));
    assert_eq!(read(&d.join("cgroup.freeze")), "1");
    cg.kill_all(Signal::SIGKILL as i32).unwrap();
    assert_eq!(
        a.wait(),
        WaitStatus::Signaled(a.pid, Signal::SIGKILL, false)
    );
    assert_eq!(
        b.wait(),
        WaitStatus::Signaled(b.pid, Signal::SIGKILL, false)
    );
    assert!(cg.pids().unwrap().is_empty());
    cg.destroy().unwrap();
    assert!(!d.exists());
}
