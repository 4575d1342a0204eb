//! The library's error type: every fallible call returns [`Result`], whose
//! [`Error`] keeps the error it wraps as its `source()`, so a front end can
//! print the whole chain (`anyhow`'s `{:#}`) or match on the kind.

use std::fmt::Display;

/// Result of the library's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error kept as the source of an [`Error::Context`].
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value from the user (command line, farm file) is not valid; the
    /// message names the option and the expected form.
    #[error("{0}")]
    Invalid(String),
    /// The operation cannot be done as things stand (no such instance, not
    /// running, in use, ...); the message says what to do.
    #[error("{0}")]
    Refused(String),
    /// A registry could not be reached, refused a request or sent something
    /// wrong; the message names the registry and says what to do.
    #[error("{0}")]
    Registry(String),
    /// An operation failed because of `source`.
    #[error("{msg}")]
    Context {
        /// What was being done, naming the object.
        msg: String,
        /// Why it failed.
        #[source]
        source: Source,
    },
    /// A system call failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A system call made through nix failed.
    #[error(transparent)]
    Sys(#[from] nix::Error),
    /// JSON could not be read or written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A network operation (bridge, veth, address, netns) failed.
    #[error(transparent)]
    Network(#[from] boxctl_network::Error),
    /// A path or name holds a NUL byte.
    #[error(transparent)]
    Nul(#[from] std::ffi::NulError),
    /// An OCI configuration could not be built.
    #[error(transparent)]
    Spec(#[from] oci_spec::OciSpecError),
    /// A cgroup could not be found or read.
    #[error(transparent)]
    Cgroups(#[from] boxrun_cgroups::CgroupError),
}

impl Error {
    /// A [`Error::Refused`] with this message.
    pub fn msg(m: impl Display) -> Self {
        Error::Refused(m.to_string())
    }

    /// The message and those of every source, joined by `: ` (as `anyhow`'s
    /// `{:#}` prints them).
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            out.push_str(": ");
            out.push_str(&e.to_string());
            cur = e.source();
        }
        out
    }

    /// Wrap `self` under `msg`, keeping it as the source.
    pub fn context(self, msg: impl Display) -> Self {
        Error::Context {
            msg: msg.to_string(),
            source: Box::new(self),
        }
    }
}

/// `context`/`with_context` on results and options, as `anyhow` has them,
/// but keeping the typed [`Error`].
pub trait Context<T> {
    /// Wrap the error (or a `None`) under `msg`.
    fn context<C: Display>(self, msg: C) -> Result<T>;
    /// Wrap the error (or a `None`) under the message `f` makes.
    fn with_context<C: Display, F: FnOnce() -> C>(self, f: F) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context<C: Display>(self, msg: C) -> Result<T> {
        self.map_err(|e| Error::Context {
            msg: msg.to_string(),
            source: Box::new(e),
        })
    }

    fn with_context<C: Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::Context {
            msg: f().to_string(),
            source: Box::new(e),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context<C: Display>(self, msg: C) -> Result<T> {
        self.ok_or_else(|| Error::msg(msg))
    }

    fn with_context<C: Display, F: FnOnce() -> C>(self, f: F) -> Result<T> {
        self.ok_or_else(|| Error::msg(f()))
    }
}

/// Return an [`Error::Refused`] made with `format!`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::Refused(format!($($arg)*)))
    };
}

/// Return an [`Error::Invalid`] made with `format!`.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::Invalid(format!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_source() {
        let r: std::result::Result<(), std::io::Error> =
            Err(std::io::Error::from_raw_os_error(libc::ENOENT));
        let e = r.context("cannot open x").unwrap_err();
        assert_eq!(e.to_string(), "cannot open x");
        let src = std::error::Error::source(&e).map(|s| s.to_string());
        assert!(src.is_some_and(|s| s.contains("No such file")), "{e:?}");
        let e = e.context("cannot start y");
        assert!(e
            .chain()
            .starts_with("cannot start y: cannot open x: No such file"));
    }
}
