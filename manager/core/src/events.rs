//! The event log: one JSON line per life-cycle event (create, start, die,
//! oom, health_status, stop, rm) in `ROOT/events/events.log`, so that
//! events outlive the short-lived commands that make them and `boxctl
//! events` can list and follow them.
//!
//! Each event is appended with one `write(2)` on an `O_APPEND` descriptor
//! under `ROOT/events/lock` (flock). The log is bounded: when
//! `events.log` grows past half the bound it is renamed `events.log.1`
//! (replacing the older one) under the same lock, so the two files never
//! hold more than the bound (1 MiB, `BOXCTL_EVENTS_MAX` bytes) and always
//! the newest events. `follow` waits on inotify for the directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Context, Result};
use crate::healthcheck::HealthStatus;
use crate::instance_file::Instance;
use crate::store::{LockGuard, Store};
use crate::{duration, invalid, util};

/// Default bound of the event log (both files together), bytes.
pub const DEFAULT_MAX: u64 = 1 << 20;

/// What happened to an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Created (`create`, `run`).
    Create,
    /// Its process started (first start, `start`, or a restart by policy).
    Start,
    /// Its process ended (`exit_code` set).
    Die,
    /// The kernel's OOM killer killed one of its processes.
    Oom,
    /// Its health changed (`health` set).
    HealthStatus,
    /// Stopped by `stop` (after the die).
    Stop,
    /// Removed.
    Rm,
    /// Frozen by `pause`.
    Pause,
    /// Thawed by `unpause`.
    Unpause,
    /// Given a new name by `rename` (the event carries the new one).
    Rename,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Create => "create",
            Self::Start => "start",
            Self::Die => "die",
            Self::Oom => "oom",
            Self::HealthStatus => "health_status",
            Self::Stop => "stop",
            Self::Rm => "rm",
            Self::Pause => "pause",
            Self::Unpause => "unpause",
            Self::Rename => "rename",
        })
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When, RFC 3339 UTC with seconds.
    pub time: String,
    /// When, nanoseconds since the epoch (ordering and `--since`).
    pub time_nano: i64,
    /// What happened.
    pub action: Action,
    /// Instance id.
    pub id: String,
    /// Instance name.
    pub name: String,
    /// Exit code (`die`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// New health (`health_status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Event {
    /// An event about `inst`, now.
    pub fn new(inst: &Instance, action: Action) -> Event {
        let ns = now_nanos();
        Event {
            time: util::format_time(ns / 1_000_000_000),
            time_nano: ns,
            action,
            id: inst.id.clone(),
            name: inst.name.clone(),
            exit_code: None,
            health: None,
        }
    }
}

fn dir(store: &Store) -> PathBuf {
    store.root().join("events")
}

/// `ROOT/events/events.log`, the current file of the log.
pub fn log_path(store: &Store) -> PathBuf {
    dir(store).join("events.log")
}

fn max_bytes() -> u64 {
    std::env::var("BOXCTL_EVENTS_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v >= 1024)
        .unwrap_or(DEFAULT_MAX)
}

fn lock(store: &Store) -> Result<LockGuard> {
    let d = dir(store);
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    crate::store::lock_file(&d.join("lock"))
}

/// Append `ev` to the log (rotating it when over its bound).
pub fn append(store: &Store, ev: &Event) -> Result<()> {
    append_bounded(store, ev, max_bytes())
}

fn append_bounded(store: &Store, ev: &Event, max: u64) -> Result<()> {
    let mut line = serde_json::to_string(ev)?;
    line.push('\n');
    let _lock = lock(store)?;
    let path = log_path(store);
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.write_all(line.as_bytes())
        .with_context(|| format!("cannot write {} (is the disk full?)", path.display()))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    if size > max / 2 {
        let old = dir(store).join("events.log.1");
        std::fs::rename(&path, &old)
            .with_context(|| format!("cannot rotate {}", path.display()))?;
    }
    Ok(())
}

/// Record `action` for `inst` (and `exit_code`/`health` when given). The
/// log is a record of what happened, not a part of it: a failure to write
/// it does not fail the operation, and is only reported on the monitor's log.
pub fn record(
    store: &Store,
    inst: &Instance,
    action: Action,
    exit_code: Option<i32>,
    health: Option<HealthStatus>,
) {
    let mut ev = Event::new(inst, action);
    ev.exit_code = exit_code;
    ev.health = health;
    if let Err(e) = append(store, &ev) {
        eprintln!(
            "boxctl: cannot record event {action} of {}: {}",
            inst.name,
            e.chain()
        );
    }
}

/// Parse `--since`: an RFC 3339 time (`2024-01-31T12:00:00Z`), a Unix time
/// in seconds, or a duration before `now_nano` (`10m`, `1h30m`).
/// Returns nanoseconds since the epoch.
pub fn parse_since(s: &str, now_nano: i64) -> Result<i64> {
    if let Some(t) = util::parse_time(s.trim()) {
        return Ok(t * 1_000_000_000);
    }
    if let Ok(secs) = s.trim().parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok((secs * 1e9) as i64);
        }
    }
    match duration::parse("--since", s) {
        Ok(d) => Ok(now_nano - d.as_nanos() as i64),
        Err(_) => invalid!(
            "invalid --since {s:?}: expected a time (2024-01-31T12:00:00Z), a Unix time in seconds, or a duration such as 10m"
        ),
    }
}

/// The current time in nanoseconds since the epoch, as [`Event::time_nano`] counts it.
pub fn now() -> i64 {
    now_nanos()
}

fn parse_lines(data: &[u8], since: Option<i64>, out: &mut Vec<Event>) {
    for line in data.split(|b| *b == b'\n') {
        // A damaged or partial line (disk full) is skipped, not fatal.
        if let Ok(ev) = serde_json::from_slice::<Event>(line) {
            if since.is_none_or(|s| ev.time_nano >= s) {
                out.push(ev);
            }
        }
    }
}

/// Every event in the log at or after `since` (all when None), oldest first.
pub fn read(store: &Store, since: Option<i64>) -> Result<Vec<Event>> {
    let mut out = Vec::new();
    for p in [dir(store).join("events.log.1"), log_path(store)] {
        match std::fs::read(&p) {
            Ok(data) => parse_lines(&data, since, &mut out),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }
    Ok(out)
}

/// An inotify descriptor watching the log's directory.
fn watch_dir(path: &Path) -> Result<OwnedFd> {
    // SAFETY: inotify_init1 takes flags only.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot create an inotify instance");
    }
    // SAFETY: fd was just returned by inotify_init1 and is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    let mask = libc::IN_MODIFY | libc::IN_CREATE | libc::IN_MOVED_TO;
    // SAFETY: a valid inotify fd and NUL-terminated path.
    if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) } < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot watch {}", path.display()));
    }
    Ok(fd)
}

/// The log file being followed and how far it was read.
struct Cursor {
    file: Option<File>,
    ino: u64,
    offset: u64,
    partial: Vec<u8>,
}

impl Cursor {
    /// Read what was appended since the last call, switching to the new
    /// file after a rotation (the old one is read to its end first).
    fn next(&mut self, path: &Path, out: &mut Vec<Event>) -> Result<()> {
        loop {
            if let Some(f) = &mut self.file {
                f.seek(SeekFrom::Start(self.offset))?;
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)?;
                self.offset += buf.len() as u64;
                self.partial.extend_from_slice(&buf);
                if let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') {
                    let done: Vec<u8> = self.partial.drain(..=end).collect();
                    parse_lines(&done, None, out);
                }
            }
            let cur = std::fs::metadata(path).map(|m| m.ino()).ok();
            if cur.is_none() || cur == Some(self.ino) {
                return Ok(());
            }
            // Rotated (or created): go on with the new file from its start.
            match File::open(path) {
                Ok(f) => {
                    self.ino = f.metadata()?.ino();
                    self.file = Some(f);
                    self.offset = 0;
                    self.partial.clear();
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
            }
        }
    }
}

/// Call `emit` for every event at or after `since` (none of the past when
/// None), then for every new one as it is appended, until `emit` returns
/// false. Waits on inotify, without polling.
pub fn follow(
    store: &Store,
    since: Option<i64>,
    emit: &mut dyn FnMut(&Event) -> bool,
) -> Result<()> {
    let d = dir(store);
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    let ino = watch_dir(&d)?;
    let path = log_path(store);
    // Under the lock: the history and the position to follow from agree.
    let (past, mut cursor) = {
        let _lock = lock(store)?;
        let past = match since {
            Some(s) => read(store, Some(s))?,
            None => Vec::new(),
        };
        let cursor = match File::open(&path) {
            Ok(f) => {
                let m = f.metadata()?;
                Cursor {
                    ino: m.ino(),
                    offset: m.len(),
                    file: Some(f),
                    partial: Vec::new(),
                }
            }
            Err(_) => Cursor {
                file: None,
                ino: 0,
                offset: 0,
                partial: Vec::new(),
            },
        };
        (past, cursor)
    };
    for ev in &past {
        if !emit(ev) {
            return Ok(());
        }
    }
    let mut buf = [0u8; 4096];
    loop {
        let mut new = Vec::new();
        cursor.next(&path, &mut new)?;
        for ev in &new {
            if !emit(ev) {
                return Ok(());
            }
        }
        // SAFETY: read into a buffer we own from the inotify fd (blocking).
        let n = unsafe { libc::read(ino.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e).context("cannot read inotify events");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let now = 1_700_000_000_000_000_000;
        assert_eq!(
            parse_since("2000-02-29T00:00:00Z", now).unwrap(),
            951_782_400_000_000_000
        );
        assert_eq!(parse_since("1700000000", now).unwrap(), now);
        assert_eq!(parse_since("10m", now).unwrap(), now - 600_000_000_000);
        let e = parse_since("yesterday", now).unwrap_err().to_string();
        assert!(e.starts_with("invalid --since \"yesterday\""), "{e}");
    }

    fn event(n: i64) -> Event {
        Event {
            time: util::format_time(0),
            time_nano: n,
            action: Action::Start,
            id: "0123456789ab".into(),
            name: "x".into(),
            exit_code: None,
            health: None,
        }
    }

    #[test]
    fn following_goes_on_across_rotations() {
        let tmp = std::env::temp_dir().join(format!("boxctl-events-follow-{}", std::process::id()));
        let store = Store::open(&tmp).unwrap();
        append_bounded(&store, &event(0), 4096).unwrap();
        let path = log_path(&store);
        let mut cursor = Cursor {
            ino: std::fs::metadata(&path).unwrap().ino(),
            offset: std::fs::metadata(&path).unwrap().len(),
            file: File::open(&path).ok(),
            partial: Vec::new(),
        };
        let mut seen = Vec::new();
        for n in 1..200 {
            append_bounded(&store, &event(n), 4096).unwrap();
            if n % 7 == 0 {
                cursor.next(&path, &mut seen).unwrap();
            }
        }
        cursor.next(&path, &mut seen).unwrap();
        let _ = std::fs::remove_dir_all(&tmp);
        let got: Vec<i64> = seen.iter().map(|e| e.time_nano).collect();
        assert_eq!(got, (1..200).collect::<Vec<_>>());
    }

    #[test]
    fn the_log_keeps_the_newest_within_its_bound() {
        let tmp = std::env::temp_dir().join(format!("boxctl-events-unit-{}", std::process::id()));
        let store = Store::open(&tmp).unwrap();
        let mut ev = event(0);
        for n in 0..500 {
            ev.time_nano = n;
            append_bounded(&store, &ev, 8192).unwrap();
        }
        let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let total = size(log_path(&store)) + size(dir(&store).join("events.log.1"));
        let all = read(&store, None).unwrap();
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(total <= 8192 + 200, "{total}");
        assert_eq!(all.last().map(|e| e.time_nano), Some(499));
        assert!(all.windows(2).all(|w| w[0].time_nano + 1 == w[1].time_nano));
        assert!(all.len() < 500);
    }

    #[test]
    fn lines_survive_damage() {
        let good = r#"{"time":"2024-01-01T00:00:00Z","time_nano":5,"action":"die","id":"a","name":"n","exit_code":3}"#;
        let data = format!("{good}\n{{broken\n{good}\n");
        let mut out = Vec::new();
        parse_lines(data.as_bytes(), None, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].exit_code, Some(3));
        assert_eq!(out[0].action, Action::Die);
        out.clear();
        parse_lines(data.as_bytes(), Some(6), &mut out);
        assert!(out.is_empty());
    }
}
