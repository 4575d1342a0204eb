//! boxrun rootless: the test (root) runs boxrun as the unprivileged uid/gid 65534
//! (`setpriv --reuid --regid --clear-groups`) on a bundle written by that user with
//! `boxrun spec --rootless`, with a state root the user owns under the fixture's temp
//! dir. Cleanup (kill, delete, temp dirs) is the fixture's drop, as root, also when a
//! test fails.

mod common;
use common::*;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

/// The unprivileged user and group the tests run boxrun as (`nobody`/`nogroup`).
const USER: u32 = 65534;

/// A fixture whose directory (bundle, rootfs, state root) belongs to [`USER`] and whose
/// config.json is `boxrun spec --rootless` as that user wrote it.
struct Rootless {
    f: Fixture,
}

/// `cmd` run as [`USER`], without supplementary groups or capabilities.
fn as_user(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={USER}"))
        .arg(format!("--regid={USER}"))
        .args(["--clear-groups", "--"])
        .arg(program);
    c
}

impl Rootless {
    fn new() -> Rootless {
        let mut f = Fixture::new();
        std::fs::create_dir_all(&f.root).expect("mkdir state root");
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{USER}:{USER}"))
            .arg(&f.dir)
            .status()
            .expect("chown");
        assert!(st.success(), "chown the fixture to {USER}");
        std::fs::remove_file(f.bundle.join("config.json")).expect("rm config.json");
        let mut spec = as_user(Path::new(boxrun()));
        spec.args(["spec", "--rootless", "--bundle"]).arg(&f.bundle);
        let o = run_bounded(spec, &f.dir, "spec");
        assert!(o.status.success(), "spec --rootless: {}", stderr(&o));
        f.config = serde_json::from_slice(
            &std::fs::read(f.bundle.join("config.json")).expect("read config"),
        )
        .expect("json");
        assert_eq!(
            f.config["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": USER, "size": 1}]),
            "spec --rootless maps root to the user who ran it"
        );
        f.config["process"]["terminal"] = false.into();
        f.args(&["/bin/true"]);
        Rootless { f }
    }

    /// boxrun as [`USER`] with the fixture's state root.
    fn cmd(&self) -> Command {
        let mut c = as_user(Path::new(boxrun()));
        c.arg("--root").arg(&self.f.root);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        run_bounded(c, &self.f.dir, "cmd")
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(o.status.success(), "boxrun {args:?}: {}", stderr(&o));
        o
    }

    fn bundle(&self) -> &str {
        self.f.bundle.to_str().expect("utf-8 bundle path")
    }

    /// Create and start `/bin/sleep 100` as `id`; returns the init's host pid.
    fn start_sleeper(&mut self, id: &str) -> i32 {
        self.f.args(&["/bin/sleep", "100"]);
        self.ok(&["create", "--bundle", self.bundle(), id]);
        assert_eq!(self.f.status(id), "created");
        self.ok(&["start", id]);
        assert_eq!(self.f.status(id), "running");
        self.f.state(id)["pid"].as_i64().expect("pid") as i32
    }
}

/// The real uid of `pid` on the host.
fn host_uid(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("Uid line")
}

/// `uid_map`/`gid_map` text as its fields.
fn fields(map: &str) -> Vec<&str> {
    map.split_whitespace().collect()
}

/// The output of `id -u; cat /proc/self/uid_map` in a rootless container: root, mapped
/// to [`USER`] alone.
fn assert_root_mapped_to_user(out: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first().copied(), Some("0"), "{out}");
    assert_eq!(
        lines.get(1).map(|l| fields(l)),
        Some(vec!["0", "65534", "1"]),
        "{out}"
    );
}

#[test]
fn rootless_run_is_root_inside_mapped_to_the_user() {
    let mut r = Rootless::new();
    r.f.args(&[
        "/bin/sh",
        "-c",
        "id; cat /proc/self/uid_map; cat /proc/self/gid_map; cat /proc/self/setgroups",
    ]);
    let o = r.ok(&["run", "--bundle", r.bundle(), "r1"]);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("uid=0(root) gid=0(root)"), "{out}");
    assert_eq!(fields(lines[1]), ["0", "65534", "1"], "uid_map: {out}");
    assert_eq!(fields(lines[2]), ["0", "65534", "1"], "gid_map: {out}");
    assert_eq!(lines[3], "deny", "setgroups: {out}");
    assert!(!r.f.root.join("r1").exists(), "run removes its state");
}

#[test]
fn rootless_create_start_kill_delete() {
    let mut r = Rootless::new();
    let pid = r.start_sleeper("c1");
    assert_eq!(host_uid(pid), USER, "the init runs as the user on the host");
    let rec = std::fs::read_dir(r.f.root.join("c1")).expect("state dir under --root");
    assert!(rec.count() > 0);
    r.ok(&["kill", "c1", "KILL"]);
    r.f.wait_stopped("c1");
    r.ok(&["delete", "c1"]);
    assert!(!r.f.root.join("c1").exists(), "delete removes the state");
    let o = r.run(&["state", "c1"]);
    assert!(!o.status.success(), "state after delete");
}

#[test]
fn rootless_exec_and_ps() {
    let mut r = Rootless::new();
    let pid = r.start_sleeper("e1");
    let o = r.ok(&[
        "exec",
        "e1",
        "/bin/sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    assert_root_mapped_to_user(&stdout(&o));
    let pf = r.f.dir.join("exec.pid");
    r.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pf.to_str().expect("utf-8"),
        "e1",
        "/bin/sleep",
        "50",
    ]);
    let epid: i64 = std::fs::read_to_string(&pf)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let o = r.ok(&["ps", "--format", "json", "e1"]);
    let pids: Vec<i64> = serde_json::from_slice(&o.stdout).expect("ps json");
    assert!(
        pids.contains(&i64::from(pid)) && pids.contains(&epid),
        "ps lists the init {pid} and the exec'd {epid}: {pids:?}"
    );
    let o = r.ok(&["ps", "e1"]);
    assert!(stdout(&o).contains("sleep"), "{}", stdout(&o));
    r.ok(&["kill", "--all", "e1", "KILL"]);
    r.f.wait_stopped("e1");
    wait_pid_exit(epid as i32, std::time::Duration::from_secs(10));
    assert!(
        !Path::new(&format!("/proc/{epid}")).exists()
            || std::fs::read_to_string(format!("/proc/{epid}/stat"))
                .is_ok_and(|s| s.contains(") Z")),
        "kill --all reached the exec'd process"
    );
    r.ok(&["delete", "e1"]);
}

#[test]
fn rootless_console_socket_receives_the_pty_master() {
    let mut r = Rootless::new();
    r.f.config["process"]["terminal"] = true.into();
    r.f.args(&["/bin/sh", "-c", "tty; id -u"]);
    let sock = r.f.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .expect("chmod socket");
    r.ok(&[
        "create",
        "--bundle",
        r.bundle(),
        "--console-socket",
        sock.to_str().expect("utf-8"),
        "t1",
    ]);
    let (conn, _) = listener.accept().expect("accept");
    let (master, name) = recv_fd(&conn);
    assert!(name.starts_with("/dev/pts/"), "{name}");
    r.ok(&["start", "t1"]);
    let mut out = Vec::new();
    // Read until EIO once the slave side closes.
    let _ = std::io::Read::read_to_end(&mut std::fs::File::from(master), &mut out);
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    assert!(text.contains("/dev/pts/0\n0\n"), "{text}");
    r.f.wait_stopped("t1");
    r.ok(&["delete", "t1"]);
}

#[test]
fn rootless_limit_without_a_writable_cgroup_is_refused_naming_the_field() {
    let mut r = Rootless::new();
    r.f.config["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}});
    r.f.save();
    let o = r.run(&["run", "--bundle", r.bundle(), "l1"]);
    assert!(
        !o.status.success(),
        "a limit without a usable cgroup must fail"
    );
    let e = stderr(&o);
    assert!(
        e.contains("linux.resources.memory") && e.contains("not writable"),
        "{e}"
    );
    assert!(!r.f.root.join("l1").exists(), "nothing left behind");
    // The same bundle without the limit runs.
    r.f.config["linux"]["resources"] = json!({"pids": {"limit": 0}});
    r.f.save();
    r.ok(&["run", "--bundle", r.bundle(), "l2"]);
}

#[test]
fn rootless_state_root_defaults_to_xdg_runtime_dir() {
    let mut r = Rootless::new();
    let xdg = r.f.dir.join("xdg");
    std::fs::create_dir(&xdg).expect("mkdir xdg");
    std::os::unix::fs::chown(&xdg, Some(USER), Some(USER)).expect("chown xdg");
    r.f.args(&["/bin/sleep", "100"]);
    let run = |args: &[&str]| {
        let mut c = as_user(Path::new(boxrun()));
        c.env("XDG_RUNTIME_DIR", &xdg).args(args);
        run_bounded(c, &r.f.dir, "cmd")
    };
    let o = run(&["create", "--bundle", r.bundle(), "x1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let state = xdg.join("boxrun/x1");
    assert!(state.is_dir(), "state in $XDG_RUNTIME_DIR/boxrun");
    assert!(!Path::new("/run/boxrun/x1").exists());
    let o = run(&["delete", "--force", "x1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!state.exists());
}

#[test]
fn runc_rootless_spec_runs_too() {
    let runc = Path::new("/usr/sbin/runc");
    if !runc.exists() {
        eprintln!("skipped: no runc to write the spec");
        return;
    }
    let mut r = Rootless::new();
    std::fs::remove_file(r.f.bundle.join("config.json")).expect("rm config.json");
    let mut spec = as_user(runc);
    spec.current_dir(&r.f.bundle).args(["spec", "--rootless"]);
    let o = run_bounded(spec, &r.f.dir, "runc-spec");
    assert!(o.status.success(), "runc spec --rootless: {}", stderr(&o));
    r.f.config = serde_json::from_slice(
        &std::fs::read(r.f.bundle.join("config.json")).expect("read config"),
    )
    .expect("json");
    r.f.config["process"]["terminal"] = false.into();
    r.f.args(&["/bin/sh", "-c", "id -u; cat /proc/self/uid_map"]);
    let o = r.ok(&["run", "--bundle", r.bundle(), "rc1"]);
    assert_root_mapped_to_user(&stdout(&o));
}
