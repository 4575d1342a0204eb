//! boxctl's library: everything the `boxctl` command does, without its
//! command line. A front end (the `boxctl` binary, or any other) opens a
//! [`store::Store`] and calls:
//!
//! - images: [`image::import`], [`image::list`], [`image::remove`], [`image::tag`];
//!   from and to registries: [`registry::pull`], [`registry::push`],
//!   [`registry::login()`], [`registry::logout()`] (blocking; progress as
//!   [`registry::Progress`]);
//! - instances: [`lifecycle::create`] (from a [`create_spec::CreateSpec`],
//!   made from user options by [`create_spec::CreateSpec::from_options`]),
//!   [`lifecycle::start`], [`lifecycle::stop`], [`lifecycle::remove`],
//!   [`lifecycle::refresh`], [`instance::update_limits`], [`instance::exec`],
//!   [`instance::logs`], [`instance::inspect`];
//! - sessions on an instance's stdio, over its monitor's attach socket
//!   ([`attach`]): [`session::run_foreground`] (`run` without `-d`, with
//!   `-i`/`-t`), [`session::attach`], [`session::wait`];
//! - limits: [`limits::LimitSpec::parse`], the one parser and validation;
//! - networks: [`networking::create`], [`networking::list`], [`networking::remove`];
//!   an instance given no network joins the store's [`default_network`];
//! - farms: [`farm::up`], [`farm::down`], [`farm::scale`], which report
//!   progress as [`farm::Event`]s;
//! - usage: [`stats::sample`], [`disk_usage::usage`] (`system df`);
//!   [`allocation::allocated`] (bytes a path holds, pool links included);
//! - everyday commands: [`copy::copy`] (`cp`), [`instance_control`]
//!   (`pause`, `unpause`, `rename`, `top`, `port`), [`prune::plan`] and
//!   [`prune::prune`], [`image::inspect`];
//! - volumes: [`volumes::create`], [`volumes::list`], [`volumes::remove`],
//!   [`volumes::inspect`]; `-v`/`--tmpfs`/`--read-only` checked by
//!   [`volume_spec::Storage::new`];
//! - the per-instance monitor process: [`monitor::main`]. `start` runs it
//!   as `EXE --root ROOT __monitor ID` with the running executable, so a
//!   front end hands that command line to [`monitor::main`].
//!
//! Every fallible call returns [`error::Result`]. The library prints
//! nothing on stdout (a farm image's build script writes its own output);
//! on stderr only the disk-copy progress bar, on a terminal, and the
//! monitor's log lines.

pub mod allocation;
pub mod attach;
pub mod bundle;
pub mod checker;
pub mod compose;
pub mod console;
pub mod copy;
pub mod copy_tar;
pub mod create_spec;
pub mod default_network;
pub mod disk;
pub mod disk_usage;
pub mod duration;
pub mod error;
pub mod events;
pub mod export;
pub mod farm;
pub mod fs_at;
pub mod health;
pub mod healthcheck;
pub mod idmap;
pub mod image;
pub mod instance;
pub mod instance_control;
pub mod instance_disk;
pub mod instance_file;
pub mod instance_filter;
pub mod labels;
pub mod lifecycle;
pub mod limits;
pub mod loopdev;
pub mod monitor;
pub mod mounts;
pub mod networking;
pub mod oom;
pub mod pool;
pub mod procs;
pub mod prune;
pub mod publish;
pub mod registry;
pub mod runtime_cli;
pub mod security;
pub mod session;
pub mod stats;
pub mod store;
pub mod teardown;
pub mod userns;
pub mod util;
pub mod volume_spec;
pub mod volumes;

pub use error::{Error, Result};
