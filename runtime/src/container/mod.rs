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
//! - [`checkpoint`](mod@checkpoint), [`restore`](mod@restore): CRIU dump and restore.
//! - [`list`](mod@list), [`ps`](mod@ps), [`events`](mod@events),
//!   [`update`](mod@update): what the other runc commands read or change.
//! - [`load`](mod@load): the saved record and spec, for the other commands.

pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod kill;
pub mod list;
pub mod load;
pub mod pause;
pub mod ps;
pub mod restore;
pub mod run;
pub mod start;
pub mod state;
pub mod update;

pub use checkpoint::checkpoint;
pub use create::{create, write_pid_file, CreateOpts, Created};
pub use delete::delete;
pub use kill::kill;
pub use list::list;
pub use load::{load, load_saved_spec};
pub use pause::set_frozen;
pub use restore::restore;
pub use run::run;
pub use start::start;
pub use state::state;
pub use update::update;
