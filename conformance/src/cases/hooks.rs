//! config.md "POSIX-platform Hooks" and runtime.md lifecycle steps 3-13:
//! order, timing, namespace, state on stdin, failures, timeout, args/env.

use crate::runner::{Case, CaseResult, Ctx};
use crate::{check, fail};
use serde_json::{json, Value};
use std::path::Path;

/// Cases of this area.
pub const CASES: &[Case] = &[
    Case {
        name: "hooks.order-timing-namespace-state",
        run: order,
    },
    Case {
        name: "hooks.args-env",
        run: args_env,
    },
    Case {
        name: "hooks.path-resolution",
        run: path_resolution,
    },
    Case {
        name: "hooks.ignores-stdin",
        run: ignores_stdin,
    },
    Case {
        name: "hooks.fail-prestart",
        run: |c| fail_create(c, "prestart"),
    },
    Case {
        name: "hooks.fail-createRuntime",
        run: |c| fail_create(c, "createRuntime"),
    },
    Case {
        name: "hooks.fail-createContainer",
        run: |c| fail_create(c, "createContainer"),
    },
    Case {
        name: "hooks.fail-startContainer",
        run: fail_start_container,
    },
    Case {
        name: "hooks.fail-poststart",
        run: fail_poststart,
    },
    Case {
        name: "hooks.fail-poststop",
        run: fail_poststop,
    },
    Case {
        name: "hooks.timeout",
        run: timeout,
    },
    Case {
        name: "hooks.startContainer-env",
        run: start_container_env,
    },
];

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A hook that records its stdin, mount namespace and name. Runtime hooks
/// write to the host path of the output directory, container hooks to /out.
fn recorder(c: &Ctx, name: &str, in_container: bool) -> Value {
    let out = if in_container {
        "/out".to_string()
    } else {
        c.out().to_string_lossy().into_owned()
    };
    let script = format!(
        "cat > {out}/{name}.state; readlink /proc/self/ns/mnt > {out}/{name}.mnt; \
         cat /proc/1/comm > {out}/{name}.comm1 2>/dev/null; \
         pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' {out}/{name}.state); \
         [ -n \"$pid\" ] && cat /proc/$pid/comm > {out}/{name}.comm 2>/dev/null; \
         echo {name} >> {out}/hooks.log"
    );
    json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": [PATH_ENV]})
}

fn failing(name: &str) -> Value {
    // The state is read first so that only the exit status differs from a
    // well-behaved hook (see hooks.ignores-stdin for the other case).
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat >/dev/null; echo {name} failing >&2; exit 3")], "env": [PATH_ENV]})
}

fn log(c: &Ctx) -> Vec<String> {
    std::fs::read_to_string(c.out().join("hooks.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn read(c: &Ctx, f: &str) -> String {
    std::fs::read_to_string(c.out().join(f))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn all_hooks(c: &mut Ctx) {
    let mut h = serde_json::Map::new();
    for (name, inside) in [
        ("prestart", false),
        ("createRuntime", false),
        ("createContainer", false),
        ("startContainer", true),
        ("poststart", false),
        ("poststop", false),
    ] {
        h.insert(name.into(), json!([recorder(c, name, inside)]));
    }
    c.config["hooks"] = Value::Object(h);
}

fn order(c: &mut Ctx) -> CaseResult {
    c.mount_out();
    all_hooks(c);
    c.set_args(&["/bin/sleep", "600"]);
    let id = c.id(1);
    c.create(&id)?;
    let mut errs = Vec::new();
    let after_create = log(c);
    if after_create != ["prestart", "createRuntime", "createContainer"] {
        errs.push(format!("hooks run by create: expected [prestart, createRuntime, createContainer] got {after_create:?}"));
    }
    let pid = c.pid(&id)?;
    let ctr_mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    c.rt_ok(&["start", &id])?;
    let after_start = log(c);
    let want_start = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
    ];
    if after_start != want_start {
        errs.push(format!(
            "hooks after start: expected {want_start:?} got {after_start:?}"
        ));
    }
    c.rt_ok(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.rt_ok(&["delete", &id])?;
    let after_delete = log(c);
    if after_delete.last().map(String::as_str) != Some("poststop") || after_delete.len() != 6 {
        errs.push(format!(
            "hooks after delete: expected poststop last of 6 got {after_delete:?}"
        ));
    }
    let bundle = c.bundle.to_string_lossy().into_owned();
    for (name, status, inside) in [
        ("prestart", "creating", false),
        ("createRuntime", "creating", false),
        ("createContainer", "creating", true),
        ("startContainer", "created", true),
        ("poststart", "running", false),
        ("poststop", "stopped", false),
    ] {
        let text = read(c, &format!("{name}.state"));
        let st: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                errs.push(format!("{name}: stdin is not state JSON ({e}): {text:?}"));
                continue;
            }
        };
        if st["id"] != id.as_str()
            || st["bundle"] != bundle.as_str()
            || !st["ociVersion"].is_string()
        {
            errs.push(format!("{name}: state id/bundle/ociVersion wrong: {st}"));
        }
        // Steps 3-5 run inside the create operation, which runtime.md calls
        // both "being created" (creating) and "after step 2" (created).
        let status_ok =
            st["status"] == status || (status == "creating" && st["status"] == "created");
        if !status_ok {
            errs.push(format!(
                "{name}: state status expected {status} got {}",
                st["status"]
            ));
        }
        if name != "poststop" {
            // runtime.md: "For hooks executed in the container namespace, it
            // is the pid as seen by the container."
            let want_pid = if inside { json!(1) } else { json!(pid) };
            if st["pid"] != want_pid {
                errs.push(format!(
                    "{name}: state pid expected {want_pid} got {}",
                    st["pid"]
                ));
            }
        }
        let mnt = read(c, &format!("{name}.mnt"));
        if inside && mnt != ctr_mnt {
            errs.push(format!(
                "{name}: ran in mount ns {mnt}, container's is {ctr_mnt}"
            ));
        }
        // Namespace inode numbers are recycled once the container's mount
        // namespace is gone, so poststop cannot be compared this way.
        if !inside && name != "poststop" && (mnt == ctr_mnt || mnt.is_empty()) {
            errs.push(format!(
                "{name}: ran in the container mount ns {mnt}, expected the runtime's"
            ));
        }
    }
    if read(c, "startContainer.comm1") == "sleep" {
        errs.push("startContainer ran after the user program was executed".into());
    }
    let pc = read(c, "poststart.comm");
    if pc != "sleep" {
        errs.push(format!("poststart: container process is {pc:?}, expected the user program (sleep) to be executed already"));
    }
    check!(errs.is_empty(), "{}", errs.join(" | "));
    Ok(())
}

fn args_env(c: &mut Ctx) -> CaseResult {
    let out = c.out().join("argsenv");
    c.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo \"$0|$1|$OC_HOOK\" > {}", out.display()), "zero", "one"],
        "env": ["OC_HOOK=yes there"]
    }]});
    c.set_args(&["/bin/true"]);
    let id = c.id(1);
    c.create(&id)?;
    let got = std::fs::read_to_string(&out).unwrap_or_default();
    check!(
        got.trim() == "zero|one|yes there",
        "hook saw {:?}, expected \"zero|one|yes there\"",
        got.trim()
    );
    Ok(())
}

/// Container gone, not running, and the poststop hooks ran (lifecycle
/// steps 12 and 13).
fn torn_down(c: &mut Ctx, id: &str, errs: &mut Vec<String>) -> anyhow::Result<()> {
    let st = c.rt(&["state", id])?;
    if st.success() {
        let s: Value = serde_json::from_str(&st.stdout).unwrap_or(Value::Null);
        errs.push(format!(
            "container still exists with status {} (step 12: destroyed)",
            s["status"]
        ));
    }
    if !log(c).iter().any(|l| l == "poststop") {
        errs.push("poststop hooks did not run (step 13)".into());
    }
    Ok(())
}

fn fail_create(c: &mut Ctx, which: &str) -> CaseResult {
    c.mount_out();
    let mut hooks = serde_json::Map::new();
    hooks.insert(which.into(), json!([failing(which)]));
    hooks.insert("poststop".into(), json!([recorder(c, "poststop", false)]));
    c.config["hooks"] = Value::Object(hooks);
    c.set_args(&["/bin/sleep", "600"]);
    let id = c.id(1);
    let out = c.try_create(&id)?;
    check!(
        !out.success(),
        "create succeeded although a {which} hook failed"
    );
    let mut errs = Vec::new();
    torn_down(c, &id, &mut errs)?;
    check!(errs.is_empty(), "{}", errs.join(" | "));
    Ok(())
}

fn fail_start_container(c: &mut Ctx) -> CaseResult {
    c.mount_out();
    c.config["hooks"] = json!({
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}],
        "poststop": [recorder(c, "poststop", false)]
    });
    c.set_sh("echo ran > /out/ran; exec sleep 600");
    let id = c.id(1);
    c.create(&id)?;
    let out = c.rt(&["start", &id])?;
    check!(
        !out.success(),
        "start succeeded although a startContainer hook failed"
    );
    let mut errs = Vec::new();
    if Path::new(&c.out().join("ran")).exists() {
        errs.push("the user program ran although startContainer failed".into());
    }
    torn_down(c, &id, &mut errs)?;
    check!(errs.is_empty(), "{}", errs.join(" | "));
    Ok(())
}

fn fail_poststart(c: &mut Ctx) -> CaseResult {
    // runtime-spec v1.2 (the version this project targets; runtime-tools'
    // poststart_fail checks the same): "If any poststart hook fails, the runtime
    // MUST log a warning, but the remaining hooks and lifecycle continue as if the
    // hook had succeeded." (v1.3.0 turned this into an error.)
    c.mount_out();
    c.config["hooks"] = json!({
        "poststart": [failing("poststart"), recorder(c, "poststart", false)],
        "poststop": [recorder(c, "poststop", false)]
    });
    c.set_args(&["/bin/sleep", "600"]);
    let id = c.id(1);
    c.create(&id)?;
    let out = c.rt(&["start", &id])?;
    let mut errs: Vec<String> = Vec::new();
    if !out.success() {
        errs.push(
            "start failed because of a failing poststart hook (v1.2: warn and continue)".into(),
        );
    }
    if read(c, "poststart.state").is_empty() {
        errs.push("the poststart hook after the failing one did not run".into());
    }
    check!(errs.is_empty(), "{}", errs.join(" | "));
    Ok(())
}

fn fail_poststop(c: &mut Ctx) -> CaseResult {
    c.mount_out();
    c.config["hooks"] = json!({
        "poststop": [failing("poststop"), recorder(c, "poststop", false)]
    });
    c.set_args(&["/bin/true"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    c.wait_stopped(&id)?;
    let out = c.rt(&["delete", &id])?;
    let mut errs = Vec::new();
    if !out.success() {
        errs.push(format!(
            "delete failed because a poststop hook failed: {}",
            out.describe()
        ));
    }
    if !log(c).iter().any(|l| l == "poststop") {
        errs.push("the poststop hook after the failing one did not run".into());
    }
    if c.rt(&["state", &id])?.success() {
        errs.push("container still exists after delete".into());
    }
    check!(errs.is_empty(), "{}", errs.join(" | "));
    Ok(())
}

fn timeout(c: &mut Ctx) -> CaseResult {
    c.config["hooks"] = json!({"createRuntime": [{
        "path": "/bin/sh", "args": ["sh", "-c", "exec sleep 60"], "env": [PATH_ENV], "timeout": 1
    }]});
    c.set_args(&["/bin/true"]);
    let id = c.id(1);
    let out = c.try_create(&id)?;
    if out.success() {
        fail!(
            "create succeeded although the createRuntime hook outlived its 1s timeout ({:?})",
            out.elapsed
        );
    }
    check!(
        out.elapsed.as_secs() < 20,
        "create took {:?}: the 1s hook timeout was not enforced",
        out.elapsed
    );
    Ok(())
}

/// createRuntime paths resolve in the runtime namespace and startContainer
/// paths in the container: each hook program exists only on its own side.
fn path_resolution(c: &mut Ctx) -> CaseResult {
    use std::os::unix::fs::PermissionsExt;
    c.mount_out();
    let host_script = c.dir.join("oc-host-only-hook");
    let out = c.out();
    std::fs::write(
        &host_script,
        format!(
            "#!/bin/sh\necho createRuntime >> {}/hooks.log\n",
            out.display()
        ),
    )
    .map_err(anyhow::Error::from)?;
    let ctr_script = c.rootfs().join("oc-container-only-hook");
    std::fs::write(
        &ctr_script,
        "#!/bin/sh\necho startContainer >> /out/hooks.log\n",
    )
    .map_err(anyhow::Error::from)?;
    for p in [&host_script, &ctr_script] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
            .map_err(anyhow::Error::from)?;
    }
    c.config["hooks"] = json!({
        "createRuntime": [{"path": host_script.to_string_lossy()}],
        "startContainer": [{"path": "/oc-container-only-hook"}]
    });
    c.set_args(&["/bin/sleep", "600"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    let got = log(c);
    check!(
        got == ["createRuntime", "startContainer"],
        "expected both hooks to run from their own namespace, log is {got:?}"
    );
    Ok(())
}

/// A hook that exits 0 without reading its stdin succeeded; the runtime must
/// not die of SIGPIPE/EPIPE while writing a large state (big annotations
/// overflow the pipe buffer) and must run the next hook.
fn ignores_stdin(c: &mut Ctx) -> CaseResult {
    c.mount_out();
    let big = "x".repeat(200 * 1024);
    c.config["annotations"] = json!({"org.example.oc/big": big});
    c.config["hooks"] = json!({
        "createRuntime": [{"path": "/bin/true"}, recorder(c, "createRuntime", false)],
        "poststop": [{"path": "/bin/true"}, recorder(c, "poststop", false)]
    });
    c.set_args(&["/bin/true"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.rt_ok(&["delete", &id])?;
    let got = log(c);
    check!(
        got == ["createRuntime", "poststop"],
        "hooks after one that ignored its stdin: expected [createRuntime, poststop] got {got:?}"
    );
    Ok(())
}

/// A startContainer hook without `env` runs with the container's
/// `process.env` (it runs in the container, as runc and youki run it), not
/// the runtime caller's environment.
fn start_container_env(c: &mut Ctx) -> CaseResult {
    c.mount_out();
    c.config["process"]["env"] = json!([PATH_ENV, "OC_MARK=container-env"]);
    c.config["hooks"] = json!({"startContainer": [{"path": "/bin/sh",
        "args": ["sh", "-c", "echo \"$OC_MARK\" > /out/hook-env"]}]});
    c.set_args(&["/bin/true"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    c.wait_stopped(&id)?;
    let got = std::fs::read_to_string(c.out().join("hook-env")).unwrap_or_default();
    check!(
        got.trim() == "container-env",
        "startContainer hook saw OC_MARK={:?}, process.env has container-env",
        got.trim()
    );
    Ok(())
}
