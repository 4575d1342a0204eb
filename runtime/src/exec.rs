//! `boxrun exec`: run a new process inside a running container. The process joins the
//! init's namespaces and cgroup and gets its own capabilities, rlimits, user, seccomp
//! profile and LSM label. The runtime is not re-executed: it forks once, and the child
//! makes itself non-dumpable before it enters the container so that no container
//! process can reach the host binary through /proc/PID/exe (CVE-2019-5736 class).

use crate::error::{Error, Result};
use crate::state::Status;
use crate::sync::{self, Tag};
use oci_spec::runtime::{Process, Spec};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Options of `exec`.
pub struct ExecOpts {
    /// Runtime root.
    pub root: PathBuf,
    /// Container id.
    pub id: String,
    /// The process to run.
    pub process: Process,
    /// Return once the process is started (its pid goes to `pid_file`).
    pub detach: bool,
    /// `--pid-file`.
    pub pid_file: Option<PathBuf>,
    /// `--console-socket`.
    pub console_socket: Option<PathBuf>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// `--ignore-paused`.
    pub ignore_paused: bool,
}

const NS_ORDER: [&str; 8] = ["user", "ipc", "uts", "net", "pid", "time", "cgroup", "mnt"];

fn ns_flag(name: &str) -> libc::c_int {
    match name {
        "user" => libc::CLONE_NEWUSER,
        "ipc" => libc::CLONE_NEWIPC,
        "uts" => libc::CLONE_NEWUTS,
        "net" => libc::CLONE_NEWNET,
        "pid" => libc::CLONE_NEWPID,
        "time" => 0x80,
        "cgroup" => libc::CLONE_NEWCGROUP,
        _ => libc::CLONE_NEWNS,
    }
}

/// Open the init's namespaces that differ from ours, in join order.
fn open_namespaces(pid: i32) -> Result<Vec<(&'static str, OwnedFd)>> {
    let mut out = Vec::new();
    for name in NS_ORDER {
        let theirs = format!("/proc/{pid}/ns/{name}");
        let (Ok(a), Ok(b)) = (
            std::fs::metadata(&theirs),
            std::fs::metadata(format!("/proc/self/ns/{name}")),
        ) else {
            continue;
        };
        if a.ino() == b.ino() && a.dev() == b.dev() {
            continue;
        }
        let fd = nix::fcntl::open(
            theirs.as_str(),
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::sys(format!("open {theirs}"), e))?;
        // SAFETY: fresh fd.
        out.push((name, unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    Ok(out)
}

/// Run the process; returns its exit code (0 when detached).
pub fn exec(opts: &ExecOpts) -> Result<i32> {
    let (dir, rec, status) = crate::container::load(&opts.root, &opts.id)?;
    match status {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        s => {
            return Err(Error::BadState {
                id: opts.id.clone(),
                status: s.as_str().into(),
                msg: "exec needs a running container".into(),
            })
        }
    }
    let spec: Spec = crate::container::load_saved_spec(&dir)?;
    let p = &opts.process;
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(Error::Config("exec: no command given".into()));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::Config(format!(
            "exec: cwd {} must be absolute",
            p.cwd().display()
        )));
    }
    let sets = crate::capabilities::Sets::from_spec(p.capabilities().as_ref())?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(boxrun_seccomp::compile_cached(
            s,
            &opts.root.join("seccomp-cache"),
        )?),
        None => None,
    };
    let terminal = p.terminal().unwrap_or(false);
    // Foreground exec with a terminal and no console socket proxies the pty itself,
    // as runc does.
    let mut proxy_sock = None;
    let console = match (&opts.console_socket, terminal) {
        (Some(path), true) => Some(crate::console::connect(path)?),
        (None, true) if !opts.detach => {
            let (a, b) =
                std::os::unix::net::UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
            proxy_sock = Some(a);
            Some(OwnedFd::from(b))
        }
        (None, true) => {
            return Err(Error::Other(
                "exec --tty --detach needs --console-socket".into(),
            ))
        }
        _ => None,
    };
    let nss = open_namespaces(rec.pid)?;
    let (parent, child) = sync::pair()?;
    // Namespaces that apply to children only are entered here, before fork.
    for (name, fd) in &nss {
        if *name == "pid" || *name == "time" {
            // SAFETY: setns on an open namespace fd.
            if unsafe { libc::setns(fd.as_raw_fd(), ns_flag(name)) } != 0 {
                return Err(Error::sys(
                    format!("join {name} namespace of container {}", opts.id),
                    nix::Error::last(),
                ));
            }
        }
    }
    // SAFETY: single-threaded; the child runs set-up code and execs.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::sys("fork", nix::Error::last()));
    }
    if pid == 0 {
        drop(parent);
        let err = match child_setup(
            &nss,
            p,
            &sets,
            seccomp.as_ref(),
            console.as_ref(),
            opts.preserve_fds,
            &child,
            &args,
        ) {
            Ok(()) => Error::Other("exec returned".into()),
            Err(e) => e,
        };
        let _ = child.send(Tag::Error, err.to_string().as_bytes());
        // SAFETY: leave without unwinding.
        unsafe { libc::_exit(255) };
    }
    drop(child);
    crate::failpoint::hit("exec:forked");
    let guard = KillOnDrop(pid);
    if let Some(cg) = &rec.cgroup {
        cg.add_process(pid)?;
    }
    let fwd = forwarded();
    if !opts.detach {
        // SAFETY: blocking signals to forward them.
        unsafe { libc::sigprocmask(libc::SIG_BLOCK, &fwd, std::ptr::null_mut()) };
    }
    parent.send(Tag::Go, &[])?;
    loop {
        match parent.recv()? {
            Some((Tag::SeccompFd, _, Some(_fd))) => {
                // Listener hand-over for exec'd processes follows the init's listener.
                parent.send(Tag::Continue, &[])?;
            }
            Some((Tag::Error, msg, _)) => {
                return Err(Error::Init(String::from_utf8_lossy(&msg).into_owned()))
            }
            Some((Tag::Ready, _, _)) => continue,
            None => break, // exec closed the channel (close-on-exec)
            Some((t, _, _)) => return Err(Error::Init(format!("unexpected message {t:?}"))),
        }
    }
    std::mem::forget(guard);
    if let Some(pf) = &opts.pid_file {
        crate::container::write_pid_file(pf, pid)?;
    }
    if opts.detach {
        return Ok(0);
    }
    if let Some(sock) = proxy_sock {
        let master = crate::console::recv_master(sock.as_raw_fd())?;
        return Ok(crate::console::proxy_until_exit(&master, pid, &fwd));
    }
    Ok(wait_forwarding(pid, &fwd))
}

struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: killing and reaping our own child after a failure.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            let mut st = 0;
            libc::waitpid(self.0, &mut st, 0);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn child_setup(
    nss: &[(&str, OwnedFd)],
    p: &Process,
    sets: &crate::capabilities::Sets,
    seccomp: Option<&boxrun_seccomp::Filter>,
    console: Option<&OwnedFd>,
    preserve_fds: u32,
    chan: &sync::Channel,
    args: &[String],
) -> Result<()> {
    // SAFETY: make /proc/self/exe unreachable for container processes (CVE-2019-5736).
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if let Some(cpus) = crate::sched::initial_affinity(p) {
        crate::sched::set_affinity(&cpus)?;
    }
    chan.expect(Tag::Go, "waiting for the runtime")?;
    if let Some(cpus) = crate::sched::final_affinity(p) {
        crate::sched::set_affinity(&cpus)?;
    }
    let mut in_userns = false;
    for (name, fd) in nss {
        if *name == "pid" || *name == "time" {
            continue;
        }
        // SAFETY: setns on an open namespace fd.
        if unsafe { libc::setns(fd.as_raw_fd(), ns_flag(name)) } != 0 {
            return Err(Error::sys(
                format!("join {name} namespace"),
                nix::Error::last(),
            ));
        }
        if *name == "user" {
            in_userns = true;
            // SAFETY: integer arguments.
            unsafe {
                libc::setresgid(0, 0, 0);
                libc::setresuid(0, 0, 0);
            }
        }
    }
    // SAFETY: reset the signal mask inherited from the runtime.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::setsid();
    }
    if let Some(sock) = console {
        let (master, slave, name) = crate::console::open_pty()?;
        if let Some(sz) = p.console_size() {
            crate::console::set_size(master.as_raw_fd(), sz.height() as u16, sz.width() as u16);
        }
        crate::console::send_master(sock.as_raw_fd(), master.as_raw_fd(), &name)?;
        drop(master);
        crate::console::take_slave(&slave)?;
    }
    if let Some(r) = p.rlimits() {
        crate::rlimits::apply(r)?;
    }
    if let Some(adj) = p.oom_score_adj() {
        let _ = std::fs::write("/proc/self/oom_score_adj", adj.to_string());
    }
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", crate::identity::home_of(p.user().uid())));
    }
    let exe = crate::init::resolve_exe(&args[0], &env, p.cwd())?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    let last = crate::capabilities::last_cap();
    let install = |f: &boxrun_seccomp::Filter| -> Result<()> {
        if let Some(l) = f.install()? {
            chan.send_fd(Tag::SeccompFd, l.as_raw_fd())?;
            chan.expect(Tag::Continue, "seccomp listener hand-over")?;
        }
        Ok(())
    };
    nix::unistd::chdir(p.cwd()).map_err(|e| Error::sys(format!("cwd {}", p.cwd().display()), e))?;
    let cwd = nix::unistd::getcwd().map_err(|e| Error::sys("getcwd", e))?;
    if cwd
        .as_os_str()
        .to_string_lossy()
        .starts_with("(unreachable)")
    {
        return Err(Error::Other("exec: cwd is outside the container".into()));
    }
    if let (Some(f), false) = (seccomp, nnp) {
        install(f)?;
    }
    crate::capabilities::drop_bounding(sets, last)?;
    // SAFETY: prctl with integers.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let setgroups_ok = !in_userns
        || std::fs::read_to_string("/proc/self/setgroups")
            .map(|s| s.trim() != "deny")
            .unwrap_or(true);
    crate::identity::switch(p.user(), setgroups_ok)?;
    // SAFETY: prctl with integers.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    nix::unistd::chdir(p.cwd()).map_err(|e| Error::sys(format!("cwd {}", p.cwd().display()), e))?;
    crate::capabilities::apply(sets, last)?;
    // SAFETY: umask with an integer.
    unsafe { libc::umask(p.user().umask().unwrap_or(0o022) as libc::mode_t) };
    if nnp {
        // SAFETY: prctl with integers.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Error::sys("set no_new_privs", nix::Error::last()));
        }
        if let Some(f) = seccomp {
            install(f)?;
        }
    }
    crate::sched::apply_io_priority(p)?;
    crate::sched::apply_scheduler(p)?;
    crate::util::cloexec_from(3 + preserve_fds);
    for fd in 3..3 + preserve_fds as i32 {
        if fd != chan.raw() {
            // SAFETY: clearing FD_CLOEXEC on a passed-through fd.
            unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        }
    }
    crate::init::exec_process(&exe, args, &env)
}

fn forwarded() -> libc::sigset_t {
    // SAFETY: building a signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for s in [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGTRAP,
        ] {
            libc::sigdelset(&mut set, s);
        }
        set
    }
}

fn wait_forwarding(pid: i32, set: &libc::sigset_t) -> i32 {
    loop {
        let mut st = 0;
        // SAFETY: reaping our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            return if libc::WIFEXITED(st) {
                libc::WEXITSTATUS(st)
            } else {
                128 + libc::WTERMSIG(st)
            };
        }
        if r < 0 && nix::Error::last() != nix::Error::EINTR {
            return 255;
        }
        // SAFETY: zeroed siginfo is valid storage.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waiting for a blocked signal.
        let sig = unsafe { libc::sigwaitinfo(set, &mut info) };
        if sig > 0 && sig != libc::SIGCHLD {
            // SAFETY: forwarding to our child.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

/// Build the exec process from the container's spec and the command-line flags.
#[allow(clippy::too_many_arguments)]
pub fn process_from_flags(
    spec: &Spec,
    args: Vec<String>,
    env: &[String],
    cwd: Option<&Path>,
    user: Option<&str>,
    additional_gids: &[u32],
    caps: &[String],
    tty: bool,
    no_new_privs: bool,
    apparmor: Option<&str>,
) -> Result<Process> {
    let mut v = serde_json::to_value(
        spec.process()
            .as_ref()
            .ok_or_else(|| Error::Config("container has no process".into()))?,
    )
    .map_err(|e| Error::Other(e.to_string()))?;
    v["args"] = serde_json::json!(args);
    v["terminal"] = serde_json::json!(tty);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("consoleSize");
    }
    let mut envs: Vec<String> = serde_json::from_value(v["env"].clone()).unwrap_or_default();
    for e in env {
        let key = e.split('=').next().unwrap_or("");
        envs.retain(|x| x.split('=').next() != Some(key));
        envs.push(e.clone());
    }
    v["env"] = serde_json::json!(envs);
    if let Some(c) = cwd {
        v["cwd"] = serde_json::json!(c);
    }
    if let Some(u) = user {
        let mut it = u.splitn(2, ':');
        let uid: u32 = it
            .next()
            .unwrap_or("")
            .parse()
            .map_err(|_| Error::Other(format!("--user {u:?}: use UID[:GID]")))?;
        let gid: u32 = match it.next() {
            Some(g) => g
                .parse()
                .map_err(|_| Error::Other(format!("--user {u:?}: use UID[:GID]")))?,
            None => 0,
        };
        v["user"]["uid"] = uid.into();
        v["user"]["gid"] = gid.into();
    }
    if !additional_gids.is_empty() {
        v["user"]["additionalGids"] = serde_json::json!(additional_gids);
    }
    if !caps.is_empty() {
        for set in ["bounding", "effective", "permitted"] {
            let mut cur: Vec<String> =
                serde_json::from_value(v["capabilities"][set].clone()).unwrap_or_default();
            for c in caps {
                if !cur.contains(c) {
                    cur.push(c.clone());
                }
            }
            v["capabilities"][set] = serde_json::json!(cur);
        }
    }
    if no_new_privs {
        v["noNewPrivileges"] = true.into();
    }
    if let Some(a) = apparmor {
        v["apparmorProfile"] = a.into();
    }
    serde_json::from_value(v).map_err(|e| Error::Config(format!("exec process: {e}")))
}
