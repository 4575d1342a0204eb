//! Statistics over samples and the tables/JSON built from them.

use crate::spec::Sample;
use serde_json::{json, Value};

/// Median, minimum and maximum of a set of values.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// Summarise `values`; `None` when empty.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Summary {
            n,
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    fn json(&self) -> Value {
        json!({"median": round3(self.median), "min": round3(self.min), "max": round3(self.max)})
    }
}

/// Samples of a process the harness reaped rather than timed (the container
/// process of `create`) carry no wall time: all zero.
fn has_wall(wall: &Summary) -> bool {
    wall.max > 0.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The outcome for one runtime variant in one case step.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Measured.
    Measured {
        /// Wall time, ms.
        wall: Summary,
        /// User + system CPU of the process tree, ms.
        cpu: Summary,
        /// Peak RSS of the largest process in the tree, KiB.
        rss: Summary,
    },
    /// Not measured, with the reason (e.g. "not built").
    Missing(String),
}

impl Outcome {
    /// Summarise samples.
    pub fn from_samples(samples: &[Sample]) -> Outcome {
        let wall: Vec<f64> = samples.iter().map(Sample::wall_ms).collect();
        let cpu: Vec<f64> = samples.iter().map(Sample::cpu_ms).collect();
        let rss: Vec<f64> = samples.iter().map(|s| s.maxrss_kb as f64).collect();
        match (Summary::of(&wall), Summary::of(&cpu), Summary::of(&rss)) {
            (Some(wall), Some(cpu), Some(rss)) => Outcome::Measured { wall, cpu, rss },
            _ => Outcome::Missing("no samples".into()),
        }
    }
}

/// One table row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Step label ("run", "create", "seq50", ...).
    pub step: String,
    /// Variant key ("crun", "boxrun-cold", ...).
    pub key: String,
    /// Human label ("crun 1.8.1", ...).
    pub label: String,
    /// The result.
    pub outcome: Outcome,
    /// The variant ratios are taken against (crun) has this key.
    pub is_reference: bool,
}

/// A case's results.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// Case number.
    pub number: u32,
    /// One-line title.
    pub title: String,
    /// Method notes printed under the title.
    pub notes: Vec<String>,
    /// Rows in display order.
    pub rows: Vec<Row>,
    /// Free-form lines (case 4's size table, case 6's status).
    pub extra: Vec<String>,
    /// Case-specific machine-readable data (case 4's sizes), or null.
    pub data: Value,
}

fn fmt_ms(x: f64) -> String {
    if x >= 1000.0 {
        format!("{:.2} s", x / 1000.0)
    } else if x >= 100.0 {
        format!("{x:.0} ms")
    } else if x >= 10.0 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.2} ms")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "–".into()
    }
}

fn reference<'a>(rows: &'a [Row], step: &str) -> Option<&'a Outcome> {
    rows.iter()
        .find(|r| r.step == step && r.is_reference)
        .map(|r| &r.outcome)
}

impl CaseReport {
    fn steps(&self) -> Vec<String> {
        let mut steps: Vec<String> = Vec::new();
        for r in &self.rows {
            if !steps.contains(&r.step) {
                steps.push(r.step.clone());
            }
        }
        steps
    }

    /// Markdown rendering: title, notes, and the timing table.
    pub fn markdown(&self) -> String {
        let mut s = format!("### Case {} — {}\n\n", self.number, self.title);
        for n in &self.notes {
            s.push_str(&format!("- {n}\n"));
        }
        if !self.notes.is_empty() {
            s.push('\n');
        }
        if !self.rows.is_empty() {
            let multi = self.steps().len() > 1;
            if multi {
                s.push_str("| step | runtime | n | median wall | min–max wall | median CPU | min–max CPU | ratio vs crun (wall / CPU) |\n");
                s.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
            } else {
                s.push_str("| runtime | n | median wall | min–max wall | median CPU | min–max CPU | ratio vs crun (wall / CPU) |\n");
                s.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
            }
            for step in self.steps() {
                let reference = reference(&self.rows, &step);
                for r in self.rows.iter().filter(|r| r.step == step) {
                    let lead = if multi {
                        format!("| {} | {} |", step, r.label)
                    } else {
                        format!("| {} |", r.label)
                    };
                    match &r.outcome {
                        Outcome::Measured { wall, cpu, .. } => {
                            let timed = has_wall(wall);
                            let rat = match reference {
                                Some(Outcome::Measured {
                                    wall: rw, cpu: rc, ..
                                }) => format!(
                                    "{} / {}",
                                    if timed {
                                        ratio(wall.median, rw.median)
                                    } else {
                                        "–".into()
                                    },
                                    ratio(cpu.median, rc.median)
                                ),
                                _ => "–".into(),
                            };
                            let (wall_median, wall_range) = if timed {
                                (
                                    fmt_ms(wall.median),
                                    format!("{}–{}", fmt_ms(wall.min), fmt_ms(wall.max)),
                                )
                            } else {
                                ("–".into(), "–".into())
                            };
                            s.push_str(&format!(
                                "{lead} {} | {wall_median} | {wall_range} | {} | {}–{} | {} |\n",
                                wall.n,
                                fmt_ms(cpu.median),
                                fmt_ms(cpu.min),
                                fmt_ms(cpu.max),
                                rat
                            ));
                        }
                        Outcome::Missing(why) => {
                            s.push_str(&format!("{lead} – | {why} | | | | |\n"));
                        }
                    }
                }
            }
            s.push('\n');
        }
        for line in &self.extra {
            s.push_str(line);
            s.push('\n');
        }
        if !self.extra.is_empty() {
            s.push('\n');
        }
        s
    }

    /// Machine-readable rendering.
    pub fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut v = json!({"step": r.step, "runtime": r.key, "label": r.label});
                match &r.outcome {
                    Outcome::Measured { wall, cpu, rss } => {
                        let timed = has_wall(wall);
                        v["n"] = json!(wall.n);
                        v["wall_ms"] = if timed { wall.json() } else { Value::Null };
                        v["cpu_ms"] = cpu.json();
                        v["maxrss_kb"] = rss.json();
                        if let Some(Outcome::Measured {
                            wall: rw, cpu: rc, ..
                        }) = reference(&self.rows, &r.step)
                        {
                            if timed {
                                v["ratio_vs_crun_wall"] = json!(round3(wall.median / rw.median));
                            }
                            v["ratio_vs_crun_cpu"] = json!(round3(cpu.median / rc.median));
                        }
                    }
                    Outcome::Missing(why) => v["missing"] = json!(why),
                }
                v
            })
            .collect();
        json!({
            "case": self.number,
            "title": self.title,
            "notes": self.notes,
            "rows": rows,
            "extra": self.extra,
            "data": self.data,
        })
    }
}

/// Format a byte count as MiB/KiB.
pub fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.0} KiB", b as f64 / 1024.0)
    }
}

/// Format KiB as MiB.
pub fn fmt_kib(k: f64) -> String {
    format!("{:.1} MiB", k / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_and_even() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).expect("summary");
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Summary::of(&[4.0, 1.0, 2.0, 3.0]).expect("summary");
        assert_eq!(s.median, 2.5);
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn table_has_ratio_and_missing_rows() {
        let sample = |ms: u64| Sample {
            wall_ns: ms * 1_000_000,
            user_us: ms * 500,
            sys_us: ms * 500,
            maxrss_kb: 1000,
        };
        let rep = CaseReport {
            number: 1,
            title: "t".into(),
            notes: vec![],
            rows: vec![
                Row {
                    step: "run".into(),
                    key: "crun".into(),
                    label: "crun".into(),
                    outcome: Outcome::from_samples(&[sample(10), sample(20)]),
                    is_reference: true,
                },
                Row {
                    step: "run".into(),
                    key: "runc".into(),
                    label: "runc".into(),
                    outcome: Outcome::from_samples(&[sample(30)]),
                    is_reference: false,
                },
                Row {
                    step: "run".into(),
                    key: "boxrun".into(),
                    label: "boxrun".into(),
                    outcome: Outcome::Missing("not built".into()),
                    is_reference: false,
                },
            ],
            extra: vec![],
            data: Value::Null,
        };
        let md = rep.markdown();
        assert!(md.contains("2.00× / 2.00×"), "{md}");
        assert!(md.contains("| boxrun | – | not built |"), "{md}");
        assert_eq!(rep.json()["rows"][1]["ratio_vs_crun_wall"], json!(2.0));
    }
}
