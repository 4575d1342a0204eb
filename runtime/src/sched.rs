//! Process attributes applied just before exec: personality, I/O priority, scheduler
//! policy (sched_setattr) and CPU affinity (execCPUAffinity).

use crate::error::{Error, Result};
use oci_spec::runtime::{
    IOPriorityClass, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Process,
};

/// `linux.personality`.
pub fn apply_personality(p: &LinuxPersonality) -> Result<()> {
    let mut v: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    for f in p.flags().iter().flatten() {
        v |= match f.as_str() {
            "ADDR_NO_RANDOMIZE" => 0x0040000,
            "ADDR_COMPAT_LAYOUT" => 0x0200000,
            "ADDR_LIMIT_32BIT" => 0x0800000,
            "ADDR_LIMIT_3GB" => 0x8000000,
            "MMAP_PAGE_ZERO" => 0x0100000,
            "READ_IMPLIES_EXEC" => 0x0400000,
            "SHORT_INODE" => 0x1000000,
            "STICKY_TIMEOUTS" => 0x4000000,
            "UNAME26" => 0x0020000,
            "WHOLE_SECONDS" => 0x2000000,
            "FDPIC_FUNCPTRS" => 0x0080000,
            other => {
                return Err(Error::Config(format!(
                    "linux.personality: unknown flag {other:?}"
                )))
            }
        };
    }
    // SAFETY: personality takes a plain integer.
    if unsafe { libc::personality(v) } < 0 {
        return Err(Error::sys("set personality", nix::Error::last()));
    }
    Ok(())
}

/// `process.ioPriority`.
pub fn apply_io_priority(p: &Process) -> Result<()> {
    let Some(io) = p.io_priority() else {
        return Ok(());
    };
    let class: i64 = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&io.priority()) {
        return Err(Error::Config(format!(
            "process.ioPriority.priority {} is not in 0..7",
            io.priority()
        )));
    }
    let value = (class << 13) | io.priority();
    // SAFETY: ioprio_set(IOPRIO_WHO_PROCESS, self, value).
    if unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, value) } != 0 {
        return Err(Error::sys("set I/O priority", nix::Error::last()));
    }
    Ok(())
}

#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// `process.scheduler`.
pub fn apply_scheduler(p: &Process) -> Result<()> {
    let Some(s) = p.scheduler() else {
        return Ok(());
    };
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    // SAFETY: sched_setattr(self, attr, 0) with a valid attr of the declared size.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
        return Err(Error::sys(
            format!("set scheduler policy {:?}", s.policy()),
            nix::Error::last(),
        ));
    }
    Ok(())
}

/// Parse a CPU list like "0-3,7" into a cpu_set_t.
pub fn parse_cpus(list: &str) -> Result<libc::cpu_set_t> {
    let msg = || format!("cpu list {list:?}: use e.g. 0-3,7");
    let bad = || Error::Config(msg());
    let num = |s: &str| {
        s.parse::<usize>()
            .map_err(|e| Error::invalid_config(msg(), e))
    };
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if a > b || b >= libc::CPU_SETSIZE as usize {
            return Err(bad());
        }
        for c in a..=b {
            // SAFETY: c < CPU_SETSIZE was checked above.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
    }
    Ok(set)
}

/// Pin the calling process to `list`.
pub fn set_affinity(list: &str) -> Result<()> {
    let set = parse_cpus(list)?;
    // SAFETY: a valid cpu_set_t of its own size.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(Error::sys(
            format!("set CPU affinity {list}"),
            nix::Error::last(),
        ));
    }
    Ok(())
}

/// `process.execCPUAffinity.final` (applied right before exec).
pub fn final_affinity(p: &Process) -> Option<String> {
    p.exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.cpu_affinity_final().clone())
}

/// `process.execCPUAffinity.initial` (applied when the process enters the container).
pub fn initial_affinity(p: &Process) -> Option<String> {
    p.exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let s = parse_cpus("0-2,5").expect("parse");
        for (c, want) in [(0, true), (1, true), (2, true), (3, false), (5, true)] {
            // SAFETY: c is below CPU_SETSIZE.
            assert_eq!(unsafe { libc::CPU_ISSET(c, &s) }, want, "cpu {c}");
        }
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("x").is_err());
    }
}
