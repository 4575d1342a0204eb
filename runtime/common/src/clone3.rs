//! The `clone3(2)` argument block, for a child born in a cgroup v2 directory.

/// `struct clone_args` of linux/sched.h, up to `cgroup` (CLONE_ARGS_SIZE_VER2).
/// Pass `size_of::<CloneArgs>()` as the size argument.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct CloneArgs {
    /// `CLONE_*` flags (including [`CLONE_INTO_CGROUP`]).
    pub flags: u64,
    /// Where to store a pidfd (`CLONE_PIDFD`).
    pub pidfd: u64,
    /// Where to store the child's tid in the child (`CLONE_CHILD_SETTID`).
    pub child_tid: u64,
    /// Where to store the child's tid in the parent (`CLONE_PARENT_SETTID`).
    pub parent_tid: u64,
    /// Signal sent to the parent when the child exits (usually `SIGCHLD`).
    pub exit_signal: u64,
    /// Lowest address of the child's stack (0: fork-like, shares the caller's copy).
    pub stack: u64,
    /// Size of that stack.
    pub stack_size: u64,
    /// Thread-local storage (`CLONE_SETTLS`).
    pub tls: u64,
    /// Pointer to an array of pids to ask for.
    pub set_tid: u64,
    /// Length of that array.
    pub set_tid_size: u64,
    /// File descriptor of the target cgroup v2 directory (`CLONE_INTO_CGROUP`).
    pub cgroup: u64,
}

/// `CLONE_INTO_CGROUP`: the child starts in the cgroup named by [`CloneArgs::cgroup`].
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[cfg(test)]
mod tests {
    #[test]
    fn is_the_kernels_ver2_size() {
        assert_eq!(std::mem::size_of::<super::CloneArgs>(), 88);
    }
}
