//! `mounts`, `root.readonly`, `linux.rootfsPropagation`, `linux.maskedPaths`,
//! `linux.readonlyPaths`.

use super::{expect_eq, mismatch, normalize, Check, Checker, Miss};
use crate::procfs::{parse_size, MountInfo};
use serde_json::Value;
use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

pub(super) fn run(c: &mut Checker) {
    let mounts: Vec<Value> = c
        .at("/mounts")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    let masked = list(c, "/linux/maskedPaths");
    let ro_paths = list(c, "/linux/readonlyPaths");
    for (i, m) in mounts.iter().enumerate() {
        let dest = normalize(m["destination"].as_str().unwrap_or(""));
        // A later mount on the same destination or above it shadows this one.
        let shadowed = mounts[i + 1..].iter().any(|later| {
            let ld = normalize(later["destination"].as_str().unwrap_or(""));
            ld == dest || dest.starts_with(&format!("{ld}/"))
        });
        if shadowed {
            continue;
        }
        let covered = masked.iter().chain(&ro_paths).any(|p| normalize(p) == dest);
        let name = format!("mounts.{dest}");
        c.check(&name, |c| mount(c, m, &dest, covered));
    }
    c.check("mounts.order", |c| order(c, &mounts));
    c.check("root.readonly", root_readonly);
    c.check("rootfsPropagation", rootfs_propagation);
    for p in masked {
        c.check(&format!("maskedPaths.{p}"), |c| {
            masked_path(&p)?;
            // An empty directory or file proves nothing unless something was
            // mounted over it.
            if c.mount_at(&p).is_none() {
                return Err(mismatch(format!("a mount masking {p}"), "no mount there"));
            }
            Ok(())
        });
    }
    for p in ro_paths {
        c.check(&format!("readonlyPaths.{p}"), |c| readonly_path(c, &p));
    }
}

fn list(c: &Checker, ptr: &str) -> Vec<String> {
    c.at(ptr)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn is_bind(m: &Value, opts: &[String]) -> bool {
    m["type"] == "bind" || opts.iter().any(|o| o == "bind" || o == "rbind")
}

fn mount(c: &Checker, m: &Value, dest: &str, covered: bool) -> Check {
    let opts: Vec<String> = m["options"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let got = c
        .mount_at(dest)
        .ok_or_else(|| Miss::Fail(format!("expected a mount at {dest} got none")))?;
    let ty = m["type"].as_str().unwrap_or("");
    let bind = is_bind(m, &opts);
    let mut errs = Vec::new();
    if ty == "cgroup" || ty == "cgroup2" {
        // On a cgroup v1 host runtimes build /sys/fs/cgroup as a tmpfs with one
        // cgroup mount per hierarchy beneath it.
        if !["cgroup", "cgroup2", "tmpfs"].contains(&got.fstype.as_str()) {
            errs.push(format!(
                "type: expected cgroup/cgroup2/tmpfs got {}",
                got.fstype
            ));
        }
    } else if !bind && !ty.is_empty() && got.fstype != ty {
        errs.push(format!("type: expected {ty} got {}", got.fstype));
    }
    if !bind && ty != "cgroup" && ty != "cgroup2" {
        if let Some(src) = m["source"].as_str() {
            if got.source != src {
                errs.push(format!("source: expected {src} got {}", got.source));
            }
        }
    }
    if !covered {
        if got.fstype == "tmpfs" && (ty == "cgroup" || ty == "cgroup2") {
            // v1 layout: the options apply to the cgroup hierarchies mounted
            // beneath the tmpfs, not to the tmpfs itself.
            let prefix = format!("{dest}/");
            let subs: Vec<&MountInfo> = c
                .mountinfo
                .iter()
                .filter(|s| s.mount_point.starts_with(&prefix) && s.fstype.starts_with("cgroup"))
                .collect();
            if subs.is_empty() {
                errs.push(format!("no cgroup hierarchy mounted under {dest}"));
            }
            let flags: Vec<String> = opts.iter().filter(|o| !o.contains('=')).cloned().collect();
            for s in subs {
                errs.extend(
                    option_errors(&flags, s)
                        .into_iter()
                        .map(|e| format!("{}: {e}", s.mount_point)),
                );
            }
        } else {
            errs.extend(option_errors(&opts, got));
            errs.extend(recursive_errors(c, &opts, dest));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Miss::Fail(errs.join("; ")))
    }
}

/// Compare config mount options with mountinfo's per-mount, propagation and
/// superblock fields. Options with no visible trace are not checked.
fn option_errors(opts: &[String], got: &MountInfo) -> Vec<String> {
    let mut errs = Vec::new();
    let mut want = |ok: bool, what: &str| {
        if !ok {
            errs.push(format!("expected {what} got {}", got.mount_opts.join(",")));
        }
    };
    for o in opts {
        let o = &recursive_as_flat(o)
            .map(str::to_string)
            .unwrap_or_else(|| o.clone());
        match o.as_str() {
            "ro" => want(got.has_opt("ro"), "ro"),
            "rw" => want(got.has_opt("rw"), "rw"),
            "nosuid" | "nodev" | "noexec" | "noatime" | "relatime" | "nodiratime"
            | "nosymfollow" => want(got.has_opt(o), o),
            "suid" => want(!got.has_opt("nosuid"), "no nosuid"),
            "dev" => want(!got.has_opt("nodev"), "no nodev"),
            "exec" => want(!got.has_opt("noexec"), "no noexec"),
            "strictatime" => want(
                !got.has_opt("relatime") && !got.has_opt("noatime"),
                "strictatime (neither relatime nor noatime)",
            ),
            _ => {}
        }
    }
    // The last propagation option wins.
    let prop = opts.iter().rev().find_map(|o| {
        Some(match o.as_str() {
            "shared" | "rshared" => "shared",
            "slave" | "rslave" => "slave",
            "private" | "rprivate" => "private",
            "unbindable" | "runbindable" => "unbindable",
            _ => return None,
        })
    });
    if let Some(p) = prop {
        let have = got.propagation();
        // A slave made shared (or a shared mount copied as a slave) is both.
        if have != p && !((p == "slave" || p == "shared") && have == "shared+slave") {
            errs.push(format!("propagation: expected {p} got {have}"));
        }
    }
    for o in opts {
        let Some((k, v)) = o.split_once('=') else {
            continue;
        };
        let shown = got
            .super_opts
            .iter()
            .find_map(|s| s.strip_prefix(&format!("{k}=")));
        let ok = match (k, shown) {
            ("mode" | "ptmxmode", Some(s)) => {
                u32::from_str_radix(v, 8).ok() == u32::from_str_radix(s, 8).ok()
            }
            // tmpfs does not print its default mode 1777.
            ("mode", None) if got.fstype == "tmpfs" => {
                u32::from_str_radix(v, 8).ok() == Some(0o1777)
            }
            ("size", Some(s)) => parse_size(v) == parse_size(s),
            ("uid" | "gid" | "nr_inodes", Some(s)) => v.parse::<u64>().ok() == s.parse().ok(),
            ("mode" | "ptmxmode" | "size" | "uid" | "gid" | "nr_inodes", None) => false,
            _ => true,
        };
        if !ok {
            errs.push(format!(
                "expected {o} in superblock options got {}",
                got.super_opts.join(",")
            ));
        }
    }
    errs
}

/// The recursive options (`rnosuid`, `rro`, `rnoatime`...) hold on every mount
/// below `dest` too (the runtime applies them with mount_setattr AT_RECURSIVE).
fn recursive_errors(c: &Checker, opts: &[String], dest: &str) -> Vec<String> {
    let flat: Vec<String> = opts
        .iter()
        .filter_map(|o| recursive_as_flat(o).map(str::to_string))
        .collect();
    if flat.is_empty() {
        return Vec::new();
    }
    let prefix = format!("{}/", dest.trim_end_matches('/'));
    c.mountinfo
        .iter()
        .filter(|s| s.mount_point.starts_with(&prefix))
        .flat_map(|s| {
            option_errors(&flat, s)
                .into_iter()
                .map(move |e| format!("{} (below {dest}): {e}", s.mount_point))
        })
        .collect()
}

/// The flag a recursive option sets on each mount (`rnosuid` → `nosuid`).
fn recursive_as_flat(o: &str) -> Option<&'static str> {
    Some(match o {
        "rro" => "ro",
        "rrw" => "rw",
        "rnosuid" => "nosuid",
        "rsuid" => "suid",
        "rnodev" => "nodev",
        "rdev" => "dev",
        "rnoexec" => "noexec",
        "rexec" => "exec",
        "rnodiratime" => "nodiratime",
        "rnoatime" => "noatime",
        "rrelatime" => "relatime",
        "rstrictatime" => "strictatime",
        "rnosymfollow" => "nosymfollow",
        _ => return None,
    })
}

/// Mounts are performed in config order: each config mount that is visible
/// appears after the previous visible one in mountinfo's list order.
fn order(c: &Checker, mounts: &[Value]) -> Check {
    let mut last: Option<(usize, String)> = None;
    for (i, m) in mounts.iter().enumerate() {
        let dest = normalize(m["destination"].as_str().unwrap_or(""));
        if mounts[i + 1..]
            .iter()
            .any(|l| normalize(l["destination"].as_str().unwrap_or("")) == dest)
        {
            continue;
        }
        // The first mount made at dest (lowest in the stack) marks its time.
        let Some(pos) = c.mountinfo.iter().position(|x| x.mount_point == dest) else {
            continue;
        };
        if let Some((lp, ld)) = &last {
            if pos < *lp {
                return Err(mismatch(
                    format!("{dest} mounted after {ld}"),
                    format!("{dest} listed before {ld} in mountinfo"),
                ));
            }
        }
        last = Some((pos, dest));
    }
    if last.is_none() {
        return Err(Miss::Skip("no config mounts visible".into()));
    }
    Ok(())
}

fn errno_of(path: &str, f: impl FnOnce(&CString) -> i32) -> Result<i32, Miss> {
    let p = CString::new(path).map_err(|_| Miss::Skip("path has NUL".into()))?;
    if f(&p) == 0 {
        Ok(0)
    } else {
        Ok(std::io::Error::last_os_error().raw_os_error().unwrap_or(-1))
    }
}

fn root_readonly(c: &Checker) -> Check {
    let want = c
        .at("/root/readonly")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let root = c
        .mount_at("/")
        .ok_or_else(|| Miss::Fail("no mount at / in mountinfo".into()))?;
    expect_eq(
        if want { "ro" } else { "rw" },
        if root.has_opt("ro") { "ro" } else { "rw" },
    )?;
    if want {
        // SAFETY: p is a valid C string; access() has no other arguments.
        let e = errno_of("/", |p| unsafe { libc::access(p.as_ptr(), libc::W_OK) })?;
        if e != libc::EROFS {
            return Err(mismatch("EROFS from access(/, W_OK)", errno_name(e)));
        }
    }
    Ok(())
}

fn rootfs_propagation(c: &Checker) -> Check {
    let want = c
        .at("/linux/rootfsPropagation")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Miss::Skip("rootfsPropagation not set".into()))?;
    let root = c
        .mount_at("/")
        .ok_or_else(|| Miss::Fail("no mount at / in mountinfo".into()))?;
    let want = want.trim_start_matches('r');
    let have = root.propagation();
    if have == want || ((want == "slave" || want == "shared") && have == "shared+slave") {
        Ok(())
    } else {
        Err(mismatch(want, have))
    }
}

fn masked_path(p: &str) -> Check {
    let md = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Miss::Skip(format!("{p} does not exist")))
        }
        Err(e) => return Err(Miss::Fail(format!("stat {p}: {e}"))),
    };
    if md.is_dir() {
        let n = std::fs::read_dir(p)
            .map_err(|e| Miss::Fail(format!("readdir {p}: {e}")))?
            .count();
        if n != 0 {
            return Err(mismatch("empty directory", format!("{n} entries")));
        }
        return Ok(());
    }
    match std::fs::read(p) {
        Ok(b) if b.is_empty() => Ok(()),
        Ok(b) => Err(mismatch("nothing readable", format!("{} bytes", b.len()))),
        Err(e)
            if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EPERM) =>
        {
            Ok(())
        }
        Err(e) => {
            if md.file_type().is_char_device() && md.rdev() == libc::makedev(1, 3) {
                Ok(())
            } else {
                Err(mismatch("empty read", e))
            }
        }
    }
}

fn readonly_path(c: &Checker, p: &str) -> Check {
    if std::fs::symlink_metadata(p).is_err() {
        return Err(Miss::Skip(format!("{p} does not exist")));
    }
    let m = c
        .mount_at(p)
        .ok_or_else(|| mismatch(format!("a read-only mount at {p}"), "no mount"))?;
    if !m.has_opt("ro") {
        return Err(mismatch("ro", m.mount_opts.join(",")));
    }
    let mode = std::fs::metadata(p).map(|m| m.mode()).unwrap_or(0);
    if mode & 0o222 == 0 {
        // Permission bits deny writes before the read-only mount is consulted.
        return Ok(());
    }
    // SAFETY: valid C string; access() only checks permissions.
    let e = errno_of(p, |c| unsafe { libc::access(c.as_ptr(), libc::W_OK) })?;
    if e == libc::EROFS {
        Ok(())
    } else {
        Err(mismatch("EROFS from access(W_OK)", errno_name(e)))
    }
}

/// Errno as text (`0` for success).
pub fn errno_name(e: i32) -> String {
    if e == 0 {
        "success".into()
    } else {
        std::io::Error::from_raw_os_error(e).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::parse_mountinfo;

    fn mi(line: &str) -> MountInfo {
        parse_mountinfo(line).remove(0)
    }

    fn opts(o: &[&str]) -> Vec<String> {
        o.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_propagation_and_superblock_options_are_compared() {
        let m = mi("50 40 0:5 / /dev rw,nosuid shared:3 - tmpfs tmpfs rw,size=65536k,mode=755\n");
        assert!(
            option_errors(&opts(&["nosuid", "mode=0755", "size=64m", "rshared"]), &m).is_empty()
        );
        let e = option_errors(&opts(&["ro", "noexec", "mode=700", "rslave"]), &m);
        assert_eq!(e.len(), 4, "{e:?}");
    }

    #[test]
    fn tmpfs_default_mode_is_implicit() {
        let m = mi("50 40 0:5 / /dev/shm rw - tmpfs shm rw,size=65536k\n");
        assert!(option_errors(&opts(&["mode=1777"]), &m).is_empty());
        assert_eq!(option_errors(&opts(&["mode=755"]), &m).len(), 1);
    }

    #[test]
    fn strictatime_means_neither_relatime_nor_noatime() {
        let m = mi("50 40 0:5 / /x rw,relatime - tmpfs t rw\n");
        assert_eq!(option_errors(&opts(&["strictatime"]), &m).len(), 1);
        assert!(option_errors(&opts(&["relatime", "suid", "dev", "exec"]), &m).is_empty());
    }
}
