//! The in-container checker: compares the live process environment with the
//! bundle's config.json and prints TAP.
//!
//! Every check is named `<area>.<detail>` (e.g. `process.user.uid`,
//! `mounts./proc.type`); `--only a,b` runs only checks whose name starts with
//! one of the given prefixes, so a case can focus on what it configured.

mod devices;
mod kernel;
mod mounts;
mod namespaces;
mod process;

use crate::procfs::{parse_mountinfo, MountInfo};
use crate::tap::{Point, Tap};
use serde_json::Value;
use std::fmt::Display;

/// Default location of the config copy inside the container.
pub const CONFIG_PATH: &str = "/oci-checker.json";
/// Default location of the host facts file inside the container.
pub const HOST_PATH: &str = "/oci-checker-host.json";

/// Why a single check did not pass.
#[derive(Debug)]
pub enum Miss {
    /// The environment differs from the config.
    Fail(String),
    /// The check cannot be evaluated here.
    Skip(String),
}

/// Result of one check.
pub type Check = Result<(), Miss>;

/// Build a failure `expected X got Y`.
pub fn mismatch(expected: impl Display, got: impl Display) -> Miss {
    Miss::Fail(format!("expected {expected} got {got}"))
}

/// Pass when equal, else `expected X got Y`.
pub fn expect_eq<T: PartialEq + Display>(expected: T, got: T) -> Check {
    if expected == got {
        Ok(())
    } else {
        Err(mismatch(expected, got))
    }
}

/// Options of one checker run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Path of config.json as seen inside the container.
    pub config: String,
    /// Path of the host facts file as seen inside the container.
    pub host: String,
    /// Check-name prefixes to run; empty runs everything.
    pub only: Vec<String>,
}

impl Options {
    /// Parse `--config P --host P --only a,b` (unknown arguments are ignored
    /// so a case may pass extra args to exercise process.args).
    pub fn from_args(args: &[String]) -> Options {
        let mut o = Options {
            config: CONFIG_PATH.into(),
            host: HOST_PATH.into(),
            only: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--config" => o.config = it.next().cloned().unwrap_or(o.config),
                "--host" => o.host = it.next().cloned().unwrap_or(o.host),
                "--only" => {
                    if let Some(v) = it.next() {
                        o.only
                            .extend(v.split(',').filter(|s| !s.is_empty()).map(str::to_string));
                    }
                }
                _ => {}
            }
        }
        o
    }
}

/// State shared by all checks of one run.
pub struct Checker {
    /// The container's config.json.
    pub cfg: Value,
    /// Facts from the runner (host namespace inodes, joined paths).
    pub host: Value,
    only: Vec<String>,
    tap: Tap,
    /// /proc/self/mountinfo, parsed once.
    pub mountinfo: Vec<MountInfo>,
    /// /proc/self/status text.
    pub status: String,
}

impl Checker {
    /// True if a check of this name is selected.
    pub fn want(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| name.starts_with(p.as_str()))
    }

    /// Run `f` as check `name` if selected and record its result.
    pub fn check(&mut self, name: &str, f: impl FnOnce(&Checker) -> Check) {
        if !self.want(name) {
            return;
        }
        let point = match f(self) {
            Ok(()) => Point::Ok,
            Err(Miss::Fail(r)) => Point::NotOk(r),
            Err(Miss::Skip(r)) => Point::Skip(r),
        };
        self.tap.push(name, point);
    }

    /// Config value at a JSON pointer (`/process/user/uid`).
    pub fn at(&self, ptr: &str) -> Option<&Value> {
        self.cfg.pointer(ptr).filter(|v| !v.is_null())
    }

    /// Topmost mount at `path`, if any.
    pub fn mount_at(&self, path: &str) -> Option<&MountInfo> {
        let path = normalize(path);
        self.mountinfo.iter().rev().find(|m| m.mount_point == path)
    }
}

/// Collapse `//` and trailing `/` so paths compare like mountinfo prints them.
pub fn normalize(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Run every selected check and return the TAP document.
pub fn run(opts: &Options) -> Tap {
    let mut tap = Tap::default();
    let cfg = match std::fs::read_to_string(&opts.config)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            tap.push(
                "checker.config",
                Point::NotOk(format!("cannot read {}: {e}", opts.config)),
            );
            return tap;
        }
    };
    let host = std::fs::read_to_string(&opts.host)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut c = Checker {
        cfg,
        host,
        only: opts.only.clone(),
        tap,
        mountinfo,
        status,
    };
    namespaces::run(&mut c);
    process::run(&mut c);
    mounts::run(&mut c);
    devices::run(&mut c);
    kernel::run(&mut c);
    c.tap
}
