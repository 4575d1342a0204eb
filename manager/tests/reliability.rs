//! boxctl reliability (issue 11): a boxctl process killed with SIGKILL at each step of
//! image import, run (network set-up, runtime create, runtime start), stop and rm leaves a
//! state the next command reconciles; concurrent commands never lose an update to the
//! instance file; 50 instances come and go with zero leaks.
//!
//! Crash points without touching boxctl's code: boxctl drives external programs at each
//! step (the OCI runtime, mkfs.ext4), so the tests put wrappers in front of them that
//! SIGKILL their caller (the boxctl CLI or the instance monitor) just before or just after
//! the real program runs, once per test (a `mkdir` claims the shot).

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Write an executable wrapper `name` in `dir` that runs `real` and, when the first
/// non-option argument + ":before"/":after" equals $RELI_KILL_AT, SIGKILLs its parent
/// before/after running it (only the first time: `dir/shot` is claimed with mkdir).
fn killing_wrapper(dir: &Path, name: &str, real: &str) -> PathBuf {
    let p = dir.join(name);
    let shot = dir.join(format!("{name}.shot"));
    let script = format!(
        r#"#!/bin/sh
sub=""; skip=0
for a in "$@"; do
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case "$a" in --root|--log|--log-format) skip=1 ;; -*) ;; *) sub="$a"; break ;; esac
done
if [ "{name}" = mkfs.ext4 ]; then sub=mkfs; fi
if [ "$RELI_KILL_AT" = "$sub:before" ] && mkdir "{shot}" 2>/dev/null; then kill -9 $PPID; exit 137; fi
"{real}" "$@"; rc=$?
if [ "$RELI_KILL_AT" = "$sub:after" ] && mkdir "{shot}" 2>/dev/null; then kill -9 $PPID; fi
exit $rc
"#,
        shot = shot.display()
    );
    std::fs::write(&p, script).expect("write wrapper");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod wrapper");
    let _ = std::fs::remove_dir(&shot);
    p
}

/// Whether the wrapper fired.
fn shot_fired(dir: &Path, name: &str) -> bool {
    dir.join(format!("{name}.shot")).exists()
}

/// boxctl with `RELI_KILL_AT` and an optional PATH prefix; bounded to 120 s.
fn boxctl_with(env: &Env, kill_at: &str, path_prefix: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_boxctl"));
    c.arg("--root")
        .arg(&env.root)
        .arg("--runtime")
        .arg(&env.runtime)
        .args(args)
        .env("RELI_KILL_AT", kill_at)
        .env("BOXCTL_LOG_MAX", "65536")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(pre) = path_prefix {
        let path = std::env::var("PATH").unwrap_or_default();
        c.env("PATH", format!("{}:{path}", pre.display()));
    }
    let child = c.spawn().expect("spawn boxctl");
    let pid = child.id() as i32;
    let waiter = std::thread::spawn(move || child.wait_with_output());
    if !wait_pid(pid, 120) {
        // SAFETY: killing the boxctl this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        panic!("boxctl {args:?} did not finish within 120 s");
    }
    waiter.join().expect("waiter").expect("wait boxctl")
}

/// The real runtime boxctl tests use, and a wrapper in front of it.
fn wrapped_env(tag: &str) -> Env {
    let mut env = Env::new(tag);
    let real = env.runtime.clone();
    env.runtime = killing_wrapper(&env.dir, "rt", &real).display().to_string();
    env
}

/// ps -a agrees with the instance directories; every status is one boxctl knows.
fn assert_consistent(env: &Env) -> Vec<serde_json::Value> {
    let all = env.ps_all();
    let mut recorded: Vec<String> = all
        .iter()
        .map(|i| i["id"].as_str().unwrap_or("").to_string())
        .collect();
    recorded.sort();
    let mut dirs = env.instance_dirs();
    dirs.sort();
    assert_eq!(recorded, dirs, "instance file and directories disagree");
    for i in &all {
        let st = i["status"].as_str().unwrap_or("");
        assert!(
            ["created", "running", "exited"].contains(&st),
            "unexpected status {st}: {i}"
        );
    }
    all
}

/// Nothing of `ids` left: instances, mounts, loops, cgroups, runtime state, processes.
fn assert_all_gone(env: &Env, ids: &[String], marker: &str) {
    assert!(env.ps_all().is_empty(), "{:?}", env.ps_all());
    assert!(env.instance_dirs().is_empty(), "{:?}", env.instance_dirs());
    env.assert_no_leaks(ids);
    let rt: Vec<_> = std::fs::read_dir(env.root.join("runtime"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let rt: Vec<_> = rt.into_iter().filter(|n| ids.contains(n)).collect();
    assert!(rt.is_empty(), "runtime state left: {rt:?}");
    for id in ids {
        for c in ["pids", "memory", "freezer", "unified"] {
            for parent in ["boxrun", "boxctl"] {
                let p = Path::new("/sys/fs/cgroup").join(c).join(parent).join(id);
                assert!(!p.exists(), "leaked cgroup {}", p.display());
            }
        }
        for idx in 0..2 {
            let v = boxctl_network::veth_name_for(id, idx);
            assert!(
                !Path::new("/sys/class/net").join(&v).exists(),
                "leaked veth {v}"
            );
        }
    }
    assert!(
        live_with(marker).is_empty(),
        "container processes left: {:?}",
        live_with(marker)
    );
}

/// Live (non-zombie) processes whose command line contains `marker`.
fn live_with(marker: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmd).contains(marker) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].chars().next())
            .unwrap_or('Z');
        if state != 'Z' && state != 'X' {
            v.push(pid);
        }
    }
    v
}

fn marker(tag: &str) -> String {
    format!("reli{}{tag}", std::process::id())
}

fn sleeper_args<'a>(name: &'a str, script: &'a str) -> Vec<&'a str> {
    vec!["run", "-d", "--name", name, "bb", "sh", "-c", script]
}

/// `run -d` with its monitor killed at a runtime step: reconciled by ps, removed by rm -f.
fn crash_run_at(point: &str) {
    let env = wrapped_env(&format!("rk{}", point.replace(':', "")));
    let m = marker(&point.replace(':', ""));
    let script = format!("sleep 1000; : {m}");
    let args = sleeper_args("x", &script);
    let o = boxctl_with(&env, point, None, &args);
    assert!(
        shot_fired(&env.dir, "rt"),
        "{point}: the runtime step never ran: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.starts_with("boxctl: error: ") && err.trim_end().lines().count() == 1,
            "{point}: {err:?}"
        );
    }
    let all = assert_consistent(&env);
    eprintln!(
        "{point}: boxctl {:?}: {}; ps: {:?}",
        o.status,
        String::from_utf8_lossy(&o.stderr).trim(),
        all.iter()
            .map(|i| format!("{} {}", i["status"], i["state"]))
            .collect::<Vec<_>>()
    );
    let ids: Vec<String> = all
        .iter()
        .map(|i| i["id"].as_str().unwrap_or("").to_string())
        .collect();
    // a second look changes nothing
    assert_eq!(assert_consistent(&env).len(), all.len());
    for id in &ids {
        env.ok(&["rm", "-f", id]);
    }
    assert_all_gone(&env, &ids, &m);
    // the name is free again and works
    env.ok(&["run", "-d", "--name", "x", "bb", "sleep", "1000"]);
    let id = env.inspect("x")["id"].as_str().unwrap_or("").to_string();
    env.ok(&["rm", "-f", "x"]);
    assert_all_gone(&env, &[id], &m);
}

#[test]
fn crash_run_before_runtime_create() {
    crash_run_at("create:before");
}

#[test]
fn crash_run_after_runtime_create() {
    crash_run_at("create:after");
}

#[test]
fn crash_run_before_runtime_start() {
    crash_run_at("start:before");
}

#[test]
fn crash_run_after_runtime_start() {
    crash_run_at("start:after");
}

/// Killed after network set-up (veth, netns, address) and before the container exists.
#[test]
fn crash_run_after_network_setup() {
    let env = wrapped_env("reli-net");
    let net = format!("rn{}", std::process::id() % 100_000);
    let pre = env.create_network(214, &[&net]);
    struct Rm<'a>(&'a Env, String);
    impl Drop for Rm<'_> {
        fn drop(&mut self) {
            for id in self.0.ps_all().iter().filter_map(|i| i["id"].as_str()) {
                let _ = self.0.boxctl(&["rm", "-f", id]);
            }
            let _ = self.0.boxctl(&["network", "rm", &self.1]);
        }
    }
    let _guard = Rm(&env, net.clone());
    let m = marker("net");
    let script = format!("sleep 1000; : {m}");
    let mut args = sleeper_args("n", &script);
    args.splice(2..2, ["--net", net.as_str()]);
    let _ = boxctl_with(&env, "create:before", None, &args);
    assert!(shot_fired(&env.dir, "rt"));
    let all = assert_consistent(&env);
    let ids: Vec<String> = all
        .iter()
        .map(|i| i["id"].as_str().unwrap_or("").to_string())
        .collect();
    for id in &ids {
        env.ok(&["rm", "-f", id]);
    }
    assert_all_gone(&env, &ids, &m);
    // the address was released: the next instance gets the first host address again
    env.ok(&[
        "run", "-d", "--name", "again", "--net", &net, "bb", "sleep", "1000",
    ]);
    let got = env.inspect("again")["networks"][0]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        got.ends_with(&format!("{pre}2/24")),
        "address not released: {got}"
    );
    env.ok(&["rm", "-f", "again"]);
}

/// `stop` and `rm` killed at the runtime's kill/delete: reconciled by the next command.
fn crash_cli_at(cmd: &[&str], point: &str) {
    let env = wrapped_env(&format!("ck{}", point.replace(':', "")));
    let m = marker(&format!("{}{}", cmd[0], point.replace(':', "")));
    let script = format!("sleep 1000; : {m}");
    env.ok(&sleeper_args("x", &script));
    let id = env.inspect("x")["id"].as_str().unwrap_or("").to_string();
    let o = boxctl_with(&env, point, None, cmd);
    assert!(
        shot_fired(&env.dir, "rt"),
        "{cmd:?} {point}: never reached: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.signal() == Some(libc::SIGKILL) || o.status.code().is_some());
    assert_consistent(&env);
    // the same command again finishes the job
    let o = env.boxctl(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} after a crash at {point}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_consistent(&env);
    let _ = env.boxctl(&["rm", "-f", "x"]);
    assert_all_gone(&env, &[id], &m);
}

#[test]
fn crash_stop_before_runtime_kill() {
    crash_cli_at(&["stop", "-t", "1", "x"], "kill:before");
}

#[test]
fn crash_stop_after_runtime_kill() {
    crash_cli_at(&["stop", "-t", "1", "x"], "kill:after");
}

#[test]
fn crash_rm_before_runtime_delete() {
    crash_cli_at(&["rm", "-f", "x"], "delete:before");
}

#[test]
fn crash_rm_after_runtime_delete() {
    crash_cli_at(&["rm", "-f", "x"], "delete:after");
}

/// `image import` killed before and after mkfs.ext4: no half image is listed, the name
/// can be imported again, nothing is mounted or attached.
#[test]
fn crash_image_import_around_mkfs() {
    for point in ["mkfs:before", "mkfs:after"] {
        let env = Env::empty(&format!("ri{}", point.replace(':', "")));
        let bin = env.dir.join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir bin");
        let real = ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("mkfs.ext4");
        killing_wrapper(&bin, "mkfs.ext4", real);
        let rootfs = env.dir.join("rootfs-src");
        let st = Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles/busybox/build-rootfs.sh"),
        )
        .arg(&rootfs)
        .status()
        .expect("build-rootfs.sh");
        assert!(st.success());
        let o = boxctl_with(
            &env,
            point,
            Some(&bin),
            &[
                "image",
                "import",
                "--size",
                "64m",
                rootfs.to_str().unwrap_or(""),
                "bb",
            ],
        );
        assert!(
            shot_fired(&bin, "mkfs.ext4"),
            "{point}: mkfs never ran: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.signal(), Some(libc::SIGKILL), "{point}");
        let ls = env.ok(&["image", "ls"]);
        assert!(
            !ls.lines()
                .skip(1)
                .any(|l| l.split_whitespace().next() == Some("bb")),
            "{point}: half image listed: {ls}"
        );
        env.assert_no_leaks(&[]);
        env.ok(&[
            "image",
            "import",
            "--size",
            "64m",
            rootfs.to_str().unwrap_or(""),
            "bb",
        ]);
        env.ok(&["run", "--name", "t", "bb", "true"]);
        env.ok(&["rm", "-f", "t"]);
        env.ok(&["image", "rm", "bb"]);
        let left: Vec<_> = std::fs::read_dir(env.root.join("images"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "{point}: left in images/: {left:?}");
        env.assert_no_leaks(&[]);
    }
}

/// 20 concurrent writers (10 updates of existing instances, 10 creates) lose nothing.
#[test]
fn concurrent_commands_never_lose_an_update() {
    let env = Env::new("reli-conc");
    for k in 0..10 {
        env.ok(&["create", "--name", &format!("u{k}"), "bb", "sleep", "1000"]);
    }
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..20)
            .map(|k| {
                let env = &env;
                s.spawn(move || {
                    if k < 10 {
                        env.boxctl(&[
                            "update",
                            &format!("u{k}"),
                            "--memory",
                            &format!("{}m", 16 + k),
                        ])
                    } else {
                        env.boxctl(&["create", "--name", &format!("n{k}"), "bb", "true"])
                    }
                })
            })
            .collect();
        for h in hs {
            let o = h.join().expect("join");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
    });
    let all = assert_consistent(&env);
    assert_eq!(all.len(), 20);
    for k in 0..10 {
        assert_eq!(
            env.inspect(&format!("u{k}"))["memory"],
            (16 + k) << 20,
            "update of u{k} lost"
        );
    }
    for k in 10..20 {
        assert!(
            all.iter().any(|i| i["name"] == format!("n{k}")),
            "create of n{k} lost"
        );
    }
    let ids: Vec<String> = all
        .iter()
        .map(|i| i["id"].as_str().unwrap_or("").to_string())
        .collect();
    std::thread::scope(|s| {
        for id in &ids {
            let env = &env;
            s.spawn(move || env.ok(&["rm", "-f", id]));
        }
    });
    assert_all_gone(&env, &ids, "reli-never-used");
}

/// 50 instances run and removed, 5 at a time: zero leaks.
#[test]
fn fifty_instances_zero_leaks() {
    let env = Env::new("reli-50");
    let m = marker("fifty");
    let script = format!("sleep 1000; : {m}");
    let t0 = std::time::Instant::now();
    let ids = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in 0..5 {
            let (env, ids, script) = (&env, &ids, &script);
            s.spawn(move || {
                for k in 0..10 {
                    let name = format!("f{w}-{k}");
                    env.ok(&sleeper_args(&name, script));
                    let id = env.inspect(&name)["id"].as_str().unwrap_or("").to_string();
                    ids.lock().expect("ids").push(id);
                }
            });
        }
    });
    let ids = ids.into_inner().expect("ids");
    assert_eq!(ids.len(), 50);
    let all = assert_consistent(&env);
    assert_eq!(all.len(), 50);
    assert!(
        all.iter().all(|i| i["status"] == "running"),
        "not all running"
    );
    std::thread::scope(|s| {
        for w in 0..5 {
            let env = &env;
            s.spawn(move || {
                for k in 0..10 {
                    env.ok(&["rm", "-f", &format!("f{w}-{k}")]);
                }
            });
        }
    });
    assert_all_gone(&env, &ids, &m);
    eprintln!("50 instances up and down in {:?}", t0.elapsed());
}
