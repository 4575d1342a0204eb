//! `boxrun-bench`: the harness behind benches/run.sh and benches/profile.sh.
//!
//! Subcommands:
//! - `run`: orchestrate all cases (see benches/README.md);
//! - `worker`: run one batch spec and write its samples (internal);
//! - `bundle`: write a case's config.json (for profile.sh).

mod bundle;
mod orchestrate;
mod report;
mod sizes;
mod spec;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

type Error = Box<dyn std::error::Error>;

const USAGE: &str = "\
usage:
  boxrun-bench run --work DIR --nonce STR [--repo DIR] [--quick] [--cases 1,2,3]
                   [--rounds N] [--iters N] [--settle SECS] [--results DIR] [--boxrun PATH]
                   [--boxctl PATH] [--runc PATH] [--crun PATH] [--command STR]
  boxrun-bench worker --spec FILE --out FILE [--hide-unified EMPTY --outer-mntns NS]
  boxrun-bench bundle --case 1|2 --rootfs DIR --out DIR [--repo DIR] [--cgroups-path P]";

struct Args(Vec<String>);

impl Args {
    fn flag(&mut self, name: &str) -> bool {
        match self.0.iter().position(|a| a == name) {
            Some(i) => {
                self.0.remove(i);
                true
            }
            None => false,
        }
    }

    fn value(&mut self, name: &str) -> Result<Option<String>, Error> {
        let Some(i) = self.0.iter().position(|a| a == name) else {
            return Ok(None);
        };
        if i + 1 >= self.0.len() {
            return Err(format!("{name} needs a value\n{USAGE}").into());
        }
        let v = self.0.remove(i + 1);
        self.0.remove(i);
        Ok(Some(v))
    }

    fn required(&mut self, name: &str) -> Result<String, Error> {
        self.value(name)?
            .ok_or_else(|| format!("missing {name}\n{USAGE}").into())
    }

    fn number(&mut self, name: &str) -> Result<Option<u32>, Error> {
        self.value(name)?
            .map(|v| {
                v.parse::<u32>()
                    .map_err(|_| format!("{name} wants a number, got {v:?}").into())
            })
            .transpose()
    }

    fn done(&self) -> Result<(), Error> {
        match self.0.first() {
            Some(a) => Err(format!("unexpected argument {a:?}\n{USAGE}").into()),
            None => Ok(()),
        }
    }
}

fn default_repo() -> PathBuf {
    // benches/harness/../.. when run from the source tree.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

/// Cases are numbered 1 to this (see benches/README.md).
const LAST_CASE: u32 = 7;

fn parse_cases(s: &str) -> Result<Vec<u32>, Error> {
    let mut v = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let n: u32 = part
            .trim()
            .parse()
            .map_err(|_| format!("--cases: {part:?} is not a case number (1-{LAST_CASE})"))?;
        if !(1..=LAST_CASE).contains(&n) {
            return Err(format!("--cases: no case {n}: cases are 1-{LAST_CASE}").into());
        }
        if !v.contains(&n) {
            v.push(n);
        }
    }
    v.sort_unstable();
    Ok(v)
}

fn cmd_run(mut a: Args) -> Result<(), Error> {
    let repo = a
        .value("--repo")?
        .map(PathBuf::from)
        .unwrap_or_else(default_repo);
    let work = PathBuf::from(a.required("--work")?);
    let quick = a.flag("--quick");
    let o = orchestrate::Options {
        nonce: a.required("--nonce")?,
        quick,
        cases: match a.value("--cases")? {
            Some(list) => parse_cases(&list)?,
            None => (1..=LAST_CASE).collect(),
        },
        rounds: a.number("--rounds")?,
        iters: a.number("--iters")?,
        results: a
            .value("--results")?
            .map(PathBuf::from)
            .unwrap_or_else(|| work.join("results")),
        boxrun: a
            .value("--boxrun")?
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("target/release/boxrun")),
        boxctl: a
            .value("--boxctl")?
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("target/release/boxctl")),
        runc: PathBuf::from(
            a.value("--runc")?
                .unwrap_or_else(|| "/usr/sbin/runc".into()),
        ),
        crun: PathBuf::from(a.value("--crun")?.unwrap_or_else(|| "/usr/bin/crun".into())),
        command: a
            .value("--command")?
            .unwrap_or_else(|| "boxrun-bench run".into()),
        settle_secs: a.number("--settle")?.unwrap_or(if quick { 2 } else { 5 }),
        work,
        repo,
    };
    a.done()?;
    orchestrate::run(o)
}

fn cmd_worker(mut a: Args) -> Result<(), Error> {
    let spec_path = a.required("--spec")?;
    let out = a.required("--out")?;
    let hide = a.value("--hide-unified")?;
    let outer = a.value("--outer-mntns")?;
    a.done()?;
    if let Some(empty) = hide {
        let outer = outer.ok_or("--hide-unified needs --outer-mntns")?;
        worker::hide_unified_controllers(&empty, &outer)?;
    }
    let text =
        std::fs::read_to_string(&spec_path).map_err(|e| format!("read spec {spec_path}: {e}"))?;
    let spec = spec::Spec::from_json(&text)?;
    worker::run(&spec, &out)
}

fn cmd_bundle(mut a: Args) -> Result<(), Error> {
    let repo = a
        .value("--repo")?
        .map(PathBuf::from)
        .unwrap_or_else(default_repo);
    let case = a.number("--case")?.unwrap_or(1);
    let rootfs = PathBuf::from(a.required("--rootfs")?);
    let out = PathBuf::from(a.required("--out")?);
    let cg = a.value("--cgroups-path")?;
    a.done()?;
    if !rootfs.is_absolute() {
        return Err(format!("--rootfs {} must be absolute", rootfs.display()).into());
    }
    orchestrate::write_bundle(&repo, case, &rootfs, &out, cg)
}

fn main() -> ExitCode {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() || argv[0] == "-h" || argv[0] == "--help" {
        eprintln!("{USAGE}");
        return if argv.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let sub = argv.remove(0);
    let a = Args(argv);
    let r = match sub.as_str() {
        "run" => cmd_run(a),
        "worker" => cmd_worker(a),
        "bundle" => cmd_bundle(a),
        other => Err(format!("unknown subcommand {other:?}\n{USAGE}").into()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("boxrun-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_sorted_deduplicated_and_checked() {
        assert_eq!(parse_cases("7,3,3,1").expect("valid"), [1, 3, 7]);
        assert!(parse_cases("8").is_err());
        assert!(parse_cases("0").is_err());
        assert!(parse_cases("2b").is_err());
    }
}
