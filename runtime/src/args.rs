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
//!   and `ps` everything after the container id belongs to the command / ps(1), and
//!   `checkpoint`/`restore` take anything.
//! - A value may start with `-` only if it is `-` itself or a negative number
//!   (`--cpu-quota -1`, `--process -`); otherwise use `--flag=-value`.
//!
//! Errors are one line (see [`ArgError`]); `--help` output is built from the same tables.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The parsed command line: the global flags and the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// Root directory for container state (`--root`, default `/run/boxrun`).
    pub root: PathBuf,
    /// Log file (`--log`, default empty: stderr only).
    pub log: String,
    /// Log format, `text` or `json` (`--log-format`, default `text`).
    pub log_format: String,
    /// Debug logging (`--debug`).
    pub debug: bool,
    /// Use systemd for cgroups (`--systemd-cgroup`).
    pub systemd_cgroup: bool,
    /// `--rootless[=VALUE]`: accepted for runc compatibility and ignored (`auto` when
    /// given without a value).
    pub rootless: Option<String>,
    /// `--criu PATH`: accepted for runc compatibility; checkpointing is not supported.
    pub criu: Option<String>,
    /// Print the version (`-v`, `--version`).
    pub version: bool,
    /// The command; `None` when none was given.
    pub cmd: Option<Cmd>,
}

impl Default for Cli {
    fn default() -> Self {
        Cli {
            root: PathBuf::from("/run/boxrun"),
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
    /// Not supported: boxrun has no checkpoint/restore.
    Checkpoint {
        /// Whatever followed the command.
        rest: Vec<String>,
    },
    /// Not supported: boxrun has no checkpoint/restore.
    Restore {
        /// Whatever followed the command.
        rest: Vec<String>,
    },
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
    /// Sub-cgroups to join (`--cgroup`, repeatable; accepted, not applied).
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

/// Whether a flag takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// A boolean: `--flag`, or `--flag=true|false`.
    Nothing,
    /// `--flag VALUE` or `--flag=VALUE`.
    Value,
    /// `--flag`, `--flag=VALUE` or `--flag true|false|auto` (only `--rootless`).
    Optional,
}

/// One flag of a table.
#[derive(Debug, Clone, Copy)]
struct Flag {
    long: &'static str,
    short: Option<u8>,
    takes: Takes,
    /// Placeholder for the value in help and errors.
    meta: &'static str,
    help: &'static str,
    default: Option<&'static str>,
    hidden: bool,
}

const fn b(long: &'static str, short: Option<u8>, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        takes: Takes::Nothing,
        meta: "",
        help,
        default: None,
        hidden: false,
    }
}

const fn v(
    long: &'static str,
    short: Option<u8>,
    meta: &'static str,
    help: &'static str,
    default: Option<&'static str>,
) -> Flag {
    Flag {
        long,
        short,
        takes: Takes::Value,
        meta,
        help,
        default,
        hidden: false,
    }
}

/// Global flags: before or after the command.
const GLOBAL: &[Flag] = &[
    v(
        "root",
        None,
        "PATH",
        "Root directory for container state",
        Some("/run/boxrun"),
    ),
    v(
        "log",
        None,
        "PATH",
        "Log file (errors always go to stderr too)",
        Some("\"\""),
    ),
    v(
        "log-format",
        None,
        "FORMAT",
        "Log format: text or json",
        Some("text"),
    ),
    b("debug", None, "Debug logging"),
    b("systemd-cgroup", None, "Use systemd for cgroups"),
    Flag {
        long: "rootless",
        short: None,
        takes: Takes::Optional,
        meta: "VALUE",
        help: "Accepted for runc compatibility (rootless detection is automatic)",
        default: None,
        hidden: false,
    },
    Flag {
        long: "criu",
        short: None,
        takes: Takes::Value,
        meta: "PATH",
        help: "Accepted for runc compatibility; checkpointing is not supported",
        default: None,
        hidden: true,
    },
];

/// `-v/--version`: only before the command.
static VERSION: Flag = b("version", Some(b'v'), "Print the version");

const CREATE_FLAGS: [Flag; 6] = [
    v(
        "bundle",
        Some(b'b'),
        "PATH",
        "Bundle directory (holds config.json)",
        Some("."),
    ),
    v(
        "console-socket",
        None,
        "PATH",
        "Unix socket to send the pty master to",
        None,
    ),
    v("pid-file", None, "PATH", "Write the init's pid here", None),
    b("no-pivot", None, "Use chroot instead of pivot_root"),
    b("no-new-keyring", None, "Keep the caller's session keyring"),
    v(
        "preserve-fds",
        None,
        "N",
        "Pass this many extra fds (after stdio) to the container",
        Some("0"),
    ),
];

const RUN_FLAGS: &[Flag] = &[
    CREATE_FLAGS[0],
    CREATE_FLAGS[1],
    CREATE_FLAGS[2],
    CREATE_FLAGS[3],
    CREATE_FLAGS[4],
    CREATE_FLAGS[5],
    b("detach", Some(b'd'), "Return once started"),
    b("keep", None, "Do not delete the container after it exits"),
];

const FORMAT_FLAG: Flag = v(
    "format",
    Some(b'f'),
    "FORMAT",
    "Output format: table or json",
    Some("table"),
);

const EXEC_FLAGS: &[Flag] = &[
    v(
        "console-socket",
        None,
        "PATH",
        "Unix socket to send the pty master to",
        None,
    ),
    v(
        "cwd",
        None,
        "PATH",
        "Working directory in the container",
        None,
    ),
    v(
        "env",
        Some(b'e'),
        "NAME=VALUE",
        "Set an environment variable (repeatable)",
        None,
    ),
    b("tty", Some(b't'), "Allocate a pseudo-terminal"),
    v("user", Some(b'u'), "UID[:GID]", "User to run as", None),
    v(
        "additional-gids",
        Some(b'g'),
        "GID",
        "Additional group id (repeatable)",
        None,
    ),
    v(
        "process",
        Some(b'p'),
        "FILE",
        "Process JSON (config.json's process) from FILE, or - for stdin",
        None,
    ),
    b("detach", Some(b'd'), "Return once started"),
    v(
        "pid-file",
        None,
        "PATH",
        "Write the process's pid here",
        None,
    ),
    v(
        "process-label",
        None,
        "LABEL",
        "SELinux label (accepted, not applied)",
        None,
    ),
    v("apparmor", None, "PROFILE", "AppArmor profile", None),
    b("no-new-privs", None, "Set no_new_privs"),
    v(
        "cap",
        Some(b'c'),
        "CAP",
        "Add a capability (repeatable)",
        None,
    ),
    v(
        "preserve-fds",
        None,
        "N",
        "Pass this many extra fds (after stdio) to the process",
        Some("0"),
    ),
    b(
        "ignore-paused",
        None,
        "Run the process even if the container is paused",
    ),
    v(
        "cgroup",
        None,
        "PATH",
        "Sub-cgroup to join (repeatable; accepted, not applied)",
        None,
    ),
];

const UPDATE_FLAGS: &[Flag] = &[
    v(
        "resources",
        Some(b'r'),
        "FILE",
        "JSON linux.resources from a file, or - for stdin",
        None,
    ),
    v("blkio-weight", None, "N", "Block IO weight (10-1000)", None),
    v("cpu-period", None, "US", "CPU CFS period", None),
    v("cpu-quota", None, "US", "CPU CFS quota (-1: none)", None),
    v("cpu-share", None, "N", "CPU shares", None),
    v("cpu-rt-period", None, "US", "CPU realtime period", None),
    v("cpu-rt-runtime", None, "US", "CPU realtime runtime", None),
    v(
        "cpuset-cpus",
        None,
        "LIST",
        "CPUs to run on (e.g. 0-3,5)",
        None,
    ),
    v("cpuset-mems", None, "LIST", "Memory nodes to use", None),
    v(
        "memory",
        None,
        "BYTES",
        "Memory limit (e.g. 512m, 1g; -1: none)",
        None,
    ),
    v(
        "memory-reservation",
        None,
        "BYTES",
        "Memory soft limit",
        None,
    ),
    v("memory-swap", None, "BYTES", "Memory plus swap limit", None),
    v("pids-limit", None, "N", "Maximum number of pids", None),
    v("kernel-memory", None, "BYTES", "Kernel memory limit", None),
    v(
        "kernel-memory-tcp",
        None,
        "BYTES",
        "Kernel TCP buffer limit",
        None,
    ),
    v(
        "l3-cache-schema",
        None,
        "SCHEMA",
        "Intel RDT L3 schema (not supported)",
        None,
    ),
    v(
        "mem-bw-schema",
        None,
        "SCHEMA",
        "Intel RDT memory bandwidth schema (not supported)",
        None,
    ),
];

/// Where the positionals end and the free-form tail begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// No tail: flags and positionals mix freely.
    None,
    /// Everything after the first positional (the id) is the tail.
    AfterId,
    /// Everything from the first positional or unknown flag on is the tail.
    All,
}

/// One command of the table.
#[derive(Debug)]
struct Command {
    name: &'static str,
    alias: Option<&'static str>,
    about: &'static str,
    /// Usage after `boxrun NAME`.
    usage: &'static str,
    flags: &'static [Flag],
    tail: Tail,
}

const fn cmd(
    name: &'static str,
    about: &'static str,
    usage: &'static str,
    flags: &'static [Flag],
) -> Command {
    Command {
        name,
        alias: None,
        about,
        usage,
        flags,
        tail: Tail::None,
    }
}

const COMMANDS: &[Command] = &[
    cmd(
        "create",
        "Create a container (the process waits for `start`)",
        "[OPTIONS] ID",
        &CREATE_FLAGS,
    ),
    cmd("start", "Start a created container", "[OPTIONS] ID", &[]),
    cmd(
        "run",
        "Create and start a container; wait for it unless --detach",
        "[OPTIONS] ID",
        RUN_FLAGS,
    ),
    cmd(
        "state",
        "Print a container's state as JSON",
        "[OPTIONS] ID",
        &[],
    ),
    cmd(
        "kill",
        "Send a signal to a container's init (default SIGTERM)",
        "[OPTIONS] ID [SIGNAL]",
        &[b(
            "all",
            Some(b'a'),
            "Signal every process in the container",
        )],
    ),
    cmd(
        "delete",
        "Delete a stopped container (--force: kill it first)",
        "[OPTIONS] ID",
        &[b(
            "force",
            Some(b'f'),
            "Kill the container first if it is still running",
        )],
    ),
    Command {
        name: "list",
        alias: Some("ls"),
        about: "List containers",
        usage: "[OPTIONS]",
        flags: &[FORMAT_FLAG, b("quiet", Some(b'q'), "Print only the ids")],
        tail: Tail::None,
    },
    cmd(
        "spec",
        "Write a default config.json",
        "[OPTIONS]",
        &[
            v(
                "bundle",
                Some(b'b'),
                "PATH",
                "Directory to write config.json in",
                Some("."),
            ),
            b("rootless", None, "Write a spec for a rootless container"),
        ],
    ),
    cmd(
        "features",
        "Print the OCI features document",
        "[OPTIONS]",
        &[],
    ),
    Command {
        name: "exec",
        alias: None,
        about: "Run a new process in a running container",
        usage: "[OPTIONS] ID [COMMAND [ARG]...]",
        flags: EXEC_FLAGS,
        tail: Tail::AfterId,
    },
    cmd(
        "pause",
        "Freeze every process of a container",
        "[OPTIONS] ID",
        &[],
    ),
    cmd("resume", "Thaw a paused container", "[OPTIONS] ID", &[]),
    Command {
        name: "ps",
        alias: None,
        about: "List the processes of a container",
        usage: "[OPTIONS] ID [PS_ARGS]...",
        flags: &[FORMAT_FLAG],
        tail: Tail::AfterId,
    },
    cmd(
        "events",
        "Print resource usage and OOM events",
        "[OPTIONS] ID",
        &[
            v(
                "interval",
                None,
                "DURATION",
                "Time between two stats reports (e.g. 500ms, 5s, 1m)",
                Some("5s"),
            ),
            b("stats", None, "Print the stats once and exit"),
        ],
    ),
    cmd(
        "update",
        "Change a running container's resource limits",
        "[OPTIONS] ID",
        UPDATE_FLAGS,
    ),
    Command {
        name: "checkpoint",
        alias: None,
        about: "Not supported: boxrun has no checkpoint/restore",
        usage: "[ARGS]...",
        flags: &[],
        tail: Tail::All,
    },
    Command {
        name: "restore",
        alias: None,
        about: "Not supported: boxrun has no checkpoint/restore",
        usage: "[ARGS]...",
        flags: &[],
        tail: Tail::All,
    },
];

fn find_command(name: &[u8]) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.name.as_bytes() == name || c.alias.is_some_and(|a| a.as_bytes() == name))
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

/// Go's `strconv.ParseBool`, which urfave/cli (and so runc's callers) use.
fn parse_bool(s: &[u8]) -> Option<bool> {
    match s {
        b"1" | b"t" | b"T" | b"true" | b"TRUE" | b"True" => Some(true),
        b"0" | b"f" | b"F" | b"false" | b"FALSE" | b"False" => Some(false),
        _ => None,
    }
}

/// Whether `s` may be taken as the value of the flag before it: anything but a flag.
/// `-` (stdin) and negative numbers (`-1`) are values.
fn is_value(s: &OsStr) -> bool {
    let b = s.as_bytes();
    b.len() < 2 || b[0] != b'-' || b[1].is_ascii_digit()
}

/// Whether `s` is a flag (or a cluster of short flags).
fn is_flag(s: &OsStr) -> bool {
    let b = s.as_bytes();
    b.len() > 1 && b[0] == b'-'
}

/// A flag's value as given.
#[derive(Debug, Clone)]
enum Val {
    Bool(bool),
    Str(OsString),
}

/// The flags given in one scope (global or the command's), in order.
#[derive(Debug, Default)]
struct Given {
    list: Vec<(&'static str, Val)>,
}

/// Reads typed values out of [`Given`]; `ctx` prefixes messages (`"create: "`), `see` is
/// the help to point at (`"boxrun create --help"`).
struct Reader<'a> {
    given: &'a Given,
    ctx: &'a str,
    see: &'a str,
}

/// The number types flags take, with how to say what is expected.
trait Num: std::str::FromStr {
    const WHAT: &'static str;
}
impl Num for u16 {
    const WHAT: &'static str = "a whole number from 0 to 65535";
}
impl Num for u32 {
    const WHAT: &'static str = "a whole number from 0 to 4294967295";
}
impl Num for u64 {
    const WHAT: &'static str = "a whole number, 0 or more";
}
impl Num for i64 {
    const WHAT: &'static str = "a whole number (may be negative)";
}

impl Reader<'_> {
    fn all(&self, long: &'static str) -> impl Iterator<Item = &OsString> + '_ {
        self.given.list.iter().filter_map(move |(l, v)| match v {
            Val::Str(s) if *l == long => Some(s),
            _ => None,
        })
    }
    fn on(&self, long: &'static str) -> bool {
        self.given
            .list
            .iter()
            .rev()
            .find_map(|(l, v)| match v {
                Val::Bool(b) if *l == long => Some(*b),
                _ => None,
            })
            .unwrap_or(false)
    }
    fn os(&self, long: &'static str) -> Option<&OsString> {
        self.all(long).last()
    }
    fn utf8(&self, long: &'static str, s: &OsString) -> Result<String, ArgError> {
        s.to_str().map(str::to_owned).ok_or_else(|| {
            ArgError(format!(
                "{}--{long} {}: the value is not valid utf-8",
                self.ctx,
                show(s)
            ))
        })
    }
    fn string(&self, long: &'static str) -> Result<Option<String>, ArgError> {
        self.os(long).map(|s| self.utf8(long, s)).transpose()
    }
    fn string_or(&self, long: &'static str, default: &str) -> Result<String, ArgError> {
        Ok(self.string(long)?.unwrap_or_else(|| default.to_owned()))
    }
    fn strings(&self, long: &'static str) -> Result<Vec<String>, ArgError> {
        self.all(long).map(|s| self.utf8(long, s)).collect()
    }
    fn path(&self, long: &'static str) -> Option<PathBuf> {
        self.os(long).map(PathBuf::from)
    }
    fn num_of<T: Num>(&self, long: &'static str, s: &OsString) -> Result<T, ArgError> {
        s.to_str().and_then(|t| t.parse().ok()).ok_or_else(|| {
            ArgError(format!(
                "{}bad value {} for --{long}: use {} (see {})",
                self.ctx,
                show(s),
                T::WHAT,
                self.see
            ))
        })
    }
    fn num<T: Num>(&self, long: &'static str) -> Result<Option<T>, ArgError> {
        self.os(long).map(|s| self.num_of(long, s)).transpose()
    }
    fn nums<T: Num>(&self, long: &'static str) -> Result<Vec<T>, ArgError> {
        self.all(long).map(|s| self.num_of(long, s)).collect()
    }
}

/// The positionals of a command, taken in order.
struct Positionals<'a> {
    items: std::vec::IntoIter<OsString>,
    cmd: &'a Command,
}

impl Positionals<'_> {
    fn usage(&self) -> String {
        format!(
            "usage: boxrun {} {}",
            self.cmd.name,
            self.cmd.usage.to_lowercase()
        )
    }
    fn utf8(&self, what: &str, s: OsString) -> Result<String, ArgError> {
        s.into_string().map_err(|s| {
            ArgError(format!(
                "{}: {what} {} is not valid utf-8",
                self.cmd.name,
                show(&s)
            ))
        })
    }
    fn required(&mut self, what: &str) -> Result<String, ArgError> {
        match self.items.next() {
            Some(s) => self.utf8(what, s),
            None => Err(ArgError(format!(
                "{}: missing {what} ({})",
                self.cmd.name,
                self.usage()
            ))),
        }
    }
    fn optional(&mut self, what: &str) -> Result<Option<String>, ArgError> {
        self.items.next().map(|s| self.utf8(what, s)).transpose()
    }
    fn rest(&mut self, what: &str) -> Result<Vec<String>, ArgError> {
        let items: Vec<OsString> = self.items.by_ref().collect();
        items.into_iter().map(|s| self.utf8(what, s)).collect()
    }
    fn finish(mut self) -> Result<(), ArgError> {
        match self.items.next() {
            None => Ok(()),
            Some(s) => Err(ArgError(format!(
                "{}: unexpected argument {} ({})",
                self.cmd.name,
                show(&s),
                self.usage()
            ))),
        }
    }
}

/// What one flag token turned out to be.
enum FlagOutcome {
    Done,
    Help,
    Unknown,
}

/// Which scope a flag was found in.
enum Scope {
    Global,
    Local,
}

/// Walks the arguments.
struct Scanner {
    args: Vec<OsString>,
    i: usize,
    /// The command being parsed; `None` before it.
    cmd: Option<&'static Command>,
}

impl Scanner {
    fn ctx(&self) -> String {
        self.cmd
            .map(|c| format!("{}: ", c.name))
            .unwrap_or_default()
    }
    fn see(&self) -> String {
        match self.cmd {
            Some(c) => format!("boxrun {} --help", c.name),
            None => "boxrun --help".into(),
        }
    }
    fn lookup(&self, mut hit: impl FnMut(&Flag) -> bool) -> Option<(Scope, &'static Flag)> {
        if let Some(c) = self.cmd {
            if let Some(f) = c.flags.iter().find(|f| hit(f)) {
                return Some((Scope::Local, f));
            }
        } else if hit(&VERSION) {
            return Some((Scope::Global, &VERSION));
        }
        GLOBAL.iter().find(|f| hit(f)).map(|f| (Scope::Global, f))
    }
    /// The value of `f` from the next argument.
    fn next_value(&mut self, f: &Flag) -> Result<OsString, ArgError> {
        match self.args.get(self.i) {
            Some(s) if is_value(s) => {
                self.i += 1;
                Ok(s.clone())
            }
            _ => Err(ArgError(format!(
                "{}missing value for --{} (use --{} <{}>; see {})",
                self.ctx(),
                f.long,
                f.long,
                f.meta.to_lowercase(),
                self.see()
            ))),
        }
    }
    fn bool_value(&self, f: &Flag, s: &[u8]) -> Result<bool, ArgError> {
        parse_bool(s).ok_or_else(|| {
            ArgError(format!(
                "{}bad value {} for --{}: use --{}, --{}=true or --{}=false",
                self.ctx(),
                show(OsStr::from_bytes(s)),
                f.long,
                f.long,
                f.long,
                f.long
            ))
        })
    }
    fn unknown(&self, tok: &OsStr) -> ArgError {
        let name = tok
            .as_bytes()
            .split(|&c| c == b'=')
            .next()
            .unwrap_or_default();
        let name = OsStr::from_bytes(name);
        let hint = match self.cmd {
            None if COMMANDS.iter().any(|c| {
                c.flags
                    .iter()
                    .any(|f| name.as_bytes() == format!("--{}", f.long).as_bytes())
            }) =>
            {
                "; command flags go after the command"
            }
            _ => "",
        };
        ArgError(format!(
            "{}unknown flag {} (see {}{hint})",
            self.ctx(),
            show(name),
            self.see()
        ))
    }
    /// Parses the flag token `tok` (already consumed), and its value if it takes one.
    fn flag(
        &mut self,
        tok: &OsStr,
        global: &mut Given,
        local: &mut Given,
    ) -> Result<FlagOutcome, ArgError> {
        let b = tok.as_bytes();
        let mut found = Vec::new();
        if let Some(body) = b.strip_prefix(b"--") {
            let (name, inline) = match body.iter().position(|&c| c == b'=') {
                Some(p) => (&body[..p], Some(&body[p + 1..])),
                None => (body, None),
            };
            if name == b"help" {
                return Ok(FlagOutcome::Help);
            }
            let Some((scope, f)) = self.lookup(|f| f.long.as_bytes() == name) else {
                return Ok(FlagOutcome::Unknown);
            };
            let val = match (f.takes, inline) {
                (Takes::Nothing, None) => Val::Bool(true),
                (Takes::Nothing, Some(s)) => Val::Bool(self.bool_value(f, s)?),
                (_, Some(s)) => Val::Str(OsStr::from_bytes(s).to_owned()),
                (Takes::Value, None) => Val::Str(self.next_value(f)?),
                (Takes::Optional, None) => {
                    let given = self
                        .args
                        .get(self.i)
                        .filter(|s| matches!(s.as_bytes(), b"true" | b"false" | b"auto"))
                        .cloned();
                    if given.is_some() {
                        self.i += 1;
                    }
                    Val::Str(given.unwrap_or_else(|| "auto".into()))
                }
            };
            found.push((scope, f.long, val));
        } else {
            let body = &b[1..];
            let mut k = 0;
            while k < body.len() {
                let c = body[k];
                k += 1;
                if c == b'h' {
                    return Ok(FlagOutcome::Help);
                }
                let Some((scope, f)) = self.lookup(|f| f.short == Some(c)) else {
                    if k == 1 {
                        return Ok(FlagOutcome::Unknown);
                    }
                    let one = [b'-', c];
                    return Err(ArgError(format!(
                        "{}unknown flag {} in {} (see {})",
                        self.ctx(),
                        show(OsStr::from_bytes(&one)),
                        show(tok),
                        self.see()
                    )));
                };
                let val = if f.takes == Takes::Nothing {
                    if body.get(k) == Some(&b'=') {
                        let v = self.bool_value(f, &body[k + 1..])?;
                        k = body.len();
                        Val::Bool(v)
                    } else {
                        Val::Bool(true)
                    }
                } else {
                    let rest = &body[k..];
                    let rest = rest.strip_prefix(b"=").unwrap_or(rest);
                    k = body.len();
                    if rest.is_empty() {
                        Val::Str(self.next_value(f)?)
                    } else {
                        Val::Str(OsStr::from_bytes(rest).to_owned())
                    }
                };
                found.push((scope, f.long, val));
            }
        }
        for (scope, long, val) in found {
            match scope {
                Scope::Global => global.list.push((long, val)),
                Scope::Local => local.list.push((long, val)),
            }
        }
        Ok(FlagOutcome::Done)
    }
}

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Parsed, ArgError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut sc = Scanner {
        args: args.into_iter().map(Into::into).collect(),
        i: 0,
        cmd: None,
    };
    let mut global = Given::default();
    let mut local = Given::default();

    // Global flags, then the command name.
    let mut name = None;
    while let Some(a) = sc.args.get(sc.i).cloned() {
        sc.i += 1;
        if a == "--" {
            name = sc.args.get(sc.i).cloned();
            sc.i += 1;
            break;
        }
        if is_flag(&a) {
            match sc.flag(&a, &mut global, &mut local)? {
                FlagOutcome::Done => continue,
                FlagOutcome::Help => return Ok(Parsed::Help(top_help())),
                FlagOutcome::Unknown => return Err(sc.unknown(&a)),
            }
        }
        name = Some(a);
        break;
    }
    let cmd = match &name {
        None => None,
        Some(n) if n == "help" => return help_command(&sc.args[sc.i..]),
        Some(n) => Some(find_command(n.as_bytes()).ok_or_else(|| {
            ArgError(format!(
                "unknown command {} (see boxrun --help for the list)",
                show(n)
            ))
        })?),
    };

    // The command's flags (and global ones) and positionals.
    let mut pos = Vec::new();
    if let Some(c) = cmd {
        sc.cmd = Some(c);
        let mut dashdash = false;
        let mut tail = false;
        let mut skip_dashdash = false;
        while let Some(a) = sc.args.get(sc.i).cloned() {
            sc.i += 1;
            if tail {
                // `exec ID -- CMD`: the `--` right after the id only separates.
                if std::mem::take(&mut skip_dashdash) && a == "--" {
                    continue;
                }
                pos.push(a);
                continue;
            }
            if !dashdash && a == "--" {
                dashdash = true;
                continue;
            }
            if !dashdash && is_flag(&a) {
                match sc.flag(&a, &mut global, &mut local)? {
                    FlagOutcome::Done => continue,
                    FlagOutcome::Help => return Ok(Parsed::Help(command_help(c))),
                    FlagOutcome::Unknown if c.tail == Tail::All => {
                        tail = true;
                        pos.push(a);
                        continue;
                    }
                    FlagOutcome::Unknown => return Err(sc.unknown(&a)),
                }
            }
            pos.push(a);
            match c.tail {
                Tail::None => {}
                Tail::AfterId => {
                    tail = true;
                    skip_dashdash = !dashdash;
                }
                Tail::All => tail = true,
            }
        }
    }

    let g = Reader {
        given: &global,
        ctx: "",
        see: "boxrun --help",
    };
    let mut cli = Cli {
        root: g.path("root").unwrap_or_else(|| "/run/boxrun".into()),
        log: g.string_or("log", "")?,
        log_format: g.string_or("log-format", "text")?,
        debug: g.on("debug"),
        systemd_cgroup: g.on("systemd-cgroup"),
        rootless: g.string("rootless")?,
        criu: g.string("criu")?,
        version: g.on("version"),
        cmd: None,
    };
    if let Some(c) = cmd {
        let ctx = format!("{}: ", c.name);
        let see = format!("boxrun {} --help", c.name);
        let l = Reader {
            given: &local,
            ctx: &ctx,
            see: &see,
        };
        let p = Positionals {
            items: pos.into_iter(),
            cmd: c,
        };
        cli.cmd = Some(build(c, &l, p)?);
    }
    Ok(Parsed::Run(Box::new(cli)))
}

fn create_args(l: &Reader<'_>, p: &mut Positionals<'_>) -> Result<CreateArgs, ArgError> {
    Ok(CreateArgs {
        bundle: l.path("bundle").unwrap_or_else(|| ".".into()),
        console_socket: l.path("console-socket"),
        pid_file: l.path("pid-file"),
        no_pivot: l.on("no-pivot"),
        no_new_keyring: l.on("no-new-keyring"),
        preserve_fds: l.num("preserve-fds")?.unwrap_or(0),
        id: p.required("container id")?,
    })
}

/// Builds the typed command from its flags and positionals.
fn build(c: &Command, l: &Reader<'_>, mut p: Positionals<'_>) -> Result<Cmd, ArgError> {
    const ID: &str = "container id";
    let cmd = match c.name {
        "create" => Cmd::Create(create_args(l, &mut p)?),
        "start" => Cmd::Start {
            id: p.required(ID)?,
        },
        "run" => Cmd::Run {
            c: create_args(l, &mut p)?,
            detach: l.on("detach"),
            keep: l.on("keep"),
        },
        "state" => Cmd::State {
            id: p.required(ID)?,
        },
        "kill" => Cmd::Kill {
            all: l.on("all"),
            id: p.required(ID)?,
            signal: p.optional("signal")?.unwrap_or_else(|| "SIGTERM".into()),
        },
        "delete" => Cmd::Delete {
            force: l.on("force"),
            id: p.required(ID)?,
        },
        "list" => Cmd::List {
            format: l.string_or("format", "table")?,
            quiet: l.on("quiet"),
        },
        "spec" => Cmd::Spec {
            bundle: l.path("bundle").unwrap_or_else(|| ".".into()),
            rootless: l.on("rootless"),
        },
        "features" => Cmd::Features,
        "exec" => Cmd::Exec(ExecArgs {
            console_socket: l.path("console-socket"),
            cwd: l.path("cwd"),
            env: l.strings("env")?,
            tty: l.on("tty"),
            user: l.string("user")?,
            additional_gids: l.nums("additional-gids")?,
            process: l.path("process"),
            detach: l.on("detach"),
            pid_file: l.path("pid-file"),
            process_label: l.string("process-label")?,
            apparmor: l.string("apparmor")?,
            no_new_privs: l.on("no-new-privs"),
            cap: l.strings("cap")?,
            preserve_fds: l.num("preserve-fds")?.unwrap_or(0),
            ignore_paused: l.on("ignore-paused"),
            cgroup: l.strings("cgroup")?,
            id: p.required(ID)?,
            command: p.rest("command argument")?,
        }),
        "pause" => Cmd::Pause {
            id: p.required(ID)?,
        },
        "resume" => Cmd::Resume {
            id: p.required(ID)?,
        },
        "ps" => Cmd::Ps {
            format: l.string_or("format", "table")?,
            id: p.required(ID)?,
            ps_args: p.rest("ps argument")?,
        },
        "events" => Cmd::Events {
            interval: l.string_or("interval", "5s")?,
            stats: l.on("stats"),
            id: p.required(ID)?,
        },
        "update" => Cmd::Update(UpdateArgs {
            resources: l.string("resources")?,
            blkio_weight: l.num("blkio-weight")?,
            cpu_period: l.num("cpu-period")?,
            cpu_quota: l.num("cpu-quota")?,
            cpu_share: l.num("cpu-share")?,
            cpu_rt_period: l.num("cpu-rt-period")?,
            cpu_rt_runtime: l.num("cpu-rt-runtime")?,
            cpuset_cpus: l.string("cpuset-cpus")?,
            cpuset_mems: l.string("cpuset-mems")?,
            memory: l.string("memory")?,
            memory_reservation: l.string("memory-reservation")?,
            memory_swap: l.string("memory-swap")?,
            pids_limit: l.num("pids-limit")?,
            kernel_memory: l.string("kernel-memory")?,
            kernel_memory_tcp: l.string("kernel-memory-tcp")?,
            l3_cache_schema: l.string("l3-cache-schema")?,
            mem_bw_schema: l.string("mem-bw-schema")?,
            id: p.required(ID)?,
        }),
        "checkpoint" => Cmd::Checkpoint {
            rest: p.rest("argument")?,
        },
        _ => Cmd::Restore {
            rest: p.rest("argument")?,
        },
    };
    p.finish()?;
    Ok(cmd)
}

/// `boxrun help [COMMAND]`.
fn help_command(rest: &[OsString]) -> Result<Parsed, ArgError> {
    match rest {
        [] => Ok(Parsed::Help(top_help())),
        [name] => find_command(name.as_bytes())
            .map(|c| Parsed::Help(command_help(c)))
            .ok_or_else(|| {
                ArgError(format!(
                    "help: unknown command {} (see boxrun --help for the list)",
                    show(name)
                ))
            }),
        [_, extra, ..] => Err(ArgError(format!(
            "help: unexpected argument {} (usage: boxrun help [COMMAND])",
            show(extra)
        ))),
    }
}

/// The left column of a flag's help line.
fn flag_left(f: &Flag) -> String {
    let short = match f.short {
        Some(c) => format!("-{}, ", c as char),
        None => "    ".into(),
    };
    let value = match f.takes {
        Takes::Nothing => String::new(),
        Takes::Value => format!(" {}", f.meta),
        Takes::Optional => format!("[={}]", f.meta),
    };
    format!("{short}--{}{value}", f.long)
}

/// Appends `rows` as an aligned two-column list.
fn table(out: &mut String, rows: &[(String, String)]) {
    let w = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (l, r) in rows {
        out.push_str(format!("  {l:<w$}  {r}").trim_end());
        out.push('\n');
    }
}

fn flag_rows<'a>(flags: impl Iterator<Item = &'a Flag>) -> Vec<(String, String)> {
    flags
        .filter(|f| !f.hidden)
        .map(|f| {
            let right = match f.default {
                Some(d) => format!("{} [default: {d}]", f.help),
                None => f.help.to_owned(),
            };
            (flag_left(f), right)
        })
        .collect()
}

/// `boxrun --help`.
fn top_help() -> String {
    let mut s = String::from(
        "boxrun: a fast, runc-compatible OCI runtime\n\n\
         Usage: boxrun [OPTIONS] COMMAND [ARGS]...\n\nCommands:\n",
    );
    let mut rows: Vec<(String, String)> = COMMANDS
        .iter()
        .map(|c| {
            let about = match c.alias {
                Some(a) => format!("{} (alias: {a})", c.about),
                None => c.about.to_owned(),
            };
            (c.name.to_owned(), about)
        })
        .collect();
    rows.push((
        "help".into(),
        "Print this message or the help of the given command".into(),
    ));
    table(&mut s, &rows);
    s.push_str("\nOptions (all but --version also work after the command):\n");
    let mut rows = flag_rows(GLOBAL.iter().chain([&VERSION]));
    rows.push(("-h, --help".into(), "Print help".into()));
    table(&mut s, &rows);
    s.push_str("\nRun 'boxrun COMMAND --help' for the flags of a command.\n");
    s
}

/// `boxrun COMMAND --help`.
fn command_help(c: &Command) -> String {
    let mut s = format!("{}\n\nUsage: boxrun {} {}\n", c.about, c.name, c.usage);
    if let Some(a) = c.alias {
        s.push_str(&format!("Alias: {a}\n"));
    }
    s.push_str("\nOptions:\n");
    let mut rows = flag_rows(c.flags.iter());
    rows.push(("-h, --help".into(), "Print help".into()));
    table(&mut s, &rows);
    s.push_str(
        "\nGlobal options (--root, --log, --log-format, --debug, --systemd-cgroup, --rootless)\n\
         go before or after the command: see boxrun --help.\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(args: &[&str]) -> Cli {
        match parse(args.iter().copied()) {
            Ok(Parsed::Run(c)) => *c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn cmd_of(args: &[&str]) -> Cmd {
        ok(args).cmd.expect("a command")
    }

    fn err(args: &[&str]) -> String {
        match parse(args.iter().copied()) {
            Err(e) => {
                let s = e.to_string();
                assert!(!s.contains('\n'), "{args:?}: not one line: {s}");
                assert_eq!(s, s.to_lowercase(), "{args:?}: not lower case: {s}");
                s
            }
            other => panic!("{args:?}: expected an error, got {other:?}"),
        }
    }

    fn help_of(args: &[&str]) -> String {
        match parse(args.iter().copied()) {
            Ok(Parsed::Help(h)) => h,
            other => panic!("{args:?}: expected help, got {other:?}"),
        }
    }

    /// Every spelling of a value flag: `--x v`, `--x=v` and the short forms if any.
    fn spellings(long: &str, short: Option<char>, value: &str) -> Vec<Vec<String>> {
        let mut v = vec![
            vec![format!("--{long}"), value.to_owned()],
            vec![format!("--{long}={value}")],
        ];
        if let Some(c) = short {
            v.push(vec![format!("-{c}"), value.to_owned()]);
            v.push(vec![format!("-{c}{value}")]);
            v.push(vec![format!("-{c}={value}")]);
        }
        v
    }

    fn with(pre: &[&str], mid: &[String], post: &[&str]) -> Cli {
        let all: Vec<&str> = pre
            .iter()
            .copied()
            .chain(mid.iter().map(String::as_str))
            .chain(post.iter().copied())
            .collect();
        ok(&all)
    }

    fn create(id: &str, bundle: &str) -> CreateArgs {
        CreateArgs {
            bundle: bundle.into(),
            console_socket: None,
            pid_file: None,
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
            id: id.into(),
        }
    }

    #[test]
    fn defaults() {
        let c = ok(&["state", "x"]);
        assert_eq!(c.root, PathBuf::from("/run/boxrun"));
        assert_eq!(c.log, "");
        assert_eq!(c.log_format, "text");
        assert!(!c.debug && !c.systemd_cgroup && !c.version);
        assert_eq!(c.rootless, None);
        assert_eq!(c.criu, None);
        assert_eq!(c.cmd, Some(Cmd::State { id: "x".into() }));
        assert_eq!(ok(&[]), Cli::default());
    }

    #[test]
    fn create_and_run_flags() {
        for sp in spellings("bundle", Some('b'), "/b") {
            assert_eq!(
                with(&["create"], &sp, &["c1"]).cmd,
                Some(Cmd::Create(create("c1", "/b")))
            );
            // Flags after the id work too.
            assert_eq!(
                with(&["create", "c1"], &sp, &[]).cmd,
                Some(Cmd::Create(create("c1", "/b")))
            );
        }
        for sp in spellings("console-socket", None, "/s") {
            let Some(Cmd::Create(a)) = with(&["create"], &sp, &["c"]).cmd else {
                panic!()
            };
            assert_eq!(a.console_socket, Some("/s".into()));
        }
        for sp in spellings("pid-file", None, "/p") {
            let Some(Cmd::Create(a)) = with(&["create"], &sp, &["c"]).cmd else {
                panic!()
            };
            assert_eq!(a.pid_file, Some("/p".into()));
        }
        for sp in spellings("preserve-fds", None, "3") {
            let Some(Cmd::Run { c, .. }) = with(&["run"], &sp, &["c"]).cmd else {
                panic!()
            };
            assert_eq!(c.preserve_fds, 3);
        }
        let Cmd::Create(a) = cmd_of(&["create", "--no-pivot", "--no-new-keyring", "c"]) else {
            panic!()
        };
        assert!(a.no_pivot && a.no_new_keyring);
        assert_eq!(a.bundle, PathBuf::from("."));

        assert_eq!(
            cmd_of(&["run", "-d", "--keep", "-b", "/b", "r"]),
            Cmd::Run {
                c: create("r", "/b"),
                detach: true,
                keep: true
            }
        );
        assert_eq!(
            cmd_of(&["run", "r"]),
            Cmd::Run {
                c: create("r", "."),
                detach: false,
                keep: false
            }
        );
        // A short bool followed by a short value flag in one cluster.
        let Cmd::Run { c, detach, .. } = cmd_of(&["run", "-db/x", "r"]) else {
            panic!()
        };
        assert!(detach);
        assert_eq!(c.bundle, PathBuf::from("/x"));
    }

    #[test]
    fn bool_flags_take_true_and_false() {
        for (arg, want) in [
            ("--detach=true", true),
            ("--detach=false", false),
            ("--detach=1", true),
            ("--detach=0", false),
            ("-d=true", true),
            ("-d=false", false),
        ] {
            let Cmd::Run { detach, .. } = cmd_of(&["run", arg, "r"]) else {
                panic!()
            };
            assert_eq!(detach, want, "{arg}");
        }
        let Cmd::Delete { force, .. } = cmd_of(&["delete", "--force=false", "x"]) else {
            panic!()
        };
        assert!(!force);
        assert!(ok(&["--debug=true", "list"]).debug);
        assert!(!ok(&["--debug=false", "list"]).debug);
        // The last one wins.
        assert!(!ok(&["--debug", "list", "--debug=false"]).debug);
        let e = err(&["run", "--detach=maybe", "r"]);
        assert!(
            e.contains("--detach") && e.contains("maybe") && e.starts_with("run: "),
            "{e}"
        );
    }

    #[test]
    fn simple_id_commands() {
        assert_eq!(cmd_of(&["start", "a"]), Cmd::Start { id: "a".into() });
        assert_eq!(cmd_of(&["state", "a"]), Cmd::State { id: "a".into() });
        assert_eq!(cmd_of(&["pause", "a"]), Cmd::Pause { id: "a".into() });
        assert_eq!(cmd_of(&["resume", "a"]), Cmd::Resume { id: "a".into() });
        assert_eq!(cmd_of(&["features"]), Cmd::Features);
        // `--` lets an id start with a dash.
        assert_eq!(
            cmd_of(&["start", "--", "-a"]),
            Cmd::Start { id: "-a".into() }
        );
    }

    #[test]
    fn kill_and_delete() {
        assert_eq!(
            cmd_of(&["kill", "k"]),
            Cmd::Kill {
                all: false,
                id: "k".into(),
                signal: "SIGTERM".into()
            }
        );
        for args in [
            &["kill", "--all", "k", "KILL"][..],
            &["kill", "-a", "k", "KILL"],
            &["kill", "k", "KILL", "--all"],
            &["kill", "--all=true", "k", "KILL"],
        ] {
            assert_eq!(
                cmd_of(args),
                Cmd::Kill {
                    all: true,
                    id: "k".into(),
                    signal: "KILL".into()
                },
                "{args:?}"
            );
        }
        for args in [&["delete", "-f", "x"][..], &["delete", "x", "--force"]] {
            assert_eq!(
                cmd_of(args),
                Cmd::Delete {
                    force: true,
                    id: "x".into()
                }
            );
        }
    }

    #[test]
    fn list_and_alias() {
        for name in ["list", "ls"] {
            assert_eq!(
                cmd_of(&[name]),
                Cmd::List {
                    format: "table".into(),
                    quiet: false
                }
            );
            for sp in spellings("format", Some('f'), "json") {
                assert_eq!(
                    with(&[name], &sp, &["-q"]).cmd,
                    Some(Cmd::List {
                        format: "json".into(),
                        quiet: true
                    })
                );
            }
        }
        // Clustered: a bool then a value flag.
        assert_eq!(
            cmd_of(&["list", "-qfjson"]),
            Cmd::List {
                format: "json".into(),
                quiet: true
            }
        );
        assert_eq!(
            cmd_of(&["list", "--quiet", "--format="]),
            Cmd::List {
                format: "".into(),
                quiet: true
            }
        );
    }

    #[test]
    fn spec_has_its_own_rootless() {
        assert_eq!(
            cmd_of(&["spec"]),
            Cmd::Spec {
                bundle: ".".into(),
                rootless: false
            }
        );
        for sp in spellings("bundle", Some('b'), "/b") {
            let c = with(&["spec"], &sp, &["--rootless"]);
            assert_eq!(
                c.cmd,
                Some(Cmd::Spec {
                    bundle: "/b".into(),
                    rootless: true
                })
            );
            // After `spec`, --rootless is spec's flag, not the global one.
            assert_eq!(c.rootless, None);
        }
        let c = ok(&["--rootless", "spec"]);
        assert_eq!(c.rootless.as_deref(), Some("auto"));
        assert_eq!(
            c.cmd,
            Some(Cmd::Spec {
                bundle: ".".into(),
                rootless: false
            })
        );
        let Cmd::Spec { rootless, .. } = cmd_of(&["spec", "--rootless=false"]) else {
            panic!()
        };
        assert!(!rootless);
    }

    #[test]
    fn exec_flags() {
        let base = |id: &str, cmd: &[&str]| ExecArgs {
            id: id.into(),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            ..ExecArgs::default()
        };
        for sp in spellings("env", Some('e'), "A=1") {
            let Cmd::Exec(a) = with(&["exec"], &sp, &["x", "sh"]).cmd.expect("cmd") else {
                panic!()
            };
            assert_eq!(a.env, vec!["A=1"]);
        }
        for sp in spellings("user", Some('u'), "1:2") {
            let Cmd::Exec(a) = with(&["exec"], &sp, &["x", "sh"]).cmd.expect("cmd") else {
                panic!()
            };
            assert_eq!(a.user.as_deref(), Some("1:2"));
        }
        for sp in spellings("additional-gids", Some('g'), "7") {
            let Cmd::Exec(a) = with(&["exec"], &sp, &["x", "sh"]).cmd.expect("cmd") else {
                panic!()
            };
            assert_eq!(a.additional_gids, vec![7]);
        }
        for sp in spellings("process", Some('p'), "/p.json") {
            let Cmd::Exec(a) = with(&["exec"], &sp, &["x"]).cmd.expect("cmd") else {
                panic!()
            };
            assert_eq!(a.process, Some("/p.json".into()));
            assert!(a.command.is_empty());
        }
        for sp in spellings("cap", Some('c'), "CAP_NET_ADMIN") {
            let Cmd::Exec(a) = with(&["exec"], &sp, &["x", "sh"]).cmd.expect("cmd") else {
                panic!()
            };
            assert_eq!(a.cap, vec!["CAP_NET_ADMIN"]);
        }
        let Cmd::Exec(a) = cmd_of(&[
            "exec",
            "--console-socket",
            "/s",
            "--cwd=/w",
            "-t",
            "-d",
            "--pid-file",
            "/p",
            "--process-label=l",
            "--apparmor",
            "prof",
            "--no-new-privs",
            "--preserve-fds",
            "2",
            "--ignore-paused",
            "--cgroup",
            "a",
            "--cgroup=b",
            "-e",
            "A=1",
            "--env=B=2",
            "-eC=3",
            "-g",
            "1",
            "--additional-gids=2",
            "-c",
            "CAP_A",
            "--cap=CAP_B",
            "x",
            "sh",
        ]) else {
            panic!()
        };
        assert_eq!(
            a,
            ExecArgs {
                console_socket: Some("/s".into()),
                cwd: Some("/w".into()),
                env: vec!["A=1".into(), "B=2".into(), "C=3".into()],
                tty: true,
                user: None,
                additional_gids: vec![1, 2],
                process: None,
                detach: true,
                pid_file: Some("/p".into()),
                process_label: Some("l".into()),
                apparmor: Some("prof".into()),
                no_new_privs: true,
                cap: vec!["CAP_A".into(), "CAP_B".into()],
                preserve_fds: 2,
                ignore_paused: true,
                cgroup: vec!["a".into(), "b".into()],
                ..base("x", &["sh"])
            }
        );
        // Clustered short bools.
        let Cmd::Exec(a) = cmd_of(&["exec", "-td", "x", "sh"]) else {
            panic!()
        };
        assert!(a.tty && a.detach);
    }

    #[test]
    fn exec_command_is_everything_after_the_id() {
        let command = |args: &[&str]| match cmd_of(args) {
            Cmd::Exec(a) => (a.id, a.command, a.tty),
            other => panic!("{other:?}"),
        };
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command(&["exec", "id", "sh", "-c", "x"]),
            ("id".into(), v(&["sh", "-c", "x"]), false)
        );
        assert_eq!(
            command(&["exec", "-t", "id", "ls", "-la"]),
            ("id".into(), v(&["ls", "-la"]), true)
        );
        // Flag-looking words after the id are the command's, even boxrun's own flags.
        assert_eq!(
            command(&["exec", "id", "--tty", "--root", "/x", "-h"]),
            ("id".into(), v(&["--tty", "--root", "/x", "-h"]), false)
        );
        // `--` before the id, or right after it, only separates.
        assert_eq!(
            command(&["exec", "--", "id", "sh"]),
            ("id".into(), v(&["sh"]), false)
        );
        assert_eq!(
            command(&["exec", "id", "--", "sh", "--", "x"]),
            ("id".into(), v(&["sh", "--", "x"]), false)
        );
        assert_eq!(
            command(&["exec", "--", "id", "--", "sh"]),
            ("id".into(), v(&["--", "sh"]), false)
        );
        assert_eq!(command(&["exec", "id"]), ("id".into(), vec![], false));
        // Global flags before the id.
        let c = ok(&["exec", "--root", "/r", "--debug", "id", "sh"]);
        assert_eq!(c.root, PathBuf::from("/r"));
        assert!(c.debug);
    }

    #[test]
    fn ps_and_events() {
        assert_eq!(
            cmd_of(&["ps", "p"]),
            Cmd::Ps {
                format: "table".into(),
                id: "p".into(),
                ps_args: vec![]
            }
        );
        for sp in spellings("format", Some('f'), "json") {
            assert_eq!(
                with(&["ps"], &sp, &["p", "-ef", "--forest"]).cmd,
                Some(Cmd::Ps {
                    format: "json".into(),
                    id: "p".into(),
                    ps_args: vec!["-ef".into(), "--forest".into()]
                })
            );
        }
        assert_eq!(
            cmd_of(&["events", "e"]),
            Cmd::Events {
                interval: "5s".into(),
                stats: false,
                id: "e".into()
            }
        );
        for sp in spellings("interval", None, "1m") {
            assert_eq!(
                with(&["events"], &sp, &["--stats", "e"]).cmd,
                Some(Cmd::Events {
                    interval: "1m".into(),
                    stats: true,
                    id: "e".into()
                })
            );
        }
    }

    #[test]
    fn update_flags() {
        let Cmd::Update(u) = cmd_of(&[
            "update",
            "--blkio-weight",
            "500",
            "--cpu-period=100000",
            "--cpu-quota",
            "-1",
            "--cpu-share",
            "1024",
            "--cpu-rt-period=1000",
            "--cpu-rt-runtime=-5",
            "--cpuset-cpus",
            "0-1",
            "--cpuset-mems=0",
            "--memory",
            "128m",
            "--memory-reservation=64m",
            "--memory-swap",
            "-1",
            "--pids-limit",
            "64",
            "--kernel-memory=1g",
            "--kernel-memory-tcp",
            "1m",
            "--l3-cache-schema=L3:0=f",
            "--mem-bw-schema",
            "MB:0=20",
            "u",
        ]) else {
            panic!()
        };
        assert_eq!(
            u,
            UpdateArgs {
                resources: None,
                blkio_weight: Some(500),
                cpu_period: Some(100000),
                cpu_quota: Some(-1),
                cpu_share: Some(1024),
                cpu_rt_period: Some(1000),
                cpu_rt_runtime: Some(-5),
                cpuset_cpus: Some("0-1".into()),
                cpuset_mems: Some("0".into()),
                memory: Some("128m".into()),
                memory_reservation: Some("64m".into()),
                memory_swap: Some("-1".into()),
                pids_limit: Some(64),
                kernel_memory: Some("1g".into()),
                kernel_memory_tcp: Some("1m".into()),
                l3_cache_schema: Some("L3:0=f".into()),
                mem_bw_schema: Some("MB:0=20".into()),
                id: "u".into(),
            }
        );
        for sp in spellings("resources", Some('r'), "-") {
            let Some(Cmd::Update(u)) = with(&["update"], &sp, &["u"]).cmd else {
                panic!()
            };
            assert_eq!(u.resources.as_deref(), Some("-"));
        }
        assert_eq!(
            cmd_of(&["update", "u"]),
            Cmd::Update(UpdateArgs {
                id: "u".into(),
                ..UpdateArgs::default()
            })
        );
    }

    #[test]
    fn checkpoint_and_restore_take_anything() {
        assert_eq!(
            cmd_of(&["checkpoint", "--image-path", "x", "id"]),
            Cmd::Checkpoint {
                rest: vec!["--image-path".into(), "x".into(), "id".into()]
            }
        );
        assert_eq!(cmd_of(&["restore"]), Cmd::Restore { rest: vec![] });
        let c = ok(&["restore", "--root", "/r", "id", "--debug"]);
        assert_eq!(c.root, PathBuf::from("/r"));
        assert!(!c.debug);
        assert_eq!(
            c.cmd,
            Some(Cmd::Restore {
                rest: vec!["id".into(), "--debug".into()]
            })
        );
    }

    #[test]
    fn global_flags_before_and_after_the_command() {
        let check = |c: Cli| {
            assert_eq!(c.root, PathBuf::from("/r"));
            assert_eq!(c.log, "/l");
            assert_eq!(c.log_format, "json");
            assert!(c.debug);
            assert!(c.systemd_cgroup);
            assert_eq!(c.criu.as_deref(), Some("/c"));
            assert_eq!(c.cmd, Some(Cmd::State { id: "s".into() }));
        };
        let flags = [
            "--root",
            "/r",
            "--log=/l",
            "--log-format",
            "json",
            "--debug",
            "--systemd-cgroup",
            "--criu",
            "/c",
        ];
        let mut before = flags.to_vec();
        before.extend(["state", "s"]);
        check(ok(&before));
        let mut after = vec!["state"];
        after.extend(flags);
        after.push("s");
        check(ok(&after));
        // After the positional too (clap allowed that for commands without a tail).
        let mut last = vec!["state", "s"];
        last.extend(flags);
        check(ok(&last));
        // Split, with `=` forms.
        check(ok(&[
            "--root=/r",
            "--log-format=json",
            "state",
            "--log",
            "/l",
            "--debug",
            "--systemd-cgroup",
            "--criu=/c",
            "s",
        ]));
        // The later one wins.
        assert_eq!(
            ok(&["--root", "/a", "list", "--root", "/b"]).root,
            PathBuf::from("/b")
        );
    }

    #[test]
    fn rootless_with_and_without_value() {
        assert_eq!(
            ok(&["--rootless", "list"]).rootless.as_deref(),
            Some("auto")
        );
        assert_eq!(
            ok(&["--rootless=true", "list"]).rootless.as_deref(),
            Some("true")
        );
        assert_eq!(
            ok(&["--rootless", "false", "list"]).rootless.as_deref(),
            Some("false")
        );
        let c = ok(&["--rootless", "list"]);
        assert_eq!(
            c.cmd,
            Some(Cmd::List {
                format: "table".into(),
                quiet: false
            })
        );
        // After the command.
        assert_eq!(
            ok(&["list", "--rootless"]).rootless.as_deref(),
            Some("auto")
        );
        let c = ok(&["create", "--rootless", "c"]);
        assert_eq!(c.rootless.as_deref(), Some("auto"));
        assert_eq!(c.cmd, Some(Cmd::Create(create("c", "."))));
        assert_eq!(
            ok(&["delete", "--rootless=auto", "x"]).rootless.as_deref(),
            Some("auto")
        );
    }

    #[test]
    fn version() {
        for a in ["-v", "--version"] {
            assert!(ok(&[a]).version);
            assert!(ok(&[a, "list"]).version);
        }
        // Only before the command.
        let e = err(&["list", "--version"]);
        assert!(e.contains("--version") && e.starts_with("list: "), "{e}");
    }

    #[test]
    fn help() {
        for args in [&["--help"][..], &["-h"], &["help"], &["--root", "/x", "-h"]] {
            let h = help_of(args);
            assert!(h.contains("Usage: boxrun"), "{h}");
            assert!(
                h.contains("create")
                    && h.contains("Create a container (the process waits for `start`)")
            );
            assert!(h.contains("--root PATH") && h.contains("[default: /run/boxrun]"));
            assert!(!h.contains("--criu"), "hidden flag shown: {h}");
        }
        for c in COMMANDS {
            for args in [
                vec![c.name, "--help"],
                vec![c.name, "-h"],
                vec!["help", c.name],
            ] {
                let h = help_of(&args);
                assert!(h.starts_with(c.about), "{args:?}: {h}");
                assert!(h.contains(&format!("Usage: boxrun {}", c.name)), "{h}");
                for f in c.flags {
                    assert!(
                        h.contains(&format!("--{}", f.long)),
                        "{args:?}: no --{}",
                        f.long
                    );
                }
            }
        }
        assert!(help_of(&["ls", "--help"]).starts_with("List containers"));
        assert!(help_of(&["create", "--bundle", "/b", "-h"]).contains("-b, --bundle PATH"));
        // Help wins over a missing id.
        assert!(help_of(&["start", "--help"]).contains("Start a created container"));
        // In a short cluster.
        assert!(help_of(&["list", "-qh"]).contains("List containers"));
    }

    #[test]
    fn errors_name_the_culprit() {
        let e = err(&["create", "--bundel", "x", "c"]);
        assert_eq!(
            e,
            "create: unknown flag --bundel (see boxrun create --help)"
        );
        let e = err(&["create", "--bundel=x", "c"]);
        assert_eq!(
            e,
            "create: unknown flag --bundel (see boxrun create --help)"
        );
        let e = err(&["list", "-qx"]);
        assert!(e.starts_with("list: unknown flag -x in -qx"), "{e}");
        let e = err(&["list", "-x"]);
        assert!(e.starts_with("list: unknown flag -x "), "{e}");
        let e = err(&["--nope", "list"]);
        assert_eq!(e, "unknown flag --nope (see boxrun --help)");
        let e = err(&["--bundle", "/b", "create", "c"]);
        assert!(
            e.contains("--bundle") && e.contains("after the command"),
            "{e}"
        );

        let e = err(&["frobnicate"]);
        assert!(
            e.contains("unknown command frobnicate") && e.contains("boxrun --help"),
            "{e}"
        );
        let e = err(&["help", "frobnicate"]);
        assert!(e.contains("frobnicate"), "{e}");

        let e = err(&["create", "c", "--bundle"]);
        assert!(
            e.starts_with("create: missing value for --bundle") && e.contains("--bundle <path>"),
            "{e}"
        );
        let e = err(&["list", "-f"]);
        assert!(e.contains("--format"), "{e}");
        let e = err(&["--root"]);
        assert!(e.starts_with("missing value for --root"), "{e}");
        // A flag is not taken as a value.
        let e = err(&["--log", "--debug", "list"]);
        assert!(e.contains("missing value for --log"), "{e}");

        for c in [
            "create", "run", "start", "state", "kill", "delete", "exec", "pause", "resume", "ps",
            "events", "update",
        ] {
            let e = err(&[c]);
            let want = format!("{c}: missing container id (usage: boxrun {c} [options] id");
            assert!(e.starts_with(&want), "{e}");
        }

        let e = err(&["start", "a", "b"]);
        assert_eq!(
            e,
            "start: unexpected argument b (usage: boxrun start [options] id)"
        );
        let e = err(&["kill", "a", "KILL", "x"]);
        assert!(e.starts_with("kill: unexpected argument x"), "{e}");
        let e = err(&["list", "x"]);
        assert!(e.starts_with("list: unexpected argument x"), "{e}");
        let e = err(&["features", "x"]);
        assert!(e.starts_with("features: unexpected argument x"), "{e}");

        let e = err(&["update", "--blkio-weight", "70000", "u"]);
        assert!(
            e.starts_with("update: bad value 70000 for --blkio-weight") && e.contains("65535"),
            "{e}"
        );
        let e = err(&["update", "--cpu-quota=lots", "u"]);
        assert!(e.contains("lots") && e.contains("--cpu-quota"), "{e}");
        let e = err(&["update", "--cpu-period=-1", "u"]);
        assert!(e.contains("--cpu-period"), "{e}");
        let e = err(&["create", "--preserve-fds", "x", "c"]);
        assert!(e.contains("--preserve-fds"), "{e}");
        let e = err(&["exec", "-g", "wheel", "x", "sh"]);
        assert!(
            e.contains("--additional-gids") && e.contains("wheel"),
            "{e}"
        );

        let e = err(&["delete", "--force=yes", "x"]);
        assert!(e.contains("--force") && e.contains("yes"), "{e}");

        // Odd input stays on one line.
        let e = err(&["create", "--bun\ndel", "c"]);
        assert!(e.contains("\\n"), "{e}");
        let e = err(&["start", "a", "b c"]);
        assert!(e.contains("\"b c\""), "{e}");
    }

    #[test]
    fn non_utf8() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'/', 0xff]);
        // Paths need not be UTF-8 ...
        let p = parse(vec![
            OsString::from("create"),
            "-b".into(),
            bad.clone(),
            "c".into(),
        ]);
        let Ok(Parsed::Run(cli)) = p else {
            panic!("{p:?}")
        };
        let Some(Cmd::Create(a)) = cli.cmd else {
            panic!("{cli:?}")
        };
        assert_eq!(a.bundle, PathBuf::from(bad.clone()));
        // ... ids and strings must.
        let e = parse(vec![OsString::from("start"), bad.clone()]).expect_err("bad id");
        assert!(e.to_string().contains("container id"), "{e}");
        let e = parse(vec![OsString::from("--log"), bad, "list".into()]).expect_err("bad log");
        assert!(e.to_string().contains("--log"), "{e}");
    }

    #[test]
    fn no_command() {
        let c = ok(&["--root", "/x"]);
        assert_eq!(c.cmd, None);
        assert_eq!(c.root, PathBuf::from("/x"));
        assert_eq!(
            ok(&["--", "list"]).cmd,
            Some(Cmd::List {
                format: "table".into(),
                quiet: false
            })
        );
    }
}
