//! `linux.sysctl`, `linux.seccomp` (mode only), `linux.personality`,
//! `linux.memoryPolicy` and `linux.resources` as seen through the container's
//! cgroup mount.

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
    c.check("memoryPolicy", memory_policy);
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

/// get_mempolicy(2): the process's policy mode and the nodes of its mask.
fn memory_policy(c: &Checker) -> Check {
    let p = c
        .at("/linux/memoryPolicy")
        .ok_or_else(|| Miss::Skip("memoryPolicy not set".into()))?;
    let mode = p["mode"].as_str().unwrap_or("");
    let want = match mode {
        "MPOL_DEFAULT" => 0,
        "MPOL_PREFERRED" => 1,
        "MPOL_BIND" => 2,
        "MPOL_INTERLEAVE" => 3,
        "MPOL_LOCAL" => 4,
        "MPOL_PREFERRED_MANY" => 5,
        "MPOL_WEIGHTED_INTERLEAVE" => 6,
        other => return Err(Miss::Skip(format!("unknown mode {other}"))),
    };
    let mut got: libc::c_int = -1;
    let mut mask = [0u64; 16];
    // SAFETY: get_mempolicy writes one int and at most 1024 bits into `mask`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut got as *mut libc::c_int,
            mask.as_mut_ptr(),
            1025 as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            0 as libc::c_ulong,
        )
    };
    if r != 0 {
        return Err(Miss::Fail(format!(
            "get_mempolicy: {}",
            std::io::Error::last_os_error()
        )));
    }
    // The MPOL_F_* mode flags sit above bit 12.
    expect_eq(want, got & 0xff)?;
    let nodes = p["nodes"].as_str().unwrap_or("");
    let relative = p["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|v| v == "MPOL_F_RELATIVE_NODES"));
    if nodes.is_empty() || relative {
        return Ok(());
    }
    let mut want_mask = [0u64; 16];
    for part in nodes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = match (a.trim().parse(), b.trim().parse()) {
            (Ok(a), Ok(b)) if a <= b && b < 1024 => (a, b),
            _ => return Err(Miss::Skip(format!("node list {nodes:?} not understood"))),
        };
        for n in a..=b {
            want_mask[n / 64] |= 1 << (n % 64);
        }
    }
    let show = |m: &[u64; 16]| {
        (0..1024)
            .filter(|n| m[n / 64] & (1 << (n % 64)) != 0)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    expect_eq(show(&want_mask), show(&mask))
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
