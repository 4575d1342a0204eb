//! Small helpers for reading and writing cgroup files with one syscall each
//! where possible and errors that name the file.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{CgroupError, Result};

/// Read a whole file with plain read(2) calls into a pre-sized buffer
/// (`std::fs::read_to_string` adds a statx and small probe reads).
fn read_file(path: &Path) -> io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let cap = if path.starts_with("/proc") {
        16384
    } else {
        512
    };
    let mut buf = vec![0u8; cap];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Read a whole file as a string.
pub(crate) fn read(path: &Path) -> Result<String> {
    read_file(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a whole file; `Ok(None)` when it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match read_file(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Write `value` to an existing file with a single write(2). No O_CREAT:
/// cgroup files are never created by writers.
pub(crate) fn write_raw(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// Write `value` to `dir/file`; a missing file is reported as
/// [`CgroupError::MissingFile`] naming the setting `what`.
pub(crate) fn write_setting(dir: &Path, file: &str, value: &str, what: &str) -> Result<()> {
    write_opened(&mut open_setting(dir, file, what, value)?, dir, file, value)
}

/// Write `value` with one write(2) to `f`, the open `dir/file`.
pub(crate) fn write_opened(
    f: &mut std::fs::File,
    dir: &Path,
    file: &str,
    value: &str,
) -> Result<()> {
    f.write_all(value.as_bytes())
        .map_err(|source| CgroupError::Write {
            path: dir.join(file),
            value: value.to_string(),
            source,
        })
}

/// Open `dir/file` for a series of writes, the first being `value` (named in the error);
/// a missing file is reported as [`CgroupError::MissingFile`] naming the setting `what`.
pub(crate) fn open_setting(
    dir: &Path,
    file: &str,
    what: &str,
    value: &str,
) -> Result<std::fs::File> {
    let path = dir.join(file);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                CgroupError::MissingFile {
                    path,
                    what: what.to_string(),
                }
            } else {
                CgroupError::Write {
                    path,
                    value: value.to_string(),
                    source,
                }
            }
        })
}

/// Write `value` to a file, plain error on failure.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    write_raw(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// Parse a single unsigned number (or `max` → `u64::MAX`) from file contents.
pub(crate) fn parse_u64(text: &str, path: &Path) -> Result<u64> {
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse::<u64>().map_err(|e| CgroupError::Parse {
        path: path.to_path_buf(),
        reason: format!("expected a number, got {t:?}: {e}"),
    })
}

/// Read a single number from `dir/file`; 0 when the file does not exist.
pub(crate) fn read_u64_or_zero(dir: &Path, file: &str) -> Result<u64> {
    let path = dir.join(file);
    match read_opt(&path)? {
        Some(s) => parse_u64(&s, &path),
        None => Ok(0),
    }
}

/// Look up `key` in a flat-keyed file (`key value` per line).
pub(crate) fn flat_key(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        if it.next() == Some(key) {
            it.next().and_then(|v| v.parse().ok())
        } else {
            None
        }
    })
}

/// `path` joined with `rel` where `rel` may be absolute (its leading `/` is
/// ignored, unlike [`Path::join`]).
pub(crate) fn join_under(base: &Path, rel: &Path) -> PathBuf {
    let mut p = base.to_path_buf();
    for c in rel.components() {
        if let std::path::Component::Normal(n) = c {
            p.push(n);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_key_finds_values() {
        let t = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(flat_key(t, "oom_kill"), Some(3));
        assert_eq!(flat_key(t, "under_oom"), Some(0));
        assert_eq!(flat_key(t, "nope"), None);
    }

    #[test]
    fn join_under_ignores_root() {
        assert_eq!(
            join_under(Path::new("/sys/fs/cgroup/cpu"), Path::new("/a/b")),
            PathBuf::from("/sys/fs/cgroup/cpu/a/b")
        );
        assert_eq!(
            join_under(Path::new("/x"), Path::new("a/./b")),
            PathBuf::from("/x/a/b")
        );
    }

    #[test]
    fn parse_u64_max() {
        assert_eq!(parse_u64("max\n", Path::new("f")).ok(), Some(u64::MAX));
        assert_eq!(parse_u64("12\n", Path::new("f")).ok(), Some(12));
        assert!(parse_u64("x", Path::new("f")).is_err());
    }
}
