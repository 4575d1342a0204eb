//! OOM events of a running instance, from its memory cgroup: on cgroup v1
//! an eventfd registered on `memory.oom_control` (`cgroup.event_control`),
//! on v2 inotify on `memory.events`. The kernel's `oom_kill` counter is the
//! truth: each wake-up reports how much it grew, and [`OomWatch::finish`]
//! reports what is left when the instance's process has died (before its
//! cgroup is removed).

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use boxrun_cgroups::{Cgroup, Layout, Version};

use crate::bundle;
use crate::error::{Context, Result};
use crate::events::{self, Action};
use crate::instance_file::Instance;
use crate::store::Store;

/// How long after a notification the counter is followed for the kills it announces.
const OOM_SETTLE: Duration = Duration::from_secs(5);

/// Whether the cgroup in `dir` is in an OOM right now (v1 `under_oom`; v2
/// notifies after the kill, so never).
fn under_oom(version: Version, dir: &Path) -> bool {
    version == Version::V1
        && std::fs::read_to_string(dir.join("memory.oom_control"))
            .map(|t| t.lines().any(|l| l.trim() == "under_oom 1"))
            .unwrap_or(false)
}

/// Watching one instance's OOM kills.
pub struct OomWatch {
    cgroup: Cgroup,
    reported: Arc<AtomicU64>,
    stop: OwnedFd,
    thread: JoinHandle<()>,
    store: Store,
    inst: Instance,
}

/// Record one `oom` event per OOM kill the counter shows beyond `reported`.
fn report(store: &Store, inst: &Instance, cg: &Cgroup, reported: &AtomicU64) -> bool {
    let Ok(now) = cg.oom_kill_count() else {
        return false;
    };
    let before = reported.swap(now.max(reported.load(Ordering::SeqCst)), Ordering::SeqCst);
    for _ in before..now {
        events::record(store, inst, Action::Oom, None, None);
    }
    now > before
}

fn eventfd() -> Result<OwnedFd> {
    // SAFETY: eventfd with flags only.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot create an eventfd");
    }
    // SAFETY: fd was just returned by eventfd and is ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The descriptor that becomes readable on an OOM in the cgroup directory `dir`.
fn wake_fd(version: Version, dir: &Path) -> Result<OwnedFd> {
    match version {
        Version::V1 => {
            let efd = eventfd()?;
            let control = File::open(dir.join("memory.oom_control"))
                .with_context(|| format!("cannot open {}/memory.oom_control", dir.display()))?;
            let mut ec = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.event_control"))
                .with_context(|| format!("cannot open {}/cgroup.event_control", dir.display()))?;
            ec.write_all(format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()).as_bytes())
                .context("cannot register for OOM notifications")?;
            // The kernel holds its own reference to the control file from here.
            Ok(efd)
        }
        Version::V2 => {
            // SAFETY: inotify_init1 takes flags only.
            let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
            if fd < 0 {
                let err = std::io::Error::last_os_error();
                // One instance per running monitor on v2 hosts: at scale the per-user
                // limit (128 by default) is what runs out; say which knob to turn.
                let hint = if err.raw_os_error() == Some(libc::EMFILE) {
                    format!(
                        " (fs.inotify.max_user_instances = {} reached: raise it with sysctl)",
                        std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
                            .unwrap_or_default()
                            .trim()
                    )
                } else {
                    String::new()
                };
                return Err(err)
                    .with_context(|| format!("cannot create an inotify instance{hint}"));
            }
            // SAFETY: fd was just returned by inotify_init1 and is ours.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let p =
                std::ffi::CString::new(dir.join("memory.events").as_os_str().as_encoded_bytes())?;
            // SAFETY: a valid inotify fd and NUL-terminated path.
            if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), p.as_ptr(), libc::IN_MODIFY) } < 0 {
                return Err(std::io::Error::last_os_error()).context("cannot watch memory.events");
            }
            Ok(fd)
        }
    }
}

/// Start watching `inst` (running); an error when its memory cgroup cannot
/// be watched (the monitor then goes on without `oom` events).
pub fn watch(store: &Store, inst: &Instance) -> Result<OomWatch> {
    let layout = Layout::host().context("cannot read the host's cgroup layout")?;
    let path = bundle::cgroups_path(&inst.id);
    let cgroup = Cgroup::resolve(layout, Some(Path::new(&path)), &inst.id)
        .with_context(|| format!("cannot find the cgroups of {}", inst.name))?;
    let h = cgroup
        .controller("memory")
        .with_context(|| format!("instance {} has no memory cgroup", inst.name))?;
    let wake = wake_fd(h.version, &h.path)?;
    let (version, dir) = (h.version, h.path.clone());
    // Counted from 0, not from the counter now: the cgroup was made for this start
    // of the container, and a process that eats memory at once is killed before
    // the watch is set up (that kill must be reported too).
    let reported = Arc::new(AtomicU64::new(0));
    let (stop_r, stop_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let thread = {
        let (store, inst, cg, reported) = (
            store.clone(),
            inst.clone(),
            cgroup.clone(),
            reported.clone(),
        );
        std::thread::spawn(move || loop {
            let mut fds = [
                libc::pollfd {
                    fd: wake.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: stop_r.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: two valid pollfds.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if rc < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            if fds[1].revents != 0 {
                return;
            }
            if fds[0].revents & libc::POLLIN == 0 {
                return;
            }
            let mut buf = [0u8; 4096];
            // SAFETY: read into our buffer from our descriptor.
            unsafe { libc::read(wake.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            // v1 notifies as the OOM starts; the kills (and the counter) follow, later
            // on a busy host: follow the counter until the OOM is over, at most a while.
            let end = Instant::now() + OOM_SETTLE;
            let mut any = false;
            loop {
                any |= report(&store, &inst, &cg, &reported);
                if (any && !under_oom(version, &dir)) || Instant::now() >= end {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    Ok(OomWatch {
        cgroup,
        reported,
        stop: stop_w,
        thread,
        store: store.clone(),
        inst: inst.clone(),
    })
}

impl OomWatch {
    /// Stop watching and record the OOM kills not reported yet; call it
    /// after the instance's process died and before its cgroup is removed.
    pub fn finish(self) {
        let _ = nix::unistd::write(&self.stop, b"x");
        let _ = self.thread.join();
        report(&self.store, &self.inst, &self.cgroup, &self.reported);
    }
}
