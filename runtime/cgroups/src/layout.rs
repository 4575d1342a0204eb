//! Detection of the host's cgroup layout (pure v2, pure v1, or hybrid) from
//! statmount(2) of the mounts at `/sys/fs/cgroup`, or where the kernel cannot tell, one
//! read of `/proc/self/mountinfo` (plus, when a cgroup2 file system is mounted, one
//! read of its `cgroup.controllers`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use boxrun_common::mountinfo;
use serde::{Deserialize, Serialize};

use crate::error::{CgroupError, Result};
use crate::fsutil;

/// The three kinds of host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only cgroup2 carries controllers (a `name=` v1 hierarchy may exist but is ignored).
    Unified,
    /// Only cgroup v1 hierarchies.
    Legacy,
    /// v1 controller hierarchies plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`).
    Hybrid,
}

impl Mode {
    /// `"unified"`, `"legacy"` or `"hybrid"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Unified => "unified",
            Mode::Legacy => "legacy",
            Mode::Hybrid => "hybrid",
        }
    }
}

/// A mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Mount {
    /// Where it is mounted, e.g. `/sys/fs/cgroup/cpu,cpuacct`.
    pub mount_point: PathBuf,
    /// The cgroup that is the root of this mount (`/` on hosts).
    pub root: PathBuf,
    /// Controllers bound to it (`cpu`, `cpuacct`, `name=systemd`, …), in mount-option order.
    pub controllers: Vec<String>,
}

/// The mounted cgroup2 file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2Mount {
    /// Where it is mounted, e.g. `/sys/fs/cgroup` or `/sys/fs/cgroup/unified`.
    pub mount_point: PathBuf,
    /// The cgroup that is the root of this mount.
    pub root: PathBuf,
    /// Controllers available at the mount point (`cgroup.controllers`).
    pub controllers: Vec<String>,
}

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Which kind of host this is.
    pub mode: Mode,
    /// v1 hierarchies, one per distinct controller set (empty on unified hosts).
    pub v1: Vec<V1Mount>,
    /// The cgroup2 mount, if any.
    pub v2: Option<V2Mount>,
}

/// Mount options of a v1 cgroup super block that are not controllers.
fn is_v1_option(opt: &str) -> bool {
    matches!(
        opt,
        "rw" | "ro"
            | "xattr"
            | "noprefix"
            | "clone_children"
            | "cpuset_v2_mode"
            | "favordynmods"
            | "nofavordynmods"
            | "none"
            | "all"
    ) || opt.starts_with("release_agent=")
}

/// A cgroup-related mount found in mountinfo, before controller lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawMount {
    V1(V1Mount),
    V2 { mount_point: PathBuf, root: PathBuf },
}

/// Parse the cgroup mounts out of mountinfo text.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<RawMount> {
    let cgroup_lines = text
        .lines()
        .filter(|l| l.contains(" - cgroup"))
        .filter_map(mountinfo::parse_line)
        .map(|m| (m.fstype, m.root, m.mount_point, m.super_opts));
    raw_mounts(cgroup_lines)
}

/// The cgroup mounts among `(fstype, root, mount point, super options)`, in mount
/// order: the first cgroup2 mount, and each v1 controller set once (its first mount).
fn raw_mounts(
    mounts: impl Iterator<Item = (String, String, String, Vec<String>)>,
) -> Vec<RawMount> {
    let mut out: Vec<RawMount> = Vec::new();
    for (fstype, root, mount_point, super_opts) in mounts {
        let root = PathBuf::from(root);
        let mount_point = PathBuf::from(mount_point);
        match fstype.as_str() {
            "cgroup2" => {
                if !out.iter().any(|m| matches!(m, RawMount::V2 { .. })) {
                    out.push(RawMount::V2 { mount_point, root });
                }
                continue;
            }
            "cgroup" => {}
            _ => continue,
        }
        let controllers: Vec<String> = super_opts
            .into_iter()
            .filter(|o| !is_v1_option(o))
            .collect();
        if controllers.is_empty() {
            continue;
        }
        let dup = out.iter().any(|m| match m {
            RawMount::V1(v) => v.controllers == controllers,
            RawMount::V2 { .. } => false,
        });
        if !dup {
            out.push(RawMount::V1(V1Mount {
                mount_point,
                root,
                controllers,
            }));
        }
    }
    out
}

/// Where the cgroup file systems are mounted on every usual host.
const CGROUP_DIR: &str = "/sys/fs/cgroup";
const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// The cgroup mounts at and directly below `/sys/fs/cgroup`, from statmount(2) (see
/// [`crate::statmount`]), in mount order; `None` when the kernel cannot tell or the host
/// does not keep its cgroups there, for [`Layout::detect`] to read mountinfo instead.
/// Like crun, and unlike a mountinfo scan, a hierarchy mounted only elsewhere is not
/// seen.
fn raw_mounts_fast() -> Option<Vec<RawMount>> {
    use crate::statmount::{mount_of, MountFacts};
    let dir = Path::new(CGROUP_DIR);
    let fstype = |m: &MountFacts| match m.magic {
        CGROUP_SUPER_MAGIC => Some("cgroup"),
        CGROUP2_SUPER_MAGIC => Some("cgroup2"),
        _ => None,
    };
    let top = mount_of(dir)?;
    if top.point != CGROUP_DIR {
        return None;
    }
    let mut found: Vec<MountFacts> = Vec::new();
    match top.magic {
        CGROUP2_SUPER_MAGIC => found.push(top),
        TMPFS_MAGIC => {
            for e in std::fs::read_dir(dir).ok()? {
                let e = e.ok()?;
                if !e.file_type().ok()?.is_dir() {
                    continue; // the cpu -> cpu,cpuacct links
                }
                let m = mount_of(&e.path())?;
                if m.point != e.path().to_str()? || fstype(&m).is_none() {
                    continue;
                }
                if m.magic == CGROUP_SUPER_MAGIC && m.opts.is_empty() {
                    return None; // a v1 hierarchy's controllers are in its options
                }
                found.push(m);
            }
        }
        _ => return None,
    }
    found.sort_by_key(|m| m.id);
    let mounts = found.into_iter().filter_map(|m| {
        let t = fstype(&m)?.to_string();
        let opts = m
            .opts
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string);
        Some((t, m.root, m.point, opts.collect()))
    });
    Some(raw_mounts(mounts))
}

impl Layout {
    /// Build a layout from mountinfo text; `v2_controllers` is asked for the
    /// contents of `cgroup.controllers` at the cgroup2 mount point, if any.
    pub fn from_mountinfo(
        text: &str,
        v2_controllers: impl FnMut(&Path) -> Result<String>,
    ) -> Result<Layout> {
        Layout::from_raw(parse_mountinfo(text), v2_controllers)
    }

    fn from_raw(
        raw: Vec<RawMount>,
        mut v2_controllers: impl FnMut(&Path) -> Result<String>,
    ) -> Result<Layout> {
        let mut v1 = Vec::new();
        let mut v2 = None;
        for m in raw {
            match m {
                RawMount::V1(m) => v1.push(m),
                RawMount::V2 { mount_point, root } => {
                    let c = v2_controllers(&mount_point.join("cgroup.controllers"))?;
                    v2 = Some(V2Mount {
                        mount_point,
                        root,
                        controllers: c.split_whitespace().map(str::to_string).collect(),
                    });
                }
            }
        }
        let v1_has_real = v1
            .iter()
            .any(|m| m.controllers.iter().any(|c| !c.starts_with("name=")));
        let mode = match (v1_has_real, v2.is_some()) {
            (true, true) => Mode::Hybrid,
            (true, false) => Mode::Legacy,
            (false, true) => Mode::Unified,
            (false, false) => {
                // Only named v1 hierarchies (no controllers): treat as legacy
                // if there is any, otherwise there is nothing to use.
                if v1.is_empty() {
                    return Err(CgroupError::NoCgroupFs);
                }
                Mode::Legacy
            }
        };
        if mode == Mode::Unified {
            v1.clear();
        }
        Ok(Layout { mode, v1, v2 })
    }

    /// Detect the layout of this process's mount namespace (uncached): from statmount(2)
    /// of the mounts at `/sys/fs/cgroup` where the kernel has it, else from mountinfo.
    pub fn detect() -> Result<Layout> {
        Layout::detect_without_mountinfo().unwrap_or_else(Layout::detect_from_mountinfo)
    }

    /// [`Layout::detect`] from statmount(2) only; `None` where that cannot tell.
    pub fn detect_without_mountinfo() -> Option<Result<Layout>> {
        raw_mounts_fast()
            .filter(|raw| !raw.is_empty())
            .map(|raw| Layout::from_raw(raw, fsutil::read))
    }

    /// [`Layout::detect`] from one read of `/proc/self/mountinfo`.
    pub fn detect_from_mountinfo() -> Result<Layout> {
        let p = Path::new("/proc/self/mountinfo");
        let text = fsutil::read(p)?;
        Layout::from_mountinfo(&text, fsutil::read)
    }

    /// The layout of this process's mount namespace, detected once per process.
    pub fn host() -> Result<&'static Layout> {
        static HOST: OnceLock<Layout> = OnceLock::new();
        if let Some(l) = HOST.get() {
            return Ok(l);
        }
        let l = Layout::detect()?;
        Ok(HOST.get_or_init(|| l))
    }

    /// Every controller usable on this host (v1 controllers, then v2-only ones).
    pub fn controllers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.v1 {
            for c in &m.controllers {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
        if let Some(v2) = &self.v2 {
            for c in &v2.controllers {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
        out
    }
}

/// The `linux.cgroup` object of `boxrun features` (runtime-spec
/// features.md): what this library supports, independent of the host —
/// v1, v2 (and hybrid) and rdma yes; no systemd cgroup driver.
pub fn oci_features() -> oci_spec::runtime::Cgroup {
    let mut c = oci_spec::runtime::Cgroup::default();
    c.set_v1(Some(true));
    c.set_v2(Some(true));
    c.set_systemd(Some(false));
    c.set_systemd_user(Some(false));
    c.set_rdma(Some(true));
    c
}

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    /// Hierarchy id (0 for cgroup2).
    pub hierarchy: u32,
    /// Controllers of that hierarchy (empty for cgroup2).
    pub controllers: Vec<String>,
    /// The cgroup path, relative to the process's cgroup namespace root.
    pub path: PathBuf,
}

/// Parse `/proc/<pid>/cgroup` text.
pub fn parse_proc_cgroup(text: &str) -> Result<Vec<ProcCgroup>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            return Err(CgroupError::Parse {
                path: PathBuf::from("/proc/self/cgroup"),
                reason: format!("malformed line {line:?}"),
            });
        };
        let hierarchy = id.parse().map_err(|_| CgroupError::Parse {
            path: PathBuf::from("/proc/self/cgroup"),
            reason: format!("bad hierarchy id in {line:?}"),
        })?;
        out.push(ProcCgroup {
            hierarchy,
            controllers: ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
            path: PathBuf::from(path),
        });
    }
    Ok(out)
}

/// The path of the calling process's cgroup for a v1 hierarchy with
/// `controllers`, or for cgroup2 when `controllers` is `None`.
pub(crate) fn own_path<'a>(
    entries: &'a [ProcCgroup],
    controllers: Option<&[String]>,
) -> Option<&'a Path> {
    entries
        .iter()
        .find(|e| match controllers {
            None => e.hierarchy == 0 && e.controllers.is_empty(),
            Some(want) => e.hierarchy != 0 && want.iter().all(|w| e.controllers.contains(w)),
        })
        .map(|e| e.path.as_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine: v1 controllers each on their own mount, cgroup2 at unified.
    pub(crate) const HYBRID: &str = "\
22 1 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// Debian 10 style legacy host with co-mounted controllers.
    pub(crate) const LEGACY: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,net_cls,net_prio
32 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
33 25 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,pids
34 25 0:31 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpuset,clone_children
35 25 0:32 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,freezer
36 25 0:33 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,devices
37 25 0:34 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,hugetlb
38 25 0:35 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,blkio
40 25 0:24 /docker /mnt/x\\040y rw,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
";

    /// Pure v2 (systemd default since 2021).
    pub(crate) const UNIFIED: &str = "\
24 18 0:21 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    /// systemd's "hybrid": name=systemd in v1, all controllers in v2.
    pub(crate) const SYSTEMD_HYBRID_NO_CONTROLLERS: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
";

    fn ok_ctrls(s: &'static str) -> impl FnMut(&Path) -> Result<String> {
        move |_| Ok(s.to_string())
    }

    #[test]
    fn hybrid_host() {
        let l = Layout::from_mountinfo(HYBRID, ok_ctrls("hugetlb\n")).unwrap();
        assert_eq!(l.mode, Mode::Hybrid);
        assert_eq!(l.v1.len(), 9);
        assert_eq!(l.v1[0].mount_point, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(l.v1[0].controllers, vec!["cpu"]);
        assert_eq!(l.v1[8].controllers, vec!["name=systemd"]);
        let v2 = l.v2.as_ref().unwrap();
        assert_eq!(v2.mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(v2.controllers, vec!["hugetlb"]);
        let all = l.controllers();
        assert!(all.contains(&"hugetlb".to_string()));
        assert!(all.contains(&"memory".to_string()));
    }

    #[test]
    fn legacy_host_comounts_and_duplicates() {
        let l = Layout::from_mountinfo(LEGACY, |_| panic!("no v2 here")).unwrap();
        assert_eq!(l.mode, Mode::Legacy);
        assert!(l.v2.is_none());
        assert_eq!(l.v1[0].controllers, vec!["name=systemd"]);
        assert_eq!(l.v1[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(
            l.v1[1].mount_point,
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(
            l.v1[5].controllers,
            vec!["cpuset"],
            "clone_children is an option"
        );
        // the second name=systemd mount (a bind of /docker) is ignored
        assert_eq!(l.v1.len(), 10);
    }

    #[test]
    fn unified_host() {
        let l = Layout::from_mountinfo(
            UNIFIED,
            ok_ctrls("cpuset cpu io memory hugetlb pids rdma misc\n"),
        )
        .unwrap();
        assert_eq!(l.mode, Mode::Unified);
        assert!(l.v1.is_empty());
        assert_eq!(l.v2.as_ref().unwrap().controllers.len(), 8);
    }

    #[test]
    fn systemd_hybrid_is_unified() {
        let l = Layout::from_mountinfo(SYSTEMD_HYBRID_NO_CONTROLLERS, ok_ctrls("cpu memory pids"))
            .unwrap();
        assert_eq!(l.mode, Mode::Unified);
        assert!(l.v1.is_empty());
    }

    #[test]
    fn no_cgroups() {
        let e = Layout::from_mountinfo("1 0 0:1 / / rw - ext4 /dev/sda rw\n", |_| unreachable!());
        assert!(matches!(e, Err(CgroupError::NoCgroupFs)));
    }

    #[test]
    fn features_json() {
        let v = serde_json::to_value(oci_features()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": true})
        );
    }

    #[test]
    fn proc_cgroup_v1_v2() {
        let t = "9:name=systemd:/\n4:memory:/process_api/32f3\n2:cpu,cpuacct:/a\n0::/\n";
        let e = parse_proc_cgroup(t).unwrap();
        assert_eq!(e.len(), 4);
        assert_eq!(
            own_path(&e, Some(&["memory".to_string()])),
            Some(Path::new("/process_api/32f3"))
        );
        assert_eq!(
            own_path(&e, Some(&["cpu".to_string(), "cpuacct".to_string()])),
            Some(Path::new("/a"))
        );
        assert_eq!(own_path(&e, None), Some(Path::new("/")));
        assert_eq!(own_path(&e, Some(&["pids".to_string()])), None);
        let v2 = parse_proc_cgroup("0::/user.slice/x.scope\n").unwrap();
        assert_eq!(own_path(&v2, None), Some(Path::new("/user.slice/x.scope")));
        assert!(parse_proc_cgroup("garbage\n").is_err());
    }
}
