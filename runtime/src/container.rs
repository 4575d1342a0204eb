//! Container lifecycle on the runtime side: create, start, run, kill, delete, state,
//! list, pause/resume. Each command is a short-lived process that works on the state
//! directory under a lock, and leaves the host as it found it when it fails.

use crate::config::{self, Bundle};
use crate::error::{Error, Result};
use crate::hooks;
use crate::init::{self, InitCtx};
use crate::logging;
use crate::namespaces;
use crate::procfs;
use crate::state::{Record, StateDir, Status};
use crate::sync::{self, Tag};
use oci_spec::runtime::Spec;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Options of `create` (and the create half of `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    /// Runtime root (state directories).
    pub root: PathBuf,
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
}

/// A container that `create` just made, still owned by this process.
pub struct Created {
    /// Host pid of the container init.
    pub pid: i32,
    /// The state directory (locked).
    pub dir: StateDir,
    /// The saved record.
    pub record: Record,
    /// The spec.
    pub spec: Spec,
    /// Foreground `run` with a terminal and no --console-socket: our end of the
    /// socket the init sends its pty master to.
    pub console_proxy: Option<std::os::unix::net::UnixStream>,
}

/// Undo a half-made create: kill the child, remove cgroups and the state directory.
struct CreateGuard<'a> {
    dir: Option<&'a StateDir>,
    pid: i32,
    cgroup: Option<boxrun_cgroups::Cgroup>,
    armed: bool,
    /// A create-time hook failed: the lifecycle continues at destroy, poststop included.
    poststop: Option<(Vec<oci_spec::runtime::Hook>, Vec<u8>)>,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.pid > 0 {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                let mut st = 0;
                libc::waitpid(self.pid, &mut st, 0);
            }
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            if let Err(e) = cg.destroy() {
                logging::warn(&format!("remove cgroup after failed create: {e}"));
            }
        }
        if let Some((hooks, state)) = &self.poststop {
            hooks::run_all_warn(Some(hooks), state, "poststop");
        }
        if let Some(d) = self.dir {
            let _ = std::fs::remove_dir_all(&d.path);
        }
    }
}

fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0)
}

fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let Some(l) = spec.linux().as_ref() else {
        return Ok(());
    };
    let fmt = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> String {
        m.iter()
            .flatten()
            .map(|e| format!("{} {} {}\n", e.container_id(), e.host_id(), e.size()))
            .collect()
    };
    let uid = fmt(l.uid_mappings());
    let gid = fmt(l.gid_mappings());
    if !uid.is_empty() {
        std::fs::write(format!("/proc/{pid}/uid_map"), &uid)
            .map_err(|e| Error::Other(format!("linux.uidMappings: write uid_map: {e}")))?;
    }
    if !gid.is_empty() {
        std::fs::write(format!("/proc/{pid}/gid_map"), &gid)
            .map_err(|e| Error::Other(format!("linux.gidMappings: write gid_map: {e}")))?;
    }
    Ok(())
}

/// Create a container. With `wait_fifo` false (foreground `run`), the init does not
/// wait for `start` and execs as soon as it is set up.
pub fn create(opts: &CreateOpts, wait_fifo: bool) -> Result<Created> {
    create_inner(opts, wait_fifo, false)
}

/// `create`; with `proxy_tty`, a terminal without --console-socket gets an internal
/// socket whose other end is returned in [`Created::console_proxy`] (foreground `run`).
fn create_inner(opts: &CreateOpts, wait_fifo: bool, proxy_tty: bool) -> Result<Created> {
    crate::util::validate_id(&opts.id)?;
    let Bundle {
        dir: bundle,
        rootfs,
        spec,
        raw,
    } = config::load_bundle(&opts.bundle)?;
    let process = spec.process().as_ref();
    let terminal = process.and_then(|p| p.terminal()).unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !proxy_tty {
        return Err(Error::Other(
            "process.terminal is true: pass --console-socket (or set terminal to false)".into(),
        ));
    }
    // Everything that can fail on bad input is checked before the host is touched.
    let ns_list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let plan = namespaces::plan(&ns_list)?;
    if let Some(p) = process {
        crate::capabilities::Sets::from_spec(p.capabilities().as_ref())?;
    } else if !wait_fifo {
        return Err(Error::Config(
            "process is required to run a container".into(),
        ));
    }
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(compile_seccomp(&opts.root, s)?),
        None => None,
    };
    let mut console_proxy = None;
    let console = match (&opts.console_socket, terminal) {
        (_, false) => None,
        (Some(p), true) => Some(crate::console::connect(p)?),
        (None, true) => {
            let (ours, theirs) =
                std::os::unix::net::UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
            console_proxy = Some(ours);
            Some(OwnedFd::from(theirs))
        }
    };

    let dir = StateDir::create(&opts.root, &opts.id)?;
    let mut guard = CreateGuard {
        dir: Some(&dir),
        pid: 0,
        cgroup: None,
        armed: true,
        poststop: None,
    };
    let poststop_hooks = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.poststop().clone())
        .unwrap_or_default();
    crate::failpoint::hit("create:state-dir");
    std::fs::write(dir.config_path(), &raw).map_err(|e| Error::io(dir.config_path(), e))?;
    let me = std::process::id() as i32;
    let mut record = Record {
        oci_version: spec.version().clone(),
        id: opts.id.clone(),
        status: Status::Creating,
        pid: 0,
        pid_start_time: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: crate::util::rfc3339_now(),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: None,
        creator: (me, procfs::stat(me).map(|s| s.start_time).unwrap_or(0)),
        own_pidns: plan.new_pid,
    };
    let linux = spec.linux().as_ref();
    let cg_path = linux.and_then(|l| l.cgroups_path().clone());
    let mut resources = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    resources.set_devices(Some(crate::devices::cgroup_rules(&spec)?));
    let mut cg = boxrun_cgroups::Cgroup::plan(cg_path.as_deref(), &opts.id)?;
    // Pure v2: the directories are made now so that the child is born in its cgroup.
    // Hybrid: only the v2 directory is made now (the child is born there too); the v1
    // ones are made after the clone, while the child creates its namespaces and mounts
    // (it waits for them only at a cgroup mount and before exec).
    let cgroup_first = cg.is_unified();
    if cgroup_first {
        cg.materialize(Some(&resources))?;
    } else {
        cg.materialize_v2()?;
    }
    guard.cgroup = Some(cg.clone());
    record.cgroup = Some(cg.clone());
    dir.save(&record)?;
    crate::failpoint::hit("create:cgroup");

    if wait_fifo {
        nix::unistd::mkfifo(
            &dir.fifo_path(),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| Error::sys("mkfifo exec.fifo", e))?;
        // The init reopens it for writing after switching to process.user (any uid), through
        // /proc/self/fd: world-writable like runc's (0622, set past the umask); the state
        // directory keeps others from reaching it by path.
        std::fs::set_permissions(
            dir.fifo_path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o622),
        )
        .map_err(|e| Error::Other(format!("chmod exec.fifo: {e}")))?;
        // The init reopens the fifo as the container's root, which may be another host uid.
        if let Some((uid, gid)) = host_root_ids(&spec) {
            nix::unistd::chown(
                &dir.fifo_path(),
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(|e| Error::sys("chown exec.fifo", e))?;
        }
    }
    let fifo = if wait_fifo {
        let fd = nix::fcntl::open(
            &dir.fifo_path(),
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::sys("open exec.fifo", e))?;
        // SAFETY: a fresh fd from open.
        Some(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    } else {
        None
    };
    let has_runtime_hooks = spec.hooks().as_ref().is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    let lfds = listen_fds();
    let mut extra_env = Vec::new();
    if lfds > 0 {
        extra_env.push(format!("LISTEN_FDS={lfds}"));
        extra_env.push("LISTEN_PID=1".to_string());
    }
    let (parent, child) = sync::pair()?;
    let ctx = InitCtx {
        spec: &spec,
        rootfs: &rootfs,
        bundle: &bundle,
        state_dir: &dir.path,
        ns: &plan,
        cgroup: Some(&cg),
        seccomp: seccomp.as_ref(),
        console_socket: console.as_ref(),
        no_pivot: opts.no_pivot,
        wait_fifo,
        fifo: fifo.as_ref(),
        preserve_fds: opts.preserve_fds + lfds,
        extra_env,
        runtime_hooks: has_runtime_hooks,
        no_new_keyring: opts.no_new_keyring,
        id: &opts.id,
        close_fds: [Some(parent.raw()), dir.lock_fd()]
            .into_iter()
            .flatten()
            .collect(),
    };
    if let Some(pidns) = &plan.join_pid {
        // Affects only children: the init is born in the joined pid namespace.
        // SAFETY: setns on a checked pid namespace fd.
        if unsafe { libc::setns(pidns.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
            return Err(Error::sys("join pid namespace", nix::Error::last()));
        }
    }
    // The child is born in its v2 cgroup (clone3 CLONE_INTO_CGROUP): no late join there.
    let into = cg.clone_into_fd();
    let (pid, joined) = clone_child(
        plan.clone_flags,
        &ctx,
        &child,
        plan.join_pid.is_some(),
        into.as_ref(),
    )?;
    drop(child);
    guard.pid = pid;

    // The child is already setting up; the runtime's own work below (cgroups, state
    // record) overlaps with it. The child cannot exec before CgroupJoined, so a runtime
    // that dies before then takes it down (EOF) and leaves a `creating` record.
    if plan.new_user {
        // Only a child in a new user namespace waits: for its id maps.
        write_id_maps(pid, &spec)?;
        send_or_child_error(&parent, Tag::Go)?;
    }
    record.pid = pid;
    crate::failpoint::hit("create:cloned");
    if !cgroup_first {
        cg.materialize(Some(&resources))?;
        guard.cgroup = Some(cg.clone());
        record.cgroup = Some(cg.clone());
    }
    // The child may mount the cgroups now, and moves itself into the v1 hierarchies
    // through their `tasks` files, opened here. A cgroup.procs write of its pid by the
    // runtime would first wait for an RCU grace period (cgroup_threadgroup_rwsem),
    // 5-25 ms on an idle host; a thread moving itself does not.
    let tasks = cg.v1_tasks_files()?;
    let raw: Vec<_> = tasks.iter().map(|f| f.as_raw_fd()).collect();
    send_or_child_error_fds(&parent, Tag::CgroupMade, &raw)?;
    drop(tasks);
    if !joined {
        // clone3 is unavailable (old kernel, seccomp): join v2 the slow way.
        cg.add_process_v2(pid)?;
    }
    record.pid_start_time = procfs::stat(pid).map(|s| s.start_time).unwrap_or(0);
    dir.save(&record)?;
    crate::failpoint::hit("create:joined");
    send_or_child_error(&parent, Tag::CgroupJoined).inspect_err(|e| {
        if matches!(e, Error::Hook(_)) {
            guard.poststop = Some((
                poststop_hooks.clone(),
                record.oci_state(Status::Stopped).to_string().into_bytes(),
            ));
        }
    })?;

    loop {
        match parent.recv()? {
            Some((Tag::RuntimeHooks, _, _)) => {
                // runtime-tools (hooks_stdin) expects "created" here; runc says "creating".
                let state = record.oci_state(Status::Created).to_string().into_bytes();
                let h = spec.hooks().as_ref();
                let res = hooks::run_all(h.and_then(|h| h.prestart().as_ref()), &state, "prestart")
                    .and_then(|_| {
                        hooks::run_all(
                            h.and_then(|h| h.create_runtime().as_ref()),
                            &state,
                            "createRuntime",
                        )
                    });
                match res {
                    Ok(()) => send_or_child_error(&parent, Tag::Continue).inspect_err(|e| {
                        if matches!(e, Error::Hook(_)) {
                            guard.poststop = Some((
                                poststop_hooks.clone(),
                                record.oci_state(Status::Stopped).to_string().into_bytes(),
                            ));
                        }
                    })?,
                    Err(e) => {
                        let _ = parent.send(Tag::Abort, &[]);
                        guard.poststop = Some((
                            poststop_hooks.clone(),
                            record.oci_state(Status::Stopped).to_string().into_bytes(),
                        ));
                        return Err(e);
                    }
                }
            }
            Some((Tag::SeccompFd, _, fds)) if !fds.is_empty() => {
                hand_over_seccomp(&spec, &record, &fds[0])?;
                parent.send(Tag::Continue, &[])?;
            }
            Some((Tag::Ready, _, _)) => break,
            Some((Tag::Error, msg, _)) => {
                return Err(Error::Init(String::from_utf8_lossy(&msg).into_owned()))
            }
            Some((Tag::HookFailed, msg, _)) => {
                guard.poststop = Some((
                    poststop_hooks.clone(),
                    record.oci_state(Status::Stopped).to_string().into_bytes(),
                ));
                return Err(Error::Hook(String::from_utf8_lossy(&msg).into_owned()));
            }
            Some((t, _, _)) => {
                return Err(Error::Init(format!(
                    "unexpected message {t:?} from the container"
                )))
            }
            None => return Err(Error::Init("container init exited during set-up".into())),
        }
    }
    crate::failpoint::hit("create:ready");
    record.status = if wait_fifo {
        Status::Created
    } else {
        Status::Running
    };
    dir.save(&record)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    guard.armed = false;
    drop(guard);
    Ok(Created {
        pid,
        dir,
        record,
        spec,
        console_proxy,
    })
}

/// Send to the child; if it already failed and closed its end, return its error message.
fn send_or_child_error(chan: &sync::Channel, tag: Tag) -> Result<()> {
    send_or_child_error_fds(chan, tag, &[])
}

/// [`send_or_child_error`] with fds passed along.
fn send_or_child_error_fds(chan: &sync::Channel, tag: Tag, fds: &[RawFd]) -> Result<()> {
    match chan.send_fds(tag, fds) {
        Ok(()) => Ok(()),
        Err(e) => match chan.recv() {
            Ok(Some((Tag::Error, msg, _))) => {
                Err(Error::Init(String::from_utf8_lossy(&msg).into_owned()))
            }
            Ok(Some((Tag::HookFailed, msg, _))) => {
                Err(Error::Hook(String::from_utf8_lossy(&msg).into_owned()))
            }
            _ => Err(e),
        },
    }
}

/// Host uid and gid that the container's root maps to, when a user namespace maps it elsewhere.
fn host_root_ids(spec: &Spec) -> Option<(u32, u32)> {
    let l = spec.linux().as_ref()?;
    let find = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.iter()
            .flatten()
            .find(|e| e.container_id() == 0)
            .map(|e| e.host_id())
    };
    let uid = find(l.uid_mappings());
    let gid = find(l.gid_mappings());
    if uid.is_none() && gid.is_none() {
        return None;
    }
    Some((uid.unwrap_or(0), gid.unwrap_or(0)))
}

fn compile_seccomp(
    root: &Path,
    s: &oci_spec::runtime::LinuxSeccomp,
) -> Result<boxrun_seccomp::Filter> {
    if std::env::var_os("BOXRUN_SECCOMP_CACHE").is_some_and(|v| v == "0") {
        return Ok(boxrun_seccomp::compile(s)?);
    }
    Ok(boxrun_seccomp::compile_cached(
        s,
        &root.join("seccomp-cache"),
    )?)
}

fn hand_over_seccomp(spec: &Spec, record: &Record, fd: &OwnedFd) -> Result<()> {
    let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(());
    };
    let Some(path) = sc.listener_path() else {
        return Err(Error::Config(
            "linux.seccomp uses SCMP_ACT_NOTIFY but has no listenerPath".into(),
        ));
    };
    let state = serde_json::json!({
        "ociVersion": record.oci_version,
        "fds": ["seccompFd"],
        "pid": record.pid,
        "metadata": sc.listener_metadata().clone().unwrap_or_default(),
        "state": record.oci_state(Status::Creating),
    });
    boxrun_seccomp::send_listener_fd(
        path,
        std::os::fd::AsFd::as_fd(fd),
        state.to_string().as_bytes(),
    )?;
    Ok(())
}

/// Write the pid file atomically (runc clients read it as soon as create returns).
pub fn write_pid_file(p: &Path, pid: i32) -> Result<()> {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(".", e))?
            .join(p)
    };
    crate::util::atomic_write(&p, pid.to_string().as_bytes(), 0o644)
}

/// Fork the container's init with the new-namespace flags ([`crate::fork::fork`]); the
/// child runs init. The bool says whether the child was born in its v2 cgroup.
fn clone_child(
    flags: libc::c_int,
    ctx: &InitCtx,
    chan: &sync::Channel,
    joined_pidns: bool,
    cgroup_fd: Option<&OwnedFd>,
) -> Result<(i32, bool)> {
    if joined_pidns {
        // A process entering an existing pid namespace must not expose the runtime binary.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    }
    // SAFETY: the runtime is single-threaded.
    match unsafe { crate::fork::fork(flags, cgroup_fd, "container init") }? {
        crate::fork::Forked::Child => init::child_main(ctx, chan),
        crate::fork::Forked::Parent { pid, in_cgroup } => Ok((pid, in_cgroup)),
    }
}

/// `start`: release a created container's init and run poststart hooks.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    let mut rec = dir.load()?.ok_or_else(|| Error::NotFound(id.to_string()))?;
    let status = rec.live_status(&dir.path);
    if status != Status::Created {
        return Err(Error::BadState {
            id: id.into(),
            status: status.as_str().into(),
            msg: "start needs a created container".into(),
        });
    }
    let spec = load_saved_spec(&dir)?;
    if spec.process().is_none() {
        // runtime-spec: start MUST generate an error if process was not set. The
        // container cannot ever run, so it is stopped rather than left waiting.
        let _ = signal_pid(&rec, libc::SIGKILL);
        wait_gone(
            rec.pid,
            rec.pid_start_time,
            std::time::Duration::from_secs(10),
        );
        rec.status = Status::Stopped;
        dir.save(&rec)?;
        return Err(Error::Config(format!(
            "container {id} has no process in its config.json: nothing to start"
        )));
    }
    crate::failpoint::hit("start:before-release");
    if let Err(e) = release_fifo(&dir, &rec) {
        if matches!(e, Error::Hook(_)) {
            // A startContainer hook failed: stop the container and destroy it (poststop too).
            let _ = signal_pid(&rec, libc::SIGKILL);
            wait_gone(
                rec.pid,
                rec.pid_start_time,
                std::time::Duration::from_secs(10),
            );
            rec.status = Status::Stopped;
            let _ = destroy(dir, &rec, None);
        }
        return Err(e);
    }
    crate::failpoint::hit("start:released");
    rec.status = Status::Running;
    dir.save(&rec)?;
    let state = rec.oci_state(Status::Running).to_string().into_bytes();
    hooks::run_all_warn(
        spec.hooks().as_ref().and_then(|h| h.poststart().as_ref()),
        &state,
        "poststart",
    );
    Ok(())
}

fn release_fifo(dir: &StateDir, rec: &Record) -> Result<()> {
    let p = dir.fifo_path();
    // Non-blocking open of the read end never blocks; then wait for the init's status
    // or its death (pidfd), so an init that dies right now cannot hang `start`.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&p)
        .map_err(|e| Error::io(&p, e))?;
    // SAFETY: pidfd_open with a pid; failure leaves -1 (then only the fifo is polled).
    let pfd = unsafe { libc::syscall(libc::SYS_pidfd_open, rec.pid, 0) } as i32;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pfd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfd entries (a negative fd is ignored by poll).
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 && nix::Error::last() == nix::Error::EINTR {
            continue;
        }
        if fds[0].revents != 0 || fds[1].revents != 0 || r < 0 {
            break;
        }
    }
    if pfd >= 0 {
        // SAFETY: closing our pidfd.
        unsafe { libc::close(pfd) };
    }
    // Data (or the init's exit) is there: read it all in blocking mode.
    // SAFETY: clearing O_NONBLOCK on our fd.
    unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, 0) };
    let mut b = Vec::new();
    let mut f = f;
    if procfs::is_alive(rec.pid, rec.pid_start_time) || has_data(&f) {
        std::io::Read::read_to_end(&mut f, &mut b).map_err(|e| Error::io(&p, e))?;
    }
    let _ = std::fs::remove_file(&p);
    match b.first() {
        None => Err(Error::Init(
            "container init exited before it could be started".into(),
        )),
        Some(b'0') => Ok(()),
        Some(_) => Err(Error::Hook(String::from_utf8_lossy(&b[1..]).into_owned())),
    }
}

fn has_data(f: &std::fs::File) -> bool {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD into an int.
    unsafe { libc::ioctl(f.as_raw_fd(), libc::FIONREAD, &mut n) == 0 && n > 0 }
}

/// The spec saved at create time.
pub fn load_saved_spec(dir: &StateDir) -> Result<Spec> {
    let raw = std::fs::read(dir.config_path()).map_err(|e| Error::io(dir.config_path(), e))?;
    config::parse(&raw)
}

/// The OCI state of a container.
pub fn state(root: &Path, id: &str) -> Result<serde_json::Value> {
    let dir = StateDir::open_unlocked(root, id)?;
    match dir.load()? {
        Some(rec) => Ok(rec.oci_state(rec.live_status(&dir.path))),
        None => Ok(
            serde_json::json!({"ociVersion": "1.0.2", "id": id, "pid": 0, "status": "stopped",
            "bundle": "", "rootfs": "", "created": "", "owner": ""}),
        ),
    }
}

/// `kill`: signal the init (or, with `all`, every process in the container's cgroup).
pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    let rec = dir.load()?.ok_or_else(|| Error::NotFound(id.to_string()))?;
    let status = rec.live_status(&dir.path);
    if matches!(status, Status::Stopped | Status::Creating) {
        return Err(Error::BadState {
            id: id.into(),
            status: status.as_str().into(),
            msg: "cannot send a signal to a container that is not running".into(),
        });
    }
    if all {
        if let Some(cg) = &rec.cgroup {
            cg.kill_all(sig)?;
            return Ok(());
        }
    }
    signal_pid(&rec, sig)
}

fn signal_pid(rec: &Record, sig: i32) -> Result<()> {
    // Use a pidfd so a recycled pid is never signalled.
    // SAFETY: pidfd_open with a pid.
    let pfd = unsafe { libc::syscall(libc::SYS_pidfd_open, rec.pid, 0) };
    if pfd >= 0 {
        // SAFETY: fresh fd.
        let pfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pfd as i32) };
        if !procfs::is_alive(rec.pid, rec.pid_start_time) {
            return Err(Error::BadState {
                id: rec.id.clone(),
                status: "stopped".into(),
                msg: "the process has exited".into(),
            });
        }
        // SAFETY: pidfd_send_signal with a valid pidfd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pfd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r != 0 {
            return Err(Error::sys(
                format!("signal container {}", rec.id),
                nix::Error::last(),
            ));
        }
        return Ok(());
    }
    // SAFETY: kill with pid and signal numbers.
    if unsafe { libc::kill(rec.pid, sig) } != 0 {
        return Err(Error::sys(
            format!("signal container {}", rec.id),
            nix::Error::last(),
        ));
    }
    Ok(())
}

/// Wait until `pid` is gone (or a zombie), using a pidfd; bounded by `timeout`.
fn wait_gone(pid: i32, start: u64, timeout: std::time::Duration) -> bool {
    // SAFETY: pidfd_open with a pid.
    let pfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pfd < 0 {
        return !procfs::is_alive(pid, start);
    }
    // SAFETY: fresh fd.
    let pfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pfd as i32) };
    let mut p = libc::pollfd {
        fd: pfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) };
    r > 0 || !procfs::is_alive(pid, start)
}

/// `delete`: remove a stopped container (with `force`, kill it first). With `force`, a
/// missing container is not an error (engines rely on that).
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let dir = match StateDir::open(root, id) {
        Ok(d) => d,
        Err(Error::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(rec) = dir.load()? else {
        // A create that died before writing state: nothing else was made.
        return dir.remove();
    };
    let status = rec.live_status(&dir.path);
    if status != Status::Stopped {
        if !force {
            return Err(Error::BadState {
                id: id.into(),
                status: status.as_str().into(),
                msg: "delete needs a stopped container: kill it first or use --force".into(),
            });
        }
        if let Some(cg) = &rec.cgroup {
            if status == Status::Paused {
                let _ = cg.thaw();
            }
        }
        if rec.pid > 0 {
            let _ = signal_pid(&rec, libc::SIGKILL);
        }
        if !rec.own_pidns {
            if let Some(cg) = &rec.cgroup {
                let _ = cg.kill_all(libc::SIGKILL);
            }
        }
        crate::failpoint::hit("delete:killed");
        if rec.pid > 0
            && !wait_gone(
                rec.pid,
                rec.pid_start_time,
                std::time::Duration::from_secs(10),
            )
        {
            return Err(Error::Other(format!(
                "container {id}: process {} did not die after SIGKILL",
                rec.pid
            )));
        }
    }
    destroy(dir, &rec, None)
}

/// Tear down a stopped container: cgroups, poststop hooks, state directory.
/// `spec`: the container's config when the caller has it (`run`), else the saved copy
/// is read for the poststop hooks.
fn destroy(dir: StateDir, rec: &Record, spec: Option<&Spec>) -> Result<()> {
    if let Some(cg) = &rec.cgroup {
        if !rec.own_pidns {
            let _ = cg.kill_all(libc::SIGKILL);
        }
        cg.destroy()?;
        crate::failpoint::hit("delete:cgroup-removed");
    }
    let saved;
    let spec = match spec {
        Some(s) => Some(s),
        None => {
            saved = load_saved_spec(&dir).ok();
            saved.as_ref()
        }
    };
    if let Some(spec) = spec {
        let state = rec.oci_state(Status::Stopped).to_string().into_bytes();
        hooks::run_all_warn(
            spec.hooks().as_ref().and_then(|h| h.poststop().as_ref()),
            &state,
            "poststop",
        );
    }
    dir.remove()
}

/// `pause` / `resume`.
pub fn set_frozen(root: &Path, id: &str, freeze: bool) -> Result<()> {
    let dir = StateDir::open(root, id)?;
    let rec = dir.load()?.ok_or_else(|| Error::NotFound(id.to_string()))?;
    let status = rec.live_status(&dir.path);
    let ok = if freeze {
        status == Status::Running
    } else {
        status == Status::Paused
    };
    if !ok {
        return Err(Error::BadState {
            id: id.into(),
            status: status.as_str().into(),
            msg: if freeze {
                "only a running container can be paused".into()
            } else {
                "only a paused container can be resumed".into()
            },
        });
    }
    let cg = rec
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::Other(format!("container {id} has no cgroup")))?;
    if freeze {
        cg.freeze()?
    } else {
        cg.thaw()?
    }
    Ok(())
}

/// Load a container record with its live status (for ps, events, update, exec).
pub fn load(root: &Path, id: &str) -> Result<(StateDir, Record, Status)> {
    let dir = StateDir::open_unlocked(root, id)?;
    let rec = dir.load()?.ok_or_else(|| Error::NotFound(id.to_string()))?;
    let st = rec.live_status(&dir.path);
    Ok((dir, rec, st))
}

/// `run`: create and start, then (unless detached) wait, forward signals, delete, and
/// return the exit code (128+n for a signal, like a shell).
pub fn run(opts: &CreateOpts, detach: bool, keep: bool) -> Result<i32> {
    if detach {
        let c = create(opts, true)?;
        drop(c);
        start(&opts.root, &opts.id)?;
        return Ok(0);
    }
    // Block the signals we forward before the child exists; the child unblocks them.
    let fwd = crate::signals::forwardable();
    // SAFETY: blocking signals in a single-threaded process.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &fwd, std::ptr::null_mut()) };
    let Created {
        pid,
        dir,
        record,
        spec,
        console_proxy,
    } = create_inner(opts, false, true)?;
    let master = match &console_proxy {
        Some(sock) => Some(crate::console::recv_master(sock.as_raw_fd())?),
        None => None,
    };
    let state = record.oci_state(Status::Running).to_string().into_bytes();
    hooks::run_all_warn(
        spec.hooks().as_ref().and_then(|h| h.poststart().as_ref()),
        &state,
        "poststart",
    );
    drop(dir);
    let code = match master {
        Some(m) => crate::console::proxy_until_exit(&m, pid, &fwd),
        None => crate::signals::wait_forwarding(pid, &fwd),
    };
    if !keep {
        let dir = StateDir::open(&opts.root, &opts.id)?;
        let mut rec = dir.load()?.unwrap_or(record);
        rec.status = Status::Stopped;
        destroy(dir, &rec, Some(&spec))?;
    }
    Ok(code)
}
