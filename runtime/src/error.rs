//! Typed errors of the runtime library.

use std::path::PathBuf;

/// Any underlying error kept as the source of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in boxrun, with the object it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A container id that does not exist under the runtime root.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// `create` with an id already in use.
    #[error("container {0} already exists")]
    Exists(String),
    /// An id with characters that could escape the state directory.
    #[error("invalid container id {0:?}: use letters, digits, '_', '-', '.', '+' (not starting with '.')")]
    InvalidId(String),
    /// An operation not allowed in the container's current state.
    #[error("container {id} is {status}: {msg}")]
    BadState {
        /// Container id.
        id: String,
        /// Its current status.
        status: String,
        /// What was refused.
        msg: String,
    },
    /// A problem with config.json found by the runtime's own checks (no underlying error).
    #[error("config.json: {0}")]
    Config(String),
    /// config.json is not a valid OCI runtime spec.
    #[error("config.json: {}", crate::config::one_line(&.source.to_string()))]
    Spec {
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A value of config.json (or of a document in its form: `--process`, `--resources`)
    /// that an underlying call or parser rejected.
    #[error("config.json: {field}: {source}")]
    Field {
        /// The field and its value, as the user wrote them.
        field: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// A value the runtime could not use, worded for the user (or in runc's words, which
    /// clients match); the error that rejected it is kept as the source but not printed.
    #[error("{msg}")]
    Invalid {
        /// The message.
        msg: String,
        /// What rejected the value (a parser, a NUL check, a failed stat).
        #[source]
        source: BoxError,
    },
    /// A JSON document the runtime reads or writes (state, a spec part) failed to
    /// (de)serialise.
    #[error("{what}: {source}")]
    Json {
        /// The document.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: String,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A step of the runtime failed on an underlying error.
    #[error("{what}: {source}")]
    Context {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// The container process reported a failure during set-up.
    #[error("{0}")]
    Init(String),
    /// A hook failed.
    #[error("{0}")]
    Hook(String),
    /// cgroup set-up failed.
    #[error("cgroups: {0}")]
    Cgroup(#[from] boxrun_cgroups::CgroupError),
    /// seccomp set-up failed.
    #[error("seccomp: {0}")]
    Seccomp(#[from] boxrun_seccomp::SeccompError),
    /// Anything else, already worded for the user.
    #[error("{0}")]
    Other(String),
}

/// Result alias for the runtime.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A failed system call, with what was being done.
    pub fn sys(what: impl Into<String>, source: nix::Error) -> Self {
        Error::Sys {
            what: what.into(),
            source,
        }
    }
    /// A step that failed on `source`, with what was being done.
    pub fn context(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Context {
            what: what.into(),
            source: source.into(),
        }
    }
    /// A config.json `field` (with its value) rejected by `source`.
    pub fn field(field: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Field {
            field: field.into(),
            source: source.into(),
        }
    }
    /// A value rejected by `source`, reported as `msg` alone.
    pub fn invalid(msg: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Invalid {
            msg: msg.into(),
            source: source.into(),
        }
    }
    /// A config.json value rejected by `source`, reported as `config.json: {msg}`.
    pub fn invalid_config(msg: impl std::fmt::Display, source: impl Into<BoxError>) -> Self {
        Self::invalid(format!("config.json: {msg}"), source)
    }
    /// A JSON document `what` that failed to (de)serialise.
    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }
    /// A failed file operation on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Adds context to nix results.
pub trait SysContext<T> {
    /// Map a nix error into [`Error::Sys`] with a description built lazily.
    fn sys_ctx<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T> SysContext<T> for std::result::Result<T, nix::Error> {
    fn sys_ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::sys(f(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::io::ErrorKind;

    fn io_kind(e: &Error) -> Option<ErrorKind> {
        e.source()?
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
    }

    #[test]
    fn a_wrapped_io_error_is_the_source_and_printed_once() {
        let e = Error::context(
            "write exec fifo",
            std::io::Error::from(ErrorKind::BrokenPipe),
        );
        assert_eq!(io_kind(&e), Some(ErrorKind::BrokenPipe));
        assert_eq!(e.to_string(), "write exec fifo: broken pipe");
    }

    #[test]
    fn a_missing_bundle_keeps_the_not_found_error() {
        let dir = std::env::temp_dir().join(format!("boxrun-no-bundle-{}", std::process::id()));
        let Err(e) = crate::config::load_bundle(&dir) else {
            panic!("{} loaded as a bundle", dir.display());
        };
        assert_eq!(io_kind(&e), Some(ErrorKind::NotFound), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "bundle {}: No such file or directory (os error 2)",
                dir.display()
            )
        );
    }

    #[test]
    fn a_bad_config_keeps_the_parser_error_and_its_wording() {
        let e = crate::config::parse(b"{\"ociVersion\": 1}").expect_err("not a spec");
        let parser = e
            .source()
            .and_then(|s| s.downcast_ref::<serde_json::Error>())
            .expect("the serde_json error is the source");
        assert_eq!(e.to_string(), format!("config.json: {parser}"));
    }

    #[test]
    fn a_rejected_field_names_config_json_and_keeps_its_source() {
        let e = Error::field("root.path /x", std::io::Error::from(ErrorKind::NotFound));
        assert_eq!(io_kind(&e), Some(ErrorKind::NotFound));
        assert_eq!(e.to_string(), "config.json: root.path /x: entity not found");
    }

    #[test]
    fn an_invalid_value_prints_its_message_alone() {
        let parse = "x".parse::<u32>().expect_err("not a number");
        let e = Error::invalid("--user \"x\": use UID[:GID]", parse.clone());
        assert_eq!(e.to_string(), "--user \"x\": use UID[:GID]");
        let src = e
            .source()
            .and_then(|s| s.downcast_ref::<std::num::ParseIntError>());
        assert_eq!(src, Some(&parse));
    }

    #[test]
    fn a_bad_signal_offset_keeps_the_parse_error_behind_its_message() {
        let e = crate::signals::parse("RTMIN+x").expect_err("not a signal");
        assert_eq!(
            e.to_string(),
            "unknown signal \"RTMIN+x\": use a name like TERM or a number"
        );
        assert!(
            e.source()
                .is_some_and(|s| s.is::<std::num::ParseIntError>()),
            "{e:?}"
        );
    }
}
