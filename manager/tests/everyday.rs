//! End-to-end tests of the small everyday commands: cp, top, port, rename,
//! pause/unpause, prune, image inspect, system df (root required).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Env, NetGuard};

fn id_of(env: &Env, name: &str) -> String {
    env.inspect(name)["id"].as_str().unwrap().to_string()
}

fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn state_of(env: &Env, name: &str) -> String {
    env.inspect(name)["state"].as_str().unwrap().to_string()
}

/// A host tree: d/a (0640), d/sub/run.sh (4755), d/link -> a, d/sub (0750).
fn make_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a"), "alpha\n").unwrap();
    std::fs::write(dir.join("sub/run.sh"), "#!/bin/sh\necho ran\n").unwrap();
    std::os::unix::fs::symlink("a", dir.join("link")).unwrap();
    std::fs::set_permissions(dir.join("a"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::set_permissions(
        dir.join("sub/run.sh"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::set_permissions(dir.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
}

fn assert_tree(dir: &Path) {
    assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "alpha\n");
    assert_eq!(mode_of(&dir.join("a")), 0o640);
    assert_eq!(mode_of(&dir.join("sub/run.sh")), 0o4755);
    assert_eq!(mode_of(&dir.join("sub")), 0o750);
    assert_eq!(
        std::fs::read_link(dir.join("link")).unwrap(),
        Path::new("a")
    );
}

#[test]
fn cp_both_ways_with_a_tree_and_its_modes() {
    let env = Env::new("cp");
    env.ok(&["run", "-d", "--name", "c", "bb", "sleep", "1000"]);
    let src = env.dir.join("src");
    make_tree(&src);
    // Into an existing directory: lands as /tmp/src.
    env.ok(&["cp", src.to_str().unwrap(), "c:/tmp"]);
    let out = env.ok(&[
        "exec",
        "c",
        "sh",
        "-c",
        "stat -c '%a %n' /tmp/src/a /tmp/src/sub /tmp/src/sub/run.sh && readlink /tmp/src/link && /tmp/src/sub/run.sh",
    ]);
    assert_eq!(
        out,
        "640 /tmp/src/a\n750 /tmp/src/sub\n4755 /tmp/src/sub/run.sh\na\nran\n"
    );
    // Out to a new path: the tree itself, with its modes.
    let back = env.dir.join("back");
    env.ok(&["cp", "c:/tmp/src", back.to_str().unwrap()]);
    assert_tree(&back);
    // A single file to a new name, and `/.` copying a directory's contents.
    env.ok(&["cp", "c:/etc/passwd", env.dir.join("pw").to_str().unwrap()]);
    assert!(std::fs::read_to_string(env.dir.join("pw"))
        .unwrap()
        .starts_with("root:"));
    env.ok(&["cp", &format!("{}/.", src.display()), "c:/tmp/flat"]);
    assert_eq!(env.ok(&["exec", "c", "cat", "/tmp/flat/a"]), "alpha\n");
    let id = id_of(&env, "c");
    env.ok(&["rm", "-f", "c"]);
    env.assert_no_leaks(&[id]);
}

#[test]
fn cp_out_of_and_into_a_stopped_instance() {
    let env = Env::new("cpstop");
    env.ok(&["run", "-d", "--name", "s", "bb", "sleep", "1000"]);
    env.ok(&[
        "exec",
        "s",
        "sh",
        "-c",
        "mkdir /data && echo made-inside > /data/f && chmod 600 /data/f && sync",
    ]);
    env.ok(&["stop", "-t", "1", "s"]);
    assert!(state_of(&env, "s").starts_with("Exited"));
    let out = env.dir.join("out");
    env.ok(&["cp", "s:/data", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("f")).unwrap(),
        "made-inside\n"
    );
    assert_eq!(mode_of(&out.join("f")), 0o600);
    // The disk is unmounted again after the copy.
    assert!(env.disk_mounts().is_empty());
    std::fs::write(env.dir.join("in"), "from-host\n").unwrap();
    env.ok(&["cp", env.dir.join("in").to_str().unwrap(), "s:/data/in"]);
    assert!(env.disk_mounts().is_empty());
    assert!(env.disk_loops().is_empty());
    env.ok(&["start", "s"]);
    assert_eq!(env.ok(&["exec", "s", "cat", "/data/in"]), "from-host\n");
    let id = id_of(&env, "s");
    env.ok(&["rm", "-f", "s"]);
    env.assert_no_leaks(&[id]);
}

#[test]
fn cp_never_follows_a_symlink_out_of_the_root() {
    let env = Env::new("cpesc");
    // A host directory with a secret, named by absolute symlinks in the instance.
    let secret_dir = env.dir.join("hostsecret");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("shadow"), "HOST-SECRET\n").unwrap();
    let sd = secret_dir.to_str().unwrap();
    env.ok(&["run", "-d", "--name", "e", "bb", "sleep", "1000"]);
    env.ok(&[
        "exec",
        "e",
        "sh",
        "-c",
        &format!("ln -s {sd} /escape && ln -s {sd}/shadow /leak && ln -s ../../../../../.. /up"),
    ]);
    let out = env.dir.join("got");
    // Through a directory symlink: resolved in the instance, where it does not exist.
    let err = env.fails(&["cp", "e:/escape/shadow", out.to_str().unwrap()]);
    assert!(err.contains("cannot open directory"), "{err}");
    assert!(!out.exists());
    // `..` cannot climb out either.
    env.fails(&[
        "cp",
        &format!("e:/up/{}", secret_dir.join("shadow").display()),
        out.to_str().unwrap(),
    ]);
    assert!(!out.exists());
    // The last component is copied as the link it is, not read through.
    env.ok(&["cp", "e:/leak", out.to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(&out)
        .unwrap()
        .file_type()
        .is_symlink());
    // Writing through the symlink stays in the instance.
    let planted = env.dir.join("planted");
    std::fs::write(&planted, "x\n").unwrap();
    env.fails(&["cp", planted.to_str().unwrap(), "e:/escape/planted"]);
    assert!(!secret_dir.join("planted").exists());
    env.ok(&["exec", "e", "mkdir", "-p", sd]);
    env.ok(&["cp", planted.to_str().unwrap(), "e:/escape/planted"]);
    assert!(!secret_dir.join("planted").exists(), "written on the host");
    assert_eq!(
        env.ok(&["exec", "e", "cat", &format!("{sd}/planted")]),
        "x\n"
    );
    // A symlink as the last component of a destination is not written through.
    env.ok(&["exec", "e", "ln", "-s", &format!("{sd}/victim"), "/tmp/dst"]);
    env.ok(&["cp", planted.to_str().unwrap(), "e:/tmp/dst"]);
    assert!(!secret_dir.join("victim").exists());
    assert_eq!(env.ok(&["exec", "e", "cat", "/tmp/dst"]), "x\n");
    assert_eq!(
        std::fs::read_to_string(secret_dir.join("shadow")).unwrap(),
        "HOST-SECRET\n"
    );
    let id = id_of(&env, "e");
    env.ok(&["rm", "-f", "e"]);
    env.assert_no_leaks(&[id]);
}

#[test]
fn top_lists_the_instance_processes() {
    let env = Env::new("top");
    env.ok(&["run", "-d", "--name", "t", "bb", "sleep", "4242"]);
    let out = env.ok(&["top", "t"]);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().contains("PID"), "{out}");
    assert!(lines.any(|l| l.contains("sleep 4242")), "{out}");
    assert!(!out.contains("cargo"), "host processes listed: {out}");
    let out = env.ok(&["top", "t", "-o", "pid,args"]);
    assert!(
        out.lines().next().unwrap().trim_start().starts_with("PID"),
        "{out}"
    );
    assert!(out.contains("sleep 4242"), "{out}");
    env.ok(&["stop", "-t", "0", "t"]);
    let err = env.fails(&["top", "t"]);
    assert!(err.contains("is not running"), "{err}");
}

#[test]
fn port_prints_published_ports_as_docker_does() {
    let env = Env::new("port");
    let net = format!("tp{}", std::process::id() % 100_000);
    env.create_network(214, &[&net]);
    let _guard = NetGuard(&env, net.clone());
    env.ok(&[
        "create",
        "--name",
        "w",
        "--net",
        &net,
        "-p",
        "127.0.0.1:18080:80",
        "-p",
        "18443:443",
        "bb",
        "sleep",
        "100",
    ]);
    assert_eq!(
        env.ok(&["port", "w"]),
        "80/tcp -> 127.0.0.1:18080\n443/tcp -> 0.0.0.0:18443\n"
    );
    assert_eq!(
        env.ok(&["port", "w", "443/tcp"]),
        "443/tcp -> 0.0.0.0:18443\n"
    );
    let err = env.fails(&["port", "w", "22"]);
    assert!(err.contains("no published port 22"), "{err}");
    env.fails(&["port", "w", "80/udp"]);
    env.ok(&["create", "--name", "np", "bb", "true"]);
    assert_eq!(env.ok(&["port", "np"]), "");
}

#[test]
fn rename_changes_the_name_everywhere_and_refuses_duplicates() {
    let env = Env::new("rename");
    env.ok(&["run", "-d", "--name", "old", "bb", "sleep", "1000"]);
    env.ok(&["create", "--name", "other", "bb", "true"]);
    let id = id_of(&env, "old");
    env.ok(&["rename", "old", "new"]);
    let names: Vec<String> = env
        .ps_all()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"new".to_string()) && !names.contains(&"old".to_string()),
        "{names:?}"
    );
    assert_eq!(id_of(&env, "new"), id);
    let err = env.fails(&["inspect", "old"]);
    assert!(err.contains("no such instance: old"), "{err}");
    // Still the same running instance under its new name.
    assert_eq!(env.ok(&["exec", "new", "echo", "hi"]), "hi\n");
    let file = std::fs::read_to_string(env.root.join("instances.toml")).unwrap();
    let err = env.fails(&["rename", "new", "other"]);
    assert!(err.contains("already used"), "{err}");
    env.fails(&["rename", "new", "bad name"]);
    env.fails(&["rename", "missing", "x"]);
    assert_eq!(
        std::fs::read_to_string(env.root.join("instances.toml")).unwrap(),
        file,
        "a refused rename changed the instance file"
    );
    let ev = env.ok(&["events"]);
    assert!(
        ev.lines()
            .any(|l| l.contains("rename") && l.contains("new")),
        "{ev}"
    );
    // Instances of a farm that is up keep their names (down and scale find them so).
    std::fs::create_dir_all(env.root.join("farms")).unwrap();
    let rec = serde_json::json!({
        "text": "name = \"f1\"\n[services.web]\nimage = \"bb\"\n",
        "dir": env.dir,
        "overrides": {},
    });
    std::fs::write(env.root.join("farms/f1.json"), rec.to_string()).unwrap();
    env.ok(&["create", "--name", "f1-web", "bb", "true"]);
    let err = env.fails(&["rename", "f1-web", "mine"]);
    assert!(err.contains("belongs to farm f1"), "{err}");
    let err = env.fails(&["rename", "other", "f1-web-2"]);
    assert!(err.contains("belongs to farm f1"), "{err}");
    env.ok(&["rm", "-f", "new", "other", "f1-web"]);
    env.assert_no_leaks(&[id]);
}

/// The freezer state of instance `id`'s cgroup (v1 freezer or v2 cgroup.freeze).
fn freezer_state(id: &str) -> String {
    let v1 = Path::new("/sys/fs/cgroup/freezer/boxctl")
        .join(id)
        .join("freezer.state");
    if let Ok(s) = std::fs::read_to_string(&v1) {
        return s.trim().to_string();
    }
    for base in ["/sys/fs/cgroup/boxctl", "/sys/fs/cgroup/unified/boxctl"] {
        if let Ok(s) = std::fs::read_to_string(Path::new(base).join(id).join("cgroup.freeze")) {
            return if s.trim() == "1" { "FROZEN" } else { "THAWED" }.into();
        }
    }
    panic!("no freezer found for {id}");
}

#[test]
fn pause_freezes_and_unpause_resumes() {
    let env = Env::new("pause");
    env.ok(&["run", "-d", "--name", "p", "bb", "sleep", "1000"]);
    let id = id_of(&env, "p");
    assert_eq!(freezer_state(&id), "THAWED");
    env.ok(&["pause", "p"]);
    assert_eq!(freezer_state(&id), "FROZEN");
    assert!(
        state_of(&env, "p").contains("(Paused)"),
        "{}",
        state_of(&env, "p")
    );
    assert_eq!(env.inspect("p")["paused"], true);
    let ps = env.ok(&["ps"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    let err = env.fails(&["pause", "p"]);
    assert!(err.contains("already paused"), "{err}");
    let err = env.fails(&["exec", "p", "true"]);
    assert!(err.contains("is paused"), "{err}");
    env.ok(&["unpause", "p"]);
    assert_eq!(freezer_state(&id), "THAWED");
    assert!(!state_of(&env, "p").contains("Paused"));
    assert_eq!(env.ok(&["exec", "p", "echo", "alive"]), "alive\n");
    let err = env.fails(&["unpause", "p"]);
    assert!(err.contains("not paused"), "{err}");
    // Stop of a paused instance: thawed first, else its SIGKILL would wait
    // for a thaw and stop would fail after 10 s (sleep as pid 1 ignores SIGTERM).
    env.ok(&["pause", "p"]);
    let t = std::time::Instant::now();
    env.ok(&["stop", "-t", "1", "p"]);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        t.elapsed()
    );
    assert!(state_of(&env, "p").starts_with("Exited"));
    assert_eq!(env.inspect("p")["paused"], serde_json::Value::Null);
    // And rm -f of a paused one.
    env.ok(&["start", "p"]);
    env.ok(&["pause", "p"]);
    env.ok(&["rm", "-f", "p"]);
    env.fails(&["pause", "p"]);
    assert!(!Path::new("/sys/fs/cgroup/freezer/boxctl")
        .join(&id)
        .exists());
    env.assert_no_leaks(&[id]);
}

#[test]
fn prune_removes_exactly_exited_instances_and_unused_images() {
    let env = Env::new("prune");
    let src = env.dir.join("rootfs-src");
    env.ok(&[
        "image",
        "import",
        "--size",
        "64m",
        src.to_str().unwrap(),
        "spare",
    ]);
    env.ok(&["run", "-d", "--name", "up", "bb", "sleep", "1000"]);
    env.ok(&["run", "-d", "--name", "done", "bb", "true"]);
    assert_eq!(env.ok(&["wait", "done"]), "0\n");
    env.ok(&["create", "--name", "fresh", "bb", "true"]);
    env.ok(&["volume", "create", "--size", "16m", "loose"]);
    let done_id = id_of(&env, "done");
    let before = std::fs::read_to_string(env.root.join("instances.toml")).unwrap();

    // No terminal and no -f: refused, nothing removed.
    let err = env.fails(&["prune"]);
    assert!(err.contains("pass -f"), "{err}");
    assert_eq!(
        std::fs::read_to_string(env.root.join("instances.toml")).unwrap(),
        before
    );
    env.ok(&["image", "inspect", "spare"]);

    let out = env.ok(&["prune", "-f"]);
    assert!(out.contains("deleted instances: done"), "{out}");
    assert!(out.contains("deleted images: spare"), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert!(!out.contains("volumes"), "{out}");
    let names: Vec<String> = env
        .ps_all()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"up".into()) && names.contains(&"fresh".into()));
    assert!(!env.root.join("instances").join(&done_id).exists());
    env.fails(&["image", "inspect", "spare"]);
    env.ok(&["image", "inspect", "bb"]);
    env.ok(&["volume", "inspect", "loose"]);
    // Nothing left to prune but the volume, with --volumes.
    let out = env.ok(&["prune", "-f", "--volumes"]);
    assert!(out.contains("deleted volumes: loose"), "{out}");
    assert!(!out.contains("deleted instances"), "{out}");
    env.fails(&["volume", "inspect", "loose"]);
    let up = id_of(&env, "up");
    env.ok(&["rm", "-f", "up", "fresh"]);
    env.assert_no_leaks(&[up, done_id]);
}

#[test]
fn image_inspect_and_system_df() {
    let env = Env::new("df");
    env.ok(&["run", "-d", "--name", "a", "bb", "sleep", "1000"]);
    env.ok(&["run", "-d", "--name", "b", "bb", "true"]);
    env.ok(&["wait", "b"]);
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["image", "inspect", "bb"])).unwrap();
    let img = &v[0];
    assert_eq!(img["name"], "bb");
    assert_eq!(img["size"], 64 << 20);
    assert!(img["disk"]
        .as_str()
        .unwrap()
        .ends_with("images/bb/disk.img"));
    assert!(img["disk_allocated"].as_u64().unwrap() > 0);
    assert!(img["created"].is_string() && img["config"].is_object());
    let mut users: Vec<_> = img["used_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    users.sort();
    assert_eq!(users, ["a", "b"]);

    let rows: serde_json::Value =
        serde_json::from_str(&env.ok(&["system", "df", "--json"])).unwrap();
    let row = |k: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == k)
            .unwrap()
            .clone()
    };
    let (images, instances, volumes) = (row("images"), row("instances"), row("volumes"));
    assert_eq!(
        (images["total"].as_u64(), images["active"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(images["reclaimable"], 0);
    assert!(images["size"].as_u64().unwrap() > 0);
    assert_eq!(
        (instances["total"].as_u64(), instances["active"].as_u64()),
        (Some(2), Some(1))
    );
    let (size, recl) = (
        instances["size"].as_u64().unwrap(),
        instances["reclaimable"].as_u64().unwrap(),
    );
    assert!(recl > 0 && recl < size, "{instances}");
    assert_eq!(volumes["total"], 0);
    let table = env.ok(&["system", "df"]);
    let mut lines = table.lines();
    let head: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    let kinds: Vec<_> = lines
        .by_ref()
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    // On a store that cannot reflink (ext4), the storage pool is listed too.
    let pooled = env.root.join("pool/pool.img").exists();
    let mut want = vec!["Images", "Instances", "Volumes"];
    if pooled {
        want.push("Pool");
        assert!(lines.next().unwrap().starts_with("POOL"), "{table}");
    }
    assert_eq!(kinds, want);
    env.ok(&["rm", "-f", "a", "b"]);
}

#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    let env = Env::new("cmdbad");
    env.ok(&["create", "--name", "x", "bb", "true"]);
    env.ok(&["create", "--name", "ro", "--read-only", "bb", "true"]);
    let file = std::fs::read_to_string(env.root.join("instances.toml")).unwrap();
    let host = env.dir.join("h");
    std::fs::write(&host, "h\n").unwrap();
    let h = host.to_str().unwrap();
    let cases: &[&[&str]] = &[
        &["cp", h, "/tmp/else"],
        &["cp", "x:/etc/passwd", "x:/tmp/p"],
        &["cp", h, "nope:/tmp"],
        &["cp", h, "x:tmp/rel"],
        &["cp", "x:/no/such/file", "/tmp/never"],
        &["cp", "-", "-"],
        &["cp", h, "x:/missing/dir/"],
        &["cp", h, "ro:/tmp/x"],
        &["top", "x"],
        &["top", "nope"],
        &["port", "nope"],
        &["pause", "x"],
        &["unpause", "x"],
        &["rename", "x", "-bad"],
        &["rename", "x", "x"],
        &["image", "inspect", "nope"],
        &["image", "inspect", "../bb"],
    ];
    for args in cases {
        env.fails(args);
    }
    assert!(!Path::new("/tmp/never").exists());
    assert!(!Path::new("/tmp/else").exists());
    assert_eq!(
        std::fs::read_to_string(env.root.join("instances.toml")).unwrap(),
        file,
        "bad input changed the instance file"
    );
    assert!(env.disk_mounts().is_empty());
    assert!(env.disk_loops().is_empty());
    env.ok(&["rm", "x", "ro"]);
}

#[test]
fn cp_into_a_created_copy_on_write_instance() {
    let env = Env::new("cpcow");
    env.ok(&["create", "--name", "w", "--cow", "bb", "cat", "/greeting"]);
    std::fs::write(env.dir.join("g"), "hello cow\n").unwrap();
    env.ok(&["cp", env.dir.join("g").to_str().unwrap(), "w:/greeting"]);
    assert!(env.disk_mounts().is_empty());
    assert!(env.disk_loops().is_empty());
    let id = id_of(&env, "w");
    env.ok(&["start", "w"]);
    assert_eq!(env.ok(&["wait", "w"]), "0\n");
    assert_eq!(env.ok(&["logs", "w"]), "hello cow\n");
    // The shared image is untouched.
    env.ok(&[
        "run",
        "--name",
        "plain",
        "bb",
        "sh",
        "-c",
        "test ! -e /greeting",
    ]);
    env.ok(&["rm", "-f", "w", "plain"]);
    env.assert_no_leaks(&[id]);
}

/// boxctl with `input` on its stdin; returns its output.
fn boxctl_with_stdin(env: &Env, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_boxctl"))
        .arg("--root")
        .arg(&env.root)
        .arg("--runtime")
        .arg(&env.runtime)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

#[test]
fn cp_with_a_tar_stream_both_ways() {
    let env = Env::new("cptar");
    env.ok(&["run", "-d", "--name", "t", "bb", "sleep", "1000"]);
    let src = env.dir.join("src");
    make_tree(&src);
    // In: a tar of the tree made by the host's tar, into an existing directory.
    let tar = std::process::Command::new("tar")
        .args(["-c", "-C"])
        .arg(env.dir.as_os_str())
        .arg("src")
        .output()
        .unwrap();
    assert!(tar.status.success());
    let out = boxctl_with_stdin(&env, &["cp", "-", "t:/tmp"], &tar.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        env.ok(&["exec", "t", "stat", "-c", "%a", "/tmp/src/sub/run.sh"]),
        "4755\n"
    );
    // Into a missing directory: refused, one line.
    let out = boxctl_with_stdin(&env, &["cp", "-", "t:/nowhere"], &tar.stdout);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    // Out: a tar on stdout, unpacked by the host's tar.
    let out = env.boxctl(&["cp", "t:/tmp/src", "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = env.dir.join("back");
    std::fs::create_dir(&back).unwrap();
    let mut untar = std::process::Command::new("tar")
        .args(["-x", "-p", "-C"])
        .arg(&back)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    untar.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    assert!(untar.wait().unwrap().success());
    assert_tree(&back.join("src"));
    let id = id_of(&env, "t");
    env.ok(&["rm", "-f", "t"]);
    env.assert_no_leaks(&[id]);
}

/// `boxctl ARGS` on a terminal (through script(1)) answering `answer`.
fn on_terminal(env: &Env, args: &str, answer: &str) -> String {
    let cmd = format!(
        "{} --root {} --runtime {} {args}",
        env!("CARGO_BIN_EXE_boxctl"),
        env.root.display(),
        env.runtime
    );
    let out = boxctl_script(&cmd, answer);
    String::from_utf8_lossy(&out).replace('\r', "")
}

fn boxctl_script(cmd: &str, answer: &str) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run script(1)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd} failed");
    out.stdout
}

#[test]
fn prune_on_a_terminal_asks_first() {
    let env = Env::new("pruneask");
    env.ok(&["run", "-d", "--name", "gone", "bb", "true"]);
    assert_eq!(env.ok(&["wait", "gone"]), "0\n");
    let out = on_terminal(&env, "prune", "n\n");
    assert!(out.contains("will remove instances: gone"), "{out}");
    assert!(
        out.contains("[y/N]") && out.contains("nothing removed"),
        "{out}"
    );
    env.ok(&["inspect", "gone"]);
    let id = id_of(&env, "gone");
    let out = on_terminal(&env, "prune", "y\n");
    assert!(out.contains("deleted instances: gone"), "{out}");
    assert!(out.contains("deleted images: bb"), "{out}");
    env.fails(&["inspect", "gone"]);
    env.assert_no_leaks(&[id]);
}

/// `boxctl ps | head -0`: a listing whose reader went away ends quietly, killed
/// by SIGPIPE as `ls` is, not with a panic about a broken pipe (exit 101).
#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::empty("closed-pipe");
    for args in [&["ps", "-a"][..], &["network", "ls"], &["image", "ls"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_boxctl"))
            .arg("--root")
            .arg(&env.root)
            .args(args)
            .stdout(writer)
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {out:?}"
        );
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
