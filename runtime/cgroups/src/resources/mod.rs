//! Mapping of `linux.resources` onto cgroup files. Every requested value is
//! either written or reported as an error; nothing is dropped silently
//! (the only documented exception is the deprecated `memory.kernel`, which
//! runtimes may ignore and which kernels ≥ 6.x cannot enforce).

pub(crate) mod blkio;
pub(crate) mod cpu;
pub mod devices;
pub(crate) mod memory;
pub(crate) mod misc;

use oci_spec::runtime::LinuxResources;

use crate::cgroup::Cgroup;
use crate::error::Result;

impl Cgroup {
    /// Apply `resources` to the container's cgroups (also used by `update`).
    /// Order: devices, memory, cpu/cpuset, pids, blkio, hugetlb, network,
    /// rdma, then `unified` last so that its raw values win.
    pub fn apply(&self, resources: &LinuxResources) -> Result<()> {
        if let Some(d) = resources.devices() {
            devices::apply(self, d)?;
        }
        if let Some(m) = resources.memory() {
            memory::apply(self, m)?;
        }
        if let Some(c) = resources.cpu() {
            cpu::apply(self, c)?;
        }
        if let Some(p) = resources.pids() {
            misc::apply_pids(self, p)?;
        }
        if let Some(b) = resources.block_io() {
            blkio::apply(self, b)?;
        }
        if let Some(h) = resources.hugepage_limits() {
            misc::apply_hugetlb(self, h)?;
        }
        if let Some(n) = resources.network() {
            misc::apply_network(self, n)?;
        }
        if let Some(r) = resources.rdma() {
            misc::apply_rdma(self, r)?;
        }
        if let Some(u) = resources.unified() {
            misc::apply_unified(self, u)?;
        }
        Ok(())
    }
}
