//! The container side: everything between clone and exec, run in the cloned child.
//!
//! Order (runc's, so the same configs behave the same): wait for the parent (id maps,
//! cgroup) → join namespaces by path → late unshares (cgroup, time) → setsid →
//! hostname → rootfs and mounts → devices → [createRuntime hooks, in the parent] →
//! createContainer hooks → pivot_root → sysctl → masked/readonly paths → console →
//! rlimits → LSM → I/O priority → credentials and capabilities → no_new_privs →
//! seccomp → close fds → wait on the exec fifo (create) → startContainer hooks → exec.

use crate::capabilities;
use crate::console;
use crate::devices;
use crate::error::{Error, Result, SysContext};
use crate::hooks;
use crate::identity;
use crate::namespaces::Plan;
use crate::rootfs;
use crate::sync::{FromInit, InitEnd as Channel, ToInit};
use crate::syscall::{Linux, Syscall};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Everything the child needs, prepared by the parent before clone.
pub struct InitCtx<'a> {
    /// The parsed spec.
    pub spec: &'a Spec,
    /// Absolute rootfs.
    pub rootfs: &'a Path,
    /// Absolute bundle.
    pub bundle: &'a Path,
    /// The container's state directory (holds exec.fifo).
    pub state_dir: &'a Path,
    /// Namespace plan (fds to join are inherited).
    pub ns: &'a Plan,
    /// The container's cgroups.
    pub cgroup: Option<&'a boxrun_cgroups::Cgroup>,
    /// Compiled seccomp filter, if any.
    pub seccomp: Option<&'a boxrun_seccomp::Filter>,
    /// Connected console socket, when process.terminal is set.
    pub console_socket: Option<&'a OwnedFd>,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// Block on the exec fifo until `start` (false: exec as soon as set up, for `run`).
    pub wait_fifo: bool,
    /// O_PATH fd of the exec fifo, opened by the runtime: the init never needs to
    /// reach the state directory by path (a user-namespaced root may not traverse it).
    pub fifo: Option<&'a OwnedFd>,
    /// Number of fds after stdio to pass to the process (--preserve-fds + LISTEN_FDS).
    pub preserve_fds: u32,
    /// Extra environment (LISTEN_FDS/LISTEN_PID).
    pub extra_env: Vec<String>,
    /// Whether the parent runs prestart/createRuntime hooks (a sync round-trip).
    pub runtime_hooks: bool,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
    /// Container id (names the session keyring).
    pub id: &'a str,
    /// Runtime fds the child must close at once (the state lock, the parent's channel end).
    pub close_fds: Vec<RawFd>,
    /// Bind sources taken by the runtime before the user namespace (see
    /// [`crate::bind_sources::take`]).
    pub bind_sources: &'a [Option<OwnedFd>],
}

/// Entry point in the child. Never returns: execs the user process or exits.
pub fn child_main(ctx: &InitCtx, chan: &Channel) -> ! {
    for fd in &ctx.close_fds {
        // SAFETY: closing fds of the runtime that this process must not hold (a held
        // flock would block every later command on this container).
        unsafe { libc::close(*fd) };
    }
    // Signals blocked by a foreground `run` parent must not stay blocked in the container,
    // nor SIGPIPE ignored.
    crate::signals::reset_for_exec();
    let err = match setup(ctx, chan, &Linux) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if READY_SENT.load(std::sync::atomic::Ordering::Relaxed) {
        // Nobody reads the channel after Ready (create has returned, run is waiting):
        // the error goes to the container's stderr instead of vanishing.
        let _ = crate::util::write_all_fd(2, format!("boxrun: error: {err}\n").as_bytes());
    } else if matches!(err, Error::Hook(_)) {
        let _ = chan.send(FromInit::HookFailed(err.to_string()));
    } else {
        let _ = chan.send(FromInit::Error(err.to_string()));
    }
    // SAFETY: leave without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(1) }
}

enum Never {}

/// Set once Ready is sent: the runtime no longer reads the channel.
static READY_SENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn write_timens_offsets(sys: &dyn Syscall, spec: &Spec) -> Result<()> {
    let Some(offs) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Ok(());
    };
    let mut s = String::new();
    for (clock, off) in offs {
        s.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    if !s.is_empty() {
        sys.write_file(Path::new("/proc/self/timens_offsets"), s.as_bytes())
            .map_err(|e| Error::context("linux.timeOffsets", e))?;
    }
    Ok(())
}

/// The network namespace joined by path that the init is born in (the runtime enters it
/// around the clone): with a new user namespace, which could not join it later.
pub fn net_joined_at_clone(ns: &crate::namespaces::Plan) -> Option<&crate::namespaces::Join> {
    if !ns.new_user {
        return None;
    }
    ns.joins
        .iter()
        .find(|j| j.typ == LinuxNamespaceType::Network)
}

/// Set-up from the parent's go-ahead to exec, every privileged call through `sys`.
fn setup(ctx: &InitCtx, chan: &Channel, sys: &dyn Syscall) -> Result<Never> {
    if ctx.ns.new_user {
        chan.expect(ToInit::Go, "waiting for the user namespace's id maps")?;
    }
    let spec = ctx.spec;
    // The parent wrote state.json (id, bundle, annotations) before the clone; in-container
    // hooks get it on stdin with our own pid. Read only when there are such hooks.
    let in_container_hooks = spec.hooks().as_ref().is_some_and(|h| {
        h.create_container().as_ref().is_some_and(|v| !v.is_empty())
            || h.start_container().as_ref().is_some_and(|v| !v.is_empty())
    });
    let record = if in_container_hooks {
        std::fs::read(ctx.state_dir.join("state.json"))
            .ok()
            .and_then(|d| serde_json::from_slice::<crate::state::Record>(&d).ok())
    } else {
        None
    };
    let net_at_clone = net_joined_at_clone(ctx.ns).is_some();
    let joins = ctx.ns.joins.iter();
    for j in joins.filter(|j| !(net_at_clone && j.typ == LinuxNamespaceType::Network)) {
        crate::namespaces::setns_with(sys, j)?;
    }
    let in_userns = ctx.ns.in_userns();
    let cgroupns_new = ctx.ns.late_unshare & libc::CLONE_NEWCGROUP != 0;
    // Network and time namespaces now, while the runtime makes and joins the cgroups.
    let before_join = ctx.ns.late_unshare & !libc::CLONE_NEWCGROUP;
    if before_join != 0 {
        sys.unshare(before_join)
            .sys_ctx(|| "unshare namespaces".into())?;
        // Before the identity change below: it makes the init non-dumpable, and its
        // /proc/self files then belong to the host's root, out of the container root's reach.
        if before_join & libc::CLONE_NEWTIME != 0 {
            write_timens_offsets(sys, spec)?;
        }
    }
    if in_userns {
        // Become root of the user namespace (0 must be mapped).
        sys.setresgid(0)
            .and_then(|()| sys.setresuid(0))
            .sys_ctx(|| "become root in the user namespace (is uid/gid 0 mapped?)".into())?;
    }
    // Under rootless podman the runtime's own user namespace forbids mknod just the same.
    let in_userns = in_userns || ctx.ns.runtime_in_userns;
    let joined = CgroupProgress::new(ctx.cgroup);
    if cgroupns_new
        || ctx
            .ns
            .joins
            .iter()
            .any(|j| j.typ == LinuxNamespaceType::Cgroup)
    {
        // The cgroup namespace root is the cgroup we are in when we unshare it.
        wait_for(
            chan,
            Awaited::CgroupJoined,
            &joined,
            "waiting for the cgroup join",
        )?;
    }
    if cgroupns_new {
        sys.unshare(libc::CLONE_NEWCGROUP)
            .sys_ctx(|| "unshare cgroup namespace".into())?;
    }
    if ctx.ns.new_net {
        sys.loopback_up()?;
    }
    sys.setsid();
    if !ctx.no_new_keyring {
        // Failure (no keyrings) is ignored like runc.
        let name = CString::new(format!("_ses.{}", ctx.id)).unwrap_or_default();
        sys.join_session_keyring(&name);
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        sys.sethostname(h)
            .sys_ctx(|| format!("set hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        sys.setdomainname(d)
            .sys_ctx(|| format!("set domainname {d:?}"))?;
    }

    // Devices get their exact modes.
    sys.umask(0);
    let cgroupns = ctx.ns.late_unshare & libc::CLONE_NEWCGROUP != 0
        || ctx
            .ns
            .joins
            .iter()
            .any(|j| j.typ == LinuxNamespaceType::Cgroup);
    let cgroup_ready = || wait_for(chan, Awaited::CgroupMade, &joined, "waiting for the cgroup");
    let rctx = rootfs::Ctx {
        spec,
        rootfs: ctx.rootfs,
        bundle: ctx.bundle,
        cgroup: ctx.cgroup,
        cgroupns,
        userns: in_userns,
        cgroup_ready: &cgroup_ready,
        sys,
        bind_sources: ctx.bind_sources,
    };
    if ctx.ns.has_mount_ns {
        rootfs::prepare_root(&rctx)?;
        let rootfd = crate::util::open_owned(
            ctx.rootfs,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
        )
        .sys_ctx(|| format!("open rootfs {}", ctx.rootfs.display()))?;
        rootfs::mount_all(&rctx, rootfd.as_raw_fd())?;
        if !devices::dev_is_bind(spec) {
            devices::create_all(sys, rootfd.as_raw_fd(), &devices::list(spec)?, in_userns)?;
            devices::create_symlinks(sys, rootfd.as_raw_fd())?;
        }
    }

    if ctx.runtime_hooks {
        chan.send(FromInit::RuntimeHooks)?;
        wait_for(
            chan,
            Awaited::Continue,
            &joined,
            "waiting for createRuntime hooks",
        )?;
    }
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().as_ref())
    {
        let state = state_json(ctx, record.as_ref(), "created");
        hooks::run_all_in(Some(h), &state, "createContainer", Some(ctx.rootfs))?;
    }

    // Reopening the fifo for writing goes through /proc/self/fd; keep a handle on the
    // runtime's /proc so this works even when the container mounts no /proc of its own.
    // It is close-on-exec and no other process exists in the container yet.
    let host_proc = if ctx.wait_fifo {
        let fd = crate::util::open_owned(
            Path::new("/proc"),
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
        )
        .sys_ctx(|| "open /proc".into())?;
        Some(fd)
    } else {
        None
    };
    let fifo = if ctx.wait_fifo { ctx.fifo } else { None };

    if ctx.ns.has_mount_ns {
        rootfs::pivot(sys, ctx.rootfs, ctx.no_pivot)?;
        rootfs::apply_root_propagation(&rctx)?;
    } else {
        sys.chroot(ctx.rootfs)
            .sys_ctx(|| format!("chroot {}", ctx.rootfs.display()))?;
        sys.chdir(Path::new("/")).sys_ctx(|| "chdir /".into())?;
    }
    rootfs::write_sysctls(sys, spec)?;
    if ctx.ns.has_mount_ns {
        rootfs::finalize(sys, spec)?;
    }

    let Some(process) = spec.process().as_ref() else {
        // No process: the container exists (created) but `start` will refuse it.
        send_ready(chan, &joined)?;
        loop {
            // SAFETY: pause only waits for a signal.
            unsafe { libc::pause() };
        }
    };
    if process.terminal().unwrap_or(false) {
        let sock = ctx.console_socket.ok_or_else(|| {
            Error::Config("process.terminal is true but no --console-socket was given".into())
        })?;
        let (master, slave, name) = console::open_pty()?;
        if let Some(sz) = process.console_size() {
            console::set_size(master.as_raw_fd(), sz.height() as u16, sz.width() as u16);
        }
        console::send_master(sock.as_raw_fd(), master.as_raw_fd(), &name)?;
        drop(master);
        if ctx.ns.has_mount_ns {
            console::bind_console(&name)?;
        }
        console::take_slave(&slave, process.user().uid())?;
    }
    if ctx.ns.has_mount_ns {
        rootfs::remount_dev_readonly(sys, spec)?;
    }
    if let Some(r) = process.rlimits() {
        crate::rlimits::apply(r)?;
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| Error::context(format!("process.oomScoreAdj {adj}"), e))?;
    }
    apply_lsm(
        process.apparmor_profile().as_deref(),
        process.selinux_label().as_deref(),
    )?;

    // Environment and the executable, resolved now so a missing binary fails `create`.
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    env.extend(ctx.extra_env.iter().cloned());
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", identity::home_of(process.user().uid())));
    }
    let args = process.args().clone().unwrap_or_default();
    let exe = resolve_exe(&args[0], &env, process.cwd())?;

    // While CAP_SYS_ADMIN/CAP_SYS_NICE are still held: class RT needs them (youki's order).
    crate::sched::apply_io_priority(process)?;
    if let Some(mp) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.memory_policy().as_ref())
    {
        crate::mempolicy::apply(mp)?;
    }
    let sets = capabilities::Sets::from_spec(process.capabilities().as_ref())?;
    identity::enter_with(sys, process, &sets, in_userns, ctx.seccomp, &mut |f| {
        install_seccomp(f, chan, &joined)
    })?;

    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        crate::sched::apply_personality(p)?;
    }
    crate::util::pass_through_fds(ctx.preserve_fds, &[chan.raw()]);

    send_ready(chan, &joined)?;
    READY_SENT.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(fifo) = fifo {
        let p = format!("self/fd/{}", fifo.as_raw_fd());
        let cp = CString::new(p).unwrap_or_default();
        let dirfd = host_proc
            .as_ref()
            .map(|f| f.as_raw_fd())
            .unwrap_or(libc::AT_FDCWD);
        // Blocks until `start` opens the fifo for reading.
        let fd = loop {
            // SAFETY: cp is a valid C string, dirfd an open directory.
            let fd = unsafe { libc::openat(dirfd, cp.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
            if fd >= 0 || nix::Error::last() != nix::Error::EINTR {
                break fd;
            }
        };
        if fd < 0 {
            return Err(Error::sys("open exec fifo", nix::Error::last()));
        }
        // `start` is here now: run startContainer hooks, then tell it how they went
        // ("0", or "1" and the error), so a failing hook fails `start`.
        let res = match spec
            .hooks()
            .as_ref()
            .and_then(|h| h.start_container().as_ref())
        {
            Some(h) => hooks::run_all_with_env(
                Some(h),
                &state_json(ctx, record.as_ref(), "created"),
                "startContainer",
                process.env().as_deref().unwrap_or_default(),
            ),
            None => Ok(()),
        };
        let msg = match &res {
            Ok(()) => b"0".to_vec(),
            Err(e) => format!("1{e}").into_bytes(),
        };
        crate::util::write_all_fd(fd, &msg).map_err(|e| Error::context("write exec fifo", e))?;
        // SAFETY: closing our own fd.
        unsafe { libc::close(fd) };
        drop(host_proc);
        res?;
    } else if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        let state = state_json(ctx, record.as_ref(), "created");
        hooks::run_all_with_env(
            Some(h),
            &state,
            "startContainer",
            process.env().as_deref().unwrap_or_default(),
        )?;
    }
    // Last: a real-time or deadline policy must not slow the set-up above.
    crate::sched::apply_scheduler(process)?;
    exec(sys, &exe, &args, &env)
}

fn state_json(ctx: &InitCtx, rec: Option<&crate::state::Record>, status: &str) -> Vec<u8> {
    let v = match rec {
        Some(r) => {
            let mut v = r.oci_state(crate::state::Status::Created);
            v["status"] = status.into();
            // runtime.md: for hooks executed in the container namespace, the pid is
            // the one seen by the container (1 in its own pid namespace).
            v["pid"] = std::process::id().into();
            v
        }
        None => {
            serde_json::json!({"ociVersion": ctx.spec.version(), "id": ctx.id, "status": status,
            "bundle": ctx.bundle, "pid": 0})
        }
    };
    v.to_string().into_bytes()
}

fn install_seccomp(
    f: &boxrun_seccomp::Filter,
    chan: &Channel,
    joined: &CgroupProgress,
) -> Result<()> {
    if let Some(listener) = f.install()? {
        chan.send(FromInit::SeccompFd { listener })?;
        wait_for(
            chan,
            Awaited::Continue,
            joined,
            "waiting for the seccomp listener hand-over",
        )?;
    }
    Ok(())
}

/// How far the runtime got with the container's cgroups, as told by CgroupMade and
/// CgroupJoined (either may arrive while the init waits for something else).
struct CgroupProgress<'a> {
    /// The container's cgroups, to name them when moving in fails.
    cgroup: Option<&'a boxrun_cgroups::Cgroup>,
    made: std::cell::Cell<bool>,
    joined: std::cell::Cell<bool>,
}

impl<'a> CgroupProgress<'a> {
    fn new(cgroup: Option<&'a boxrun_cgroups::Cgroup>) -> Self {
        CgroupProgress {
            cgroup,
            made: Default::default(),
            joined: Default::default(),
        }
    }

    /// Record a cgroup message, or give any other message back. CgroupMade with the v1
    /// `tasks` files: the init moves itself in at once (it is single-threaded).
    fn note(&self, msg: ToInit) -> Result<Option<ToInit>> {
        match msg {
            ToInit::CgroupMade { tasks } => {
                if !tasks.is_empty() {
                    let cg = self.cgroup.ok_or_else(|| {
                        Error::Init(
                            "cgroup tasks files sent for a container without cgroups".into(),
                        )
                    })?;
                    cg.join_v1_self(&tasks)
                        .map_err(|e| Error::context("move into cgroup", e))?;
                }
                self.made.set(true)
            }
            ToInit::CgroupJoined => {
                self.made.set(true);
                self.joined.set(true);
            }
            other => return Ok(Some(other)),
        }
        Ok(None)
    }

    fn reached(&self, want: Awaited) -> bool {
        match want {
            Awaited::CgroupMade => self.made.get(),
            Awaited::CgroupJoined => self.joined.get(),
            Awaited::Continue => false,
        }
    }
}

/// What the init waits for from the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaited {
    /// The cgroup directories exist ([`ToInit::CgroupMade`] or later).
    CgroupMade,
    /// The init is in its cgroups ([`ToInit::CgroupJoined`]).
    CgroupJoined,
    /// [`ToInit::Continue`].
    Continue,
}

/// Tell the runtime set-up is complete, once the init is in its cgroups (it must not
/// run the user's program outside them).
fn send_ready(chan: &Channel, cg: &CgroupProgress) -> Result<()> {
    wait_for(
        chan,
        Awaited::CgroupJoined,
        cg,
        "waiting for the cgroup join",
    )?;
    chan.send(FromInit::Ready)
}

/// Wait for `want`; cgroup messages that arrive first are noted in `cg`.
fn wait_for(chan: &Channel, want: Awaited, cg: &CgroupProgress, what: &str) -> Result<()> {
    while !cg.reached(want) {
        let Some(msg) = chan.recv()? else {
            return Err(Error::Init(format!("{what}: runtime exited")));
        };
        match cg.note(msg)? {
            None => {}
            Some(ToInit::Continue) if want == Awaited::Continue => return Ok(()),
            Some(ToInit::Abort) => return Err(Error::Init("aborted by the runtime".into())),
            Some(m) => return Err(Error::Init(format!("{what}: unexpected message {m:?}"))),
        }
    }
    Ok(())
}

fn apply_lsm(apparmor: Option<&str>, selinux: Option<&str>) -> Result<()> {
    if let Some(p) = apparmor.filter(|p| !p.is_empty()) {
        if !Path::new("/sys/kernel/security/apparmor").exists()
            && !Path::new("/proc/self/attr/apparmor").exists()
        {
            return Err(Error::Config(format!(
                "process.apparmorProfile {p:?} requested but AppArmor is not enabled on this host"
            )));
        }
        let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
            "/proc/self/attr/apparmor/exec"
        } else {
            "/proc/self/attr/exec"
        };
        std::fs::write(attr, format!("exec {p}"))
            .map_err(|e| Error::context(format!("apply AppArmor profile {p:?}"), e))?;
    }
    if let Some(l) = selinux.filter(|l| !l.is_empty()) {
        let enabled = std::fs::read_to_string("/proc/self/attr/current")
            .map(|s| !s.trim().is_empty() && s.trim() != "unconfined")
            .unwrap_or(false)
            && Path::new("/sys/fs/selinux").exists();
        if !enabled {
            return Err(Error::Config(format!(
                "process.selinuxLabel {l:?} requested but SELinux is not enabled on this host"
            )));
        }
        std::fs::write("/proc/self/attr/exec", l)
            .map_err(|e| Error::context(format!("apply SELinux label {l:?}"), e))?;
    }
    Ok(())
}

/// Find the executable like execvp, with the PATH of the container's environment.
pub fn resolve_exe(arg0: &str, env: &[String], cwd: &Path) -> Result<PathBuf> {
    let is_exec = |p: &Path| {
        let c = CString::new(p.as_os_str().as_bytes()).unwrap_or_default();
        // SAFETY: c is a valid C string.
        let ok = unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0;
        ok && std::fs::metadata(p).map(|m| m.is_file()).unwrap_or(false)
    };
    if arg0.contains('/') {
        let p = if Path::new(arg0).is_absolute() {
            PathBuf::from(arg0)
        } else {
            cwd.join(arg0)
        };
        if is_exec(&p) {
            return Ok(PathBuf::from(arg0));
        }
        // runc's (Go's exec.LookPath) wording: engines map "no such file or directory" to
        // exit status 127 and "permission denied" to 126.
        if let Err(e) = std::fs::metadata(&p) {
            let why = e.raw_os_error().map_or_else(
                || e.to_string(),
                |n| nix::errno::Errno::from_raw(n).desc().to_lowercase(),
            );
            return Err(Error::invalid(
                format!("exec: {arg0:?}: stat {arg0}: {why}"),
                e,
            ));
        }
        return Err(Error::Other(format!("exec: {arg0:?}: permission denied")));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(arg0);
        if is_exec(&p) {
            return Ok(p);
        }
    }
    Err(Error::Other(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

fn exec(sys: &dyn Syscall, exe: &Path, args: &[String], env: &[String]) -> Result<Never> {
    let cexe = CString::new(exe.as_os_str().as_bytes())
        .map_err(|e| Error::invalid_config("exe path has NUL", e))?;
    let cargs: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_str()).unwrap_or_default())
        .collect();
    let cenv: Vec<CString> = env
        .iter()
        .map(|a| CString::new(a.as_str()).unwrap_or_default())
        .collect();
    let e = sys.execve(&cexe, &cargs, &cenv);
    Err(Error::sys(format!("exec {}", exe.display()), e))
}

/// Exec used by `boxrun exec` children (shares the resolution and error wording).
pub fn exec_process(exe: &Path, args: &[String], env: &[String]) -> Result<()> {
    match exec(&Linux, exe, args, env)? {}
}

#[cfg(test)]
mod tests;
