//! The runc-compatible command line, parsed by hand.
//!
//! boxrun used to parse its arguments with clap. Start-up cost and peak RSS are the
//! runtime's headline numbers, and clap was about 415 KB of the static binary and about
//! 1% of a container start's CPU time, so this module does the same job with a flag
//! table per command and one small scanner.
//!
//! What it accepts:
//! - `--flag value`, `--flag=value`, `-f value`, `-fvalue`, `-f=value`, and clusters of
//!   short booleans (`-dt`).
//! - Booleans take no value, but `--flag=true` / `--flag=false` (any spelling Go's
//!   `strconv.ParseBool` accepts) also work, as urfave/cli clients send them.
//! - Repeatable flags (`--env`, `--additional-gids`, `--cap`, `--cgroup`) accumulate;
//!   for the other flags the last occurrence wins.
//! - Global flags (`--root`, `--log`, `--log-format`, `--debug`, `--systemd-cgroup`,
//!   `--rootless[=VALUE]`, `--criu`) go before or after the command; `-v/--version`
//!   only before it.
//! - `--` ends flag parsing. Flags and positionals may be mixed, except that for `exec`
//!   and `ps` everything after the container id belongs to the command / ps(1).
//! - A value may start with `-` only if it is `-` itself or a negative number
//!   (`--cpu-quota -1`, `--process -`); otherwise use `--flag=-value`.
//!
//! Errors are one line (see [`ArgError`]); `--help` output is built from the same tables.
//!
//! The pieces, each one concern, in the order a command line goes through them:
//! - `table`: every command, its flags and the global ones (names, shorts, whether a
//!   flag takes a value, help lines, defaults).
//! - `scan`: one pass over the arguments; splits flag tokens, looks them up in the
//!   tables and sorts them into global flags, the command's flags and positionals.
//! - `read`: types what the scan found into [`Cli`]/[`Cmd`] (defaults, numbers, UTF-8)
//!   and names the flag or argument at fault.
//! - `help`: `--help`, `-h` and `help [COMMAND]` text, from the tables.
//!
//! # Why a hand-written scanner and not a crate (measured December 2026)
//! A prototype replaced `scan` with `lexopt` 0.3.2 (~1k lines of code, no dependencies),
//! keeping the tables, `read` and `help`. Static release binary (`scripts/build.sh`
//! flags) and whole-process instruction counts (`valgrind --tool=callgrind`, exact from
//! run to run):
//!
//! | build                       | size (bytes) | `state x` | `exec` 8 flags | `update` 5 flags | `--help` |
//! |-----------------------------|-------------:|----------:|---------------:|-----------------:|---------:|
//! | one file (before the split) |    3,773,688 |    90,180 |        111,684 |          102,242 |  159,308 |
//! | split, lexopt scanner       |    3,781,880 |    90,238 |        108,852 |          101,804 |  159,018 |
//! | split, this scanner         |    3,775,544 |    89,000 |        105,780 |           98,718 |  158,600 |
//!
//! (`exec -t --cwd / -e A=1 --env=B=2 -u 0:0 --additional-gids 1 -g2 --cap CAP_KILL ID sh
//! -c true`, `update --memory 128m --cpu-quota -1 --cpu-period=100000 --pids-limit 64
//! --blkio-weight 500 ID`, against a missing container.) Both are within noise of the
//! one-file parser (lexopt +8 KB, +0.1%..-2.5% instructions), so size and start-up do
//! not decide; the grammar does. lexopt expresses runc's grammar only with a workaround
//! at each runc rule: a short bool's `-d=true` arrives as lexopt's "unexpected value"
//! error and has to be patched onto the flag before it; `value()` takes any next
//! argument (`--log --debug` would log to a file called `--debug`), so every value is
//! peeked through `raw_args` to keep flags out and let `-` and `-1` in; the original
//! token has to be peeked before each step for `unknown flag -x in -qx` and for
//! checkpoint/restore's pass-through; `--` is consumed silently, so exec's `ID -- CMD`
//! needs it tracked, and a `--` before the command ends lexopt's option parsing for the
//! rest of the line, so the command needs a second lexer. The result was as long as this
//! scanner (354 lines against 351) plus a dependency, so the scanner stays hand-written.
//! (This scanner's lead in instructions is from moving each argument out instead of
//! copying it, a change made with the split.)
//! `pico-args` was not prototyped: it looks keys up in any order, so it cannot tell
//! `exec -t ID` from `exec ID ls -t`, and takes the next argument as a value whatever it
//! is (its documented limitation).

mod help;
pub use help::version;
mod read;
mod scan;
mod table;
#[cfg(test)]
mod tests;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

/// The parsed command line: the global flags and the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// Root directory for container state (`--root`, default `/run/boxrun`, or
    /// `$XDG_RUNTIME_DIR/boxrun` when rootless: [`crate::rootless::default_root`]).
    pub root: PathBuf,
    /// Log file (`--log`, default empty: stderr only).
    pub log: String,
    /// Log format, `text` or `json` (`--log-format`, default `text`).
    pub log_format: String,
    /// Debug logging (`--debug`).
    pub debug: bool,
    /// Use systemd for cgroups (`--systemd-cgroup`).
    pub systemd_cgroup: bool,
    /// `--rootless[=VALUE]`: `true`, `false` or `auto` (also when given without a
    /// value); see [`crate::rootless::active`].
    pub rootless: Option<String>,
    /// `--criu PATH`: the criu binary for checkpoint/restore (default: `criu` on PATH).
    pub criu: Option<String>,
    /// Print the version (`-v`, `--version`).
    pub version: bool,
    /// The command; `None` when none was given.
    pub cmd: Option<Cmd>,
}

impl Default for Cli {
    fn default() -> Self {
        Cli {
            root: crate::rootless::default_root(),
            log: String::new(),
            log_format: "text".into(),
            debug: false,
            systemd_cgroup: false,
            rootless: None,
            criu: None,
            version: false,
            cmd: None,
        }
    }
}

/// The flags and id shared by `create` and `run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateArgs {
    /// Bundle directory, holding config.json (`-b`, `--bundle`, default `.`).
    pub bundle: PathBuf,
    /// Unix socket to send the pty master to (`--console-socket`).
    pub console_socket: Option<PathBuf>,
    /// Write the init's pid here (`--pid-file`).
    pub pid_file: Option<PathBuf>,
    /// Use chroot instead of pivot_root (`--no-pivot`).
    pub no_pivot: bool,
    /// Keep the caller's session keyring (`--no-new-keyring`).
    pub no_new_keyring: bool,
    /// Pass this many extra fds (after stdio) to the container (`--preserve-fds`).
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
}

/// A command and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// Create a container (the process waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start {
        /// Container id.
        id: String,
    },
    /// Create and start a container; wait for it unless --detach.
    Run {
        /// The create flags and the id.
        c: CreateArgs,
        /// Return once started.
        detach: bool,
        /// Do not delete the container after it exits.
        keep: bool,
    },
    /// Print a container's state as JSON.
    State {
        /// Container id.
        id: String,
    },
    /// Send a signal to a container's init (default SIGTERM).
    Kill {
        /// Signal every process in the container.
        all: bool,
        /// Container id.
        id: String,
        /// Signal name or number (default `SIGTERM`).
        signal: String,
    },
    /// Delete a stopped container (--force: kill it first).
    Delete {
        /// Kill the container first if it is still running.
        force: bool,
        /// Container id.
        id: String,
    },
    /// List containers.
    List {
        /// Output format: `table` (default) or `json`.
        format: String,
        /// Print only the ids.
        quiet: bool,
    },
    /// Write a default config.json.
    Spec {
        /// Directory to write config.json in (default `.`).
        bundle: PathBuf,
        /// Write a spec for a rootless container.
        rootless: bool,
    },
    /// Print the OCI features document.
    Features,
    /// Run a new process in a running container.
    Exec(ExecArgs),
    /// Freeze every process of a container.
    Pause {
        /// Container id.
        id: String,
    },
    /// Thaw a paused container.
    Resume {
        /// Container id.
        id: String,
    },
    /// List the processes of a container.
    Ps {
        /// Output format: `table` (default) or `json`.
        format: String,
        /// Container id.
        id: String,
        /// Options passed to ps(1).
        ps_args: Vec<String>,
    },
    /// Print resource usage and OOM events.
    Events {
        /// Time between two stats reports (default `5s`).
        interval: String,
        /// Print the stats once and exit.
        stats: bool,
        /// Container id.
        id: String,
    },
    /// Change a running container's resource limits.
    Update(UpdateArgs),
    /// Checkpoint a running container with CRIU.
    Checkpoint(CheckpointArgs),
    /// Restore a container from a CRIU checkpoint.
    Restore(RestoreArgs),
}

/// The CRIU options `checkpoint` and `restore` share (runc's flags of both).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CriuArgs {
    /// Where the images are (`--image-path`, default `./checkpoint`).
    pub image_path: Option<PathBuf>,
    /// Where criu writes its logs and work files (`--work-path`, default the image path).
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections (`--tcp-established`).
    pub tcp_established: bool,
    /// Allow external unix sockets (`--ext-unix-sk`).
    pub ext_unix_sk: bool,
    /// Allow shell jobs (`--shell-job`).
    pub shell_job: bool,
    /// Handle file locks (`--file-locks`).
    pub file_locks: bool,
    /// criu's cgroup mode: soft, full, strict or ignore (`--manage-cgroups-mode`).
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces to leave empty, only `network` (`--empty-ns`, repeatable).
    pub empty_ns: Vec<String>,
    /// Lazy pages (`--lazy-pages`): refused, see [`crate::criu`].
    pub lazy_pages: bool,
    /// Deduplicate the parent's pages (`--auto-dedup`).
    pub auto_dedup: bool,
    /// Container id.
    pub id: String,
}

/// The arguments of `checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointArgs {
    /// The options shared with `restore`, and the id.
    pub criu: CriuArgs,
    /// Keep the container running after the dump (`--leave-running`).
    pub leave_running: bool,
    /// Dump memory only, keep running (`--pre-dump`).
    pub pre_dump: bool,
    /// A previous pre-dump's images, relative to the image path (`--parent-path`).
    pub parent_path: Option<PathBuf>,
    /// `ADDRESS:PORT` of a criu page server (`--page-server`).
    pub page_server: Option<String>,
}

/// The arguments of `restore`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreArgs {
    /// The options shared with `checkpoint`, and the id.
    pub criu: CriuArgs,
    /// Bundle directory (`-b`, `--bundle`, default `.`).
    pub bundle: PathBuf,
    /// Return once restored (`-d`, `--detach`).
    pub detach: bool,
    /// Write the restored init's pid here (`--pid-file`).
    pub pid_file: Option<PathBuf>,
    /// Unix socket for the pty master (`--console-socket`): refused, see [`crate::criu`].
    pub console_socket: Option<PathBuf>,
    /// Do not become the restored init's subreaper (`--no-subreaper`).
    pub no_subreaper: bool,
    /// Accepted for runc compatibility (criu mounts the root itself).
    pub no_pivot: bool,
}

/// The arguments of `exec`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecArgs {
    /// Unix socket to send the pty master to (`--console-socket`).
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container (`--cwd`).
    pub cwd: Option<PathBuf>,
    /// Extra environment, `NAME=VALUE` (`-e`, `--env`, repeatable).
    pub env: Vec<String>,
    /// Allocate a pseudo-terminal (`-t`, `--tty`).
    pub tty: bool,
    /// `UID[:GID]` to run as (`-u`, `--user`).
    pub user: Option<String>,
    /// Additional group ids (`-g`, `--additional-gids`, repeatable).
    pub additional_gids: Vec<u32>,
    /// The process as JSON, from a file or `-` for stdin (`-p`, `--process`).
    pub process: Option<PathBuf>,
    /// Return once started (`-d`, `--detach`).
    pub detach: bool,
    /// Write the process's pid here (`--pid-file`).
    pub pid_file: Option<PathBuf>,
    /// SELinux label (`--process-label`; accepted, not applied).
    pub process_label: Option<String>,
    /// AppArmor profile (`--apparmor`).
    pub apparmor: Option<String>,
    /// Set no_new_privs (`--no-new-privs`).
    pub no_new_privs: bool,
    /// Capabilities to add (`-c`, `--cap`, repeatable).
    pub cap: Vec<String>,
    /// Pass this many extra fds (after stdio) to the process (`--preserve-fds`).
    pub preserve_fds: u32,
    /// Run even if the container is paused (`--ignore-paused`).
    pub ignore_paused: bool,
    /// Sub-cgroups to join (`--cgroup`, repeatable; `[CONTROLLER:]PATH`).
    pub cgroup: Vec<String>,
    /// Container id.
    pub id: String,
    /// The command and its arguments: everything after the id.
    pub command: Vec<String>,
}

/// The arguments of `update`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateArgs {
    /// JSON linux.resources from a file, or - for stdin (`-r`, `--resources`).
    pub resources: Option<String>,
    /// `--blkio-weight`.
    pub blkio_weight: Option<u16>,
    /// `--cpu-period` (µs).
    pub cpu_period: Option<u64>,
    /// `--cpu-quota` (µs, -1 for none).
    pub cpu_quota: Option<i64>,
    /// `--cpu-share`.
    pub cpu_share: Option<u64>,
    /// `--cpu-rt-period` (µs).
    pub cpu_rt_period: Option<u64>,
    /// `--cpu-rt-runtime` (µs).
    pub cpu_rt_runtime: Option<i64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--memory` (bytes, with an optional k/m/g/t suffix).
    pub memory: Option<String>,
    /// `--memory-reservation`.
    pub memory_reservation: Option<String>,
    /// `--memory-swap`.
    pub memory_swap: Option<String>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--kernel-memory`.
    pub kernel_memory: Option<String>,
    /// `--kernel-memory-tcp`.
    pub kernel_memory_tcp: Option<String>,
    /// `--l3-cache-schema` (Intel RDT; rejected later).
    pub l3_cache_schema: Option<String>,
    /// `--mem-bw-schema` (Intel RDT; rejected later).
    pub mem_bw_schema: Option<String>,
    /// Container id.
    pub id: String,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Run: the parsed command line (boxed: it is much larger than the help text).
    Run(Box<Cli>),
    /// `--help`, `-h` or `help [COMMAND]`: print this text on stdout and exit 0.
    Help(String),
}

/// A command-line error. Its text is one line, names the culprit (the command, flag or
/// argument) and says what to do; the caller prefixes `boxrun: error: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Parsed, ArgError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let help = match scan::scan(args.into_iter().map(Into::into).collect())? {
        scan::Scanned::Run(s) => return Ok(Parsed::Run(Box::new(read::cli(s)?))),
        scan::Scanned::Help(None) => help::top(),
        scan::Scanned::Help(Some(c)) => help::command(c),
        scan::Scanned::HelpCommand(rest) => help::help_command(&rest)?,
    };
    Ok(Parsed::Help(help))
}

/// An argument as it may appear in a message: bare if it is plain, else quoted and
/// escaped (so a message stays one line whatever the user typed).
fn show(s: &OsStr) -> String {
    let t = s.to_string_lossy();
    if !t.is_empty()
        && t.chars().all(|c| {
            c.is_ascii_graphic() || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
        })
    {
        t.into_owned()
    } else {
        format!("{t:?}")
    }
}
