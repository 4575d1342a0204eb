//! The batch description the orchestrator hands to a worker process, and the
//! samples the worker hands back.
//!
//! Both travel as files: the spec as JSON, the samples as TSV lines, so that a
//! worker running inside a private mount namespace (crun) needs nothing else
//! from its parent.

use serde_json::{json, Value};
use std::fmt;

/// One step of an iteration.
#[derive(Debug, Clone)]
pub enum Step {
    /// Spawn `argv`, wait for it and record wall time and the rusage of its
    /// whole process tree under `label`.
    Timed { label: String, argv: Vec<String> },
    /// Spawn `argv` and wait for it; not recorded, must succeed.
    Untimed { argv: Vec<String> },
    /// Spawn `argv` and wait for it; not recorded, failure ignored.
    BestEffort { argv: Vec<String> },
    /// Remove a directory tree if it exists (not recorded).
    RemoveTree { path: String },
    /// Open a pidfd on the pid written in `path` (not recorded).
    PidfdOpen { path: String },
    /// Wait for the process behind the last opened pidfd to exit (untimed).
    /// With a `label`, reap it with `wait4` (the worker is a child subreaper,
    /// so the container process of `create` is its child once the runtime has
    /// exited) and record its rusage under `label`, with no wall time.
    PidfdWait {
        timeout_ms: u64,
        label: Option<String>,
    },
    /// Record under `label` the sum of this iteration's samples labelled
    /// `of` (wall and CPU added, peak RSS the largest); every one must exist.
    Sum { label: String, of: Vec<String> },
    /// Spawn `n` copies of `argv` (`{j}` = copy index), at most `parallel` at a
    /// time; record the wall time of the whole batch and the summed rusage.
    Batch {
        label: String,
        n: u32,
        parallel: u32,
        argv: Vec<String>,
    },
}

/// Everything a worker needs to run one batch of iterations for one runtime.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Number of iterations to run.
    pub iterations: u32,
    /// Container ids are `{id_prefix}-{iteration}`.
    pub id_prefix: String,
    /// Extra environment for every spawned command.
    pub env: Vec<(String, String)>,
    /// The steps of one iteration.
    pub steps: Vec<Step>,
    /// Best-effort cleanup commands run after a failed iteration.
    pub on_fail: Vec<Vec<String>>,
    /// File receiving the stderr of every spawned command.
    pub log: String,
}

/// One recorded measurement.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Wall-clock time in nanoseconds.
    pub wall_ns: u64,
    /// User CPU time of the process tree in microseconds.
    pub user_us: u64,
    /// System CPU time of the process tree in microseconds.
    pub sys_us: u64,
    /// Largest resident set of any process in the tree, in KiB.
    pub maxrss_kb: u64,
}

impl Sample {
    /// The sum of `parts`: wall and CPU times added, peak RSS the largest.
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a Sample>) -> Sample {
        parts.into_iter().fold(Sample::default(), |a, s| Sample {
            wall_ns: a.wall_ns + s.wall_ns,
            user_us: a.user_us + s.user_us,
            sys_us: a.sys_us + s.sys_us,
            maxrss_kb: a.maxrss_kb.max(s.maxrss_kb),
        })
    }

    /// Wall time in milliseconds.
    pub fn wall_ms(&self) -> f64 {
        self.wall_ns as f64 / 1e6
    }
    /// User + system CPU time in milliseconds.
    pub fn cpu_ms(&self) -> f64 {
        (self.user_us + self.sys_us) as f64 / 1e3
    }
}

/// A malformed spec or sample file.
#[derive(Debug)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

fn strs(v: &Value, what: &str) -> Result<Vec<String>, FormatError> {
    v.as_array()
        .ok_or_else(|| FormatError(format!("spec: {what} is not an array")))?
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| FormatError(format!("spec: {what} holds a non-string")))
        })
        .collect()
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, FormatError> {
    v.get(name)
        .ok_or_else(|| FormatError(format!("spec: missing field {name}")))
}

fn string(v: &Value, name: &str) -> Result<String, FormatError> {
    field(v, name)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| FormatError(format!("spec: field {name} is not a string")))
}

fn uint(v: &Value, name: &str) -> Result<u64, FormatError> {
    field(v, name)?
        .as_u64()
        .ok_or_else(|| FormatError(format!("spec: field {name} is not an unsigned integer")))
}

impl Step {
    /// The label this step records samples under, if it records any.
    pub fn recorded_label(&self) -> Option<&str> {
        match self {
            Step::Timed { label, .. } | Step::Batch { label, .. } | Step::Sum { label, .. } => {
                Some(label)
            }
            Step::PidfdWait { label, .. } => label.as_deref(),
            Step::Untimed { .. }
            | Step::BestEffort { .. }
            | Step::RemoveTree { .. }
            | Step::PidfdOpen { .. } => None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Step::Timed { label, argv } => json!({"kind": "timed", "label": label, "argv": argv}),
            Step::Untimed { argv } => json!({"kind": "untimed", "argv": argv}),
            Step::BestEffort { argv } => json!({"kind": "best_effort", "argv": argv}),
            Step::RemoveTree { path } => json!({"kind": "rmtree", "path": path}),
            Step::PidfdOpen { path } => json!({"kind": "pidfd_open", "path": path}),
            Step::PidfdWait { timeout_ms, label } => {
                json!({"kind": "pidfd_wait", "timeout_ms": timeout_ms, "label": label})
            }
            Step::Sum { label, of } => json!({"kind": "sum", "label": label, "of": of}),
            Step::Batch {
                label,
                n,
                parallel,
                argv,
            } => {
                json!({"kind": "batch", "label": label, "n": n, "parallel": parallel, "argv": argv})
            }
        }
    }

    fn from_json(v: &Value) -> Result<Step, FormatError> {
        let kind = string(v, "kind")?;
        Ok(match kind.as_str() {
            "timed" => Step::Timed {
                label: string(v, "label")?,
                argv: strs(field(v, "argv")?, "argv")?,
            },
            "untimed" => Step::Untimed {
                argv: strs(field(v, "argv")?, "argv")?,
            },
            "best_effort" => Step::BestEffort {
                argv: strs(field(v, "argv")?, "argv")?,
            },
            "rmtree" => Step::RemoveTree {
                path: string(v, "path")?,
            },
            "pidfd_open" => Step::PidfdOpen {
                path: string(v, "path")?,
            },
            "pidfd_wait" => Step::PidfdWait {
                timeout_ms: uint(v, "timeout_ms")?,
                label: match v.get("label") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(string(v, "label")?),
                },
            },
            "sum" => Step::Sum {
                label: string(v, "label")?,
                of: strs(field(v, "of")?, "of")?,
            },
            "batch" => Step::Batch {
                label: string(v, "label")?,
                n: uint(v, "n")? as u32,
                parallel: uint(v, "parallel")?.max(1) as u32,
                argv: strs(field(v, "argv")?, "argv")?,
            },
            other => return Err(FormatError(format!("spec: unknown step kind {other}"))),
        })
    }
}

impl Spec {
    /// Serialise to the JSON text a worker reads.
    pub fn to_json(&self) -> String {
        let v = json!({
            "iterations": self.iterations,
            "id_prefix": self.id_prefix,
            "env": self.env.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "steps": self.steps.iter().map(Step::to_json).collect::<Vec<_>>(),
            "on_fail": self.on_fail,
            "log": self.log,
        });
        v.to_string()
    }

    /// Parse the JSON text written by [`Spec::to_json`].
    pub fn from_json(text: &str) -> Result<Spec, FormatError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| FormatError(format!("spec: bad json: {e}")))?;
        let env = field(&v, "env")?
            .as_array()
            .ok_or_else(|| FormatError("spec: env is not an array".into()))?
            .iter()
            .map(|p| {
                let kv = strs(p, "env pair")?;
                match kv.as_slice() {
                    [k, v] => Ok((k.clone(), v.clone())),
                    _ => Err(FormatError("spec: env pair is not [key, value]".into())),
                }
            })
            .collect::<Result<_, _>>()?;
        let steps = field(&v, "steps")?
            .as_array()
            .ok_or_else(|| FormatError("spec: steps is not an array".into()))?
            .iter()
            .map(Step::from_json)
            .collect::<Result<_, _>>()?;
        let on_fail = field(&v, "on_fail")?
            .as_array()
            .ok_or_else(|| FormatError("spec: on_fail is not an array".into()))?
            .iter()
            .map(|a| strs(a, "on_fail"))
            .collect::<Result<_, _>>()?;
        Ok(Spec {
            iterations: uint(&v, "iterations")? as u32,
            id_prefix: string(&v, "id_prefix")?,
            env,
            steps,
            on_fail,
            log: string(&v, "log")?,
        })
    }
}

/// Format one sample line: `label iteration wall_ns user_us sys_us maxrss_kb`.
pub fn sample_line(label: &str, iteration: u32, s: &Sample) -> String {
    format!(
        "{label}\t{iteration}\t{}\t{}\t{}\t{}\n",
        s.wall_ns, s.user_us, s.sys_us, s.maxrss_kb
    )
}

/// Parse the lines written by [`sample_line`].
pub fn parse_samples(text: &str) -> Result<Vec<(String, Sample)>, FormatError> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() != 6 {
                return Err(FormatError(format!("samples: bad line {l:?}")));
            }
            let n = |i: usize| {
                f[i].parse::<u64>()
                    .map_err(|_| FormatError(format!("samples: bad number in {l:?}")))
            };
            Ok((
                f[0].to_owned(),
                Sample {
                    wall_ns: n(2)?,
                    user_us: n(3)?,
                    sys_us: n(4)?,
                    maxrss_kb: n(5)?,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips() {
        let spec = Spec {
            iterations: 3,
            id_prefix: "bxbench-x".into(),
            env: vec![("A".into(), "b".into())],
            steps: vec![
                Step::Timed {
                    label: "run".into(),
                    argv: vec!["runc".into(), "{id}".into()],
                },
                Step::Batch {
                    label: "b".into(),
                    n: 50,
                    parallel: 2,
                    argv: vec!["x".into()],
                },
                Step::PidfdWait {
                    timeout_ms: 5,
                    label: None,
                },
                Step::PidfdWait {
                    timeout_ms: 6,
                    label: Some("init".into()),
                },
                Step::Sum {
                    label: "a+b".into(),
                    of: vec!["a".into(), "b".into()],
                },
            ],
            on_fail: vec![vec!["rm".into()]],
            log: "/tmp/l".into(),
        };
        let back = Spec::from_json(&spec.to_json()).expect("parse");
        assert_eq!(back.iterations, 3);
        assert_eq!(back.env, spec.env);
        assert_eq!(back.steps.len(), 5);
        assert!(matches!(
            &back.steps[1],
            Step::Batch {
                n: 50,
                parallel: 2,
                ..
            }
        ));
        assert!(matches!(
            &back.steps[2],
            Step::PidfdWait {
                timeout_ms: 5,
                label: None
            }
        ));
        assert!(
            matches!(&back.steps[3], Step::PidfdWait { timeout_ms: 6, label: Some(l) } if l == "init")
        );
        assert!(
            matches!(&back.steps[4], Step::Sum { label, of } if label == "a+b" && of == &["a", "b"])
        );
        let labels: Vec<_> = back.steps.iter().map(Step::recorded_label).collect();
        assert_eq!(
            labels,
            [Some("run"), Some("b"), None, Some("init"), Some("a+b")]
        );
    }

    #[test]
    fn sum_adds_times_and_keeps_largest_rss() {
        let s = |w, u, sy, r| Sample {
            wall_ns: w,
            user_us: u,
            sys_us: sy,
            maxrss_kb: r,
        };
        let t = Sample::sum(&[s(1, 2, 3, 40), s(10, 20, 30, 4), s(100, 200, 300, 5)]);
        assert_eq!(
            (t.wall_ns, t.user_us, t.sys_us, t.maxrss_kb),
            (111, 222, 333, 40)
        );
        assert_eq!(Sample::sum(&[]).wall_ns, 0);
    }

    #[test]
    fn samples_round_trip() {
        let s = Sample {
            wall_ns: 1,
            user_us: 2,
            sys_us: 3,
            maxrss_kb: 4,
        };
        let parsed = parse_samples(&sample_line("run", 0, &s)).expect("parse");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].1.maxrss_kb, 4);
        assert!(parse_samples("bad\tline\n").is_err());
    }
}
