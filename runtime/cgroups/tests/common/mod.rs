//! Shared helpers for the host integration tests: a unique cgroup parent
//! that is removed (with any processes in it) even when a test fails, and
//! forked children that block on a pipe.

#![allow(dead_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use boxrun_cgroups::layout::Layout;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult, Pid};

/// A unique `/boxrun-test-<random>` parent in every hierarchy.
pub struct TestRoot {
    pub name: String,
}

impl TestRoot {
    pub fn new() -> TestRoot {
        let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid").expect("read uuid");
        TestRoot {
            name: format!("boxrun-test-{}", &uuid.trim()[..13]),
        }
    }

    /// `/boxrun-test-…/<sub>` as an absolute cgroupsPath.
    pub fn path(&self, sub: &str) -> PathBuf {
        PathBuf::from("/").join(&self.name).join(sub)
    }

    /// The host directories of the parent, one per hierarchy.
    pub fn host_dirs(&self) -> Vec<PathBuf> {
        let l = Layout::detect().expect("layout");
        let mut out: Vec<PathBuf> =
            l.v1.iter()
                .map(|m| m.mount_point.join(&self.name))
                .collect();
        if let Some(v2) = &l.v2 {
            out.push(v2.mount_point.join(&self.name));
        }
        out
    }
}

fn procs_below(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(t) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                procs_below(&e.path(), out);
            }
        }
    }
}

fn thaw_below(dir: &Path) {
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                thaw_below(&e.path());
            }
        }
    }
}

fn rmdir_tree(dir: &Path, deadline: Instant) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path(), deadline);
            }
        }
    }
    while let Err(e) = std::fs::remove_dir(dir) {
        if e.kind() == std::io::ErrorKind::NotFound || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for TestRoot {
    fn drop(&mut self) {
        let dirs = self.host_dirs();
        let mut pids = Vec::new();
        for d in &dirs {
            thaw_below(d);
            procs_below(d, &mut pids);
        }
        for p in pids {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for d in &dirs {
            rmdir_tree(d, deadline);
        }
    }
}

/// Thaw the freezer cgroups `pid` is in, so that a SIGKILL can take effect
/// (a task frozen by the v1 freezer cannot die).
fn thaw_cgroups_of(pid: Pid) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return;
    };
    let Ok(l) = Layout::detect() else {
        return;
    };
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == "freezer") {
            if let Some(m) =
                l.v1.iter()
                    .find(|m| m.controllers.iter().any(|c| c == "freezer"))
            {
                let _ = std::fs::write(m.mount_point.join(rel).join("freezer.state"), "THAWED");
            }
        } else if ctrls.is_empty() {
            if let Some(v2) = &l.v2 {
                let _ = std::fs::write(v2.mount_point.join(rel).join("cgroup.freeze"), "0");
            }
        }
    }
}

/// Owns a forked child: SIGKILLs (thawing it first) and reaps it on drop.
pub struct Reaper {
    pub pid: Pid,
    reaped: bool,
}

impl Reaper {
    pub fn new(pid: Pid) -> Reaper {
        Reaper { pid, reaped: false }
    }

    /// Wait for the child to end and return how it ended.
    pub fn wait(&mut self) -> WaitStatus {
        let s = waitpid(self.pid, None).expect("waitpid");
        self.reaped = true;
        s
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            thaw_cgroups_of(self.pid);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// A forked child that blocks reading a pipe until released or killed.
pub struct Blocker {
    pub pid: Pid,
    reaper: Reaper,
    release: Option<OwnedFd>,
}

impl Blocker {
    pub fn spawn() -> Blocker {
        let (r, w) = pipe().expect("pipe");
        // SAFETY: the child only calls async-signal-safe functions (close,
        // read, _exit) before exiting.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                // SAFETY: raw fds owned by this process; plain syscalls.
                unsafe {
                    libc::close(w.as_raw_fd());
                    let mut b = 0u8;
                    libc::read(r.as_raw_fd(), &mut b as *mut u8 as *mut libc::c_void, 1);
                    libc::_exit(0);
                }
            }
            ForkResult::Parent { child } => {
                drop(r);
                Blocker {
                    pid: child,
                    reaper: Reaper::new(child),
                    release: Some(w),
                }
            }
        }
    }

    /// Wait for the child to end and return how it ended.
    pub fn wait(&mut self) -> WaitStatus {
        self.reaper.wait()
    }

    /// Let the child exit normally.
    pub fn release(&mut self) {
        self.release.take();
    }
}

/// Parse a JSON `linux.resources` object.
pub fn resources(json: &str) -> oci_spec::runtime::LinuxResources {
    serde_json::from_str(json).expect("valid resources JSON")
}

/// Contents of a file, trimmed.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A NUL-terminated copy of `s` (prepared before fork).
pub fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}
