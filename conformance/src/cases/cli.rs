//! The runc CLI contract beyond runtime.md: `features`, `--log --log-format
//! json`, `run` exit codes, `kill` without a signal, `pause`/`resume`, `ps`,
//! `list`, `update`, `exec` with execCPUAffinity.

use crate::runner::{Case, CaseResult, Ctx};
use crate::{check, skip};
use serde_json::{json, Value};

/// Cases of this area.
pub const CASES: &[Case] = &[
    Case {
        name: "cli.features",
        run: features,
    },
    Case {
        name: "cli.log-json",
        run: log_json,
    },
    Case {
        name: "cli.run-exit-code",
        run: run_exit_code,
    },
    Case {
        name: "cli.kill-default-signal",
        run: kill_default,
    },
    Case {
        name: "cli.pause-resume",
        run: pause_resume,
    },
    Case {
        name: "cli.ps-list-json",
        run: ps_list,
    },
    Case {
        name: "cli.update-resources",
        run: update,
    },
    Case {
        name: "cli.exec-cpu-affinity",
        run: exec_affinity,
    },
    Case {
        name: "cli.exec-preserve-fds",
        run: exec_preserve_fds,
    },
];

const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn features(c: &mut Ctx) -> CaseResult {
    let out = c.rt(&["features"])?;
    if !out.success() {
        let e = out.stderr.to_lowercase();
        if e.contains("unknown")
            || e.contains("no such")
            || e.contains("not supported")
            || e.contains("usage")
        {
            skip!("runtime has no `features` command: {}", out.stderr.trim());
        }
        crate::fail!("features failed: {}", out.describe());
    }
    let f: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| anyhow::anyhow!("features output is not JSON: {e}"))?;
    let mut errs = Vec::new();
    for k in ["ociVersionMin", "ociVersionMax"] {
        let ok = f[k].as_str().is_some_and(|v| {
            v.split('.').count() >= 3 && v.starts_with(|c: char| c.is_ascii_digit())
        });
        if !ok {
            errs.push(format!("{k} must be a semver string, got {}", f[k]));
        }
    }
    match strings(&f["hooks"]) {
        Some(h) => {
            let bad: Vec<&String> = h.iter().filter(|x| !HOOKS.contains(&x.as_str())).collect();
            if !bad.is_empty() {
                errs.push(format!("unknown hooks {bad:?}"));
            }
        }
        None if !f["hooks"].is_null() => errs.push("hooks must be an array of strings".into()),
        None => {}
    }
    if !f["mountOptions"].is_null() && strings(&f["mountOptions"]).is_none() {
        errs.push("mountOptions must be an array of strings".into());
    }
    let linux = &f["linux"];
    if let Some(ns) = strings(&linux["namespaces"]) {
        let bad: Vec<&String> = ns
            .iter()
            .filter(|n| !crate::procfs::NS_TYPES.contains(&n.as_str()))
            .collect();
        if !bad.is_empty() {
            errs.push(format!("unknown namespaces {bad:?}"));
        }
    } else if !linux["namespaces"].is_null() {
        errs.push("linux.namespaces must be an array of strings".into());
    }
    if let Some(caps) = strings(&linux["capabilities"]) {
        let bad: Vec<&String> = caps.iter().filter(|c| !c.starts_with("CAP_")).collect();
        if !bad.is_empty() {
            errs.push(format!("capabilities without CAP_ prefix {bad:?}"));
        }
    }
    for k in ["v1", "v2", "systemd", "systemdUser", "rdma"] {
        let v = &linux["cgroup"][k];
        if !v.is_null() && !v.is_boolean() {
            errs.push(format!("linux.cgroup.{k} must be a boolean"));
        }
    }
    let sc = &linux["seccomp"];
    if !sc.is_null() {
        if !sc["enabled"].is_null() && !sc["enabled"].is_boolean() {
            errs.push("linux.seccomp.enabled must be a boolean".into());
        }
        for k in [
            "actions",
            "operators",
            "archs",
            "knownFlags",
            "supportedFlags",
        ] {
            if !sc[k].is_null() && strings(&sc[k]).is_none() {
                errs.push(format!("linux.seccomp.{k} must be an array of strings"));
            }
        }
    }
    for k in ["apparmor", "selinux"] {
        let v = &linux[k]["enabled"];
        if !v.is_null() && !v.is_boolean() {
            errs.push(format!("linux.{k}.enabled must be a boolean"));
        }
    }
    if !f["annotations"].is_null() && !f["annotations"].is_object() {
        errs.push("annotations must be an object".into());
    }
    check!(errs.is_empty(), "{}", errs.join(" | "));
    Ok(())
}

fn log_json(c: &mut Ctx) -> CaseResult {
    let log = c.dir.join("runtime.log");
    c.global = vec![
        "--log".into(),
        log.to_string_lossy().into_owned(),
        "--log-format".into(),
        "json".into(),
    ];
    c.set_args(&["/bin/true"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.rt_ok(&["delete", &id])?;
    // A failing command must log its error.
    let out = c.rt(&["start", "oc-no-such-container"])?;
    check!(!out.success(), "start of an unknown container succeeded");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    check!(
        !text.trim().is_empty(),
        "--log {} is empty even after a failing command",
        log.display()
    );
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("log line {} is not JSON ({e}): {line:?}", i + 1))?;
        for k in ["level", "msg", "time"] {
            check!(
                v[k].is_string(),
                "log line {} has no string {k:?}: {line}",
                i + 1
            );
        }
    }
    Ok(())
}

fn exec_affinity(c: &mut Ctx) -> CaseResult {
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if ncpu < 2 {
        skip!("host has a single CPU; affinity cannot be observed");
    }
    c.set_args(&["/bin/sleep", "600"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    let proc_json = json!({
        "terminal": false, "user": {"uid": 0, "gid": 0}, "cwd": "/",
        "args": ["/bin/grep", "Cpus_allowed_list", "/proc/self/status"],
        "env": ["PATH=/bin"],
        "execCPUAffinity": {"initial": "1", "final": "0"}
    });
    let pj = c.dir.join("process.json");
    std::fs::write(&pj, proc_json.to_string()).map_err(anyhow::Error::from)?;
    let p = pj.to_string_lossy().into_owned();
    let out = c.rt_ok(&["exec", "--process", &p, &id])?;
    let got = out
        .stdout
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_string();
    check!(
        got == "0",
        "exec'd process has Cpus_allowed_list {got:?}, execCPUAffinity.final is \"0\""
    );
    Ok(())
}

fn run_exit_code(c: &mut Ctx) -> CaseResult {
    c.set_sh("exit 7");
    c.write_config()?;
    let id = c.id(1);
    c.track(&id);
    let b = c.bundle.to_string_lossy().into_owned();
    let out = c.rt(&["run", "--bundle", &b, &id])?;
    check!(
        out.status.code() == Some(7),
        "run of a process exiting 7 returned {}",
        out.describe()
    );
    Ok(())
}

fn kill_default(c: &mut Ctx) -> CaseResult {
    c.mount_out();
    let mut fifo = c.fifo("sig")?;
    c.set_sh(
        "trap 'echo TERM >&3; exit 0' TERM; exec 3>/out/sig; echo ready >&3; \
         while :; do sleep 600 & wait $!; done",
    );
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    let t = std::time::Duration::from_secs(10);
    let ready = fifo.read_line(t)?;
    check!(
        ready == "ready",
        "container wrote {ready:?} instead of ready"
    );
    c.rt_ok(&["kill", &id])?;
    let got = fifo.read_line(t)?;
    check!(
        got == "TERM",
        "kill without a signal delivered {got:?}, runc sends SIGTERM"
    );
    c.wait_stopped(&id)
        .map_err(|e| crate::runner::Outcome::Fail(format!("{e:#}")))
}

fn pause_resume(c: &mut Ctx) -> CaseResult {
    c.set_args(&["/bin/sleep", "600"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    let pid = c.pid(&id)?;
    c.rt_ok(&["pause", &id])?;
    let st = c.status(&id)?;
    check!(st == "paused", "after pause: state {st:?}, expected paused");
    let proc_state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim().chars().next().unwrap_or('?'))
        })
        .unwrap_or('?');
    // A frozen task sleeps in the freezer (D on cgroup v1, S on v2).
    check!(
        proc_state != 'R',
        "paused process is running (state {proc_state})"
    );
    c.rt_ok(&["resume", &id])?;
    let st = c.status(&id)?;
    check!(
        st == "running",
        "after resume: state {st:?}, expected running"
    );
    Ok(())
}

fn ps_list(c: &mut Ctx) -> CaseResult {
    c.set_args(&["/bin/sleep", "600"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    let pid = c.pid(&id)?;
    let out = c.rt_ok(&["ps", "--format", "json", &id])?;
    let pids: Value = serde_json::from_str(out.stdout.trim())
        .map_err(|e| anyhow::anyhow!("ps --format json is not JSON ({e}): {:?}", out.stdout))?;
    check!(
        pids.as_array().is_some_and(|a| a.contains(&json!(pid))),
        "ps --format json gave {pids}, expected it to contain {pid}"
    );
    let out = c.rt_ok(&["list", "--format", "json"])?;
    let list: Value = serde_json::from_str(out.stdout.trim())
        .map_err(|e| anyhow::anyhow!("list --format json is not JSON ({e}): {:?}", out.stdout))?;
    let entry = list
        .as_array()
        .and_then(|a| a.iter().find(|e| e["id"] == id.as_str()));
    let Some(entry) = entry else {
        crate::fail!("list --format json does not show {id}: {list}");
    };
    check!(
        entry["status"] == "running" && entry["pid"] == json!(pid),
        "list entry for {id}: {entry}"
    );
    Ok(())
}

fn update(c: &mut Ctx) -> CaseResult {
    if !std::path::Path::new("/sys/fs/cgroup/pids/pids.max").exists()
        && !std::path::Path::new("/sys/fs/cgroup/pids").is_dir()
    {
        skip!("host has no v1 pids hierarchy");
    }
    c.set_args(&["/bin/sleep", "600"]);
    let id = c.id(1);
    let cg = c.use_cgroup(&id);
    c.config["linux"]["resources"]["pids"] = json!({"limit": 50});
    c.config["linux"]["resources"]["memory"] = json!({"limit": 67108864});
    c.create(&id)?;
    c.rt_ok(&["update", "--pids-limit", "60", "--memory", "134217728", &id])?;
    let read = |ctrl: &str, f: &str| {
        std::fs::read_to_string(
            std::path::Path::new("/sys/fs/cgroup")
                .join(ctrl)
                .join(cg.trim_start_matches('/'))
                .join(f),
        )
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("<{e}>"))
    };
    let pids = read("pids", "pids.max");
    let mem = read("memory", "memory.limit_in_bytes");
    check!(
        pids == "60" && mem == "134217728",
        "after update: pids.max {pids} (want 60), memory.limit_in_bytes {mem} (want 134217728)"
    );
    Ok(())
}

/// `exec --preserve-fds N` with nothing passed in: the exec'd process must not
/// get any of the runtime's own descriptors (its state directory, exec fifo).
fn exec_preserve_fds(c: &mut Ctx) -> CaseResult {
    c.set_args(&["/bin/sleep", "600"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    let out = c.rt(&[
        "exec",
        "--preserve-fds",
        "40",
        &id,
        "/bin/sh",
        "-c",
        "for fd in /proc/self/fd/*; do echo \"${fd##*/} $(readlink $fd)\"; done",
    ])?;
    if !out.success() {
        // runc refuses fds the caller did not pass: that is an error, not a leak.
        skip!(
            "runtime refused --preserve-fds 40 without those fds: {}",
            out.describe()
        );
    }
    let root = c.root.to_string_lossy().into_owned();
    let leaked: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains(&root) || l.contains("exec.fifo"))
        .collect();
    check!(
        leaked.is_empty(),
        "runtime descriptors reached the exec'd process: {leaked:?}"
    );
    Ok(())
}
