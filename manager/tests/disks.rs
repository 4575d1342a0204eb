//! Instance disks in the storage pool (root required): where the store's
//! file system cannot reflink (ext4, as /tmp here), images and instance
//! disks live in a loop-mounted XFS pool and every instance disk is a
//! reflink copy of its image's.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{loops_under, Env};

/// boxctl with this root and runtime, and extra environment variables.
fn boxctl_with(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boxctl"))
        .arg("--root")
        .arg(&env.root)
        .arg("--runtime")
        .arg(&env.runtime)
        .args(args)
        .envs(vars.iter().copied())
        .output()
        .expect("run boxctl")
}

fn ok_with(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> String {
    let out = boxctl_with(env, vars, args);
    assert!(
        out.status.success(),
        "boxctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Busybox plus `mib` MiB of incompressible data in /data.bin, as a rootfs directory.
fn rootfs_with_data(env: &Env, tag: &str, mib: u64) -> PathBuf {
    let dir = env.dir.join(format!("src-{tag}"));
    common::build_busybox_rootfs(&dir);
    if mib > 0 {
        let mut src = std::fs::File::open("/dev/urandom").unwrap();
        let mut dst = std::fs::File::create(dir.join("data.bin")).unwrap();
        let n = std::io::copy(&mut std::io::Read::take(&mut src, mib << 20), &mut dst).unwrap();
        assert_eq!(n, mib << 20);
    }
    dir
}

fn pool_file(env: &Env) -> PathBuf {
    env.root.join("pool/pool.img")
}

fn pool_mnt(env: &Env) -> PathBuf {
    env.root.join("pool/mnt")
}

fn pool_loops(env: &Env) -> Vec<String> {
    loops_under(&env.root)
        .into_iter()
        .filter(|(_, b)| *b == pool_file(env))
        .map(|(d, _)| d)
        .collect()
}

fn is_mount_point(p: &Path) -> bool {
    common::mounts_under(p).iter().any(|m| m == p)
}

/// Bytes used in the file system at `p`.
fn used_bytes(p: &Path) -> u64 {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs is plain old data; zero is valid.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a buffer that outlives the call.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    (st.f_blocks - st.f_bfree) * st.f_frsize
}

/// `(extents, extents flagged shared)` of `file`, from `filefrag -v` (FIEMAP).
fn extents(file: &Path) -> (usize, usize) {
    let out = Command::new("filefrag")
        .arg("-v")
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<_> = text
        .lines()
        .filter(|l| {
            l.trim_start()
                .split(':')
                .next()
                .is_some_and(|n| n.parse::<u64>().is_ok())
        })
        .collect();
    let shared = rows.iter().filter(|l| l.contains("shared")).count();
    (rows.len(), shared)
}

/// The pool file an instance's or image's `disk.img` links to.
fn linked(link: &Path) -> PathBuf {
    let t = std::fs::read_link(link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
    assert!(
        t.starts_with(pool_mnt_of(link)),
        "{} -> {}",
        link.display(),
        t.display()
    );
    t
}

fn pool_mnt_of(link: &Path) -> PathBuf {
    // ROOT/{images,instances}/X/disk.img
    link.ancestors().nth(3).unwrap().join("pool/mnt")
}

/// Unmount the pool and check its loop device goes (the teardown every
/// test ends with; Env's drop does the same lazily when a test fails).
fn release_pool(env: &Env) {
    if is_mount_point(&pool_mnt(env)) {
        let st = Command::new("umount").arg(pool_mnt(env)).status().unwrap();
        assert!(st.success(), "cannot unmount the pool");
    }
    for dev in pool_loops(env) {
        let _ = Command::new("losetup").arg("-d").arg(&dev).status();
    }
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !pool_loops(env).is_empty() && std::time::Instant::now() < end {
        std::thread::yield_now();
    }
    assert!(pool_loops(env).is_empty(), "the pool's loop device stayed");
}

#[test]
fn instance_disks_are_reflinks_whatever_the_image_size() {
    let env = Env::empty("dk-reflink");
    let mut ids = Vec::new();
    for (name, mib) in [("small", 8u64), ("large", 256)] {
        let src = rootfs_with_data(&env, name, mib);
        env.ok(&["image", "import", src.to_str().unwrap(), name]);
        let image_disk = linked(&env.root.join("images").join(name).join("disk.img"));
        let before = used_bytes(&pool_mnt(&env));
        let inst = format!("{name}-1");
        let id = env
            .ok(&["create", "--name", &inst, name, "sleep", "1000"])
            .trim()
            .to_string();
        let after = used_bytes(&pool_mnt(&env));
        // Nothing of the image's data was copied: the pool's use grows by
        // metadata only, not by the image's size.
        assert!(
            after.saturating_sub(before) < 4 << 20,
            "creating from the {mib} MiB image used {} bytes of the pool",
            after - before
        );
        let disk = linked(&env.root.join("instances").join(&id).join("disk.img"));
        let (n, shared) = extents(&disk);
        assert!(n > 0, "{} has no extents", disk.display());
        assert_eq!(
            shared,
            n,
            "not every extent of {} is shared",
            disk.display()
        );
        // The image shares exactly those extents (it may also hold unwritten ones).
        assert_eq!(extents(&image_disk).1, n, "image and instance differ");
        ids.push((inst, disk));
    }
    // The instance starts from its reflinked disk and sees the image's data.
    env.ok(&["start", "large-1"]);
    let out = env.ok(&["exec", "large-1", "stat", "-c", "%s", "/data.bin"]);
    assert_eq!(out.trim(), (256u64 << 20).to_string());
    for (inst, disk) in &ids {
        env.ok(&["rm", "-f", inst]);
        assert!(!disk.exists(), "rm left {} in the pool", disk.display());
    }
    env.assert_no_leaks(&[]);
    release_pool(&env);
}

#[test]
fn pool_grows_when_filled() {
    let env = Env::empty("dk-grow");
    let small = [("BOXCTL_POOL_SIZE", "1g")];
    let src = rootfs_with_data(&env, "big", 400);
    ok_with(
        &env,
        &small,
        &["image", "import", src.to_str().unwrap(), "one"],
    );
    let len = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert_eq!(len(&pool_file(&env)), 1 << 30, "the pool starts at 1 GiB");
    ok_with(
        &env,
        &small,
        &["image", "import", src.to_str().unwrap(), "two"],
    );
    let grown = len(&pool_file(&env));
    assert!(grown >= 2 << 30, "the pool did not grow: {grown} bytes");
    let rows: serde_json::Value =
        serde_json::from_str(&env.ok(&["system", "df", "--json"])).unwrap();
    let pool = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "pool")
        .expect("system df lists the pool");
    let size = pool["pool"]["size"].as_u64().unwrap();
    assert!(size > 3 << 29, "xfs was not grown: {size} bytes");
    assert_eq!(pool["total"], 2, "{pool}");
    assert_eq!(pool_loops(&env).len(), 1);
    // Both images are whole: an instance of the second reads its data.
    env.ok(&["create", "--name", "t", "two"]);
    env.ok(&["rm", "t"]);
    release_pool(&env);
}

#[test]
fn pool_is_reattached_after_its_loop_device_goes() {
    let env = Env::new("dk-attach");
    env.ok(&["create", "--name", "a", "bb", "sleep", "1000"]);
    assert!(is_mount_point(&pool_mnt(&env)));
    // Behind boxctl's back: unmounted, so the auto-clearing loop device goes.
    release_pool(&env);
    // Any command re-attaches it.
    env.ok(&["ps", "-a"]);
    assert!(
        is_mount_point(&pool_mnt(&env)),
        "the pool was not re-attached"
    );
    assert_eq!(pool_loops(&env).len(), 1);
    env.ok(&["start", "a"]);
    env.ok(&["rm", "-f", "a"]);
    // A loop device still attached to the pool but not mounted is reused,
    // never a second one.
    release_pool(&env);
    let out = Command::new("losetup")
        .args(["--show", "-f"])
        .arg(pool_file(&env))
        .output()
        .unwrap();
    assert!(out.status.success());
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    env.ok(&["run", "-d", "--name", "b", "bb", "sleep", "1000"]);
    assert_eq!(pool_loops(&env), [dev]);
    env.ok(&["rm", "-f", "b"]);
    env.assert_no_leaks(&[]);
    release_pool(&env);
}

#[test]
fn images_from_before_the_pool_move_into_it() {
    let env = Env::empty("dk-adopt");
    let src = rootfs_with_data(&env, "old", 0);
    let off = [("BOXCTL_STORAGE_POOL", "off")];
    ok_with(
        &env,
        &off,
        &["image", "import", src.to_str().unwrap(), "old"],
    );
    let disk = env.root.join("images/old/disk.img");
    assert!(disk.symlink_metadata().unwrap().is_file());
    assert!(!pool_file(&env).exists());
    // Off, instances get a full copy in their directory as before.
    let id = ok_with(&env, &off, &["create", "--name", "full", "old"]);
    let full = env.root.join("instances").join(id.trim()).join("disk.img");
    assert!(full.symlink_metadata().unwrap().is_file());
    // The first instance made with the pool moves the image into it.
    let id = env.ok(&["create", "--name", "pooled", "old"]);
    linked(&disk);
    let inst = linked(&env.root.join("instances").join(id.trim()).join("disk.img"));
    let (n, shared) = extents(&inst);
    assert_eq!(shared, n);
    env.ok(&["rm", "full", "pooled"]);
    env.ok(&["image", "rm", "old"]);
    assert_eq!(
        std::fs::read_dir(pool_mnt(&env).join("images"))
            .unwrap()
            .count(),
        0,
        "image rm left its disk in the pool"
    );
    release_pool(&env);
}

#[test]
fn a_full_host_file_system_is_one_line_and_no_half_made_instance() {
    let env = Env::empty("dk-full");
    // A small ext4 host file system for the store.
    let host = env.dir.join("host.img");
    std::fs::File::create(&host)
        .unwrap()
        .set_len(600 << 20)
        .unwrap();
    let st = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&host)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::create_dir_all(&env.root).unwrap();
    let st = Command::new("mount")
        .args(["-o", "loop"])
        .arg(&host)
        .arg(&env.root)
        .status()
        .unwrap();
    assert!(st.success());
    let src = rootfs_with_data(&env, "bb", 0);
    env.ok(&[
        "image",
        "import",
        "--size",
        "64m",
        src.to_str().unwrap(),
        "bb",
    ]);
    // Fill the host file system but for 32 MiB.
    let filler = env.root.join("filler");
    let c = std::ffi::CString::new(env.root.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs is plain old data; zero is valid.
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a buffer that outlives the call.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut sv) }, 0);
    let avail = sv.f_bavail * sv.f_frsize;
    let st = Command::new("fallocate")
        .args(["-l", &(avail - (32 << 20)).to_string()])
        .arg(&filler)
        .status()
        .unwrap();
    assert!(st.success());
    let err = env.fails(&["run", "-d", "--name", "x", "bb", "true"]);
    assert!(err.contains("is full"), "{err}");
    assert!(env.ps_all().is_empty(), "a half-made instance stayed");
    assert!(
        env.instance_dirs().is_empty(),
        "an instance directory stayed"
    );
    assert_eq!(
        std::fs::read_dir(pool_mnt(&env).join("instances"))
            .unwrap()
            .count(),
        0
    );
    // Space given back, the same command works.
    std::fs::remove_file(&filler).unwrap();
    env.ok(&["create", "--name", "x", "bb"]);
    env.ok(&["rm", "x"]);
    // The store goes away with its file system below: its default network (and
    // the bridge on the host) first, which Env's drop could not see any more.
    env.ok(&["network", "rm", "boxctl0"]);
    release_pool(&env);
    let st = Command::new("umount").arg(&env.root).status().unwrap();
    assert!(st.success());
}

#[test]
fn an_import_killed_midway_leaves_nothing_in_the_pool() {
    let env = Env::empty("dk-kill");
    let src = rootfs_with_data(&env, "big", 256);
    // The pool exists first, so that the import's disk goes straight into it.
    let small = rootfs_with_data(&env, "small", 0);
    env.ok(&["image", "import", small.to_str().unwrap(), "small"]);
    let pool_images = pool_mnt(&env).join("images");
    let mut child = Command::new(env!("CARGO_BIN_EXE_boxctl"))
        .arg("--root")
        .arg(&env.root)
        .args(["image", "import", src.to_str().unwrap(), "big"])
        .spawn()
        .unwrap();
    // Killed once its disk is being written in the pool (or when it is done).
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&pool_images).unwrap().count() < 2
        && child.try_wait().unwrap().is_none()
        && std::time::Instant::now() < end
    {
        std::thread::yield_now();
    }
    // Its disk (256 MiB written by mkfs.ext4) takes far longer than this poll.
    assert!(
        child.try_wait().unwrap().is_none(),
        "the import finished before it could be killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The next command cleans up after it.
    let ls = env.ok(&["image", "ls"]);
    assert!(!ls.contains("big"), "{ls}");
    let disks = std::fs::read_dir(&pool_images).unwrap().count();
    assert_eq!(disks, 1, "the killed import's disk stayed in the pool");
    let left: Vec<_> = std::fs::read_dir(env.root.join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["small"], "the killed import left {left:?}");
    release_pool(&env);
}
