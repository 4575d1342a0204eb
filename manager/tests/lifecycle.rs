//! End-to-end tests of boxctl against a real OCI runtime (root required).

mod common;

use std::time::Instant;

use common::{wait_pid, Env, NetGuard};

fn id_of(env: &Env, name: &str) -> String {
    env.inspect(name)["id"].as_str().unwrap().to_string()
}

#[test]
fn full_life_of_an_instance() {
    let env = Env::new("life");
    let id = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "bb",
            "sh",
            "-c",
            "echo hello-from-box; exec sleep 1000",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 12);

    // ps shows it running with an uptime, and the instance file says so too.
    let ps = env.ok(&["ps"]);
    assert!(ps.contains("web") && ps.contains("Up "), "{ps}");
    let all = env.ps_all();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["status"], "running");
    assert_eq!(all[0]["image"], "bb");
    assert!(all[0]["uptime_seconds"].as_i64().unwrap() >= 0);
    let file = std::fs::read_to_string(env.root.join("instances.toml")).unwrap();
    assert!(
        file.contains(&format!("[{id}]")) && file.contains("status = \"running\""),
        "{file}"
    );

    // logs, exec, stats
    let logs = env.wait_logs("web", "hello-from-box", 30);
    assert_eq!(logs.trim(), "hello-from-box");
    assert_eq!(env.ok(&["exec", "web", "hostname"]).trim(), "web");
    let out = env.boxctl(&["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let stats: serde_json::Value =
        serde_json::from_str(&env.ok(&["stats", "--json", "web"])).unwrap();
    assert!(stats[0]["pids"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats[0]["memory_usage"].as_u64().unwrap() > 0, "{stats}");

    // A file written inside survives stop/start; the disk is kept while stopped.
    env.ok(&["exec", "web", "sh", "-c", "echo kept > /data.txt && sync"]);
    env.ok(&["stop", "-t", "1", "web"]);
    let i = env.inspect("web");
    assert_eq!(i["status"], "exited");
    assert_eq!(i["mounted"], false);
    assert!(std::path::Path::new(i["disk"].as_str().unwrap()).exists());
    assert!(
        env.ok(&["ps"]).lines().count() == 1,
        "stopped instance listed by plain ps"
    );
    env.assert_no_leaks(std::slice::from_ref(&id));
    env.ok(&["start", "web"]);
    assert_eq!(env.ok(&["exec", "web", "cat", "/data.txt"]).trim(), "kept");
    assert_eq!(env.inspect("web")["limits"], serde_json::Value::Null);

    // rm refuses a running instance, rm -f removes everything.
    let err = env.fails(&["rm", "web"]);
    assert!(err.contains("running"), "{err}");
    env.ok(&["restart", "-t", "1", "web"]);
    assert_eq!(env.inspect("web")["status"], "running");
    env.ok(&["rm", "-f", "web"]);
    assert!(env.ps_all().is_empty());
    assert!(env.instance_dirs().is_empty(), "{:?}", env.instance_dirs());
    let file = std::fs::read_to_string(env.root.join("instances.toml")).unwrap();
    assert!(!file.contains(&id), "{file}");
    env.assert_no_leaks(&[id]);
}

#[test]
fn foreground_run_returns_the_exit_code_and_output() {
    let env = Env::new("fg");
    let out = env.boxctl(&["run", "--name", "fg", "bb", "sh", "-c", "echo out; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "out");
    let i = env.inspect("fg");
    assert_eq!(i["status"], "exited");
    assert_eq!(i["exit_code"], 3);
    let id = i["id"].as_str().unwrap().to_string();
    env.ok(&["rm", "fg"]);
    env.assert_no_leaks(&[id]);

    // SIGTERM to a foreground run is passed on to the instance.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_boxctl"))
        .arg("--root")
        .arg(&env.root)
        .arg("--runtime")
        .arg(&env.runtime)
        .args([
            "run",
            "--name",
            "sig",
            "bb",
            "sh",
            "-c",
            "trap 'echo got-term; exit 5' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // SAFETY: signalling the boxctl process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(rest.contains("got-term"), "{rest}");
    assert_eq!(status.code(), Some(5));
    let id = env.inspect("sig")["id"].as_str().unwrap().to_string();
    env.ok(&["rm", "sig"]);
    env.assert_no_leaks(&[id]);
}

#[test]
fn limits_are_enforced_inside() {
    let env = Env::new("limits");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--memory",
        "32m",
        "--pids",
        "20",
        "--cpus",
        "0.5",
        "--io-write-bps",
        "1m",
        "bb",
        "sleep",
        "1000",
    ]);
    let id = id_of(&env, "lim");
    let cg = env.ok(&[
        "exec",
        "lim",
        "cat",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/pids/pids.max",
    ]);
    let v: Vec<&str> = cg.split_whitespace().collect();
    assert_eq!(v, ["50000", "100000", "33554432", "20"]);

    // Memory: a shell growing past 32 MiB is OOM-killed.
    let out = env.boxctl(&[
        "exec",
        "lim",
        "sh",
        "-c",
        "x=$(head -c 60000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(out.status.code(), Some(137), "{:?}", out);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("survived"));

    // Pids: forking past 20 tasks fails.
    let out = env.boxctl(&[
        "exec",
        "lim",
        "sh",
        "-c",
        "for i in $(seq 40); do sleep 2 & done; wait",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("can't fork"),
        "{out:?}"
    );

    // Disk: 2 MiB of direct writes at 1 MiB/s take about 2 s.
    let t = Instant::now();
    env.ok(&[
        "exec",
        "lim",
        "dd",
        "if=/dev/zero",
        "of=/blob",
        "bs=64k",
        "count=32",
        "oflag=direct",
    ]);
    let took = t.elapsed().as_secs_f64();
    assert!(
        took > 1.5,
        "2 MiB written in {took:.2}s despite --io-write-bps 1m"
    );

    // Live update of the memory limit.
    env.ok(&["update", "lim", "--memory", "64m"]);
    let m = env.ok(&[
        "exec",
        "lim",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_eq!(m.trim(), "67108864");
    assert_eq!(env.inspect("lim")["memory"], 67108864);

    // Live update of the disk throttle, through the runtime's `update` (blockIO).
    env.ok(&["update", "lim", "--io-write-bps", "2m"]);
    let t = env.ok(&[
        "exec",
        "lim",
        "cat",
        "/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device",
    ]);
    assert!(t.trim().ends_with(" 2097152"), "{t}");
    assert_eq!(env.inspect("lim")["io_write_bps"], 2097152);

    env.ok(&["rm", "-f", "lim"]);
    env.assert_no_leaks(&[id]);
}

#[test]
fn restart_policy_after_crashes() {
    let env = Env::new("restart");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "crash",
        "--restart",
        "on-failure:2",
        "bb",
        "sh",
        "-c",
        "echo attempt; exit 3",
    ]);
    let i = env.inspect("crash");
    let id = i["id"].as_str().unwrap().to_string();
    if let Some(m) = i["monitor_pid"].as_i64() {
        assert!(
            wait_pid(m as i32, 30),
            "monitor still running after the retries"
        );
    }
    let i = env.inspect("crash");
    assert_eq!(i["status"], "exited");
    assert_eq!(i["exit_code"], 3);
    assert_eq!(i["restart_count"], 2);
    let logs = env.ok(&["logs", "crash"]);
    assert_eq!(logs.matches("attempt").count(), 3, "{logs}");
    env.assert_no_leaks(std::slice::from_ref(&id));

    // `always` restarts a killed process; stop ends it for good.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "bb",
        "sleep",
        "1000",
    ]);
    let a = env.inspect("always");
    let pid = a["pid"].as_i64().unwrap() as i32;
    // SAFETY: signalling the container's init we started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_pid(pid, 10));
    let mut restarted = false;
    for _ in 0..100 {
        let a = env.inspect("always");
        if a["status"] == "running" && a["pid"].as_i64().is_some_and(|p| p as i32 != pid) {
            assert_eq!(a["restart_count"], 1);
            restarted = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        restarted,
        "instance with --restart always was not restarted"
    );
    env.ok(&["stop", "-t", "1", "always"]);
    assert_eq!(env.inspect("always")["status"], "exited");
    let aid = id_of(&env, "always");
    env.ok(&["rm", "always", "crash"]);
    env.assert_no_leaks(&[id, aid]);
}

/// `start` reconciles by itself: an instance whose monitor and process both died
/// behind boxctl's back starts again without a `ps` first.
#[test]
fn start_repairs_the_file_after_the_monitor_is_killed() {
    let env = Env::new("restartdead");
    env.ok(&["run", "-d", "--name", "ghost", "bb", "sleep", "1000"]);
    let i = env.inspect("ghost");
    let id = i["id"].as_str().unwrap().to_string();
    let monitor = i["monitor_pid"].as_i64().unwrap() as i32;
    let pid = i["pid"].as_i64().unwrap() as i32;
    // SAFETY: killing the monitor process boxctl started for this test.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    assert!(wait_pid(monitor, 10));
    // SAFETY: killing the container's init.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_pid(pid, 10));
    env.ok(&["start", "ghost"]);
    let i = env.inspect("ghost");
    assert_eq!(i["status"], "running", "{i}");
    assert_ne!(i["pid"].as_i64(), Some(i64::from(pid)), "{i}");
    env.ok(&["rm", "-f", "ghost"]);
    env.assert_no_leaks(&[id]);
}

#[test]
fn ps_repairs_the_file_after_the_monitor_is_killed() {
    let env = Env::new("repair");
    env.ok(&["run", "-d", "--name", "orphan", "bb", "sleep", "1000"]);
    let i = env.inspect("orphan");
    let id = i["id"].as_str().unwrap().to_string();
    let monitor = i["monitor_pid"].as_i64().unwrap() as i32;
    let pid = i["pid"].as_i64().unwrap() as i32;
    // SAFETY: killing the monitor process boxctl started for this test.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    assert!(wait_pid(monitor, 10));
    // Still running, but unmonitored.
    let ps = env.ps_all();
    assert_eq!(ps[0]["status"], "running");
    assert!(
        ps[0]["state"].as_str().unwrap().contains("unmonitored"),
        "{}",
        ps[0]
    );
    assert!(ps[0]["monitor_pid"].is_null());
    // The process dies behind boxctl's back: ps notices, records it and releases the disk.
    // SAFETY: killing the container's init.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_pid(pid, 10));
    let ps = env.ps_all();
    assert_eq!(ps[0]["status"], "exited", "{}", ps[0]);
    assert!(ps[0]["finished_at"].is_string());
    assert!(env.ok(&["ps"]).lines().count() == 1);
    env.assert_no_leaks(std::slice::from_ref(&id));
    // It can be started again on its kept disk.
    env.ok(&["start", "orphan"]);
    env.ok(&["rm", "-f", "orphan"]);
    env.assert_no_leaks(&[id]);
}

#[test]
fn concurrent_runs_keep_the_file_consistent() {
    let env = Env::new("concurrent");
    let n = 20;
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|k| {
                let env = &env;
                s.spawn(move || {
                    env.boxctl(&[
                        "run",
                        "-d",
                        "--name",
                        &format!("c{k}"),
                        "bb",
                        "sleep",
                        "1000",
                    ])
                })
            })
            .collect();
        for h in hs {
            let out = h.join().unwrap();
            assert!(out.status.success(), "{out:?}");
        }
    });
    let all = env.ps_all();
    assert_eq!(all.len(), n);
    let mut names: Vec<_> = all
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n);
    assert!(all.iter().all(|i| i["status"] == "running"));
    let ids: Vec<String> = all
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    // Concurrent removal too.
    std::thread::scope(|s| {
        for k in 0..n {
            let env = &env;
            s.spawn(move || env.ok(&["rm", "-f", &format!("c{k}")]));
        }
    });
    assert!(env.ps_all().is_empty());
    assert!(env.instance_dirs().is_empty());
    env.assert_no_leaks(&ids);
}

#[test]
fn bad_input_leaves_nothing_behind() {
    let mut env = Env::new("badinput");
    let e = env.fails(&["run", "-d", "--memory", "12Q", "bb", "true"]);
    assert!(e.contains("12Q"), "{e}");
    let e = env.fails(&["run", "-d", "nosuchimage", "true"]);
    assert!(e.contains("no such image"), "{e}");
    let e = env.fails(&["run", "-d", "--name", "../evil", "bb", "true"]);
    assert!(e.contains("invalid instance name"), "{e}");
    env.fails(&["run", "-d", "--cpus=-1", "bb", "true"]);
    env.fails(&["run", "-d", "--bogus-flag", "bb", "true"]);
    env.fails(&["run", "-d", "--restart", "sometimes", "bb", "true"]);
    env.fails(&["run", "-d", "bb", "/no/such/binary"]);
    env.ok(&["run", "-d", "--name", "dup", "bb", "sleep", "1000"]);
    let e = env.fails(&["run", "-d", "--name", "dup", "bb", "true"]);
    assert!(e.contains("already used"), "{e}");
    let e = env.fails(&["image", "rm", "bb"]);
    assert!(e.contains("dup"), "{e}");
    let id = id_of(&env, "dup");
    env.ok(&["rm", "-f", "dup"]);
    assert!(env.ps_all().is_empty());
    assert!(env.instance_dirs().is_empty(), "{:?}", env.instance_dirs());
    env.assert_no_leaks(&[id]);
    // `dup` made the default network; the root changes below.
    env.ok(&["network", "rm", "boxctl0"]);

    // A full disk: the copy fails cleanly.
    let img = env.dir.join("rootfs-src");
    env.root = env.dir.join("small");
    env.root_on_tmpfs("12m");
    env.ok(&[
        "image",
        "import",
        "--size",
        "32m",
        img.to_str().unwrap(),
        "bb",
    ]);
    let filler = env.root.join("filler");
    let _ = std::process::Command::new("dd")
        .args([
            "if=/dev/zero",
            "bs=1M",
            "count=64",
            &format!("of={}", filler.display()),
        ])
        .output();
    // Without --net the default network cannot even be recorded; with
    // `--net none` the disk copy is what fails.
    let e = env.fails(&["run", "-d", "--name", "full", "bb", "true"]);
    assert!(e.contains("No space left on device"), "{e}");
    let out = env.ok(&["network", "ls"]);
    assert_eq!(out.lines().count(), 1, "a network was left: {out}");
    let e = env.fails(&["run", "-d", "--name", "full", "--net", "none", "bb", "true"]);
    assert!(e.contains("full"), "{e}");
    assert!(env.ps_all().is_empty());
    assert!(env.instance_dirs().is_empty(), "{:?}", env.instance_dirs());
    env.assert_no_leaks(&[]);
}

fn http_get(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

#[test]
fn networks_addresses_hosts_and_published_ports() {
    let env = Env::new("net");
    let net = format!("tn{}", std::process::id() % 100_000);
    let pre = env.create_network(213, &[&net]);
    let _guard = NetGuard(&env, net.clone());
    let bridge = format!("bx-{net}");
    assert!(std::path::Path::new("/sys/class/net")
        .join(&bridge)
        .exists());

    // A free host port on loopback.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "web1",
        "--net",
        &net,
        "-p",
        &publish,
        "bb",
        "sh",
        "-c",
        "mkdir -p /www && echo hello-web1 > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let fixed = format!("{net}:{pre}50");
    env.ok(&[
        "run", "-d", "--name", "client", "--net", &fixed, "bb", "sleep", "1000",
    ]);
    let web1 = env.inspect("web1");
    let client = env.inspect("client");
    assert_eq!(client["networks"][0], format!("{net}={pre}50/24"));
    let web_addr = web1["networks"][0]
        .as_str()
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(web_addr, format!("{pre}2/24"));
    let ps = env.ok(&["ps"]);
    assert!(ps.contains(&format!("{net}:{pre}2/24")), "{ps}");

    // web1 was running when client started: its /etc/hosts learnt the new peer.
    let hosts = env.ok(&["exec", "web1", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{pre}50\tclient")), "{hosts}");

    // Peers by name, the host through the published port.
    let page = env.ok(&["exec", "client", "wget", "-qO-", "http://web1/"]);
    assert_eq!(page.trim(), "hello-web1");
    let mut body = String::new();
    for _ in 0..50 {
        body = http_get(&format!("127.0.0.1:{port}"));
        if body.contains("hello-web1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(body.contains("hello-web1"), "{body}");

    // Stop tears the network down, start brings the same address back.
    let veth = std::path::Path::new("/sys/class/net");
    let web_id = web1["id"].as_str().unwrap().to_string();
    let netns = env.root.join("instances").join(&web_id).join("netns");
    assert!(common::mounts_under(&netns).contains(&netns));
    env.ok(&["stop", "-t", "1", "web1"]);
    assert!(
        !common::mounts_under(&netns).contains(&netns),
        "netns left mounted after stop"
    );
    assert!(
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
        "published port still open after stop"
    );
    env.ok(&["start", "web1"]);
    assert_eq!(env.inspect("web1")["networks"], web1["networks"]);
    let page = env.ok(&["exec", "client", "wget", "-qO-", "http://web1/"]);
    assert_eq!(page.trim(), "hello-web1");

    // A network in use cannot be removed; a taken address is refused.
    env.fails(&["network", "rm", &net]);
    let e = env.fails(&[
        "run", "-d", "--name", "clash", "--net", &fixed, "bb", "true",
    ]);
    assert!(e.contains(&format!("{pre}50")), "{e}");
    let client_id = client["id"].as_str().unwrap().to_string();
    env.ok(&["rm", "-f", "web1", "client"]);
    let leftovers: Vec<_> = std::fs::read_dir(veth)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bx") && n.ends_with("v0") && n.len() == 14)
        .collect();
    let _ = leftovers; // other tests may own veths; ours are checked by netns/mount absence
    env.ok(&["network", "rm", &net]);
    assert!(!std::path::Path::new("/sys/class/net")
        .join(&bridge)
        .exists());
    env.assert_no_leaks(&[web_id, client_id]);
}

/// The manager speaks only the OCI CLI: runc and crun drive the same life cycle.
#[test]
fn runc_and_crun_work_too() {
    let mut env = Env::new("runtimes");
    let mut runtimes = Vec::new();
    if std::path::Path::new("/usr/sbin/runc").exists() {
        runtimes.push("/usr/sbin/runc".to_string());
    }
    if std::path::Path::new("/usr/bin/crun").exists() {
        // crun refuses hybrid cgroup hosts unless it sees an empty cgroup2
        // controller list: give it one in a private mount namespace.
        let wrapper = env.dir.join("crun.sh");
        std::fs::write(
            &wrapper,
            "#!/bin/sh\nexec unshare -m --propagation slave sh -c 'if grep -q . /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then mount --bind /dev/null /sys/fs/cgroup/unified/cgroup.controllers; fi; exec /usr/bin/crun \"$@\"' crun \"$@\"\n",
        )
        .unwrap();
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        runtimes.push(wrapper.display().to_string());
    }
    for (k, rt) in runtimes.iter().enumerate() {
        env.runtime = rt.clone();
        let name = format!("rt{k}");
        env.ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--memory",
            "32m",
            "bb",
            "sh",
            "-c",
            "echo up; exec sleep 1000",
        ]);
        let id = id_of(&env, &name);
        assert_eq!(env.inspect(&name)["runtime"].as_str(), Some(rt.as_str()));
        assert_eq!(env.wait_logs(&name, "up", 30).trim(), "up", "runtime {rt}");
        let m = env.ok(&[
            "exec",
            &name,
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ]);
        assert_eq!(m.trim(), "33554432", "runtime {rt}");
        env.ok(&["stop", "-t", "1", &name]);
        env.ok(&["start", &name]);
        assert_eq!(env.inspect(&name)["status"], "running", "runtime {rt}");
        env.ok(&["rm", "-f", &name]);
        env.assert_no_leaks(&[id]);
    }
}

/// `boxctl run` killed with SIGKILL at arbitrary moments: the next `ps` leaves a
/// consistent state (every record has its directory and vice versa), and
/// everything can be removed without leaks.
#[test]
fn run_killed_at_any_moment_leaves_a_consistent_state() {
    let env = Env::new("kill9");
    for k in 0..12u64 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_boxctl"))
            .arg("--root")
            .arg(&env.root)
            .arg("--runtime")
            .arg(&env.runtime)
            .args([
                "run",
                "-d",
                "--name",
                &format!("k{k}"),
                "bb",
                "sleep",
                "1000",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kills over the whole run (copy, record, monitor start-up).
        std::thread::sleep(std::time::Duration::from_millis(k * 25));
        // SAFETY: killing the boxctl process this test started.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
    }
    let all = env.ps_all();
    let mut recorded: Vec<String> = all
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    recorded.sort();
    let mut dirs = env.instance_dirs();
    dirs.sort();
    assert_eq!(recorded, dirs, "instance file and directories disagree");
    for i in &all {
        let st = i["status"].as_str().unwrap();
        assert!(
            ["created", "running", "exited"].contains(&st),
            "unexpected status {st}: {i}"
        );
    }
    for id in &recorded {
        env.ok(&["rm", "-f", id]);
    }
    assert!(env.ps_all().is_empty());
    assert!(env.instance_dirs().is_empty());
    env.assert_no_leaks(&recorded);
}

fn file_digest(p: &std::path::Path) -> Vec<u8> {
    let out = std::process::Command::new("sha256sum")
        .arg(p)
        .output()
        .unwrap();
    out.stdout
}

/// Copy-on-write instances share the read-only image and keep their own
/// changes (files and deletions) in their upper layer across stop/start.
#[test]
fn copy_on_write_instances() {
    let env = Env::new("cow");
    let image_disk = env.root.join("images/bb/disk.img");
    let before = file_digest(&image_disk);
    env.ok(&[
        "run",
        "-d",
        "--cow",
        "--name",
        "cow1",
        "--io-write-bps",
        "1m",
        "bb",
        "sleep",
        "1000",
    ]);
    env.ok(&[
        "run", "-d", "--cow", "--name", "cow2", "bb", "sleep", "1000",
    ]);
    let i1 = env.inspect("cow1");
    assert_eq!(i1["cow"], true);
    assert!(i1["disk"].as_str().unwrap().ends_with("upper.img"));
    env.ok(&[
        "exec",
        "cow1",
        "sh",
        "-c",
        "echo mine > /etc/mine && rm /bin/vi && sync",
    ]);
    // cow2 sees the pristine image.
    let out = env.boxctl(&["exec", "cow2", "cat", "/etc/mine"]);
    assert!(!out.status.success());
    env.ok(&["exec", "cow2", "ls", "/bin/vi"]);
    // Throttles apply to the instance's own disk devices.
    let t = Instant::now();
    env.ok(&[
        "exec",
        "cow1",
        "dd",
        "if=/dev/zero",
        "of=/blob",
        "bs=64k",
        "count=32",
        "oflag=direct",
    ]);
    assert!(
        t.elapsed().as_secs_f64() > 1.5,
        "copy-on-write instance not throttled"
    );
    env.ok(&["stop", "-t", "1", "cow1"]);
    env.ok(&["start", "cow1"]);
    assert_eq!(env.ok(&["exec", "cow1", "cat", "/etc/mine"]).trim(), "mine");
    assert!(!env
        .boxctl(&["exec", "cow1", "ls", "/bin/vi"])
        .status
        .success());
    let ids = [id_of(&env, "cow1"), id_of(&env, "cow2")];
    env.fails(&["image", "rm", "bb"]);
    env.ok(&["rm", "-f", "cow1", "cow2"]);
    assert_eq!(
        file_digest(&image_disk),
        before,
        "the shared image was modified"
    );
    assert!(env.instance_dirs().is_empty());
    env.assert_no_leaks(&ids);
}

/// `exec -it` gets a terminal (through the console socket) and the exit code.
#[test]
fn exec_with_a_terminal() {
    let env = Env::new("tty");
    env.ok(&["run", "-d", "--name", "term", "bb", "sleep", "1000"]);
    let id = id_of(&env, "term");
    let inner = format!(
        "{} --root {} --runtime {} exec -it term sh; echo rc=$?",
        env!("CARGO_BIN_EXE_boxctl"),
        env.root.display(),
        env.runtime
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (bsdutils) is needed for this test");
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        b"tty; echo $((6*7)); exit 3\n",
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("42"), "{text}");
    assert!(text.contains("rc=3"), "{text}");
    env.ok(&["rm", "-f", "term"]);
    env.assert_no_leaks(&[id]);
}

#[test]
fn internal_network_has_no_gateway_route() {
    let env = Env::new("inet");
    let pid = std::process::id() % 100_000;
    let internal = format!("ti{pid}");
    let outer = format!("to{pid}");
    env.create_network(214, &["--internal", &internal]);
    let _gi = NetGuard(&env, internal.clone());
    let outer_pre = env.create_network(215, &["--gateway", "{net}254", &outer]);
    let _go = NetGuard(&env, outer.clone());
    // a gateway outside the subnet is refused
    let bad = format!("{}0/24", common::free_subnet_prefix(216));
    let e = env.fails(&[
        "network",
        "create",
        "--subnet",
        &bad,
        "--gateway",
        "10.9.9.9",
        "tbad",
    ]);
    assert!(e.contains("10.9.9.9"), "{e}");
    // the internal bridge has no address on the host
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", &format!("bx-{internal}")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "internal bridge has an address"
    );
    // only internal: no default route; internal first then outer: default via outer's gateway
    env.ok(&[
        "run", "-d", "--name", "only", "--net", &internal, "bb", "sleep", "1000",
    ]);
    let routes = env.ok(&["exec", "only", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    env.ok(&[
        "run", "-d", "--name", "both", "--net", &internal, "--net", &outer, "bb", "sleep", "1000",
    ]);
    let routes = env.ok(&["exec", "both", "ip", "route"]);
    assert!(
        routes.contains(&format!("default via {outer_pre}254 dev eth1")),
        "{routes}"
    );
    env.ok(&["rm", "-f", "only", "both"]);
}

/// Deletes host bridges by name on drop, whoever made them (clean-up of the
/// two-store tests even when they fail midway).
struct BridgeGuard(Vec<String>);
impl Drop for BridgeGuard {
    fn drop(&mut self) {
        for b in &self.0 {
            let _ = boxctl_network::bridge::delete(b);
        }
    }
}

/// The IPv4 addresses on host interface `dev`, as `ip -4 -o addr` prints them.
fn host_addrs(dev: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", dev])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two stores that name a network alike: the second never adopts, readdresses
/// nor removes the first one's bridge; a store that died between making its
/// bridge and recording it takes its own bridge back; a bridge made by hand
/// is nobody's network.
#[test]
fn a_store_never_adopts_or_removes_another_stores_bridge() {
    let a = Env::empty("own-a");
    let b = Env::empty("own-b");
    let net = format!("ts{}", std::process::id() % 100_000);
    let bridge = format!("bx-{net}");
    let manual = format!("bx-{net}h");
    let _bridges = BridgeGuard(vec![bridge.clone(), manual.clone()]);
    let pre_a = a.create_network(218, &[&net]);
    let _guard = NetGuard(&a, net.clone());
    assert!(host_addrs(&bridge).contains(&format!("{pre_a}1/24")));

    // B asks for the same name on another subnet: refused, A's bridge untouched.
    let pre_b = common::free_subnet_prefix(218);
    let e = b.fails(&[
        "network",
        "create",
        "--subnet",
        &format!("{pre_b}0/24"),
        &net,
    ]);
    assert!(
        e.contains(&format!(
            "bridge {bridge} was not made by this boxctl store"
        )) && e.contains(a.root.to_str().unwrap())
            && e.contains("use another network name"),
        "{e}"
    );
    let addrs = host_addrs(&bridge);
    assert!(addrs.contains(&format!("{pre_a}1/24")), "{addrs}");
    assert!(!addrs.contains(&pre_b), "{addrs}");
    assert!(!b.ok(&["network", "ls"]).contains(&net));
    // Nor may B remove it: B has no such network.
    let e = b.fails(&["network", "rm", &net]);
    assert!(e.contains("no such network"), "{e}");
    assert!(std::path::Path::new("/sys/class/net")
        .join(&bridge)
        .exists());

    // A dies after making its bridge, before recording it (the record is
    // lost): A's next create takes its own bridge back, rm removes it.
    std::fs::remove_file(a.root.join("networks.toml")).unwrap();
    assert!(!a.ok(&["network", "ls"]).contains(&net));
    a.ok(&[
        "network",
        "create",
        "--subnet",
        &format!("{pre_a}0/24"),
        &net,
    ]);
    assert!(a.ok(&["network", "ls"]).contains(&net));
    a.ok(&["network", "rm", &net]);
    assert!(!std::path::Path::new("/sys/class/net")
        .join(&bridge)
        .exists());

    // A bridge made by hand (or by a boxctl without marks) is not adopted.
    boxctl_network::bridge::ensure(&manual, None).unwrap();
    let e = a.fails(&["network", "create", &format!("{net}h")]);
    assert!(
        e.contains(&format!(
            "bridge {manual} was not made by this boxctl store"
        )) && e.contains("no boxctl store mark"),
        "{e}"
    );
    assert!(std::path::Path::new("/sys/class/net")
        .join(&manual)
        .exists());
}

/// `network create` without `--subnet` takes a free /24 of the default range
/// 10.209.0.0/16, clear of podman's 10.88.0.0/16 and the other engines' defaults.
#[test]
fn default_subnet_is_a_free_24_of_10_209() {
    let env = Env::empty("defnet");
    let name = format!("td{}", std::process::id() % 100_000);
    let _bridges = BridgeGuard(vec![format!("bx-{name}")]);
    let _net = NetGuard(&env, name.clone());
    env.ok(&["network", "create", &name]);
    let ls = env.ok(&["network", "ls"]);
    let subnet = ls
        .lines()
        .find_map(|l| l.strip_prefix(name.as_str()))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {name} in network ls: {ls}"));
    assert!(
        subnet.starts_with("10.209.") && subnet.ends_with(".0/24"),
        "{subnet}"
    );
    assert!(
        host_addrs(&format!("bx-{name}")).contains(&subnet.replace(".0/24", ".1/24")),
        "gateway of {subnet} not on bx-{name}"
    );
}

/// `network create --subnet` refuses a subnet that overlaps a host route (of
/// any table) or address, naming it in one error line; default routes do not count.
#[test]
fn subnet_used_by_the_host_is_refused() {
    let env = Env::empty("hostnet");
    let pid = std::process::id() % 100_000;
    // Another bridge on the host (as podman0 or docker0 would be), not boxctl's.
    let pre = common::free_subnet_prefix(218);
    let other = format!("bxh{pid}");
    // With the bridge of a `tu` network wrongly made, it goes too.
    let _bridges = BridgeGuard(vec![other.clone(), format!("bx-tu{pid}")]);
    let gw: std::net::Ipv4Addr = format!("{pre}1").parse().unwrap();
    boxctl_network::bridge::ensure(&other, Some((gw, 24))).unwrap();
    for subnet in [format!("{pre}128/25"), format!("{pre}0/24")] {
        let e = env.fails(&[
            "network",
            "create",
            "--subnet",
            &subnet,
            &format!("tu{pid}"),
        ]);
        assert_eq!(
            e.trim_end(),
            format!(
                "boxctl: error: subnet {subnet} overlaps host route {pre}0/24 dev {other}: \
                 choose another subnet"
            )
        );
    }
    // A wider subnet covering it (other tests may have routes in 10.218 too).
    let e = env.fails(&[
        "network",
        "create",
        "--subnet",
        "10.218.0.0/16",
        &format!("tu{pid}"),
    ]);
    assert!(e.contains("overlaps host route 10.218."), "{e}");
    // A route of another routing table counts too (on that bridge: it goes
    // with it, and tests comparing host routes leave bx* interfaces out).
    let pre2 = common::free_subnet_prefix(218);
    let dest = format!("{pre2}0/24");
    let st = std::process::Command::new("ip")
        .args(["route", "add", &dest, "dev", &other, "table", "51999"])
        .status()
        .unwrap();
    assert!(st.success());
    let e = env.fails(&["network", "create", "--subnet", &dest, &format!("tu{pid}")]);
    assert!(
        e.contains(&format!(
            "overlaps host route {dest} dev {other} table 51999"
        )),
        "{e}"
    );
    assert!(env.ok(&["network", "ls"]).lines().count() == 1);
    // A free subnet is taken (the host's default route is no overlap).
    let name = format!("tu{pid}");
    env.create_network(218, &[&name]);
    let _guard = NetGuard(&env, name.clone());
    assert!(env.ok(&["network", "ls"]).contains(&name));
}
