//! runtime.md: state, lifecycle and the MUST-error cases of each operation.

use crate::runner::{Case, CaseResult, Ctx};
use crate::{check, fail};
use serde_json::json;
use std::time::Duration;

/// Cases of this area.
pub const CASES: &[Case] = &[
    Case {
        name: "lifecycle.state-transitions",
        run: transitions,
    },
    Case {
        name: "lifecycle.process-exits-stopped",
        run: exits_stopped,
    },
    Case {
        name: "lifecycle.config-change-after-create",
        run: config_change,
    },
    Case {
        name: "lifecycle.duplicate-id",
        run: duplicate_id,
    },
    Case {
        name: "lifecycle.invalid-id",
        run: invalid_id,
    },
    Case {
        name: "lifecycle.unknown-id",
        run: unknown_id,
    },
    Case {
        name: "lifecycle.create-error-leaves-nothing",
        run: create_error,
    },
    Case {
        name: "lifecycle.start-running",
        run: start_running,
    },
    Case {
        name: "lifecycle.start-stopped",
        run: start_stopped,
    },
    Case {
        name: "lifecycle.kill-created",
        run: kill_created,
    },
    Case {
        name: "lifecycle.kill-stopped",
        run: kill_stopped,
    },
    Case {
        name: "lifecycle.kill-signal-names",
        run: kill_signals,
    },
    Case {
        name: "lifecycle.delete-created",
        run: delete_created,
    },
    Case {
        name: "lifecycle.delete-running",
        run: delete_running,
    },
    Case {
        name: "lifecycle.delete-force",
        run: delete_force,
    },
    Case {
        name: "lifecycle.delete-keeps-foreign",
        run: delete_keeps_foreign,
    },
    Case {
        name: "lifecycle.annotations",
        run: annotations,
    },
    Case {
        name: "lifecycle.pid-file",
        run: pid_file,
    },
];

fn sleeper(c: &mut Ctx) {
    c.set_args(&["/bin/sleep", "600"]);
}

/// Run `args`; fail the case if it succeeded.
fn expect_error(c: &mut Ctx, args: &[&str]) -> CaseResult {
    let out = c.rt(args)?;
    if out.success() {
        fail!("`{}` succeeded, the spec requires an error", args.join(" "));
    }
    Ok(())
}

/// The container still has this status and pid.
fn unchanged(c: &mut Ctx, id: &str, status: &str, pid: Option<i64>) -> CaseResult {
    let s = c.state(id)?;
    check!(
        s["status"] == status,
        "container changed: expected status {status} got {}",
        s["status"]
    );
    if let Some(p) = pid {
        check!(
            s["pid"] == json!(p),
            "container changed: expected pid {p} got {}",
            s["pid"]
        );
    }
    Ok(())
}

fn gone(c: &mut Ctx, id: &str) -> CaseResult {
    let out = c.rt(&["state", id])?;
    check!(
        !out.success(),
        "state {id} still succeeds: {}",
        out.stdout.trim()
    );
    Ok(())
}

fn transitions(c: &mut Ctx) -> CaseResult {
    c.mount_out();
    c.set_sh("echo started > /out/started; exec sleep 600");
    let id = c.id(1);
    c.create(&id)?;
    let s = c.state(&id)?;
    let bundle = c.bundle.to_string_lossy().into_owned();
    check!(s["ociVersion"].is_string(), "state has no ociVersion: {s}");
    check!(
        s["id"] == id.as_str(),
        "state id: expected {id} got {}",
        s["id"]
    );
    check!(
        s["status"] == "created",
        "after create: expected created got {}",
        s["status"]
    );
    check!(
        s["pid"].as_i64().is_some_and(|p| p > 0),
        "created state needs pid > 0: {s}"
    );
    check!(
        s["bundle"] == bundle.as_str(),
        "state bundle: expected {bundle} got {}",
        s["bundle"]
    );
    check!(
        !c.out().join("started").exists(),
        "user process ran before start"
    );
    let pid = s["pid"].as_i64();
    c.rt_ok(&["start", &id])?;
    let s = c.state(&id)?;
    check!(
        s["status"] == "running",
        "after start: expected running got {}",
        s["status"]
    );
    check!(
        s["pid"].as_i64() == pid,
        "pid changed across start: {pid:?} -> {}",
        s["pid"]
    );
    c.rt_ok(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    c.rt_ok(&["delete", &id])?;
    gone(c, &id)?;
    check!(
        !c.root.join(&id).exists(),
        "{} left behind after delete",
        c.root.join(&id).display()
    );
    Ok(())
}

fn exits_stopped(c: &mut Ctx) -> CaseResult {
    c.set_args(&["/bin/true"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.rt_ok(&["delete", &id])?;
    gone(c, &id)
}

fn config_change(c: &mut Ctx) -> CaseResult {
    c.mount_out();
    c.set_sh("echo original > /out/which");
    let id = c.id(1);
    c.create(&id)?;
    c.set_sh("echo changed > /out/which");
    c.config["hostname"] = json!("changed");
    std::fs::write(
        c.bundle.join("config.json"),
        serde_json::to_string(&c.config).map_err(anyhow::Error::from)?,
    )
    .map_err(anyhow::Error::from)?;
    c.rt_ok(&["start", &id])?;
    c.wait_stopped(&id)?;
    let got = std::fs::read_to_string(c.out().join("which")).unwrap_or_default();
    check!(
        got.trim() == "original",
        "process after config.json edit wrote {:?}, expected \"original\"",
        got.trim()
    );
    Ok(())
}

fn duplicate_id(c: &mut Ctx) -> CaseResult {
    sleeper(c);
    let id = c.id(1);
    c.create(&id)?;
    let pid = c.state(&id)?["pid"].as_i64();
    let b = c.bundle.to_string_lossy().into_owned();
    expect_error(c, &["create", "--bundle", &b, &id])?;
    unchanged(c, &id, "created", pid)
}

fn invalid_id(c: &mut Ctx) -> CaseResult {
    sleeper(c);
    c.write_config()?;
    let b = c.bundle.to_string_lossy().into_owned();
    for bad in ["../oc-escape", "oc/slash", ""] {
        let out = c.rt(&["create", "--bundle", &b, bad])?;
        if out.success() {
            c.track(bad);
            fail!("create with id {bad:?} succeeded");
        }
    }
    let left: Vec<String> = std::fs::read_dir(&c.root)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    check!(
        left.is_empty(),
        "invalid ids left entries in --root: {left:?}"
    );
    check!(
        !c.dir.join("oc-escape").exists(),
        "id ../oc-escape escaped the state directory"
    );
    Ok(())
}

fn unknown_id(c: &mut Ctx) -> CaseResult {
    let id = "oc-no-such-container";
    for op in [
        vec!["state", id],
        vec!["start", id],
        vec!["kill", id, "KILL"],
        vec!["delete", id],
    ] {
        expect_error(c, &op)?;
    }
    Ok(())
}

fn create_error(c: &mut Ctx) -> CaseResult {
    let id = c.id(1);
    let cg = c.use_cgroup(&id);
    c.config["root"]["path"] = json!("no-such-rootfs");
    let out = c.try_create(&id)?;
    check!(!out.success(), "create with a missing rootfs succeeded");
    gone(c, &id)?;
    check!(
        !c.root.join(&id).exists(),
        "failed create left {}",
        c.root.join(&id).display()
    );
    let left = super::cgroup_left(&cg, &["memory", "pids", "cpu", "devices", "freezer"]);
    check!(
        left.is_empty(),
        "failed create left cgroup {cg} in {left:?}"
    );
    Ok(())
}

fn start_running(c: &mut Ctx) -> CaseResult {
    sleeper(c);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    let pid = c.state(&id)?["pid"].as_i64();
    expect_error(c, &["start", &id])?;
    unchanged(c, &id, "running", pid)
}

fn start_stopped(c: &mut Ctx) -> CaseResult {
    c.set_args(&["/bin/true"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    c.wait_stopped(&id)?;
    expect_error(c, &["start", &id])?;
    unchanged(c, &id, "stopped", None)
}

fn kill_created(c: &mut Ctx) -> CaseResult {
    sleeper(c);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["kill", &id, "KILL"])?;
    c.wait_stopped(&id)?;
    Ok(())
}

fn kill_stopped(c: &mut Ctx) -> CaseResult {
    c.set_args(&["/bin/true"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    c.wait_stopped(&id)?;
    expect_error(c, &["kill", &id, "KILL"])?;
    unchanged(c, &id, "stopped", None)
}

fn kill_signals(c: &mut Ctx) -> CaseResult {
    c.mount_out();
    let mut fifo = c.fifo("sig")?;
    c.set_sh(
        "trap 'echo USR1 >&3' USR1; trap 'echo USR2 >&3' USR2; trap 'echo HUP >&3' HUP; \
         trap 'echo TERM >&3; exit 0' TERM; exec 3>/out/sig; echo ready >&3; \
         while :; do sleep 600 & wait $!; done",
    );
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    let t = Duration::from_secs(10);
    let ready = fifo.read_line(t)?;
    check!(
        ready == "ready",
        "container wrote {ready:?} instead of ready"
    );
    for (sig, want) in [
        ("SIGUSR1", "USR1"),
        ("USR2", "USR2"),
        ("1", "HUP"),
        ("15", "TERM"),
    ] {
        c.rt_ok(&["kill", &id, sig])?;
        let got = fifo
            .read_line(t)
            .map_err(|e| anyhow::anyhow!("after kill {sig}: {e:#}"))?;
        check!(
            got == want,
            "kill {sig}: container saw {got:?}, expected {want}"
        );
    }
    c.wait_stopped(&id)?;
    Ok(())
}

fn delete_created(c: &mut Ctx) -> CaseResult {
    sleeper(c);
    let id = c.id(1);
    c.create(&id)?;
    let pid = c.state(&id)?["pid"].as_i64();
    expect_error(c, &["delete", &id])?;
    unchanged(c, &id, "created", pid)
}

fn delete_running(c: &mut Ctx) -> CaseResult {
    sleeper(c);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    let pid = c.state(&id)?["pid"].as_i64();
    expect_error(c, &["delete", &id])?;
    unchanged(c, &id, "running", pid)
}

fn delete_force(c: &mut Ctx) -> CaseResult {
    sleeper(c);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    let pid = c.pid(&id)?;
    c.rt_ok(&["delete", "--force", &id])?;
    gone(c, &id)?;
    let exited = crate::runner::cmd::wait_pid_exit(pid, Duration::from_secs(10))?;
    check!(
        exited,
        "container process {pid} still alive after delete --force"
    );
    Ok(())
}

fn delete_keeps_foreign(c: &mut Ctx) -> CaseResult {
    c.set_args(&["/bin/true"]);
    let foreign_root = c.root.join("oc-foreign-file");
    let foreign_bundle = c.bundle.join("oc-foreign-file");
    std::fs::write(&foreign_root, b"keep").map_err(anyhow::Error::from)?;
    std::fs::write(&foreign_bundle, b"keep").map_err(anyhow::Error::from)?;
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    c.wait_stopped(&id)?;
    c.rt_ok(&["delete", &id])?;
    for p in [
        foreign_root,
        foreign_bundle,
        c.bundle.join("config.json"),
        c.bundle.join("rootfs/bin/busybox"),
    ] {
        check!(
            p.exists(),
            "delete removed {}, which create did not make",
            p.display()
        );
    }
    Ok(())
}

fn annotations(c: &mut Ctx) -> CaseResult {
    sleeper(c);
    let ann = json!({"org.example.oc/one": "1", "org.example.oc/two": "two words"});
    c.config["annotations"] = ann.clone();
    let id = c.id(1);
    c.create(&id)?;
    let s = c.state(&id)?;
    check!(
        s["annotations"] == ann,
        "state annotations: expected {ann} got {}",
        s["annotations"]
    );
    Ok(())
}

fn pid_file(c: &mut Ctx) -> CaseResult {
    sleeper(c);
    let id = c.id(1);
    c.write_config()?;
    c.track(&id);
    let pf = c.dir.join("pidfile");
    let b = c.bundle.to_string_lossy().into_owned();
    let p = pf.to_string_lossy().into_owned();
    c.rt_ok(&["create", "--bundle", &b, "--pid-file", &p, &id])?;
    let pid = c.pid(&id)?;
    let text =
        std::fs::read_to_string(&pf).map_err(|e| anyhow::anyhow!("read --pid-file {p}: {e}"))?;
    check!(
        text.trim() == pid.to_string(),
        "--pid-file holds {:?}, state pid is {pid}",
        text
    );
    Ok(())
}
