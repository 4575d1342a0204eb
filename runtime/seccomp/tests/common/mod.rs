//! Test helpers: a classic-BPF interpreter for seccomp programs and profile builders.
#![allow(dead_code)]

pub mod containers_common;

use oci_spec::runtime::LinuxSeccomp;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
pub const X32: u32 = 0x4000_0000;

/// Every OCI seccomp argument operator.
pub const SCMP_OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

pub const ALLOW: u32 = 0x7fff_0000;
pub const LOG: u32 = 0x7ffc_0000;
pub const TRACE: u32 = 0x7ff0_0000;
pub const NOTIFY: u32 = 0x7fc0_0000;
pub const ERRNO: u32 = 0x0005_0000;
pub const TRAP: u32 = 0x0003_0000;
pub const KILL_THREAD: u32 = 0;
pub const KILL_PROCESS: u32 = 0x8000_0000;
pub const EPERM: u32 = ERRNO | 1;
pub const ENOSYS: u32 = ERRNO | 38;

/// Parse a profile from JSON (the config.json form).
pub fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("test profile parses")
}

/// Run `prog` on a synthetic `seccomp_data`, checking the kernel's structural rules as it goes.
pub fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    run_counted(prog, arch, nr, args).0
}

/// [`run`], also returning how many instructions were executed.
pub fn run_counted(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
    assert!(
        !prog.is_empty() && prog.len() <= 4096,
        "program length {}",
        prog.len()
    );
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    data[8..16].copy_from_slice(&0x1234_5678u64.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let mut a: u32 = 0;
    let mut pc = 0usize;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps <= prog.len(), "BPF runs backwards or loops");
        let i = prog
            .get(pc)
            .unwrap_or_else(|| panic!("pc {pc} ran off the end"));
        let jump = |off: u32| -> usize {
            let t = pc + 1 + off as usize;
            assert!(t < prog.len(), "jump from {pc} out of range");
            t
        };
        match i.code {
            0x20 => {
                let k = i.k as usize;
                assert!(k & 3 == 0 && k + 4 <= 64, "bad load offset {k}");
                a = u32::from_le_bytes([data[k], data[k + 1], data[k + 2], data[k + 3]]);
                pc += 1;
            }
            0x54 => {
                a &= i.k;
                pc += 1;
            }
            0x05 => pc = jump(i.k),
            0x15 | 0x25 | 0x35 | 0x45 => {
                let c = match i.code {
                    0x15 => a == i.k,
                    0x25 => a > i.k,
                    0x35 => a >= i.k,
                    _ => a & i.k != 0,
                };
                pc = jump(if c { i.jt } else { i.jf } as u32);
            }
            0x06 => return (i.k, steps),
            c => panic!("unexpected opcode {c:#x} at {pc}"),
        }
    }
}

/// Shorthand: x86_64 syscall `name` with `args`.
pub fn run64(prog: &[libc::sock_filter], name: &str, args: [u64; 6]) -> u32 {
    let nr =
        boxrun_seccomp::syscall_nr_x86_64(name).unwrap_or_else(|| panic!("unknown syscall {name}"));
    run(prog, AUDIT_ARCH_X86_64, nr, args)
}

/// A tiny deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Reference semantics (runc + libseccomp, written plainly) for syscall `nr` of `arch`, for
/// numbers the profile's tables cover (the -ENOSYS stub and bad-arch paths are tested apart).
pub fn reference(p: &LinuxSeccomp, arch: oci_spec::runtime::Arch, nr: u32, args: [u64; 6]) -> u32 {
    use oci_spec::runtime::{Arch, LinuxSeccompAction as Act, LinuxSeccompOperator as O};
    let act = |a: Act, e: Option<u32>| match a {
        Act::ScmpActKill | Act::ScmpActKillThread => KILL_THREAD,
        Act::ScmpActKillProcess => KILL_PROCESS,
        Act::ScmpActTrap => TRAP,
        Act::ScmpActErrno => ERRNO | (e.unwrap_or(1) & 0xffff),
        Act::ScmpActTrace => TRACE | (e.unwrap_or(1) & 0xffff),
        Act::ScmpActNotify => NOTIFY,
        Act::ScmpActLog => LOG,
        Act::ScmpActAllow => ALLOW,
    };
    let wide = arch == Arch::ScmpArchX86_64;
    let default = act(p.default_action(), p.default_errno_ret());
    let mut conditional = None;
    for sc in p.syscalls().iter().flatten() {
        let a = act(sc.action(), sc.errno_ret());
        if a == default
            || !sc
                .names()
                .iter()
                .any(|n| boxrun_seccomp::resolve_syscall(n, arch) == Some(nr))
        {
            continue;
        }
        let conds = sc.args().clone().unwrap_or_default();
        if conds.is_empty() {
            return a;
        }
        let check = |c: &oci_spec::runtime::LinuxSeccompArg| {
            let mask = if wide { u64::MAX } else { 0xffff_ffff };
            let (x, v, v2) = (
                args[c.index()] & mask,
                c.value() & mask,
                c.value_two().unwrap_or(0) & mask,
            );
            match c.op() {
                O::ScmpCmpNe => x != v,
                O::ScmpCmpLt => x < v,
                O::ScmpCmpLe => x <= v,
                O::ScmpCmpEq => x == v,
                O::ScmpCmpGe => x >= v,
                O::ScmpCmpGt => x > v,
                O::ScmpCmpMaskedEq => x & v == v2 & v,
            }
        };
        let same_arg = (0..6).any(|i| conds.iter().filter(|c| c.index() == i).count() > 1);
        let hit = if same_arg {
            conds.iter().any(check)
        } else {
            conds.iter().all(check)
        };
        if hit && conditional.is_none() {
            conditional = Some(a);
        }
    }
    conditional.unwrap_or(default)
}
