//! OCI `linux.seccomp` for boxrun: compile a [`LinuxSeccomp`] profile to a classic BPF program
//! with the same behaviour as runc + libseccomp, cache compiled programs on disk, install them,
//! and hand `SCMP_ACT_NOTIFY` listener fds to a seccomp agent the way runc does.
//!
//! The BPF emitter is our own (`src/bpf.rs`): `seccompiler` compiles one
//! architecture and one match action per filter and has no NOTIFY, LOG or TRACE, while OCI
//! profiles need x86_64 + x86 + x32 in one filter and per-rule actions.
//!
//! Supported architectures: x86_64 (native), x86 (`SCMP_ARCH_X86`) and x32 (`SCMP_ARCH_X32`).
//! Other architectures in `architectures` are ignored: an x86_64 kernel never reports them, so
//! they would only ever reach the bad-arch action.
//!
//! Semantics follow runc 1.1 + libseccomp 2.5 and are checked against them: `tests/runc_diff.rs`
//! runs profiles under the installed runc, reads back the filter it loaded, and compares
//! verdicts for every syscall number of every architecture (plus an ignored test comparing
//! random profiles). That covers runc's -ENOSYS stub, libseccomp's i386 socketcall/ipc
//! multiplexing, nr -1 handling, 32-bit argument comparisons on x86 and x32 and its masking of
//! the MASKED_EQ datum. Known differences:
//!
//! * overlapping conditional rules with *different* actions on one syscall are tried in profile
//!   order (an unconditional rule wins); libseccomp's rule tree resolves some such overlaps
//!   differently and refuses others (runc then fails to start the container);
//! * several 64-bit range comparisons (GT/GE/LT/LE) of one argument in different rules of one
//!   syscall are evaluated correctly here; libseccomp 2.5.4 merges them into a tree that tests
//!   a high-word bound against the low word, so runc's verdicts are wrong for some values;
//! * syscall names newer than the host's libseccomp are honoured here, where runc ignores them.

mod bpf;
mod cache;
mod error;
mod install;
mod notify;
mod profile;
mod syscalls;

use oci_spec::runtime::LinuxSeccomp;

pub use bpf::MAX_INSNS;
pub use cache::compile_cached;
pub use error::SeccompError;
pub use notify::send_listener_fd;
pub use profile::{resolve_syscall, syscall_nr_x86_64};

/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
pub const FLAG_NEW_LISTENER: u32 = profile::flag::NEW_LISTENER;

/// A compiled seccomp filter: the BPF program and the `seccomp(2)` flags to load it with.
#[derive(Clone)]
pub struct Filter {
    insns: Vec<libc::sock_filter>,
    flags: u32,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("len", &self.insns.len())
            .field("flags", &self.flags)
            .finish()
    }
}

impl PartialEq for Filter {
    fn eq(&self, o: &Self) -> bool {
        self.flags == o.flags
            && self.insns.len() == o.insns.len()
            && self
                .insns
                .iter()
                .zip(&o.insns)
                .all(|(a, b)| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k))
    }
}

impl Filter {
    /// The BPF program.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.insns
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits passed to `seccomp(2)`.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether the profile has `SCMP_ACT_NOTIFY` rules, so [`Filter::install`] returns a listener fd.
    pub fn needs_notify(&self) -> bool {
        self.flags & FLAG_NEW_LISTENER != 0
    }

    /// Install with `seccomp(SECCOMP_SET_MODE_FILTER)` and the flags; the caller has set
    /// no_new_privs or has CAP_SYS_ADMIN. Returns the listener fd when the profile has NOTIFY
    /// rules. Allocates nothing on success (safe in a child after clone).
    pub fn install(&self) -> Result<Option<std::os::fd::OwnedFd>, SeccompError> {
        install::install(self)
    }
}

/// Compile `profile` to a BPF program.
pub fn compile(profile: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let low = profile::lower(profile)?;
    let insns = bpf::generate(&low);
    if insns.len() > MAX_INSNS {
        return Err(SeccompError::TooLong { len: insns.len() });
    }
    Ok(Filter {
        insns,
        flags: low.flags,
    })
}
