//! CLI contract beyond runtime.md: `features`, `--log --log-format json`,
//! `exec` with execCPUAffinity.

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
        name: "cli.exec-cpu-affinity",
        run: exec_affinity,
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
