//! Plain Linux formats and ABI blocks that boxrun, boxctl and the conformance suite
//! all read or write, each in one place:
//! - [`mountinfo`]: `/proc/PID/mountinfo` lines, octal escapes included.
//! - [`wait`]: wait statuses as shell-style exit codes.
//! - [`clone3`]: the `clone3(2)` argument block.
//! - [`civil`]: days since the Unix epoch as calendar dates.
//! - [`statx`]: `statx(2)` of a path (mount ids, the mount-root attribute).
//!
//! Only libc as a dependency: the statically linked `oci-checker` links this crate.

pub mod civil;
pub mod clone3;
pub mod mountinfo;
pub mod statx;
pub mod wait;
