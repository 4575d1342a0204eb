//! Health checks: what an instance records ([`Health`]: the check and its
//! current state, `health_*` keys of the instance file) and the options that
//! make one ([`HealthOptions`]). The checks run in the checker process
//! ([`crate::health`]) that the monitor starts ([`crate::checker`]).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration;
use crate::error::Result;
use crate::invalid;

/// Default time between two checks.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Default time a check may take before it counts as failed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default number of consecutive failures that make an instance unhealthy.
pub const DEFAULT_RETRIES: u32 = 3;
/// Shortest interval (and timeout) accepted: each check is an `exec`.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// State of a health-checked instance, as `ps` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Started, no check has passed yet.
    Starting,
    /// The last check passed.
    Healthy,
    /// `retries` consecutive checks failed.
    Unhealthy,
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        })
    }
}

/// An instance's health check and its state (flattened into the instance
/// file as `health_*` keys; all absent without a check).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Command run with `/bin/sh -c` inside the instance; exit 0 is healthy.
    #[serde(
        rename = "health_cmd",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cmd: Option<String>,
    /// Milliseconds between checks.
    #[serde(
        rename = "health_interval_ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub interval_ms: Option<u64>,
    /// Milliseconds a check may take.
    #[serde(
        rename = "health_timeout_ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout_ms: Option<u64>,
    /// Milliseconds after a start during which failures do not count.
    #[serde(
        rename = "health_start_period_ms",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_period_ms: Option<u64>,
    /// Consecutive failures that make the instance unhealthy.
    #[serde(
        rename = "health_retries",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retries: Option<u32>,
    /// Current state while running (None without a check).
    #[serde(
        rename = "health_status",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<HealthStatus>,
    /// Consecutive failed checks so far.
    #[serde(rename = "health_failures", default, skip_serializing_if = "is_zero")]
    pub failures: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Health {
    /// Whether the instance has a health check.
    pub fn enabled(&self) -> bool {
        self.cmd.is_some()
    }

    /// Time between checks.
    pub fn interval(&self) -> Duration {
        self.interval_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_INTERVAL)
    }

    /// Time a check may take.
    pub fn timeout(&self) -> Duration {
        self.timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_TIMEOUT)
    }

    /// Grace period after a start.
    pub fn start_period(&self) -> Duration {
        Duration::from_millis(self.start_period_ms.unwrap_or(0))
    }

    /// Consecutive failures that make the instance unhealthy.
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(DEFAULT_RETRIES)
    }
}

/// The health options of `create`/`run` (and of a farm service's `health`
/// table) as a user writes them; [`HealthOptions::parse`] checks them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthOptions {
    /// `--health-cmd`.
    pub cmd: Option<String>,
    /// `--health-interval` (default 30s).
    pub interval: Option<String>,
    /// `--health-timeout` (default 30s).
    pub timeout: Option<String>,
    /// `--health-start-period` (default 0s).
    pub start_period: Option<String>,
    /// `--health-retries` (default 3).
    pub retries: Option<String>,
    /// `--no-healthcheck`.
    pub disabled: bool,
}

impl HealthOptions {
    /// Check the options: errors name the option (`invalid
    /// --health-interval "0s": the minimum is 100ms`).
    pub fn parse(&self) -> Result<Health> {
        let given = self.interval.is_some()
            || self.timeout.is_some()
            || self.start_period.is_some()
            || self.retries.is_some();
        if self.disabled {
            if self.cmd.is_some() || given {
                invalid!("--no-healthcheck cannot be given with other --health-* options");
            }
            return Ok(Health::default());
        }
        let Some(cmd) = &self.cmd else {
            if given {
                invalid!("--health-interval, --health-timeout, --health-start-period and --health-retries need --health-cmd");
            }
            return Ok(Health::default());
        };
        if cmd.trim().is_empty() {
            invalid!(
                "invalid --health-cmd \"\": give a command, e.g. --health-cmd 'test -f /ready'"
            );
        }
        let at_least = |what: &str, v: &Option<String>| -> Result<Option<u64>> {
            let Some(s) = v else { return Ok(None) };
            let d = duration::parse(what, s)?;
            if d < MIN_INTERVAL {
                invalid!(
                    "invalid {what} {s:?}: the minimum is {}",
                    duration::format(MIN_INTERVAL)
                );
            }
            Ok(Some(d.as_millis() as u64))
        };
        let start_period = match &self.start_period {
            Some(s) => Some(duration::parse("--health-start-period", s)?.as_millis() as u64),
            None => None,
        };
        let retries = match &self.retries {
            Some(s) => {
                let n: u32 = s.trim().parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    crate::Error::Invalid(format!(
                        "invalid --health-retries {s:?}: expected a whole number of at least 1"
                    ))
                })?;
                Some(n)
            }
            None => None,
        };
        Ok(Health {
            cmd: Some(cmd.clone()),
            interval_ms: at_least("--health-interval", &self.interval)?,
            timeout_ms: at_least("--health-timeout", &self.timeout)?,
            start_period_ms: start_period,
            retries,
            status: None,
            failures: 0,
        })
    }
}

/// The file in an instance's directory holding its last check (time, exit
/// code, output), written by the checker.
pub const LAST_CHECK_FILE: &str = "health.json";

/// The last check recorded in instance directory `dir`, as `inspect` shows
/// it (Null when none ran).
pub fn last_check(dir: &Path) -> serde_json::Value {
    std::fs::read(dir.join(LAST_CHECK_FILE))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(cmd: &str) -> HealthOptions {
        HealthOptions {
            cmd: Some(cmd.into()),
            ..Default::default()
        }
    }

    #[test]
    fn options() {
        let h = HealthOptions {
            interval: Some("2s".into()),
            retries: Some("2".into()),
            ..opts("test -f /ok")
        }
        .parse()
        .unwrap();
        assert_eq!(h.interval(), Duration::from_secs(2));
        assert_eq!(h.retries(), 2);
        assert_eq!(h.timeout(), DEFAULT_TIMEOUT);
        let e = HealthOptions {
            interval: Some("0s".into()),
            ..opts("true")
        }
        .parse()
        .unwrap_err()
        .to_string();
        assert_eq!(e, "invalid --health-interval \"0s\": the minimum is 100ms");
        assert!(HealthOptions {
            interval: Some("soon".into()),
            ..opts("true")
        }
        .parse()
        .is_err());
        assert!(HealthOptions {
            retries: Some("0".into()),
            ..opts("true")
        }
        .parse()
        .is_err());
        assert!(HealthOptions {
            disabled: true,
            ..opts("true")
        }
        .parse()
        .is_err());
        assert!(HealthOptions {
            interval: Some("1s".into()),
            ..Default::default()
        }
        .parse()
        .is_err());
        assert!(!HealthOptions::default().parse().unwrap().enabled());
    }
}
