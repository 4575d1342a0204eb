//! Command handlers.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::cli::{Cli, Cmd, ImageCmd, LimitArgs, NetworkCmd, RunArgs};
use crate::instance_file::{Instance, Status};
use crate::lifecycle::{self, CreateSpec};
use crate::limits::{self, Limits};
use crate::store::{self, Store};
use crate::{image, monitor, mounts, networking, procs, runtime_cli, stats, util};

/// Run the command; returns the process exit code.
pub fn dispatch(root: &Path, cli: Cli) -> Result<i32> {
    let store = Store::open(root)?;
    let runtime = cli.runtime.clone();
    match cli.command {
        Cmd::Monitor { id } => {
            monitor::main(&store, &id)?;
            Ok(0)
        }
        Cmd::Image(c) => image_cmd(&store, c),
        Cmd::Network(c) => network_cmd(&store, c),
        Cmd::Create(args) => {
            let inst = lifecycle::create(&store, &spec(&args, runtime.as_deref())?)?;
            println!("{}", inst.id);
            Ok(0)
        }
        Cmd::Run { detach, args } => run(&store, &args, runtime.as_deref(), detach),
        Cmd::Ps { all, json, quiet } => ps(&store, all, json, quiet),
        Cmd::Start { names } => for_each(&names, |n| {
            lifecycle::start(&store, n)?;
            println!("{n}");
            Ok(())
        }),
        Cmd::Stop { time, names } => for_each(&names, |n| {
            lifecycle::stop(&store, n, Duration::from_secs(time))?;
            println!("{n}");
            Ok(())
        }),
        Cmd::Restart { time, names } => for_each(&names, |n| {
            lifecycle::stop(&store, n, Duration::from_secs(time))?;
            lifecycle::start(&store, n)?;
            println!("{n}");
            Ok(())
        }),
        Cmd::Rm { force, names } => for_each(&names, |n| {
            lifecycle::remove(&store, n, force)?;
            println!("{n}");
            Ok(())
        }),
        Cmd::Logs { follow, tail, name } => {
            let inst = store.find(&name)?;
            logs(&store, &inst, follow, tail)?;
            Ok(0)
        }
        Cmd::Exec {
            interactive,
            tty,
            name,
            command,
        } => exec(&store, &name, interactive, tty, &command),
        Cmd::Inspect { names } => inspect(&store, &names),
        Cmd::Stats {
            no_stream,
            json,
            names,
        } => stats::run(&store, &names, no_stream || json, json),
        Cmd::Update { limits, name } => update(&store, &name, &limits),
        Cmd::Up(a) => crate::farm::up(&store, runtime.as_deref(), &a),
        Cmd::Down(a) => crate::farm::down(&store, &a),
        Cmd::Scale(a) => crate::farm::scale(&store, runtime.as_deref(), &a),
    }
}

fn for_each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<i32> {
    let mut failed = 0;
    for n in names {
        if let Err(e) = f(n) {
            eprintln!("boxctl: error: {e:#}");
            failed += 1;
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Parse limit options.
pub fn parse_limits(a: &LimitArgs) -> Result<Limits> {
    Ok(Limits {
        memory: a
            .memory
            .as_deref()
            .map(|s| limits::parse_size("--memory", s))
            .transpose()?,
        cpus: a.cpus.as_deref().map(limits::parse_cpus).transpose()?,
        cpuset: a.cpuset.as_deref().map(limits::parse_cpuset).transpose()?,
        pids: a.pids.as_deref().map(limits::parse_pids).transpose()?,
        io_read_bps: a
            .io_read_bps
            .as_deref()
            .map(|s| limits::parse_size("--io-read-bps", s))
            .transpose()?,
        io_write_bps: a
            .io_write_bps
            .as_deref()
            .map(|s| limits::parse_size("--io-write-bps", s))
            .transpose()?,
        io_read_iops: a
            .io_read_iops
            .as_deref()
            .map(|s| limits::parse_iops("--io-read-iops", s))
            .transpose()?,
        io_write_iops: a
            .io_write_iops
            .as_deref()
            .map(|s| limits::parse_iops("--io-write-iops", s))
            .transpose()?,
    })
}

fn spec(a: &RunArgs, runtime: Option<&str>) -> Result<CreateSpec> {
    let limits = parse_limits(&a.limits)?;
    if let Some(m) = limits.memory {
        if m < 4 << 20 {
            bail!(
                "invalid --memory {}: the minimum is 4m",
                a.limits.memory.as_deref().unwrap_or("")
            );
        }
    }
    let restart = a.restart.parse()?;
    let mut net_mode = "none".to_string();
    let mut networks = Vec::new();
    for n in &a.net {
        match n.as_str() {
            "none" | "host" => net_mode = n.clone(),
            other => {
                net_mode = "bridge".into();
                let (name, addr) = other.split_once(':').unwrap_or((other, ""));
                util::validate_name("network", name)?;
                networks.push(format!("{name}={addr}"));
            }
        }
    }
    for e in &a.env {
        if !e.contains('=') || e.starts_with('=') {
            bail!("invalid --env {e:?}: expected KEY=VALUE");
        }
    }
    Ok(CreateSpec {
        name: a.name.clone(),
        image: a.image.clone(),
        command: a.command.clone(),
        entrypoint: a.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        }),
        env: a.env.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        limits,
        restart,
        runtime: runtime_cli::locate(runtime)?,
        net_mode,
        networks,
        publish: a.publish.clone(),
        cow: a.cow,
    })
}

fn run(store: &Store, args: &RunArgs, runtime: Option<&str>, detach: bool) -> Result<i32> {
    let spec = spec(args, runtime)?;
    let inst = lifecycle::create(store, &spec)?;
    if let Err(e) = lifecycle::start(store, &inst.id) {
        let _ = lifecycle::remove(store, &inst.id, true);
        return Err(e);
    }
    if detach {
        println!("{}", inst.id);
        return Ok(0);
    }
    forward_signals(store, &inst)?;
    logs(store, &inst, true, None)?;
    let done = store.find(&inst.id)?;
    Ok(done.exit_code.unwrap_or(0))
}

/// In a foreground `run`, pass SIGINT, SIGTERM and SIGHUP on to the instance
/// (as `docker run` does) instead of dying and leaving it behind.
fn forward_signals(store: &Store, inst: &Instance) -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block().context("cannot block signals")?;
    let rt = lifecycle::runtime_for(store, inst);
    let id = inst.id.clone();
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            let name = sig.as_str().trim_start_matches("SIG");
            let _ = rt.kill(&id, name);
        }
    });
    Ok(())
}

fn image_cmd(store: &Store, c: ImageCmd) -> Result<i32> {
    match c {
        ImageCmd::Import { size, src, name } => {
            let size = size
                .as_deref()
                .map(|s| limits::parse_size("--size", s))
                .transpose()?;
            let meta = image::import(store, &src, &name, size)?;
            println!("{}", meta.name);
            Ok(0)
        }
        ImageCmd::Ls { json } => {
            let imgs = image::list(store)?;
            if json {
                let v: Vec<_> = imgs.iter().map(|i| &i.meta).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(0);
            }
            let mut rows = vec![vec![
                "NAME".into(),
                "SIZE".into(),
                "CREATED".into(),
                "SOURCE".into(),
            ]];
            let now = util::now_secs();
            for i in &imgs {
                let created = util::parse_time(&i.meta.created)
                    .map(|t| format!("{} ago", util::human_duration(now - t)))
                    .unwrap_or_else(|| i.meta.created.clone());
                rows.push(vec![
                    i.meta.name.clone(),
                    util::human_bytes(i.meta.size),
                    created,
                    i.meta.source.clone(),
                ]);
            }
            print_table(&rows);
            Ok(0)
        }
        ImageCmd::Rm { names } => for_each(&names, |n| {
            image::remove(store, n)?;
            println!("{n}");
            Ok(())
        }),
    }
}

fn network_cmd(store: &Store, c: NetworkCmd) -> Result<i32> {
    match c {
        NetworkCmd::Create {
            subnet,
            gateway,
            internal,
            name,
        } => {
            let n = networking::create(
                store,
                &name,
                subnet.as_deref(),
                gateway.as_deref(),
                internal,
            )?;
            println!("{} {} {}", n.name, n.subnet, n.bridge);
            Ok(0)
        }
        NetworkCmd::Ls => {
            print_table(&networking::list(store)?);
            Ok(0)
        }
        NetworkCmd::Rm { names } => for_each(&names, |n| {
            networking::remove(store, n)?;
            println!("{n}");
            Ok(())
        }),
    }
}

/// Print rows as aligned columns.
pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = std::io::stdout().lock();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[c]));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn addresses(inst: &Instance) -> String {
    inst.attachments()
        .iter()
        .map(|a| {
            if a.address.is_empty() {
                a.network.clone()
            } else {
                format!("{}:{}", a.network, a.address)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Published ports as docker shows them (`127.0.0.1:8080->80/tcp`).
fn ports(inst: &Instance) -> String {
    inst.publish
        .iter()
        .filter_map(|p| networking::parse_publish(p).ok())
        .map(|(listen, port)| format!("{listen}->{port}/tcp"))
        .collect::<Vec<_>>()
        .join(",")
}

fn ps(store: &Store, all: bool, json: bool, quiet: bool) -> Result<i32> {
    let list = lifecycle::refresh(store)?;
    let now = util::now_secs();
    let shown: Vec<&Instance> = list.iter().filter(|i| all || i.is_active()).collect();
    if quiet {
        for i in shown {
            println!("{}", i.id);
        }
        return Ok(0);
    }
    if json {
        let v: Vec<_> = shown
            .iter()
            .map(|i| {
                let uptime = (i.status == Status::Running)
                    .then(|| {
                        i.started_at
                            .as_deref()
                            .and_then(util::parse_time)
                            .map(|t| now - t)
                    })
                    .flatten();
                let mut v = serde_json::to_value(i).unwrap_or_default();
                v["id"] = json!(i.id);
                v["state"] = json!(lifecycle::status_text(i, now));
                v["uptime_seconds"] = json!(uptime);
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let mut rows = vec![[
        "ID",
        "NAME",
        "IMAGE",
        "COMMAND",
        "STATUS",
        "ADDRESSES",
        "PORTS",
        "LIMITS",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for i in shown {
        let mut cmd = i.command.join(" ");
        if cmd.chars().count() > 24 {
            cmd = format!("{}…", cmd.chars().take(23).collect::<String>());
        }
        rows.push(vec![
            i.id.clone(),
            i.name.clone(),
            i.image.clone(),
            format!("\"{cmd}\""),
            lifecycle::status_text(i, now),
            addresses(i),
            ports(i),
            i.limits.summary(),
        ]);
    }
    print_table(&rows);
    Ok(0)
}

fn log_paths(store: &Store, inst: &Instance) -> (PathBuf, PathBuf) {
    let dir = store.instance_dir(&inst.id);
    (dir.join("container.log.1"), dir.join("container.log"))
}

fn logs(store: &Store, inst: &Instance, follow: bool, tail: Option<usize>) -> Result<()> {
    let (old, cur) = log_paths(store, inst);
    let mut data = std::fs::read(&old).unwrap_or_default();
    let cur_bytes = std::fs::read(&cur).unwrap_or_default();
    let mut offset = cur_bytes.len() as u64;
    data.extend_from_slice(&cur_bytes);
    if let Some(n) = tail {
        let mut count = 0;
        let mut start = 0;
        let end = if data.ends_with(b"\n") {
            data.len() - 1
        } else {
            data.len()
        };
        for (i, b) in data[..end].iter().enumerate().rev() {
            if *b == b'\n' {
                count += 1;
                if count == n {
                    start = i + 1;
                    break;
                }
            }
        }
        if n == 0 {
            start = data.len();
        }
        data.drain(..start);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&data)?;
    out.flush()?;
    if !follow {
        return Ok(());
    }
    loop {
        let live = store
            .find(&inst.id)
            .map(|i| {
                i.is_active()
                    && (i.monitor_pid.is_some_and(|p| procs::is_monitor(p, &i.id))
                        || i.owner_pid.is_some())
            })
            .unwrap_or(false);
        if let Ok(mut f) = std::fs::File::open(&cur) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < offset {
                offset = 0; // rotated
            }
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            offset += buf.len() as u64;
            out.write_all(&buf)?;
            out.flush()?;
        }
        if !live {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn running(store: &Store, name: &str) -> Result<Instance> {
    let inst = store.find(name)?;
    if inst.status != Status::Running || inst.pid.is_none() {
        bail!(
            "instance {} is not running: start it with `boxctl start {}`",
            inst.name,
            inst.name
        );
    }
    Ok(inst)
}

fn exec(
    store: &Store,
    name: &str,
    interactive: bool,
    tty: bool,
    command: &[String],
) -> Result<i32> {
    let inst = running(store, name)?;
    let rt = lifecycle::runtime_for(store, &inst);
    let mut c = rt.command();
    c.arg("exec");
    if tty {
        c.arg("-t");
        let dir = store.instance_dir(&inst.id);
        return crate::console::exec_tty(c, &dir, &inst.id, command);
    }
    c.arg(&inst.id).args(command);
    if !interactive {
        c.stdin(Stdio::null());
    }
    let status = c
        .status()
        .with_context(|| format!("cannot run runtime {}", rt.bin.display()))?;
    Ok(status.code().unwrap_or(128 + 9))
}

fn inspect(store: &Store, names: &[String]) -> Result<i32> {
    let mut out = Vec::new();
    for n in names {
        let inst = store.find(n)?;
        let dir = store.instance_dir(&inst.id);
        let mut v = serde_json::to_value(&inst)?;
        v["id"] = json!(inst.id);
        v["state"] = json!(lifecycle::status_text(&inst, util::now_secs()));
        v["directory"] = json!(dir);
        let disk = crate::instance_disk::disk_file(store, &inst);
        v["disk"] = json!(disk);
        v["disk_size"] = json!(std::fs::metadata(&disk).map(|m| m.len()).unwrap_or(0));
        v["disk_allocated"] = json!(crate::disk::allocated_bytes(&disk));
        v["bundle"] = json!(dir);
        v["log"] = json!(dir.join("container.log"));
        v["cgroups_path"] = json!(crate::bundle::cgroups_path(&inst.id));
        v["mounted"] = json!(mounts::is_mount_point(&dir.join("rootfs")));
        out.push(v);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}

fn update(store: &Store, name: &str, args: &LimitArgs) -> Result<i32> {
    let new = parse_limits(args)?;
    let inst = store.find(name)?;
    let mut merged = inst.limits.clone();
    macro_rules! take {
        ($($f:ident),*) => { $( if new.$f.is_some() { merged.$f = new.$f.clone(); } )* };
    }
    take!(
        memory,
        cpus,
        cpuset,
        pids,
        io_read_bps,
        io_write_bps,
        io_read_iops,
        io_write_iops
    );
    if inst.status == Status::Running && inst.pid.is_some() {
        let dir = store.instance_dir(&inst.id);
        let devs = crate::instance_disk::devices(store, &inst);
        let mut res = merged.to_oci(&devs);
        if let Some(o) = res.as_object_mut() {
            o.remove("devices");
        }
        let file = dir.join("update.json");
        store::write_quick(&file, serde_json::to_string(&res)?.as_bytes())?;
        let rt = lifecycle::runtime_for(store, &inst);
        let r = rt.update(&inst.id, &["-r".to_string(), file.display().to_string()]);
        let _ = std::fs::remove_file(&file);
        r?;
        let io_changed = new.io_read_bps.is_some()
            || new.io_write_bps.is_some()
            || new.io_read_iops.is_some()
            || new.io_write_iops.is_some();
        if io_changed {
            for dev in devs {
                stats::apply_io_throttles(&inst, &merged, dev)?;
            }
        }
    }
    store.update(|list| {
        let i = store::get_mut(list, &inst.id)?;
        i.limits = merged.clone();
        Ok(())
    })?;
    println!("{}", inst.name);
    Ok(0)
}
