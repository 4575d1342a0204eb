//! seccomp for boxrun.
