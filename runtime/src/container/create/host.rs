//! Create, phase 2: prepare the host. The state directory (with the saved
//! `config.json` and a `creating` record), the cgroups (all of them on a pure v2 host,
//! only the v2 one on a hybrid host: the v1 ones are made during the handshake), the
//! exec fifo and the console socket. [`CreateGuard`] undoes all of it, and kills the
//! init once there is one, unless the create completes.

use super::validate::Validated;
use super::CreateOpts;
use crate::error::{Error, Result};
use crate::hooks;
use crate::logging;
use crate::procfs;
use crate::state::{Record, StateDir, Status};
use oci_spec::runtime::Spec;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// What `create` made on the host. Fields drop in order: the guard undoes a failed
/// create while the state directory's lock is still held.
pub struct Host {
    /// Undoes everything below (and kills the init) unless disarmed.
    pub guard: CreateGuard,
    /// The state directory (locked).
    pub dir: StateDir,
    /// The record saved in it.
    pub record: Record,
    /// The container's cgroups, made (v2 only, on a hybrid host); none when rootless
    /// without a usable cgroup.
    pub cgroup: Option<boxrun_cgroups::Cgroup>,
    /// The exec fifo, opened `O_PATH` for the init to reopen (created containers).
    pub fifo: Option<OwnedFd>,
    /// The console socket (or our internal socketpair's other end) for the init.
    pub console: Option<OwnedFd>,
    /// Our end of the internal console socketpair (foreground `run` with a terminal).
    pub console_proxy: Option<std::os::unix::net::UnixStream>,
}

/// Undo a half-made create: kill the init, remove cgroups and the state directory.
pub struct CreateGuard {
    dir: PathBuf,
    /// The init's pid, once cloned.
    pub pid: i32,
    /// The cgroups made so far.
    pub cgroup: Option<boxrun_cgroups::Cgroup>,
    armed: bool,
    /// The container's cgroup existed before: its other members are not ours to kill.
    pub shared_cgroup: bool,
    /// A create-time hook failed: the lifecycle continues at destroy, poststop included.
    poststop: Option<(Vec<oci_spec::runtime::Hook>, Vec<u8>)>,
}

impl CreateGuard {
    fn new(dir: PathBuf) -> Self {
        CreateGuard {
            dir,
            pid: 0,
            cgroup: None,
            armed: true,
            shared_cgroup: false,
            poststop: None,
        }
    }

    /// A create-time hook failed: run the poststop hooks too when undoing.
    pub fn hook_failed(&mut self, spec: &Spec, record: &Record) {
        let hooks = spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().clone())
            .unwrap_or_default();
        let state = record.oci_state(Status::Stopped).to_string().into_bytes();
        self.poststop = Some((hooks, state));
    }

    /// The create completed: keep everything.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for CreateGuard {
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
            if !self.shared_cgroup {
                let _ = cg.kill_all(libc::SIGKILL);
            }
            if let Err(e) = cg.destroy() {
                logging::warn(&format!("remove cgroup after failed create: {e}"));
            }
        }
        if let Some((hooks, state)) = &self.poststop {
            hooks::run_all_warn(Some(hooks), state, "poststop");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Make the state directory, the planned cgroups, the exec fifo and the console
/// connection of a validated create.
pub fn prepare(
    opts: &CreateOpts,
    v: &Validated,
    cg: Option<boxrun_cgroups::Cgroup>,
) -> Result<Host> {
    let dir = StateDir::create(&opts.root, &opts.id)?;
    let mut guard = CreateGuard::new(dir.path.clone());
    crate::failpoint::hit("create:state-dir");
    std::fs::write(dir.config_path(), &v.raw).map_err(|e| Error::io(dir.config_path(), e))?;
    let me = std::process::id() as i32;
    let mut record = Record {
        oci_version: v.spec.version().clone(),
        id: opts.id.clone(),
        status: Status::Creating,
        pid: 0,
        pid_start_time: 0,
        bundle: v.bundle.clone(),
        rootfs: v.rootfs.clone(),
        created: crate::util::rfc3339_now(),
        owner: String::new(),
        annotations: v.spec.annotations().clone().unwrap_or_default(),
        cgroup: None,
        creator: (me, procfs::stat(me).map(|s| s.start_time).unwrap_or(0)),
        own_pidns: v.ns.new_pid,
    };
    // On record before any mkdir (all hierarchies, the v1 ones made later included):
    // `delete` of a create killed from here on removes whatever of them exists. Atomic,
    // not fsync'd: cgroups do not outlive a power loss, the record only has to outlive
    // this process (an fsync costs ~1.3 ms where the state root is not a tmpfs).
    // Saved again after the mkdirs only when they made more than the reservation
    // says: the next save (with the init's pid) records them as made anyway.
    let cg = match cg {
        Some(mut cg) => {
            cg.reserve();
            record.cgroup = Some(cg.clone());
            dir.save(&record)?;
            let made = make_cgroup(cg, v, &mut guard)?;
            let on_record = record.cgroup.as_ref().is_some_and(|r| made.recorded_in(r));
            record.cgroup = Some(made.clone());
            if !on_record {
                dir.save(&record)?;
            }
            Some(made)
        }
        None => {
            dir.save(&record)?;
            None
        }
    };
    crate::failpoint::hit("create:cgroup");
    let fifo = if v.wait_fifo {
        Some(make_exec_fifo(&dir, &v.spec)?)
    } else {
        None
    };
    let (console, console_proxy) = connect_console(opts, v)?;
    Ok(Host {
        guard,
        dir,
        record,
        cgroup: cg,
        fifo,
        console,
        console_proxy,
    })
}

/// Make the planned cgroups. Pure v2: the directories are made now so that the child is
/// born in its cgroup. Hybrid: only the v2 directory is made now (the child is born there
/// too); the v1 ones are made after the clone, while the child creates its namespaces and
/// mounts (it waits for them only at a cgroup mount and before exec).
fn make_cgroup(
    mut cg: boxrun_cgroups::Cgroup,
    v: &Validated,
    guard: &mut CreateGuard,
) -> Result<boxrun_cgroups::Cgroup> {
    if cg.is_unified() {
        cg.materialize(Some(&v.resources))?;
    } else {
        cg.materialize_v2()?;
    }
    crate::failpoint::hit("create:cgroup-made");
    guard.cgroup = Some(cg.clone());
    // Before the init is born in it. Hybrid: only the v2 directory exists yet; the
    // handshake checks the rest (and warns about other processes once).
    check_preexisting(&cg, 0, cg.is_unified(), guard)?;
    Ok(cg)
}

/// A container cgroup that existed before: refuse it frozen (the init would never run;
/// runc's wording), warn when other processes use it (runc's wording) and go on, with
/// `warn`. The directories stay as they were either way: they are not ours.
pub fn check_preexisting(
    cg: &boxrun_cgroups::Cgroup,
    init: i32,
    warn: bool,
    guard: &mut CreateGuard,
) -> Result<()> {
    let Some(found) = cg.preexisting(init)? else {
        return Ok(());
    };
    guard.shared_cgroup = true;
    if found.frozen {
        return Err(Error::Other(
            "container's cgroup unexpectedly frozen: thaw it or choose another linux.cgroupsPath"
                .into(),
        ));
    }
    if warn && found.processes > 0 {
        logging::warn_stderr(&format!(
            "container's cgroup is not empty: {} process(es) found",
            found.processes
        ));
    }
    Ok(())
}

/// Make the exec fifo the init blocks on until `start`; returns it opened `O_PATH`.
fn make_exec_fifo(dir: &StateDir, spec: &Spec) -> Result<OwnedFd> {
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
    .map_err(|e| Error::context("chmod exec.fifo", e))?;
    // The init reopens the fifo as the container's root, which may be another host uid.
    if let Some((uid, gid)) = host_root_ids(spec) {
        nix::unistd::chown(
            &dir.fifo_path(),
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(|e| Error::sys("chown exec.fifo", e))?;
    }
    crate::util::open_owned(&dir.fifo_path(), nix::fcntl::OFlag::O_PATH)
        .map_err(|e| Error::sys("open exec.fifo", e))
}

/// The console the init sends its pty master to: the `--console-socket`, or (foreground
/// `run`) one end of a socketpair whose other end is returned for the runtime to proxy.
#[allow(clippy::type_complexity)]
fn connect_console(
    opts: &CreateOpts,
    v: &Validated,
) -> Result<(Option<OwnedFd>, Option<std::os::unix::net::UnixStream>)> {
    Ok(match (&opts.console_socket, v.terminal) {
        (_, false) => (None, None),
        (Some(p), true) => (Some(crate::console::connect(p)?), None),
        (None, true) => {
            let (ours, theirs) =
                std::os::unix::net::UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
            (Some(OwnedFd::from(theirs)), Some(ours))
        }
    })
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

#[cfg(test)]
mod tests {
    use super::host_root_ids;

    fn spec(linux: serde_json::Value) -> oci_spec::runtime::Spec {
        let mut v = crate::spec::default_spec(false);
        for (k, val) in linux.as_object().into_iter().flatten() {
            v["linux"][k] = val.clone();
        }
        serde_json::from_value(v).expect("spec")
    }

    #[test]
    fn the_fifo_owner_is_the_host_id_of_container_root() {
        let s = spec(serde_json::json!({
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}],
        }));
        assert_eq!(host_root_ids(&s), Some((100000, 200000)));
    }

    #[test]
    fn without_id_maps_the_fifo_keeps_its_owner() {
        assert_eq!(host_root_ids(&spec(serde_json::json!({}))), None);
        let s = spec(serde_json::json!({
            "uidMappings": [{"containerID": 1000, "hostID": 5000, "size": 1}],
        }));
        assert_eq!(host_root_ids(&s), None);
    }
}
