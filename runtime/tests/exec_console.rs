//! exec, pause/resume, ps, kill --all, the console socket, features.

mod common;
use common::*;
use serde_json::json;

fn start_sleeper(f: &mut Fixture, id: &str) -> i64 {
    f.args(&["/bin/sleep", "100"]);
    assert!(
        f.create(id).status.success(),
        "{}",
        std::fs::read_to_string(f.dir.join(format!("{id}.err"))).unwrap_or_default()
    );
    assert!(f.run(&["start", id]).status.success());
    f.state(id)["pid"].as_i64().unwrap()
}

#[test]
fn exec_joins_the_container() {
    let mut f = Fixture::new();
    let pid = start_sleeper(&mut f, "e");
    let o = f.run(&[
        "exec",
        "--env",
        "X=1",
        "--cwd",
        "/tmp",
        "e",
        "/bin/sh",
        "-c",
        "echo $X; pwd; hostname; readlink /proc/self/ns/mnt; exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], &["1", "/tmp", "runc"], "{out}");
    let init_mnt = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    assert_eq!(lines[3], init_mnt.to_str().unwrap());

    // --process FILE and --detach with --pid-file
    let proc_file = f.dir.join("proc.json");
    std::fs::write(&proc_file, json!({"args": ["/bin/sleep", "50"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}).to_string()).unwrap();
    let pf = f.dir.join("exec.pid");
    let o = f.run(&[
        "exec",
        "--process",
        proc_file.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pf.to_str().unwrap(),
        "e",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let epid: i32 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // born in the v2 cgroup, moved itself into the v1 ones
    assert_in_cgroup_everywhere(pid as i32, "boxrun/e");
    assert_in_cgroup_everywhere(epid, "boxrun/e");
    // ps lists both
    let o = f.run(&["ps", "--format", "json", "e"]);
    let pids: Vec<i64> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        pids.contains(&pid) && pids.contains(&(epid as i64)),
        "{pids:?}"
    );
    // a missing binary is a clear error
    let o = f.run(&["exec", "e", "/nope"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nope"), "{}", stderr(&o));
    // kill --all reaches the exec'd process too
    assert!(f.run(&["kill", "--all", "e", "KILL"]).status.success());
    f.wait_stopped("e");
}

#[test]
fn pause_and_resume() {
    let mut f = Fixture::new();
    start_sleeper(&mut f, "pr");
    assert!(f.run(&["pause", "pr"]).status.success());
    assert_eq!(f.status("pr"), "paused");
    assert!(
        !f.run(&["pause", "pr"]).status.success(),
        "pausing twice must fail"
    );
    assert!(f.run(&["resume", "pr"]).status.success());
    assert_eq!(f.status("pr"), "running");
    assert!(!f.run(&["resume", "pr"]).status.success());
}

#[test]
fn console_socket_receives_pty_master() {
    let mut f = Fixture::new();
    f.config["process"]["terminal"] = true.into();
    f.config["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    f.args(&["/bin/sh", "-c", "stty size; tty; readlink /proc/self/fd/0"]);
    let sock_path = f.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    // without a console socket, terminal=true is refused
    let o = f.create("t0");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("console-socket"), "{}", stderr(&o));
    let o = f.run(&[
        "create",
        "--bundle",
        f.bundle.to_str().unwrap(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        "t",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (conn, _) = listener.accept().unwrap();
    let (master, name) = recv_fd(&conn);
    assert!(name.starts_with("/dev/pts/"), "{name}");
    assert!(f.run(&["start", "t"]).status.success());
    let mut out = Vec::new();
    let mut file = std::fs::File::from(master);
    // read until EOF/EIO when the slave side closes
    let _ = std::io::Read::read_to_end(&mut file, &mut out);
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    assert!(text.contains("30 100"), "{text}");
    assert!(text.contains("/dev/pts/0"), "{text}");
}

#[test]
fn features_document() {
    let f = Fixture::new();
    let o = f.run(&["features"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ociVersionMin"], "1.0.0");
    assert!(v["linux"]["namespaces"].as_array().unwrap().len() >= 7);
    assert!(v["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "CAP_SYS_ADMIN"));
    assert!(v["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "createRuntime"));
}

#[test]
fn json_log_on_failure() {
    let f = Fixture::new();
    let log = f.dir.join("log.json");
    let o = f.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "start",
        "ghost",
    ]);
    assert!(!o.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("ghost"));
    assert!(last["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn systemd_cgroup_without_systemd_is_a_clear_error() {
    let f = Fixture::new();
    if std::path::Path::new("/run/systemd/system").exists() {
        return;
    }
    let o = f.run(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        f.bundle.to_str().unwrap(),
        "sd",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("systemd is not running"),
        "{}",
        stderr(&o)
    );
    assert!(!f.root.join("sd").exists());
}

#[test]
fn foreground_run_with_terminal_proxies_the_pty() {
    let mut f = Fixture::new();
    f.config["process"]["terminal"] = true.into();
    f.args(&["/bin/sh", "-c", "tty; echo hi; exit 5"]);
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "fg"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let out = stdout(&o).replace('\r', "");
    assert!(out.contains("/dev/pts/0\nhi\n"), "{out}");
    assert!(!f.root.join("fg").exists());
}

#[test]
fn exec_tty_without_console_socket_proxies_the_pty() {
    let mut f = Fixture::new();
    start_sleeper(&mut f, "xt");
    let o = f.run(&["exec", "-t", "xt", "/bin/sh", "-c", "tty; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stdout(&o).contains("/dev/pts/"), "{}", stdout(&o));
}

/// `exec --preserve-fds N` passes on what the caller handed in and nothing else: the
/// runtime's own descriptors (state lock, exec fifo) that took free numbers in the
/// range stay behind, so the process sees the same fds as without the flag (issue 22
/// item 7).
#[test]
fn exec_preserve_fds_passes_no_runtime_descriptor() {
    let mut f = Fixture::new();
    start_sleeper(&mut f, "pfd");
    let fds = |extra: &[&str]| {
        let mut c = f.cmd();
        c.arg("exec").args(extra).args([
            "pfd",
            "/bin/sh",
            "-c",
            "for fd in /proc/self/fd/*; do echo \"$fd $(readlink $fd)\"; done",
        ]);
        use std::os::unix::process::CommandExt;
        // SAFETY: close_range in the child before exec: boxrun gets stdio only.
        unsafe {
            c.pre_exec(|| {
                libc::syscall(libc::SYS_close_range, 3, u32::MAX, 0);
                Ok(())
            });
        }
        let o = run_bounded(c, &f.dir, "pfd");
        assert!(o.status.success(), "{}", stderr(&o));
        // The glob's own directory fd is gone by the time readlink runs.
        let out = stdout(&o);
        assert!(
            !out.contains(f.root.to_str().unwrap()) && !out.contains("exec.fifo"),
            "{out}"
        );
        out.lines()
            .filter(|l| !l.ends_with(' '))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let plain = fds(&[]);
    let preserved = fds(&["--preserve-fds", "40"]);
    assert_eq!(preserved, plain, "runtime fds reached the process");
}

/// `linux.personality` holds for exec'd processes too: a LINUX32 container's `exec
/// uname -m` prints i686, as with runc and youki (issue 22 item 3).
#[test]
fn exec_applies_the_containers_personality() {
    let mut f = Fixture::new();
    f.config["linux"]["personality"] = json!({"domain": "LINUX32"});
    let _ = start_sleeper(&mut f, "pers");
    let o = f.run(&["exec", "pers", "/bin/uname", "-m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "i686");
}
