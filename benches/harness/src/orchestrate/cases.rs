//! The definitions of cases 1, 2, 3, 5 and 7 (variants, bundles, steps) and
//! case 4's size/RSS table.

use super::{rt_cmd, Bench, CaseDef, Raw, Variant, RT_BOXRUN, RT_CRUN, RT_RUNC};
use crate::bundle;
use crate::report::{fmt_bytes, fmt_kib, CaseReport, Summary};
use crate::sizes;
use crate::spec::Step;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

type Error = Box<dyn std::error::Error>;

/// Case 7's row of the container process reaped by the harness.
const CONTAINER_PROCESS: &str = "container process (CPU only)";
/// Case 7's row of the summed steps.
const LIFECYCLE_SUM: &str = "create+start+delete";

/// One create/start/delete iteration (cases 3 and 7): the variant's untimed
/// `pre` steps, `create --pid-file` (timed), pidfd_open on the container
/// process, `start` (timed), wait until it has exited (pidfd, untimed; with
/// `reap`, its rusage is recorded under that label), `delete` (timed).
fn lifecycle_steps(pids: &str, v: &Variant, rt: &[String], reap: Option<&str>) -> Vec<Step> {
    let pidfile = format!("{pids}/{{id}}.pid");
    let bundle = v.bundle.display().to_string();
    let mut s = v.pre.clone();
    s.extend([
        Step::Timed {
            label: "create".into(),
            argv: rt_cmd(
                rt,
                v,
                &["create", "-b", &bundle, "--pid-file", &pidfile, "{id}"],
            ),
        },
        Step::PidfdOpen { path: pidfile },
        Step::Timed {
            label: "start".into(),
            argv: rt_cmd(rt, v, &["start", "{id}"]),
        },
        Step::PidfdWait {
            timeout_ms: 10_000,
            label: reap.map(str::to_owned),
        },
        Step::Timed {
            label: "delete".into(),
            argv: rt_cmd(rt, v, &["delete", "{id}"]),
        },
    ]);
    s
}

/// Case 7's iteration: case 3's, with the container process's rusage
/// recorded, and the sum of the three timed steps.
fn lifecycle_sum_steps(pids: &str, v: &Variant, rt: &[String]) -> Vec<Step> {
    let mut s = lifecycle_steps(pids, v, rt, Some(CONTAINER_PROCESS));
    s.push(Step::Sum {
        label: LIFECYCLE_SUM.into(),
        of: vec!["create".into(), "start".into(), "delete".into()],
    });
    s
}

impl Bench {
    /// The variants of the hardened bundle (cases 2 and 7): boxrun with its
    /// seccomp filter cache cold, warm and off, runc and crun, each with its
    /// own bundle and `cgroupsPath` `/boxrun-bench/<nonce>-c<case>-<variant>`;
    /// and the notes describing them.
    fn hardened_variants(&self, number: u32) -> Result<(Vec<Variant>, Vec<String>), Error> {
        let Some((_, source)) = &self.seccomp else {
            return Err(format!("case {number}: no docker-default seccomp profile found").into());
        };
        let mut variants = Vec::new();
        for (rt, suffix) in [
            (RT_BOXRUN, "-cold"),
            (RT_BOXRUN, "-warm"),
            (RT_BOXRUN, "-nocache"),
            (RT_RUNC, ""),
            (RT_CRUN, ""),
        ] {
            let mut v = self.variant(number, rt, suffix, Path::new(""))?;
            let cgroups_path = format!("/boxrun-bench/{}-c{number}-{}", self.o.nonce, v.key);
            v.bundle = self.bundle(&format!("c{number}-{}", v.key), true, Some(cgroups_path))?;
            match suffix {
                "-cold" => {
                    v.label = format!("{} (seccomp cache cold)", v.label);
                    // Cold = compile and write the cache, as on a first run.
                    v.pre = vec![Step::RemoveTree {
                        path: v.root.join("seccomp-cache").display().to_string(),
                    }];
                }
                "-warm" => v.label = format!("{} (seccomp cache warm)", v.label),
                "-nocache" => {
                    v.label = format!("{} (BOXRUN_SECCOMP_CACHE=0)", v.label);
                    v.env = vec![("BOXRUN_SECCOMP_CACHE".into(), "0".into())];
                }
                _ => {}
            }
            variants.push(v);
        }
        let notes = vec![
            format!("seccomp profile: {source}; cgroup namespace; limits: memory {} MiB, pids {}, cpu shares 512 + quota 50 ms / 100 ms; cgroupsPath /boxrun-bench/<run>-c{number}-<runtime>.", bundle::MEMORY_LIMIT >> 20, bundle::PIDS_LIMIT),
            "boxrun cold = <root>/seccomp-cache deleted before every iteration (untimed), so the filter is compiled and the cache written; warm = cache kept; BOXRUN_SECCOMP_CACHE=0 = compiled every time, cache neither read nor written. runc and crun have no filter cache.".into(),
        ];
        Ok((variants, notes))
    }

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
        let lifecycle_note = "per iteration: create --pid-file (timed), pidfd_open on the container process, start (timed), wait for the container process to exit (pidfd, untimed), delete (timed). The container process outlives `create`: the harness, not the runtime, reaps it, so its CPU is in none of the timed steps.".to_owned();
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
                let (variants, mut notes) = self.hardened_variants(2)?;
                notes.extend([cpu_note, crun_note]);
                CaseDef {
                    number,
                    title: "`run` of /bin/true with Docker's default seccomp profile, a cgroup namespace and memory/pids/cpu limits".into(),
                    notes,
                    variants,
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
                    notes: vec![lifecycle_note, cpu_note, crun_note],
                    variants,
                    rounds: self.rounds(15, 3),
                    iters: self.iters(4, 3),
                    warmup: if self.o.quick { 1 } else { 2 },
                    steps: Box::new(move |v, rt| lifecycle_steps(&pids, v, rt, None)),
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
            7 => {
                let (variants, mut notes) = self.hardened_variants(7)?;
                let pids = self.o.work.join("pids").display().to_string();
                notes.extend([
                    lifecycle_note,
                    format!("{LIFECYCLE_SUM} = per iteration, the sum of its three timed steps (wall and CPU; peak RSS the largest), so without the untimed waits between them; its median is not the sum of the three medians."),
                    format!("{CONTAINER_PROCESS} = rusage of the container process (the pid of --pid-file: the runtime's init, then /bin/true), reaped by the harness once it has exited; no wall time (it overlaps `start` and the wait). runc builds and loads its filter there, in `runc init` (libseccomp), so runc's profile compilation is in this row and in no step's CPU; boxrun and crun compile the profile in the `create` process. All three load the filter there."),
                    cpu_note,
                    crun_note,
                ]);
                CaseDef {
                    number,
                    title: "`create`, `start`, `delete` with Docker's default seccomp profile, a cgroup namespace and limits (case 2's bundles), timed separately and summed".into(),
                    notes,
                    variants,
                    rounds: self.rounds(15, 3),
                    iters: self.iters(4, 3),
                    warmup: if self.o.quick { 1 } else { 2 },
                    steps: Box::new(move |v, rt| lifecycle_sum_steps(&pids, v, rt)),
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

#[cfg(test)]
mod tests {
    use super::super::{rows, Absent, CaseDef, Raw};
    use super::*;
    use crate::report::{Outcome, Row};
    use crate::spec::Sample;

    fn variant(key: &str, pre: Vec<Step>) -> Variant {
        Variant {
            key: key.into(),
            label: key.into(),
            rt: Some(0),
            root: PathBuf::from(format!("/w/roots/c7-{key}")),
            bundle: PathBuf::from(format!("/w/bundles/c7-{key}")),
            pre,
            env: vec![],
            on_fail: None,
        }
    }

    fn ms(wall: u64, cpu: u64) -> Sample {
        Sample {
            wall_ns: wall * 1_000_000,
            user_us: cpu * 1_000,
            sys_us: 0,
            maxrss_kb: 1_000,
        }
    }

    fn case7() -> CaseDef {
        let cold_pre = vec![Step::RemoveTree {
            path: "/w/roots/c7-boxrun-cold/seccomp-cache".into(),
        }];
        CaseDef {
            number: 7,
            title: "t".into(),
            notes: vec![],
            variants: vec![
                variant("boxrun-cold", cold_pre),
                variant("runc", vec![]),
                variant("crun", vec![]),
            ],
            rounds: 1,
            iters: 2,
            warmup: 0,
            steps: Box::new(|v, rt| lifecycle_sum_steps("/w/pids", v, rt)),
        }
    }

    #[test]
    fn case7_steps_keep_pre_and_case3_order_then_sum() {
        let def = case7();
        let steps = (def.steps)(&def.variants[0], &["boxrun".to_owned()]);
        assert!(matches!(&steps[0], Step::RemoveTree { path } if path.ends_with("seccomp-cache")));
        let labels: Vec<_> = steps.iter().filter_map(Step::recorded_label).collect();
        assert_eq!(
            labels,
            [
                "create",
                "start",
                CONTAINER_PROCESS,
                "delete",
                LIFECYCLE_SUM
            ]
        );
        let Some(Step::Timed { argv, .. }) = steps.get(1) else {
            panic!("create first after pre: {steps:?}");
        };
        assert_eq!(
            argv.join(" "),
            "boxrun --root /w/roots/c7-boxrun-cold create -b /w/bundles/c7-boxrun-cold \
             --pid-file /w/pids/{id}.pid {id}"
        );
        assert!(
            matches!(steps.last(), Some(Step::Sum { of, .. }) if of == &["create", "start", "delete"])
        );
    }

    #[test]
    fn case7_report_has_every_step_and_the_summed_row() {
        let def = case7();
        let mut raw = Raw::new();
        // Two iterations per variant as the worker records them.
        for (key, f) in [("boxrun-cold", 1), ("crun", 2)] {
            for _ in 0..2 {
                let (c, st, d) = (ms(10 * f, 6 * f), ms(2 * f, f), ms(3 * f, 2 * f));
                let it = [
                    ("create", c),
                    ("start", st),
                    (CONTAINER_PROCESS, ms(0, 4 * f)),
                    ("delete", d),
                    (LIFECYCLE_SUM, Sample::sum(&[c, st, d])),
                ];
                for (label, s) in it {
                    raw.entry((key.into(), label.into())).or_default().push(s);
                }
            }
        }
        let mut absent = Absent::new();
        absent.insert(
            "runc".into(),
            ("failed in round 0".into(), Some("boom".into())),
        );
        let rows = rows(&def, &raw, &absent);
        let order: Vec<(&str, &str)> = rows
            .iter()
            .map(|r: &Row| (r.step.as_str(), r.key.as_str()))
            .collect();
        let mut want = Vec::new();
        for step in [
            "create",
            "start",
            CONTAINER_PROCESS,
            "delete",
            LIFECYCLE_SUM,
        ] {
            for key in ["boxrun-cold", "runc", "crun"] {
                want.push((step, key));
            }
        }
        assert_eq!(order, want);
        let sum = rows
            .iter()
            .find(|r| r.step == LIFECYCLE_SUM && r.key == "crun")
            .expect("sum row");
        assert!(sum.is_reference);
        let Outcome::Measured { wall, cpu, .. } = &sum.outcome else {
            panic!("crun sum not measured");
        };
        assert_eq!((wall.median, cpu.median), (30.0, 18.0));
        let rep = crate::report::CaseReport {
            number: 7,
            title: "t".into(),
            notes: vec![],
            rows,
            extra: vec![],
            data: Value::Null,
        };
        let md = rep.markdown();
        // boxrun: 15 ms / 9 ms against crun's 30 ms / 18 ms.
        assert!(
            md.contains("| create+start+delete | boxrun-cold | 2 | 15.0 ms | 15.0 ms–15.0 ms | 9.00 ms | 9.00 ms–9.00 ms | 0.50× / 0.50× |"),
            "{md}"
        );
        assert!(
            md.contains("| container process (CPU only) | boxrun-cold | 2 | – | – | 4.00 ms | 4.00 ms–4.00 ms | – / 0.50× |"),
            "{md}"
        );
        assert!(
            md.contains("| create+start+delete | runc | – | failed in round 0 (see below) |"),
            "{md}"
        );
        let j = rep.json();
        let cp = &j["rows"][6];
        assert_eq!(cp["step"], CONTAINER_PROCESS);
        assert!(cp["wall_ms"].is_null() && cp.get("ratio_vs_crun_wall").is_none());
        assert_eq!(j["rows"][12]["ratio_vs_crun_wall"], json!(0.5));
    }
}
