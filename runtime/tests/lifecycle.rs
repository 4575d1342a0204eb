//! The OCI lifecycle and its MUST-error cases (runtime-spec runtime.md).

mod common;
use common::*;

#[test]
fn run_true_and_exit_codes() {
    let mut f = Fixture::new();
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "t1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    f.args(&["/bin/sh", "-c", "echo out; exit 7"]);
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "t2"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    // run removes the container when it exits
    assert!(!f.root.join("t2").exists());
}

#[test]
fn create_start_kill_delete() {
    let mut f = Fixture::new();
    f.args(&["/bin/sleep", "100"]);
    let o = f.create("c1");
    assert!(o.status.success(), "{}", stderr(&o));
    let st = f.state("c1");
    assert_eq!(st["status"], "created");
    assert!(st["pid"].as_i64().unwrap() > 0);
    assert_eq!(st["id"], "c1");
    assert_eq!(
        st["bundle"],
        f.bundle.canonicalize().unwrap().to_str().unwrap()
    );
    // the user process has not run yet: the init is still boxrun code, not sleep
    let pid = st["pid"].as_i64().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");
    let o = f.run(&["start", "c1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(f.status("c1"), "running");
    let pid = f.state("c1")["pid"].as_i64().unwrap();
    let o = f.run(&["kill", "c1", "KILL"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // kill KILL returns once the init is gone: a client's next look finds it stopped.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(") ").next().and_then(|r| r.chars().next());
    assert!(matches!(state, None | Some('Z') | Some('X')), "{stat}");
    assert_eq!(f.status("c1"), "stopped");
    let o = f.run(&["delete", "c1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!f.root.join("c1").exists());
    assert!(!cgroup_exists("boxrun/c1"));
}

#[test]
fn must_error_cases() {
    let mut f = Fixture::new();
    for args in [
        vec!["state", "nope"],
        vec!["start", "nope"],
        vec!["kill", "nope"],
        vec!["delete", "nope"],
    ] {
        let o = f.run(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains("nope"), "{args:?}: {}", stderr(&o));
    }
    // delete --force of a missing container is fine (engines rely on it)
    assert!(f.run(&["delete", "--force", "nope"]).status.success());

    f.args(&["/bin/sleep", "100"]);
    assert!(f.create("dup").status.success());
    let o = f.create("dup");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(
        f.status("dup"),
        "created",
        "failed duplicate create disturbed the first"
    );

    // delete of a created container without --force is an error
    let o = f.run(&["delete", "dup"]);
    assert!(!o.status.success());
    assert_eq!(f.status("dup"), "created");

    assert!(f.run(&["start", "dup"]).status.success());
    // start on a running container is an error
    let o = f.run(&["start", "dup"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("running"), "{}", stderr(&o));
    // delete on a running container without --force is an error and changes nothing
    let o = f.run(&["delete", "dup"]);
    assert!(!o.status.success());
    assert_eq!(f.status("dup"), "running");
    assert!(f.run(&["kill", "dup", "9"]).status.success());
    f.wait_stopped("dup");
    // kill on a stopped container is an error
    let o = f.run(&["kill", "dup", "TERM"]);
    assert!(!o.status.success());
    // start on a stopped container is an error
    assert!(!f.run(&["start", "dup"]).status.success());
    assert!(f.run(&["delete", "dup"]).status.success());
}

#[test]
fn delete_force_kills_running() {
    let mut f = Fixture::new();
    f.args(&["/bin/sleep", "100"]);
    assert!(f.create("df").status.success());
    assert!(f.run(&["start", "df"]).status.success());
    let pid = f.state("df")["pid"].as_i64().unwrap();
    let o = f.run(&["delete", "--force", "df"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!f.root.join("df").exists());
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        st.is_empty() || st.contains(") Z"),
        "process still alive: {st}"
    );
}

#[test]
fn config_changes_after_create_have_no_effect() {
    let mut f = Fixture::new();
    f.args(&["/bin/echo", "original"]);
    assert!(f.create("cc").status.success());
    f.args(&["/bin/echo", "changed"]);
    assert!(f.run(&["start", "cc"]).status.success());
    f.wait_stopped("cc");
    assert_eq!(f.container_stdout("cc"), "original\n");
}

#[test]
fn pid_file_and_list() {
    let mut f = Fixture::new();
    f.args(&["/bin/sleep", "100"]);
    let pidfile = f.dir.join("pid");
    let o = f.run(&[
        "create",
        "--bundle",
        f.bundle.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        "pf",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pid: i64 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, f.state("pf")["pid"].as_i64().unwrap());
    let o = f.run(&["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["id"], "pf");
    assert_eq!(v[0]["status"], "created");
    let o = f.run(&["list", "-q"]);
    assert_eq!(stdout(&o), "pf\n");
}

#[test]
fn bad_input_leaves_nothing() {
    let mut f = Fixture::new();
    std::fs::write(f.bundle.join("config.json"), b"{\"ociVersion\": ").unwrap();
    let o = f.run(&["create", "--bundle", f.bundle.to_str().unwrap(), "bad"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("config.json"), "{}", stderr(&o));
    assert!(!f.root.join("bad").exists());

    f.save();
    f.config["root"]["path"] = "missing-rootfs".into();
    f.save();
    let o = f.run(&["create", "--bundle", f.bundle.to_str().unwrap(), "bad"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing-rootfs"), "{}", stderr(&o));
    assert!(!f.root.join("bad").exists());

    f.config["root"]["path"] = "rootfs".into();
    f.args(&["/no/such/binary"]);
    let o = f.create("bad");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/no/such/binary"), "{}", stderr(&o));
    assert!(!f.root.join("bad").exists());
    assert!(!cgroup_exists("boxrun/bad"));

    f.args(&["/bin/true"]);
    f.config["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_NOT_A_CAP"]);
    f.save();
    let o = f.create("bad");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("CAP_NOT_A_CAP") || stderr(&o).contains("unknown"),
        "{}",
        stderr(&o)
    );
    assert!(!f.root.join("bad").exists());

    let o = f.run(&[
        "create",
        "--bundle",
        f.bundle.to_str().unwrap(),
        "../escape",
    ]);
    assert!(!o.status.success());
    assert!(!f.dir.join("escape").exists());
}
