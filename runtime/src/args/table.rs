//! The flag tables: every command, its flags and the global ones. The scanner looks
//! flags up here and the help text is built from the same entries, so the two cannot
//! drift apart.

/// Whether a flag takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Takes {
    /// A boolean: `--flag`, or `--flag=true|false`.
    Nothing,
    /// `--flag VALUE` or `--flag=VALUE`.
    Value,
    /// `--flag`, `--flag=VALUE` or `--flag true|false|auto` (only `--rootless`).
    Optional,
}

/// One flag of a table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Flag {
    pub(super) long: &'static str,
    pub(super) short: Option<u8>,
    pub(super) takes: Takes,
    /// Placeholder for the value in help and errors.
    pub(super) meta: &'static str,
    pub(super) help: &'static str,
    pub(super) default: Option<&'static str>,
    pub(super) hidden: bool,
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
pub(super) const GLOBAL: &[Flag] = &[
    v(
        "root",
        None,
        "PATH",
        "Root directory for container state ($XDG_RUNTIME_DIR/boxrun when rootless)",
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
        help: "Rootless rules (cgroups only where writable): true, false or auto (not root)",
        default: None,
        hidden: false,
    },
    Flag {
        long: "criu",
        short: None,
        takes: Takes::Value,
        meta: "PATH",
        help: "The criu binary for checkpoint/restore",
        default: Some("criu"),
        hidden: false,
    },
];

/// `-v/--version`: only before the command.
pub(super) static VERSION: Flag = b("version", Some(b'v'), "Print the version");

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

/// The CRIU flags of both `checkpoint` and `restore`.
const CRIU_FLAGS: [Flag; 10] = [
    v(
        "image-path",
        None,
        "PATH",
        "Where the checkpoint images are",
        Some("./checkpoint"),
    ),
    v(
        "work-path",
        None,
        "PATH",
        "Where criu writes its logs and work files",
        Some("the image path"),
    ),
    b("tcp-established", None, "Allow open TCP connections"),
    b("ext-unix-sk", None, "Allow external unix sockets"),
    b("shell-job", None, "Allow shell jobs"),
    b("file-locks", None, "Handle file locks"),
    v(
        "manage-cgroups-mode",
        None,
        "MODE",
        "criu's cgroup mode: soft, full, strict or ignore",
        Some("soft"),
    ),
    v(
        "empty-ns",
        None,
        "NS",
        "Namespace to leave empty (network)",
        None,
    ),
    b("lazy-pages", None, "Lazy memory migration (not supported)"),
    b(
        "auto-dedup",
        None,
        "Deduplicate the parent checkpoint's pages",
    ),
];

/// [`CRIU_FLAGS`] followed by a command's own `M` flags (`N` = 10 + `M`, checked at
/// compile time).
const fn criu_and<const M: usize, const N: usize>(own: [Flag; M]) -> [Flag; N] {
    assert!(N == CRIU_FLAGS.len() + M);
    let mut out = [CRIU_FLAGS[0]; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < CRIU_FLAGS.len() {
            CRIU_FLAGS[i]
        } else {
            own[i - CRIU_FLAGS.len()]
        };
        i += 1;
    }
    out
}

const CHECKPOINT_FLAGS: &[Flag] = &criu_and::<4, 14>([
    b(
        "leave-running",
        None,
        "Keep the container running after the dump",
    ),
    b(
        "pre-dump",
        None,
        "Dump memory only and keep the container running",
    ),
    v(
        "parent-path",
        None,
        "PATH",
        "A previous pre-dump's images, relative to the image path",
        None,
    ),
    v(
        "page-server",
        None,
        "ADDRESS:PORT",
        "Send the pages to a criu page server",
        None,
    ),
]);

const RESTORE_FLAGS: &[Flag] = &criu_and::<6, 16>([
    v(
        "bundle",
        Some(b'b'),
        "PATH",
        "Bundle directory (holds config.json)",
        Some("."),
    ),
    b("detach", Some(b'd'), "Return once restored"),
    v(
        "pid-file",
        None,
        "PATH",
        "Write the restored init's pid here",
        None,
    ),
    v(
        "console-socket",
        None,
        "PATH",
        "Unix socket to send the pty master to (not supported)",
        None,
    ),
    b(
        "no-subreaper",
        None,
        "Do not wait as the restored init's subreaper",
    ),
    b("no-pivot", None, "Accepted for runc compatibility"),
]);

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
        "Run the process in an (existing) sub-cgroup: [<controller>:]<cgroup> (repeatable)",
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
pub(super) enum Tail {
    /// No tail: flags and positionals mix freely.
    None,
    /// Everything after the first positional (the id) is the tail.
    AfterId,
}

/// One command of the table.
#[derive(Debug)]
pub(super) struct Command {
    pub(super) name: &'static str,
    pub(super) alias: Option<&'static str>,
    pub(super) about: &'static str,
    /// Usage after `boxrun NAME`.
    pub(super) usage: &'static str,
    pub(super) flags: &'static [Flag],
    pub(super) tail: Tail,
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

pub(super) const COMMANDS: &[Command] = &[
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
    cmd(
        "checkpoint",
        "Checkpoint a running container with CRIU",
        "[OPTIONS] ID",
        CHECKPOINT_FLAGS,
    ),
    cmd(
        "restore",
        "Restore a container from a CRIU checkpoint",
        "[OPTIONS] ID",
        RESTORE_FLAGS,
    ),
];

/// The command called `name` (or by that alias).
pub(super) fn find_command(name: &[u8]) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.name.as_bytes() == name || c.alias.is_some_and(|a| a.as_bytes() == name))
}
