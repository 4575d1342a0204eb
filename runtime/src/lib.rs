//! boxrun: a fast, runc-compatible OCI runtime.
//!
//! One clone per container, no re-exec: the runtime process forks the container's
//! init directly with its new namespaces, and the child sets up the root filesystem,
//! credentials and security settings before it execs the user process. How the pieces
//! fit, message by message: `docs/architecture.md`.
//!
//! Module map (one concern each):
//! - [`args`]: the runc-compatible command line, parsed by hand (no clap: start-up cost).
//! - [`cli`]: dispatch of the parsed command line.
//! - [`config`]: loading and validating `config.json`.
//! - [`state`]: the per-container state directory, locking, atomic writes.
//! - [`container`]: the lifecycle commands, one module each (create in four phases:
//!   validate, prepare the host, spawn, handshake).
//! - [`fork`]: clone/clone3 of the init and of exec'd processes, born in their cgroup.
//! - [`sync`]: the typed set-up messages between the runtime and the init
//!   ([`sync::ToInit`], [`sync::FromInit`]).
//! - [`init`]: the container side, between clone and exec.
//! - [`syscall`]: the privileged calls of the set-up behind one trait (real and
//!   recording fake), so its order is unit-tested without root.
//! - [`exec`]: `boxrun exec`, a new process in a running container ([`sub_cgroup`]:
//!   its `--cgroup`).
//! - What the set-up applies: [`namespaces`], [`rootfs`], [`mounts`] (mount
//!   options), [`bind_sources`] (taken before a user namespace), [`devices`], [`hooks`], [`capabilities`], [`rlimits`], [`identity`]
//!   (cwd, user, capabilities and seccomp in order), [`sched`] (scheduler, I/O
//!   priority, CPU affinity, personality), [`mempolicy`] (NUMA memory policy),
//!   [`console`].
//! - [`rootless`]: runc's rootless rules (detection, state root default, cgroups).
//! - [`criu`]: `checkpoint`/`restore`'s use of the criu binary (check, dump, restore).
//! - [`features`], [`spec`]: the `features` and `spec` commands' documents;
//!   [`unsupported`]: the fields refused at create because boxrun does not apply them.
//! - Helpers: [`error`], [`logging`], [`procfs`], [`signals`] (names, forwarding, reset
//!   before exec), [`failpoint`] (crash injection, debug builds), [`util`].

pub mod args;
pub mod bind_sources;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod console;
pub mod container;
pub mod criu;
pub mod devices;
pub mod error;
pub mod exec;
pub mod failpoint;
pub mod features;
pub mod fork;
pub mod hooks;
pub mod identity;
pub mod init;
pub mod logging;
pub mod mempolicy;
pub mod mounts;
pub mod namespaces;
pub mod procfs;
pub mod rlimits;
pub mod rootfs;
pub mod rootless;
pub mod sched;
pub mod signals;
pub mod spec;
pub mod startup;
pub mod state;
pub mod sub_cgroup;
pub mod sync;
pub mod syscall;
pub mod unsupported;
pub mod util;
