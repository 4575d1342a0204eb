//! Dispatch: each subcommand calls the library and prints what it returns.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use boxctl_core::create_spec::{CreateSpec, InstanceOptions};
use boxctl_core::instance_filter::Filter;
use boxctl_core::limits::{self, LimitSpec};
use boxctl_core::store::Store;
use boxctl_core::{
    copy, disk_usage, events, farm, health, image, instance, instance_control, lifecycle, monitor,
    networking, prune, registry, session, stats, util, volumes,
};

use crate::cli::{
    Cli, Cmd, ExportFormat, FarmCmd, ImageCmd, LoginArgs, NetworkCmd, RunArgs, SystemCmd, VolumeCmd,
};
use crate::output::{self, print_table};
use crate::ps_format;
use crate::transfer_progress::TransferProgress;

/// Run the command; returns the process exit code.
pub fn dispatch(root: &Path, cli: Cli) -> Result<i32> {
    let store = Store::open(root)?;
    boxctl_core::pool::reconcile(&store, store.cleaned_stale_temps());
    let runtime = cli.runtime.clone();
    match cli.command {
        Cmd::Monitor { id, attach_first } => {
            monitor::main(&store, &id, attach_first)?;
            Ok(0)
        }
        Cmd::Health { id } => {
            health::main(&store, &id)?;
            Ok(0)
        }
        Cmd::Events {
            since,
            json,
            follow,
        } => events_cmd(&store, since.as_deref(), json, follow),
        Cmd::Image(c) => image_cmd(&store, c),
        Cmd::Login(a) => login(&store, &a),
        Cmd::Logout { registry: r } => {
            registry::logout(&store, &r)?;
            println!("logged out of {r}");
            Ok(0)
        }
        Cmd::Network(c) => network_cmd(&store, c),
        Cmd::Volume(c) => volume_cmd(&store, c),
        Cmd::Create(args) => {
            let inst = lifecycle::create(&store, &spec(&args, runtime.as_deref())?)?;
            println!("{}", inst.id);
            Ok(0)
        }
        Cmd::Run { detach, args } => run(&store, &args, runtime.as_deref(), detach),
        Cmd::Ps {
            all,
            json,
            quiet,
            filter,
            format,
        } => ps(&store, all, json, quiet, &filter, format.as_deref()),
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
        // Instances are removed several at a time: most of a removal is waiting
        // for the instance's monitor to tear it down.
        // The records go in one rewrite of the instance file at the end.
        Cmd::Rm { force, names } => {
            let removed = std::sync::Mutex::new(Vec::new());
            let results = run_concurrently(&names, |n| {
                if let Some(inst) = lifecycle::remove_files(&store, n, force)? {
                    if let Ok(mut r) = removed.lock() {
                        r.push(inst);
                    }
                }
                Ok(n.to_string())
            });
            let removed = removed.into_inner().unwrap_or_default();
            lifecycle::forget(&store, &removed)?;
            Ok(report(&names, results))
        }
        Cmd::Logs { follow, tail, name } => {
            let inst = store.find(&name)?;
            instance::logs(&store, &inst, follow, tail, &mut std::io::stdout().lock())?;
            Ok(0)
        }
        Cmd::Exec {
            interactive,
            tty,
            name,
            command,
        } => Ok(instance::exec(&store, &name, interactive, tty, &command)?),
        Cmd::Attach { name } => Ok(session::attach(&store, &name)?),
        Cmd::Wait { names } => for_each(&names, |n| {
            println!("{}", session::wait(&store, n)?);
            Ok(())
        }),
        Cmd::Inspect { names } => {
            let out = names
                .iter()
                .map(|n| instance::inspect(&store, n))
                .collect::<boxctl_core::Result<Vec<_>>>()?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
        Cmd::Stats {
            no_stream,
            json,
            names,
        } => stats_cmd(&store, &names, no_stream || json, json),
        Cmd::Update { limits, name } => {
            let change = LimitSpec::from(&limits).parse()?;
            let inst = instance::update_limits(&store, &name, &change)?;
            println!("{}", inst.name);
            Ok(0)
        }
        Cmd::Cp { src, dst } => {
            let mut out = std::io::stdout().lock();
            copy::copy(&store, &src, &dst, &mut std::io::stdin().lock(), &mut out)?;
            std::io::Write::flush(&mut out)?;
            Ok(0)
        }
        Cmd::Top { name, ps_args } => {
            print!("{}", instance_control::top(&store, &name, &ps_args)?);
            Ok(0)
        }
        Cmd::Port { name, port } => {
            for line in instance_control::ports(&store, &name, port.as_deref())? {
                println!("{line}");
            }
            Ok(0)
        }
        Cmd::Rename { old, new } => {
            instance_control::rename(&store, &old, &new)?;
            Ok(0)
        }
        Cmd::Pause { names } => for_each(&names, |n| {
            instance_control::pause(&store, n)?;
            println!("{n}");
            Ok(())
        }),
        Cmd::Unpause { names } => for_each(&names, |n| {
            instance_control::unpause(&store, n)?;
            println!("{n}");
            Ok(())
        }),
        Cmd::Prune { force, volumes } => prune_cmd(&store, force, volumes),
        Cmd::System(SystemCmd::Df { json }) => {
            let rows = disk_usage::usage(&store)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print_table(&output::df_table(&rows));
                if let Some(p) = rows.iter().find_map(|r| r.pool.as_ref()) {
                    println!();
                    print_table(&output::pool_table(p));
                }
            }
            Ok(0)
        }
        Cmd::Up(a) => {
            farm::up(&store, runtime.as_deref(), &a.file, &mut output::farm_event)?;
            Ok(0)
        }
        Cmd::Down { farm: a, volumes } => {
            let failed = farm::down(&store, &a.file, volumes, &mut output::farm_event)?;
            Ok(if failed == 0 { 0 } else { 1 })
        }
        Cmd::Farm(FarmCmd::Export {
            file,
            format,
            output,
        }) => {
            farm_export(&file, format, output.as_deref())?;
            Ok(0)
        }
        Cmd::Scale(a) => {
            farm::scale(
                &store,
                runtime.as_deref(),
                &a.file,
                &a.services,
                &mut output::farm_event,
            )?;
            Ok(0)
        }
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

/// How many names [`run_concurrently`] works on at once.
const CONCURRENT_NAMES: usize = 8;

/// What each call of `f` returned, in the order of `names` (None: it did not finish).
type Outcomes = Vec<std::sync::Mutex<Option<Result<String>>>>;

/// [`for_each`] on up to [`CONCURRENT_NAMES`] names at a time (each call
/// locks the store itself, as concurrent boxctl processes do), without
/// printing: [`report`] prints the outcomes in the order of `names`.
fn run_concurrently(names: &[String], f: impl Fn(&str) -> Result<String> + Sync) -> Outcomes {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<String>>>> =
        names.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..names.len().min(CONCURRENT_NAMES) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(n) = names.get(i) else { break };
                let r = f(n);
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    results
}

/// Print each outcome (a line or an error) in the order of `names`; 1 if any failed.
fn report(names: &[String], results: Outcomes) -> i32 {
    let mut failed = 0;
    for (n, r) in names.iter().zip(results) {
        match r.into_inner().ok().flatten() {
            Some(Ok(line)) => println!("{line}"),
            Some(Err(e)) => {
                eprintln!("boxctl: error: {e:#}");
                failed += 1;
            }
            None => {
                eprintln!("boxctl: error: {n}: the command stopped half-way; run it again");
                failed += 1;
            }
        }
    }
    if failed == 0 {
        0
    } else {
        1
    }
}

fn spec(a: &RunArgs, runtime: Option<&str>) -> Result<CreateSpec> {
    Ok(CreateSpec::from_options(
        &InstanceOptions::from(a),
        runtime,
    )?)
}

fn run(store: &Store, args: &RunArgs, runtime: Option<&str>, detach: bool) -> Result<i32> {
    let spec = spec(args, runtime)?;
    let inst = lifecycle::create(store, &spec)?;
    if !detach {
        return Ok(session::run_foreground(store, &inst)?);
    }
    if let Err(e) = lifecycle::start(store, &inst.id) {
        let _ = lifecycle::remove(store, &inst.id, true);
        return Err(e.into());
    }
    println!("{}", inst.id);
    Ok(0)
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
        ImageCmd::Inspect { names } => {
            let out = names
                .iter()
                .map(|n| image::inspect(store, n))
                .collect::<boxctl_core::Result<Vec<_>>>()?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
        ImageCmd::Rm { names } => for_each(&names, |n| {
            image::remove(store, n)?;
            println!("{n}");
            Ok(())
        }),
        ImageCmd::Pull {
            insecure,
            reference,
            name,
        } => {
            let mut bars = TransferProgress::new("pulling");
            let meta = registry::pull(
                store,
                &reference,
                name.as_deref(),
                &registry::Options { insecure },
                &mut |p| bars.show(p),
            )?;
            bars.finish();
            println!("{}", meta.name);
            Ok(0)
        }
        ImageCmd::Push {
            insecure,
            name,
            reference,
        } => {
            let mut bars = TransferProgress::new("pushing");
            registry::push(
                store,
                &name,
                &reference,
                &registry::Options { insecure },
                &mut |p| bars.show(p),
            )?;
            bars.finish();
            println!("{reference}");
            Ok(0)
        }
        ImageCmd::Tag { name, new_name } => {
            let meta = image::tag(store, &name, &new_name)?;
            println!("{}", meta.name);
            Ok(0)
        }
        ImageCmd::History { json, name } => {
            let steps = image::history::history(store, &name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&steps)?);
            } else {
                print_table(&output::history_table(&steps, util::now_secs()));
            }
            Ok(0)
        }
        ImageCmd::Prune { all, force } => {
            if !force && !confirm(&output::prune_plan(&image::prune::plan(store, all)?))? {
                println!("nothing removed");
                return Ok(0);
            }
            report_pruned(&image::prune::prune(store, all)?)
        }
        ImageCmd::Export {
            format,
            output,
            name,
        } => {
            let reference = image::export::export(store, &name, format.parse()?, &output)?;
            println!("{reference}");
            Ok(0)
        }
    }
}

/// Show what a prune would remove and ask; refused when stdin is not a terminal.
fn confirm(plan: &str) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("prune removes data and stdin is not a terminal to confirm: pass -f (nothing was removed)");
    }
    print!("{plan}");
    print!("Are you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn report_pruned(done: &prune::PruneReport) -> Result<i32> {
    print!("{}", output::prune_done(done));
    for f in &done.failed {
        eprintln!("boxctl: error: cannot remove {f}");
    }
    Ok(if done.failed.is_empty() { 0 } else { 1 })
}

/// `login`: the password from `-p` or stdin, checked against the registry, then stored.
fn login(store: &Store, a: &LoginArgs) -> Result<i32> {
    let password = match (&a.password, a.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            anyhow::bail!("login needs a password: pass --password-stdin (or -p PASSWORD)")
        }
    };
    let creds = registry::auth::Credentials {
        user: a.username.clone(),
        password,
    };
    registry::login(
        store,
        &a.registry,
        &creds,
        &registry::Options {
            insecure: a.insecure,
        },
    )?;
    println!("logged in to {}", a.registry);
    Ok(0)
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

fn volume_cmd(store: &Store, c: VolumeCmd) -> Result<i32> {
    match c {
        VolumeCmd::Create { size, name } => {
            let size = size
                .as_deref()
                .map(|s| limits::parse_size("--size", s))
                .transpose()?;
            let v = volumes::create(store, &name, size)?;
            println!("{}", v.meta.name);
            Ok(0)
        }
        VolumeCmd::Ls { json } => {
            let vols = volumes::list(store)?;
            let list = store.load()?;
            if json {
                let v: Vec<_> = vols.iter().map(|v| &v.meta).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(0);
            }
            print_table(&output::volume_table(&vols, &list, util::now_secs()));
            Ok(0)
        }
        VolumeCmd::Rm { names } => for_each(&names, |n| {
            volumes::remove(store, n)?;
            println!("{n}");
            Ok(())
        }),
        VolumeCmd::Inspect { names } => {
            let out = names
                .iter()
                .map(|n| volumes::inspect(store, n))
                .collect::<boxctl_core::Result<Vec<_>>>()?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(0)
        }
    }
}

fn ps(
    store: &Store,
    all: bool,
    json: bool,
    quiet: bool,
    filter: &[String],
    format: Option<&str>,
) -> Result<i32> {
    let filter = Filter::parse(filter)?;
    let format = format
        .map(ps_format::Template::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let list = lifecycle::refresh(store)?;
    let now = util::now_secs();
    let all = all || filter.has_status();
    let shown: Vec<_> = list
        .iter()
        .filter(|i| (all || i.is_active()) && filter.matches(i))
        .collect();
    if let Some(t) = format.filter(|_| !quiet) {
        t.print(&shown, now);
    } else if quiet {
        for i in shown {
            println!("{}", i.id);
        }
    } else if json {
        let v = output::ps_json(&shown, now);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_table(&output::ps_table(&shown, now));
    }
    Ok(0)
}

/// `stats`: `once`, one sample and exit; `json`, machine-readable.
fn stats_cmd(store: &Store, names: &[String], once: bool, json: bool) -> Result<i32> {
    let interval = Duration::from_millis(if once { 500 } else { 1000 });
    loop {
        let samples = stats::sample(store, names, interval)?;
        if json {
            let v = output::stats_json(&samples);
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            if !once {
                print!("\x1b[2J\x1b[H");
            }
            print_table(&output::stats_table(&samples));
        }
        if once {
            return Ok(0);
        }
    }
}

/// `events`: the log since `since` (all of it when None, unless following),
/// then with `follow` every new event as it comes.
fn events_cmd(store: &Store, since: Option<&str>, json: bool, follow: bool) -> Result<i32> {
    let since = since
        .map(|s| events::parse_since(s, events::now()))
        .transpose()?;
    let mut print = |e: &events::Event| {
        use std::io::Write;
        let line = if json {
            serde_json::to_string(e).unwrap_or_default()
        } else {
            output::event_line(e)
        };
        let mut out = std::io::stdout().lock();
        // A closed reader (`| head`) ends the follow.
        writeln!(out, "{line}").and_then(|_| out.flush()).is_ok()
    };
    if follow {
        events::follow(store, since, &mut print)?;
    } else {
        for e in events::read(store, since)? {
            if !print(&e) {
                break;
            }
        }
    }
    Ok(0)
}

/// `prune`: show what goes and ask on a terminal unless `force`; refuse
/// without `force` when nobody can answer.
fn prune_cmd(store: &Store, force: bool, with_volumes: bool) -> Result<i32> {
    if !force && !confirm(&output::prune_plan(&prune::plan(store, with_volumes)?))? {
        println!("nothing removed");
        return Ok(0);
    }
    report_pruned(&prune::prune(store, with_volumes)?)
}

/// `boxctl farm export`: the farm as a stack compose file or Kubernetes manifests.
fn farm_export(file: &Path, format: ExportFormat, output: Option<&Path>) -> Result<()> {
    use anyhow::Context as _;
    use boxctl_core::export;
    let farm = farm::file::load(file)?;
    let text = match format {
        ExportFormat::Compose => export::compose::render(&farm)?,
        ExportFormat::Kube => export::kube::render(&farm)?,
    };
    match output {
        Some(o) => {
            std::fs::write(o, text).with_context(|| format!("cannot write {}", o.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}
