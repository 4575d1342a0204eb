//! cgroups for a rootless runtime (a non-root user, or root in a user namespace), by
//! runc's rules: the container's directories are used where this user may make them
//! and move processes into them (a delegated cgroup v2 subtree); otherwise the
//! container runs without cgroups, which is refused when `linux.resources` asks for a
//! limit that only a cgroup could enforce.

use std::path::{Path, PathBuf};

use nix::unistd::{faccessat, AccessFlags};
use oci_spec::runtime::LinuxResources;

use crate::cgroup::Cgroup;
use crate::error::{CgroupError, Result};
use crate::layout::{self, Layout, Mode};
use crate::paths::CgroupsPath;

/// Whether this process's effective ids may use `path` as `mode` asks (`faccessat`
/// with `AT_EACCESS`).
fn allowed(path: &Path, mode: AccessFlags) -> bool {
    faccessat(None, path, mode, nix::fcntl::AtFlags::AT_EACCESS).is_ok()
}

/// The directory that blocks this user from using `cg`, or None when every hierarchy's
/// container directory can be made (its deepest existing ancestor is writable) and
/// joined (`cgroup.procs` of the common ancestor with our own cgroup is writable: the
/// kernel's rule for an unprivileged move).
fn blocker(cg: &Cgroup, own: &[layout::ProcCgroup], layout: &Layout) -> Option<PathBuf> {
    for h in &cg.hierarchies {
        let deepest = h
            .path
            .ancestors()
            .take_while(|a| a.starts_with(&h.mount_point))
            .find(|a| a.is_dir())
            .unwrap_or(&h.mount_point);
        if !allowed(deepest, AccessFlags::W_OK | AccessFlags::X_OK) {
            return Some(deepest.to_path_buf());
        }
        let controllers = (h.version == crate::Version::V1).then_some(h.controllers.as_slice());
        let root = mount_root(layout, h);
        let Some(mine) = layout::own_path(own, controllers) else {
            continue;
        };
        let mine =
            crate::fsutil::join_under(&h.mount_point, mine.strip_prefix(root).unwrap_or(mine));
        let common = h
            .path
            .ancestors()
            .find(|a| mine.starts_with(a))
            .unwrap_or(&h.mount_point);
        let procs = common.join("cgroup.procs");
        if !allowed(&procs, AccessFlags::W_OK) {
            return Some(procs);
        }
    }
    None
}

/// The root of the hierarchy `h` is mounted from (`/` unless in a cgroup namespace).
fn mount_root<'a>(layout: &'a Layout, h: &crate::Hierarchy) -> &'a Path {
    let v1 = layout.v1.iter().find(|m| m.mount_point == h.mount_point);
    match (v1, &layout.v2) {
        (Some(m), _) => &m.root,
        (None, Some(m)) if m.mount_point == h.mount_point => &m.root,
        _ => Path::new("/"),
    }
}

/// The first `linux.resources` setting that asks for a limit (device rules aside: in a
/// user namespace devices are bind mounts, and runc ignores them there too), named as
/// in the spec.
pub fn requested_limit(r: &LinuxResources) -> Option<&'static str> {
    let nonzero = |v: Option<u64>| v.is_some_and(|v| v != 0);
    let nonempty = |v: &Option<String>| v.as_ref().is_some_and(|s| !s.is_empty());
    if let Some(m) = r.memory() {
        if m.limit().is_some()
            || m.reservation().is_some()
            || m.swap().is_some()
            || m.kernel_tcp().is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer().is_some()
        {
            return Some("linux.resources.memory");
        }
    }
    if let Some(c) = r.cpu() {
        if nonzero(c.shares())
            || c.quota().is_some_and(|q| q > 0)
            || nonzero(c.period())
            || c.realtime_runtime().is_some_and(|v| v != 0)
            || nonzero(c.realtime_period())
            || nonempty(c.cpus())
            || nonempty(c.mems())
        {
            return Some("linux.resources.cpu");
        }
    }
    if r.pids().as_ref().is_some_and(|p| p.limit() > 0) {
        return Some("linux.resources.pids.limit");
    }
    if let Some(b) = r.block_io() {
        let any = |v: Option<usize>| v.is_some_and(|n| n > 0);
        if nonzero(b.weight().map(u64::from))
            || nonzero(b.leaf_weight().map(u64::from))
            || any(b.weight_device().as_ref().map(Vec::len))
            || any(b.throttle_read_bps_device().as_ref().map(Vec::len))
            || any(b.throttle_write_bps_device().as_ref().map(Vec::len))
            || any(b.throttle_read_iops_device().as_ref().map(Vec::len))
            || any(b.throttle_write_iops_device().as_ref().map(Vec::len))
        {
            return Some("linux.resources.blockIO");
        }
    }
    if r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty()) {
        return Some("linux.resources.hugepageLimits");
    }
    if r.network().is_some() {
        return Some("linux.resources.network");
    }
    if r.rdma().as_ref().is_some_and(|l| !l.is_empty()) {
        return Some("linux.resources.rdma");
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Some("linux.resources.unified");
    }
    None
}

impl Cgroup {
    /// Plan a rootless container's cgroups (see the module doc): `linux.cgroupsPath`
    /// (or `/boxrun/<id>`) when this user may use it, else, with no cgroupsPath on a
    /// pure cgroup v2 host, runc's `<id>` next to our own cgroup (a delegated subtree);
    /// None when neither is usable and `resources` asks for no limit. Device rules in
    /// `resources` are for the caller to drop.
    pub fn plan_rootless(
        cgroups_path: Option<&Path>,
        container_id: &str,
        resources: &LinuxResources,
    ) -> Result<Option<Cgroup>> {
        let layout = Layout::host()?;
        let own = match std::fs::read_to_string("/proc/self/cgroup") {
            Ok(t) => layout::parse_proc_cgroup(&t)?,
            Err(source) => {
                return Err(CgroupError::Read {
                    path: "/proc/self/cgroup".into(),
                    source,
                })
            }
        };
        let given = cgroups_path.filter(|p| !p.as_os_str().is_empty());
        let mut targets = vec![CgroupsPath::parse(given, container_id)?];
        if given.is_none() && layout.mode == Mode::Unified {
            targets.push(CgroupsPath::Sibling(PathBuf::from(container_id)));
        }
        let mut first_blocker = None;
        for t in &targets {
            let cg = Cgroup::resolve_target(layout, t)?;
            match blocker(&cg, &own, layout) {
                None => return Ok(Some(cg)),
                Some(b) => {
                    first_blocker.get_or_insert(b);
                }
            }
        }
        match requested_limit(resources) {
            None => Ok(None),
            Some(field) => Err(CgroupError::RootlessLimit {
                field: field.into(),
                path: first_blocker.unwrap_or_default(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).expect("resources")
    }

    /// A pure v2 layout mounted at `mnt` (a plain directory standing in for cgroupfs),
    /// with the container planned next to the caller in `/deleg/caller`.
    fn delegated(mnt: &Path) -> (Cgroup, Vec<layout::ProcCgroup>, Layout) {
        let layout = Layout {
            mode: Mode::Unified,
            v1: Vec::new(),
            v2: Some(crate::layout::V2Mount {
                mount_point: mnt.to_path_buf(),
                root: PathBuf::from("/"),
                controllers: Vec::new(),
            }),
        };
        let own = layout::parse_proc_cgroup("0::/deleg/caller\n").expect("parse");
        let target = CgroupsPath::Sibling(PathBuf::from("c1"));
        let p = target
            .host_dir(mnt, Path::new("/"), Some(Path::new("/deleg/caller")))
            .expect("host dir");
        assert_eq!(p, mnt.join("deleg/c1"));
        let cg = Cgroup {
            mode: Mode::Unified,
            hierarchies: vec![crate::Hierarchy {
                version: crate::Version::V2,
                controllers: Vec::new(),
                mount_point: mnt.to_path_buf(),
                path: p,
                created: Vec::new(),
                made: false,
            }],
        };
        (cg, own, layout)
    }

    #[test]
    fn a_delegated_subtree_is_usable_through_its_cgroup_procs() {
        let mnt =
            std::env::temp_dir().join(format!("boxrun-rootless-blocker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&mnt);
        std::fs::create_dir_all(mnt.join("deleg/caller")).expect("mkdir");
        let (cg, own, layout) = delegated(&mnt);
        // No cgroup.procs in the common ancestor: the move would be refused.
        let got = blocker(&cg, &own, &layout);
        // cgroup.procs is a plain 0644 file: write access is all a move needs.
        std::fs::write(mnt.join("deleg/cgroup.procs"), "").expect("write procs");
        let usable = blocker(&cg, &own, &layout);
        let _ = std::fs::remove_dir_all(&mnt);
        assert_eq!(got, Some(mnt.join("deleg/cgroup.procs")));
        assert_eq!(usable, None);
    }

    #[test]
    fn no_limit_is_asked_by_empty_or_zero_settings() {
        assert_eq!(requested_limit(&resources(serde_json::json!({}))), None);
        let r = resources(serde_json::json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "pids": {"limit": 0},
            "cpu": {"shares": 0},
            "memory": {},
        }));
        assert_eq!(requested_limit(&r), None);
    }

    #[test]
    fn each_limit_is_named_by_its_field() {
        for (v, field) in [
            (
                serde_json::json!({"memory": {"limit": 1048576}}),
                "linux.resources.memory",
            ),
            (
                serde_json::json!({"cpu": {"quota": 5000}}),
                "linux.resources.cpu",
            ),
            (
                serde_json::json!({"pids": {"limit": 10}}),
                "linux.resources.pids.limit",
            ),
            (
                serde_json::json!({"blockIO": {"weight": 100}}),
                "linux.resources.blockIO",
            ),
            (
                serde_json::json!({"unified": {"pids.max": "5"}}),
                "linux.resources.unified",
            ),
        ] {
            assert_eq!(requested_limit(&resources(v)), Some(field));
        }
    }
}
