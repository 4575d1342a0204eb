//! Behaviours engines rely on where boxrun must act as runc 1.1 (issue 16): `kill` of a
//! stopped container, `kill ID 0`, exec's exit status 255 for runtime failures and
//! `exec -p` without a `user`.

mod common;
use common::*;

/// A started container whose init has already exited.
fn stopped(f: &mut Fixture, id: &str) {
    f.args(&["/bin/true"]);
    assert!(f.create(id).status.success());
    let o = f.run(&["start", id]);
    assert!(o.status.success(), "{}", stderr(&o));
    f.wait_stopped(id);
}

/// A running container whose init sleeps.
fn running(f: &mut Fixture, id: &str) {
    f.args(&["/bin/sleep", "1000"]);
    let o = f.create(id);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.run(&["start", id]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn kill_all_of_a_stopped_container_succeeds() {
    let mut f = Fixture::new();
    stopped(&mut f, "ka");
    let o = f.run(&["kill", "--all", "ka", "KILL"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(f.status("ka"), "stopped");
}

#[test]
fn kill_of_a_stopped_container_says_container_not_running() {
    let mut f = Fixture::new();
    stopped(&mut f, "ks");
    for sig in ["KILL", "0"] {
        let o = f.run(&["kill", "ks", sig]);
        assert!(
            !o.status.success(),
            "kill {sig} of a stopped container succeeded"
        );
        assert!(
            stderr(&o).contains("container not running"),
            "kill {sig}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn kill_of_an_unknown_container_says_does_not_exist() {
    let f = Fixture::new();
    for args in [
        vec!["kill", "nope", "KILL"],
        vec!["kill", "--all", "nope", "KILL"],
    ] {
        let o = f.run(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&o).contains("does not exist"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn kill_signal_0_probes_liveness() {
    let mut f = Fixture::new();
    running(&mut f, "k0");
    let o = f.run(&["kill", "k0", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(f.status("k0"), "running", "signal 0 disturbed the init");
    assert!(f.run(&["kill", "k0", "KILL"]).status.success());
    f.wait_stopped("k0");
    let o = f.run(&["kill", "k0", "0"]);
    assert!(!o.status.success(), "kill 0 of a dead init succeeded");
    assert!(
        stderr(&o).contains("container not running"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn exec_runtime_failures_exit_255() {
    let mut f = Fixture::new();
    running(&mut f, "e255");
    let cases: Vec<Vec<&str>> = vec![
        vec!["exec", "e255", "/no/such/binary"],
        vec![
            "exec",
            "--pid-file",
            "/nonexistent-boxrun-dir/p",
            "e255",
            "/bin/true",
        ],
        vec!["exec", "no-such-container", "/bin/true"],
    ];
    for args in &cases {
        let o = f.run(args);
        assert_eq!(o.status.code(), Some(255), "{args:?}: {}", stderr(&o));
    }
    // The command's own exit status is passed through unchanged.
    let o = f.run(&["exec", "e255", "/bin/sh", "-c", "exit 1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = f.run(&["exec", "e255", "/bin/sh", "-c", "exit 255"]);
    assert_eq!(o.status.code(), Some(255), "{}", stderr(&o));
    let o = f.run(&["pause", "e255"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.run(&["exec", "e255", "/bin/true"]);
    let resumed = f.run(&["resume", "e255"]);
    assert_eq!(o.status.code(), Some(255), "paused: {}", stderr(&o));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
}

#[test]
fn exec_process_json_without_user_runs_as_root() {
    let mut f = Fixture::new();
    running(&mut f, "eu");
    let p = f.dir.join("process.json");
    std::fs::write(&p, r#"{"args":["/bin/id"],"cwd":"/"}"#).expect("write process.json");
    let o = f.run(&["exec", "-p", p.to_str().expect("utf-8 path"), "eu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("uid=0(root) gid=0(root)"), "{out}");
}
