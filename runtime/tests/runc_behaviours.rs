//! runc behaviours of issue 16 around create: teardown of a failed `run`, a frozen or
//! non-empty pre-existing cgroup, and the working directory of createContainer hooks.

mod common;

use common::{stderr, Fixture};
use std::path::{Path, PathBuf};

/// Every cgroup mount of the host (v1 hierarchies and the v2 one).
fn cgroup_mounts() -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("read /proc/self/mounts");
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && (f[2] == "cgroup" || f[2] == "cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .collect()
}

/// The hierarchies in which `/<rel>` still exists.
fn cgroup_leftovers(rel: &str) -> Vec<PathBuf> {
    cgroup_mounts()
        .into_iter()
        .map(|m| m.join(rel.trim_start_matches('/')))
        .filter(|p| p.exists())
        .collect()
}

/// Removes a test's cgroup tree (deepest first) in every hierarchy on drop.
struct CgroupCleanup(String);

impl Drop for CgroupCleanup {
    fn drop(&mut self) {
        for m in cgroup_mounts() {
            let top = m.join(self.0.trim_start_matches('/'));
            remove_tree(&top);
        }
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// A cgroup parent unique to this test process and test.
fn parent(test: &str) -> String {
    format!("/boxrun-test-{}-{test}", std::process::id())
}

/// Item 14: a `run` that fails after the clone (here a v1 resource the kernel refuses,
/// written after the init exists on a hybrid host) kills its init before removing the
/// cgroups, and leaves neither cgroups nor state behind.
#[test]
fn failed_run_after_clone_leaves_nothing_behind() {
    let mut f = Fixture::new();
    let top = parent("failrun");
    let _cleanup = CgroupCleanup(top.clone());
    let path = format!("{top}/c");
    f.config["linux"]["cgroupsPath"] = path.clone().into();
    f.config["linux"]["resources"]["cpu"]["cpus"] = "9999".into();
    f.save();
    let o = f.run(&[
        "run",
        "--bundle",
        f.bundle.to_str().expect("utf8"),
        "failrun",
    ]);
    assert!(!o.status.success(), "run with cpus 9999 succeeded");
    let err = stderr(&o);
    assert!(
        err.contains("cpuset.cpus"),
        "error does not name cpuset.cpus: {err}"
    );
    assert!(!err.contains("remove cgroup"), "teardown warned: {err}");
    assert_eq!(
        cgroup_leftovers(&path),
        Vec::<PathBuf>::new(),
        "cgroups left"
    );
    assert!(!f.root.join("failrun").exists(), "state directory left");
}
