//! Lowering an OCI `linux.seccomp` profile to per-syscall rules, with runc's semantics:
//!
//! * actions map as in runc's `getAction` (KILL = KILL_THREAD, ERRNO and TRACE default to EPERM);
//! * a rule whose action equals the default action is skipped;
//! * a name unknown on every supported architecture is skipped (runc logs and ignores it);
//!   a name known on some architectures only applies there (libseccomp's per-arch resolution);
//! * several conditions on distinct arguments are ANDed; if two conditions of one rule name the
//!   same argument, each condition becomes a rule of its own (runc's "old behaviour"), so they OR;
//! * an unconditional rule for a syscall overrides its conditional rules (libseccomp replaces the
//!   chains); otherwise conditional rules are tried in profile order;
//! * runc's -ENOSYS stub: unless the default action is ALLOW, LOG or TRACE, a syscall numbered above
//!   the largest one the profile names (per listed architecture) returns ENOSYS.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use crate::syscalls::{Entry, FIRST, SYSCALLS};
use crate::SeccompError;

/// `SECCOMP_RET_*` values.
pub(crate) mod ret {
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    pub const KILL_THREAD: u32 = 0;
    pub const TRAP: u32 = 0x0003_0000;
    pub const ERRNO: u32 = 0x0005_0000;
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    pub const TRACE: u32 = 0x7ff0_0000;
    pub const LOG: u32 = 0x7ffc_0000;
    pub const ALLOW: u32 = 0x7fff_0000;
}

/// `SECCOMP_FILTER_FLAG_*` values.
pub(crate) mod flag {
    pub const TSYNC: u32 = 1;
    pub const LOG: u32 = 1 << 1;
    pub const SPEC_ALLOW: u32 = 1 << 2;
    pub const NEW_LISTENER: u32 = 1 << 3;
    pub const TSYNC_ESRCH: u32 = 1 << 4;
    pub const WAIT_KILLABLE_RECV: u32 = 1 << 5;
}

/// The action returned for a syscall of an architecture the filter does not cover
/// (libseccomp's default `SCMP_FLTATR_ACT_BADARCH`, which runc leaves alone).
pub(crate) const BAD_ARCH: u32 = ret::KILL_THREAD;
/// What runc's stub returns for syscalls newer than the profile.
pub(crate) const ENOSYS_RET: u32 = ret::ERRNO | libc::ENOSYS as u32;

/// The architectures this crate emits code for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum A {
    X86_64 = 0,
    X86 = 1,
    X32 = 2,
}

impl A {
    /// The syscall number of `e` on this architecture, if it has the syscall.
    pub(crate) fn nr(self, e: &Entry) -> Option<u32> {
        let n = match self {
            A::X86_64 => e.1,
            A::X86 => e.2,
            A::X32 => e.3,
        };
        (n >= 0).then_some(n as u32)
    }

    /// Whether argument comparisons use 32-bit words only (libseccomp's ARCH_SIZE_32).
    pub(crate) fn is_32(self) -> bool {
        !matches!(self, A::X86_64)
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// One argument condition.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cond {
    pub index: u8,
    pub op: Op,
    /// The datum (for MASKED_EQ: the mask).
    pub value: u64,
    /// MASKED_EQ's datum; ignored otherwise.
    pub value_two: u64,
}

/// A conjunction of conditions with its action.
#[derive(Clone, Debug)]
pub(crate) struct Rule {
    pub conds: Vec<Cond>,
    pub action: u32,
}

/// What the filter does for one syscall.
#[derive(Clone, Debug)]
pub(crate) enum Plan {
    /// Always this action.
    Always(u32),
    /// Try the rules in order; the default action when none matches.
    Rules(Vec<Rule>),
}

/// The lowered profile.
#[derive(Debug)]
pub(crate) struct Lowered {
    pub default: u32,
    /// Which of x86_64, x86, x32 get a section (x86_64, the native arch, always does).
    pub enabled: [bool; 3],
    /// runc's -ENOSYS stub: the largest syscall number named, per listed architecture.
    pub stub: [Option<u32>; 3],
    /// Plans by index into [`SYSCALLS`], sorted by that index.
    pub plans: Vec<(usize, Plan)>,
    pub flags: u32,
}

fn action(a: LinuxSeccompAction, errno_ret: Option<u32>) -> u32 {
    // libseccomp keeps the low 16 bits of the return data (runc converts to int16).
    let data = |d: Option<u32>| d.unwrap_or(libc::EPERM as u32) & 0xffff;
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ret::KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => ret::KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => ret::TRAP,
        LinuxSeccompAction::ScmpActErrno => ret::ERRNO | data(errno_ret),
        LinuxSeccompAction::ScmpActNotify => ret::USER_NOTIF,
        LinuxSeccompAction::ScmpActTrace => ret::TRACE | data(errno_ret),
        LinuxSeccompAction::ScmpActLog => ret::LOG,
        LinuxSeccompAction::ScmpActAllow => ret::ALLOW,
    }
}

fn op(o: LinuxSeccompOperator) -> Op {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
        LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
        LinuxSeccompOperator::ScmpCmpLe => Op::Le,
        LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
        LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
        LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq,
    }
}

/// Find a syscall by name: a binary search among the names with the same first byte.
pub(crate) fn lookup(name: &str) -> Option<usize> {
    let b = *name.as_bytes().first()? as usize;
    let (lo, hi) = (FIRST[b] as usize, FIRST[b + 1] as usize);
    SYSCALLS[lo..hi]
        .binary_search_by(|e| e.0.cmp(name))
        .ok()
        .map(|i| lo + i)
}

/// The syscall number of `name` on x86_64, if any (handy for tests and callers).
pub fn syscall_nr_x86_64(name: &str) -> Option<u32> {
    lookup(name).and_then(|i| A::X86_64.nr(&SYSCALLS[i]))
}

/// The syscall number of `name` on `arch` (x86_64, x86 or x32; x32 numbers include
/// `__X32_SYSCALL_BIT`), or `None` if the architecture lacks it or is not supported.
pub fn resolve_syscall(name: &str, arch: Arch) -> Option<u32> {
    let a = arch_of(arch)?;
    lookup(name).and_then(|i| a.nr(&SYSCALLS[i]))
}

fn arch_of(a: Arch) -> Option<A> {
    match a {
        Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Some(A::X86_64),
        Arch::ScmpArchX86 => Some(A::X86),
        Arch::ScmpArchX32 => Some(A::X32),
        // Other architectures cannot occur on an x86_64 kernel: they get no section and would
        // fall to the bad-arch action, which no task can ever reach.
        _ => None,
    }
}

/// Rules collected per syscall (indexed like [`SYSCALLS`]).
struct Table {
    rules: Vec<Option<Vec<Rule>>>,
    always: Vec<Option<u32>>,
    /// Syscalls with rules, in first-seen order.
    used: Vec<usize>,
    socketcall: usize,
    ipc: usize,
}

impl Table {
    /// Add `rs` for syscall `i`, or an unconditional `act` when `rs` is empty.
    fn add(&mut self, i: usize, rs: Vec<Rule>, act: u32) {
        if self.rules[i].is_none() && self.always[i].is_none() {
            self.used.push(i);
        }
        if rs.is_empty() {
            // The first unconditional rule wins and replaces any conditional ones.
            self.always[i].get_or_insert(act);
        } else {
            self.rules[i].get_or_insert_with(Vec::new).extend(rs);
        }
    }
}

/// Lower `p`; see the module documentation for the semantics.
pub(crate) fn lower(p: &LinuxSeccomp) -> Result<Lowered, SeccompError> {
    let default_action = p.default_action();
    if default_action == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyDefault);
    }
    let default = action(default_action, p.default_errno_ret());

    let mut enabled = [true, false, false];
    let mut listed = [false; 3];
    for a in p
        .architectures()
        .iter()
        .flatten()
        .filter_map(|a| arch_of(*a))
    {
        enabled[a as usize] = true;
        listed[a as usize] = true;
    }

    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => flag::TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => flag::LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => flag::SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => flag::WAIT_KILLABLE_RECV,
        };
    }

    let mut t = Table {
        rules: vec![None; SYSCALLS.len()],
        always: vec![None; SYSCALLS.len()],
        used: Vec::new(),
        socketcall: lookup("socketcall").unwrap_or(0),
        ipc: lookup("ipc").unwrap_or(0),
    };
    let mut last = [0u32; 3];
    let mut notify = false;

    for (ri, sc) in p.syscalls().iter().flatten().enumerate() {
        let act = action(sc.action(), sc.errno_ret());
        let is_notify = sc.action() == LinuxSeccompAction::ScmpActNotify;
        let args = sc.args().as_deref().unwrap_or(&[]);
        for a in args {
            if a.index() > 5 {
                let name = sc.names().first().cloned().unwrap_or_default();
                return Err(SeccompError::ArgIndex {
                    rule: ri,
                    name,
                    index: a.index(),
                });
            }
        }
        let mut counts = [0usize; 6];
        for a in args {
            counts[a.index()] += 1;
        }
        let split = counts.iter().any(|&c| c > 1);
        for name in sc.names() {
            if name.is_empty() {
                return Err(SeccompError::EmptyName { rule: ri });
            }
            if is_notify && name == "write" {
                return Err(SeccompError::NotifyWrite { rule: ri });
            }
            // Like runc, any NOTIFY rule asks for a listener, even one for an unknown syscall.
            notify |= is_notify;
            let Some(idx) = lookup(name) else { continue };
            let e = &SYSCALLS[idx];
            for a in [A::X86_64, A::X86, A::X32] {
                if let Some(nr) = a.nr(e) {
                    last[a as usize] = last[a as usize].max(nr);
                }
            }
            if act == default {
                continue;
            }
            if e.1 >= 0 || e.2 >= 0 || e.3 >= 0 {
                let rs = if args.is_empty() {
                    Vec::new()
                } else {
                    let conds = args.iter().map(|a| Cond {
                        index: a.index() as u8,
                        op: op(a.op()),
                        value: a.value(),
                        // libseccomp masks MASKED_EQ's datum with the mask.
                        value_two: a.value_two().unwrap_or(0) & a.value(),
                    });
                    if split {
                        conds
                            .map(|c| Rule {
                                conds: vec![c],
                                action: act,
                            })
                            .collect()
                    } else {
                        vec![Rule {
                            conds: conds.collect(),
                            action: act,
                        }]
                    }
                };
                t.add(idx, rs, act);
            }
            // libseccomp also filters i386's multiplexed form: socketcall(call, args) or
            // ipc(call, ...), matching the call number only (the real arguments are in memory).
            if e.4 != 0 {
                let base = if e.4 == 1 { t.socketcall } else { t.ipc };
                let c = Cond {
                    index: 0,
                    op: Op::Eq,
                    value: e.5 as u64,
                    value_two: 0,
                };
                t.add(
                    base,
                    vec![Rule {
                        conds: vec![c],
                        action: act,
                    }],
                    act,
                );
            }
        }
    }

    let Table {
        rules,
        always,
        mut used,
        ..
    } = t;
    used.sort_unstable();
    let mut rules = rules;
    let plans = used
        .into_iter()
        .map(|i| match always[i] {
            Some(a) => (i, Plan::Always(a)),
            None => (i, Plan::Rules(rules[i].take().unwrap_or_default())),
        })
        .collect();

    let allowish = matches!(
        default_action,
        LinuxSeccompAction::ScmpActAllow
            | LinuxSeccompAction::ScmpActLog
            | LinuxSeccompAction::ScmpActTrace
    );
    let mut stub = [None; 3];
    // With ERRNO(ENOSYS) as default the stub changes nothing, so it is left out.
    if !allowish && default != ENOSYS_RET {
        for a in 0..3 {
            if listed[a] && last[a] != 0 {
                stub[a] = Some(last[a]);
            }
        }
    }

    if notify {
        flags |= flag::NEW_LISTENER;
        if flags & flag::TSYNC != 0 {
            // TSYNC and NEW_LISTENER are only compatible with TSYNC_ESRCH (Linux 5.7).
            flags |= flag::TSYNC_ESRCH;
        }
    } else {
        // WAIT_KILLABLE_RECV only changes how a listener waits; without one the kernel
        // refuses it, and the flag means nothing, so it is dropped.
        flags &= !flag::WAIT_KILLABLE_RECV;
    }

    Ok(Lowered {
        default,
        enabled,
        stub,
        plans,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_indexed() {
        assert!(SYSCALLS.windows(2).all(|w| w[0].0 < w[1].0));
        for (i, e) in SYSCALLS.iter().enumerate() {
            assert_eq!(lookup(e.0), Some(i), "{}", e.0);
        }
        assert_eq!(lookup(""), None);
        assert_eq!(lookup("zzz"), None);
        assert_eq!(lookup("~"), None);
        let socket = lookup("socket").map(|i| (SYSCALLS[i].4, SYSCALLS[i].5));
        assert_eq!(socket, Some((1, 1)));
    }
}
