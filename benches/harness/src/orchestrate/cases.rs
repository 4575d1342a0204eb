//! The definitions of cases 1, 2, 3 and 5 (variants, bundles, steps) and
//! case 4's size/RSS table.

use super::{rt_cmd, Bench, CaseDef, Raw, Variant, RT_BOXRUN, RT_CRUN, RT_RUNC};
use crate::bundle;
use crate::report::{fmt_bytes, fmt_kib, CaseReport, Summary};
use crate::sizes;
use crate::spec::Step;
use serde_json::{json, Value};
use std::path::PathBuf;

type Error = Box<dyn std::error::Error>;

impl Bench {
    pub(super) fn case_def(&self, number: u32) -> Result<Option<CaseDef>, Error> {
        let crun_note = "crun runs inside one private mount namespace per batch \
            (`unshare -m --propagation private`) in which an empty file is bind-mounted over \
            /sys/fs/cgroup/unified/cgroup.controllers, because crun 1.8.1 refuses this hybrid \
            cgroup host otherwise; the namespace is set up once per batch, outside the timed \
            region, so each timed crun invocation costs only crun itself."
            .to_owned();
        let cpu_note =
            "CPU = user + system time of the runtime's whole process tree (wait4 rusage \
            of the runtime process, which includes its reaped children: runc init, the container \
            process, ...)."
                .to_owned();
        Ok(Some(match number {
            1 => {
                let [bx, rc, cr] = self.run_variants(1)?;
                let baseline = Variant {
                    key: "baseline".into(),
                    label: "unshare -pfmnui + chroot (baseline)".into(),
                    rt: None,
                    root: PathBuf::new(),
                    bundle: PathBuf::new(),
                    pre: vec![],
                    env: vec![],
                    on_fail: None,
                };
                let rootfs = self.rootfs.display().to_string();
                CaseDef {
                    number,
                    title: "`run` of /bin/true, default `runc spec` bundle (terminal=false), busybox rootfs".into(),
                    notes: vec![
                        cpu_note,
                        crun_note,
                        format!("baseline: `unshare -pfmnui --mount-proc=ROOTFS/proc chroot ROOTFS /bin/true` — the same namespaces as the bundle (pid, net, ipc, uts, mount) + proc mount + chroot + exec, no runtime."),
                    ],
                    variants: vec![bx, rc, cr, baseline],
                    rounds: self.rounds(20, 4),
                    iters: self.iters(5, 3),
                    warmup: if self.o.quick { 1 } else { 3 },
                    steps: Box::new(move |v, rt| {
                        let argv = if v.rt.is_none() {
                            vec![
                                "unshare".into(),
                                "-pfmnui".into(),
                                format!("--mount-proc={rootfs}/proc"),
                                "chroot".into(),
                                rootfs.clone(),
                                "/bin/true".into(),
                            ]
                        } else {
                            rt_cmd(rt, v, &["run", "-b", &v.bundle.display().to_string(), "{id}"])
                        };
                        vec![Step::Timed {
                            label: "run".into(),
                            argv,
                        }]
                    }),
                }
            }
            2 => {
                let Some((_, source)) = &self.seccomp else {
                    return Err("case 2: no docker-default seccomp profile found".into());
                };
                let cg = |k: &str| Some(format!("/boxrun-bench/{}-{k}", self.o.nonce));
                let b_cold = self.bundle("c2-boxrun-cold", true, cg("boxrun-cold"))?;
                let b_warm = self.bundle("c2-boxrun-warm", true, cg("boxrun-warm"))?;
                let b_none = self.bundle("c2-boxrun-nocache", true, cg("boxrun-nocache"))?;
                let b_runc = self.bundle("c2-runc", true, cg("runc"))?;
                let b_crun = self.bundle("c2-crun", true, cg("crun"))?;
                let mut cold = self.variant(2, RT_BOXRUN, "-cold", &b_cold)?;
                cold.label = format!("{} (seccomp cache cold)", cold.label);
                // Cold = compile and write the cache, as on a first run.
                cold.pre = vec![Step::RemoveTree {
                    path: cold.root.join("seccomp-cache").display().to_string(),
                }];
                let mut warm = self.variant(2, RT_BOXRUN, "-warm", &b_warm)?;
                warm.label = format!("{} (seccomp cache warm)", warm.label);
                let mut nocache = self.variant(2, RT_BOXRUN, "-nocache", &b_none)?;
                nocache.label = format!("{} (BOXRUN_SECCOMP_CACHE=0)", nocache.label);
                nocache.env = vec![("BOXRUN_SECCOMP_CACHE".into(), "0".into())];
                CaseDef {
                    number,
                    title: "`run` of /bin/true with Docker's default seccomp profile, a cgroup namespace and memory/pids/cpu limits".into(),
                    notes: vec![
                        format!("seccomp profile: {source}; limits: memory {} MiB, pids {}, cpu shares 512 + quota 50 ms / 100 ms; cgroupsPath /boxrun-bench/<run>-<runtime>.", bundle::MEMORY_LIMIT >> 20, bundle::PIDS_LIMIT),
                        "boxrun cold = <root>/seccomp-cache deleted before every run (untimed), so the filter is compiled and the cache written; warm = cache kept; BOXRUN_SECCOMP_CACHE=0 = compiled every run, cache neither read nor written. runc and crun have no filter cache.".into(),
                        cpu_note,
                        crun_note,
                    ],
                    variants: vec![
                        cold,
                        warm,
                        nocache,
                        self.variant(2, RT_RUNC, "", &b_runc)?,
                        self.variant(2, RT_CRUN, "", &b_crun)?,
                    ],
                    rounds: self.rounds(15, 3),
                    iters: self.iters(4, 3),
                    warmup: if self.o.quick { 1 } else { 2 },
                    steps: Box::new(|v, rt| {
                        let mut s = v.pre.clone();
                        s.push(Step::Timed {
                            label: "run".into(),
                            argv: rt_cmd(rt, v, &["run", "-b", &v.bundle.display().to_string(), "{id}"]),
                        });
                        s
                    }),
                }
            }
            3 => {
                let variants = self.run_variants(3)?.to_vec();
                let pids = self.o.work.join("pids").display().to_string();
                CaseDef {
                    number,
                    title: "`create`, `start`, `delete` timed separately (case 1 bundle)".into(),
                    notes: vec![
                        "per iteration: create --pid-file (timed), pidfd_open on the init pid, start (timed), wait for the container process to exit (pidfd, untimed), delete (timed).".into(),
                        cpu_note,
                        crun_note,
                    ],
                    variants,
                    rounds: self.rounds(15, 3),
                    iters: self.iters(4, 3),
                    warmup: if self.o.quick { 1 } else { 2 },
                    steps: Box::new(move |v, rt| {
                        let pidfile = format!("{pids}/{{id}}.pid");
                        vec![
                            Step::Timed {
                                label: "create".into(),
                                argv: rt_cmd(rt, v, &["create", "-b", &v.bundle.display().to_string(), "--pid-file", &pidfile, "{id}"]),
                            },
                            Step::PidfdOpen { path: pidfile },
                            Step::Timed {
                                label: "start".into(),
                                argv: rt_cmd(rt, v, &["start", "{id}"]),
                            },
                            Step::PidfdWait { timeout_ms: 10_000 },
                            Step::Timed {
                                label: "delete".into(),
                                argv: rt_cmd(rt, v, &["delete", "{id}"]),
                            },
                        ]
                    }),
                }
            }
            5 => {
                let variants = self.run_variants(5)?.to_vec();
                CaseDef {
                    number,
                    title: "50 containers with `run` (/bin/true): sequentially and 2 at a time".into(),
                    notes: vec![
                        "one sample = the wall time of the whole batch of 50 (divide by 50 for per-container cost); CPU = sum over the 50 process trees.".into(),
                        crun_note,
                    ],
                    variants,
                    rounds: self.rounds(5, 2),
                    iters: self.iters(1, 1),
                    warmup: 0,
                    steps: Box::new(|v, rt| {
                        let argv = rt_cmd(rt, v, &["run", "-b", &v.bundle.display().to_string(), "{id}-{j}"]);
                        vec![
                            Step::Batch {
                                label: "50 sequential".into(),
                                n: 50,
                                parallel: 1,
                                argv: argv.iter().map(|a| a.replace("{j}", "s{j}")).collect(),
                            },
                            Step::Batch {
                                label: "50, 2 at a time".into(),
                                n: 50,
                                parallel: 2,
                                argv: argv.iter().map(|a| a.replace("{j}", "p{j}")).collect(),
                            },
                        ]
                    }),
                }
            }
            _ => return Ok(None),
        }))
    }

    pub(super) fn case4(&mut self, case1: Option<&Raw>) -> Result<CaseReport, Error> {
        let owned;
        let raw = match case1 {
            Some(r) => r,
            None => {
                let def = self.case_def(1)?.ok_or("case 1 missing")?;
                owned = self.run_case(&def).raw;
                &owned
            }
        };
        let mut extra = vec![
            "| runtime | binary | binary + shared libs (ldd) | peak RSS, median | min–max | ratio vs crun (RSS / with libs) |".to_owned(),
            "|---|---:|---:|---:|---:|---:|".to_owned(),
        ];
        let mut data: Vec<(String, Value)> = Vec::new();
        let crun_rss = raw
            .get(&("crun".to_owned(), "run".to_owned()))
            .and_then(|s| Summary::of(&s.iter().map(|x| x.maxrss_kb as f64).collect::<Vec<_>>()));
        let crun_size = sizes::measure(&self.runtimes[RT_CRUN].bin);
        for rt in &self.runtimes {
            if let Some(why) = &rt.missing {
                extra.push(format!("| {} | {why} | | | | |", rt.label));
                continue;
            }
            let sz = sizes::measure(&rt.bin);
            let rss = raw
                .get(&(rt.key.to_owned(), "run".to_owned()))
                .and_then(|s| {
                    Summary::of(&s.iter().map(|x| x.maxrss_kb as f64).collect::<Vec<_>>())
                });
            let (med, range, ratio) = match (&rss, &crun_rss) {
                (Some(r), Some(c)) => (
                    fmt_kib(r.median),
                    format!("{}–{}", fmt_kib(r.min), fmt_kib(r.max)),
                    format!(
                        "{:.2}× / {:.2}×",
                        r.median / c.median,
                        sz.with_libs as f64 / crun_size.with_libs.max(1) as f64
                    ),
                ),
                (Some(r), None) => (
                    fmt_kib(r.median),
                    format!("{}–{}", fmt_kib(r.min), fmt_kib(r.max)),
                    "–".into(),
                ),
                _ => ("not measured".into(), String::new(), "–".into()),
            };
            extra.push(format!(
                "| {} | {} | {} ({} libs) | {med} | {range} | {ratio} |",
                rt.label,
                fmt_bytes(sz.binary),
                fmt_bytes(sz.with_libs),
                sz.libs.len()
            ));
            data.push((
                rt.key.to_owned(),
                json!({
                    "binary_bytes": sz.binary,
                    "with_libs_bytes": sz.with_libs,
                    "libs": sz.libs,
                    "peak_rss_kb": rss.map(|r| json!({"median": r.median, "min": r.min, "max": r.max})),
                }),
            ));
        }
        Ok(CaseReport {
            number: 4,
            title: "peak RSS of the runtime and binary size with its shared libraries".into(),
            notes: vec![
                "peak RSS = ru_maxrss from wait4 on the runtime process during case 1's `run`: the largest resident set of any process of the tree (the runtime itself, runc's re-exec'd `runc init`, the 1.2 MiB static busybox), median over all case 1 runs.".into(),
                "binary + shared libs = file sizes of the binary and of every library `ldd` resolves (dynamic loader included).".into(),
            ],
            rows: vec![],
            extra,
            data: Value::Object(data.into_iter().collect()),
        })
    }
}
