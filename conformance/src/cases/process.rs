//! `process.*` as seen from inside the container.

use crate::runner::{Case, CaseResult, Ctx};
use serde_json::json;

/// Cases of this area.
pub const CASES: &[Case] = &[
    Case { name: "process.default", run: default },
    Case { name: "process.args-env-cwd", run: args_env_cwd },
    Case { name: "process.user", run: user },
    Case { name: "process.capabilities.root", run: caps_root },
    Case { name: "process.capabilities.non-root-ambient", run: caps_ambient },
    Case { name: "process.rlimits", run: rlimits },
    Case { name: "process.noNewPrivileges.false", run: nnp_false },
    Case { name: "process.oomScoreAdj", run: oom },
    Case { name: "process.ioPriority", run: io_priority },
    Case { name: "process.scheduler", run: scheduler },
];

fn default(c: &mut Ctx) -> CaseResult {
    c.expect_checks(&["process"])
}

fn args_env_cwd(c: &mut Ctx) -> CaseResult {
    c.config["process"]["env"]
        .as_array_mut()
        .map(|e| e.push(json!("OC_SPACES=a b  c")));
    c.config["process"]["cwd"] = json!("/tmp");
    c.expect_checks(&["process.args", "process.env", "process.cwd"])
}

fn user(c: &mut Ctx) -> CaseResult {
    c.config["process"]["user"] = json!({
        "uid": 1000, "gid": 1001, "additionalGids": [5, 1002, 1003], "umask": 0o027
    });
    c.expect_checks(&["process.user"])
}

fn caps_root(c: &mut Ctx) -> CaseResult {
    let set = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID"]);
    c.config["process"]["capabilities"] = json!({
        "bounding": set, "effective": set, "permitted": set,
        "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]
    });
    c.expect_checks(&["process.capabilities"])
}

fn caps_ambient(c: &mut Ctx) -> CaseResult {
    c.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let set = json!(["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_SYS_TIME"]);
    c.config["process"]["capabilities"] = json!({
        "bounding": set, "effective": set, "permitted": set,
        "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        "ambient": ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    });
    c.expect_checks(&["process.capabilities"])
}

fn rlimits(c: &mut Ctx) -> CaseResult {
    c.config["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 1048576},
        {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192}
    ]);
    c.expect_checks(&["process.rlimits"])
}

fn nnp_false(c: &mut Ctx) -> CaseResult {
    c.config["process"]["noNewPrivileges"] = json!(false);
    c.expect_checks(&["process.noNewPrivileges"])
}

fn oom(c: &mut Ctx) -> CaseResult {
    c.config["process"]["oomScoreAdj"] = json!(423);
    c.expect_checks(&["process.oomScoreAdj"])
}

fn io_priority(c: &mut Ctx) -> CaseResult {
    c.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    c.expect_checks(&["process.ioPriority"])
}

fn scheduler(c: &mut Ctx) -> CaseResult {
    c.config["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    c.expect_checks(&["process.scheduler"])
}
