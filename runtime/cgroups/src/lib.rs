//! cgroup management for boxrun, following the OCI runtime spec
//! (`linux.cgroupsPath`, `linux.resources`) on pure cgroup v2, pure v1 and
//! hybrid hosts.
//!
//! The host layout is detected once per process from statmount(2) of the mounts at
//! `/sys/fs/cgroup`, or where the kernel cannot tell, from `/proc/self/mountinfo`
//! (plus the cgroup2 root's `cgroup.controllers`), see [`layout::Layout::host`]. [`Cgroup::create`] makes the container's
//! directory in every hierarchy and applies the resources; the resulting
//! [`Cgroup`] is serialisable so later runtime invocations can act on it.
//! [`Cgroup::destroy`] removes only the directories `create` made, except the
//! shared runtime parent (`/boxrun`, `/boxctl`: [`RUNTIME_PARENTS`]), which is
//! kept between containers as runc and crun keep theirs.
//!
//! On hybrid hosts every controller is used where it is mounted: v1
//! hierarchies for the v1-bound controllers, the cgroup2 tree for the rest
//! (e.g. `hugetlb`). Processes join every hierarchy, including
//! `name=systemd` and the cgroup2 tree. Freezing uses the v1 `freezer` if
//! mounted, else `cgroup.freeze`; devices use v1 `devices` if mounted, else
//! an eBPF program on the cgroup2 directory ([`bpf`]).
//!
//! Value mapping decisions (all follow runc unless noted):
//! - Every requested value is written or reported as an error naming the
//!   setting ([`CgroupError::MissingController`], [`CgroupError::MissingFile`],
//!   [`CgroupError::Unsupported`], [`CgroupError::InvalidValue`]).
//!   Exception: `memory.kernel` (kmem, deprecated in the spec, unenforceable
//!   since Linux 5.16) is accepted and ignored, as runc does.
//! - Zero means "unset" for `cpu.shares`, `cpu.quota`, `cpu.period`,
//!   `cpu.realtime*`, `pids.limit`, `blockIO.weight`/`leafWeight`; `-1`
//!   means unlimited where the kernel has a limit.
//! - v2: `cpu.weight = 1 + (shares-2)*9999/262142` (shares outside
//!   2..=262144 are an error rather than clamped); `io.weight = 1 +
//!   (weight-10)*9999/990` unless BFQ's `io.bfq.weight` exists;
//!   `memory.swap.max = swap - limit` (OCI swap is memory+swap);
//!   `reservation` → `memory.low`; only-quota or only-period updates keep
//!   the other half of `cpu.max`. v1-only settings (swappiness, kernelTCP,
//!   disableOOMKiller=true, realtime, leafWeight, net_cls/net_prio) are
//!   errors on v2.
//! - v1 memory+swap limits are written in whichever order keeps
//!   memsw >= limit at every step; `cpu.shares` is read back and a kernel
//!   clamp is an error.
//! - Devices: v1 writes `a` to `devices.deny` and then replays the rules;
//!   v2 evaluates rules last-to-first (first match wins, no match denies).
//!   FIFO (`p`) rules are skipped: the device controller never checks FIFOs.
//! - `unified` needs a cgroup2 tree (on hybrid hosts it writes to the
//!   container's cgroup2 directory).

pub mod bpf;
mod cgroup;
mod error;
mod freezer;
mod fsutil;
pub mod layout;
mod mount;
pub mod paths;
mod preexisting;
pub mod resources;
mod rootless;
mod statmount;
mod stats;

pub use cgroup::{Cgroup, Hierarchy, Version, RUNTIME_PARENTS};
pub use error::{CgroupError, Result};
pub use layout::{Layout, Mode};
pub use mount::{attr as mount_attr, mount_setattr_recursive};
pub use preexisting::Preexisting;
pub use resources::devices::{runc_default_rules, DeviceRule};
pub use rootless::requested_limit;
pub use stats::{
    Blkio, BlkioEntry, Cpu, CpuUsage, Hugetlb, Memory, MemoryEntry, Pids, Stats, Throttling,
};
