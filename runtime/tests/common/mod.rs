//! Shared fixture for boxrun integration tests: a private runtime root and bundle per
//! test, a busybox rootfs built once per test binary, and cleanup on drop (even when the
//! test fails): every container under the root is force-deleted, then files removed.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub fn boxrun() -> &'static str {
    env!("CARGO_BIN_EXE_boxrun")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

static ROOTFS: OnceLock<PathBuf> = OnceLock::new();

/// Removes the shared rootfs when the test binary exits (libtest ends with `exit`, also
/// when tests failed), so no run leaves a busybox tree behind in /tmp.
extern "C" fn remove_base_rootfs() {
    if let Some(dir) = ROOTFS.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A busybox rootfs built once per test binary, removed at exit.
fn base_rootfs() -> &'static Path {
    ROOTFS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("boxrun-test-rootfs-{}", std::process::id()));
        // SAFETY: registers a plain extern "C" function with no captured state.
        unsafe { libc::atexit(remove_base_rootfs) };
        let st = Command::new(workspace().join("bundles/busybox/build-rootfs.sh"))
            .arg(&dir)
            .status()
            .expect("run build-rootfs.sh");
        assert!(st.success(), "build-rootfs.sh failed");
        dir
    })
}

pub struct Fixture {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub config: Value,
    /// The runtime under test: boxrun, or a reference runtime for comparison.
    pub runtime: PathBuf,
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Fixture {
    pub fn new() -> Fixture {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("boxrun-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).expect("mkdir bundle");
        let st = Command::new("cp")
            .arg("-a")
            .arg(base_rootfs())
            .arg(bundle.join("rootfs"))
            .status()
            .expect("cp rootfs");
        assert!(st.success());
        let out = Command::new(boxrun())
            .args(["spec", "--bundle"])
            .arg(&bundle)
            .output()
            .expect("boxrun spec");
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value = serde_json::from_slice(
            &std::fs::read(bundle.join("config.json")).expect("read config"),
        )
        .expect("json");
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = serde_json::json!(["/bin/true"]);
        let f = Fixture {
            dir,
            root,
            bundle,
            config,
            runtime: PathBuf::from(boxrun()),
        };
        f.save();
        f
    }

    pub fn save(&self) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&self.config).expect("enc"),
        )
        .expect("write config");
    }

    pub fn args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = serde_json::json!(args);
        self.save();
    }

    /// A bundle whose init runs as a mapped (unprivileged on the host) root.
    pub fn userns() -> Fixture {
        let mut f = Fixture::new();
        let st = std::process::Command::new("chown")
            .args(["-R", "100000:100000"])
            .arg(f.bundle.join("rootfs"))
            .status()
            .expect("userns fixture");
        assert!(st.success());
        f.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "user"}, {"type": "ipc"}, {"type": "uts"}]);
        f.config["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        f.config["linux"]["gidMappings"] =
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // sysfs and cgroup mounts need a network namespace of the user namespace: drop them
        let mounts: Vec<serde_json::Value> = f.config["mounts"]
            .as_array()
            .expect("userns fixture")
            .iter()
            .filter(|m| m["destination"] != "/sys" && m["destination"] != "/sys/fs/cgroup")
            .cloned()
            .collect();
        f.config["mounts"] = json!(mounts);
        f.save();
        f
    }

    /// The same fixture driving another runtime (e.g. /usr/sbin/runc) for comparison.
    pub fn with_runtime(path: &str) -> Fixture {
        let mut f = Fixture::new();
        f.runtime = PathBuf::from(path);
        f
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(&self.root);
        c
    }

    /// Run boxrun with args. Output goes through files, not pipes, so a container that
    /// inherits stdio cannot make the test wait; a command running over 60 s is killed
    /// and fails the test.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        run_bounded(c, &self.dir, "cmd")
    }

    /// `create` with the container's stdio in `<id>.out` / `<id>.err` in the fixture dir.
    pub fn create(&self, id: &str) -> Output {
        let mut c = self.cmd();
        c.args(["create", "--bundle"]).arg(&self.bundle).arg(id);
        run_bounded(c, &self.dir, id)
    }

    /// What a created container wrote to stdout.
    pub fn container_stdout(&self, id: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{id}.out"))).unwrap_or_default()
    }

    pub fn state(&self, id: &str) -> Value {
        let o = self.run(&["state", id]);
        assert!(
            o.status.success(),
            "state {id}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("state json")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or("").to_string()
    }

    /// Wait until the container's init has exited (pidfd on its pid).
    pub fn wait_stopped(&self, id: &str) {
        let pid = self.state(id)["pid"].as_i64().unwrap_or(0) as i32;
        if pid > 0 {
            wait_pid_exit(pid, std::time::Duration::from_secs(20));
        }
        // The init may be a zombie of a vanished parent: state reports stopped either way.
        assert_eq!(self.status(id), "stopped");
    }
}

/// Wait (pidfd + poll) up to `timeout` for `pid` to exit; returns at once when the
/// pid is already gone (pidfd_open fails).
pub fn wait_pid_exit(pid: i32, timeout: std::time::Duration) {
    // SAFETY: pidfd_open and poll on a pid; a vanished pid makes pidfd_open fail.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        if fd >= 0 {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            libc::poll(&mut p, 1, timeout.as_millis() as i32);
            libc::close(fd);
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    let id = e.file_name().to_string_lossy().into_owned();
                    let _ = self
                        .cmd()
                        .args(["delete", "--force", &id])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Spawn `c` with stdout/stderr in files named after `tag` under `dir`, wait at most
/// 60 s (pidfd + poll), kill and panic on time-out.
pub fn run_bounded(mut c: Command, dir: &Path, tag: &str) -> Output {
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let (op, ep) = if tag == "cmd" {
        (
            dir.join(format!("cmd{n}.out")),
            dir.join(format!("cmd{n}.err")),
        )
    } else {
        (
            dir.join(format!("{tag}.out")),
            dir.join(format!("{tag}.err")),
        )
    };
    let out = std::fs::File::create(&op).expect("out file");
    let err = std::fs::File::create(&ep).expect("err file");
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn boxrun");
    // SAFETY: pidfd_open and poll on our own child.
    let done = unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, child.id() as i32, 0) as i32;
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let r = libc::poll(&mut p, 1, 60_000);
        libc::close(fd);
        r > 0
    };
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "boxrun {:?} did not finish within 60 s",
            c.get_args().collect::<Vec<_>>()
        );
    }
    let status = child.wait().expect("wait");
    let stdout = std::fs::read(&op).unwrap_or_default();
    let stderr = std::fs::read(&ep).unwrap_or_default();
    Output {
        status,
        stdout,
        stderr,
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The container's cgroup directories still present under the v1 pids hierarchy.
pub fn cgroup_exists(rel: &str) -> bool {
    Path::new("/sys/fs/cgroup/pids")
        .join(rel.trim_start_matches('/'))
        .exists()
        || Path::new("/sys/fs/cgroup/unified")
            .join(rel.trim_start_matches('/'))
            .exists()
}

/// Panic unless `pid` is in `/<rel>` in every cgroup hierarchy this test process sees
/// (v1 ones and the v2 one alike).
pub fn assert_in_cgroup_everywhere(pid: i32, rel: &str) {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/cgroup: {e}"));
    assert_eq!(
        own.lines().count(),
        theirs.lines().count(),
        "hierarchies differ: {theirs}"
    );
    let want = format!("/{}", rel.trim_start_matches('/'));
    for line in theirs.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or("");
        assert_eq!(
            path, want,
            "pid {pid} not in {want} in every hierarchy:\n{theirs}"
        );
    }
}

/// Receive the pty master (and its name) that the runtime sends to a console socket.
pub fn recv_fd(sock: &std::os::unix::net::UnixStream) -> (std::os::fd::OwnedFd, String) {
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(sock),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(v) = c {
            // SAFETY: received fd is ours.
            fd = Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(v[0]) });
        }
    }
    let n = msg.bytes;
    (
        fd.expect("no fd received"),
        String::from_utf8_lossy(&buf[..n]).into_owned(),
    )
}
