//! `linux.sysctl`, `linux.seccomp` (mode) and `linux.personality`.

use crate::runner::{Case, CaseResult, Ctx};
use serde_json::json;

/// Cases of this area.
pub const CASES: &[Case] = &[
    Case {
        name: "kernel.sysctl",
        run: sysctl,
    },
    Case {
        name: "kernel.seccomp-mode",
        run: seccomp,
    },
    Case {
        name: "kernel.no-seccomp",
        run: no_seccomp,
    },
    Case {
        name: "kernel.personality-linux32",
        run: personality,
    },
    Case {
        name: "kernel.memoryPolicy-bind",
        run: memory_policy_bind,
    },
    Case {
        name: "kernel.memoryPolicy-interleave",
        run: memory_policy_interleave,
    },
];

fn sysctl(c: &mut Ctx) -> CaseResult {
    c.config["linux"]["sysctl"] = json!({
        "net.ipv4.ip_forward": "1",
        "net.ipv4.ip_local_port_range": "20000 30000",
        "kernel.shmmni": "2048"
    });
    c.expect_checks(&["sysctl"])
}

fn seccomp(c: &mut Ctx) -> CaseResult {
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]
    });
    c.expect_checks(&["seccomp"])
}

fn no_seccomp(c: &mut Ctx) -> CaseResult {
    c.expect_checks(&["seccomp"])
}

fn personality(c: &mut Ctx) -> CaseResult {
    c.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    c.expect_checks_optional(&["personality"], "linux.personality")
}

/// `linux.memoryPolicy` as get_mempolicy(2) reports it inside (node 0 exists on
/// every host).
fn memory_policy_bind(c: &mut Ctx) -> CaseResult {
    c.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    c.expect_checks_optional(&["memoryPolicy"], "linux.memoryPolicy")
}

fn memory_policy_interleave(c: &mut Ctx) -> CaseResult {
    c.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_INTERLEAVE", "nodes": "0",
        "flags": ["MPOL_F_STATIC_NODES"]});
    c.expect_checks_optional(&["memoryPolicy"], "linux.memoryPolicy")
}
