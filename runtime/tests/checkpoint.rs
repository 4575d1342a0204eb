//! `checkpoint`/`restore` (issue 16 item 16) where criu cannot work: a missing criu
//! binary, or a criu that `criu check` rejects on this kernel (Debian 12's criu 3.17 on
//! Linux 6.13 and later). Both commands fail with one line naming the cause and leave
//! the container as it was. The working round trip runs in the pure cgroup v2 lane
//! (`runtime/cgroups/v2lane/`, Debian's 6.1 kernel), where criu 3.17 works.

mod common;

use common::{stderr, Fixture};
use std::process::Command;

/// A running `sleep` container `id`; returns its pid.
fn running(f: &mut Fixture, id: &str) -> i64 {
    f.args(&["/bin/sleep", "100"]);
    let bundle = f.bundle.to_str().expect("utf8").to_owned();
    let o = f.run(&["run", "-d", "--bundle", &bundle, id]);
    assert!(o.status.success(), "run -d: {}", stderr(&o));
    assert_eq!(f.status(id), "running");
    f.state(id)["pid"].as_i64().expect("pid")
}

/// The error line of a failed command: exactly one non-empty line.
fn one_line(o: &std::process::Output) -> String {
    assert!(!o.status.success(), "expected a failure");
    let e = stderr(o);
    let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one line: {e}");
    lines[0].to_owned()
}

/// Whether this host's criu passes `criu check` (then the failure cases below that
/// need a failing criu do not apply).
fn criu_works() -> Option<bool> {
    let o = Command::new("criu").arg("check").output().ok()?;
    Some(o.status.success())
}

#[test]
fn checkpoint_without_criu_names_it_and_keeps_the_container() {
    let mut f = Fixture::new();
    let pid = running(&mut f, "cpmiss");
    let img = f.dir.join("img");
    let img = img.to_str().expect("utf8");
    let o = f.run(&[
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        img,
        "cpmiss",
    ]);
    let line = one_line(&o);
    assert!(line.contains("criu not found"), "{line}");
    assert!(line.contains("/nonexistent/criu"), "{line}");
    assert_eq!(f.status("cpmiss"), "running");
    assert_eq!(f.state("cpmiss")["pid"].as_i64(), Some(pid));
    let o = f.run(&["delete", "--force", "cpmiss"]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
}

#[test]
fn checkpoint_and_restore_refuse_when_criu_check_fails() {
    match criu_works() {
        None => return eprintln!("skipped: no criu on PATH"),
        Some(true) => return eprintln!("skipped: criu check passes on this kernel"),
        Some(false) => {}
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let mut f = Fixture::new();
    let pid = running(&mut f, "cpbad");
    let img = f.dir.join("img");
    let img = img.to_str().expect("utf8");
    let o = f.run(&["checkpoint", "--image-path", img, "cpbad"]);
    let line = one_line(&o);
    assert!(
        line.contains(&format!("cannot run on kernel {}", release.trim())),
        "{line}"
    );
    assert_eq!(f.status("cpbad"), "running");
    assert_eq!(f.state("cpbad")["pid"].as_i64(), Some(pid));
    assert!(!f.dir.join("img/dump.log").exists(), "criu dump ran");

    // restore of another id from the same bundle: refused before anything is made
    let bundle = f.bundle.to_str().expect("utf8").to_owned();
    let o = f.run(&[
        "restore",
        "-d",
        "--image-path",
        img,
        "--bundle",
        &bundle,
        "rsbad",
    ]);
    let line = one_line(&o);
    assert!(line.contains("cannot run on kernel"), "{line}");
    assert!(
        !f.run(&["state", "rsbad"]).status.success(),
        "rsbad has state"
    );
    assert!(!f.root.join("rsbad").exists());
    assert!(!common::cgroup_exists("boxrun/rsbad"));
    let o = f.run(&["delete", "--force", "cpbad"]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
}

#[test]
fn checkpoint_of_a_missing_container_is_not_found() {
    let f = Fixture::new();
    let o = f.run(&["checkpoint", "nope"]);
    let line = one_line(&o);
    assert!(line.contains("nope"), "{line}");
}
