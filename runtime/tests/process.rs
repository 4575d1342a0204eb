//! process.*: args, env, cwd, user, umask, capabilities, rlimits, noNewPrivileges,
//! oomScoreAdj, hostname, domainname, sysctl, preserve-fds.

mod common;
use common::*;
use serde_json::json;

static IDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Run `script` in a container. Ids are unique per test process: tests run in parallel
/// and the default cgroup path (/boxrun/<id>) is shared by every runtime root.
fn sh(f: &mut Fixture, script: &str) -> String {
    f.args(&["/bin/sh", "-c", script]);
    let id = format!(
        "p{}-{}",
        std::process::id(),
        IDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), &id]);
    assert!(o.status.success(), "{script}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn env_cwd_user_umask() {
    let mut f = Fixture::new();
    f.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
    f.config["process"]["cwd"] = "/tmp".into();
    f.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 7], "umask": 63});
    let out = sh(
        &mut f,
        "echo $FOO; pwd; id -u; id -g; id -G; umask; echo $HOME",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec!["bar baz", "/tmp", "1000", "1001", "1001 5 7", "0077", "/"],
        "{out}"
    );
}

#[test]
fn capabilities_exact() {
    let mut f = Fixture::new();
    f.config["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL", "CAP_CHOWN"],
        "inheritable": ["CAP_CHOWN"],
        "ambient": ["CAP_CHOWN"]
    });
    let out = sh(&mut f, "grep -E '^Cap' /proc/self/status");
    // after exec as root, effective = permitted = prev permitted | ambient...; the init's
    // own sets are what the spec says: check the bounding and inheritable sets exactly
    assert!(
        out.contains(&format!("CapBnd:\t{:016x}", (1u64 << 5) | 1 | (1 << 13))),
        "{out}"
    );
    assert!(out.contains(&format!("CapInh:\t{:016x}", 1u64)), "{out}");
    assert!(out.contains(&format!("CapAmb:\t{:016x}", 1u64)), "{out}");
}

#[test]
fn rlimits_nnp_oom_hostname_sysctl() {
    let mut f = Fixture::new();
    f.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}, {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}]);
    f.config["process"]["noNewPrivileges"] = true.into();
    f.config["process"]["oomScoreAdj"] = 123.into();
    f.config["hostname"] = "boxhost".into();
    f.config["domainname"] = "boxdomain".into();
    f.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"});
    let out = sh(&mut f, "ulimit -n; ulimit -Hn; grep NoNewPrivs /proc/self/status; cat /proc/self/oom_score_adj; hostname; cat /proc/sys/kernel/domainname; cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/shmmax");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "256",
            "512",
            "NoNewPrivs:\t1",
            "123",
            "boxhost",
            "boxdomain",
            "1",
            "65536"
        ],
        "{out}"
    );
}

#[test]
fn unknown_rlimit_and_capability_are_errors() {
    let mut f = Fixture::new();
    f.config["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]);
    f.save();
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "x"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("RLIMIT_BOGUS"), "{}", stderr(&o));
    f.config["process"]["rlimits"] = json!([]);
    f.config["process"]["capabilities"]["effective"] = json!(["CAP_BOGUS"]);
    f.save();
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "x"]);
    assert!(!o.status.success());
    assert!(!f.root.join("x").exists());
}

#[test]
fn preserve_fds_and_stdio_passthrough() {
    let mut f = Fixture::new();
    f.args(&["/bin/sh", "-c", "echo to-fd3 >&3; echo to-stdout"]);
    let extra = f.dir.join("fd3");
    let file = std::fs::File::create(&extra).unwrap();
    let mut c = f.cmd();
    c.args([
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        f.bundle.to_str().unwrap(),
        "fds",
    ]);
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let raw = file.as_raw_fd();
    // SAFETY: dup2 in the child before exec, onto fd 3.
    unsafe {
        c.pre_exec(move || {
            if raw != 3 && libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::fcntl(3, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let o = run_bounded(c, &f.dir, "fds");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "to-stdout\n");
    assert_eq!(std::fs::read_to_string(&extra).unwrap(), "to-fd3\n");
    // without --preserve-fds, fd 3 is closed in the container
    f.args(&["/bin/sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"]);
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "nofds"]);
    assert_eq!(
        stdout(&o).trim(),
        "0 1 2 3",
        "ls's own directory fd is 3: {}",
        stdout(&o)
    );
}

/// The container's process, an exec'd process and a hook start with no signal blocked
/// and no signal ignored beyond what boxrun's caller ignored, as under runc: the runtime
/// itself ignores SIGPIPE (Rust does), and an ignored signal stays ignored across exec
/// (`yes | head -1` would end in EPIPE instead of SIGPIPE).
#[test]
fn signals_start_blocked_by_none_and_ignored_by_none() {
    let mut f = Fixture::new();
    let hook_status = f.dir.join("hook-status");
    f.config["hooks"] = json!({"createRuntime": [{"path": "/bin/cp",
        "args": ["cp", "/proc/self/status", hook_status.to_str().unwrap()]}]});
    f.args(&["/bin/cat", "/proc/self/status"]);
    let field = |status: &str, name: &str| {
        let v = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {status}"));
        u64::from_str_radix(v.trim(), 16).unwrap()
    };
    // boxrun starts with what the test's Command hands any child (glibc's spawn leaves
    // its internal signals 32 and 33 ignored) and passes that on, as runc does; but not
    // its own SIGPIPE.
    let spawned = std::process::Command::new("/bin/cat")
        .arg("/proc/self/status")
        .output()
        .unwrap();
    let inherited = field(&String::from_utf8_lossy(&spawned.stdout), "SigIgn:");
    let sigpipe = 1u64 << (libc::SIGPIPE - 1);
    assert_eq!(inherited & sigpipe, 0);
    let check = |what: &str, status: &str| {
        assert_eq!(
            field(status, "SigBlk:"),
            0,
            "{what} starts with signals blocked"
        );
        assert_eq!(
            field(status, "SigIgn:"),
            inherited,
            "{what} starts with other signals ignored (SIGPIPE is {sigpipe:#x})"
        );
    };
    let id = format!("sig{}", std::process::id());
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    check("container process", &stdout(&o));
    check("hook", &std::fs::read_to_string(&hook_status).unwrap());

    f.config["hooks"] = json!({});
    f.args(&["/bin/sleep", "100"]);
    let o = f.create(&id);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.run(&["exec", &id, "/bin/cat", "/proc/self/status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    check("exec'd process", &stdout(&o));
    let o = f.run(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `process.ioPriority` class RT needs CAP_SYS_ADMIN (or CAP_SYS_NICE): it is applied
/// before the capabilities are dropped, to the init and to exec'd processes, so a
/// container with the default capabilities gets it (issue 22 item 4).
#[test]
fn io_priority_rt_is_applied_before_capabilities_are_dropped() {
    let mut f = Fixture::new();
    f.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 3});
    f.args(&["/bin/sleep", "100"]);
    let o = f.create("iop");
    assert!(o.status.success(), "{}", f.container_stdout("iop"));
    let ioprio = |pid: i64| {
        // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, pid) takes integers only.
        unsafe { libc::syscall(libc::SYS_ioprio_get, 1, pid as libc::c_long) }
    };
    let rt3 = (1 << 13) | 3;
    assert_eq!(ioprio(f.state("iop")["pid"].as_i64().unwrap()), rt3);
    let pf = f.dir.join("exec.pid");
    let o = f.run(&[
        "exec",
        "--detach",
        "--pid-file",
        pf.to_str().unwrap(),
        "iop",
        "/bin/sleep",
        "100",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let epid: i64 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(ioprio(epid), rt3);
}

/// `linux.memoryPolicy` is set with set_mempolicy for the init and exec'd processes
/// (numa_maps shows a process's policy on each mapping); a node that is not online is
/// refused with the field named and leaves nothing (issue 22 item 2).
#[test]
fn memory_policy_is_applied_or_refused_naming_the_field() {
    let mut f = Fixture::new();
    for (mode, shown) in [("MPOL_BIND", "bind:0"), ("MPOL_INTERLEAVE", "interleave:0")] {
        f.config["linux"]["memoryPolicy"] = json!({"mode": mode, "nodes": "0"});
        f.args(&["/bin/head", "-1", "/proc/self/numa_maps"]);
        let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "mp"]);
        assert!(o.status.success(), "{mode}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.split_whitespace().nth(1) == Some(shown),
            "{mode}: {out}"
        );
    }
    f.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    f.args(&["/bin/sleep", "100"]);
    assert!(
        f.create("mpx").status.success(),
        "{}",
        f.container_stdout("mpx")
    );
    let o = f.run(&["exec", "mpx", "/bin/head", "-1", "/proc/self/numa_maps"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).split_whitespace().nth(1), Some("bind:0"));

    // One NUMA node on most hosts: node 63 is not online.
    f.config["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "63"});
    f.args(&["/bin/true"]);
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "mpbad"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("linux.memoryPolicy"), "{}", stderr(&o));
    assert!(!f.root.join("mpbad").exists());
}
