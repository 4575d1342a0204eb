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
