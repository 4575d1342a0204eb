//! The orchestrator: prepares rootfs and bundles, runs every case in
//! interleaved rounds (one worker process per runtime per round, the runtime
//! order rotated every round), and reports.

mod boxctl;
mod cases;
mod settle;

use settle::{settle, QUIET_BUSY};

use crate::bundle::{self, BundleOpts};
use crate::report::{CaseReport, Outcome, Row};
use crate::spec::{parse_samples, Sample, Spec, Step};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

type Error = Box<dyn std::error::Error>;

/// Command-line options of `boxrun-bench run`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scratch directory (created and removed by run.sh).
    pub work: PathBuf,
    /// Unique token in every container id and cgroup of this run.
    pub nonce: String,
    /// Repository root.
    pub repo: PathBuf,
    /// boxrun binary.
    pub boxrun: PathBuf,
    /// boxctl binary.
    pub boxctl: PathBuf,
    /// runc binary.
    pub runc: PathBuf,
    /// crun binary.
    pub crun: PathBuf,
    /// Fewer rounds.
    pub quick: bool,
    /// Cases to run.
    pub cases: Vec<u32>,
    /// Override of the number of rounds of every case.
    pub rounds: Option<u32>,
    /// Override of the iterations per round of every case.
    pub iters: Option<u32>,
    /// Directory receiving summary.json, samples.tsv and report.md.
    pub results: PathBuf,
    /// The command line as typed, recorded in the results.
    pub command: String,
    /// Before each round, wait up to this long for the machine to be quiet.
    pub settle_secs: u32,
}

#[derive(Debug, Clone)]
struct Runtime {
    key: &'static str,
    label: String,
    bin: PathBuf,
    needs_ns: bool,
    missing: Option<String>,
}

#[derive(Debug, Clone)]
struct Variant {
    key: String,
    label: String,
    /// Index into the runtimes; `None` for the bare unshare baseline.
    rt: Option<usize>,
    root: PathBuf,
    bundle: PathBuf,
    pre: Vec<Step>,
    /// Extra environment of every command of this variant.
    env: Vec<(String, String)>,
    /// Cleanup after a failed iteration, instead of `RUNTIME delete -f {id}`.
    on_fail: Option<Vec<Vec<String>>>,
}

struct CaseDef {
    number: u32,
    title: String,
    notes: Vec<String>,
    variants: Vec<Variant>,
    rounds: u32,
    iters: u32,
    warmup: u32,
    steps: StepsFn,
}

/// Builds a variant's iteration steps from the runtime's argv prefix.
type StepsFn = Box<dyn Fn(&Variant, &[String]) -> Vec<Step>>;

/// What one case's rounds produced.
struct CaseRun {
    raw: Raw,
    absent: Absent,
    /// Rounds that started although the machine was still busy.
    busy_rounds: u32,
}

/// Variants without samples: key → (what the row says instead, error detail).
type Absent = HashMap<String, (String, Option<String>)>;

type Raw = HashMap<(String, String), Vec<Sample>>;

struct Bench {
    o: Options,
    runtimes: Vec<Runtime>,
    rootfs: PathBuf,
    empty: PathBuf,
    outer_mntns: String,
    self_exe: PathBuf,
    tsv: String,
    seccomp: Option<(Value, String)>,
}

const RT_BOXRUN: usize = 0;
const RT_RUNC: usize = 1;
const RT_CRUN: usize = 2;

fn version(bin: &Path) -> Option<String> {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let first = text.lines().next()?.to_owned();
    Some(match first.split_once("version ") {
        Some((_, v)) => v.trim().to_owned(),
        None => first.trim().to_owned(),
    })
}

fn runtime(key: &'static str, bin: &Path, needs_ns: bool, not_there: &str) -> Runtime {
    let (label, missing) = if !bin.exists() {
        (key.to_owned(), Some(not_there.to_owned()))
    } else {
        match version(bin) {
            Some(v) => (format!("{key} {v}"), None),
            None => (
                key.to_owned(),
                Some(format!("`{} --version` fails", bin.display())),
            ),
        }
    };
    Runtime {
        key,
        label,
        bin: bin.to_owned(),
        needs_ns,
        missing,
    }
}

fn sh(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("bench worker:"))
        .collect();
    v[v.len().saturating_sub(lines)..].join(" | ")
}

impl Bench {
    fn new(o: Options) -> Result<Bench, Error> {
        for d in ["bundles", "roots", "specs", "logs", "pids"] {
            fs::create_dir_all(o.work.join(d))
                .map_err(|e| format!("create {}/{d}: {e}", o.work.display()))?;
        }
        let rootfs = o.work.join("rootfs");
        let script = o.repo.join("bundles/busybox/build-rootfs.sh");
        let st = Command::new(&script)
            .arg(&rootfs)
            .status()
            .map_err(|e| format!("run {}: {e}", script.display()))?;
        if !st.success() {
            return Err(format!("{} {} failed: {st}", script.display(), rootfs.display()).into());
        }
        let empty = o.work.join("empty");
        fs::write(&empty, "").map_err(|e| format!("create {}: {e}", empty.display()))?;
        let outer_mntns = fs::read_link("/proc/self/ns/mnt")
            .map_err(|e| format!("read /proc/self/ns/mnt: {e}"))?
            .to_string_lossy()
            .into_owned();
        let self_exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let runtimes = vec![
            runtime("boxrun", &o.boxrun, false, "not built"),
            runtime(
                "runc",
                &o.runc,
                false,
                "not installed: apt-get install runc",
            ),
            runtime("crun", &o.crun, true, "not installed"),
        ];
        let seccomp = bundle::seccomp_profile(&o.repo).ok();
        Ok(Bench {
            o,
            runtimes,
            rootfs,
            empty,
            outer_mntns,
            self_exe,
            tsv: String::from(
                "case\truntime\tstep\tround\titer\twall_ns\tuser_us\tsys_us\tmaxrss_kb\n",
            ),
            seccomp,
        })
    }

    fn bundle(
        &self,
        name: &str,
        hardened: bool,
        cgroups_path: Option<String>,
    ) -> Result<PathBuf, Error> {
        let dir = self.o.work.join("bundles").join(name);
        let profile = if hardened {
            Some(
                &self
                    .seccomp
                    .as_ref()
                    .ok_or("no docker-default seccomp profile: see benches/fixtures/")?
                    .0,
            )
        } else {
            None
        };
        let cfg = bundle::config(
            &self.o.repo,
            &BundleOpts {
                rootfs: &self.rootfs,
                hardened: profile,
                cgroups_path,
            },
        )?;
        bundle::write(&dir, &cfg)?;
        Ok(dir)
    }

    fn variant(&self, case: u32, rt: usize, suffix: &str, bundle: &Path) -> Result<Variant, Error> {
        let r = &self.runtimes[rt];
        let key = format!("{}{suffix}", r.key);
        let root = self.o.work.join("roots").join(format!("c{case}-{key}"));
        fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
        // For run.sh's cleanup trap: which binary owns this root, and whether
        // it must be run in the crun namespace.
        let meta = format!("bin={}\nns={}\n", r.bin.display(), u8::from(r.needs_ns));
        fs::write(root.with_extension("meta"), meta)?;
        Ok(Variant {
            key,
            label: r.label.clone(),
            rt: Some(rt),
            root,
            bundle: bundle.to_owned(),
            pre: vec![],
            env: vec![],
            on_fail: None,
        })
    }

    fn rt_argv(&self, v: &Variant, rest: &[&str]) -> Vec<String> {
        let bin =
            v.rt.map(|i| self.runtimes[i].bin.clone())
                .unwrap_or_default();
        let mut a = vec![
            bin.display().to_string(),
            "--root".into(),
            v.root.display().to_string(),
        ];
        a.extend(rest.iter().map(|s| s.to_string()));
        a
    }

    fn rounds(&self, full: u32, quick: u32) -> u32 {
        self.o
            .rounds
            .unwrap_or(if self.o.quick { quick } else { full })
            .max(1)
    }

    fn iters(&self, full: u32, quick: u32) -> u32 {
        self.o
            .iters
            .unwrap_or(if self.o.quick { quick } else { full })
            .max(1)
    }

    fn run_variants(&self, number: u32) -> Result<[Variant; 3], Error> {
        let b = self.bundle("c1", false, None)?;
        Ok([
            self.variant(number, RT_BOXRUN, "", &b)?,
            self.variant(number, RT_RUNC, "", &b)?,
            self.variant(number, RT_CRUN, "", &b)?,
        ])
    }

    fn worker(&self, v: &Variant, spec: &Spec, tag: &str) -> Result<Vec<(String, Sample)>, String> {
        let dir = self.o.work.join("specs");
        let spec_path = dir.join(format!("{tag}.json"));
        let out_path = dir.join(format!("{tag}.tsv"));
        fs::write(&spec_path, spec.to_json())
            .map_err(|e| format!("write {}: {e}", spec_path.display()))?;
        let needs_ns = v.rt.is_some_and(|i| self.runtimes[i].needs_ns);
        let mut cmd = if needs_ns {
            let mut c = Command::new("unshare");
            c.args(["-m", "--propagation", "private"])
                .arg(&self.self_exe);
            c
        } else {
            Command::new(&self.self_exe)
        };
        cmd.arg("worker")
            .arg("--spec")
            .arg(&spec_path)
            .arg("--out")
            .arg(&out_path);
        if needs_ns {
            cmd.arg("--hide-unified")
                .arg(&self.empty)
                .arg("--outer-mntns")
                .arg(&self.outer_mntns);
        }
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("spawn worker: {e}"))?;
        let samples = fs::read_to_string(&out_path)
            .ok()
            .and_then(|t| parse_samples(&t).ok())
            .unwrap_or_default();
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            return Err(format!("{msg} [log: {}]", tail(Path::new(&spec.log), 3)));
        }
        Ok(samples)
    }

    fn spec_for(&self, def: &CaseDef, v: &Variant, round: &str, iterations: u32) -> Spec {
        let rt = v.rt.map(|i| self.runtimes[i].bin.display().to_string());
        let rtv = rt.clone().into_iter().collect::<Vec<_>>();
        let on_fail = match (&v.on_fail, &rt) {
            (Some(cmds), _) => cmds.clone(),
            (None, Some(_)) => vec![self.rt_argv(v, &["delete", "-f", "{id}"])],
            (None, None) => vec![],
        };
        Spec {
            iterations,
            id_prefix: format!("bxbench-{}-c{}-{}-{round}", self.o.nonce, def.number, v.key),
            env: v.env.clone(),
            steps: (def.steps)(v, &rtv),
            on_fail,
            log: self
                .o
                .work
                .join("logs")
                .join(format!("c{}-{}.log", def.number, v.key))
                .display()
                .to_string(),
        }
    }

    /// Delete whatever containers a variant left in its root.
    fn sweep(&self, def: &CaseDef, v: &Variant) {
        let Ok(rd) = fs::read_dir(&v.root) else {
            return;
        };
        let ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("bxbench-"))
            .collect();
        if ids.is_empty() {
            return;
        }
        let spec = Spec {
            iterations: 1,
            id_prefix: "sweep".into(),
            env: vec![],
            steps: ids
                .iter()
                .map(|id| Step::BestEffort {
                    argv: self.rt_argv(v, &["delete", "-f", id]),
                })
                .collect(),
            on_fail: vec![],
            log: self.o.work.join("logs/sweep.log").display().to_string(),
        };
        let _ = self.worker(v, &spec, &format!("sweep-c{}-{}", def.number, v.key));
    }

    fn run_case(&mut self, def: &CaseDef) -> CaseRun {
        let mut raw: Raw = HashMap::new();
        let mut failed: HashMap<String, (String, String)> = HashMap::new();
        let mut missing: HashMap<String, String> = HashMap::new();
        let mut active: Vec<&Variant> = Vec::new();
        for v in &def.variants {
            if let Some(i) = v.rt {
                if let Some(why) = &self.runtimes[i].missing {
                    missing.insert(v.key.clone(), why.clone());
                    continue;
                }
            }
            active.push(v);
        }
        // Warm-up (page cache, dentries, first cgroup creation): discarded.
        if def.warmup > 0 {
            for v in active.clone() {
                let spec = self.spec_for(def, v, "w", def.warmup);
                if let Err(e) = self.worker(v, &spec, &format!("c{}-{}-w", def.number, v.key)) {
                    failed.insert(v.key.clone(), ("failed in warm-up".into(), e));
                    self.sweep(def, v);
                }
            }
            active.retain(|v| !failed.contains_key(&v.key));
        }
        let mut busy_rounds = 0;
        for round in 0..def.rounds {
            if self.o.settle_secs > 0 && !settle(self.o.settle_secs) {
                busy_rounds += 1;
            }
            let n = active.len().max(1);
            let mut order = active.clone();
            order.rotate_left(round as usize % n);
            for v in order {
                if failed.contains_key(&v.key) {
                    continue;
                }
                let tag = format!("r{round}");
                let spec = self.spec_for(def, v, &tag, def.iters);
                match self.worker(v, &spec, &format!("c{}-{}-{tag}", def.number, v.key)) {
                    Ok(samples) => {
                        for (i, (label, s)) in samples.into_iter().enumerate() {
                            self.tsv.push_str(&format!(
                                "{}\t{}\t{}\t{round}\t{i}\t{}\t{}\t{}\t{}\n",
                                def.number,
                                v.key,
                                label,
                                s.wall_ns,
                                s.user_us,
                                s.sys_us,
                                s.maxrss_kb
                            ));
                            raw.entry((v.key.clone(), label)).or_default().push(s);
                        }
                    }
                    Err(e) => {
                        failed.insert(v.key.clone(), (format!("failed in round {round}"), e));
                        self.sweep(def, v);
                    }
                }
            }
            eprint!(".");
        }
        eprintln!();
        for v in &def.variants {
            if v.rt.is_some() {
                self.sweep(def, v);
            }
        }
        let mut absent: Absent = failed
            .into_iter()
            .map(|(k, (short, detail))| (k, (short, Some(detail))))
            .collect();
        absent.extend(missing.into_iter().map(|(k, why)| (k, (why, None))));
        CaseRun {
            raw,
            absent,
            busy_rounds,
        }
    }

    fn report(&self, def: &CaseDef, run: &CaseRun) -> CaseReport {
        let failed = &run.absent;
        let rows = rows(def, &run.raw, failed);
        CaseReport {
            number: def.number,
            title: def.title.clone(),
            notes: {
                let mut n = def.notes.clone();
                n.push(format!(
                    "{} interleaved rounds × {} runs per runtime (runtime order rotated each round), after {} discarded warm-up run(s).",
                    def.rounds, def.iters, def.warmup
                ));
                if self.o.settle_secs > 0 {
                    n.push(format!(
                        "each round waited up to {} s for the machine to be quiet (< {:.0}% of all CPUs busy); {} of {} rounds started on a busy machine.",
                        self.o.settle_secs,
                        QUIET_BUSY * 100.0,
                        run.busy_rounds,
                        def.rounds
                    ));
                }
                n
            },
            rows,
            extra: def
                .variants
                .iter()
                .filter_map(|v| match failed.get(&v.key) {
                    Some((why, Some(detail))) => {
                        Some(format!("- {} ({}) {why}: {detail}", v.label, v.key))
                    }
                    _ => None,
                })
                .collect(),
            data: Value::Null,
        }
    }
}

/// The table rows of a case: one per recorded step label (in step order)
/// and variant having that step.
fn rows(def: &CaseDef, raw: &Raw, failed: &Absent) -> Vec<Row> {
    let labels_of = |v: &Variant| -> Vec<String> {
        (def.steps)(v, &["rt".to_owned()])
            .iter()
            .filter_map(|s| s.recorded_label().map(str::to_owned))
            .collect()
    };
    let mut labels: Vec<String> = Vec::new();
    for v in &def.variants {
        for l in labels_of(v) {
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
    }
    let mut rows = Vec::new();
    for l in &labels {
        for v in &def.variants {
            if !labels_of(v).contains(l) {
                continue;
            }
            let outcome = match failed.get(&v.key) {
                Some((why, None)) => Outcome::Missing(why.clone()),
                Some((why, Some(_))) => Outcome::Missing(format!("{why} (see below)")),
                None => match raw.get(&(v.key.clone(), l.clone())) {
                    Some(s) => Outcome::from_samples(s),
                    None => Outcome::Missing("no samples".into()),
                },
            };
            rows.push(Row {
                step: l.clone(),
                key: v.key.clone(),
                label: v.label.clone(),
                outcome,
                is_reference: v.key == "crun",
            });
        }
    }
    rows
}

fn rt_cmd(rt: &[String], v: &Variant, rest: &[&str]) -> Vec<String> {
    let mut a = rt.to_vec();
    a.push("--root".into());
    a.push(v.root.display().to_string());
    a.extend(rest.iter().map(|s| s.to_string()));
    a
}

/// Run the selected cases, print their tables and write the result files.
pub fn run(o: Options) -> Result<(), Error> {
    let mut b = Bench::new(o)?;
    let load_before = sh("cut -d' ' -f1-3 /proc/loadavg");
    let meta = json!({
        "date": sh("date -u +%Y-%m-%dT%H:%M:%SZ"),
        "command": b.o.command,
        "kernel": sh("uname -r"),
        "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"),
        "cores": sh("nproc"),
        "loadavg_before": load_before,
        "runtimes": b.runtimes.iter().map(|r| json!({
            "key": r.key, "label": r.label, "bin": r.bin, "missing": r.missing,
        })).collect::<Vec<_>>(),
        "nonce": b.o.nonce,
    });
    let header = format!(
        "boxrun benchmarks — {} — kernel {}, {} cores ({}), load {}\ncommand: {}\n",
        meta["date"].as_str().unwrap_or(""),
        meta["kernel"].as_str().unwrap_or(""),
        meta["cores"].as_str().unwrap_or(""),
        meta["cpu"].as_str().unwrap_or("").trim(),
        load_before,
        b.o.command
    );
    println!("{header}");
    for r in &b.runtimes {
        if let Some(why) = &r.missing {
            println!("{}: {why} ({})", r.key, r.bin.display());
        }
    }
    println!();
    let mut reports: Vec<CaseReport> = Vec::new();
    let mut case1_raw: Option<Raw> = None;
    for &n in &b.o.cases.clone() {
        eprint!("case {n} ");
        let rep = match n {
            4 => b.case4(case1_raw.as_ref())?,
            6 => {
                let reps = b.case6();
                for rep in &reps[..reps.len().saturating_sub(1)] {
                    print!("{}", rep.markdown());
                }
                reports.extend(reps[..reps.len().saturating_sub(1)].iter().cloned());
                match reps.last() {
                    Some(last) => last.clone(),
                    None => continue,
                }
            }
            _ => match b.case_def(n) {
                Ok(Some(def)) => {
                    let run = b.run_case(&def);
                    let rep = b.report(&def, &run);
                    if n == 1 {
                        case1_raw = Some(run.raw);
                    }
                    rep
                }
                Ok(None) => {
                    eprintln!("no such case");
                    continue;
                }
                Err(e) => CaseReport {
                    number: n,
                    title: "not run".into(),
                    notes: vec![],
                    rows: vec![],
                    extra: vec![format!("case {n} could not be prepared: {e}")],
                    data: Value::Null,
                },
            },
        };
        print!("{}", rep.markdown());
        reports.push(rep);
    }
    let load_after = sh("cut -d' ' -f1-3 /proc/loadavg");
    println!("load average after: {load_after}");
    let mut meta = meta;
    meta["loadavg_after"] = json!(load_after);
    fs::create_dir_all(&b.o.results)
        .map_err(|e| format!("create {}: {e}", b.o.results.display()))?;
    let summary =
        json!({"meta": meta, "cases": reports.iter().map(CaseReport::json).collect::<Vec<_>>()});
    let md: String = std::iter::once(header)
        .chain(std::iter::once(String::from("\n")))
        .chain(reports.iter().map(CaseReport::markdown))
        .chain(std::iter::once(format!(
            "load average after: {load_after}\n"
        )))
        .collect();
    fs::write(
        b.o.results.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    fs::write(b.o.results.join("samples.tsv"), &b.tsv)?;
    fs::write(b.o.results.join("report.md"), md)?;
    println!(
        "results: {}/{{summary.json,samples.tsv,report.md}}",
        b.o.results.display()
    );
    Ok(())
}

/// Write one case's bundle to `out` (used by profile.sh).
pub fn write_bundle(
    repo: &Path,
    case: u32,
    rootfs: &Path,
    out: &Path,
    cgroups_path: Option<String>,
) -> Result<(), Error> {
    let seccomp = if case == 2 {
        Some(bundle::seccomp_profile(repo)?.0)
    } else {
        None
    };
    let cfg = bundle::config(
        repo,
        &BundleOpts {
            rootfs,
            hardened: seccomp.as_ref(),
            cgroups_path,
        },
    )?;
    bundle::write(out, &cfg)
}
