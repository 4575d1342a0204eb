//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while compiling, caching, installing or handing over a filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// `defaultAction` is `SCMP_ACT_NOTIFY` (runc refuses it too: the runtime's own writes would block).
    #[error(
        "defaultAction SCMP_ACT_NOTIFY is not allowed: use SCMP_ACT_NOTIFY in syscall rules only"
    )]
    NotifyDefault,
    /// A `SCMP_ACT_NOTIFY` rule names `write` (runc refuses it: the listener hand-over needs write).
    #[error("SCMP_ACT_NOTIFY cannot be used for the write syscall (syscalls[{rule}]): the runtime needs write to hand over the listener")]
    NotifyWrite {
        /// Index of the rule in `syscalls`.
        rule: usize,
    },
    /// A rule has an empty syscall name.
    #[error("syscalls[{rule}] has an empty syscall name: remove it or name a syscall")]
    EmptyName {
        /// Index of the rule in `syscalls`.
        rule: usize,
    },
    /// A condition names an argument index above 5.
    #[error("syscalls[{rule}] ({name}): argument index {index} is out of range: syscalls have arguments 0 to 5")]
    ArgIndex {
        /// Index of the rule in `syscalls`.
        rule: usize,
        /// The syscall name.
        name: String,
        /// The offending index.
        index: usize,
    },
    /// The compiled program exceeds the kernel's BPF_MAXINSNS.
    #[error("the compiled filter has {len} instructions, more than the kernel limit of 4096: simplify the profile (fewer argument conditions)")]
    TooLong {
        /// Instruction count.
        len: usize,
    },
    /// The kernel refused a filter flag it does not know.
    #[error("the kernel rejected the filter flags {flags}: {hint}")]
    UnsupportedFlags {
        /// The flags requested, by name.
        flags: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// seccomp(2) failed.
    #[error("loading the filter with seccomp(2) failed: {source}{hint}")]
    Install {
        /// The errno.
        source: std::io::Error,
        /// A hint for common causes (may be empty).
        hint: &'static str,
    },
    /// The seccomp agent's socket cannot be reached (runc's wording first).
    #[error("failed to connect with seccomp agent specified in the seccomp profile: dial unix {}: connect: {} (is the seccomp agent listening on linux.seccomp.listenerPath?)", path.display(), lower_errno(source))]
    AgentUnreachable {
        /// `listenerPath`.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Talking to the seccomp agent's listener socket failed.
    #[error("handing the seccomp listener fd to {path}: {source} (is the seccomp agent listening on linux.seccomp.listenerPath?)")]
    Listener {
        /// `listenerPath`.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// An OS error as Go prints it: `no such file or directory`, without the number.
fn lower_errno(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut c = text.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}
