//! The outside half: a suite of cases run in parallel against one runtime,
//! each in its own [`Ctx`], reported as a table.

pub mod bundle;
pub mod cmd;
pub mod console;
pub mod ctx;

pub use ctx::Ctx;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a case did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The runtime (or the suite) is wrong; the reason says which check.
    Fail(String),
    /// Not testable here; the reason says what the host or runtime lacks.
    Skip(String),
}

impl From<anyhow::Error> for Outcome {
    fn from(e: anyhow::Error) -> Self {
        Outcome::Fail(format!("{e:#}"))
    }
}

/// Result of a case function.
pub type CaseResult = Result<(), Outcome>;

/// Return a failure from a case.
#[macro_export]
macro_rules! fail {
    ($($t:tt)*) => { return Err($crate::runner::Outcome::Fail(format!($($t)*))) };
}

/// Return a skip (unsupported) from a case.
#[macro_export]
macro_rules! skip {
    ($($t:tt)*) => { return Err($crate::runner::Outcome::Skip(format!($($t)*))) };
}

/// Fail the case unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($t:tt)*) => { if !$cond { $crate::fail!($($t)*) } };
}

/// One conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// `area.name`, used by `--filter`.
    pub name: &'static str,
    /// The test.
    pub run: fn(&mut Ctx) -> CaseResult,
}

/// Suite-wide settings.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Runtime binary (or wrapper script) under test.
    pub runtime: PathBuf,
    /// Working directory for all cases.
    pub work: PathBuf,
    /// Prepared base rootfs (busybox + /oci-checker).
    pub base_rootfs: PathBuf,
    /// Per-case deadline.
    pub timeout: Duration,
    /// Keep case directories for inspection.
    pub keep: bool,
    /// Log every runtime command to stderr.
    pub verbose: bool,
}

/// Result of one case.
#[derive(Debug, Clone)]
pub struct Report {
    /// Case name.
    pub name: &'static str,
    /// None on pass.
    pub outcome: Option<Outcome>,
    /// Wall time including cleanup.
    pub elapsed: Duration,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Make SIGINT/SIGTERM stop handing out new cases instead of killing the
/// runner, so running cases still clean up their containers and mounts.
pub fn install_interrupt_handler() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// True once SIGINT/SIGTERM arrived (after [`install_interrupt_handler`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Run `cases` with `jobs` workers; results come back in case order. Cases
/// not started because of an interrupt are reported as failed.
pub fn run_cases(suite: &Suite, cases: &[Case], jobs: usize) -> Vec<Report> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Report>>> = Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let r = if interrupted() {
                    Report {
                        name: case.name,
                        outcome: Some(Outcome::Fail("not run: interrupted".into())),
                        elapsed: Duration::ZERO,
                    }
                } else {
                    run_one(suite, case)
                };
                eprintln!(
                    "{:<44} {}",
                    r.name,
                    match &r.outcome {
                        None => "PASS",
                        Some(Outcome::Fail(_)) => "FAIL",
                        Some(Outcome::Skip(_)) => "SKIP",
                    }
                );
                if let Ok(mut v) = results.lock() {
                    v[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

fn run_one(suite: &Suite, case: &Case) -> Report {
    let start = Instant::now();
    let outcome = match Ctx::new(suite, case.name) {
        Ok(mut ctx) => {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.run)(&mut ctx)));
            drop(ctx);
            match r {
                Ok(Ok(())) => None,
                Ok(Err(o)) => Some(o),
                Err(_) => Some(Outcome::Fail("case panicked".into())),
            }
        }
        Err(e) => Some(Outcome::Fail(format!("case setup: {e:#}"))),
    };
    Report {
        name: case.name,
        outcome,
        elapsed: start.elapsed(),
    }
}

/// Render the result table and the closing `N passed, N failed, N skipped`.
/// `note` may add a remark to a failed case's reason.
pub fn render(reports: &[Report], note: impl Fn(&str) -> Option<&'static str>) -> String {
    let w = reports
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!("{:<w$}  {:<6}  {:>8}  reason\n", "case", "result", "time");
    let (mut p, mut f, mut s) = (0, 0, 0);
    for r in reports {
        let (res, why) = match &r.outcome {
            None => {
                p += 1;
                ("pass", String::new())
            }
            Some(Outcome::Fail(why)) => {
                f += 1;
                match note(r.name) {
                    Some(n) => ("FAIL", format!("{n} {why}")),
                    None => ("FAIL", why.clone()),
                }
            }
            Some(Outcome::Skip(why)) => {
                s += 1;
                ("skip", format!("unsupported: {why}"))
            }
        };
        let why = why.replace('\n', " ");
        out.push_str(&format!(
            "{:<w$}  {:<6}  {:>7.2}s  {}\n",
            r.name,
            res,
            r.elapsed.as_secs_f64(),
            why
        ));
    }
    out.push_str(&format!("{p} passed, {f} failed, {s} skipped\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_counts_and_closing_line() {
        let r = |name, outcome| Report {
            name,
            outcome,
            elapsed: Duration::from_millis(1500),
        };
        let reports = vec![
            r("a.pass", None),
            r("b.fail", Some(Outcome::Fail("expected 1 got 2".into()))),
            r("c.skip", Some(Outcome::Skip("no resctrl".into()))),
        ];
        let text = render(&reports, |n| (n == "b.fail").then_some("[note]"));
        assert!(text.ends_with("1 passed, 1 failed, 1 skipped\n"), "{text}");
        assert!(text.contains("[note] expected 1 got 2"), "{text}");
        assert!(text.contains("unsupported: no resctrl"), "{text}");
        assert!(text.contains("1.50s"), "{text}");
    }
}
