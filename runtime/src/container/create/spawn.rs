//! Create, phase 3: spawn the container's init. One clone with the new-namespace
//! flags, born in its v2 cgroup (`CLONE_INTO_CGROUP`); the child runs
//! [`init::child_main`] and never returns here.

use super::host::Host;
use super::validate::Validated;
use super::CreateOpts;
use crate::error::{Error, Result};
use crate::init::{self, InitCtx};
use crate::sync::{self, RuntimeEnd};
use std::os::fd::{AsRawFd, OwnedFd};

/// The init, as the runtime holds it after the clone.
pub struct Spawned {
    /// Host pid of the init.
    pub pid: i32,
    /// Whether it was born in its v2 cgroup (else it is added the slow way).
    pub in_cgroup: bool,
    /// The runtime's end of the set-up channel.
    pub chan: RuntimeEnd,
}

/// Clone the init; from here on the guard kills it if create fails.
pub fn spawn(opts: &CreateOpts, v: &Validated, host: &mut Host) -> Result<Spawned> {
    let mut extra_env = Vec::new();
    let lfds = v.listen_fds;
    if lfds > 0 {
        extra_env.push(format!("LISTEN_FDS={lfds}"));
        extra_env.push("LISTEN_PID=1".to_string());
    }
    let bind_sources = if v.ns.in_userns() {
        crate::bind_sources::take(&v.spec, &v.bundle)
    } else {
        Vec::new()
    };
    let (parent, child) = sync::pair()?;
    let ctx = InitCtx {
        spec: &v.spec,
        rootfs: &v.rootfs,
        bundle: &v.bundle,
        state_dir: &host.dir.path,
        ns: &v.ns,
        cgroup: host.cgroup.as_ref(),
        seccomp: v.seccomp.as_ref(),
        console_socket: host.console.as_ref(),
        no_pivot: opts.no_pivot,
        wait_fifo: v.wait_fifo,
        fifo: host.fifo.as_ref(),
        preserve_fds: opts.preserve_fds + lfds,
        extra_env,
        runtime_hooks: v.runtime_hooks,
        no_new_keyring: opts.no_new_keyring,
        id: &opts.id,
        close_fds: [Some(parent.raw()), host.dir.lock_fd()]
            .into_iter()
            .flatten()
            .collect(),
        bind_sources: &bind_sources,
    };
    if let Some(pidns) = &v.ns.join_pid {
        // Affects only children: the init is born in the joined pid namespace.
        // SAFETY: setns on a checked pid namespace fd.
        if unsafe { libc::setns(pidns.as_raw_fd(), libc::CLONE_NEWPID) } != 0 {
            return Err(Error::sys("join pid namespace", nix::Error::last()));
        }
    }
    // A new user namespace may not join a network namespace its parent owns (boxctl's,
    // podman's): the init is born in it instead, as runc joins before unsharing the user
    // namespace, and the runtime goes back to its own after the clone.
    let own_net = match crate::init::net_joined_at_clone(&v.ns) {
        Some(j) => {
            let own = crate::util::open_owned(
                std::path::Path::new("/proc/self/ns/net"),
                nix::fcntl::OFlag::empty(),
            )
            .map_err(|e| Error::sys("open the runtime's network namespace", e))?;
            crate::namespaces::setns(j)?;
            Some(own)
        }
        None => None,
    };
    // The child is born in its v2 cgroup (clone3 CLONE_INTO_CGROUP): no late join there.
    let into = host.cgroup.as_ref().and_then(|cg| cg.clone_into_fd());
    let cloned = clone_child(
        v.ns.clone_flags,
        &ctx,
        &child,
        v.ns.join_pid.is_some(),
        into.as_ref(),
    );
    if let Some(own) = own_net {
        // SAFETY: setns on the network namespace fd opened above.
        if unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(Error::sys(
                "return to the runtime's network namespace",
                nix::Error::last(),
            ));
        }
    }
    let (pid, in_cgroup) = cloned?;
    drop(child);
    host.guard.pid = pid;
    Ok(Spawned {
        pid,
        in_cgroup,
        chan: parent,
    })
}

/// Fork the container's init with the new-namespace flags ([`crate::fork::fork`]); the
/// child runs init. The bool says whether the child was born in its v2 cgroup.
fn clone_child(
    flags: libc::c_int,
    ctx: &InitCtx,
    chan: &sync::InitEnd,
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
