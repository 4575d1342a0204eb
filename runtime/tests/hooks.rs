//! Hooks: order, namespaces, state on stdin, failures, timeout.

mod common;
use common::*;
use serde_json::json;

fn hook(log: &std::path::Path, name: &str) -> serde_json::Value {
    // each hook records its name, the status it was given and its mount namespace
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo \"{name} $(echo \"$s\" | grep -o '\"status\":\"[a-z]*\"') $(readlink /proc/self/ns/mnt)\" >> {}", log.display())]})
}

#[test]
fn hooks_run_in_order_with_state() {
    let mut f = Fixture::new();
    let log = f.dir.join("hooks.log");
    let mut hooks = serde_json::Map::new();
    for k in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        hooks.insert(k.into(), json!([hook(&log, k)]));
    }
    f.config["hooks"] = serde_json::Value::Object(hooks);
    f.args(&["/bin/true"]);
    // the log path must exist in the container too for startContainer (runs after pivot): bind it
    let mut mounts = f.config["mounts"].as_array().unwrap().clone();
    std::fs::write(&log, "").unwrap();
    mounts.push(json!({"destination": log, "type": "bind", "source": log, "options": ["bind"]}));
    f.config["mounts"] = json!(mounts);
    f.save();
    assert!(
        f.create("h").status.success(),
        "{}",
        std::fs::read_to_string(f.dir.join("h.err")).unwrap()
    );
    let o = f.run(&["start", "h"]);
    assert!(o.status.success(), "{}", stderr(&o));
    f.wait_stopped("h");
    assert!(f.run(&["delete", "h"]).status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    let names: Vec<&str> = lines.iter().map(|l| l[0]).collect();
    assert_eq!(
        names,
        vec![
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{text}"
    );
    let host_mnt = std::fs::read_link("/proc/self/ns/mnt")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    for l in &lines {
        let in_host = l[2] == host_mnt;
        match l[0] {
            "prestart" | "createRuntime" | "poststart" | "poststop" => {
                assert!(in_host, "{} not in runtime ns", l[0])
            }
            _ => assert!(!in_host, "{} not in container ns", l[0]),
        }
    }
    assert_eq!(lines[0][1], "\"status\":\"created\"");
    assert_eq!(lines[4][1], "\"status\":\"running\"");
    assert_eq!(lines[5][1], "\"status\":\"stopped\"");
}

#[test]
fn failing_hooks() {
    let mut f = Fixture::new();
    // a failing createRuntime hook fails create and leaves nothing; poststop still runs
    let marker = f.dir.join("poststop-ran");
    f.config["hooks"] = json!({
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo bad hook >&2; exit 3"]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]}]
    });
    f.save();
    let o = f.create("fh");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("createRuntime hook") && stderr(&o).contains("bad hook"),
        "{}",
        stderr(&o)
    );
    assert!(!f.root.join("fh").exists());
    assert!(!cgroup_exists("boxrun/fh"));

    // a failing poststart only warns
    f.config["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    f.args(&["/bin/sleep", "100"]);
    assert!(f.create("ps").status.success());
    let o = f.run(&["start", "ps"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("poststart"), "{}", stderr(&o));
    assert_eq!(f.status("ps"), "running");

    // a hook that outlives its timeout is killed and fails create
    f.config["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    f.save();
    let t = std::time::Instant::now();
    let o = f.create("to");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("timed out"), "{}", stderr(&o));
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}

/// A foreground `run` tears the container down itself: its poststop hooks run, with
/// the stopped state on stdin, and nothing is left behind.
#[test]
fn run_runs_poststop_hooks() {
    let mut f = Fixture::new();
    let out = f.dir.join("poststop-state");
    f.config["hooks"] = json!({
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}", out.display())]}]
    });
    f.args(&["/bin/true"]);
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "rp"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("poststop did not run"))
            .unwrap();
    assert_eq!(state["id"], "rp");
    assert_eq!(state["status"], "stopped");
    assert!(!f.root.join("rp").exists());
    assert!(!cgroup_exists("boxrun/rp"));
}

/// startContainer hooks run in the container with its `process.env` when they have no
/// `env` of their own (not the caller's environment), as with runc and youki; a hook's
/// own `env` still wins. Both paths: `create` + `start` and `run` (issue 22 item 6).
#[test]
fn start_container_hooks_get_the_containers_environment() {
    let mut f = Fixture::new();
    let log = f.dir.join("env.log");
    std::fs::write(&log, "").unwrap();
    let record = format!("echo \"$PATH $MARK\" >> {}", log.display());
    f.config["hooks"] = json!({"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", record]},
        {"path": "/bin/sh", "args": ["sh", "-c", record], "env": ["PATH=/bin", "MARK=own"]}
    ]});
    f.config["process"]["env"] = json!(["PATH=/bin:/container/bin", "MARK=container"]);
    let mut mounts = f.config["mounts"].as_array().unwrap().clone();
    mounts.push(json!({"destination": log, "type": "bind", "source": log, "options": ["bind"]}));
    f.config["mounts"] = json!(mounts);
    f.args(&["/bin/true"]);
    let o = f.create("hs");
    assert!(o.status.success(), "{}", f.container_stdout("hs"));
    let o = f.run(&["start", "hs"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "hr"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&log).unwrap();
    let want = "/bin:/container/bin container\n/bin own\n";
    assert_eq!(text, want.repeat(2));
}
