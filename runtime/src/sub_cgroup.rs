//! `exec --cgroup`: the sub-cgroups an exec'd process joins instead of the container's
//! own, with runc's forms and wording. `PATH` alone is below the container's cgroup in
//! every hierarchy; `CONTROLLER[,CONTROLLER…]:PATH` only in the hierarchies of those
//! controllers (v1 names such as `cpu`, `pids`, `name=systemd`; an empty name is the
//! unified hierarchy, or all of them, as runc's key `""`).

use crate::error::{Error, Result};
use boxrun_cgroups::{Cgroup, Version};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Parse the `--cgroup` values into controller → path (`""`: every hierarchy), as
/// runc's `getSubCgroupPaths`.
pub fn parse(args: &[String]) -> Result<BTreeMap<String, String>> {
    let mut paths = BTreeMap::new();
    for c in args {
        let invalid = |why: &str| Error::Other(format!("invalid --cgroup argument: {c}{why}"));
        let parts: Vec<&str> = c.splitn(3, ':').collect();
        match parts[..] {
            [path] if args.len() == 1 => {
                paths.insert(String::new(), path.to_string());
            }
            [_] => return Err(invalid(" (missing <controller>: prefix)")),
            [ctrls, path] => {
                for ctrl in ctrls.split(',') {
                    paths.insert(ctrl.to_string(), path.to_string());
                }
            }
            _ => return Err(invalid("")),
        }
    }
    Ok(paths)
}

/// `base` joined with `sub`, which must stay at or below `base` (runc: "is not a sub
/// cgroup path").
fn join_below(base: &Path, sub: &str) -> Result<PathBuf> {
    let mut below = PathBuf::new();
    for c in Path::new(sub).components() {
        match c {
            Component::Normal(n) => below.push(n),
            Component::ParentDir if below.pop() => {}
            Component::ParentDir => {
                return Err(Error::Other(format!("{sub} is not a sub cgroup path")))
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(base.join(below))
}

/// The container's cgroup with the `--cgroup` sub-cgroups in place of its own
/// directories; `args` empty: the cgroup as it is. Every directory it names must
/// exist (runc: "error adding pid … to cgroups").
pub fn resolve(cg: &Cgroup, args: &[String]) -> Result<Cgroup> {
    let paths = parse(args)?;
    let mut out = cg.clone();
    if paths.is_empty() {
        return Ok(out);
    }
    let all = paths.get("");
    for ctrl in paths.keys() {
        let known = all.is_some()
            || out.hierarchies.iter().any(|h| match h.version {
                Version::V1 => h.has(ctrl),
                Version::V2 => ctrl.is_empty(),
            });
        if !known {
            return Err(Error::Other(format!(
                "unknown controller {ctrl} in SubCgroupPaths"
            )));
        }
    }
    for h in &mut out.hierarchies {
        let sub = match (all, h.version) {
            (Some(s), _) => Some(s),
            (None, Version::V1) => h.controllers.iter().find_map(|c| paths.get(c)),
            (None, Version::V2) => None,
        };
        let Some(sub) = sub else { continue };
        h.path = join_below(&h.path, sub)?;
        if !h.path.is_dir() {
            return Err(Error::Other(format!(
                "error adding pid to cgroups: open {}: no such file or directory",
                h.path.join("cgroup.procs").display()
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn forms_as_runc() {
        let p = parse(&strings(&["sub"])).expect("plain");
        assert_eq!(p.get(""), Some(&"sub".to_string()));
        let p = parse(&strings(&["pids,memory:/a", "cpu:b"])).expect("per controller");
        assert_eq!(p.len(), 3);
        assert_eq!(p.get("memory"), Some(&"/a".to_string()));
        let e = parse(&strings(&["a:b:c"])).expect_err("three parts");
        assert_eq!(e.to_string(), "invalid --cgroup argument: a:b:c");
        let e = parse(&strings(&["sub", "cpu:x"])).expect_err("mixed");
        assert!(e.to_string().contains("sub (missing <controller>: prefix)"));
    }

    #[test]
    fn only_sub_paths() {
        let base = Path::new("/sys/fs/cgroup/pids/c");
        assert_eq!(join_below(base, "/a/../b").expect("ok"), base.join("b"));
        assert_eq!(join_below(base, "/").expect("top"), base);
        for bad in ["..", "/../..", "a/../.."] {
            let e = join_below(base, bad).expect_err(bad);
            assert_eq!(e.to_string(), format!("{bad} is not a sub cgroup path"));
        }
    }
}
