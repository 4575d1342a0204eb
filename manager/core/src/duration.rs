//! Durations as users write them (`30s`, `500ms`, `1m30s`, `2h`): the
//! health-check options and `events --since`.

use std::time::Duration;

use crate::error::{Error, Result};

/// Parse a duration such as `30s`, `500ms`, `1m30s`, `1.5h` or `2h45m`
/// (units `ns`, `us`, `ms`, `s`, `m`, `h`; a unit is required, as in
/// docker's Go durations). `what` names the option in the error.
pub fn parse(what: &str, s: &str) -> Result<Duration> {
    let bad = || {
        Error::Invalid(format!(
            "invalid {what} {s:?}: expected a duration such as 500ms, 30s, 1m30s or 2h"
        ))
    };
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let v: f64 = num
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(bad)?;
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += v * secs;
        rest = tail;
    }
    if total > 10.0 * 365.0 * 86_400.0 {
        return Err(Error::Invalid(format!("invalid {what} {s:?}: too long")));
    }
    Ok(Duration::from_secs_f64(total))
}

/// A duration the way [`parse`] reads it back (`30s`, `1500ms`, `2m`).
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("x", "30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("x", "500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("x", "1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("x", "1.5h").unwrap(), Duration::from_secs(5400));
        for bad in ["", "10", "abc", "5x", "-1s", "s"] {
            let e = parse("--health-interval", bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid --health-interval"), "{bad:?}: {e}");
        }
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_secs(120)), "2m");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
    }
}
