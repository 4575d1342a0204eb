//! pids, hugetlb, network (net_cls/net_prio), rdma and `unified`.

use std::collections::HashMap;

use oci_spec::runtime::{LinuxHugepageLimit, LinuxNetwork, LinuxPids, LinuxRdma};

use crate::cgroup::{Cgroup, Version};
use crate::error::{CgroupError, Result};
use crate::fsutil::{self, write_setting};

/// The `pids.max` value for an OCI pids limit: `None` for 0 (unset, as in
/// runc), `max` for negative values.
pub(crate) fn pids_max(limit: i64) -> Option<String> {
    match limit {
        0 => None,
        l if l < 0 => Some("max".into()),
        l => Some(l.to_string()),
    }
}

pub(crate) fn apply_pids(cg: &Cgroup, p: &LinuxPids) -> Result<()> {
    let Some(v) = pids_max(p.limit()) else {
        return Ok(());
    };
    let h = cg.require("pids", "linux.resources.pids.limit")?;
    write_setting(&h.path, "pids.max", &v, "linux.resources.pids.limit")
}

/// Check a hugepage size such as `2MB` or `1GB` (it becomes part of a file name).
pub(crate) fn valid_page_size(s: &str) -> bool {
    let Some(num) = s
        .strip_suffix("KB")
        .or_else(|| s.strip_suffix("MB"))
        .or_else(|| s.strip_suffix("GB"))
    else {
        return false;
    };
    !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn apply_hugetlb(cg: &Cgroup, limits: &[LinuxHugepageLimit]) -> Result<()> {
    if limits.is_empty() {
        return Ok(());
    }
    let h = cg.require("hugetlb", "linux.resources.hugepageLimits")?;
    for l in limits {
        let ps = l.page_size();
        let what = format!("linux.resources.hugepageLimits[{ps}]");
        if !valid_page_size(ps) {
            return Err(CgroupError::invalid(
                what,
                "page size must look like 2MB or 1GB",
            ));
        }
        match h.version {
            Version::V1 => {
                let v = if l.limit() < 0 {
                    "-1".to_string()
                } else {
                    l.limit().to_string()
                };
                write_setting(&h.path, &format!("hugetlb.{ps}.limit_in_bytes"), &v, &what)?;
            }
            Version::V2 => {
                let v = if l.limit() < 0 {
                    "max".to_string()
                } else {
                    l.limit().to_string()
                };
                write_setting(&h.path, &format!("hugetlb.{ps}.max"), &v, &what)?;
                // Reservations are limited too where the kernel has them.
                let rsvd = h.path.join(format!("hugetlb.{ps}.rsvd.max"));
                match fsutil::write_raw(&rsvd, &v) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(CgroupError::Write {
                            path: rsvd,
                            value: v,
                            source,
                        })
                    }
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn apply_network(cg: &Cgroup, n: &LinuxNetwork) -> Result<()> {
    if let Some(id) = n.class_id() {
        const W: &str = "linux.resources.network.classID";
        let h = cg.require("net_cls", W)?;
        write_setting(&h.path, "net_cls.classid", &id.to_string(), W)?;
    }
    if let Some(prios) = n.priorities().as_ref().filter(|p| !p.is_empty()) {
        const W: &str = "linux.resources.network.priorities";
        let h = cg.require("net_prio", W)?;
        for p in prios {
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                return Err(CgroupError::invalid(
                    W,
                    format!("bad interface name {:?}", p.name()),
                ));
            }
            write_setting(
                &h.path,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
                W,
            )?;
        }
    }
    Ok(())
}

/// One `rdma.max` line, `None` when the entry sets nothing.
pub(crate) fn rdma_line(device: &str, r: &LinuxRdma) -> Option<String> {
    let mut line = device.to_string();
    if let Some(h) = r.hca_handles() {
        line.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = r.hca_objects() {
        line.push_str(&format!(" hca_object={o}"));
    }
    (line.len() > device.len()).then_some(line)
}

pub(crate) fn apply_rdma(cg: &Cgroup, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    const W: &str = "linux.resources.rdma";
    let lines: Vec<String> = rdma.iter().filter_map(|(d, r)| rdma_line(d, r)).collect();
    if lines.is_empty() {
        return Ok(());
    }
    let h = cg.require("rdma", W)?;
    for (dev, _) in rdma.iter() {
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(CgroupError::invalid(W, format!("bad device name {dev:?}")));
        }
    }
    for line in lines {
        write_setting(&h.path, "rdma.max", &line, W)?;
    }
    Ok(())
}

/// Keys of `unified` that must not be written through it.
fn forbidden_unified_key(key: &str) -> bool {
    key.is_empty()
        || key.contains('/')
        || key.starts_with('.')
        || matches!(
            key,
            "cgroup.procs" | "cgroup.threads" | "cgroup.subtree_control" | "cgroup.kill"
        )
}

pub(crate) fn apply_unified(cg: &Cgroup, unified: &HashMap<String, String>) -> Result<()> {
    if unified.is_empty() {
        return Ok(());
    }
    let Some(h) = cg.v2() else {
        return Err(CgroupError::Unsupported {
            what: "linux.resources.unified".into(),
            reason: "this host has no cgroup v2 hierarchy; use the v1 resource fields instead"
                .into(),
        });
    };
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for k in keys {
        let what = format!("linux.resources.unified[{k}]");
        if forbidden_unified_key(k) {
            return Err(CgroupError::invalid(
                what,
                "not a writable cgroup interface file name",
            ));
        }
        let v = &unified[k];
        match fsutil::write_raw(&h.path.join(k), v) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ctrl = k.split('.').next().unwrap_or(k);
                if cg
                    .controller(ctrl)
                    .is_some_and(|c| c.version == Version::V1)
                {
                    // runc refuses every unified key on a host with v1 hierarchies.
                    return Err(CgroupError::Unsupported {
                        what,
                        reason: format!(
                            "invalid configuration: cannot use unified on cgroup v1 (the {ctrl} \
                             controller is in a v1 hierarchy on this host); use the v1 resource \
                             fields instead"
                        ),
                    });
                }
                return Err(CgroupError::MissingFile {
                    path: h.path.join(k),
                    what: format!(
                        "{what} (is the {ctrl} controller available in cgroup v2 on this host?)"
                    ),
                });
            }
            Err(source) => {
                return Err(CgroupError::Write {
                    path: h.path.join(k),
                    value: v.clone(),
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxRdmaBuilder;

    #[test]
    fn pids_values() {
        assert_eq!(pids_max(0), None);
        assert_eq!(pids_max(-1).as_deref(), Some("max"));
        assert_eq!(pids_max(32).as_deref(), Some("32"));
    }

    #[test]
    fn page_sizes() {
        assert!(valid_page_size("2MB"));
        assert!(valid_page_size("1GB"));
        assert!(valid_page_size("64KB"));
        assert!(!valid_page_size("MB"));
        assert!(!valid_page_size("2mb"));
        assert!(!valid_page_size("../x"));
    }

    #[test]
    fn rdma_lines() {
        let r = LinuxRdmaBuilder::default()
            .hca_handles(3u32)
            .hca_objects(9u32)
            .build()
            .unwrap();
        assert_eq!(
            rdma_line("mlx5_0", &r).as_deref(),
            Some("mlx5_0 hca_handle=3 hca_object=9")
        );
        assert_eq!(rdma_line("mlx5_0", &LinuxRdma::default()), None);
    }

    #[test]
    fn unified_keys() {
        assert!(!forbidden_unified_key("memory.high"));
        assert!(forbidden_unified_key("../memory.high"));
        assert!(forbidden_unified_key("cgroup.procs"));
        assert!(forbidden_unified_key(""));
    }
}
