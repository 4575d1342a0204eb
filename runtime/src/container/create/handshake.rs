//! Create, phase 4: the runtime's side of the set-up conversation with the init
//! ([`crate::sync`] messages). The runtime's own remaining work (id maps, the v1
//! cgroups on a hybrid host, the record) overlaps with the init's set-up; the init
//! cannot exec before `CgroupJoined`, so a runtime that dies before then takes it down
//! (EOF) and leaves a `creating` record.
//!
//! Sequence: [`ToInit::Go`] (new user namespace only, after the id maps) →
//! [`ToInit::CgroupMade`] (with the v1 `tasks` files) → [`ToInit::CgroupJoined`] →
//! then, from the init: [`FromInit::RuntimeHooks`] (answered with `Continue` or
//! `Abort`), [`FromInit::SeccompFd`] (answered with `Continue`), and finally
//! [`FromInit::Ready`] or a failure.

use super::host::Host;
use super::spawn::Spawned;
use super::validate::Validated;
use crate::error::{Error, Result};
use crate::hooks;
use crate::procfs;
use crate::state::{Record, Status};
use crate::sync::{FromInit, ToInit};
use oci_spec::runtime::Spec;
use std::os::fd::OwnedFd;

/// Drive the init to Ready and save the container as created (or running, for a
/// foreground `run`).
pub fn handshake(v: &Validated, host: &mut Host, init: &Spawned) -> Result<()> {
    join_cgroups(v, host, init)?;
    answer_until_ready(v, host, init)?;
    crate::failpoint::hit("create:ready");
    host.record.status = if v.wait_fifo {
        Status::Created
    } else {
        Status::Running
    };
    host.dir.save(&host.record)
}

/// Id maps, the rest of the cgroups, the init's move into them, and the record with
/// its pid; ends with `CgroupJoined`.
fn join_cgroups(v: &Validated, host: &mut Host, init: &Spawned) -> Result<()> {
    let chan = &init.chan;
    let pid = init.pid;
    if v.ns.new_user {
        // Only a child in a new user namespace waits: for its id maps.
        write_id_maps(pid, &v.spec)?;
        chan.send_or_child_error(ToInit::Go)?;
    }
    host.record.pid = pid;
    crate::failpoint::hit("create:cloned");
    let tasks = match host.cgroup.as_mut() {
        Some(cg) => finish_cgroups(v, cg, &mut host.guard, &mut host.record, pid)?,
        None => Vec::new(),
    };
    chan.send_or_child_error(ToInit::CgroupMade { tasks })?;
    if let (Some(cg), false) = (&host.cgroup, init.in_cgroup) {
        // clone3 is unavailable (old kernel, seccomp): join v2 the slow way.
        cg.add_process_v2(pid)?;
    }
    host.record.pid_start_time = procfs::stat(pid).map(|s| s.start_time).unwrap_or(0);
    host.dir.save(&host.record)?;
    crate::failpoint::hit("create:joined");
    chan.send_or_child_error(ToInit::CgroupJoined)
        .inspect_err(|e| {
            if matches!(e, Error::Hook(_)) {
                host.guard.hook_failed(&v.spec, &host.record);
            }
        })
}

/// Make the hybrid host's v1 cgroups and open their `tasks` files for the init. The
/// child may mount the cgroups once it has them, and moves itself into the v1
/// hierarchies through those files: a cgroup.procs write of its pid by the runtime would
/// first wait for an RCU grace period (cgroup_threadgroup_rwsem), 5-25 ms on an idle
/// host; a thread moving itself does not.
fn finish_cgroups(
    v: &Validated,
    cg: &mut boxrun_cgroups::Cgroup,
    guard: &mut super::host::CreateGuard,
    record: &mut Record,
    pid: i32,
) -> Result<Vec<OwnedFd>> {
    if !cg.is_unified() {
        // The init is already in the v2 directory: on failure the guard kills it
        // before removing the directories (a live member keeps rmdir retrying).
        let made = cg.materialize_or_keep(Some(&v.resources));
        crate::failpoint::hit("create:v1-cgroups-made");
        guard.cgroup = Some(cg.clone());
        record.cgroup = Some(cg.clone());
        made?;
        super::host::check_preexisting(cg, pid, true, guard)?;
    }
    Ok(cg.v1_tasks_files()?)
}

/// Serve the init's requests (runtime hooks, seccomp listener) until it is Ready.
fn answer_until_ready(v: &Validated, host: &mut Host, init: &Spawned) -> Result<()> {
    let chan = &init.chan;
    loop {
        match chan.recv()? {
            Some(FromInit::RuntimeHooks) => {
                if let Err(e) = run_runtime_hooks(&v.spec, &host.record) {
                    let _ = chan.send(ToInit::Abort);
                    host.guard.hook_failed(&v.spec, &host.record);
                    return Err(e);
                }
                chan.send_or_child_error(ToInit::Continue)
                    .inspect_err(|e| {
                        if matches!(e, Error::Hook(_)) {
                            host.guard.hook_failed(&v.spec, &host.record);
                        }
                    })?;
            }
            Some(FromInit::SeccompFd { listener }) => {
                let (rec, pid) = (&host.record, host.record.pid);
                hand_over_seccomp(&v.spec, rec, Status::Creating, pid, &listener)?;
                chan.send(ToInit::Continue)?;
            }
            Some(FromInit::Ready) => return Ok(()),
            Some(FromInit::Error(msg)) => return Err(Error::Init(msg)),
            Some(FromInit::HookFailed(msg)) => {
                host.guard.hook_failed(&v.spec, &host.record);
                return Err(Error::Hook(msg));
            }
            None => return Err(Error::Init("container init exited during set-up".into())),
        }
    }
}

/// The prestart and createRuntime hooks, in the runtime namespace.
fn run_runtime_hooks(spec: &Spec, record: &Record) -> Result<()> {
    // runtime-tools (hooks_stdin) expects "created" here; runc says "creating".
    let state = record.oci_state(Status::Created).to_string().into_bytes();
    let h = spec.hooks().as_ref();
    // In the bundle, as runc's (it works there).
    let cwd = Some(record.bundle.as_path());
    hooks::run_all_in(
        h.and_then(|h| h.prestart().as_ref()),
        &state,
        "prestart",
        cwd,
    )?;
    hooks::run_all_in(
        h.and_then(|h| h.create_runtime().as_ref()),
        &state,
        "createRuntime",
        cwd,
    )
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
            .map_err(|e| Error::context("linux.uidMappings: write uid_map", e))?;
    }
    if !gid.is_empty() {
        if !nix::unistd::geteuid().is_root() {
            // Without CAP_SETGID over the parent namespace the kernel takes a gid_map
            // only once setgroups is denied (runc's rootless rule).
            std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
                .map_err(|e| Error::context("linux.gidMappings: deny setgroups", e))?;
        }
        std::fs::write(format!("/proc/{pid}/gid_map"), &gid)
            .map_err(|e| Error::context("linux.gidMappings: write gid_map", e))?;
    }
    Ok(())
}

/// Send the seccomp listener `fd` of process `pid` (the init, or an exec'd process) to
/// the spec's `listenerPath` agent, with the container's state as `status`.
pub(crate) fn hand_over_seccomp(
    spec: &Spec,
    record: &Record,
    status: Status,
    pid: i32,
    fd: &OwnedFd,
) -> Result<()> {
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
        "pid": pid,
        "metadata": sc.listener_metadata().clone().unwrap_or_default(),
        "state": record.oci_state(status),
    });
    boxrun_seccomp::send_listener_fd(
        path,
        std::os::fd::AsFd::as_fd(fd),
        state.to_string().as_bytes(),
    )?;
    Ok(())
}
