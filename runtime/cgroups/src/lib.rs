//! cgroup management for boxrun, following the OCI runtime spec
//! (`linux.cgroupsPath`, `linux.resources`) on pure cgroup v2, pure v1 and
//! hybrid hosts.
//!
//! The host layout is detected once per process from `/proc/self/mountinfo`
//! ([`layout::Layout::host`]). [`Cgroup::create`] makes the container's
//! directory in every hierarchy and applies the resources; the resulting
//! [`Cgroup`] is serialisable so later runtime invocations can act on it.
//!
//! On hybrid hosts every controller is used where it is mounted: v1
//! hierarchies for the v1-bound controllers, the cgroup2 tree for the rest
//! (e.g. `hugetlb`). Processes join every hierarchy, including
//! `name=systemd` and the cgroup2 tree.

pub mod bpf;
mod cgroup;
mod error;
mod freezer;
mod fsutil;
pub mod layout;
mod mount;
pub mod paths;
pub mod resources;
mod stats;

pub use cgroup::{Cgroup, Hierarchy, Version};
pub use error::{CgroupError, Result};
pub use layout::{Layout, Mode};
pub use resources::devices::{runc_default_rules, DeviceRule};
pub use stats::{
    Blkio, BlkioEntry, Cpu, CpuUsage, Hugetlb, Memory, MemoryEntry, Pids, Stats, Throttling,
};
