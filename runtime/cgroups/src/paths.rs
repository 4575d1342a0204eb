//! Resolution of `linux.cgroupsPath` to host directories.

use std::path::{Component, Path, PathBuf};

use crate::error::{CgroupError, Result};
use crate::fsutil::join_under;

/// A validated `linux.cgroupsPath`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupsPath {
    /// Relative to each hierarchy's root (the path is stored without the leading `/`).
    Absolute(PathBuf),
    /// Relative to the calling process's own cgroup in each hierarchy.
    Relative(PathBuf),
    /// Relative to the parent of the calling process's own cgroup: runc's default for
    /// a rootless container without `linux.cgroupsPath` (a sibling of the caller's
    /// cgroup in its delegated subtree, which may hold no processes itself).
    Sibling(PathBuf),
}

/// The parent directory used when the config has no `linux.cgroupsPath`.
pub const DEFAULT_PARENT: &str = "boxrun";

/// Normalise the path: drop `.` components, refuse `..` (it could escape
/// the hierarchy or the caller's own cgroup).
fn normalise(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(CgroupError::InvalidPath {
                    path: path.to_path_buf(),
                    reason: "\"..\" components are not allowed; give a path without them".into(),
                })
            }
        }
    }
    Ok(out)
}

impl CgroupsPath {
    /// Resolve `linux.cgroupsPath` (None or empty: `/boxrun/<id>`).
    pub fn parse(cgroups_path: Option<&Path>, container_id: &str) -> Result<CgroupsPath> {
        match cgroups_path {
            Some(p) if !p.as_os_str().is_empty() => {
                let n = normalise(p)?;
                if p.is_absolute() {
                    if n.as_os_str().is_empty() {
                        return Err(CgroupError::InvalidPath {
                            path: p.to_path_buf(),
                            reason: "the root cgroup cannot be a container's cgroup; use a sub-path such as /boxrun/<id>".into(),
                        });
                    }
                    Ok(CgroupsPath::Absolute(n))
                } else {
                    Ok(CgroupsPath::Relative(n))
                }
            }
            _ => {
                if container_id.is_empty()
                    || container_id.contains('/')
                    || container_id == "."
                    || container_id == ".."
                {
                    return Err(CgroupError::InvalidPath {
                        path: PathBuf::from(DEFAULT_PARENT).join(container_id),
                        reason: format!(
                            "container id {container_id:?} cannot name a cgroup directory; use an id without \"/\""
                        ),
                    });
                }
                Ok(CgroupsPath::Absolute(
                    PathBuf::from(DEFAULT_PARENT).join(container_id),
                ))
            }
        }
    }

    /// Whether the caller's own cgroup (from `/proc/self/cgroup`) is needed.
    pub fn is_relative(&self) -> bool {
        matches!(self, CgroupsPath::Relative(_) | CgroupsPath::Sibling(_))
    }

    /// The host directory in a hierarchy mounted at `mount_point` whose root
    /// cgroup is `mount_root`; `own` is the caller's cgroup in that hierarchy
    /// (only used for relative paths).
    pub fn host_dir(
        &self,
        mount_point: &Path,
        mount_root: &Path,
        own: Option<&Path>,
    ) -> Result<PathBuf> {
        match self {
            CgroupsPath::Absolute(p) => Ok(join_under(mount_point, p)),
            CgroupsPath::Relative(p) | CgroupsPath::Sibling(p) => {
                let own = own.ok_or_else(|| CgroupError::InvalidPath {
                    path: p.clone(),
                    reason: format!(
                        "relative path but /proc/self/cgroup has no entry for the hierarchy at {}; use an absolute cgroupsPath",
                        mount_point.display()
                    ),
                })?;
                // /proc/self/cgroup paths are relative to our cgroup namespace
                // root; the mount shows the hierarchy from `mount_root` on.
                let mut inside = own.strip_prefix(mount_root).unwrap_or(own);
                if matches!(self, CgroupsPath::Sibling(_)) {
                    inside = inside.parent().unwrap_or(inside);
                }
                Ok(join_under(&join_under(mount_point, inside), p))
            }
        }
    }
}

/// The directories from `mount_point` (exclusive) down to `dir` (inclusive),
/// shallowest first.
pub(crate) fn chain(mount_point: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| a.starts_with(mount_point) && *a != mount_point)
        .map(Path::to_path_buf)
        .collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn default_path() {
        assert_eq!(
            CgroupsPath::parse(None, "abc").unwrap(),
            CgroupsPath::Absolute(p("boxrun/abc"))
        );
        assert_eq!(
            CgroupsPath::parse(Some(Path::new("")), "abc").unwrap(),
            CgroupsPath::Absolute(p("boxrun/abc"))
        );
        assert!(CgroupsPath::parse(None, "a/b").is_err());
        assert!(CgroupsPath::parse(None, "..").is_err());
        assert!(CgroupsPath::parse(None, "").is_err());
    }

    #[test]
    fn absolute_and_relative() {
        let a = CgroupsPath::parse(Some(Path::new("/x/./y/")), "id").unwrap();
        assert_eq!(a, CgroupsPath::Absolute(p("x/y")));
        assert!(!a.is_relative());
        assert_eq!(
            a.host_dir(Path::new("/sys/fs/cgroup/cpu"), Path::new("/"), None)
                .unwrap(),
            p("/sys/fs/cgroup/cpu/x/y")
        );
        // absolute paths ignore the mount root (nested containers see their
        // own cgroup as the root of the mount)
        assert_eq!(
            a.host_dir(
                Path::new("/sys/fs/cgroup/cpu"),
                Path::new("/docker/1"),
                None
            )
            .unwrap(),
            p("/sys/fs/cgroup/cpu/x/y")
        );
        let r = CgroupsPath::parse(Some(Path::new("r/s")), "id").unwrap();
        assert!(r.is_relative());
        assert_eq!(
            r.host_dir(
                Path::new("/sys/fs/cgroup/memory"),
                Path::new("/"),
                Some(Path::new("/process_api/32f3"))
            )
            .unwrap(),
            p("/sys/fs/cgroup/memory/process_api/32f3/r/s")
        );
        assert_eq!(
            r.host_dir(
                Path::new("/sys/fs/cgroup"),
                Path::new("/docker/1"),
                Some(Path::new("/docker/1/sub"))
            )
            .unwrap(),
            p("/sys/fs/cgroup/sub/r/s")
        );
        assert!(r
            .host_dir(Path::new("/sys/fs/cgroup"), Path::new("/"), None)
            .is_err());
    }

    #[test]
    fn sibling_is_next_to_the_own_cgroup() {
        let s = CgroupsPath::Sibling(p("c1"));
        assert!(s.is_relative());
        assert_eq!(
            s.host_dir(
                Path::new("/sys/fs/cgroup"),
                Path::new("/"),
                Some(Path::new("/user.slice/u@1000.service/app.slice/run.scope"))
            )
            .unwrap(),
            p("/sys/fs/cgroup/user.slice/u@1000.service/app.slice/c1")
        );
        assert_eq!(
            s.host_dir(
                Path::new("/sys/fs/cgroup"),
                Path::new("/"),
                Some(Path::new("/"))
            )
            .unwrap(),
            p("/sys/fs/cgroup/c1")
        );
    }

    #[test]
    fn rejects_dotdot_and_root() {
        assert!(CgroupsPath::parse(Some(Path::new("/a/../../etc")), "id").is_err());
        assert!(CgroupsPath::parse(Some(Path::new("../x")), "id").is_err());
        assert!(CgroupsPath::parse(Some(Path::new("/")), "id").is_err());
    }

    #[test]
    fn chain_lists_levels() {
        assert_eq!(
            chain(Path::new("/m"), Path::new("/m/a/b")),
            vec![p("/m/a"), p("/m/a/b")]
        );
        assert!(chain(Path::new("/m"), Path::new("/m")).is_empty());
    }
}
