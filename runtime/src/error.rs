//! Typed errors of the runtime library.

use std::path::PathBuf;

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
    /// A problem with config.json.
    #[error("config.json: {0}")]
    Config(String),
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
