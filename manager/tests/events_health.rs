//! End to end: the event log (`events` with `--since`, `--json`,
//! `--follow`, a die with its exit code and an OOM kill seen as they
//! happen) and health checks (an instance flipping to unhealthy and back,
//! `ps`/`inspect`, `--restart on-unhealthy`, bad options refused), and a
//! farm proxy taking an unhealthy backend out of its upstream list.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::Env;
use serde_json::Value;

/// `boxctl events --follow --json --since T` in the background, killed on drop.
struct Follower {
    child: Child,
    lines: Receiver<Value>,
}

impl Follower {
    /// Follow the events of `env` from Unix time `since` (fractional seconds).
    fn start(env: &Env, since: f64) -> Follower {
        let mut child = Command::new(env!("CARGO_BIN_EXE_boxctl"))
            .arg("--root")
            .arg(&env.root)
            .args(["events", "--follow", "--json", "--since"])
            .arg(format!("{since:.6}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run boxctl events --follow");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).expect("events --json line");
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Follower { child, lines: rx }
    }

    /// The next event for which `pred` holds (earlier ones are dropped), at most `secs` away.
    fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no {what} event within {secs} s"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("events --follow ended before {what}")
                }
            }
        }
    }

    /// The next `health_status` event of instance `name` saying `health`.
    fn health(&self, name: &str, health: &str, secs: u64) -> Value {
        self.wait_for(&format!("health_status {health} of {name}"), secs, |v| {
            v["name"] == name && v["action"] == "health_status" && v["health"] == health
        })
    }

    /// The next event `action` of instance `name`.
    fn next(&self, name: &str, action: &str, secs: u64) -> Value {
        self.wait_for(&format!("{action} of {name}"), secs, |v| {
            v["name"] == name && v["action"] == action
        })
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn ids(env: &Env) -> Vec<String> {
    env.ps_all()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// Allocates far more than 8 MiB in the shell's memory.
const EAT_MEMORY: &str = "x=$(head -c 60000000 /dev/zero | tr '\\0' a); echo survived";

#[test]
fn events_follow_sees_a_die_with_its_exit_code_and_an_oom() {
    let env = Env::new("evfollow");
    let f = Follower::start(&env, now());
    env.ok(&["run", "-d", "--name", "ev-die", "bb", "sh", "-c", "exit 3"]);
    let die = f.next("ev-die", "die", 30);
    assert_eq!(die["exit_code"], 3, "{die}");
    assert!(die["id"].as_str().is_some_and(|s| s.len() == 12), "{die}");
    assert!(
        die["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{die}"
    );

    // An OOM kill in a running instance (an exec'd process over --memory)...
    env.ok(&[
        "run", "-d", "--name", "ev-oom", "--memory", "8m", "bb", "sleep", "1000",
    ]);
    f.next("ev-oom", "start", 30);
    let out = env.boxctl(&["exec", "ev-oom", "sh", "-c", EAT_MEMORY]);
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    f.next("ev-oom", "oom", 30);
    // ...and one that kills the instance's own process: oom, then die 137.
    env.ok(&[
        "run", "-d", "--name", "ev-oom2", "--memory", "8m", "bb", "sh", "-c", EAT_MEMORY,
    ]);
    f.next("ev-oom2", "oom", 30);
    let die = f.next("ev-oom2", "die", 30);
    assert_eq!(die["exit_code"], 137, "{die}");
    assert_eq!(
        env.inspect("ev-oom")["status"],
        "running",
        "an OOM kill of an exec'd process leaves the instance running"
    );

    // The plain form: one line per event with time, action, name, id and exit code.
    let text = env.ok(&["events"]);
    let line = text
        .lines()
        .find(|l| l.contains(" die ev-die "))
        .unwrap_or_else(|| panic!("no die line: {text}"));
    assert!(line.contains("exit_code=3"), "{line}");
    let ids = ids(&env);
    drop(f);
    for n in ["ev-die", "ev-oom", "ev-oom2"] {
        env.ok(&["rm", "-f", n]);
    }
    env.assert_no_leaks(&ids);
}

#[test]
fn events_since_and_the_life_cycle_in_order() {
    let env = Env::new("evsince");
    env.ok(&["create", "--name", "early", "bb", "true"]);
    let t = now();
    env.ok(&["run", "-d", "--name", "late", "bb", "sleep", "1000"]);
    env.ok(&["stop", "-t", "0", "late"]);
    env.ok(&["rm", "late"]);
    let events = |since: &str| -> Vec<(String, String)> {
        env.ok(&["events", "--json", "--since", since])
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["name"].as_str().unwrap().to_string(),
                    v["action"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let late: Vec<(String, String)> = ["create", "start", "die", "stop", "rm"]
        .iter()
        .map(|a| ("late".to_string(), a.to_string()))
        .collect();
    assert_eq!(events(&format!("{t:.6}")), late);
    let all = events("1h");
    assert_eq!(all[0], ("early".into(), "create".into()));
    assert_eq!(all[1..], late[..]);
    assert!(events("2100-01-01T00:00:00Z").is_empty());
    // Without --since: everything.
    assert_eq!(env.ok(&["events"]).lines().count(), 6);
    let e = env.fails(&["events", "--since", "yesterday"]);
    assert!(e.contains("invalid --since \"yesterday\""), "{e}");
    env.ok(&["rm", "early"]);
}

/// `ps` STATUS of `name`.
fn ps_status(env: &Env, name: &str) -> String {
    env.ps_all()
        .into_iter()
        .find(|i| i["name"] == name)
        .map(|i| i["state"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[test]
fn health_check_flips_to_unhealthy_and_back() {
    let env = Env::new("health");
    let f = Follower::start(&env, now());
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -f /ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "bb",
        "sleep",
        "1000",
    ]);
    let pid = env.inspect("hc")["pid"].clone();
    let health = |h: &str| f.health("hc", h, 30);
    health("unhealthy");
    assert!(
        ps_status(&env, "hc").ends_with("(unhealthy)"),
        "{}",
        ps_status(&env, "hc")
    );
    let i = env.inspect("hc");
    assert_eq!(i["health_status"], "unhealthy");
    assert!(i["health"]["failing_streak"].as_u64().unwrap() >= 2, "{i}");
    assert_eq!(i["health"]["last_check"]["exit_code"], 1, "{i}");

    env.ok(&["exec", "hc", "touch", "/ok"]);
    health("healthy");
    let st = ps_status(&env, "hc");
    assert!(st.starts_with("Up ") && st.ends_with(" (healthy)"), "{st}");
    let i = env.inspect("hc");
    assert_eq!(i["health"]["status"], "healthy");
    assert_eq!(i["health"]["failing_streak"], 0);
    assert_eq!(i["health"]["interval"], "200ms");

    env.ok(&["exec", "hc", "rm", "/ok"]);
    health("unhealthy");
    // The default restart policy (no) only reports it: same process all along.
    assert_eq!(env.inspect("hc")["pid"], pid);
    assert_eq!(env.inspect("hc")["status"], "running");
    let ids = ids(&env);
    drop(f);
    env.ok(&["rm", "-f", "hc"]);
    env.assert_no_leaks(&ids);
    // Nothing mounted under the root but the storage pool (see disk_mounts).
    let pool = env.root.join("pool/mnt");
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| !l.contains(pool.to_str().unwrap()))
            .any(|l| l.contains(env.root.to_str().unwrap())),
        "mounts left"
    );
}

#[test]
fn restart_on_unhealthy_kills_and_restarts() {
    let env = Env::new("hrestart");
    let f = Follower::start(&env, now());
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hr",
        "--restart",
        "on-unhealthy:1",
        "--health-cmd",
        "test -f /ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "bb",
        "sleep",
        "1000",
    ]);
    // Unhealthy: killed (137) and restarted once...
    f.next("hr", "health_status", 30);
    assert_eq!(f.next("hr", "die", 30)["exit_code"], 137);
    f.next("hr", "start", 30);
    // ...unhealthy again: killed, and on-unhealthy:1 has no restart left.
    f.next("hr", "health_status", 30);
    assert_eq!(f.next("hr", "die", 30)["exit_code"], 137);
    let monitor = env.inspect("hr")["monitor_pid"].as_i64();
    if let Some(m) = monitor {
        assert!(common::wait_pid(m as i32, 30), "monitor did not finish");
    }
    let i = env.inspect("hr");
    assert_eq!(i["status"], "exited", "{i}");
    assert_eq!(i["exit_code"], 137);
    assert_eq!(i["restart_count"], 1);
    assert_eq!(i["restart"], "on-unhealthy:1");

    // `always` acts as docker's: an unhealthy instance is reported, not killed.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "ha",
        "--restart",
        "always",
        "--health-cmd",
        "test -f /ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "bb",
        "sleep",
        "1000",
    ]);
    let pid = env.inspect("ha")["pid"].clone();
    f.next("ha", "health_status", 30);
    env.ok(&["exec", "ha", "touch", "/ok"]);
    f.health("ha", "healthy", 30);
    assert_eq!(env.inspect("ha")["pid"], pid);
    let ids = ids(&env);
    drop(f);
    env.ok(&["rm", "-f", "hr", "ha"]);
    env.assert_no_leaks(&ids);
}

#[test]
fn bad_health_options_are_refused_leaving_nothing() {
    let env = Env::new("hbad");
    let cases: [(&[&str], &str); 7] = [
        (
            &["--health-cmd", "true", "--health-interval", "0s"],
            "invalid --health-interval \"0s\": the minimum is 100ms",
        ),
        (
            &["--health-cmd", "true", "--health-interval", "soon"],
            "invalid --health-interval \"soon\"",
        ),
        (
            &["--health-cmd", "true", "--health-timeout", "5"],
            "invalid --health-timeout \"5\"",
        ),
        (
            &["--health-cmd", "true", "--health-retries", "0"],
            "invalid --health-retries \"0\"",
        ),
        (&["--health-interval", "1s"], "need --health-cmd"),
        (
            &["--no-healthcheck", "--health-cmd", "true"],
            "--no-healthcheck",
        ),
        (&["--restart", "on-unhealthy"], "needs a health check"),
    ];
    for (opts, want) in cases {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(opts);
        args.extend(["bb", "true"]);
        let e = env.fails(&args);
        assert!(e.contains(want), "{opts:?}: {e}");
    }
    assert!(env.ps_all().is_empty());
    assert!(env.instance_dirs().is_empty());
    assert!(
        env.ok(&["events"]).is_empty(),
        "a refused run records no event"
    );
}

/// The farm's proxy in front of `web` as a file text: `# NAME` comments name its backends.
fn proxy_conf(env: &Env, proxy: &str) -> String {
    env.ok(&["exec", proxy, "cat", "/etc/nginx/conf.d/farm.conf"])
}

/// Wait (bounded: the proxy is rewritten after the event) until the
/// proxy's upstream list names exactly `want` of `all`.
fn wait_backends(env: &Env, proxy: &str, all: &[String], want: &[&String]) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let conf = proxy_conf(env, proxy);
        let has: Vec<&String> = all
            .iter()
            .filter(|n| conf.contains(&format!("# {n}\n")))
            .collect();
        if has == want {
            return;
        }
        assert!(
            Instant::now() < end,
            "proxy lists {has:?}, not {want:?}: {conf}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn farm_proxy_drops_an_unhealthy_backend_and_takes_it_back() {
    let env = Env::empty("hfarm");
    let name = format!("fh{}", std::process::id() % 100_000);
    let back = format!("{}0/24", common::free_subnet_prefix(219));
    let front = format!("{}0/24", common::free_subnet_prefix(219));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = std::env::var("BOXRUN_IMAGE_CACHE")
        .unwrap_or_else(|_| "/var/cache/boxrun-images".to_string());
    let images = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles/images");
    let images = images.to_str().unwrap();
    let text = format!(
        r#"name = "{name}"
[images.web]
rootfs = "{cache}/web"
build = "{images}/build-web.sh"
[images.proxy]
rootfs = "{cache}/proxy"
build = "{images}/build-proxy.sh"
[networks.back]
subnet = "{back}"
internal = true
[networks.front]
subnet = "{front}"
[services.web]
image = "web"
command = ["/usr/sbin/boxweb"]
replicas = 2
networks = ["back"]
cow = true
health = {{ path = "/health", cmd = "test ! -f /sick", interval = "200ms", retries = 1 }}
[services.proxy]
image = "proxy"
command = ["/usr/sbin/boxproxy"]
networks = ["front", "back"]
publish = ["127.0.0.1:{port}:80"]
cow = true
[services.proxy.balance]
backends = "web"
network = "back"
"#
    );
    let file = env.dir.join("farm.toml");
    std::fs::write(&file, text).unwrap();
    let f = file.to_str().unwrap();
    /// `down` and the networks' removal on drop, even when the test fails.
    struct Down<'a>(&'a Env, &'a str, String);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = self.0.boxctl(&["down", "-f", self.1]);
            for n in ["back", "front"] {
                let _ = self
                    .0
                    .boxctl(&["network", "rm", &format!("{}-{n}", self.2)]);
            }
        }
    }
    let _down = Down(&env, f, name.clone());
    let follower = Follower::start(&env, now());
    let out = env.boxctl(&["up", "-f", f]);
    assert!(
        out.status.success(),
        "boxctl up failed (images: bundles/images/build-web.sh and build-proxy.sh into {cache}): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let web: Vec<String> = (1..=2).map(|i| format!("{name}-web-{i}")).collect();
    let proxy = format!("{name}-proxy");
    assert!(env.root.join(format!("farms/{name}.json")).is_file());
    wait_backends(&env, &proxy, &web, &[&web[0], &web[1]]);

    // web-1 turns unhealthy: out of the upstream list, every request goes to web-2.
    env.ok(&["exec", &web[0], "touch", "/sick"]);
    follower.health(&web[0], "unhealthy", 30);
    wait_backends(&env, &proxy, &web, &[&web[1]]);
    // The list is installed before nginx's graceful reload ends: wait for the reload.
    let url = format!("http://127.0.0.1:{port}/");
    let answering = || {
        let out = Command::new("curl")
            .args(["-sf", &url])
            .output()
            .expect("curl");
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        web.iter()
            .find(|n| body.contains(&format!("Hello from {n}<")))
            .cloned()
            .unwrap_or_else(|| panic!("no backend answered: {body}"))
    };
    let end = Instant::now() + Duration::from_secs(30);
    while (0..4).any(|_| answering() != web[1]) {
        assert!(Instant::now() < end, "requests still reach {}", web[0]);
    }
    for _ in 0..8 {
        assert_eq!(answering(), web[1]);
    }
    assert_eq!(
        env.inspect(&web[0])["status"],
        "running",
        "restart always: only reported"
    );

    // Healthy again: back in the list.
    env.ok(&["exec", &web[0], "rm", "/sick"]);
    follower.health(&web[0], "healthy", 30);
    wait_backends(&env, &proxy, &web, &[&web[0], &web[1]]);
    let end = Instant::now() + Duration::from_secs(30);
    while answering() != web[0] {
        assert!(
            Instant::now() < end,
            "requests do not reach {} again",
            web[0]
        );
    }

    let ids = ids(&env);
    drop(follower);
    env.ok(&["down", "-f", f]);
    assert!(!env.root.join(format!("farms/{name}.json")).exists());
    assert!(env.ps_all().is_empty());
    env.assert_no_leaks(&ids);
}

/// Pids of processes whose command line is `... ARG ID`.
fn pids_with(arg: &str, id: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(c) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
        if args
            .windows(2)
            .any(|w| w[0] == arg.as_bytes() && w[1] == id.as_bytes())
        {
            out.push(pid);
        }
    }
    out
}

#[test]
fn the_health_checker_dies_with_its_monitor() {
    let env = Env::new("hkill");
    let f = Follower::start(&env, now());
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hk",
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        "bb",
        "sleep",
        "1000",
    ]);
    f.health("hk", "healthy", 30);
    let i = env.inspect("hk");
    let id = i["id"].as_str().unwrap().to_string();
    let checker = pids_with("__health", &id);
    assert_eq!(checker.len(), 1, "one checker: {checker:?}");
    let monitor = i["monitor_pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) with a pid read from the instance file and SIGKILL.
    assert_eq!(unsafe { libc::kill(monitor, libc::SIGKILL) }, 0);
    assert!(
        common::wait_pid(checker[0], 30),
        "the checker outlived its monitor"
    );
    let ids = ids(&env);
    drop(f);
    env.ok(&["rm", "-f", "hk"]);
    assert!(pids_with("__health", &id).is_empty());
    env.assert_no_leaks(&ids);
}
