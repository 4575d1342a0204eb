//! End-to-end tests of named volumes, bind mounts, tmpfs mounts and
//! read-only roots (root required).

mod common;

use std::path::Path;

use common::{loops_under, wait_pid, Env};

fn id_of(env: &Env, name: &str) -> String {
    env.inspect(name)["id"].as_str().unwrap().to_string()
}

/// Loop devices backed by volume `name`'s disk.
fn volume_loops(env: &Env, name: &str) -> Vec<String> {
    let disk = env.root.join("volumes").join(name).join("volume.img");
    loops_under(&env.root)
        .into_iter()
        .filter(|(_, b)| b == &disk)
        .map(|(d, _)| d)
        .collect()
}

fn volume_names(env: &Env) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["volume", "ls", "--json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn volume_outlives_rm_is_shared_and_refused_removal_while_used() {
    let env = Env::new("vol");
    assert_eq!(
        env.ok(&["volume", "create", "--size", "16m", "data"])
            .trim(),
        "data"
    );
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["volume", "inspect", "data"])).unwrap();
    assert_eq!(v[0]["size"], 16 << 20);
    assert_eq!(v[0]["mounted"], false);

    env.ok(&[
        "run",
        "-d",
        "--name",
        "a",
        "-v",
        "data:/data",
        "bb",
        "sleep",
        "1000",
    ]);
    let a = id_of(&env, "a");
    env.ok(&["exec", "a", "sh", "-c", "echo kept > /data/f && sync"]);
    assert_eq!(volume_loops(&env, "data").len(), 1);
    let i = env.inspect("a");
    assert_eq!(i["volumes"], serde_json::json!(["data:/data"]));
    assert_eq!(i["mounts"][0]["type"], "volume");
    assert_eq!(i["mounts"][0]["destination"], "/data");
    let file = std::fs::read_to_string(env.root.join("instances.toml")).unwrap();
    assert!(file.contains("volumes = [\"data:/data\"]"), "{file}");

    // A second instance shares the one mount of the volume (one loop device).
    env.ok(&[
        "run",
        "-d",
        "--name",
        "b",
        "-v",
        "data:/shared:ro",
        "bb",
        "sleep",
        "1000",
    ]);
    let b = id_of(&env, "b");
    assert_eq!(env.ok(&["exec", "b", "cat", "/shared/f"]).trim(), "kept");
    assert_eq!(volume_loops(&env, "data").len(), 1);
    // :ro is enforced in b while a writes.
    let out = env.boxctl(&["exec", "b", "touch", "/shared/x"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{out:?}"
    );
    env.ok(&["exec", "a", "sh", "-c", "echo more > /data/g"]);
    assert_eq!(env.ok(&["exec", "b", "cat", "/shared/g"]).trim(), "more");

    // Refused while used, by a running or a stopped instance, naming it.
    let err = env.fails(&["volume", "rm", "data"]);
    assert!(err.contains("used by instance a"), "{err}");
    env.ok(&["stop", "-t", "0", "a"]);
    assert_eq!(volume_loops(&env, "data").len(), 1, "b still uses it");
    env.ok(&["stop", "-t", "0", "b"]);
    assert!(
        volume_loops(&env, "data").is_empty(),
        "volume still mounted after stop"
    );
    let err = env.fails(&["volume", "rm", "data"]);
    assert!(err.contains("used by instance"), "{err}");
    let ls = env.ok(&["volume", "ls"]);
    assert!(ls.contains("data") && ls.contains("a,b"), "{ls}");

    // Kept through start; outlives rm of both instances.
    env.ok(&["start", "a"]);
    assert_eq!(env.ok(&["exec", "a", "cat", "/data/f"]).trim(), "kept");
    env.ok(&["rm", "-f", "a", "b"]);
    env.assert_no_leaks(&[a, b]);
    assert_eq!(volume_names(&env), ["data"]);

    // Re-attached to a new instance with its data.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "c",
        "-v",
        "data:/again",
        "bb",
        "sleep",
        "1000",
    ]);
    let c = id_of(&env, "c");
    assert_eq!(
        env.ok(&["exec", "c", "cat", "/again/f", "/again/g"]),
        "kept\nmore\n"
    );
    env.ok(&["rm", "-f", "c"]);
    env.assert_no_leaks(&[c]);
    assert_eq!(env.ok(&["volume", "rm", "data"]).trim(), "data");
    assert!(volume_names(&env).is_empty());
    assert!(!env.root.join("volumes/data").exists());
}

#[test]
fn run_with_a_missing_volume_creates_it() {
    let env = Env::new("volauto");
    let out = env.ok(&[
        "run",
        "--name",
        "w",
        "-v",
        "fresh:/v",
        "bb",
        "sh",
        "-c",
        "echo x > /v/y",
    ]);
    assert_eq!(out, "");
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["volume", "inspect", "fresh"])).unwrap();
    assert_eq!(v[0]["size"], 1u64 << 30, "default size");
    assert_eq!(v[0]["used_by"], serde_json::json!(["w"]));
    let id = id_of(&env, "w");
    env.ok(&["rm", "w"]);
    env.assert_no_leaks(&[id]);
    env.ok(&["volume", "rm", "fresh"]);
}

#[test]
fn bind_mounts_a_host_directory_both_ways() {
    let env = Env::new("bind");
    let host = env.dir.join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from-host\n").unwrap();
    let rw = format!("{}:/h", host.display());
    let ro = format!("{}:/r:ro", host.display());
    env.ok(&[
        "run", "-d", "--name", "b", "-v", &rw, "-v", &ro, "bb", "sleep", "1000",
    ]);
    let id = id_of(&env, "b");
    assert_eq!(
        env.ok(&["exec", "b", "cat", "/h/in.txt"]).trim(),
        "from-host"
    );
    env.ok(&["exec", "b", "sh", "-c", "echo from-box > /h/out.txt"]);
    assert_eq!(
        std::fs::read_to_string(host.join("out.txt")).unwrap(),
        "from-box\n"
    );
    let out = env.boxctl(&["exec", "b", "touch", "/r/nope"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(!host.join("nope").exists());
    assert_eq!(env.inspect("b")["mounts"][1]["read_only"], true);

    // A bound host path removed while the instance is stopped: start says so.
    env.ok(&["stop", "-t", "0", "b"]);
    let moved = env.dir.join("moved");
    std::fs::rename(&host, &moved).unwrap();
    let err = env.fails(&["start", "b"]);
    assert!(err.contains("does not exist"), "{err}");
    env.assert_no_leaks(std::slice::from_ref(&id));
    assert_eq!(env.ps_all()[0]["status"], "exited");
    std::fs::rename(&moved, &host).unwrap();
    env.ok(&["start", "b"]);
    env.ok(&["rm", "-f", "b"]);
    env.assert_no_leaks(&[id]);
    assert!(
        host.join("out.txt").exists(),
        "rm touched the host directory"
    );
}

#[test]
fn tmpfs_size_is_enforced_and_read_only_root_refuses_writes() {
    let env = Env::new("tmpfs");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "t",
        "--read-only",
        "--tmpfs",
        "/scratch:size=1m,mode=1777",
        "bb",
        "sleep",
        "1000",
    ]);
    let id = id_of(&env, "t");
    let out = env.boxctl(&["exec", "t", "touch", "/newfile"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{out:?}"
    );
    assert_eq!(
        env.ok(&["exec", "t", "stat", "-c", "%a", "/scratch"])
            .trim(),
        "1777"
    );
    env.ok(&[
        "exec",
        "t",
        "dd",
        "if=/dev/zero",
        "of=/scratch/ok",
        "bs=64k",
        "count=8",
    ]);
    let out = env.boxctl(&[
        "exec",
        "t",
        "dd",
        "if=/dev/zero",
        "of=/scratch/big",
        "bs=64k",
        "count=32",
    ]);
    assert!(!out.status.success(), "2 MiB fit in a 1 MiB tmpfs: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No space left"),
        "{out:?}"
    );
    assert_eq!(env.inspect("t")["read_only"], true);
    env.ok(&["rm", "-f", "t"]);
    env.assert_no_leaks(&[id]);
}

#[test]
fn io_limits_apply_to_volume_disks() {
    let env = Env::new("volio");
    env.ok(&["volume", "create", "--size", "16m", "iov"]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "io",
        "--io-write-bps",
        "1m",
        "-v",
        "iov:/v",
        "bb",
        "sleep",
        "1000",
    ]);
    let id = id_of(&env, "io");
    let loops = volume_loops(&env, "iov");
    assert_eq!(loops.len(), 1);
    let name = Path::new(&loops[0])
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let dev = std::fs::read_to_string(format!("/sys/block/{name}/dev")).unwrap();
    let dev = dev.trim();
    let throttle = "/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device";
    let t = env.ok(&["exec", "io", "cat", throttle]);
    assert!(
        t.contains(&format!("{dev} 1048576")),
        "{dev} not throttled: {t}"
    );
    env.ok(&["update", "io", "--io-write-bps", "2m"]);
    let t = env.ok(&["exec", "io", "cat", throttle]);
    assert!(
        t.contains(&format!("{dev} 2097152")),
        "{dev} not updated: {t}"
    );
    env.ok(&["rm", "-f", "io"]);
    env.assert_no_leaks(&[id]);
    env.ok(&["volume", "rm", "iov"]);
}

#[test]
fn bad_volume_input_is_one_line_and_leaves_nothing() {
    let env = Env::new("volbad");
    let err = env.fails(&["volume", "rm", "nosuch"]);
    assert!(err.contains("no such volume: nosuch"), "{err}");
    let err = env.fails(&["volume", "inspect", "nosuch"]);
    assert!(err.contains("no such volume"), "{err}");
    let missing = env.dir.join("no-such-dir");
    let m = format!("{}:/x", missing.display());
    let err = env.fails(&["run", "-d", "-v", &m, "bb", "true"]);
    assert!(err.contains("does not exist"), "{err}");
    let err = env.fails(&["run", "-d", "-v", "some/dir:/x", "bb", "true"]);
    assert!(err.contains("relative"), "{err}");
    let err = env.fails(&["run", "-d", "-v", "./dir:/x", "bb", "true"]);
    assert!(err.contains("relative"), "{err}");
    let err = env.fails(&["run", "-d", "-v", "vol:x", "bb", "true"]);
    assert!(err.contains("must be absolute"), "{err}");
    let err = env.fails(&["run", "-d", "-v", "vol:/x:rx", "bb", "true"]);
    assert!(err.contains("unknown mode"), "{err}");
    let err = env.fails(&["run", "-d", "--tmpfs", "rel", "bb", "true"]);
    assert!(err.contains("must be absolute"), "{err}");
    let err = env.fails(&["run", "-d", "--tmpfs", "/t:size=lots", "bb", "true"]);
    assert!(err.contains("size"), "{err}");
    let err = env.fails(&["volume", "create", "--size", "lots", "v1"]);
    assert!(err.contains("--size"), "{err}");
    let err = env.fails(&["volume", "create", "--size", "1m", "v1"]);
    assert!(err.contains("too small"), "{err}");
    let err = env.fails(&["volume", "create", "bad/name"]);
    assert!(err.contains("invalid volume name"), "{err}");
    env.ok(&["volume", "create", "--size", "8m", "v2"]);
    let err = env.fails(&["volume", "create", "v2"]);
    assert!(err.contains("already exists"), "{err}");
    env.ok(&["volume", "rm", "v2"]);
    // What a `volume create` killed midway leaves is cleaned by the next command.
    let stale = env.root.join("volumes/.tmp-999999999-v3");
    std::fs::create_dir(&stale).unwrap();
    assert!(env.ps_all().is_empty());
    assert!(!stale.exists(), "stale volume temp dir kept");
    assert!(env.instance_dirs().is_empty());
    assert!(volume_names(&env).is_empty());
    let left: Vec<_> = std::fs::read_dir(env.root.join("volumes"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "lock")
        .collect();
    assert!(left.is_empty(), "left in the volume store: {left:?}");
    env.assert_no_leaks(&[]);
}

#[test]
fn farm_volumes_are_made_by_up_and_kept_by_down() {
    let env = Env::new("volfarm");
    let file = env.dir.join("farm.toml");
    std::fs::write(
        &file,
        "name = \"vf\"\n[services.app]\nimage = \"bb\"\ncommand = [\"sleep\", \"1000\"]\n\
         volumes = [\"store:/store\"]\ntmpfs = [\"/run/x:size=1m\"]\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = env.ok(&["up", "-f", f]);
    assert!(out.contains("volume vf-store: created"), "{out}");
    env.ok(&["exec", "vf-app", "sh", "-c", "echo farm > /store/f"]);
    let id = id_of(&env, "vf-app");
    env.ok(&["down", "-f", f]);
    env.assert_no_leaks(&[id]);
    assert_eq!(volume_names(&env), ["vf-store"]);
    env.ok(&["up", "-f", f]);
    assert_eq!(
        env.ok(&["exec", "vf-app", "cat", "/store/f"]).trim(),
        "farm"
    );
    let id = id_of(&env, "vf-app");
    let out = env.ok(&["down", "--volumes", "-f", f]);
    assert!(out.contains("volume vf-store: removed"), "{out}");
    env.assert_no_leaks(&[id]);
    assert!(volume_names(&env).is_empty());
}

#[test]
fn volume_is_released_when_monitor_and_instance_are_killed() {
    let env = Env::new("volkill");
    env.ok(&["volume", "create", "--size", "8m", "k"]);
    env.ok(&[
        "run", "-d", "--name", "victim", "-v", "k:/k", "bb", "sleep", "1000",
    ]);
    let i = env.inspect("victim");
    let id = i["id"].as_str().unwrap().to_string();
    let monitor = i["monitor_pid"].as_i64().unwrap() as i32;
    let pid = i["pid"].as_i64().unwrap() as i32;
    assert_eq!(volume_loops(&env, "k").len(), 1);
    // SAFETY: killing the monitor boxctl started for this test, then the container's init.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    assert!(wait_pid(monitor, 10));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_pid(pid, 10));
    // `ps` notices the death and releases the volume with the rest.
    assert_eq!(env.ps_all()[0]["status"], "exited");
    env.assert_no_leaks(std::slice::from_ref(&id));
    env.ok(&["start", "victim"]);
    env.ok(&["exec", "victim", "touch", "/k/after-restart"]);
    env.ok(&["rm", "-f", "victim"]);
    env.assert_no_leaks(&[id]);
    env.ok(&["volume", "rm", "k"]);
}
