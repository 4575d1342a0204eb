//! `linux.sysctl`, `linux.seccomp` (mode only), `linux.personality` and
//! `linux.resources` as seen through the container's cgroup mount.

use super::{expect_eq, mismatch, Check, Checker, Miss};
use crate::procfs::status_field;

pub(super) fn run(c: &mut Checker) {
    let sysctls: Vec<(String, String)> = c
        .at("/linux/sysctl")
        .and_then(|v| v.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    for (k, v) in sysctls {
        c.check(&format!("sysctl.{k}"), |_| sysctl(&k, &v));
    }
    c.check("seccomp", seccomp);
    c.check("personality", personality);
    cgroups(c);
}

fn sysctl(key: &str, want: &str) -> Check {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let got = std::fs::read_to_string(&path).map_err(|e| Miss::Fail(format!("{path}: {e}")))?;
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    expect_eq(norm(want), norm(&got))
}

fn seccomp(c: &Checker) -> Check {
    let want = if c.at("/linux/seccomp").is_some() {
        "2"
    } else {
        "0"
    };
    let got = status_field(&c.status, "Seccomp")
        .ok_or_else(|| Miss::Skip("kernel without seccomp".into()))?;
    expect_eq(want, got)
}

fn personality(c: &Checker) -> Check {
    let p = c
        .at("/linux/personality")
        .ok_or_else(|| Miss::Skip("personality not set".into()))?;
    let want = match p["domain"].as_str().unwrap_or("") {
        "LINUX" => 0,
        "LINUX32" => 8,
        other => return Err(Miss::Skip(format!("unknown domain {other}"))),
    };
    // SAFETY: 0xffffffff queries the persona without changing it.
    let got = unsafe { libc::personality(0xffff_ffff) };
    if got < 0 {
        return Err(Miss::Fail(format!(
            "personality: {}",
            std::io::Error::last_os_error()
        )));
    }
    expect_eq(format!("{want:#x}"), format!("{:#x}", got & 0xff))
}

fn read_trim(p: &str) -> Result<String, Miss> {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .map_err(|e| Miss::Fail(format!("{p}: {e}")))
}

fn cgroups(c: &mut Checker) {
    let res = c.at("/linux/resources").cloned();
    let Some(res) = res else {
        c.check("cgroups", |_| {
            Err(Miss::Skip("linux.resources not set".into()))
        });
        return;
    };
    let mounted = c
        .mountinfo
        .iter()
        .any(|m| m.mount_point.starts_with("/sys/fs/cgroup"));
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory").is_dir()
        || std::path::Path::new("/sys/fs/cgroup/pids").is_dir();
    let page = 4096i64;
    if let Some(limit) = res.pointer("/memory/limit").and_then(|v| v.as_i64()) {
        c.check("cgroups.memory.limit", |_| {
            if !mounted {
                return Err(Miss::Skip("no cgroup mount in the container".into()));
            }
            let (path, want) = if v1 {
                let w = if limit < 0 {
                    "9223372036854771712".to_string()
                } else {
                    (limit / page * page).to_string()
                };
                ("/sys/fs/cgroup/memory/memory.limit_in_bytes", w)
            } else {
                let w = if limit < 0 {
                    "max".to_string()
                } else {
                    (limit / page * page).to_string()
                };
                ("/sys/fs/cgroup/memory.max", w)
            };
            expect_eq(want, read_trim(path)?)
        });
    }
    if let Some(limit) = res.pointer("/pids/limit").and_then(|v| v.as_i64()) {
        c.check("cgroups.pids.limit", |_| {
            if !mounted {
                return Err(Miss::Skip("no cgroup mount in the container".into()));
            }
            let path = if v1 {
                "/sys/fs/cgroup/pids/pids.max"
            } else {
                "/sys/fs/cgroup/pids.max"
            };
            let want = if limit <= 0 {
                "max".to_string()
            } else {
                limit.to_string()
            };
            expect_eq(want, read_trim(path)?)
        });
    }
    if let Some(shares) = res.pointer("/cpu/shares").and_then(|v| v.as_u64()) {
        c.check("cgroups.cpu.shares", |_| {
            if !mounted {
                return Err(Miss::Skip("no cgroup mount in the container".into()));
            }
            if !v1 {
                return Err(Miss::Skip(
                    "cpu.shares is a v1 file; v2 maps it to cpu.weight".into(),
                ));
            }
            expect_eq(
                shares.to_string(),
                read_trim("/sys/fs/cgroup/cpu/cpu.shares")?,
            )
        });
    }
    if let Some(cpus) = res.pointer("/cpu/cpus").and_then(|v| v.as_str()) {
        let cpus = cpus.to_string();
        c.check("cgroups.cpuset.cpus", |_| {
            if !mounted {
                return Err(Miss::Skip("no cgroup mount in the container".into()));
            }
            let path = if v1 {
                "/sys/fs/cgroup/cpuset/cpuset.cpus"
            } else {
                "/sys/fs/cgroup/cpuset.cpus"
            };
            expect_eq(cpus.clone(), read_trim(path)?)
        });
    }
    let quota = res.pointer("/cpu/quota").and_then(|v| v.as_i64());
    let period = res.pointer("/cpu/period").and_then(|v| v.as_u64());
    if quota.is_some() || period.is_some() {
        c.check("cgroups.cpu.quota", |_| {
            if !mounted {
                return Err(Miss::Skip("no cgroup mount in the container".into()));
            }
            if v1 {
                if let Some(q) = quota {
                    expect_eq(
                        q.to_string(),
                        read_trim("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")?,
                    )?;
                }
                if let Some(p) = period {
                    expect_eq(
                        p.to_string(),
                        read_trim("/sys/fs/cgroup/cpu/cpu.cfs_period_us")?,
                    )?;
                }
                Ok(())
            } else {
                let got = read_trim("/sys/fs/cgroup/cpu.max")?;
                let q = quota.map(|q| {
                    if q < 0 {
                        "max".to_string()
                    } else {
                        q.to_string()
                    }
                });
                let mut it = got.split_whitespace();
                let (gq, gp) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
                if q.as_deref().is_some_and(|q| q != gq)
                    || period.is_some_and(|p| p.to_string() != gp)
                {
                    return Err(mismatch(format!("{q:?} {period:?}"), got));
                }
                Ok(())
            }
        });
    }
}
