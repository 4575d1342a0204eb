//! OCI runtime conformance runner.
//!
//! `RUNTIME=/usr/sbin/runc oci-conformance [--filter a,b] [--jobs N]`
//! See conformance/README.md.

use anyhow::{bail, Context, Result};
use boxrun_conformance::cases;
use boxrun_conformance::runner::{self, bundle, Suite};
use std::path::{Path, PathBuf};
use std::time::Duration;

const USAGE: &str = "usage: oci-conformance [--runtime PATH] [--filter SUBSTR[,SUBSTR]] [--jobs N]
                      [--timeout SECS] [--checker PATH] [--rootfs-script PATH]
                      [--workdir DIR] [--keep] [--verbose] [--list]
  --runtime defaults to $RUNTIME; --checker to $OCI_CHECKER or a static
  oci-checker found next to this binary or under target/x86_64-unknown-linux-gnu/.";

struct Args {
    runtime: Option<PathBuf>,
    filter: Vec<String>,
    jobs: usize,
    timeout: u64,
    checker: Option<PathBuf>,
    script: PathBuf,
    workdir: Option<PathBuf>,
    keep: bool,
    verbose: bool,
    list: bool,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        runtime: std::env::var_os("RUNTIME").map(PathBuf::from),
        filter: Vec::new(),
        jobs: 2,
        timeout: 60,
        checker: std::env::var_os("OCI_CHECKER").map(PathBuf::from),
        script: bundle::default_rootfs_script(),
        workdir: None,
        keep: false,
        verbose: false,
        list: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut val = || -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .with_context(|| format!("{flag} needs a value\n{USAGE}")),
            }
        };
        match flag.as_str() {
            "--runtime" => a.runtime = Some(PathBuf::from(val()?)),
            "--filter" => a.filter.extend(val()?.split(',').map(str::to_string)),
            "--jobs" | "-j" => a.jobs = val()?.parse().context("--jobs wants a number")?,
            "--timeout" => a.timeout = val()?.parse().context("--timeout wants seconds")?,
            "--checker" => a.checker = Some(PathBuf::from(val()?)),
            "--rootfs-script" => a.script = PathBuf::from(val()?),
            "--workdir" => a.workdir = Some(PathBuf::from(val()?)),
            "--keep" => a.keep = true,
            "--verbose" | "-v" => a.verbose = true,
            "--list" => a.list = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(a)
}

fn find_checker(explicit: Option<PathBuf>) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = explicit {
        candidates.push(p);
    } else if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("oci-checker"));
            let profile = dir.file_name().map(|s| s.to_owned()).unwrap_or_default();
            if let Some(target) = dir.parent() {
                candidates.push(
                    target
                        .join("x86_64-unknown-linux-gnu")
                        .join(&profile)
                        .join("oci-checker"),
                );
                for p in ["release", "debug"] {
                    candidates.push(
                        target
                            .join("x86_64-unknown-linux-gnu")
                            .join(p)
                            .join("oci-checker"),
                    );
                }
            }
        }
    }
    for c in &candidates {
        if c.is_file() && bundle::is_static_elf(c).unwrap_or(false) {
            return Ok(c.clone());
        }
    }
    bail!(
        "no statically linked oci-checker found (looked at {:?}); build it with\n  \
         RUSTFLAGS='-C target-feature=+crt-static' cargo build -p boxrun-conformance \
         --bin oci-checker --target x86_64-unknown-linux-gnu\nor pass --checker PATH",
        candidates
    )
}

fn main() {
    match real_main() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("oci-conformance: {e:#}");
            std::process::exit(2);
        }
    }
}

fn real_main() -> Result<i32> {
    let args = parse_args()?;
    let all = cases::all();
    let selected: Vec<_> = all
        .into_iter()
        .filter(|c| {
            args.filter.is_empty() || args.filter.iter().any(|f| c.name.contains(f.as_str()))
        })
        .collect();
    if args.list {
        for c in &selected {
            println!("{}", c.name);
        }
        return Ok(0);
    }
    let runtime = args
        .runtime
        .context("no runtime: set RUNTIME=/path/to/runtime or pass --runtime")?;
    let runtime = std::fs::canonicalize(&runtime)
        .with_context(|| format!("runtime {} not found", runtime.display()))?;
    let checker = find_checker(args.checker)?;
    let work = args.workdir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("oci-conformance.{}", std::process::id()))
    });
    std::fs::create_dir_all(&work).with_context(|| format!("mkdir {}", work.display()))?;
    let work = std::fs::canonicalize(&work)?;
    let base = work.join("base-rootfs");
    bundle::build_base(&args.script, &base, &checker)?;
    let suite = Suite {
        runtime: runtime.clone(),
        work: work.clone(),
        base_rootfs: base,
        timeout: Duration::from_secs(args.timeout),
        keep: args.keep,
        verbose: args.verbose,
    };
    eprintln!(
        "oci-conformance: {} cases against {} (jobs {}, checker {})",
        selected.len(),
        runtime.display(),
        args.jobs,
        checker.display()
    );
    runner::install_interrupt_handler();
    let reports = runner::run_cases(&suite, &selected, args.jobs);
    print!("{}", runner::render(&reports, cases::note));
    if !args.keep {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("kept {}", Path::new(&work).display());
    }
    let failed = reports
        .iter()
        .any(|r| matches!(r.outcome, Some(runner::Outcome::Fail(_))));
    Ok(i32::from(failed))
}
