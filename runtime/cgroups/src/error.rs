//! The error type of this crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while managing a container's cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup (or proc) file could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A value could not be written to a cgroup file.
    #[error("write {value:?} to {path}: {source}{}", write_hint(.source))]
    Write {
        /// The file.
        path: PathBuf,
        /// What we tried to write.
        value: String,
        /// The OS error.
        source: io::Error,
    },
    /// A cgroup file needed for a requested setting does not exist.
    #[error("cgroup file {path} does not exist, so {what} cannot be applied on this host; remove the setting from the config")]
    MissingFile {
        /// The file that is missing.
        path: PathBuf,
        /// The setting that needed it.
        what: String,
    },
    /// A controller needed for a requested setting is not mounted/enabled.
    #[error("cgroup controller {controller:?} is not available on this host, so {what} cannot be applied; enable the controller or remove the setting")]
    MissingController {
        /// The controller, e.g. `net_cls`.
        controller: String,
        /// The setting that needed it.
        what: String,
    },
    /// A setting has a value that cannot be mapped to the kernel interface.
    #[error("invalid {what}: {reason}")]
    InvalidValue {
        /// The setting, e.g. `linux.resources.cpu.shares`.
        what: String,
        /// Why it is invalid and what is allowed.
        reason: String,
    },
    /// `linux.cgroupsPath` or the container id is unusable.
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No usable cgroup file system is mounted.
    #[error("no cgroup file system is mounted (checked /proc/self/mountinfo); mount cgroup2 or cgroup v1 hierarchies under /sys/fs/cgroup")]
    NoCgroupFs,
    /// A file had unexpected contents.
    #[error("parse {path}: {reason}")]
    Parse {
        /// The file (or a description of the input).
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A cgroup directory could not be created.
    #[error("create cgroup directory {path}: {source}")]
    Mkdir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A cgroup directory could not be removed.
    #[error("remove cgroup directory {path}: {source} (are processes still running in it?)")]
    Rmdir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A cgroup directory could not be opened.
    #[error("open cgroup directory {path}: {source}")]
    Open {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A bpf(2) operation for the v2 device controller failed.
    #[error("bpf {op} for the device cgroup program: {source}{log}")]
    Bpf {
        /// The bpf command, e.g. `BPF_PROG_LOAD`.
        op: &'static str,
        /// The OS error.
        source: io::Error,
        /// Verifier log (prefixed with a newline) if any.
        log: String,
    },
    /// A mount for the container's cgroup file system failed.
    #[error("mount {what} at {target}: {source}")]
    Mount {
        /// What was being mounted.
        what: String,
        /// Where.
        target: PathBuf,
        /// The OS error.
        source: nix::Error,
    },
    /// A filesystem operation inside the container's cgroup mount failed.
    #[error("prepare cgroup mount at {path}: {source}")]
    MountPrep {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Sending a signal failed.
    #[error("send signal {signal} to pid {pid}: {source}")]
    Signal {
        /// The process.
        pid: i32,
        /// The signal number.
        signal: i32,
        /// The OS error.
        source: nix::Error,
    },
    /// The cgroup did not reach the frozen state in time.
    #[error("cgroup {path} did not freeze within {millis} ms (a process may be stuck in uninterruptible sleep); try again")]
    FreezeTimeout {
        /// The freezer directory.
        path: PathBuf,
        /// How long we waited.
        millis: u64,
    },
    /// A rootless container asks for a limit but may not use any cgroup.
    #[error("{field} cannot be applied: {path} is not writable by this user (rootless); drop the setting, or run boxrun from a cgroup v2 subtree delegated to the user")]
    RootlessLimit {
        /// The setting, e.g. `linux.resources.memory`.
        field: String,
        /// The directory or `cgroup.procs` file this user may not write.
        path: PathBuf,
    },
    /// The operation needs a hierarchy this cgroup does not have.
    #[error("{what} is not supported here: {reason}")]
    Unsupported {
        /// The operation.
        what: String,
        /// Why.
        reason: String,
    },
}

/// What an errno from a cgroup file write usually means, and what to do.
fn write_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EINVAL) => " (the kernel rejected the value: check its range and format, and that it fits the parent cgroup's settings)",
        Some(libc::EBUSY) => " (the cgroup is busy: processes or child cgroups conflict with this change)",
        Some(libc::ENOSPC) => " (no room: e.g. cpus/mems outside the parent's cpuset, or a hierarchy limit reached)",
        Some(libc::EPERM) | Some(libc::EACCES) => " (permission denied: run as root, or the parent cgroup does not allow it)",
        Some(libc::EOPNOTSUPP) => " (not supported by this kernel or controller)",
        Some(libc::ESRCH) => " (the process no longer exists)",
        _ => "",
    }
}

impl CgroupError {
    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        CgroupError::InvalidValue {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing_controller(controller: &str, what: impl Into<String>) -> Self {
        CgroupError::MissingController {
            controller: controller.to_string(),
            what: what.into(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, CgroupError>;
