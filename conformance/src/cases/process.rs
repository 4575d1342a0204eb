//! `process.*` as seen from inside the container.

use crate::runner::console::{read_all, ConsoleSocket};
use crate::runner::{Case, CaseResult, Ctx};
use crate::tap::{Point, Tap};
use crate::{check, skip};
use serde_json::json;
use std::time::Duration;

/// Cases of this area.
pub const CASES: &[Case] = &[
    Case {
        name: "process.default",
        run: default,
    },
    Case {
        name: "process.args-env-cwd",
        run: args_env_cwd,
    },
    Case {
        name: "process.user",
        run: user,
    },
    Case {
        name: "process.capabilities.root",
        run: caps_root,
    },
    Case {
        name: "process.capabilities.non-root-ambient",
        run: caps_ambient,
    },
    Case {
        name: "process.capabilities.unknown",
        run: caps_unknown,
    },
    Case {
        name: "process.rlimits",
        run: rlimits,
    },
    Case {
        name: "process.noNewPrivileges.false",
        run: nnp_false,
    },
    Case {
        name: "process.oomScoreAdj",
        run: oom,
    },
    Case {
        name: "process.ioPriority",
        run: io_priority,
    },
    Case {
        name: "process.scheduler",
        run: scheduler,
    },
    Case {
        name: "process.terminal",
        run: terminal,
    },
    Case {
        name: "process.exec",
        run: exec,
    },
    Case {
        name: "process.apparmorProfile",
        run: apparmor,
    },
    Case {
        name: "process.selinuxLabel",
        run: selinux,
    },
    Case {
        name: "process.ioPriority-rt",
        run: io_priority_rt,
    },
    Case {
        name: "process.exec-personality",
        run: exec_personality,
    },
];

fn default(c: &mut Ctx) -> CaseResult {
    c.expect_checks(&["process"])
}

fn args_env_cwd(c: &mut Ctx) -> CaseResult {
    if let Some(e) = c.config["process"]["env"].as_array_mut() {
        e.push(json!("OC_SPACES=a b  c"));
    }
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
    let set = json!([
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_RAW",
        "CAP_SETUID",
        "CAP_SETGID"
    ]);
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
    c.expect_checks_optional(&["process.ioPriority"], "process.ioPriority")
}

fn scheduler(c: &mut Ctx) -> CaseResult {
    c.config["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    c.expect_checks_optional(&["process.scheduler"], "process.scheduler")
}

fn terminal(c: &mut Ctx) -> CaseResult {
    c.config["process"]["terminal"] = json!(true);
    c.config["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    c.set_args(&[
        "/oci-checker",
        "--only",
        "process.terminal,process.consoleSize,devices.console",
    ]);
    let sock_path = c.dir.join("console.sock");
    let sock = ConsoleSocket::bind(&sock_path)?;
    let id = c.id(1);
    c.write_config()?;
    c.track(&id);
    let b = c.bundle.to_string_lossy().into_owned();
    let s = sock_path.to_string_lossy().into_owned();
    c.rt_ok(&["create", "--bundle", &b, "--console-socket", &s, &id])?;
    let master = sock.receive(Duration::from_secs(5))?;
    c.rt_ok(&["start", &id])?;
    let text = read_all(&master, c.time_left().min(Duration::from_secs(20)));
    let tap = Tap::parse(&text);
    check!(
        tap.complete() && !tap.points.is_empty(),
        "no TAP on the console: {text:?}"
    );
    let fails: Vec<String> = tap
        .points
        .iter()
        .filter_map(|p| match &p.point {
            Point::NotOk(r) => Some(format!("{}: {r}", p.desc)),
            _ => None,
        })
        .collect();
    check!(fails.is_empty(), "{}", fails.join(" | "));
    for want in ["process.terminal", "process.consoleSize", "devices.console"] {
        check!(
            tap.points
                .iter()
                .any(|p| p.desc == want && p.point == Point::Ok),
            "{want} did not pass: {text:?}"
        );
    }
    Ok(())
}

fn apparmor(_c: &mut Ctx) -> CaseResult {
    if !std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        skip!("host kernel has no AppArmor");
    }
    skip!("AppArmor profiles are not exercised by this suite")
}

fn selinux(_c: &mut Ctx) -> CaseResult {
    if !std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        skip!("host has no SELinux");
    }
    skip!("SELinux labels are not exercised by this suite")
}

/// `exec --process`: the exec'd process gets its own user, env, cwd,
/// capabilities, rlimits and noNewPrivileges. The checker reads a config
/// copy whose `process` is the exec'd one.
fn exec(c: &mut Ctx) -> CaseResult {
    c.set_args(&["/bin/sleep", "600"]);
    let caps = json!(["CAP_KILL", "CAP_CHOWN"]);
    let process = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [1001]},
        "args": ["/oci-checker", "--config", "/oci-checker-exec.json", "--only", "process."],
        "env": ["PATH=/bin", "OC_EXEC=yes"],
        "cwd": "/tmp",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps,
                          "inheritable": caps, "ambient": ["CAP_KILL"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 300}],
        "noNewPrivileges": true
    });
    let mut exec_cfg = c.config.clone();
    exec_cfg["process"] = process.clone();
    std::fs::write(
        c.rootfs().join("oci-checker-exec.json"),
        exec_cfg.to_string(),
    )
    .map_err(anyhow::Error::from)?;
    let pj = c.dir.join("process.json");
    std::fs::write(&pj, process.to_string()).map_err(anyhow::Error::from)?;
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    let p = pj.to_string_lossy().into_owned();
    let out = c.rt(&["exec", "--process", &p, &id])?;
    exec_tap(&out)?;
    check!(out.success(), "exec: {}", out.describe());
    Ok(())
}

/// config.md (v1.2): a capability that "cannot be mapped to a relevant kernel
/// interface ... MUST be logged as a warning by the runtime. Runtimes SHOULD
/// NOT fail"; runtime-tools' process_capabilities_fail requires an error. Both
/// are accepted: a clean refusal naming the capability and leaving nothing
/// behind, or a container that still gets the known capabilities.
fn caps_unknown(c: &mut Ctx) -> CaseResult {
    let set = json!(["CAP_KILL", "CAP_OC_NOT_A_CAPABILITY", "CAP_CHOWN"]);
    c.config["process"]["capabilities"] = json!({
        "bounding": set, "effective": set, "permitted": set
    });
    let id = c.id(1);
    let out = c.try_create(&id)?;
    if out.success() {
        let _ = c.rt(&["delete", "--force", &id]);
        return c.expect_checks(&["process.capabilities"]);
    }
    check!(
        out.stderr.contains("OC_NOT_A_CAPABILITY"),
        "create refused the config but did not name the capability: {}",
        out.stderr.trim()
    );
    check!(
        !c.root.join(&id).exists(),
        "failed create left {}",
        c.root.join(&id).display()
    );
    Ok(())
}

/// Class RT needs CAP_SYS_ADMIN: a runtime must set it before it drops the
/// capabilities (the default set lacks it).
fn io_priority_rt(c: &mut Ctx) -> CaseResult {
    c.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 2});
    c.expect_checks_optional(&["process.ioPriority"], "process.ioPriority class RT")
}

/// `linux.personality` holds for an exec'd process too: the checker run by
/// `exec` sees LINUX32.
fn exec_personality(c: &mut Ctx) -> CaseResult {
    c.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    c.set_args(&["/bin/sleep", "600"]);
    let id = c.id(1);
    let created = c.try_create(&id)?;
    if !created.success() {
        skip!("runtime refused linux.personality: {}", created.describe());
    }
    c.rt_ok(&["start", &id])?;
    let out = c.rt(&["exec", &id, "/oci-checker", "--only", "personality"])?;
    let tap = exec_tap(&out)?;
    check!(
        tap.points.iter().any(|p| p.point == Point::Ok),
        "personality check skipped in the exec'd process"
    );
    Ok(())
}

/// The TAP an exec'd checker printed: complete, with no `not ok`.
fn exec_tap(out: &crate::runner::cmd::Output) -> Result<Tap, crate::runner::Outcome> {
    let tap = Tap::parse(&out.stdout);
    check!(
        tap.complete() && !tap.points.is_empty(),
        "no TAP from the exec'd checker: {}",
        out.describe()
    );
    let fails: Vec<String> = tap
        .points
        .iter()
        .filter_map(|p| match &p.point {
            Point::NotOk(r) => Some(format!("{}: {r}", p.desc)),
            _ => None,
        })
        .collect();
    check!(fails.is_empty(), "exec'd process: {}", fails.join(" | "));
    Ok(tap)
}
