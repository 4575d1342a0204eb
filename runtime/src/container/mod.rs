//! Container lifecycle on the runtime side, one module per command. Each command is a
//! short-lived process that works on the state directory under a lock, and leaves the
//! host as it found it when it fails.
//!
//! - [`create`](mod@create): validate → prepare the host → spawn the init → handshake.
//! - [`start`](mod@start): release a created container through its exec fifo.
//! - [`run`](mod@run): create + start, then wait in the foreground and clean up.
//! - [`state`](mod@state): the OCI state of one container.
//! - [`kill`](mod@kill): signal the init or the whole cgroup.
//! - [`delete`](mod@delete): tear a stopped container down (poststop hooks included).
//! - [`pause`](mod@pause): pause and resume through the cgroup freezer.
//! - [`load`](mod@load): the saved record and spec, for the other commands.

pub mod create;
pub mod delete;
pub mod kill;
pub mod load;
pub mod pause;
pub mod run;
pub mod start;
pub mod state;

pub use create::{create, write_pid_file, CreateOpts, Created};
pub use delete::delete;
pub use kill::kill;
pub use load::{load, load_saved_spec};
pub use pause::set_frozen;
pub use run::run;
pub use start::start;
pub use state::state;
