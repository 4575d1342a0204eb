//! `boxrun exec`: run a new process inside a running container. The process joins the
//! init's namespaces and cgroup and gets its own capabilities, rlimits, user, seccomp
//! profile and LSM label. The runtime is not re-executed: it forks once, and the child
//! makes itself non-dumpable before it enters the container so that no container
//! process can reach the host binary through /proc/PID/exe (CVE-2019-5736 class).

use crate::error::{Error, Result};
use crate::namespaces::{self, Join};
use crate::state::Status;
use crate::sync::{self, FromInit, ToInit};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
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
    /// `--cgroup`: sub-cgroups to join ([`crate::sub_cgroup`]).
    pub cgroup: Vec<String>,
}

/// Join order: the network namespace first (one the host made, as boxctl does, is owned
/// by the host's user namespace: joining it from inside the container's would be refused),
/// then the user namespace (it owns the others), the mount namespace last.
const NS_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Network,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Mount,
];

/// Namespaces whose setns only affects children: entered by the runtime before fork.
fn for_children(t: LinuxNamespaceType) -> bool {
    matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time)
}

/// Open the init's namespaces that differ from ours, in join order.
fn open_namespaces(pid: i32) -> Result<Vec<Join>> {
    let mut out = Vec::new();
    for typ in NS_ORDER {
        let name = namespaces::proc_name(typ);
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
        let fd = std::fs::File::open(&theirs).map_err(|e| Error::io(&theirs, e))?;
        out.push(Join {
            typ,
            fd: OwnedFd::from(fd),
        });
    }
    Ok(out)
}

/// Run the process; returns its exit code (0 when detached).
pub fn exec(opts: &ExecOpts) -> Result<i32> {
    let (dir, rec, status) = crate::container::load(&opts.root, &opts.id)?;
    match status {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            return Err(Error::BadState {
                id: opts.id.clone(),
                status: "paused".into(),
                msg: "cannot exec in a paused container (use --ignore-paused to override)".into(),
            })
        }
        s => {
            return Err(Error::BadState {
                id: opts.id.clone(),
                status: s.as_str().into(),
                msg: "exec needs a running container".into(),
            })
        }
    }
    let cgroup = match &rec.cgroup {
        Some(cg) => Some(crate::sub_cgroup::resolve(cg, &opts.cgroup)?),
        None if !opts.cgroup.is_empty() => {
            return Err(Error::Other(
                "exec --cgroup: the container has no cgroup".into(),
            ))
        }
        None => None,
    };
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
    // The process is born in the container's v2 cgroup and moves itself into the v1
    // ones (see Cgroup::join_v1_self): no waiting for an RCU grace period.
    let (into, tasks) = match &cgroup {
        Some(cg) => (cg.clone_into_fd(), cg.v1_tasks_files()?),
        None => (None, Vec::new()),
    };
    // Namespaces that apply to children only are entered here, before fork. Rootless,
    // the container's user namespace first: only inside it may we enter its pid namespace.
    let user_first =
        !nix::unistd::geteuid().is_root() && nss.iter().any(|j| j.typ == LinuxNamespaceType::User);
    for j in nss
        .iter()
        .filter(|j| for_children(j.typ) || (user_first && j.typ == LinuxNamespaceType::User))
    {
        namespaces::setns(j)?;
    }
    // SAFETY: single-threaded; the child runs set-up code and execs.
    let forked = unsafe { crate::fork::fork(0, into.as_ref(), "exec process") }?;
    let crate::fork::Forked::Parent { pid, in_cgroup } = forked else {
        drop(parent);
        let joined = match &cgroup {
            Some(cg) => cg
                .join_v1_self(&tasks)
                .map_err(|e| Error::context("move into cgroup", e)),
            None => Ok(()),
        };
        drop(tasks);
        let err = match joined.and_then(|()| {
            child_setup(
                &nss,
                user_first,
                p,
                spec.linux().as_ref().and_then(|l| l.personality().as_ref()),
                spec.linux()
                    .as_ref()
                    .and_then(|l| l.memory_policy().as_ref()),
                &sets,
                seccomp.as_ref(),
                console.as_ref(),
                opts.preserve_fds,
                &child,
                &args,
            )
        }) {
            Ok(()) => Error::Other("exec returned".into()),
            Err(e) => e,
        };
        let _ = child.send(FromInit::Error(err.to_string()));
        // SAFETY: leave without unwinding.
        unsafe { libc::_exit(255) };
    };
    drop(child);
    drop(tasks);
    crate::failpoint::hit("exec:forked");
    let guard = KillOnDrop(pid);
    if let (Some(cg), false) = (&cgroup, in_cgroup) {
        cg.add_process_v2(pid)?;
    }
    let fwd = crate::signals::forwardable();
    if !opts.detach {
        // SAFETY: blocking signals to forward them.
        unsafe { libc::sigprocmask(libc::SIG_BLOCK, &fwd, std::ptr::null_mut()) };
    }
    parent.send(ToInit::Go)?;
    loop {
        match parent.recv()? {
            Some(FromInit::SeccompFd { listener }) => {
                // To the listenerPath agent, as the init's (runc: the exec'd pid).
                crate::container::create::handshake::hand_over_seccomp(
                    &spec, &rec, status, pid, &listener,
                )?;
                drop(listener);
                parent.send(ToInit::Continue)?;
            }
            Some(FromInit::Error(msg)) => return Err(Error::Init(msg)),
            Some(FromInit::Ready) => continue,
            None => break, // exec closed the channel (close-on-exec)
            Some(m) => return Err(Error::Init(format!("unexpected message {m:?}"))),
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
    Ok(crate::signals::wait_forwarding(pid, &fwd))
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
    nss: &[Join],
    user_joined: bool,
    p: &Process,
    personality: Option<&oci_spec::runtime::LinuxPersonality>,
    memory_policy: Option<&oci_spec::runtime::LinuxMemoryPolicy>,
    sets: &crate::capabilities::Sets,
    seccomp: Option<&boxrun_seccomp::Filter>,
    console: Option<&OwnedFd>,
    preserve_fds: u32,
    chan: &sync::InitEnd,
    args: &[String],
) -> Result<()> {
    // SAFETY: make /proc/self/exe unreachable for container processes (CVE-2019-5736).
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if let Some(cpus) = crate::sched::initial_affinity(p) {
        crate::sched::set_affinity(&cpus)?;
    }
    chan.expect(ToInit::Go, "waiting for the runtime")?;
    if let Some(cpus) = crate::sched::final_affinity(p) {
        crate::sched::set_affinity(&cpus)?;
    }
    let mut in_userns = false;
    for j in nss.iter().filter(|j| !for_children(j.typ)) {
        if j.typ == LinuxNamespaceType::User {
            // The runtime joined it before fork when rootless.
            if !user_joined {
                namespaces::setns(j)?;
            }
            in_userns = true;
            // SAFETY: integer arguments.
            unsafe {
                libc::setresgid(0, 0, 0);
                libc::setresuid(0, 0, 0);
            }
            continue;
        }
        namespaces::setns(j)?;
    }
    // The signal mask and dispositions the runtime set must not reach the process.
    crate::signals::reset_for_exec();
    // SAFETY: setsid takes no arguments.
    unsafe { libc::setsid() };
    if let Some(sock) = console {
        let (master, slave, name) = crate::console::open_pty()?;
        if let Some(sz) = p.console_size() {
            crate::console::set_size(master.as_raw_fd(), sz.height() as u16, sz.width() as u16);
        }
        crate::console::send_master(sock.as_raw_fd(), master.as_raw_fd(), &name)?;
        drop(master);
        crate::console::take_slave(&slave, p.user().uid())?;
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
    let mut install = |f: &boxrun_seccomp::Filter| -> Result<()> {
        if let Some(l) = f.install()? {
            chan.send(FromInit::SeccompFd { listener: l })?;
            chan.expect(ToInit::Continue, "seccomp listener hand-over")?;
        }
        Ok(())
    };
    // While CAP_SYS_ADMIN/CAP_SYS_NICE are still held: class RT needs them.
    crate::sched::apply_io_priority(p)?;
    if let Some(mp) = memory_policy {
        crate::mempolicy::apply(mp)?;
    }
    crate::identity::enter(p, sets, in_userns, seccomp, &mut install)?;
    // The container's personality holds for every process in it, as with runc and youki.
    if let Some(pers) = personality {
        crate::sched::apply_personality(pers)?;
    }
    crate::sched::apply_scheduler(p)?;
    crate::util::pass_through_fds(preserve_fds, &[chan.raw()]);
    crate::init::exec_process(&exe, args, &env)
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
    .map_err(|e| Error::json("encode process", e))?;
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
            .map_err(|e| Error::invalid(format!("--user {u:?}: use UID[:GID]"), e))?;
        let gid: u32 = match it.next() {
            Some(g) => g
                .parse()
                .map_err(|e| Error::invalid(format!("--user {u:?}: use UID[:GID]"), e))?,
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
    serde_json::from_value(v).map_err(|e| Error::field("exec process", e))
}
