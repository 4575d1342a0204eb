//! `create`: make a container and leave its init waiting on the exec fifo (or, for a
//! foreground `run`, about to exec). Four phases, each a module:
//!
//! 1. [`validate`]: parse and check everything; nothing on the host is touched.
//! 2. [`host`]: the state directory, cgroups, exec fifo and console, with the
//!    [`host::CreateGuard`] that undoes them if a later step fails.
//! 3. [`spawn`]: clone the init with its namespaces, born in its v2 cgroup.
//! 4. [`handshake`]: the runtime's side of the set-up conversation with the init
//!    ([`crate::sync`]): id maps, v1 cgroups, hooks, the seccomp listener, Ready.

pub mod handshake;
pub mod host;
pub mod spawn;
pub mod validate;

use crate::error::{Error, Result};
use crate::state::{Record, StateDir};
use oci_spec::runtime::Spec;
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
    /// Rootless ([`crate::rootless::active`]): cgroups only where this user may use them.
    pub rootless: bool,
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

/// Create a container. With `wait_fifo` false (foreground `run`), the init does not
/// wait for `start` and execs as soon as it is set up.
pub fn create(opts: &CreateOpts, wait_fifo: bool) -> Result<Created> {
    create_inner(opts, wait_fifo, false)
}

/// `create`; with `proxy_tty`, a terminal without --console-socket gets an internal
/// socket whose other end is returned in [`Created::console_proxy`] (foreground `run`).
pub(super) fn create_inner(opts: &CreateOpts, wait_fifo: bool, proxy_tty: bool) -> Result<Created> {
    let (valid, cgroup) = validate::validate(opts, wait_fifo, proxy_tty)?;
    let mut host = host::prepare(opts, &valid, cgroup)?;
    let init = spawn::spawn(opts, &valid, &mut host)?;
    handshake::handshake(&valid, &mut host, &init)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, init.pid)?;
    }
    let host::Host {
        mut guard,
        dir,
        record,
        console_proxy,
        ..
    } = host;
    guard.disarm();
    drop(guard);
    Ok(Created {
        pid: init.pid,
        dir,
        record,
        spec: valid.spec,
        console_proxy,
    })
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
