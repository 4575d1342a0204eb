//! Resource mapping on layouts this host does not have (pure v2, legacy
//! v1 with co-mounted controllers), checked against a fake tree of plain
//! files: each setting must land in the right file with the right value.

mod common;

use std::path::{Path, PathBuf};

use boxrun_cgroups::layout::Mode;
use boxrun_cgroups::{Cgroup, CgroupError, Hierarchy, Version};
use common::{read, resources};

/// A temporary directory removed on drop.
struct TempTree(PathBuf);

impl TempTree {
    fn new(tag: &str) -> TempTree {
        let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap();
        let p = std::env::temp_dir().join(format!("boxrun-cgtest-{tag}-{}", &uuid.trim()[..13]));
        std::fs::create_dir_all(&p).unwrap();
        TempTree(p)
    }

    /// Create empty files (cgroup interface stand-ins) in `dir`.
    fn files(&self, dir: &str, names: &[&str]) -> PathBuf {
        let d = self.0.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        for n in names {
            std::fs::write(d.join(n), "").unwrap();
        }
        d
    }
}

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn v2_cgroup(t: &TempTree, files: &[&str]) -> (Cgroup, PathBuf) {
    let d = t.files("unified/c", files);
    let cg = Cgroup {
        mode: Mode::Unified,
        hierarchies: vec![Hierarchy {
            version: Version::V2,
            controllers: ["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"]
                .map(String::from)
                .to_vec(),
            mount_point: t.0.join("unified"),
            path: d.clone(),
            created: vec![],
            made: true,
        }],
    };
    (cg, d)
}

#[test]
fn v2_mapping() {
    let t = TempTree::new("v2");
    let (cg, d) = v2_cgroup(
        &t,
        &[
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "memory.high",
            "cpu.weight",
            "cpu.max",
            "cpu.max.burst",
            "cpu.idle",
            "cpuset.cpus",
            "cpuset.mems",
            "pids.max",
            "io.weight",
            "io.max",
            "hugetlb.2MB.max",
            "hugetlb.2MB.rsvd.max",
            "rdma.max",
        ],
    );
    cg.apply(&resources(
        r#"{
        "memory": {"limit": 104857600, "swap": 314572800, "reservation": 52428800},
        "cpu": {"shares": 1024, "quota": 20000, "period": 50000, "burst": 1000, "idle": 1,
                "cpus": "0-1", "mems": "0"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500,
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "rdma": {"mlx5_0": {"hcaHandles": 3}},
        "unified": {"memory.high": "50000000"}
    }"#,
    ))
    .unwrap();
    let f = |n: &str| read(&d.join(n));
    assert_eq!(f("memory.max"), "104857600");
    assert_eq!(
        f("memory.swap.max"),
        "209715200",
        "swap is memory+swap in OCI"
    );
    assert_eq!(f("memory.low"), "52428800");
    assert_eq!(f("cpu.weight"), "39");
    assert_eq!(f("cpu.max"), "20000 50000");
    assert_eq!(f("cpu.max.burst"), "1000");
    assert_eq!(f("cpu.idle"), "1");
    assert_eq!(f("cpuset.cpus"), "0-1");
    assert_eq!(f("cpuset.mems"), "0");
    assert_eq!(f("pids.max"), "max");
    assert_eq!(f("io.weight"), "4950");
    assert_eq!(f("io.max"), "8:0 rbps=1000");
    assert_eq!(f("hugetlb.2MB.max"), "4194304");
    assert_eq!(f("hugetlb.2MB.rsvd.max"), "4194304");
    assert_eq!(f("rdma.max"), "mlx5_0 hca_handle=3");
    assert_eq!(f("memory.high"), "50000000");

    // v1-only settings are refused, not dropped
    for bad in [
        r#"{"memory": {"swappiness": 10}}"#,
        r#"{"memory": {"kernelTCP": 1000}}"#,
        r#"{"memory": {"disableOOMKiller": true}}"#,
        r#"{"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 10000}}"#,
        r#"{"blockIO": {"leafWeight": 100}}"#,
    ] {
        let e = cg.apply(&resources(bad)).unwrap_err();
        assert!(matches!(e, CgroupError::Unsupported { .. }), "{bad}: {e}");
    }
    let e = cg
        .apply(&resources(r#"{"network": {"classID": 1}}"#))
        .unwrap_err();
    assert!(matches!(e, CgroupError::MissingController { .. }), "{e}");
    // a file the kernel would not have
    let e = cg
        .apply(&resources(r#"{"unified": {"memory.nonexistent": "1"}}"#))
        .unwrap_err();
    assert!(matches!(e, CgroupError::MissingFile { .. }), "{e}");
    // not a clone3 target: the fake tree is "unified", so an fd is returned
    assert!(cg.clone_into_fd().is_some());
}

#[test]
fn v2_only_period_keeps_quota() {
    let t = TempTree::new("v2p");
    let (cg, d) = v2_cgroup(&t, &[]);
    std::fs::write(d.join("cpu.max"), "30000 100000\n").unwrap();
    cg.apply(&resources(r#"{"cpu": {"period": 200000}}"#))
        .unwrap();
    // (plain file: the shorter write leaves a tail; compare the prefix)
    assert!(read(&d.join("cpu.max")).starts_with("30000 200000"));
}

#[test]
fn v2_stats_and_oom() {
    let t = TempTree::new("v2s");
    let (cg, d) = v2_cgroup(&t, &[]);
    let w = |n: &str, v: &str| std::fs::write(d.join(n), v).unwrap();
    w("cpu.stat", "usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 5\nnr_throttled 2\nthrottled_usec 7\n");
    w("memory.current", "4096\n");
    w("memory.max", "max\n");
    w("memory.stat", "anon 1\nfile 5\n");
    w("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n");
    w("pids.current", "2\n");
    w("pids.max", "max\n");
    w(
        "io.stat",
        "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
    );
    let s = cg.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 100_000);
    assert_eq!(s.cpu.usage.user, 60_000);
    assert_eq!(s.cpu.usage.kernel, 40_000);
    assert_eq!(s.cpu.throttling.throttled_periods, 2);
    assert_eq!(s.cpu.throttling.throttled_time, 7_000);
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.limit, u64::MAX);
    assert_eq!(s.memory.usage.failcnt, 3);
    assert_eq!(s.memory.cache, 5);
    assert_eq!(s.memory.raw.get("anon"), Some(&1));
    assert_eq!(s.pids.current, 2);
    assert_eq!(s.pids.limit, 0, "unlimited reads as 0 like runc");
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 3);
    assert_eq!(s.blkio.io_serviced_recursive[1].value, 2);
    assert_eq!(cg.oom_kill_count().unwrap(), 2);
}

fn v1_cgroup(t: &TempTree) -> (Cgroup, Vec<PathBuf>) {
    let mounts: [(&str, &[&str], &[&str]); 6] = [
        (
            "cpu,cpuacct",
            &["cpu", "cpuacct"],
            &[
                "cpu.shares",
                "cpu.cfs_quota_us",
                "cpu.cfs_period_us",
                "cpu.rt_period_us",
                "cpu.rt_runtime_us",
                "cgroup.procs",
            ],
        ),
        (
            "net_cls,net_prio",
            &["net_cls", "net_prio"],
            &["net_cls.classid", "net_prio.ifpriomap", "cgroup.procs"],
        ),
        (
            "blkio",
            &["blkio"],
            &[
                "blkio.weight",
                "blkio.leaf_weight",
                "blkio.weight_device",
                "blkio.throttle.write_iops_device",
                "cgroup.procs",
            ],
        ),
        (
            "hugetlb",
            &["hugetlb"],
            &["hugetlb.2MB.limit_in_bytes", "cgroup.procs"],
        ),
        (
            "memory",
            &["memory"],
            &[
                "memory.swappiness",
                "memory.kmem.tcp.limit_in_bytes",
                "memory.oom_control",
                "memory.limit_in_bytes",
                "cgroup.procs",
            ],
        ),
        ("systemd", &["name=systemd"], &["cgroup.procs"]),
    ];
    let mut dirs = Vec::new();
    let mut hierarchies = Vec::new();
    for (name, ctrls, files) in mounts {
        let d = t.files(&format!("{name}/c"), files);
        dirs.push(d.clone());
        hierarchies.push(Hierarchy {
            version: Version::V1,
            controllers: ctrls.iter().map(|c| c.to_string()).collect(),
            mount_point: t.0.join(name),
            path: d,
            created: vec![],
            made: true,
        });
    }
    (
        Cgroup {
            mode: Mode::Legacy,
            hierarchies,
        },
        dirs,
    )
}

#[test]
fn v1_comounts_and_v1_only_controllers() {
    let t = TempTree::new("v1");
    let (cg, dirs) = v1_cgroup(&t);
    assert_eq!(cg.controller("cpuacct").unwrap().path, dirs[0]);
    assert_eq!(cg.controller("net_prio").unwrap().path, dirs[1]);
    cg.apply(&resources(
        r#"{
        "cpu": {"shares": 256, "realtimePeriod": 100000, "realtimeRuntime": 5000},
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
        "blockIO": {"weight": 300, "leafWeight": 200,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 50}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
        "memory": {"limit": 1048576, "swappiness": 30, "kernelTCP": 65536, "disableOOMKiller": true}
    }"#,
    ))
    .unwrap();
    let f = |i: usize, n: &str| read(&dirs[i].join(n));
    assert_eq!(f(0, "cpu.shares"), "256");
    assert_eq!(f(0, "cpu.rt_period_us"), "100000");
    assert_eq!(f(0, "cpu.rt_runtime_us"), "5000");
    assert_eq!(f(1, "net_cls.classid"), "1048577");
    assert_eq!(f(1, "net_prio.ifpriomap"), "eth0 5");
    assert_eq!(f(2, "blkio.weight"), "300");
    assert_eq!(f(2, "blkio.leaf_weight"), "200");
    assert_eq!(f(2, "blkio.weight_device"), "8:0 100");
    assert_eq!(f(2, "blkio.throttle.write_iops_device"), "8:16 50");
    assert_eq!(f(3, "hugetlb.2MB.limit_in_bytes"), "2097152");
    assert_eq!(f(4, "memory.limit_in_bytes"), "1048576");
    assert_eq!(f(4, "memory.swappiness"), "30");
    assert_eq!(f(4, "memory.kmem.tcp.limit_in_bytes"), "65536");
    assert_eq!(f(4, "memory.oom_control"), "1");

    // no v2 tree: unified is refused; rdma/pids/devices are not mounted
    for (bad, unsupported) in [
        (r#"{"unified": {"memory.high": "1"}}"#, true),
        (r#"{"rdma": {"mlx5_0": {"hcaObjects": 3}}}"#, false),
        (r#"{"pids": {"limit": 5}}"#, false),
        (r#"{"devices": [{"allow": false, "access": "rwm"}]}"#, false),
    ] {
        let e = cg.apply(&resources(bad)).unwrap_err();
        if unsupported {
            assert!(matches!(e, CgroupError::Unsupported { .. }), "{bad}: {e}");
        } else {
            assert!(
                matches!(e, CgroupError::MissingController { .. }),
                "{bad}: {e}"
            );
        }
    }
    assert!(
        cg.clone_into_fd().is_none(),
        "clone3 into cgroup is v2-only"
    );

    // joining writes every hierarchy, name=systemd included
    cg.add_process(4242).unwrap();
    for d in &dirs {
        assert_eq!(read(&d.join("cgroup.procs")), "4242");
    }
}

/// Co-mounted hierarchies show up as `cpu,cpuacct` plus `cpu` and
/// `cpuacct` symlinks inside the container's tmpfs.
#[test]
fn v1_mount_into_comount_symlinks() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = TempTree::new("v1m");
    let (cg, dirs) = v1_cgroup(&t);
    std::fs::write(dirs[0].join("cpu.shares"), "1024").unwrap();
    let dest = t.0.join("rootfs-cgroup");
    std::fs::create_dir(&dest).unwrap();
    let dest2 = dest.clone();
    let r = std::thread::spawn(move || -> Result<(), String> {
        use nix::mount::{mount, MsFlags};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| e.to_string())?;
        let res = (|| {
            cg.mount_into(&dest2, false, MsFlags::MS_NOSUID | MsFlags::MS_NODEV)
                .map_err(|e| e.to_string())?;
            let link = |n: &str| std::fs::read_link(dest2.join(n)).map_err(|e| format!("{n}: {e}"));
            if link("cpu")? != Path::new("cpu,cpuacct")
                || link("net_prio")? != Path::new("net_cls,net_prio")
            {
                return Err("wrong symlink target".into());
            }
            // the bind shows the container's own dir
            let s = std::fs::read_to_string(dest2.join("cpuacct/cpu.shares"))
                .map_err(|e| e.to_string())?;
            if s.is_empty() {
                return Err("cpu.shares not visible through the symlink".into());
            }
            if !dest2.join("systemd/cgroup.procs").exists() {
                return Err("name=systemd hierarchy missing".into());
            }
            Ok(())
        })();
        let _ = nix::mount::umount2(&dest2, nix::mount::MntFlags::MNT_DETACH);
        res
    })
    .join()
    .unwrap();
    r.unwrap();
}

fn leaf(t: &TempTree, rel: &str) -> Cgroup {
    let d = t.0.join("m").join(rel);
    std::fs::create_dir_all(&d).unwrap();
    Cgroup {
        mode: Mode::Unified,
        hierarchies: vec![Hierarchy {
            version: Version::V2,
            controllers: vec!["pids".into()],
            mount_point: t.0.join("m"),
            path: d.clone(),
            created: vec![d],
            made: true,
        }],
    }
}

/// The shared runtime parent (`/boxrun`) stays after the last container, as
/// runc's and crun's do; a parent a container made below it goes with it.
#[test]
fn last_container_keeps_the_runtime_parent() {
    let t = TempTree::new("parent");
    let a = leaf(&t, "boxrun/a");
    let b = leaf(&t, "boxrun/b");
    let other = leaf(&t, "site/c");
    a.destroy().unwrap();
    assert!(
        t.0.join("m/boxrun").is_dir(),
        "parent removed while b uses it"
    );
    b.destroy().unwrap();
    assert!(
        t.0.join("m/boxrun").is_dir(),
        "shared runtime parent removed with the last container"
    );
    assert!(!t.0.join("m/boxrun/b").exists(), "leaf left behind");
    other.destroy().unwrap();
    assert!(
        t.0.join("m/site").is_dir(),
        "a parent boxrun does not own was removed"
    );
}

/// A planned (not made) v2 cgroup at `m/<rel>` of the temp tree.
fn planned(t: &TempTree, rel: &str) -> Cgroup {
    let mut cg = leaf(t, rel);
    std::fs::remove_dir(&cg.hierarchies[0].path).unwrap();
    cg.hierarchies[0].created.clear();
    cg.hierarchies[0].made = false;
    cg
}

/// `reserve` puts the levels to be made on record without the shared runtime parent
/// (never removed, so never checked), and a record of the reservation covers the
/// mkdirs unless they made more than it says.
#[test]
fn a_reservation_covers_the_mkdirs_unless_a_parent_went_meanwhile() {
    let t = TempTree::new("reserve");
    let m = t.0.join("m");
    std::fs::create_dir_all(&m).unwrap();
    let mut cg = planned(&t, "boxrun/a");
    std::fs::remove_dir(m.join("boxrun")).unwrap();
    cg.reserve();
    assert_eq!(cg.hierarchies[0].created, [m.join("boxrun/a")]);
    let saved = cg.clone();
    cg.materialize_v2().unwrap();
    assert_eq!(
        cg.hierarchies[0].created,
        [m.join("boxrun"), m.join("boxrun/a")]
    );
    assert!(cg.recorded_in(&saved), "the runtime parent needs no record");

    let mut cg = planned(&t, "site/b");
    cg.reserve();
    assert_eq!(cg.hierarchies[0].created, [m.join("site/b")]);
    let saved = cg.clone();
    // Another container's destroy removes the parent between reserve and mkdir.
    std::fs::remove_dir(m.join("site")).unwrap();
    cg.materialize_v2().unwrap();
    assert_eq!(
        cg.hierarchies[0].created,
        [m.join("site"), m.join("site/b")]
    );
    assert!(
        !cg.recorded_in(&saved),
        "site/ was made but is not on record"
    );
    let mut again = planned(&t, "site/c");
    std::fs::remove_dir(m.join("site")).ok();
    again.reserve();
    let saved = again.clone();
    again.materialize_v2().unwrap();
    assert!(again.recorded_in(&saved));
}
