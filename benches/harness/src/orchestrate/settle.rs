//! Waiting for a quiet machine before a round: the CPU busy fraction from
//! /proc/stat.

use std::fs;

/// Busy fraction of all CPUs (0..1) over `ms` milliseconds, from /proc/stat.
pub(super) fn cpu_busy(ms: u64) -> Option<f64> {
    fn snap() -> Option<(u64, u64)> {
        let text = fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().next()?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
        Some((v.iter().take(8).sum(), idle))
    }
    let (t0, i0) = snap()?;
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let (t1, i1) = snap()?;
    let total = t1.saturating_sub(t0);
    (total > 0).then(|| 1.0 - i1.saturating_sub(i0) as f64 / total as f64)
}

/// Busy fraction under which the machine counts as quiet (others use less
/// than ~half a core of the two).
pub(super) const QUIET_BUSY: f64 = 0.25;

/// Wait up to `secs` for the machine to be quiet; true when it is.
pub(super) fn settle(secs: u32) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs.into());
    loop {
        match cpu_busy(200) {
            Some(b) if b < QUIET_BUSY => return true,
            None => return true,
            Some(_) if std::time::Instant::now() >= deadline => return false,
            Some(_) => {}
        }
    }
}
