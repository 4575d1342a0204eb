//! Shared test harness: a private boxctl root per test, cleaned up on drop
//! (instances and networks removed, mounts, loop devices and cgroups checked
//! and released).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);
/// /24s handed out by [`free_subnet_prefix`] in this process.
static SUBNETS: AtomicU32 = AtomicU32::new(0);

/// `10.SECOND.T.` for a /24 that no host route or address uses yet, distinct
/// per call in this process and starting from this process's own offset,
/// so that tests running in parallel (here or in another test process)
/// never ask for the same subnet: `network create` refuses a subnet the
/// host already uses.
pub fn free_subnet_prefix(second: u8) -> String {
    let start = std::process::id().wrapping_mul(7);
    for _ in 0..256 {
        let third = (start.wrapping_add(SUBNETS.fetch_add(1, Ordering::SeqCst)) % 256) as u8;
        let subnet = boxctl_network::Subnet::new(std::net::Ipv4Addr::new(10, second, third, 0), 24)
            .expect("a /24");
        if boxctl_network::host_uses(&subnet, None)
            .expect("read host routes")
            .is_empty()
        {
            return format!("10.{second}.{third}.");
        }
    }
    panic!("no free /24 left in 10.{second}.0.0/16");
}

/// The OCI runtime the tests drive: $BOXCTL_TEST_RUNTIME, else the
/// workspace's release boxrun when built, else runc.
pub fn runtime() -> String {
    if let Ok(r) = std::env::var("BOXCTL_TEST_RUNTIME") {
        return r;
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for cand in [
        ws.join("target/release/boxrun"),
        ws.join("target/debug/boxrun"),
    ] {
        if cand.is_file() {
            return cand.display().to_string();
        }
    }
    "/usr/sbin/runc".to_string()
}

/// One test's boxctl root.
pub struct Env {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub runtime: String,
    extra_mounts: Vec<PathBuf>,
}

impl Env {
    /// A fresh root with the busybox image imported as `bb`.
    pub fn new(tag: &str) -> Env {
        let env = Env::empty(tag);
        let rootfs = env.dir.join("rootfs-src");
        build_busybox_rootfs(&rootfs);
        env.ok(&[
            "image",
            "import",
            "--size",
            "64m",
            rootfs.to_str().unwrap(),
            "bb",
        ]);
        env
    }

    /// A fresh root without images.
    pub fn empty(tag: &str) -> Env {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("boxctl-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.join("root");
        Env {
            dir,
            root,
            runtime: runtime(),
            extra_mounts: Vec::new(),
        }
    }

    /// Put the root on a tmpfs of `size` (for disk-full tests); unmounted on drop.
    pub fn root_on_tmpfs(&mut self, size: &str) {
        std::fs::create_dir_all(&self.root).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&self.root)
            .status()
            .unwrap();
        assert!(st.success());
        self.extra_mounts.push(self.root.clone());
    }

    /// Run boxctl with this root and runtime.
    pub fn boxctl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_boxctl"))
            .arg("--root")
            .arg(&self.root)
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args)
            .env("BOXCTL_LOG_MAX", "65536")
            .output()
            .expect("run boxctl")
    }

    /// The log of instance `name` once a line containing `needle` is in it
    /// (`logs -f` read through a pipe, at most `secs`): the output of a
    /// process started by `run -d` reaches the log after `run` returns.
    pub fn wait_logs(&self, name: &str, needle: &str, secs: u64) -> String {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_boxctl"))
            .arg("--root")
            .arg(&self.root)
            .args(["logs", "-f", name])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run boxctl logs -f");
        let out = child.stdout.take().expect("logs -f stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        let mut seen = String::new();
        while let Ok(line) =
            rx.recv_timeout(end.saturating_duration_since(std::time::Instant::now()))
        {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        seen
    }

    /// Run boxctl, assert success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.boxctl(args);
        assert!(
            out.status.success(),
            "boxctl {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run boxctl, assert failure with one `boxctl: error:` line, return stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.boxctl(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "boxctl {args:?} unexpectedly succeeded"
        );
        assert!(
            err.starts_with("boxctl: error: "),
            "bad error output: {err:?}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "error is not one line: {err:?}"
        );
        err
    }

    /// `network create --subnet 10.SECOND.T.0/24 ARGS...` on a free /24 (see
    /// [`free_subnet_prefix`]; `{net}` in ARGS stands for `10.SECOND.T.`),
    /// trying the next one when another test took it meanwhile. Returns
    /// `10.SECOND.T.`.
    pub fn create_network(&self, second: u8, args: &[&str]) -> String {
        for _ in 0..8 {
            let net = free_subnet_prefix(second);
            let subnet = format!("{net}0/24");
            let args: Vec<String> = args.iter().map(|a| a.replace("{net}", &net)).collect();
            let mut all = vec!["network", "create", "--subnet", subnet.as_str()];
            all.extend(args.iter().map(String::as_str));
            let out = self.boxctl(&all);
            if out.status.success() {
                return net;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("overlaps host"),
                "boxctl {all:?} failed: {err}"
            );
        }
        panic!("no free subnet in 10.{second}.0.0/16 after 8 tries");
    }

    /// `inspect NAME` as JSON.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    /// `ps -a --json`.
    pub fn ps_all(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["ps", "-a", "--json"])).unwrap()
    }

    /// Instance directories present.
    pub fn instance_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.root.join("instances"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Mounts under the root but the store's storage pool (not a leak: it
    /// stays for the next command and is released on drop) and extra ones.
    pub fn disk_mounts(&self) -> Vec<PathBuf> {
        let pool = self.root.join("pool/mnt");
        mounts_under(&self.root)
            .into_iter()
            .filter(|m| !self.extra_mounts.contains(m) && *m != pool)
            .collect()
    }

    /// Loop devices backed under the root but the storage pool's.
    pub fn disk_loops(&self) -> Vec<(String, PathBuf)> {
        let pool = self.root.join("pool/pool.img");
        loops_under(&self.root)
            .into_iter()
            .filter(|(_, b)| *b != pool)
            .collect()
    }

    /// Assert nothing is left: mounts, loop devices, cgroups of known ids.
    pub fn assert_no_leaks(&self, ids: &[String]) {
        let mounts = self.disk_mounts();
        assert!(mounts.is_empty(), "leaked mounts: {mounts:?}");
        let loops = self.disk_loops();
        assert!(loops.is_empty(), "leaked loop devices: {loops:?}");
        for id in ids {
            for c in ["memory", "pids", "cpu", "blkio"] {
                let p = Path::new("/sys/fs/cgroup").join(c).join("boxctl").join(id);
                assert!(!p.exists(), "leaked cgroup {}", p.display());
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Remove every instance (the file may list them even if a test failed midway).
        if let Ok(out) = Command::new(env!("CARGO_BIN_EXE_boxctl"))
            .arg("--root")
            .arg(&self.root)
            .args(["ps", "-a", "-q"])
            .output()
        {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new(env!("CARGO_BIN_EXE_boxctl"))
                    .arg("--root")
                    .arg(&self.root)
                    .args(["rm", "-f", id])
                    .output();
                for c in [
                    "memory", "pids", "cpu", "cpuacct", "blkio", "cpuset", "devices", "freezer",
                    "systemd",
                ] {
                    let _ = std::fs::remove_dir(
                        Path::new("/sys/fs/cgroup").join(c).join("boxctl").join(id),
                    );
                }
            }
        }
        // Then its networks: the default network boxctl0, made by any run
        // without --net, has a bridge on the host.
        if let Ok(out) = Command::new(env!("CARGO_BIN_EXE_boxctl"))
            .arg("--root")
            .arg(&self.root)
            .args(["network", "ls"])
            .output()
        {
            let ls = String::from_utf8_lossy(&out.stdout).into_owned();
            for name in ls
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next())
            {
                let _ = Command::new(env!("CARGO_BIN_EXE_boxctl"))
                    .arg("--root")
                    .arg(&self.root)
                    .args(["network", "rm", name])
                    .output();
            }
        }
        // Under the test directory, not only the root: a test may move its root.
        let mut ms = mounts_under(&self.dir);
        ms.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
        for m in ms {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
        for (dev, _) in loops_under(&self.dir) {
            let _ = Command::new("losetup").arg("-d").arg(dev).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Build the busybox test rootfs in the directory `dir`.
pub fn build_busybox_rootfs(dir: &Path) {
    let st = Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles/busybox/build-rootfs.sh"),
    )
    .arg(dir)
    .status()
    .expect("run build-rootfs.sh");
    assert!(st.success(), "build-rootfs.sh failed");
}

/// Mount points under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Loop devices backed by files under `dir`.
pub fn loops_under(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/block").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(b) = std::fs::read_to_string(e.path().join("loop/backing_file")) {
            let b = PathBuf::from(b.trim_end());
            if b.starts_with(dir) {
                out.push((format!("/dev/{name}"), b));
            }
        }
    }
    out
}

/// Wait for a process (not our child) to exit, through a pidfd.
pub fn wait_pid(pid: i32, secs: u64) -> bool {
    // SAFETY: pidfd_open with a pid and no flags.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return true;
    }
    let mut p = libc::pollfd {
        fd: fd as i32,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut p, 1, (secs * 1000) as i32) };
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(fd as i32) };
    rc > 0
}

/// Removes the test's instances and its network (bridge) even if the test fails.
pub struct NetGuard<'a>(pub &'a Env, pub String);
impl Drop for NetGuard<'_> {
    fn drop(&mut self) {
        for id in self.0.ok(&["ps", "-a", "-q"]).split_whitespace() {
            let _ = self.0.boxctl(&["rm", "-f", id]);
        }
        let _ = self.0.boxctl(&["network", "rm", &self.1]);
    }
}

/// Run `cmd` with `sh -c`; its stdout (the test fails when it fails).
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Two image layers in the test directory: the busybox rootfs (`rootfs-src`)
/// plus files, gzip-compressed, then a plain tar of whiteouts and an opaque
/// directory, with `top_extra` (more shell run on the top layer's directory `$L2`).
pub fn whiteout_layers(env: &Env, top_extra: &str) -> (PathBuf, PathBuf) {
    let src = env.dir.join("rootfs-src");
    let l1 = env.dir.join("l1");
    sh(&format!(
        "cp -a {src} {l1} && echo old > {l1}/etc/old.txt && mkdir {l1}/opq && echo a > {l1}/opq/a.txt",
        src = src.display(),
        l1 = l1.display()
    ));
    let l2 = env.dir.join("l2");
    sh(&format!(
        "L2={l2}; mkdir -p $L2/etc $L2/opq && : > $L2/etc/.wh.old.txt && : > $L2/opq/.wh..wh..opq && echo b > $L2/opq/b.txt {top_extra}",
        l2 = l2.display()
    ));
    let t1 = env.dir.join("layer1.tar.gz");
    let t2 = env.dir.join("layer2.tar");
    sh(&format!("tar -C {} -czf {} .", l1.display(), t1.display()));
    sh(&format!("tar -C {} -cf {} .", l2.display(), t2.display()));
    (t1, t2)
}

/// One HTTP/1.0 GET of `/` through `port` on loopback: (status, head, body).
pub fn http_get(port: u16) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the published port");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: farm\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// A TCP port free on 127.0.0.1 right now (for a `--publish` host port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
