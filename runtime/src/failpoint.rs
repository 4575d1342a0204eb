//! Crash injection for tests (debug builds only): with `BOXRUN_FAILPOINT=<name>` set,
//! the runtime kills itself with SIGKILL when it reaches the point of that name, so
//! tests can show that the next command reconciles whatever was half made.
//!
//! Points: `create:state-dir`, `create:cgroup-made`, `create:cgroup`, `create:cloned`,
//! `create:v1-cgroups-made`, `create:joined`,
//! `create:ready`, `start:before-release`, `start:released`, `delete:killed`,
//! `delete:cgroup-removed`, `exec:forked`.

/// Die here if this point is selected (no-op in release builds).
#[inline]
pub fn hit(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os("BOXRUN_FAILPOINT").is_some_and(|v| v == name) {
        // SAFETY: killing ourselves is the point.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
