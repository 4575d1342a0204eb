//! Root filesystem: mounts and options, readonly root, masked and readonly paths,
//! devices and /dev symlinks, propagation.

mod common;
use common::*;
use serde_json::json;

fn run_sh(f: &mut Fixture, id: &str, script: &str) -> std::process::Output {
    f.args(&["/bin/sh", "-c", script]);
    f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), id])
}

#[test]
fn mounts_with_options_and_bind() {
    let mut f = Fixture::new();
    let host = f.dir.join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("file"), "from-host").unwrap();
    let mut mounts = f.config["mounts"].as_array().unwrap().clone();
    mounts.push(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m", "mode=700"]}));
    mounts.push(json!({"destination": "/host/ro", "type": "bind", "source": host, "options": ["rbind", "ro"]}));
    mounts.push(
        json!({"destination": "/host/rw", "type": "none", "source": host, "options": ["bind"]}),
    );
    f.config["mounts"] = json!(mounts);
    let o = run_sh(&mut f, "m", "grep ' /data ' /proc/self/mountinfo; stat -c %a /data; cat /host/ro/file; touch /host/ro/x 2>&1 && echo ro-writable; echo w > /host/rw/new && echo rw-ok");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("nosuid") && out.contains("size=1024k"),
        "{out}"
    );
    assert!(out.contains("\n700\n"), "{out}");
    assert!(out.contains("from-host"), "{out}");
    assert!(!out.contains("ro-writable"), "{out}");
    assert!(out.contains("rw-ok"));
    assert!(host.join("new").exists());
}

#[test]
fn readonly_root_masked_and_readonly_paths() {
    let mut f = Fixture::new();
    let o = run_sh(&mut f, "ro", "touch /newfile 2>/dev/null && echo root-writable; cat /proc/kcore | wc -c; ls /sys/firmware | wc -l; echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable; echo done");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("root-writable"), "{out}");
    assert!(!out.contains("sysrq-writable"), "{out}");
    let v: Vec<&str> = out.lines().collect();
    assert_eq!(v, vec!["0", "0", "done"], "{out}");
}

#[test]
fn devices_and_symlinks() {
    let mut f = Fixture::new();
    // A set-group-ID directory would hand its group to a new node: the requested
    // owner must still win.
    let sgid = f.bundle.join("rootfs/sgid");
    std::fs::create_dir(&sgid).unwrap();
    std::os::unix::fs::chown(&sgid, None, Some(7)).unwrap();
    std::fs::set_permissions(&sgid, std::os::unix::fs::PermissionsExt::from_mode(0o2775)).unwrap();
    f.config["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
        {"path": "/dev/mydir/loop", "type": "b", "major": 7, "minor": 0, "fileMode": 432, "uid": 5, "gid": 6},
        {"path": "/sgid/null", "type": "c", "major": 1, "minor": 3, "fileMode": 416, "uid": 0, "gid": 0}]);
    f.config["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]);
    let o = run_sh(&mut f, "dev", "for d in /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/fuse /dev/mydir/loop /sgid/null; do stat -c '%n %F %t:%T %a %u:%g' $d; done; for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; echo x > /dev/null && echo null-ok");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "/dev/null character special file 1:3 666 0:0",
        "/dev/zero character special file 1:5 666",
        "/dev/tty character special file 5:0 666",
        "/dev/fuse character special file a:e5 666 0:0",
        "/dev/mydir/loop block special file 7:0 660 5:6",
        "/sgid/null character special file 1:3 640 0:0",
        "/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx",
        "null-ok",
    ] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }
}

#[test]
fn rootfs_propagation_private_does_not_leak_mounts_to_host() {
    let mut f = Fixture::new();
    f.config["linux"]["rootfsPropagation"] = "private".into();
    f.config["root"]["readonly"] = false.into();
    let o = run_sh(
        &mut f,
        "prop",
        "mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && grep -c ' / / ' /proc/self/mountinfo",
    );
    // CAP_SYS_ADMIN is not in the default caps: mount fails, which is itself the check
    // that the container cannot change the host mount table.
    let _ = o;
    let hostinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !hostinfo.contains(f.bundle.to_str().unwrap()),
        "container mount leaked to host"
    );
}

/// The cgroup mount's options reach the tmpfs and every hierarchy bound below it: the
/// default options (one recursive mount_setattr) and an atime mode, which takes the
/// remount-per-bind path.
#[test]
fn cgroup_mount_options_apply_to_every_hierarchy() {
    for (id, extra) in [("cg-default", "relatime"), ("cg-noatime", "noatime")] {
        let mut f = Fixture::new();
        let mut mounts = f.config["mounts"].as_array().unwrap().clone();
        for m in mounts.iter_mut() {
            if m["destination"] == "/sys/fs/cgroup" {
                m["options"] = json!(["nosuid", "noexec", "nodev", extra, "ro"]);
            }
        }
        f.config["mounts"] = json!(mounts);
        let o = run_sh(
            &mut f,
            id,
            "grep ' /sys/fs/cgroup' /proc/self/mountinfo | cut -d' ' -f5,6",
        );
        assert!(o.status.success(), "{id}: {}", stderr(&o));
        let out = stdout(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 1, "{id}: no hierarchy mounted: {out}");
        for l in lines {
            let opts: Vec<&str> = l
                .split_once(' ')
                .map(|x| x.1)
                .unwrap_or("")
                .split(',')
                .collect();
            for want in ["ro", "nosuid", "nodev", "noexec", extra] {
                assert!(opts.contains(&want), "{id}: {want} missing in {l:?}");
            }
        }
    }
}

#[test]
fn recursive_mount_options_apply_to_the_mount_and_every_submount() {
    let mut f = Fixture::new();
    std::fs::create_dir_all(f.bundle.join("rootfs/src/sub")).unwrap();
    let mut mounts = f.config["mounts"].as_array().unwrap().clone();
    // The tmpfs is mounted first, so the rbind of /src carries it to /r/sub.
    mounts.push(json!({"destination": "/src/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    mounts.push(json!({"destination": "/r", "type": "bind", "source": "rootfs/src",
        "options": ["rbind", "rnoexec", "rnosuid", "rnodev", "rnoatime", "rnodiratime", "rnosymfollow"]}));
    f.config["mounts"] = json!(mounts);
    let o = run_sh(
        &mut f,
        "rec",
        "awk '$5 == \"/r\" || $5 == \"/r/sub\" {print $5, $6}' /proc/self/mountinfo; cp /bin/busybox /r/sub/bb && /r/sub/bb true 2>/dev/null && echo sub-executable; echo done",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("/r")).collect();
    assert_eq!(lines.len(), 2, "/r and /r/sub expected: {out}");
    for l in lines {
        for want in [
            "nosuid",
            "nodev",
            "noexec",
            "noatime",
            "nodiratime",
            "nosymfollow",
        ] {
            assert!(
                l.split([' ', ',']).any(|w| w == want),
                "{want} missing: {l}"
            );
        }
    }
    assert!(!out.contains("sub-executable"), "{out}");
    assert!(out.contains("done"), "{out}");
}

/// A /proc or /sys that is a symlink in the image is refused with runc's words
/// ("must be mounted on ordinary directory"), which tools match (youki's
/// prohibit_symlink cases).
#[test]
fn proc_and_sys_on_a_symlink_are_refused_with_runcs_words() {
    for (dir, typ) in [("proc", "proc"), ("sys", "sysfs")] {
        let mut f = Fixture::new();
        let p = f.bundle.join("rootfs").join(dir);
        let _ = std::fs::remove_dir_all(&p);
        std::os::unix::fs::symlink("/tmp", &p).unwrap();
        let o = run_sh(&mut f, "sl", "true");
        assert!(!o.status.success(), "{dir} on a symlink was mounted");
        let want = format!("filesystem \"{typ}\" must be mounted on ordinary directory");
        assert!(stderr(&o).contains(&want), "{dir}: {}", stderr(&o));
        assert!(!f.root.join("sl").exists());
    }
}
