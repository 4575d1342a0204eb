//! `process.*`: args, env, cwd, user, capabilities, rlimits, noNewPrivileges,
//! oomScoreAdj, ioPriority, scheduler.

use super::{expect_eq, mismatch, Check, Checker, Miss};
use crate::procfs::{cap_bit, cap_names, rlimit_resource, status_field};

pub(super) fn run(c: &mut Checker) {
    c.check("process.args", args);
    c.check("process.env", env);
    c.check("process.cwd", cwd);
    c.check("process.terminal", terminal);
    c.check("process.consoleSize", console_size);
    c.check("process.user.uid", |c| ids(c, "Uid", "uid"));
    c.check("process.user.gid", |c| ids(c, "Gid", "gid"));
    c.check("process.user.additionalGids", groups);
    c.check("process.user.umask", umask);
    caps(c);
    let limits: Vec<String> = c
        .at("/process/rlimits")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|r| r["type"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for l in limits {
        c.check(&format!("process.rlimits.{l}"), |c| rlimit(c, &l));
    }
    c.check("process.noNewPrivileges", no_new_privs);
    c.check("process.oomScoreAdj", oom_score_adj);
    c.check("process.ioPriority", io_priority);
    c.check("process.scheduler", scheduler);
}

fn args(c: &Checker) -> Check {
    let want: Vec<String> = c
        .at("/process/args")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let raw = std::fs::read("/proc/self/cmdline").map_err(|e| Miss::Fail(e.to_string()))?;
    let got: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    if want == got {
        Ok(())
    } else {
        Err(mismatch(format!("{want:?}"), format!("{got:?}")))
    }
}

fn env(c: &Checker) -> Check {
    let want = c
        .at("/process/env")
        .and_then(|v| v.as_array())
        .ok_or_else(|| Miss::Skip("process.env not set".into()))?;
    let got: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    let missing: Vec<&str> = want
        .iter()
        .filter_map(|e| e.as_str())
        .filter(|e| !got.iter().any(|g| g == e))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(mismatch(
            format!("{missing:?} in environ"),
            format!("{got:?}"),
        ))
    }
}

fn cwd(c: &Checker) -> Check {
    let want = c
        .at("/process/cwd")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Miss::Skip("process.cwd not set".into()))?;
    let got = std::env::current_dir().map_err(|e| Miss::Fail(format!("getcwd: {e}")))?;
    expect_eq(super::normalize(want), got.to_string_lossy().into_owned())
}

fn ids(c: &Checker, key: &str, cfg: &str) -> Check {
    let want = c
        .at(&format!("/process/user/{cfg}"))
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let got = status_field(&c.status, key).unwrap_or("?");
    let all: Vec<&str> = got.split_whitespace().collect();
    let want_s = format!("{want} {want} {want} {want}");
    expect_eq(want_s, all.join(" "))
}

fn groups(c: &Checker) -> Check {
    let mut want: Vec<u64> = c
        .at("/process/user/additionalGids")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|g| g.as_u64()).collect())
        .unwrap_or_default();
    let mut got: Vec<u64> = status_field(&c.status, "Groups")
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|g| g.parse().ok())
        .collect();
    want.sort_unstable();
    want.dedup();
    got.sort_unstable();
    if want == got {
        Ok(())
    } else {
        Err(mismatch(format!("{want:?}"), format!("{got:?}")))
    }
}

fn umask(c: &Checker) -> Check {
    let want = c
        .at("/process/user/umask")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| Miss::Skip("umask not set".into()))?;
    let got = status_field(&c.status, "Umask")
        .and_then(|v| u64::from_str_radix(v, 8).ok())
        .ok_or_else(|| Miss::Skip("kernel has no Umask in status".into()))?;
    expect_eq(format!("{want:04o}"), format!("{got:04o}"))
}

fn cfg_caps(c: &Checker, set: &str) -> u64 {
    c.at(&format!("/process/capabilities/{set}"))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().and_then(cap_bit))
                .fold(0u64, |m, b| m | (1 << b))
        })
        .unwrap_or(0)
}

/// The capability sets the process must hold after execve, derived from the
/// config the way the kernel transforms them (see README: "capabilities").
fn expected_caps(c: &Checker) -> [(&'static str, &'static str, u64); 5] {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let known = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    let bnd = cfg_caps(c, "bounding") & known;
    let inh = cfg_caps(c, "inheritable") & known;
    let prm = cfg_caps(c, "permitted") & known;
    let amb = cfg_caps(c, "ambient") & known & prm & inh;
    let uid = c
        .at("/process/user/uid")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let (prm_after, eff_after) = if uid == 0 {
        let p = bnd | inh;
        (p, p)
    } else {
        (amb, amb)
    };
    [
        ("process.capabilities.bounding", "CapBnd", bnd),
        ("process.capabilities.effective", "CapEff", eff_after),
        ("process.capabilities.permitted", "CapPrm", prm_after),
        ("process.capabilities.inheritable", "CapInh", inh),
        ("process.capabilities.ambient", "CapAmb", amb),
    ]
}

fn caps(c: &mut Checker) {
    if c.at("/process/capabilities").is_none() {
        c.check("process.capabilities", |_| {
            Err(Miss::Skip("process.capabilities not set".into()))
        });
        return;
    }
    for (name, key, want) in expected_caps(c) {
        c.check(name, |c| {
            let got = status_field(&c.status, key)
                .and_then(|v| u64::from_str_radix(v, 16).ok())
                .ok_or_else(|| Miss::Fail(format!("no {key} in /proc/self/status")))?;
            if got == want {
                Ok(())
            } else {
                Err(mismatch(cap_names(want), cap_names(got)))
            }
        });
    }
}

fn rlimit(c: &Checker, name: &str) -> Check {
    let entry = c
        .at("/process/rlimits")
        .and_then(|v| v.as_array())
        .and_then(|a| a.iter().find(|r| r["type"] == name))
        .ok_or_else(|| Miss::Skip("not configured".into()))?;
    let res = rlimit_resource(name).ok_or_else(|| Miss::Skip(format!("unknown {name}")))?;
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit on ourselves with a null new limit only writes `cur`.
    let rc = unsafe { libc::prlimit(0, res as _, std::ptr::null(), &mut cur) };
    if rc != 0 {
        return Err(Miss::Fail(format!(
            "prlimit: {}",
            std::io::Error::last_os_error()
        )));
    }
    let want = format!(
        "soft={} hard={}",
        entry["soft"].as_u64().unwrap_or(0),
        entry["hard"].as_u64().unwrap_or(0)
    );
    expect_eq(want, format!("soft={} hard={}", cur.rlim_cur, cur.rlim_max))
}

fn no_new_privs(c: &Checker) -> Check {
    let want = c
        .at("/process/noNewPrivileges")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let got = status_field(&c.status, "NoNewPrivs").unwrap_or("?");
    expect_eq(if want { "1" } else { "0" }, got)
}

fn oom_score_adj(c: &Checker) -> Check {
    let want = c
        .at("/process/oomScoreAdj")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| Miss::Skip("oomScoreAdj not set".into()))?;
    let got = std::fs::read_to_string("/proc/self/oom_score_adj")
        .map_err(|e| Miss::Fail(e.to_string()))?;
    expect_eq(want.to_string(), got.trim().to_string())
}

fn io_priority(c: &Checker) -> Check {
    let io = c
        .at("/process/ioPriority")
        .ok_or_else(|| Miss::Skip("ioPriority not set".into()))?;
    let class = match io["class"].as_str().unwrap_or("") {
        "IOPRIO_CLASS_RT" => 1,
        "IOPRIO_CLASS_BE" => 2,
        "IOPRIO_CLASS_IDLE" => 3,
        other => return Err(Miss::Skip(format!("unknown class {other}"))),
    };
    let prio = io["priority"].as_i64().unwrap_or(0);
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, self) has no memory arguments.
    let got = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) };
    if got < 0 {
        return Err(Miss::Fail(format!(
            "ioprio_get: {}",
            std::io::Error::last_os_error()
        )));
    }
    expect_eq(
        format!("class {class} prio {prio}"),
        format!("class {} prio {}", got >> 13, got & 0x1fff),
    )
}

fn scheduler(c: &Checker) -> Check {
    let s = c
        .at("/process/scheduler")
        .ok_or_else(|| Miss::Skip("scheduler not set".into()))?;
    let policy = match s["policy"].as_str().unwrap_or("") {
        "SCHED_OTHER" => 0,
        "SCHED_FIFO" => 1,
        "SCHED_RR" => 2,
        "SCHED_BATCH" => 3,
        "SCHED_ISO" => 4,
        "SCHED_IDLE" => 5,
        "SCHED_DEADLINE" => 6,
        other => return Err(Miss::Skip(format!("unknown policy {other}"))),
    };
    // SAFETY: no memory arguments.
    let got = unsafe { libc::sched_getscheduler(0) };
    expect_eq(policy, got & 0xff)?;
    if let Some(nice) = s["nice"].as_i64() {
        // SAFETY: no memory arguments; errno is irrelevant for in-range values.
        let got = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        expect_eq(nice, got as i64).map_err(|m| match m {
            Miss::Fail(r) => Miss::Fail(format!("nice: {r}")),
            s => s,
        })?;
    }
    if let Some(prio) = s["priority"].as_i64() {
        let mut p = libc::sched_param { sched_priority: 0 };
        // SAFETY: p is a valid sched_param.
        if unsafe { libc::sched_getparam(0, &mut p) } == 0 {
            expect_eq(prio, p.sched_priority as i64).map_err(|m| match m {
                Miss::Fail(r) => Miss::Fail(format!("priority: {r}")),
                s => s,
            })?;
        }
    }
    Ok(())
}

fn terminal(c: &Checker) -> Check {
    let want = c
        .at("/process/terminal")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    // SAFETY: isatty only inspects the descriptor.
    let got: Vec<bool> = (0..3).map(|fd| unsafe { libc::isatty(fd) } == 1).collect();
    if got.iter().all(|t| *t == want) {
        Ok(())
    } else {
        Err(mismatch(
            format!("stdin/stdout/stderr tty={want}"),
            format!("{got:?}"),
        ))
    }
}

fn console_size(c: &Checker) -> Check {
    let size = c
        .at("/process/consoleSize")
        .ok_or_else(|| Miss::Skip("consoleSize not set".into()))?;
    if !c
        .at("/process/terminal")
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
    {
        return Err(Miss::Skip("consoleSize without terminal".into()));
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`.
    if unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } != 0 {
        return Err(Miss::Fail(format!(
            "TIOCGWINSZ: {}",
            std::io::Error::last_os_error()
        )));
    }
    expect_eq(
        format!(
            "{}x{}",
            size["height"].as_u64().unwrap_or(0),
            size["width"].as_u64().unwrap_or(0)
        ),
        format!("{}x{}", ws.ws_row, ws.ws_col),
    )
}
