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
    cgroup_files(c, &res, mounted, v1);
}

/// How a resource value shows in its cgroup file.
#[derive(Clone, Copy)]
enum Shown {
    /// The value as written.
    Same,
    /// Rounded down to a page.
    Paged,
    /// `oom_kill_disable 1` (or 0) in memory.oom_control.
    OomDisable,
    /// A boolean written as 1/0.
    Flag,
}

/// The remaining `linux.resources` fields: (name, JSON pointer below resources, v1
/// file, v2 file, how the value shows). An empty file name: no such file there.
const CGROUP_FILES: &[(&str, &str, &str, &str, Shown)] = &[
    (
        "memory.reservation",
        "/memory/reservation",
        "memory/memory.soft_limit_in_bytes",
        "memory.low",
        Shown::Paged,
    ),
    (
        "memory.swappiness",
        "/memory/swappiness",
        "memory/memory.swappiness",
        "",
        Shown::Same,
    ),
    (
        "memory.disableOOMKiller",
        "/memory/disableOOMKiller",
        "memory/memory.oom_control",
        "",
        Shown::OomDisable,
    ),
    (
        "memory.kernelTCP",
        "/memory/kernelTCP",
        "memory/memory.kmem.tcp.limit_in_bytes",
        "",
        Shown::Paged,
    ),
    (
        "memory.useHierarchy",
        "/memory/useHierarchy",
        "memory/memory.use_hierarchy",
        "",
        Shown::Flag,
    ),
    (
        "cpu.realtimeRuntime",
        "/cpu/realtimeRuntime",
        "cpu/cpu.rt_runtime_us",
        "",
        Shown::Same,
    ),
    (
        "cpu.realtimePeriod",
        "/cpu/realtimePeriod",
        "cpu/cpu.rt_period_us",
        "",
        Shown::Same,
    ),
    (
        "cpu.burst",
        "/cpu/burst",
        "cpu/cpu.cfs_burst_us",
        "cpu.max.burst",
        Shown::Same,
    ),
    ("cpu.idle", "/cpu/idle", "", "cpu.idle", Shown::Same),
    (
        "cpuset.mems",
        "/cpu/mems",
        "cpuset/cpuset.mems",
        "cpuset.mems",
        Shown::Same,
    ),
    (
        "blockIO.weight",
        "/blockIO/weight",
        "blkio/blkio.weight",
        "io.bfq.weight",
        Shown::Same,
    ),
    (
        "blockIO.leafWeight",
        "/blockIO/leafWeight",
        "blkio/blkio.leaf_weight",
        "",
        Shown::Same,
    ),
    (
        "memory.swap",
        "/memory/swap",
        "memory/memory.memsw.limit_in_bytes",
        "",
        Shown::Paged,
    ),
    (
        "network.classID",
        "/network/classID",
        "net_cls/net_cls.classid",
        "",
        Shown::Same,
    ),
];

fn cgroup_files(c: &mut Checker, res: &serde_json::Value, mounted: bool, v1: bool) {
    for (name, ptr, f1, f2, shown) in CGROUP_FILES {
        let Some(v) = res.pointer(ptr).cloned() else {
            continue;
        };
        c.check(&format!("cgroups.{name}"), |_| {
            if !mounted {
                return Err(Miss::Skip("no cgroup mount in the container".into()));
            }
            let file = if v1 { *f1 } else { *f2 };
            if file.is_empty() {
                return Err(Miss::Skip(format!("no {name} file on this cgroup version")));
            }
            let got = read_trim(&format!("/sys/fs/cgroup/{file}"))?;
            let want = match (shown, &v) {
                (Shown::Paged, serde_json::Value::Number(n)) => {
                    let n = n.as_i64().unwrap_or(0);
                    (n / 4096 * 4096).to_string()
                }
                (Shown::OomDisable, b) => {
                    let line = format!("oom_kill_disable {}", u8::from(b.as_bool() == Some(true)));
                    return if got.lines().any(|l| l == line) {
                        Ok(())
                    } else {
                        Err(mismatch(line, got))
                    };
                }
                (Shown::Flag, b) => u8::from(b.as_bool() == Some(true)).to_string(),
                (_, serde_json::Value::String(s)) => s.clone(),
                (_, other) => other.to_string(),
            };
            expect_eq(want, got)
        });
    }
    for h in res["hugepageLimits"].as_array().into_iter().flatten() {
        let size = h["pageSize"].as_str().unwrap_or("").to_string();
        let limit = h["limit"].as_u64().unwrap_or(0);
        c.check(&format!("cgroups.hugepageLimits.{size}"), |_| {
            if !mounted {
                return Err(Miss::Skip("no cgroup mount in the container".into()));
            }
            // A hybrid host may have hugetlb on the unified hierarchy only.
            let v1_file = format!("/sys/fs/cgroup/hugetlb/hugetlb.{size}.limit_in_bytes");
            let file = if !v1 {
                format!("/sys/fs/cgroup/hugetlb.{size}.max")
            } else if std::path::Path::new(&v1_file).exists() {
                v1_file
            } else {
                format!("/sys/fs/cgroup/unified/hugetlb.{size}.max")
            };
            expect_eq(limit.to_string(), read_trim(&file)?)
        });
    }
    for p in res
        .pointer("/network/priorities")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let line = format!("{} {}", p["name"].as_str().unwrap_or(""), p["priority"]);
        c.check("cgroups.network.priorities", |_| {
            if !mounted || !v1 {
                return Err(Miss::Skip(
                    "net_prio is a v1 controller mounted in the container".into(),
                ));
            }
            let got = read_trim("/sys/fs/cgroup/net_prio/net_prio.ifpriomap")?;
            if got.lines().any(|l| l == line) {
                Ok(())
            } else {
                Err(mismatch(line, got))
            }
        });
    }
    for (dev, lim) in res["rdma"].as_object().into_iter().flatten() {
        let want: Vec<String> = [("hca_handle", "hcaHandles"), ("hca_object", "hcaObjects")]
            .iter()
            .filter_map(|(k, j)| lim[*j].as_u64().map(|n| format!("{k}={n}")))
            .collect();
        c.check(&format!("cgroups.rdma.{dev}"), |_| {
            if !mounted {
                return Err(Miss::Skip("no cgroup mount in the container".into()));
            }
            let file = if v1 {
                "/sys/fs/cgroup/rdma/rdma.max"
            } else {
                "/sys/fs/cgroup/rdma.max"
            };
            let got = read_trim(file)?;
            let line = got.lines().find(|l| l.starts_with(&format!("{dev} ")));
            match line {
                Some(l) if want.iter().all(|w| l.split_whitespace().any(|f| f == w)) => Ok(()),
                _ => Err(mismatch(format!("{dev} {}", want.join(" ")), got)),
            }
        });
    }
    for (field, f1, f2, key) in [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            "io.max",
            "rbps",
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            "io.max",
            "wbps",
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            "io.max",
            "riops",
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            "io.max",
            "wiops",
        ),
        (
            "weightDevice",
            "blkio.weight_device",
            "io.bfq.weight",
            "weight",
        ),
    ] {
        for d in res["blockIO"][field].as_array().into_iter().flatten() {
            let (maj, min) = (
                d["major"].as_i64().unwrap_or(0),
                d["minor"].as_i64().unwrap_or(0),
            );
            let val = d["rate"]
                .as_u64()
                .or_else(|| d["weight"].as_u64())
                .unwrap_or(0);
            c.check(&format!("cgroups.blockIO.{field}"), |_| {
                if !mounted {
                    return Err(Miss::Skip("no cgroup mount in the container".into()));
                }
                let (path, want) = if v1 || key.is_empty() {
                    (
                        format!("/sys/fs/cgroup/blkio/{f1}"),
                        format!("{maj}:{min} {val}"),
                    )
                } else {
                    (format!("/sys/fs/cgroup/{f2}"), format!("{key}={val}"))
                };
                let got = read_trim(&path)?;
                let dev = format!("{maj}:{min}");
                let ok = got.lines().any(|l| {
                    l.starts_with(&dev) && (l == want || l.split_whitespace().any(|w| w == want))
                });
                if ok {
                    Ok(())
                } else {
                    Err(mismatch(want, got))
                }
            });
        }
    }
    for (key, val) in res["unified"].as_object().into_iter().flatten() {
        let val = val.as_str().unwrap_or("").to_string();
        c.check(&format!("cgroups.unified.{key}"), |_| {
            if !mounted {
                return Err(Miss::Skip("no cgroup mount in the container".into()));
            }
            let path = if v1 {
                format!("/sys/fs/cgroup/unified/{key}")
            } else {
                format!("/sys/fs/cgroup/{key}")
            };
            expect_eq(val.clone(), read_trim(&path)?)
        });
    }
}
