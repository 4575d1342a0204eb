//! runc-compatible logging: `--log FILE` with `--log-format text|json`.
//!
//! Engines (containerd, podman's conmon) read the JSON log after a failure and show
//! the last `error` line's `msg` to the user, so the format matches runc's:
//! `{"level":"error","msg":"...","time":"2006-01-02T15:04:05Z07:00"}`.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Mutex;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// logrus text: `time="..." level=error msg="..."`.
    Text,
    /// One JSON object a line.
    Json,
}

struct Sink {
    file: Option<std::fs::File>,
    format: Format,
    debug: bool,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Configure the log sink. With no file, messages go to stderr only (errors always do).
pub fn init(path: Option<&str>, format: Format, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) if !p.is_empty() => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| std::io::Error::new(e.kind(), format!("log file {p}: {e}")))?,
        ),
        _ => None,
    };
    if let Ok(mut g) = SINK.lock() {
        *g = Some(Sink {
            file,
            format,
            debug,
        });
    }
    Ok(())
}

/// Whether `--debug` was given.
pub fn debug_enabled() -> bool {
    SINK.lock()
        .ok()
        .and_then(|g| g.as_ref().map(|s| s.debug))
        .unwrap_or(false)
}

fn line(level: &str, msg: &str, format: Format) -> String {
    let time = crate::util::rfc3339_now();
    match format {
        Format::Json => {
            let v = serde_json::json!({"level": level, "msg": msg, "time": time});
            format!("{v}\n")
        }
        Format::Text => format!("time=\"{time}\" level={level} msg={msg:?}\n"),
    }
}

/// Log at `level` ("error", "warning", "info", "debug"). Errors and warnings also go to
/// stderr when no log file is set (runc prints errors to stderr in every case).
pub fn log(level: &str, msg: &str) {
    let Ok(mut g) = SINK.lock() else { return };
    let Some(sink) = g.as_mut() else {
        if level == "error" || level == "warning" {
            eprintln!("boxrun: {level}: {msg}");
        }
        return;
    };
    if level == "debug" && !sink.debug {
        return;
    }
    let fmt = sink.format;
    if let Some(f) = sink.file.as_mut() {
        let _ = f.write_all(line(level, msg, fmt).as_bytes());
    } else if sink.debug {
        // runc's --debug without --log: every level in the log format on stderr
        // (`time="…" level=debug msg="…"`).
        let _ = std::io::stderr().write_all(line(level, msg, fmt).as_bytes());
    } else {
        eprintln!("boxrun: {level}: {msg}");
    }
}

/// Log an error; with a log file the error is also printed on stderr, as runc does.
pub fn error(msg: &str) {
    let msg = &crate::config::one_line(msg);
    log("error", msg);
    if has_log_file() {
        eprintln!("boxrun: error: {msg}");
    }
}

/// Log a warning that also goes to stderr when a log file is set (a user running the
/// command should see it, as runc's warnings about the container's cgroup).
pub fn warn_stderr(msg: &str) {
    warn(msg);
    if has_log_file() {
        eprintln!("boxrun: warning: {msg}");
    }
}

fn has_log_file() -> bool {
    SINK.lock()
        .ok()
        .and_then(|g| g.as_ref().map(|s| s.file.is_some()))
        .unwrap_or(false)
}

/// Log a warning.
pub fn warn(msg: &str) {
    log("warning", msg);
}

/// Log a debug message (only with `--debug`).
pub fn debug(msg: &str) {
    log("debug", msg);
}
