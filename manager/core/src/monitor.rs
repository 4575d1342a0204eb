//! The per-instance monitor: `boxctl __monitor ID`, started detached
//! (setsid) by `start`. It is the container's parent (child subreaper), holds
//! its stdio (log file with a size cap, rotated), reaps it, records the
//! exit, applies the restart policy and tears down what the instance held.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::bail;
use crate::error::{Context, Result};

use crate::attach::{self, Hub};
use crate::events::{self, Action};
use crate::healthcheck::HealthStatus;
use crate::instance_file::{Instance, Status};
use crate::limits::RestartPolicy;
use crate::store::Store;
use crate::teardown::{purge, runtime_for, teardown};
use crate::{bundle, checker, console, networking, oom, util};

/// Default log size cap before rotation (override with BOXCTL_LOG_MAX, bytes).
pub const LOG_MAX: u64 = 10 << 20;
const READY_FD: i32 = 3;

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("cannot create a pipe")
}

/// How long a monitor started for a foreground client waits for it to
/// attach before starting the process anyway.
const ATTACH_FIRST_WAIT: Duration = Duration::from_secs(30);

/// Spawn the monitor for `inst` and wait until it reports the container
/// started (or failed to). With `on_listening`, the monitor stops between
/// the runtime's `create` and `start` until a client has attached to its
/// socket ([`attach::socket_path`]): `on_listening` is called then, to
/// attach, so that the client sees the process's output from its start.
pub fn spawn(
    store: &Store,
    inst: &Instance,
    mut on_listening: Option<&mut dyn FnMut() -> Result<()>>,
) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the boxctl executable")?;
    let dir = store.instance_dir(&inst.id);
    let mlog = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("monitor.log"))
        .with_context(|| format!("cannot open {}", dir.join("monitor.log").display()))?;
    let (r, w) = pipe()?;
    let wfd = w.as_raw_fd();
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(store.root())
        .arg("__monitor")
        .arg(&inst.id)
        .args(on_listening.is_some().then_some("--attach-first"))
        .stdin(Stdio::null())
        .stdout(mlog.try_clone()?)
        .stderr(mlog)
        .current_dir("/");
    // SAFETY: only async-signal-safe calls (setsid, dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if wfd == READY_FD {
                libc::fcntl(wfd, libc::F_SETFD, 0);
            } else if libc::dup2(wfd, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the monitor")?;
    let mpid = child.id() as i32;
    drop(w);
    store.update_one(&inst.id, |i| {
        i.monitor_pid = Some(mpid);
        Ok(())
    })?;
    let mut report = BufReader::new(File::from(r));
    let mut msg = String::new();
    loop {
        msg.clear();
        report
            .read_line(&mut msg)
            .context("cannot read the monitor's report")?;
        match (msg.trim(), on_listening.as_mut()) {
            ("listening", Some(attach)) => {
                if let Err(e) = attach() {
                    // Else it would start the process after its wait, for nobody.
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e);
                }
            }
            ("listening", None) => {}
            _ => break,
        }
    }
    let msg = msg.trim();
    if msg == "ok" {
        return Ok(());
    }
    if let Some(e) = msg.strip_prefix("error: ") {
        bail!("{e}");
    }
    bail!(
        "the monitor exited during start-up: see {}",
        dir.join("monitor.log").display()
    )
}

/// Log file writer with a size cap: `container.log` rotates to `container.log.1`.
struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    cap: u64,
}

impl LogWriter {
    fn open(path: PathBuf) -> Result<LogWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let cap = std::env::var("BOXCTL_LOG_MAX")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(LOG_MAX);
        Ok(LogWriter {
            path,
            file,
            size,
            cap,
        })
    }

    fn write(&mut self, data: &[u8]) {
        if self.size + data.len() as u64 > self.cap && self.size > 0 {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            let _ = std::fs::rename(&self.path, &old);
            if let Ok(f) = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
            {
                self.file = f;
                self.size = 0;
            }
        }
        if self.file.write_all(data).is_ok() {
            self.size += data.len() as u64;
        }
    }
}

/// Copy what the container writes on `f` (its stdout/stderr pipe or its
/// terminal's master) to the log and to attached clients.
fn pump(mut f: File, log: Arc<Mutex<LogWriter>>, hub: Arc<Hub>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    log.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .write(&buf[..n]);
                    hub.broadcast(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break, // EIO on a terminal's master once the process is gone
            }
        }
    })
}

/// A started container.
struct Started {
    pid: i32,
    pumpers: Vec<JoinHandle<()>>,
    published: Option<crate::publish::Published>,
}

/// Mount the disk, write the bundle, `create` + `start` through the
/// runtime with us as the caller. Returns the init pid and the log pumps.
/// The attach socket is served from the first call on (`hub`); with
/// `announce` (the start-up report pipe), "listening" is reported between
/// `create` and `start` and the first client awaited.
fn start_container(
    store: &Store,
    inst: &Instance,
    hub: &mut Option<Arc<Hub>>,
    announce: Option<&mut File>,
) -> Result<Started> {
    let dir = store.instance_dir(&inst.id);
    let hub = match hub {
        Some(h) => h.clone(),
        None => hub.insert(Hub::serve(&attach::socket_path(&dir))?).clone(),
    };
    let rootfs = dir.join("rootfs");
    let rt = runtime_for(store, inst);
    rt.delete_if_known(&inst.id)?;
    crate::instance_disk::unmount(store, inst)?;
    let mut devs = crate::instance_disk::mount(store, inst)?;
    let vols = crate::volumes::attach(store, inst)?;
    devs.extend(&vols.devices);
    let net = networking::setup(store, inst)?;
    let mut extra = net.mounts.clone();
    extra.extend(vols.mounts);
    let cfg = bundle::config(inst, &rootfs, &devs, net.netns.as_deref(), &extra)?;
    bundle::write(&dir, &cfg)?;
    let (r, w) = pipe()?;
    let log = Arc::new(Mutex::new(LogWriter::open(dir.join("container.log"))?));
    let mut pumpers = vec![pump(File::from(r), log.clone(), hub.clone())];
    let pidfile = dir.join("init.pid");
    let _ = std::fs::remove_file(&pidfile);
    let _ = std::fs::remove_file(dir.join("runtime.log"));
    let w_file = File::from(w);
    let stdin = if inst.session.interactive && !inst.session.tty {
        let (sr, sw) = pipe()?;
        hub.set_stdin(sw);
        Stdio::from(sr)
    } else {
        Stdio::null()
    };
    let console_path = dir.join("console.sock");
    let console = if inst.session.tty {
        let _ = std::fs::remove_file(&console_path);
        Some(
            std::os::unix::net::UnixListener::bind(&console_path).with_context(|| {
                format!("cannot create console socket {}", console_path.display())
            })?,
        )
    } else {
        None
    };
    let mut cmd = rt.command();
    cmd.arg("create").arg("--bundle").arg(&dir);
    if console.is_some() {
        cmd.arg("--console-socket").arg(&console_path);
    }
    cmd.arg("--pid-file")
        .arg(&pidfile)
        .arg(&inst.id)
        .stdin(stdin)
        .stdout(w_file.try_clone()?)
        .stderr(w_file);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run runtime {}", rt.bin.display()))?;
    drop(cmd); // our copies of the pipes' ends
    let master = match &console {
        Some(listener) => {
            let m = console::receive_master(listener, &mut child);
            let _ = std::fs::remove_file(&console_path);
            match m {
                Ok(m) => Some(m),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    join(pumpers);
                    bail!("runtime create failed: {} ({e})", runtime_error(&dir));
                }
            }
        }
        None => None,
    };
    let status = child.wait().context("cannot wait for the runtime")?;
    if !status.success() {
        join(pumpers);
        bail!("runtime create failed: {}", runtime_error(&dir));
    }
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .context("the runtime wrote no pid file")?;
    if let Err(e) = networking::attach_created(store, inst, pid) {
        let _ = rt.delete_force(&inst.id);
        return Err(e);
    }
    if let Some(m) = master {
        hub.set_terminal(&m)?;
        pumpers.push(pump(File::from(m), log, hub.clone()));
    }
    if let Some(r) = announce {
        let _ = writeln!(r, "listening");
        hub.wait_client(ATTACH_FIRST_WAIT);
    }
    if let Err(e) = rt.start(&inst.id) {
        let _ = rt.delete_force(&inst.id);
        return Err(e);
    }
    let published = match crate::publish::start(store, inst) {
        Ok(f) => f,
        Err(e) => {
            let _ = rt.kill(&inst.id, "KILL");
            reap(pid);
            let _ = rt.delete_force(&inst.id);
            return Err(e);
        }
    };
    Ok(Started {
        pid,
        pumpers,
        published,
    })
}

fn join(pumpers: Vec<JoinHandle<()>>) {
    for p in pumpers {
        let _ = p.join();
    }
}

fn runtime_error(dir: &Path) -> String {
    let read = |p: PathBuf| std::fs::read(p).unwrap_or_default();
    let text = read(dir.join("runtime.log"));
    let t = String::from_utf8_lossy(&text);
    if let Some(l) = t.lines().rev().find(|l| l.contains("error")) {
        return crate::runtime_cli::last_line(l.as_bytes());
    }
    let log = read(dir.join("container.log"));
    crate::runtime_cli::last_line(&log)
}

/// Reap children until `pid` exits; returns its exit code.
fn reap(pid: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r == pid {
            return boxrun_common::wait::exit_code(status);
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return -1; // ECHILD: lost it
        }
    }
}

/// The monitor's main loop (`boxctl __monitor ID [--attach-first]`);
/// `attach_first`: wait for a client on the attach socket before the first
/// start (see [`spawn`]).
pub fn main(store: &Store, id: &str, attach_first: bool) -> Result<()> {
    // SAFETY: F_GETFD only queries the descriptor.
    let has_ready = unsafe { libc::fcntl(READY_FD, libc::F_GETFD) } >= 0;
    if has_ready {
        // SAFETY: as above; the runtime and the container must not inherit the report pipe.
        unsafe { libc::fcntl(READY_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: fd 3 was set up by spawn() for the start-up report; we take ownership once.
    let mut ready = has_ready.then(|| unsafe { File::from_raw_fd(READY_FD) });
    // SAFETY: prctl/signal calls with constant arguments.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let me = std::process::id() as i32;
    let mut hub = None;
    loop {
        let inst = store.find(id)?;
        let announce = ready.as_mut().filter(|_| attach_first);
        let started = start_container(store, &inst, &mut hub, announce);
        let Started {
            pid,
            pumpers,
            published,
        } = match started {
            Ok(x) => x,
            Err(e) => {
                let _ = teardown(store, &inst);
                let now = util::format_time(util::now_secs());
                if let Some(mut r) = ready.take() {
                    let _ = store.update_one(id, |i| {
                        i.status = if i.started_at.is_some() {
                            Status::Exited
                        } else {
                            Status::Created
                        };
                        i.monitor_pid = None;
                        i.pid = None;
                        Ok(())
                    });
                    let _ = writeln!(r, "error: {}", e.chain());
                    return Err(e);
                }
                eprintln!("boxctl monitor: restart of {id} failed: {}", e.chain());
                let again = record_exit(store, id, 127, &now)?;
                match again {
                    Some(d) => {
                        if !backoff(store, id, d)? {
                            return finished(store, id, hub.as_deref());
                        }
                        continue;
                    }
                    None => return finished(store, id, hub.as_deref()),
                }
            }
        };
        let stop_now = store.update_one(id, |i| {
            i.status = Status::Running;
            i.pid = Some(pid);
            i.monitor_pid = Some(me);
            i.owner_pid = None;
            i.started_at = Some(util::format_time(util::now_secs()));
            i.finished_at = None;
            i.exit_code = None;
            i.health.status = i.health.enabled().then_some(HealthStatus::Starting);
            i.health.failures = 0;
            Ok(i.stop_requested)
        })?;
        let running = store.find(id)?;
        events::record(store, &running, Action::Start, None, None);
        let oom = oom::watch(store, &running)
            .map_err(|e| eprintln!("boxctl monitor: no oom events for {id}: {}", e.chain()))
            .ok();
        let checker = checker::spawn(store, &running)
            .map_err(|e| eprintln!("boxctl monitor: no health checks for {id}: {}", e.chain()))
            .ok()
            .flatten();
        if let Some(mut r) = ready.take() {
            let _ = writeln!(r, "ok");
        }
        release_heap();
        if stop_now {
            // `stop` came while the container was starting (it saw no pid to signal).
            let _ = runtime_for(store, &inst).kill(id, "KILL");
        }
        let code = reap(pid);
        let now = util::format_time(util::now_secs());
        if let Some(c) = checker {
            c.stop();
        }
        if let Some(w) = oom {
            w.finish();
        }
        events::record(store, &running, Action::Die, Some(code), None);
        if let Some(p) = published {
            let _ = p.stop();
        }
        // The container's processes are gone with its pid namespace; the pipe drains.
        join(pumpers);
        if let Some(h) = &hub {
            h.clear_io();
        }
        if let Err(e) = teardown(store, &inst) {
            eprintln!("boxctl monitor: teardown of {id}: {}", e.chain());
        }
        match record_exit(store, id, code, &now)? {
            Some(d) => {
                if !backoff(store, id, d)? {
                    return finished(store, id, hub.as_deref());
                }
            }
            None => return finished(store, id, hub.as_deref()),
        }
    }
}

/// Give the heap's free pages back to the kernel: the start-up parsed the
/// instance file (whole, to write the peers' hosts files on a bridge), and a
/// monitor lives as long as its instance.
fn release_heap() {
    // SAFETY: malloc_trim only returns free memory to the kernel.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The instance has exited for good: remove it if it was made with `--rm`,
/// then give attached clients its exit code.
fn finished(store: &Store, id: &str, hub: Option<&Hub>) -> Result<()> {
    let Ok(inst) = store.find(id) else {
        // Removed meanwhile (`rm -f`): the code went with it.
        if let Some(h) = hub {
            h.finish(-1);
        }
        return Ok(());
    };
    let code = inst.exit_code.unwrap_or(-1);
    if inst.session.auto_remove {
        if let Err(e) = purge(store, &inst) {
            eprintln!("boxctl monitor: removal of {id} (--rm): {}", e.chain());
        }
    }
    if let Some(h) = hub {
        h.finish(code);
    }
    Ok(())
}

/// Record an exit; returns the back-off to wait if the policy says restart.
fn record_exit(store: &Store, id: &str, code: i32, now: &str) -> Result<Option<Duration>> {
    store.update_one(id, |i| {
        i.exit_code = Some(code);
        i.finished_at = Some(now.to_string());
        i.pid = None;
        if !i.stop_requested && i.restart.should_restart(code, i.restart_count) {
            let d = RestartPolicy::backoff(i.restart_count);
            i.restart_count += 1;
            i.status = Status::Restarting;
            Ok(Some(d))
        } else {
            i.status = Status::Exited;
            if i.session.auto_remove {
                // The monitor removes it next; `ps` leaves that to it while it lives.
                i.status = Status::Removing;
                i.owner_pid = Some(std::process::id() as i32);
            }
            i.monitor_pid = None;
            Ok(None)
        }
    })
}

/// Wait `d` unless a stop is requested meanwhile; false if stopped.
fn backoff(store: &Store, id: &str, d: Duration) -> Result<bool> {
    let end = Instant::now() + d;
    loop {
        let inst = store.find(id)?;
        if inst.stop_requested {
            store.update_one(id, |i| {
                i.status = Status::Exited;
                i.monitor_pid = None;
                Ok(())
            })?;
            return Ok(false);
        }
        let now = Instant::now();
        if now >= end {
            return Ok(true);
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}
