//! Integration tests against the real cgroup file systems of this host (run
//! as root). Each test works below its own `/boxrun-test-<random>` parent,
//! removed by a Drop guard even when the test fails.

mod common;

use std::os::fd::AsRawFd;
use std::path::Path;

use boxrun_cgroups::layout::{Layout, Mode};
use boxrun_cgroups::{Cgroup, CgroupError, DeviceRule, Version};
use common::{cstr, read, resources, Blocker, Reaper, TestRoot};
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::{fork, pipe, ForkResult};

fn root_or_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("skipped: needs root");
        false
    }
}

fn dir<'a>(cg: &'a Cgroup, controller: &str) -> &'a Path {
    &cg.controller(controller)
        .unwrap_or_else(|| panic!("host has no {controller} controller"))
        .path
}

#[test]
fn create_apply_join_freeze_kill_destroy() {
    if !root_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let layout = Layout::detect().unwrap();
    let res = resources(
        r#"{
        "memory": {"limit": 67108864, "reservation": 33554432},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 20},
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}
        ]
    }"#,
    );
    let cg = Cgroup::create(Some(&t.path("c1")), "ignored", Some(&res)).unwrap();
    assert_eq!(cg.mode, layout.mode);
    // every hierarchy got the directory, and we created both levels
    for h in &cg.hierarchies {
        assert!(h.path.is_dir(), "{} missing", h.path.display());
        assert_eq!(h.created.len(), 2, "{:?}", h.created);
        assert!(h.path.ends_with(format!("{}/c1", t.name)));
    }

    // limits read back from the files
    match cg.controller("memory").unwrap().version {
        Version::V1 => {
            let m = dir(&cg, "memory");
            assert_eq!(read(&m.join("memory.limit_in_bytes")), "67108864");
            assert_eq!(read(&m.join("memory.soft_limit_in_bytes")), "33554432");
        }
        Version::V2 => {
            let m = dir(&cg, "memory");
            assert_eq!(read(&m.join("memory.max")), "67108864");
            assert_eq!(read(&m.join("memory.low")), "33554432");
        }
    }
    match cg.controller("cpu").unwrap().version {
        Version::V1 => {
            let c = dir(&cg, "cpu");
            assert_eq!(read(&c.join("cpu.shares")), "512");
            assert_eq!(read(&c.join("cpu.cfs_quota_us")), "50000");
            assert_eq!(read(&c.join("cpu.cfs_period_us")), "100000");
        }
        Version::V2 => {
            let c = dir(&cg, "cpu");
            assert_eq!(read(&c.join("cpu.weight")), "20");
            assert_eq!(read(&c.join("cpu.max")), "50000 100000");
        }
    }
    assert_eq!(read(&dir(&cg, "cpuset").join("cpuset.cpus")), "0");
    assert_eq!(read(&dir(&cg, "cpuset").join("cpuset.mems")), "0");
    assert_eq!(read(&dir(&cg, "pids").join("pids.max")), "20");
    if let Some(h) = cg
        .hierarchies
        .iter()
        .find(|h| h.version == Version::V1 && h.has("devices"))
    {
        assert_eq!(read(&h.path.join("devices.list")), "c 1:3 rwm\nc 1:5 r");
    }

    // a child joins every hierarchy
    let mut child = Blocker::spawn();
    cg.add_process(child.pid.as_raw()).unwrap();
    for h in &cg.hierarchies {
        let procs = read(&h.path.join("cgroup.procs"));
        assert_eq!(
            procs,
            child.pid.as_raw().to_string(),
            "{}",
            h.path.display()
        );
    }
    assert_eq!(cg.pids().unwrap(), vec![child.pid.as_raw()]);

    // stats see it
    let st = cg.stats().unwrap();
    assert_eq!(st.pids.current, 1);
    assert_eq!(st.pids.limit, 20);
    assert!(st.memory.usage.limit == 67108864);
    let json = serde_json::to_value(&st).unwrap();
    assert!(json["memory"]["usage"]["limit"].is_u64());
    assert_eq!(cg.oom_kill_count().unwrap(), 0);

    // freeze / thaw
    assert!(!cg.is_frozen().unwrap());
    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    if let Some(h) = cg
        .hierarchies
        .iter()
        .find(|h| h.version == Version::V1 && h.has("freezer"))
    {
        assert_eq!(read(&h.path.join("freezer.state")), "FROZEN");
    }
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());

    // kill_all reaches the child
    cg.kill_all(Signal::SIGKILL as i32).unwrap();
    assert_eq!(
        child.wait(),
        WaitStatus::Signaled(child.pid, Signal::SIGKILL, false)
    );
    assert!(!cg.is_frozen().unwrap(), "kill_all thaws again");

    // destroy leaves nothing
    cg.destroy().unwrap();
    for h in &cg.hierarchies {
        assert!(!h.path.exists(), "{} left behind", h.path.display());
        assert!(
            !h.created[0].exists(),
            "{} left behind",
            h.created[0].display()
        );
    }
    // and is idempotent
    cg.destroy().unwrap();
}

#[test]
fn state_round_trip_and_sigterm_kill_all_of_frozen_cgroup() {
    if !root_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(Some(&t.path("c")), "x", None).unwrap();
    let json = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cg);

    let mut child = Blocker::spawn();
    back.add_process(child.pid.as_raw()).unwrap();
    back.freeze().unwrap();
    // SIGTERM to a paused container: delivered, cgroup stays frozen
    back.kill_all(Signal::SIGTERM as i32).unwrap();
    assert!(back.is_frozen().unwrap());
    back.thaw().unwrap();
    assert_eq!(
        child.wait(),
        WaitStatus::Signaled(child.pid, Signal::SIGTERM, false)
    );
    back.destroy().unwrap();
}

#[test]
fn preexisting_parent_is_left_alone() {
    if !root_or_skip() {
        return;
    }
    let t = TestRoot::new();
    for d in t.host_dirs() {
        std::fs::create_dir(&d).unwrap();
    }
    // cpuset parents made by hand need cpus/mems before children work
    let l = Layout::detect().unwrap();
    if let Some(m) =
        l.v1.iter()
            .find(|m| m.controllers.iter().any(|c| c == "cpuset"))
    {
        let p = m.mount_point.join(&t.name);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let v = read(&m.mount_point.join(f));
            std::fs::write(p.join(f), v).unwrap();
        }
    }
    let cg = Cgroup::create(Some(&t.path("inner")), "x", None).unwrap();
    for h in &cg.hierarchies {
        assert_eq!(h.created, vec![h.path.clone()]);
    }
    // a sub-cgroup made by the container is removed with it
    let nested = cg.hierarchies[0].path.join("nested");
    std::fs::create_dir(&nested).unwrap();
    cg.destroy().unwrap();
    for h in &cg.hierarchies {
        assert!(!h.path.exists());
        assert!(
            h.path.parent().unwrap().is_dir(),
            "pre-existing parent removed"
        );
    }
    assert!(!nested.exists());
}

#[test]
fn pids_limit_makes_fork_fail_with_eagain() {
    if !root_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(
        Some(&t.path("p")),
        "x",
        Some(&resources(r#"{"pids": {"limit": 1}}"#)),
    )
    .unwrap();
    let (go_r, go_w) = pipe().unwrap();
    let (res_r, res_w) = pipe().unwrap();
    // SAFETY: the child only uses async-signal-safe calls (read, fork,
    // write, waitpid, _exit).
    let child = match unsafe { fork() }.unwrap() {
        // SAFETY: plain syscalls on fds and memory the child owns, then _exit.
        ForkResult::Child => unsafe {
            let mut b = 0u8;
            libc::read(go_r.as_raw_fd(), &mut b as *mut u8 as *mut libc::c_void, 1);
            let pid = libc::fork();
            let errno: i32 = if pid < 0 {
                *libc::__errno_location()
            } else if pid == 0 {
                libc::_exit(0)
            } else {
                libc::waitpid(pid, std::ptr::null_mut(), 0);
                0
            };
            libc::write(
                res_w.as_raw_fd(),
                &errno as *const i32 as *const libc::c_void,
                4,
            );
            libc::_exit(0);
        },
        ForkResult::Parent { child } => child,
    };
    drop(res_w);
    drop(go_r);
    let mut guard = Reaper::new(child);
    cg.add_process(child.as_raw()).unwrap();
    nix::unistd::write(&go_w, b"g").unwrap();
    let mut buf = [0u8; 4];
    let n = nix::unistd::read(res_r.as_raw_fd(), &mut buf).unwrap();
    assert_eq!(n, 4);
    assert_eq!(i32::from_ne_bytes(buf), libc::EAGAIN);
    guard.wait();
    cg.destroy().unwrap();
}

#[test]
fn failed_apply_removes_what_create_made() {
    if !root_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let e = Cgroup::create(
        Some(&t.path("bad")),
        "x",
        Some(&resources(r#"{"cpu": {"cpus": "999999"}}"#)),
    )
    .unwrap_err();
    assert!(matches!(e, CgroupError::Write { .. }), "{e}");
    for d in t.host_dirs() {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn unavailable_controllers_are_errors_not_silently_dropped() {
    if !root_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let l = Layout::detect().unwrap();
    let cg = Cgroup::create(Some(&t.path("e")), "x", None).unwrap();
    if !l.controllers().iter().any(|c| c == "net_cls") {
        let e = cg
            .apply(&resources(r#"{"network": {"classID": 1048577}}"#))
            .unwrap_err();
        assert!(matches!(e, CgroupError::MissingController { .. }), "{e}");
    }
    if !l.controllers().iter().any(|c| c == "rdma") {
        let e = cg
            .apply(&resources(r#"{"rdma": {"mlx5_0": {"hcaHandles": 3}}}"#))
            .unwrap_err();
        assert!(matches!(e, CgroupError::MissingController { .. }), "{e}");
    }
    let e = cg
        .apply(&resources(r#"{"cpu": {"shares": 1000000}}"#))
        .unwrap_err();
    assert!(matches!(e, CgroupError::InvalidValue { .. }), "{e}");
    let e = cg
        .apply(&resources(
            r#"{"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}"#,
        ))
        .unwrap_err();
    assert!(
        matches!(
            e,
            CgroupError::MissingFile { .. } | CgroupError::MissingController { .. }
        ),
        "{e}"
    );
    if l.v2.is_none() {
        let e = cg
            .apply(&resources(r#"{"unified": {"memory.high": "1"}}"#))
            .unwrap_err();
        assert!(matches!(e, CgroupError::Unsupported { .. }), "{e}");
    }
    // deprecated kernel memory is accepted and ignored
    cg.apply(&resources(r#"{"memory": {"kernel": 1048576}}"#))
        .unwrap();
    cg.destroy().unwrap();
}

#[test]
fn memory_swap_and_update_order() {
    if !root_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(
        Some(&t.path("m")),
        "x",
        Some(&resources(
            r#"{"memory": {"limit": 67108864, "swap": 134217728, "swappiness": 10}}"#,
        )),
    );
    let cg = match cg {
        Ok(cg) => cg,
        Err(CgroupError::MissingFile { .. }) => {
            eprintln!("skipped: no swap accounting");
            return;
        }
        Err(CgroupError::Unsupported { .. }) => {
            eprintln!("skipped: swappiness is v1 only");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let m = dir(&cg, "memory");
    if cg.controller("memory").unwrap().version == Version::V1 {
        assert_eq!(read(&m.join("memory.memsw.limit_in_bytes")), "134217728");
        assert_eq!(read(&m.join("memory.swappiness")), "10");
        // raising both above the current memsw needs memsw written first
        cg.apply(&resources(
            r#"{"memory": {"limit": 268435456, "swap": 536870912}}"#,
        ))
        .unwrap();
        assert_eq!(read(&m.join("memory.limit_in_bytes")), "268435456");
        assert_eq!(read(&m.join("memory.memsw.limit_in_bytes")), "536870912");
        // lowering both needs the limit written first
        cg.apply(&resources(
            r#"{"memory": {"limit": 33554432, "swap": 33554432}}"#,
        ))
        .unwrap();
        assert_eq!(read(&m.join("memory.limit_in_bytes")), "33554432");
        assert_eq!(read(&m.join("memory.memsw.limit_in_bytes")), "33554432");
        // unlimited memory without a swap value lifts the memsw limit too
        cg.apply(&resources(r#"{"memory": {"limit": -1}}"#))
            .unwrap();
        assert_eq!(
            read(&m.join("memory.limit_in_bytes")),
            read(&m.join("memory.memsw.limit_in_bytes"))
        );
        let e = cg
            .apply(&resources(r#"{"memory": {"limit": 100, "swap": 50}}"#))
            .unwrap_err();
        assert!(matches!(e, CgroupError::InvalidValue { .. }), "{e}");
    }
    cg.destroy().unwrap();
}

/// A hybrid host whose hugetlb controller lives in the v2 tree (this development host).
fn hybrid_with_v2_hugetlb() -> bool {
    let l = Layout::detect().unwrap();
    l.mode == Mode::Hybrid
        && l.v2
            .as_ref()
            .is_some_and(|v2| v2.controllers.iter().any(|c| c == "hugetlb"))
}

#[test]
fn hugetlb_in_v2_tree_on_hybrid() {
    if !root_or_skip() {
        return;
    }
    if !hybrid_with_v2_hugetlb() || !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
    {
        eprintln!("skipped: needs hugetlb in the v2 tree of a hybrid host");
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
    let h = cg.controller("hugetlb").unwrap();
    assert_eq!(h.version, Version::V2);
    assert_eq!(read(&h.path.join("hugetlb.2MB.max")), "4194304");
    let st = cg.stats().unwrap();
    assert!(st.hugetlb.contains_key("2MB"));
    // unified keys land in the v2 directory
    cg.apply(&resources(r#"{"unified": {"hugetlb.2MB.max": "2097152"}}"#))
        .unwrap();
    assert_eq!(read(&h.path.join("hugetlb.2MB.max")), "2097152");
    cg.destroy().unwrap();
}

/// On a hybrid host the v2 tree only gets the controllers a container's
/// resources use: each enabled controller populates files in every new cgroup.
#[test]
fn hybrid_v2_tree_enables_only_used_controllers() {
    if !root_or_skip() {
        return;
    }
    if !hybrid_with_v2_hugetlb() {
        eprintln!("skipped: needs hugetlb in the v2 tree of a hybrid host");
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(
        Some(&t.path("plain")),
        "x",
        Some(&resources(r#"{"pids": {"limit": 32}}"#)),
    )
    .unwrap();
    let v2 = cg.v2().unwrap();
    let parent = v2.path.parent().unwrap();
    assert!(
        !read(&parent.join("cgroup.subtree_control")).contains("hugetlb"),
        "hugetlb enabled for a container without hugepage limits"
    );
    assert!(!v2.path.join("hugetlb.2MB.max").exists());
    cg.destroy().unwrap();
}

/// The eBPF device program really filters opens: attach it to the
/// container's cgroup2 directory (the BPF device hook runs for the task's v2
/// cgroup on hybrid hosts too) and let a child try two devices.
#[test]
fn bpf_device_program_filters_opens() {
    if !root_or_skip() {
        return;
    }
    let l = Layout::detect().unwrap();
    if l.v2.is_none() {
        eprintln!("skipped: no cgroup2 hierarchy");
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(Some(&t.path("dev")), "x", None).unwrap();
    let v2 = cg.v2().unwrap().path.clone();
    let rules = boxrun_cgroups::resources::devices::parse_rules(&[
        serde_json::from_str(r#"{"allow": false, "access": "rwm"}"#).unwrap(),
        serde_json::from_str(
            r#"{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}"#,
        )
        .unwrap(),
        serde_json::from_str(
            r#"{"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"}"#,
        )
        .unwrap(),
        serde_json::from_str(
            r#"{"allow": false, "type": "c", "major": 1, "minor": 9, "access": "w"}"#,
        )
        .unwrap(),
    ])
    .unwrap();
    let _: &[DeviceRule] = &rules;
    // through Cgroup::apply on a v2-only view (what a unified host does)...
    let view = Cgroup {
        mode: Mode::Unified,
        hierarchies: vec![cg.v2().unwrap().clone()],
    };
    view.apply(&resources(
        r#"{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "b", "access": "m"}]}"#,
    ))
    .unwrap();
    assert_eq!(
        boxrun_cgroups::bpf::attached_programs(&v2).unwrap().len(),
        1
    );
    // ...and directly; re-applying replaces instead of stacking
    boxrun_cgroups::bpf::apply_device_rules(&v2, &rules).unwrap();
    assert_eq!(
        boxrun_cgroups::bpf::attached_programs(&v2).unwrap().len(),
        1
    );

    let null = cstr("/dev/null");
    let zero = cstr("/dev/zero");
    let urandom = cstr("/dev/urandom");
    let (go_r, go_w) = pipe().unwrap();
    let (res_r, res_w) = pipe().unwrap();
    // SAFETY: the child only uses async-signal-safe calls.
    let child = match unsafe { fork() }.unwrap() {
        // SAFETY: plain syscalls on fds and memory the child owns, then _exit.
        ForkResult::Child => unsafe {
            let mut b = 0u8;
            libc::read(go_r.as_raw_fd(), &mut b as *mut u8 as *mut libc::c_void, 1);
            let try_open = |p: &std::ffi::CString, flags: i32| -> i32 {
                let fd = libc::open(p.as_ptr(), flags);
                if fd < 0 {
                    *libc::__errno_location()
                } else {
                    libc::close(fd);
                    0
                }
            };
            let r = [
                try_open(&null, libc::O_RDWR),
                try_open(&zero, libc::O_RDONLY),
                try_open(&urandom, libc::O_RDONLY),
                try_open(&urandom, libc::O_RDWR),
            ];
            libc::write(res_w.as_raw_fd(), r.as_ptr() as *const libc::c_void, 16);
            libc::_exit(0);
        },
        ForkResult::Parent { child } => child,
    };
    drop(res_w);
    drop(go_r);
    let mut guard = Reaper::new(child);
    cg.add_process(child.as_raw()).unwrap();
    nix::unistd::write(&go_w, b"g").unwrap();
    let mut buf = [0u8; 16];
    let n = nix::unistd::read(res_r.as_raw_fd(), &mut buf).unwrap();
    assert_eq!(n, 16);
    let r: Vec<i32> = buf
        .chunks(4)
        .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(r[0], 0, "/dev/null rw allowed");
    assert_eq!(r[1], libc::EPERM, "/dev/zero denied");
    assert_eq!(r[2], 0, "/dev/urandom read allowed");
    assert_eq!(
        r[3],
        libc::EPERM,
        "/dev/urandom write denied by the later rule"
    );
    guard.wait();
    cg.destroy().unwrap();
}

/// The container's cgroup mount, in a private mount namespace of a helper
/// thread (the namespace and its mounts vanish with the thread).
#[test]
fn mount_into_builds_the_container_view() {
    if !root_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(
        Some(&t.path("mnt")),
        "x",
        Some(&resources(r#"{"pids": {"limit": 7}}"#)),
    )
    .unwrap();
    let cg2 = cg.clone();
    let r = std::thread::spawn(move || -> Result<(), String> {
        use nix::mount::{mount, MsFlags};
        use nix::sched::{unshare, CloneFlags};
        unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare: {e}"))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| format!("make private: {e}"))?;
        let dest = std::env::temp_dir().join(format!("{}-mnt", std::process::id()));
        let dest2 = std::env::temp_dir().join(format!("{}-mnt-ns", std::process::id()));
        for d in [&dest, &dest2] {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        let flags =
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let res = (|| {
            cg2.mount_into(&dest, false, flags)
                .map_err(|e| e.to_string())?;
            let pids_dir = cg2.controller("pids").unwrap();
            let name = pids_dir.mount_point.file_name().unwrap();
            let pm = if cg2.mode == Mode::Unified {
                dest.join("pids.max")
            } else {
                dest.join(name).join("pids.max")
            };
            let v = std::fs::read_to_string(&pm).map_err(|e| format!("{}: {e}", pm.display()))?;
            if v.trim() != "7" {
                return Err(format!("pids.max in the mount is {v:?}"));
            }
            // read-only: neither the tmpfs nor the cgroup dirs can be written
            if std::fs::create_dir(dest.join("x")).is_ok() {
                return Err("cgroup mount root is writable".into());
            }
            if std::fs::write(&pm, "8").is_ok() {
                return Err("pids.max writable through a read-only mount".into());
            }
            // cgroupns flavour: fresh cgroup mounts of every hierarchy
            cg2.mount_into(&dest2, true, flags)
                .map_err(|e| e.to_string())?;
            for h in &cg2.hierarchies {
                let p = if cg2.mode == Mode::Unified {
                    dest2.join("cgroup.procs")
                } else {
                    dest2
                        .join(h.mount_point.file_name().unwrap())
                        .join("cgroup.procs")
                };
                if !p.exists() {
                    return Err(format!("{} missing", p.display()));
                }
                // read-only applies to the fresh mounts too
                if let Err(e) = std::fs::create_dir(p.with_file_name("boxrun-rw-probe")) {
                    if e.raw_os_error() != Some(libc::EROFS) {
                        return Err(format!("mkdir in {}: {e}", p.display()));
                    }
                } else {
                    let _ = std::fs::remove_dir(p.with_file_name("boxrun-rw-probe"));
                    return Err(format!("{} is writable", p.display()));
                }
            }
            Ok(())
        })();
        // the namespace dies with this thread; only the dirs need removing
        let _ = nix::mount::umount2(&dest, nix::mount::MntFlags::MNT_DETACH);
        let _ = nix::mount::umount2(&dest2, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&dest);
        let _ = std::fs::remove_dir(&dest2);
        res
    })
    .join()
    .unwrap();
    r.unwrap();
    cg.destroy().unwrap();
}

#[test]
fn relative_path_is_below_own_cgroup() {
    if !root_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let l = Layout::detect().unwrap();
    let rel = Path::new(&t.name).join("r");
    let cg = Cgroup::resolve(&l, Some(&rel), "x").unwrap();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for h in &cg.hierarchies {
        // the parent of <name>/r is our own cgroup in that hierarchy
        let own_dir = h.path.parent().unwrap().parent().unwrap();
        let own_rel = own_dir.strip_prefix(&h.mount_point).unwrap();
        let want = format!("/{}", own_rel.display());
        let want = if want == "/" { "/".to_string() } else { want };
        assert!(
            own.lines().any(|line| line.ends_with(&format!(":{want}"))),
            "{} not below our own cgroup ({own})",
            h.path.display()
        );
    }
}

/// blkio weight and throttling on a real block device of this host.
#[test]
fn blkio_weight_and_throttle() {
    if !root_or_skip() {
        return;
    }
    let l = Layout::detect().unwrap();
    if !l.controllers().iter().any(|c| c == "blkio" || c == "io") {
        eprintln!("skipped: no blkio/io controller");
        return;
    }
    // a whole disk (not a partition, not a loop device) to throttle
    let dev = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with("loop"))
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
            "throttleWriteIOPSDevice": [{{"major": {maj}, "minor": {min}, "rate": 77}}]}}}}"#
    );
    let cg = match Cgroup::create(Some(&t.path("b")), "x", Some(&resources(&json))) {
        Ok(cg) => cg,
        // no weight interface (no BFQ/CFQ): must be a precise error
        Err(CgroupError::MissingFile { path, .. }) => {
            assert!(
                path.to_string_lossy().contains("weight"),
                "{}",
                path.display()
            );
            eprintln!("skipped: no blkio weight file on this kernel");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let h = cg
        .controller("blkio")
        .or_else(|| cg.controller("io"))
        .unwrap();
    if h.version == Version::V1 {
        let w = if h.path.join("blkio.weight").exists() {
            read(&h.path.join("blkio.weight"))
        } else {
            read(&h.path.join("blkio.bfq.weight"))
        };
        assert!(w.ends_with("300"), "weight file says {w:?}");
        assert_eq!(
            read(&h.path.join("blkio.throttle.read_bps_device")),
            format!("{dev} 1048576")
        );
        assert_eq!(
            read(&h.path.join("blkio.throttle.write_iops_device")),
            format!("{dev} 77")
        );
    } else {
        let m = read(&h.path.join("io.max"));
        assert!(m.contains("rbps=1048576") && m.contains("wiops=77"), "{m}");
    }
    cg.destroy().unwrap();
}

/// A child that allocates past the memory limit is OOM-killed and the kill
/// is counted (the source of `events` OOM notifications).
#[test]
fn oom_kill_is_counted() {
    if !root_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(
        Some(&t.path("oom")),
        "x",
        Some(&resources(r#"{"memory": {"limit": 16777216}}"#)),
    )
    .unwrap();
    // no swapping around the limit where swap accounting exists
    let _ = cg.apply(&resources(
        r#"{"memory": {"limit": 16777216, "swap": 16777216}}"#,
    ));
    assert_eq!(cg.oom_kill_count().unwrap(), 0);
    let (go_r, go_w) = pipe().unwrap();
    // SAFETY: the child only uses async-signal-safe calls (read, mmap, _exit)
    // and writes to memory it mapped itself.
    let child = match unsafe { fork() }.unwrap() {
        // SAFETY: plain syscalls on fds and memory the child owns, then _exit.
        ForkResult::Child => unsafe {
            let mut b = 0u8;
            libc::read(go_r.as_raw_fd(), &mut b as *mut u8 as *mut libc::c_void, 1);
            let len = 256usize << 20;
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                libc::_exit(2);
            }
            let mut off = 0;
            while off < len {
                *(p as *mut u8).add(off) = 1;
                off += 4096;
            }
            libc::_exit(0);
        },
        ForkResult::Parent { child } => child,
    };
    drop(go_r);
    let mut guard = Reaper::new(child);
    cg.add_process(child.as_raw()).unwrap();
    nix::unistd::write(&go_w, b"g").unwrap();
    assert_eq!(
        guard.wait(),
        WaitStatus::Signaled(child, Signal::SIGKILL, false),
        "the OOM killer ends the child"
    );
    assert_eq!(cg.oom_kill_count().unwrap(), 1);
    let st = cg.stats().unwrap();
    assert!(
        st.memory.usage.max > 8 << 20,
        "peak near the limit: {:?}",
        st.memory.usage
    );
    cg.destroy().unwrap();
}

/// The cgroup2 code paths (cgroup.freeze + cgroup.events, cgroup.kill,
/// clone3 into the cgroup) on this host's cgroup2 tree, via a view of the
/// container's cgroup that holds only its v2 hierarchy.
#[test]
fn v2_freeze_kill_and_clone_into_cgroup() {
    if !root_or_skip() {
        return;
    }
    let l = Layout::detect().unwrap();
    if l.v2.is_none() {
        eprintln!("skipped: no cgroup2 tree");
        return;
    }
    let t = TestRoot::new();
    let full = Cgroup::create(Some(&t.path("v2")), "x", None).unwrap();
    let v2 = Cgroup {
        mode: Mode::Unified,
        hierarchies: vec![full.v2().unwrap().clone()],
    };
    let v2dir = v2.hierarchies[0].path.clone();

    // clone3(CLONE_INTO_CGROUP) with the O_PATH descriptor
    let fd = v2.clone_into_fd().expect("O_PATH fd of the v2 dir");
    let (go_r, go_w) = pipe().unwrap();
    use boxrun_common::clone3::{CloneArgs, CLONE_INTO_CGROUP};
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: fd.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: clone3 without CLONE_VM behaves like fork; the child only
    // uses async-signal-safe calls (read, _exit).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r == 0 {
        // SAFETY: plain syscalls in the child.
        unsafe {
            let mut b = 0u8;
            libc::read(go_r.as_raw_fd(), &mut b as *mut u8 as *mut libc::c_void, 1);
            libc::_exit(0);
        }
    }
    assert!(r > 0, "clone3: {}", std::io::Error::last_os_error());
    let pid = nix::unistd::Pid::from_raw(r as i32);
    let mut child = Reaper::new(pid);
    drop(go_r);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("0::/{}/v2", t.name);
    assert!(own.lines().any(|l| l == want), "{own}");
    assert_eq!(v2.pids().unwrap(), vec![pid.as_raw()]);

    // freeze waits for cgroup.events to report frozen
    v2.freeze().unwrap();
    assert!(v2.is_frozen().unwrap());
    assert!(read(&v2dir.join("cgroup.events")).contains("frozen 1"));
    v2.thaw().unwrap();
    assert!(!v2.is_frozen().unwrap());
    assert!(read(&v2dir.join("cgroup.events")).contains("frozen 0"));

    // SIGKILL goes through cgroup.kill
    v2.kill_all(Signal::SIGKILL as i32).unwrap();
    assert_eq!(
        child.wait(),
        WaitStatus::Signaled(pid, Signal::SIGKILL, false)
    );
    drop(go_w);
    full.destroy().unwrap();
}

#[test]
fn a_child_moves_itself_into_v1_through_tasks_files_opened_by_its_parent() {
    if !root_or_skip() {
        return;
    }
    let t = TestRoot::new();
    let cg = Cgroup::create(Some(&t.path("self")), "x", None).unwrap();
    let v1 = cg
        .hierarchies
        .iter()
        .filter(|h| h.version == Version::V1)
        .count();
    if v1 == 0 {
        eprintln!("skipped: no v1 hierarchy on this host");
        return;
    }
    let tasks = cg.v1_tasks_files().unwrap();
    assert_eq!(tasks.len(), v1);
    // a wrong number of files is an error naming the mismatch, and moves nothing
    let e = cg.join_v1_self(&tasks[1..]).unwrap_err().to_string();
    assert!(e.contains("tasks files"), "{e}");

    let (done_r, done_w) = pipe().unwrap();
    // SAFETY: the test harness may run threads, so the child only makes plain
    // syscalls (write through join_v1_self, write, _exit) before exiting.
    let child = match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let ok = cg.join_v1_self(&tasks).is_ok();
            // SAFETY: plain syscalls in the child.
            unsafe {
                libc::write(done_w.as_raw_fd(), [ok as u8].as_ptr().cast(), 1);
                libc::pause();
                libc::_exit(0);
            }
        }
        ForkResult::Parent { child } => child,
    };
    drop(done_w);
    let mut reaper = Reaper::new(child);
    let mut b = [0u8];
    // SAFETY: reading one byte into a valid buffer.
    let n = unsafe { libc::read(done_r.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
    assert_eq!((n, b[0]), (1, 1), "join_v1_self failed in the child");
    let own = std::fs::read_to_string(format!("/proc/{child}/cgroup")).unwrap();
    for h in cg.hierarchies.iter().filter(|h| h.version == Version::V1) {
        let procs = read(&h.path.join("cgroup.procs"));
        assert!(
            procs.lines().any(|l| l == child.to_string()),
            "{} lacks the child: {own}",
            h.path.display()
        );
    }
    // the parent did not move
    let me = std::process::id().to_string();
    for h in &cg.hierarchies {
        assert!(!read(&h.path.join("cgroup.procs")).lines().any(|l| l == me));
    }
    nix::sys::signal::kill(child, Signal::SIGKILL).unwrap();
    reaper.wait();
    drop(tasks);
    cg.destroy().unwrap();
}

/// statmount(2) of the mounts at /sys/fs/cgroup finds the layout a mountinfo scan finds,
/// and where the cgroups are mounted there on a kernel that has mount options in
/// statmount (≥ 6.11), it does find one (elsewhere mountinfo is the way).
#[test]
fn the_layout_from_statmount_is_the_one_from_mountinfo() {
    let release = nix::sys::utsname::uname().expect("uname");
    let mut v = release
        .release()
        .to_str()
        .unwrap_or("0.0")
        .split(['.', '-']);
    let major: u32 = v.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let minor: u32 = v.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let slow = Layout::detect_from_mountinfo().expect("mountinfo layout");
    let under_sys_fs_cgroup = slow
        .v1
        .iter()
        .map(|m| &m.mount_point)
        .chain(slow.v2.iter().map(|m| &m.mount_point))
        .all(|p| p.starts_with("/sys/fs/cgroup"));
    match Layout::detect_without_mountinfo() {
        Some(fast) => assert_eq!(fast.expect("statmount layout"), slow),
        None => assert!(
            (major, minor) < (6, 11) || !under_sys_fs_cgroup,
            "statmount gave nothing on {major}.{minor}"
        ),
    }
}
