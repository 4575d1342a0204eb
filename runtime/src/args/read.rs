//! Typing: turns the scanned flags and positionals into [`Cli`] and its [`Cmd`], with
//! the defaults, number checks and the messages that name the flag or argument at fault.

use std::ffi::OsString;
use std::path::PathBuf;

use super::scan::{Given, Scan, Val};
use super::table::Command;
use super::{
    show, ArgError, CheckpointArgs, Cli, Cmd, CreateArgs, CriuArgs, ExecArgs, RestoreArgs,
    UpdateArgs,
};

/// The typed command line of a scan.
pub(super) fn cli(s: Scan) -> Result<Cli, ArgError> {
    let g = Reader {
        given: &s.global,
        ctx: "",
        see: "boxrun --help",
    };
    let mut cli = Cli {
        root: g.path("root").unwrap_or_else(crate::rootless::default_root),
        log: g.string_or("log", "")?,
        log_format: g.string_or("log-format", "text")?,
        debug: g.on("debug"),
        systemd_cgroup: g.on("systemd-cgroup"),
        rootless: g.string("rootless")?,
        criu: g.string("criu")?,
        version: g.on("version"),
        cmd: None,
    };
    if let Some(c) = s.cmd {
        let ctx = format!("{}: ", c.name);
        let see = format!("boxrun {} --help", c.name);
        let l = Reader {
            given: &s.local,
            ctx: &ctx,
            see: &see,
        };
        let p = Positionals {
            items: s.pos.into_iter(),
            cmd: c,
        };
        cli.cmd = Some(build(c, &l, p)?);
    }
    Ok(cli)
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

/// The flags and id shared by `create` and `run`.
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

/// The CRIU flags `checkpoint` and `restore` share, and the id.
fn criu_args(l: &Reader<'_>, p: &mut Positionals<'_>) -> Result<CriuArgs, ArgError> {
    Ok(CriuArgs {
        image_path: l.path("image-path"),
        work_path: l.path("work-path"),
        tcp_established: l.on("tcp-established"),
        ext_unix_sk: l.on("ext-unix-sk"),
        shell_job: l.on("shell-job"),
        file_locks: l.on("file-locks"),
        manage_cgroups_mode: l.string("manage-cgroups-mode")?,
        empty_ns: l.strings("empty-ns")?,
        lazy_pages: l.on("lazy-pages"),
        auto_dedup: l.on("auto-dedup"),
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
        "checkpoint" => Cmd::Checkpoint(CheckpointArgs {
            criu: criu_args(l, &mut p)?,
            leave_running: l.on("leave-running"),
            pre_dump: l.on("pre-dump"),
            parent_path: l.path("parent-path"),
            page_server: l.string("page-server")?,
        }),
        _ => Cmd::Restore(RestoreArgs {
            criu: criu_args(l, &mut p)?,
            bundle: l.path("bundle").unwrap_or_else(|| ".".into()),
            detach: l.on("detach"),
            pid_file: l.path("pid-file"),
            console_socket: l.path("console-socket"),
            no_subreaper: l.on("no-subreaper"),
            no_pivot: l.on("no-pivot"),
        }),
    };
    p.finish()?;
    Ok(cmd)
}
