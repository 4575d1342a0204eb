//! Small helpers: names, ids, times, human formatting.

use std::time::{SystemTime, UNIX_EPOCH};

use boxrun_common::civil::{civil_from_days, days_from_civil};

use crate::bail;
use crate::error::Result;

/// Check an instance, image or network name: `[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}`.
/// Such a name can never contain `/` or be `.`/`..`, so it is safe as a path component.
pub fn validate_name(kind: &str, name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        bail!(
            "invalid {kind} name {name:?}: use 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"
        );
    }
    Ok(())
}

/// A random 12-hex-digit id from the kernel's random pool.
pub fn random_id() -> String {
    let mut buf = [0u8; 6];
    // SAFETY: getrandom writes at most buf.len() bytes into a valid buffer.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        // Fall back on time and pid: uniqueness is still checked against the instance file.
        let t = now_nanos() ^ (std::process::id() as u128) << 64;
        buf.copy_from_slice(&t.to_le_bytes()[..6]);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Format a Unix time as RFC 3339 UTC (`2024-01-31T12:00:00Z`).
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parse what [`format_time`] writes.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let day = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (y, mo, d) = (num(0..4)?, day(5..7)?, day(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// A duration the way `docker ps` prints it ("3 minutes", "About an hour").
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".into()
    } else if s < 3600 {
        format!("{} minutes", s / 60)
    } else if s / 3600 == 1 {
        "About an hour".into()
    } else if s < 48 * 3600 {
        format!("{} hours", s / 3600)
    } else if s < 14 * 86_400 {
        format!("{} days", s / 86_400)
    } else if s < 60 * 86_400 {
        format!("{} weeks", s / (7 * 86_400))
    } else if s < 730 * 86_400 {
        format!("{} months", s / (30 * 86_400))
    } else {
        format!("{} years", s / (365 * 86_400))
    }
}

/// Bytes as docker prints them ("12.3MiB").
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("instance", "web-1.a_b").is_ok());
        for bad in ["", "..", ".", "-x", "a/b", "a b", &"x".repeat(64), "é"] {
            assert!(validate_name("instance", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_round_trip() {
        for t in [0, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(parse_time(&format_time(t)), Some(t));
        }
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_time("2000-02-29 00:00:00"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(180), "3 minutes");
        assert_eq!(human_duration(7200), "2 hours");
        assert_eq!(human_bytes(1536), "1.5KiB");
    }
}
