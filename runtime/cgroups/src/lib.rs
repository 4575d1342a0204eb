//! cgroup management for boxrun.
