//! The runc-compatible command line.

/// `println!` that does not panic when stdout is closed (`boxrun list | head -1`): the
/// reader went away, there is nobody left to tell.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` that does not panic when stderr is closed.
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

use crate::args::{self, Cli, Cmd, CreateArgs, ExecArgs, Parsed, UpdateArgs};
use crate::container::{self, CreateOpts};
use crate::error::{Error, Result};
use crate::logging;
use std::io::Write;

/// Run the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = match args::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(c)) => *c,
        Ok(Parsed::Help(text)) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            return 0;
        }
        Err(e) => {
            errln!("boxrun: error: {e}");
            return 1;
        }
    };
    // Before the runtime opens anything: which of the fds to pass on are the caller's.
    crate::util::note_inherited_fds(match &cli.cmd {
        Some(Cmd::Create(c)) | Some(Cmd::Run { c, .. }) => c
            .preserve_fds
            .saturating_add(crate::container::create::validate::listen_fds()),
        Some(Cmd::Exec(a)) => a.preserve_fds,
        _ => 0,
    });
    if cli.version {
        let _ = std::io::stdout().write_all(args::version().as_bytes());
        return 0;
    }
    let fmt = if cli.log_format == "json" {
        logging::Format::Json
    } else {
        logging::Format::Text
    };
    if let Err(e) = logging::init(Some(&cli.log), fmt, cli.debug) {
        errln!("boxrun: error: {e}");
        return 1;
    }
    if cli.debug {
        let args: Vec<String> = std::env::args().skip(1).collect();
        logging::debug(&format!(
            "boxrun {}: {}",
            env!("CARGO_PKG_VERSION"),
            args.join(" ")
        ));
    }
    match dispatch(&cli) {
        Ok(code) => {
            logging::debug(&format!("exit status {code}"));
            code
        }
        Err(e) => {
            logging::error(&e.to_string());
            failure_code(&cli)
        }
    }
}

/// Exit status of a runtime failure: 255 for `exec`, as runc, so that callers tell it
/// from the exec'd command exiting 1; 1 otherwise.
fn failure_code(cli: &Cli) -> i32 {
    match cli.cmd {
        Some(Cmd::Exec(_)) => 255,
        _ => 1,
    }
}

fn create_opts(root: &std::path::Path, c: &CreateArgs, rootless: bool) -> CreateOpts {
    CreateOpts {
        root: root.to_path_buf(),
        id: c.id.clone(),
        bundle: c.bundle.clone(),
        pid_file: c.pid_file.clone(),
        console_socket: c.console_socket.clone(),
        no_pivot: c.no_pivot,
        no_new_keyring: c.no_new_keyring,
        preserve_fds: c.preserve_fds,
        rootless,
    }
}

fn systemd_running() -> bool {
    std::path::Path::new("/run/systemd/system").is_dir()
}

fn dispatch(cli: &Cli) -> Result<i32> {
    let root = &cli.root;
    let Some(cmd) = &cli.cmd else {
        return Err(Error::Other("no command given: see boxrun --help".into()));
    };
    if cli.systemd_cgroup && !systemd_running() {
        return Err(Error::Other(
            "--systemd-cgroup: systemd is not running on this host; drop the flag to use cgroupfs"
                .into(),
        ));
    }
    if cli.systemd_cgroup {
        return Err(Error::Other(
            "--systemd-cgroup is not supported by boxrun yet; drop the flag to use cgroupfs".into(),
        ));
    }
    match cmd {
        Cmd::Create(c) => {
            let rootless = crate::rootless::active(cli.rootless.as_deref())?;
            container::create(&create_opts(root, c, rootless), true)?;
            Ok(0)
        }
        Cmd::Start { id } => container::start(root, id).map(|_| 0),
        Cmd::Run { c, detach, keep } => {
            let rootless = crate::rootless::active(cli.rootless.as_deref())?;
            container::run(&create_opts(root, c, rootless), *detach, *keep)
        }
        Cmd::State { id } => {
            let v = container::state(root, id)?;
            outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(0)
        }
        Cmd::Kill { all, id, signal } => {
            // Signal 0 is runc's liveness probe: no signal, only the check.
            let sig = if signal == "0" {
                0
            } else {
                crate::signals::parse(signal)?
            };
            container::kill(root, id, sig, *all).map(|_| 0)
        }
        Cmd::Delete { force, id } => container::delete(root, id, *force).map(|_| 0),
        Cmd::List { format, quiet } => list(root, format, *quiet),
        Cmd::Spec { bundle, rootless } => {
            let p = bundle.join("config.json");
            if p.exists() {
                return Err(Error::Other(format!(
                    "{} already exists: remove it first",
                    p.display()
                )));
            }
            let v = crate::spec::default_spec(*rootless);
            let data = serde_json::to_string_pretty(&v).unwrap_or_default();
            std::fs::write(&p, data + "\n").map_err(|e| Error::io(&p, e))?;
            Ok(0)
        }
        Cmd::Features => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&crate::features::document()).unwrap_or_default()
            );
            Ok(0)
        }
        Cmd::Exec(a) => exec_cmd(root, a),
        Cmd::Pause { id } => container::set_frozen(root, id, true).map(|_| 0),
        Cmd::Resume { id } => container::set_frozen(root, id, false).map(|_| 0),
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => ps(root, id, format, ps_args),
        Cmd::Events {
            interval,
            stats,
            id,
        } => events(root, id, interval, *stats),
        Cmd::Update(u) => update(root, u),
        Cmd::Checkpoint(a) => container::checkpoint(root, cli.criu.as_deref(), a).map(|_| 0),
        Cmd::Restore(a) => container::restore(root, cli.criu.as_deref(), a),
    }
}

fn list(root: &std::path::Path, format: &str, quiet: bool) -> Result<i32> {
    let rows = container::list(root)?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for r in &rows {
            let _ = writeln!(out, "{}", r["id"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    match format {
        "json" => {
            let rows: Vec<_> = rows.iter().map(container::list::Entry::of).collect();
            let text = serde_json::to_string(&rows).map_err(|e| Error::json("encode list", e))?;
            let _ = writeln!(out, "{text}");
        }
        "table" => {
            let _ = writeln!(
                out,
                "{:<12} {:<8} {:<10} {:<40} {:<31} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for r in &rows {
                let _ = writeln!(
                    out,
                    "{:<12} {:<8} {:<10} {:<40} {:<31} {}",
                    r["id"].as_str().unwrap_or(""),
                    r["pid"],
                    r["status"].as_str().unwrap_or(""),
                    r["bundle"].as_str().unwrap_or(""),
                    r["created"].as_str().unwrap_or(""),
                    container::list::owner(r)
                );
            }
        }
        f => return Err(Error::Other(format!("--format {f:?}: use table or json"))),
    }
    Ok(0)
}

fn exec_cmd(root: &std::path::Path, a: &ExecArgs) -> Result<i32> {
    let (dir, _, _) = container::load(root, &a.id)?;
    let spec = container::load_saved_spec(&dir)?;
    drop(dir);
    let process = match &a.process {
        Some(p) => {
            let raw = if p.as_os_str() == "-" {
                let mut s = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)
                    .map_err(|e| Error::io("stdin", e))?;
                s
            } else {
                std::fs::read(p).map_err(|e| Error::io(p, e))?
            };
            process_from_json(&raw, p)?
        }
        None => {
            if a.command.is_empty() {
                return Err(Error::Other(
                    "exec: give a command or --process FILE".into(),
                ));
            }
            crate::exec::process_from_flags(
                &spec,
                a.command.clone(),
                &a.env,
                a.cwd.as_deref(),
                a.user.as_deref(),
                &a.additional_gids,
                &a.cap,
                a.tty,
                a.no_new_privs,
                a.apparmor.as_deref(),
            )?
        }
    };
    crate::exec::exec(&crate::exec::ExecOpts {
        root: root.to_path_buf(),
        id: a.id.clone(),
        process,
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        cgroup: a.cgroup.clone(),
    })
}

/// Parse an `exec --process` document; a missing `user` means uid 0, gid 0, as in runc.
fn process_from_json(raw: &[u8], path: &std::path::Path) -> Result<oci_spec::runtime::Process> {
    let field = |e| Error::field(format!("--process {}", path.display()), e);
    let mut v: serde_json::Value = serde_json::from_slice(raw).map_err(field)?;
    if let Some(obj) = v.as_object_mut() {
        obj.entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    serde_json::from_value(v).map_err(field)
}

fn ps(root: &std::path::Path, id: &str, format: &str, ps_args: &[String]) -> Result<i32> {
    let pids = container::ps::pids(root, id)?;
    match format {
        "json" => {
            outln!("{}", serde_json::to_string(&pids).unwrap_or_default());
            Ok(0)
        }
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(|e| Error::context("run ps", e))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| Error::Other("ps output has no PID column".into()))?;
            outln!("{header}");
            for l in lines {
                if let Some(p) = l
                    .split_whitespace()
                    .nth(col)
                    .and_then(|s| s.parse::<i32>().ok())
                {
                    if pids.contains(&p) {
                        outln!("{l}");
                    }
                }
            }
            Ok(0)
        }
        f => Err(Error::Other(format!("--format {f:?}: use table or json"))),
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let msg = || format!("--interval {s:?}: use e.g. 500ms, 5s, 1m");
    let bad = || Error::Other(msg());
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|e| Error::invalid(msg(), e))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

fn events(root: &std::path::Path, id: &str, interval: &str, stats_once: bool) -> Result<i32> {
    let every = parse_duration(interval)?;
    container::events::watch(root, id, every, stats_once, |typ, data| {
        outln!("{}", container::events::line(typ, id, &data));
    })?;
    Ok(0)
}

fn parse_bytes(flag: &str, s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let msg = || format!("--{flag} {s:?}: use a byte count like 512m or 1g");
    let bad = || Error::Other(msg());
    let lower = s.to_ascii_lowercase();
    let (num, mult) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.trim_end_matches('b').len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.trim_end_matches('b').len() - 1], 1i64 << 20),
        Some('g') => (&lower[..lower.trim_end_matches('b').len() - 1], 1i64 << 30),
        Some('t') => (&lower[..lower.trim_end_matches('b').len() - 1], 1i64 << 40),
        _ => (lower.trim_end_matches('b'), 1),
    };
    let n: i64 = num.parse().map_err(|e| Error::invalid(msg(), e))?;
    n.checked_mul(mult).ok_or_else(bad)
}

fn update(root: &std::path::Path, u: &UpdateArgs) -> Result<i32> {
    container::update(root, &u.id, || resources_from_flags(u))?;
    Ok(0)
}

/// The resources of `update`: the `--resources` JSON with the flags on top.
fn resources_from_flags(u: &UpdateArgs) -> Result<oci_spec::runtime::LinuxResources> {
    let mut v = match &u.resources {
        Some(r) => {
            let raw = if r == "-" {
                let mut s = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)
                    .map_err(|e| Error::io("stdin", e))?;
                s
            } else {
                std::fs::read(r).map_err(|e| Error::io(r, e))?
            };
            serde_json::from_slice::<serde_json::Value>(&raw)
                .map_err(|e| Error::field("--resources", e))?
        }
        None => serde_json::json!({}),
    };
    let set = |v: &mut serde_json::Value, a: &str, b: &str, val: serde_json::Value| {
        if !v[a].is_object() {
            v[a] = serde_json::json!({});
        }
        v[a][b] = val;
    };
    if let Some(w) = u.blkio_weight {
        set(&mut v, "blockIO", "weight", w.into());
    }
    if let Some(x) = u.cpu_period {
        set(&mut v, "cpu", "period", x.into());
    }
    if let Some(x) = u.cpu_quota {
        set(&mut v, "cpu", "quota", x.into());
    }
    if let Some(x) = u.cpu_share {
        set(&mut v, "cpu", "shares", x.into());
    }
    if let Some(x) = u.cpu_rt_period {
        set(&mut v, "cpu", "realtimePeriod", x.into());
    }
    if let Some(x) = u.cpu_rt_runtime {
        set(&mut v, "cpu", "realtimeRuntime", x.into());
    }
    if let Some(x) = &u.cpuset_cpus {
        set(&mut v, "cpu", "cpus", x.clone().into());
    }
    if let Some(x) = &u.cpuset_mems {
        set(&mut v, "cpu", "mems", x.clone().into());
    }
    if let Some(x) = &u.memory {
        set(&mut v, "memory", "limit", parse_bytes("memory", x)?.into());
    }
    if let Some(x) = &u.memory_reservation {
        set(
            &mut v,
            "memory",
            "reservation",
            parse_bytes("memory-reservation", x)?.into(),
        );
    }
    if let Some(x) = &u.memory_swap {
        set(
            &mut v,
            "memory",
            "swap",
            parse_bytes("memory-swap", x)?.into(),
        );
    }
    if let Some(x) = &u.kernel_memory {
        set(
            &mut v,
            "memory",
            "kernel",
            parse_bytes("kernel-memory", x)?.into(),
        );
    }
    if let Some(x) = &u.kernel_memory_tcp {
        set(
            &mut v,
            "memory",
            "kernelTCP",
            parse_bytes("kernel-memory-tcp", x)?.into(),
        );
    }
    if let Some(x) = u.pids_limit {
        set(&mut v, "pids", "limit", x.into());
    }
    if u.l3_cache_schema.is_some() || u.mem_bw_schema.is_some() {
        return Err(Error::Other(
            "update: Intel RDT is not supported on this host".into(),
        ));
    }
    serde_json::from_value(v).map_err(|e| Error::field("update", e))
}
