//! linux.resources through boxrun: limits applied at create, `update` (flags and
//! `--resources -` as docker sends it), `events --stats`, OOM kill reported, pids.max.

mod common;
use common::*;
use serde_json::json;
use std::process::{Command, Stdio};

fn read(p: &str) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn limits_update_and_stats() {
    let mut f = Fixture::new();
    let id = format!("res{}", std::process::id());
    f.config["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
    f.config["linux"]["resources"]["pids"] = json!({"limit": 32});
    f.config["linux"]["resources"]["cpu"] =
        json!({"shares": 512, "quota": 50000, "period": 100000});
    f.args(&["/bin/sleep", "100"]);
    assert!(
        f.create(&id).status.success(),
        "{}",
        std::fs::read_to_string(f.dir.join(format!("{id}.err"))).unwrap_or_default()
    );
    assert!(f.run(&["start", &id]).status.success());
    let mem = format!("/sys/fs/cgroup/memory/boxrun/{id}/memory.limit_in_bytes");
    assert_eq!(read(&mem), (64u64 << 20).to_string());
    assert_eq!(
        read(&format!("/sys/fs/cgroup/pids/boxrun/{id}/pids.max")),
        "32"
    );
    assert_eq!(
        read(&format!("/sys/fs/cgroup/cpu/boxrun/{id}/cpu.cfs_quota_us")),
        "50000"
    );

    let o = f.run(&["update", "--memory", "128m", "--pids-limit", "64", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&mem), (128u64 << 20).to_string());
    assert_eq!(
        read(&format!("/sys/fs/cgroup/pids/boxrun/{id}/pids.max")),
        "64"
    );

    // docker: update --resources - with the JSON on stdin
    let res = f.dir.join("res.json");
    std::fs::write(
        &res,
        json!({"memory": {"limit": 96 << 20}, "cpu": {"quota": 20000}}).to_string(),
    )
    .unwrap();
    let st = Command::new(boxrun())
        .arg("--root")
        .arg(&f.root)
        .args(["update", "--resources", "-", &id])
        .stdin(Stdio::from(std::fs::File::open(&res).unwrap()))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(read(&mem), (96u64 << 20).to_string());
    assert_eq!(
        read(&format!("/sys/fs/cgroup/cpu/boxrun/{id}/cpu.cfs_quota_us")),
        "20000"
    );

    // a bad value is an error, not silently dropped
    let o = f.run(&["update", "--memory", "12Q", &id]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("12Q"), "{}", stderr(&o));

    let o = f.run(&["events", "--stats", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], id.as_str());
    assert!(v["data"]["pids"]["current"].as_u64().unwrap() >= 1, "{v}");
    assert!(
        v["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{v}"
    );
}

#[test]
fn oom_kill_and_pids_max_are_enforced() {
    let mut f = Fixture::new();
    let id = format!("oom{}", std::process::id());
    f.config["linux"]["resources"]["memory"] = json!({"limit": 16 << 20, "swap": 16 << 20});
    f.config["linux"]["resources"]["pids"] = json!({"limit": 8});
    f.config["root"]["readonly"] = false.into();
    // the fork bomb stops at pids.max (the shell keeps going: fork failures are reported)
    // (ash exits on a failed fork: run the bomb in an inner shell, then kill its sleeps)
    f.args(&["/bin/sh", "-c", "sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done' 2>/tmp/forkerr; kill -9 -1; wait; grep -c 'fork' /tmp/forkerr"]);
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), &id]);
    let forks: u32 = stdout(&o).trim().parse().unwrap_or(0);
    assert!(
        forks >= 1,
        "pids.max not enforced: {} {}",
        stdout(&o),
        stderr(&o)
    );

    // a process allocating 64 MiB under a 16 MiB limit is OOM-killed; the shell reports it
    f.args(&[
        "/bin/sh",
        "-c",
        "head -c 64m /dev/zero | tail > /dev/null; echo status=$?",
    ]);
    let o = f.run(&[
        "run",
        "--bundle",
        f.bundle.to_str().unwrap(),
        &format!("{id}b"),
    ]);
    let out = stdout(&o);
    // The OOM killer usually picks tail (the shell then prints its status); when it
    // picks the shell itself, the container's own exit status says SIGKILL.
    assert!(
        out.contains("status=137") || o.status.code() == Some(137),
        "memory limit not enforced (nothing SIGKILLed): exit {:?} {out} {}",
        o.status.code(),
        stderr(&o)
    );
}
