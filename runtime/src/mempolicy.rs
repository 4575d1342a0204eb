//! `linux.memoryPolicy`: the NUMA memory policy of the container's processes,
//! set with set_mempolicy(2) before exec (a policy is inherited across fork and exec).

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

/// The highest node number accepted in `nodes` (the kernel's MAX_NUMNODES is at most 1024).
const MAX_NODE: usize = 1023;

/// The set_mempolicy(2) arguments of a policy: mode with its flags, and the node mask.
#[derive(Debug, PartialEq, Eq)]
pub struct Policy {
    /// `MPOL_*` mode ORed with `MPOL_F_*` flags.
    pub mode: i32,
    /// Node mask, 64 nodes a word.
    pub nodes: Vec<u64>,
}

fn field_err(msg: impl std::fmt::Display) -> Error {
    Error::Config(format!("linux.memoryPolicy: {msg}"))
}

/// Parse a node list such as `0-3,7` into a mask.
fn parse_nodes(list: &str) -> Result<Vec<u64>> {
    let bad = || {
        field_err(format!(
            "nodes {list:?}: use node numbers and ranges, e.g. 0-3,7"
        ))
    };
    let num = |s: &str| s.trim().parse::<usize>().map_err(|_| bad());
    let mut mask = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if a > b || b > MAX_NODE {
            return Err(bad());
        }
        for n in a..=b {
            if mask.len() <= n / 64 {
                mask.resize(n / 64 + 1, 0);
            }
            mask[n / 64] |= 1u64 << (n % 64);
        }
    }
    Ok(mask)
}

/// Check `p` and turn it into set_mempolicy arguments.
pub fn policy(p: &LinuxMemoryPolicy) -> Result<Policy> {
    let nodes = parse_nodes(p.nodes().as_deref().unwrap_or(""))?;
    let mode = p.mode();
    let (value, needs_nodes) = match mode {
        MemoryPolicyModeType::MpolDefault => (0, Some(false)),
        MemoryPolicyModeType::MpolPreferred => (1, None),
        MemoryPolicyModeType::MpolBind => (2, Some(true)),
        MemoryPolicyModeType::MpolInterleave => (3, Some(true)),
        MemoryPolicyModeType::MpolLocal => (4, Some(false)),
        MemoryPolicyModeType::MpolPreferredMany => (5, Some(true)),
        MemoryPolicyModeType::MpolWeightedInterleave => (6, Some(true)),
    };
    match needs_nodes {
        Some(true) if nodes.is_empty() => {
            return Err(field_err(format!("mode {mode} needs nodes")));
        }
        Some(false) if !nodes.is_empty() => {
            return Err(field_err(format!("mode {mode} takes no nodes")));
        }
        _ => {}
    }
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    Ok(Policy {
        mode: value | flags,
        nodes,
    })
}

/// Set the calling process's memory policy; the error names the field and the mode.
pub fn apply(p: &LinuxMemoryPolicy) -> Result<()> {
    let pol = policy(p)?;
    let mask = if pol.nodes.is_empty() {
        std::ptr::null()
    } else {
        pol.nodes.as_ptr()
    };
    // The kernel reads maxnode - 1 bits.
    let maxnode = pol.nodes.len() as libc::c_ulong * 64 + 1;
    // SAFETY: set_mempolicy reads maxnode - 1 bits from `mask`, which holds that many.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, pol.mode, mask, maxnode) };
    if r != 0 {
        return Err(Error::context(
            format!(
                "linux.memoryPolicy: set_mempolicy {} nodes {:?} (are the nodes online and allowed?)",
                p.mode(),
                p.nodes().as_deref().unwrap_or("")
            ),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(v: serde_json::Value) -> Result<Policy> {
        policy(&serde_json::from_value(v).expect("memoryPolicy json"))
    }

    #[test]
    fn modes_flags_and_node_lists() {
        let p = pol(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0-2,65",
            "flags": ["MPOL_F_STATIC_NODES"]}))
        .expect("valid");
        assert_eq!(p.mode, 2 | (1 << 15));
        assert_eq!(p.nodes, vec![0b111, 0b10]);
        let p = pol(serde_json::json!({"mode": "MPOL_DEFAULT"})).expect("valid");
        assert_eq!((p.mode, p.nodes.len()), (0, 0));
    }

    #[test]
    fn bad_policies_name_the_field() {
        for v in [
            serde_json::json!({"mode": "MPOL_BIND"}),
            serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
            serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "2-1"}),
            serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "x"}),
            serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "5000"}),
        ] {
            let e = pol(v.clone()).expect_err("refused").to_string();
            assert!(e.contains("linux.memoryPolicy"), "{v}: {e}");
        }
    }
}
