//! Namespace identity, hostname/domainname, user-namespace mappings and time
//! namespace offsets.

use super::{expect_eq, mismatch, Check, Checker, Miss};
use crate::procfs::{ns_proc_name, NS_TYPES};
use std::os::unix::fs::MetadataExt;

pub(super) fn run(c: &mut Checker) {
    for ty in NS_TYPES {
        c.check(&format!("ns.{ty}"), |c| ns(c, ty));
    }
    c.check("hostname", hostname);
    c.check("domainname", domainname);
    c.check("idmap.uid", |c| {
        idmap(c, "uidMappings", "/proc/self/uid_map")
    });
    c.check("idmap.gid", |c| {
        idmap(c, "gidMappings", "/proc/self/gid_map")
    });
    c.check("timeOffsets", time_offsets);
}

fn ns(c: &Checker, ty: &str) -> Check {
    let proc_name = ns_proc_name(ty).ok_or_else(|| Miss::Skip("unknown type".into()))?;
    let own = std::fs::metadata(format!("/proc/self/ns/{proc_name}"))
        .map_err(|e| Miss::Skip(format!("/proc/self/ns/{proc_name}: {e}")))?
        .ino();
    let entry = c
        .at("/linux/namespaces")
        .and_then(|v| v.as_array())
        .and_then(|a| a.iter().find(|n| n["type"] == ty));
    let host = c.host["ns"][ty].as_u64();
    match entry {
        None => {
            let host =
                host.ok_or_else(|| Miss::Skip(format!("host has no {ty} namespace inode")))?;
            if own == host {
                Ok(())
            } else {
                Err(mismatch(
                    format!("host {ty} ns {host} (not in config)"),
                    own,
                ))
            }
        }
        Some(e) => match e["path"].as_str().filter(|p| !p.is_empty()) {
            Some(path) => {
                let want = c.host["nsPaths"][path]
                    .as_u64()
                    .ok_or_else(|| Miss::Skip(format!("runner did not resolve {path}")))?;
                if own == want {
                    Ok(())
                } else {
                    Err(mismatch(format!("joined {path} inode {want}"), own))
                }
            }
            None => match host {
                Some(h) if h == own => Err(mismatch(format!("new {ty} ns"), "host's")),
                _ => Ok(()),
            },
        },
    }
}

fn uname() -> Result<libc::utsname, Miss> {
    // SAFETY: utsname is plain old data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(Miss::Fail(format!(
            "uname: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(u)
}

fn field(raw: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn hostname(c: &Checker) -> Check {
    let want = c
        .at("/hostname")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Miss::Skip("hostname not set".into()))?;
    expect_eq(want.to_string(), field(&uname()?.nodename))
}

fn domainname(c: &Checker) -> Check {
    let want = c
        .at("/domainname")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Miss::Skip("domainname not set".into()))?;
    expect_eq(want.to_string(), field(&uname()?.domainname))
}

fn idmap(c: &Checker, key: &str, file: &str) -> Check {
    let want = c
        .at(&format!("/linux/{key}"))
        .and_then(|v| v.as_array())
        .ok_or_else(|| Miss::Skip(format!("{key} not set")))?;
    let mut want: Vec<(u64, u64, u64)> = want
        .iter()
        .map(|m| {
            (
                m["containerID"].as_u64().unwrap_or(u64::MAX),
                m["hostID"].as_u64().unwrap_or(u64::MAX),
                m["size"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    let text = std::fs::read_to_string(file).map_err(|e| Miss::Fail(format!("{file}: {e}")))?;
    let mut got: Vec<(u64, u64, u64)> = text
        .lines()
        .filter_map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 3).then(|| (v[0], v[1], v[2]))
        })
        .collect();
    want.sort_unstable();
    got.sort_unstable();
    if want == got {
        Ok(())
    } else {
        Err(mismatch(format!("{want:?}"), format!("{got:?}")))
    }
}

fn time_offsets(c: &Checker) -> Check {
    let want = c
        .at("/linux/timeOffsets")
        .and_then(|v| v.as_object())
        .ok_or_else(|| Miss::Skip("timeOffsets not set".into()))?;
    let text = std::fs::read_to_string("/proc/self/timens_offsets")
        .map_err(|e| Miss::Fail(format!("/proc/self/timens_offsets: {e}")))?;
    for (clock, off) in want {
        let secs = off["secs"].as_i64().unwrap_or(0);
        let nanos = off["nanosecs"].as_u64().unwrap_or(0);
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(clock.as_str()))
            .ok_or_else(|| Miss::Fail(format!("no {clock} line in timens_offsets")))?;
        let v: Vec<&str> = line.split_whitespace().collect();
        let got = format!("{} {}", v.get(1).unwrap_or(&"?"), v.get(2).unwrap_or(&"?"));
        expect_eq(format!("{secs} {nanos}"), got).map_err(|m| match m {
            Miss::Fail(r) => Miss::Fail(format!("{clock}: {r}")),
            s => s,
        })?;
    }
    Ok(())
}
