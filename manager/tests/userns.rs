//! Unprivileged instances (issue 19): each in its own user namespace, root
//! inside mapped to a host range of 65536 ids recorded in the instance file,
//! its disk, volumes and bind mounts idmapped.

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `(base, size)` of the instance's range, from `inspect`.
fn range(env: &Env, name: &str) -> (u32, u32) {
    let v = env.inspect(name);
    assert_eq!(v["userns"]["mode"], "private", "{v}");
    let n = |k: &str| v["userns"][k].as_u64().expect(k) as u32;
    assert_eq!(n("host_uid"), n("host_gid"));
    (n("host_uid"), n("size"))
}

fn pid(env: &Env, name: &str) -> i64 {
    env.inspect(name)["pid"]
        .as_i64()
        .expect("running instance's pid")
}

fn instance_dir(env: &Env, name: &str) -> PathBuf {
    PathBuf::from(env.inspect(name)["directory"].as_str().expect("directory"))
}

/// A disk image mounted read-only, without idmap, on a directory of the test's
/// own; unmounted (and its loop device released) on drop.
struct RawMount(PathBuf);

impl RawMount {
    fn new(env: &Env, disk: &Path) -> RawMount {
        let dir = env.dir.join("elsewhere");
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-o", "ro,loop,noload"])
            .arg(disk)
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount {} elsewhere failed", disk.display());
        RawMount(dir)
    }
}

impl Drop for RawMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn root_inside_is_the_instance_range_outside() {
    let env = Env::new("userns-id");
    env.ok(&[
        "run", "-d", "--name", "u", "--net", "none", "bb", "sleep", "1000",
    ]);
    let (base, size) = range(&env, "u");
    assert_eq!(size, 65536);
    assert!(base >= 1_000_000_000, "not boxctl's pool: {base}");
    let id = env.ok(&["exec", "u", "id"]);
    assert!(id.starts_with("uid=0(root) gid=0(root)"), "{id}");
    for f in ["uid_map", "gid_map"] {
        let map = env.ok(&["exec", "u", "cat", &format!("/proc/self/{f}")]);
        let fields: Vec<&str> = map.split_whitespace().collect();
        assert_eq!(fields, ["0", &base.to_string(), "65536"], "{f}: {map}");
    }
    // The host sees the instance's root as the range's base uid.
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid(&env, "u"))).unwrap();
    for key in ["Uid:", "Gid:"] {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        assert!(
            line.split_whitespace()
                .skip(1)
                .all(|u| u == base.to_string()),
            "{line}"
        );
    }
    let ps = env.ok(&["ps"]);
    assert!(
        ps.contains("USERNS") && ps.contains(&format!("{base}+65536")),
        "{ps}"
    );
    let rec = std::fs::read_to_string(env.root.join("instances.toml")).unwrap();
    assert!(rec.contains(&format!("userns_base = {base}")), "{rec}");
}

#[test]
fn files_container_root_makes_are_the_range_base_on_the_host() {
    let env = Env::new("userns-own");
    for (name, cow) in [("full", false), ("cow", true)] {
        let mut args = vec!["run", "-d", "--name", name, "--net", "none"];
        if cow {
            args.push("--cow");
        }
        args.extend(["bb", "sleep", "1000"]);
        env.ok(&args);
        let (base, _) = range(&env, name);
        env.ok(&[
            "exec",
            name,
            "sh",
            "-c",
            "echo made > /made && cp /bin/busybox /suid && chmod u+s /suid && ls -ln /made",
        ]);
        let dir = instance_dir(&env, name);
        // The host's view of the rootfs: the image's files (root's inside) and
        // the new ones belong to the range's base; a setuid binary made by
        // container root is setuid to that unprivileged uid, not host root.
        for f in ["bin", "made", "suid"] {
            let m = std::fs::symlink_metadata(dir.join("rootfs").join(f)).unwrap();
            assert_eq!((m.uid(), m.gid()), (base, base), "{name}: rootfs/{f}");
        }
        let suid = std::fs::metadata(dir.join("rootfs/suid")).unwrap();
        assert_ne!(
            suid.mode() & 0o4000,
            0,
            "{name}: the setuid bit was not kept"
        );
        // That view is the idmapped mount stacked on the disk's own mount,
        // which it hides.
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let rootfs = dir.join("rootfs");
        let top = mi
            .lines()
            .rfind(|l| l.split(' ').nth(4) == Some(rootfs.to_str().unwrap()))
            .unwrap_or_default();
        if !cow {
            assert!(top.contains("idmapped"), "{name}: {top}");
        }
        env.ok(&["stop", "-t", "1", name]);
        // The instance's disk mounted elsewhere (no idmap): a full copy keeps
        // the image's on-disk ids (root's, unshifted: images need no chown, and
        // only host root, mounting the disk, sees them so); a copy-on-write
        // instance's upper layer holds what the container wrote with host ids.
        let disk = dir.join(if cow { "upper.img" } else { "disk.img" });
        let raw = RawMount::new(&env, &disk);
        let made = raw.0.join(if cow { "data/made" } else { "made" });
        let m = std::fs::metadata(&made).unwrap();
        let want = if cow { base } else { 0 };
        assert_eq!(m.uid(), want, "{name}: {} on the raw disk", made.display());
        assert_eq!(
            std::fs::metadata(&disk).unwrap().mode() & 0o022,
            0,
            "{name}: the disk file is writable by other host users"
        );
        drop(raw);
        // Started again, the file is still root's inside.
        env.ok(&["start", name]);
        let ls = env.ok(&["exec", name, "stat", "-c", "%u %g", "/made"]);
        assert_eq!(ls.trim(), "0 0", "{name}");
        env.ok(&["rm", "-f", name]);
    }
    env.assert_no_leaks(&[]);
}

#[test]
fn instances_have_disjoint_ranges_freed_on_rm() {
    let env = Env::new("userns-ranges");
    env.ok(&[
        "run", "-d", "--name", "a", "--net", "none", "bb", "sleep", "1000",
    ]);
    env.ok(&[
        "run", "-d", "--name", "b", "--net", "none", "bb", "sleep", "1000",
    ]);
    let (a, sa) = range(&env, "a");
    let (b, sb) = range(&env, "b");
    let (lo, hi, size) = if a < b { (a, b, sa) } else { (b, a, sb) };
    assert!(lo + size <= hi, "ranges overlap: {a}+{sa} and {b}+{sb}");
    for (n, base) in [("a", a), ("b", b)] {
        let map = std::fs::read_to_string(format!("/proc/{}/uid_map", pid(&env, n))).unwrap();
        let fields: Vec<&str> = map.split_whitespace().collect();
        assert_eq!(fields, ["0", &base.to_string(), "65536"], "{n}: {map}");
    }
    // --userns=host, --privileged and --device (a host device node is host
    // root's) opt out, and say so.
    for (n, opt) in [
        ("h", "--userns=host"),
        ("p", "--privileged"),
        ("d", "--device=/dev/loop-control"),
    ] {
        env.ok(&["create", "--name", n, opt, "--net", "none", "bb"]);
    }
    for n in ["h", "p", "d"] {
        let v = env.inspect(n);
        assert_eq!(v["userns"]["mode"], "host", "{n}: {v}");
    }
    let ps = env.ok(&["ps", "-a"]);
    let row = |n: &str| {
        ps.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(n))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("h").trim_end().ends_with("host"), "{ps}");
    assert!(row("a").trim_end().ends_with(&format!("{a}+65536")), "{ps}");
    // A store its instances' root could not reach is refused with the fix.
    use std::os::unix::fs::PermissionsExt;
    let open = std::fs::metadata(&env.dir).unwrap().permissions();
    std::fs::set_permissions(&env.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = env.boxctl(&["create", "--net", "none", "bb"]);
    std::fs::set_permissions(&env.dir, open).unwrap();
    let msg = String::from_utf8_lossy(&err.stderr);
    assert!(!err.status.success() && msg.contains("chmod o+x"), "{msg}");
    // An unknown --userns is refused.
    let err = env.fails(&["create", "--userns=keep-id", "bb"]);
    assert!(err.contains("--userns"), "{err}");
    // rm frees a range: the next instance may get it.
    env.ok(&["rm", "-f", "a"]);
    env.ok(&["create", "--name", "c", "--net", "none", "bb"]);
    assert_eq!(range(&env, "c").0, a.min(b).min(range(&env, "c").0));
    assert_ne!(range(&env, "c").0, b);
}

#[test]
fn a_process_escaping_to_the_host_view_cannot_write_root_owned_files() {
    let env = Env::new("userns-escape");
    let shared = env.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let bound = shared.join("host-file");
    let outside = env.dir.join("outside-file");
    for f in [&bound, &outside] {
        std::fs::write(f, "host\n").unwrap();
    }
    let vol = format!("{}:/host", shared.display());
    env.ok(&[
        "run", "-d", "--name", "u", "--net", "none", "-v", &vol, "bb", "sleep", "1000",
    ]);
    let (base, _) = range(&env, "u");
    // Inside, through the (idmapped) bind mount, the host's root-owned file
    // is root's, as on the instance's disk.
    let ls = env.ok(&["exec", "u", "stat", "-c", "%u", "/host/host-file"]);
    assert_eq!(ls.trim(), "0");
    // A process that escapes to the host's view: the instance's credentials
    // (root of its user namespace) in the host's mount namespace and root.
    let own = instance_dir(&env, "u").join("rootfs/own-file");
    let pid = pid(&env, "u").to_string();
    let escaped = |script: &str| {
        Command::new("nsenter")
            .args(["--target", &pid, "--user", "--", "/bin/sh", "-c", script])
            .output()
            .expect("run nsenter")
    };
    let o = escaped("id -u");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "0",
        "not root inside"
    );
    for f in [&bound, &outside] {
        let o = escaped(&format!("echo pwned >> {}", f.display()));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{} written", f.display());
        assert!(err.contains("Permission denied"), "{err}");
        assert_eq!(std::fs::read_to_string(f).unwrap(), "host\n");
    }
    // The same escape may write what the range owns (the test can fail).
    let o = escaped(&format!("echo mine > {}", own.display()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::metadata(&own).unwrap().uid(), base);
}

/// (httpd on port 80 behind a published port, with the new default, is
/// lifecycle.rs's networks_addresses_hosts_and_published_ports.)
#[test]
fn network_and_volumes_work_unprivileged() {
    let env = Env::new("userns-net");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-v",
        "data:/data",
        "bb",
        "sh",
        "-c",
        "echo hello > /data/index.html && exec sleep 1000",
    ]);
    range(&env, "web");
    // Root of the instance pings its gateway and binds port 80, in a network
    // namespace owned by its own user namespace.
    let addr = env.inspect("web")["networks"][0]
        .as_str()
        .and_then(|s| s.split('=').nth(1))
        .and_then(|a| a.split('/').next())
        .expect("an address")
        .to_string();
    let gw = addr
        .rsplit_once('.')
        .map(|(p, _)| format!("{p}.1"))
        .unwrap();
    env.ok(&["exec", "web", "ping", "-c", "1", "-W", "5", &gw]);
    // httpd binds before it goes to the background (and fails if it cannot).
    let page = env.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "httpd -p 80 -h /data && wget -qO- http://127.0.0.1/",
    ]);
    assert_eq!(page, "hello\n");
    // Volume files are root's inside (the volume's mount is idmapped too).
    let ls = env.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "cat /data/index.html; stat -c %u /data/index.html",
    ]);
    assert_eq!(ls, "hello\n0\n");
    env.ok(&["rm", "-f", "web"]);
    env.assert_no_leaks(&[]);
}
