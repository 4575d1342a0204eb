//! Classic BPF code generation for a lowered profile.
//!
//! Layout: load `arch`; dispatch to the x86_64 section (which splits x86_64 from x32 on
//! `__X32_SYSCALL_BIT`) or the i386 section; anything else gets the bad-arch action. Each
//! section loads `nr` and walks a balanced binary tree of `jge` over the *intervals* of syscall
//! numbers that share one outcome (runs of plain ALLOWs collapse into one interval), so Docker's
//! ~350-syscall profile needs about seven comparisons per syscall. Leaves return directly or jump
//! to a syscall's argument checks. 64-bit argument comparisons check the high word, then the low.
//!
//! Code is emitted backwards (last instruction first) so every jump target already has a known
//! position; a conditional jump whose target is more than 255 instructions away goes through
//! an inserted `ja` trampoline.

use std::collections::HashMap;

use crate::profile::{Cond, Lowered, Op, Plan, Rule, A, BAD_ARCH, ENOSYS_RET};
use crate::syscalls::SYSCALLS;

const LD_W_ABS: u16 = 0x20;
const ALU_AND_K: u16 = 0x54;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// `AUDIT_ARCH_X86_64`.
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
pub(crate) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `__X32_SYSCALL_BIT`.
pub(crate) const X32_BIT: u32 = 0x4000_0000;

/// The kernel's BPF_MAXINSNS.
pub const MAX_INSNS: usize = 4096;

/// Position of an instruction counted from the end of the program (0 = last).
type Label = usize;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Outcome {
    Ret(u32),
    /// Index into [`Lowered::plans`].
    Plan(usize),
}

struct Gen<'a> {
    rev: Vec<libc::sock_filter>,
    rets: HashMap<u32, Label>,
    blocks: HashMap<(u8, usize), Label>,
    low: &'a Lowered,
}

impl Gen<'_> {
    fn push(&mut self, code: u16, jt: u8, jf: u8, k: u32) -> Label {
        self.rev.push(libc::sock_filter { code, jt, jf, k });
        self.rev.len() - 1
    }

    fn stmt(&mut self, code: u16, k: u32) -> Label {
        self.push(code, 0, 0, k)
    }

    /// Distance from the next instruction to `target`.
    fn dist(&self, target: Label) -> usize {
        self.rev.len() - target - 1
    }

    /// A label reachable with a jump offset of at most `max`, adding a trampoline if needed.
    fn reach(&mut self, target: Label, max: usize) -> Label {
        if self.dist(target) <= max {
            target
        } else {
            let d = self.dist(target) as u32;
            self.push(JA, 0, 0, d)
        }
    }

    fn jump(&mut self, code: u16, k: u32, t: Label, f: Label) -> Label {
        // Leave room for f's trampoline, which would sit between us and t's target.
        let t = self.reach(t, 254);
        let f = self.reach(f, 255);
        let (jt, jf) = (self.dist(t) as u8, self.dist(f) as u8);
        self.push(code, jt, jf, k)
    }

    fn ret(&mut self, k: u32) -> Label {
        if let Some(&l) = self.rets.get(&k) {
            return l;
        }
        let l = self.stmt(RET_K, k);
        self.rets.insert(k, l);
        l
    }

    /// One condition: jump to `ok` if it holds, to `no` otherwise. Returns its first instruction.
    fn cond(&mut self, arch: A, c: &Cond, ok: Label, no: Label) -> Label {
        let lo_off = OFF_ARGS + 8 * c.index as u32;
        let hi_off = lo_off + 4;
        let (vlo, vhi) = (c.value as u32, (c.value >> 32) as u32);
        let (dlo, dhi) = (c.value_two as u32, (c.value_two >> 32) as u32);
        // Negated operators are their positive twin with the targets swapped.
        let (op, ok, no) = match c.op {
            Op::Ne => (Op::Eq, no, ok),
            Op::Lt => (Op::Ge, no, ok),
            Op::Le => (Op::Gt, no, ok),
            o => (o, ok, no),
        };
        // Low word: last in program order, so emitted first.
        match op {
            Op::Eq => self.jump(JEQ_K, vlo, ok, no),
            Op::Gt => self.jump(JGT_K, vlo, ok, no),
            Op::Ge => self.jump(JGE_K, vlo, ok, no),
            _ => {
                self.jump(JEQ_K, dlo, ok, no);
                self.stmt(ALU_AND_K, vlo)
            }
        };
        let lo = self.stmt(LD_W_ABS, lo_off);
        if arch.is_32() {
            // libseccomp compares 32-bit architectures' arguments on the low word only.
            return lo;
        }
        // High word: for > and >=, a larger high word decides at once, a smaller one fails.
        match op {
            Op::Eq => self.jump(JEQ_K, vhi, lo, no),
            Op::Gt | Op::Ge => {
                let eq = self.jump(JEQ_K, vhi, lo, no);
                self.jump(JGT_K, vhi, ok, eq)
            }
            _ => {
                self.jump(JEQ_K, dhi, lo, no);
                self.stmt(ALU_AND_K, vhi)
            }
        };
        self.stmt(LD_W_ABS, hi_off)
    }

    fn rule(&mut self, arch: A, r: &Rule, next: Label) -> Label {
        let mut ok = self.ret(r.action);
        for c in r.conds.iter().rev() {
            ok = self.cond(arch, c, ok, next);
        }
        ok
    }

    fn outcome(&mut self, arch: A, o: Outcome) -> Label {
        match o {
            Outcome::Ret(k) => self.ret(k),
            Outcome::Plan(p) => {
                if let Some(&l) = self.blocks.get(&(arch as u8, p)) {
                    return l;
                }
                let low = self.low;
                let mut next = self.ret(low.default);
                if let Plan::Rules(rules) = &low.plans[p].1 {
                    for r in rules.iter().rev() {
                        next = self.rule(arch, r, next);
                    }
                }
                self.blocks.insert((arch as u8, p), next);
                next
            }
        }
    }

    /// Binary search over `iv` (sorted, contiguous, covering every u32 from `iv[0].0`).
    fn tree(&mut self, arch: A, iv: &[(u32, Outcome)]) -> Label {
        if iv.len() == 1 {
            return self.outcome(arch, iv[0].1);
        }
        let mid = iv.len() / 2;
        let hi = self.tree(arch, &iv[mid..]);
        let lo = self.tree(arch, &iv[..mid]);
        self.jump(JGE_K, iv[mid].0, hi, lo)
    }

    /// The interval list for one architecture: `(first nr, outcome)`, sorted, merged, starting
    /// at 0; `top` (sorted by start) overrides everything from its first start on.
    fn intervals(&self, arch: A, top: &[(u32, Outcome)]) -> Vec<(u32, Outcome)> {
        let low = self.low;
        let limit = top.first().map_or(u32::MAX, |t| t.0);
        let mut pts: Vec<(u32, Outcome)> = Vec::with_capacity(low.plans.len());
        for (pi, (si, plan)) in low.plans.iter().enumerate() {
            match arch.nr(&SYSCALLS[*si]) {
                Some(nr) if nr < limit => pts.push((
                    nr,
                    match plan {
                        Plan::Always(a) => Outcome::Ret(*a),
                        Plan::Rules(_) => Outcome::Plan(pi),
                    },
                )),
                _ => {}
            }
        }
        pts.sort_unstable_by_key(|p| p.0);
        let def = Outcome::Ret(low.default);
        let mut iv: Vec<(u32, Outcome)> = Vec::with_capacity(pts.len() * 2 + 2);
        let add = |iv: &mut Vec<(u32, Outcome)>, start: u32, o: Outcome| match iv.last_mut() {
            Some(l) if l.1 == o => {}
            Some(l) if l.0 == start => l.1 = o,
            _ => iv.push((start, o)),
        };
        let mut next = 0u32;
        for (nr, o) in pts {
            if nr > next {
                add(&mut iv, next, def);
            }
            add(&mut iv, nr, o);
            next = nr + 1;
        }
        if next < limit {
            add(&mut iv, next, def);
        }
        for &(from, o) in top {
            add(&mut iv, from, o);
        }
        iv
    }

    /// The syscall dispatch of one architecture (the caller has loaded `nr`).
    fn section(&mut self, arch: A) -> Label {
        let low = self.low;
        let def = Outcome::Ret(low.default);
        let top: &[(u32, Outcome)] = match (arch, low.stub[arch as usize]) {
            // runc's stub: anything above the profile's newest syscall gets ENOSYS.
            (_, Some(last)) => &[(last + 1, Outcome::Ret(ENOSYS_RET))],
            // x86_64 numbers at or above the x32 bit (with the bit itself clear) belong to the x32
            // section in libseccomp, where no rule matches them, or else to the bad-arch action,
            // except -1 (a syscall skipped by a tracer), which libseccomp lets through.
            (A::X86_64, None) if low.enabled[A::X32 as usize] => &[],
            (A::X86_64, None) => &[(X32_BIT, Outcome::Ret(BAD_ARCH)), (u32::MAX, def)],
            (_, None) => &[],
        };
        let iv = self.intervals(arch, top);
        self.tree(arch, &iv)
    }

    /// Make `target` the instruction right after the next one pushed (for a fall-through).
    fn fall_to(&mut self, target: Label) {
        if target + 1 != self.rev.len() {
            let d = self.dist(target) as u32;
            self.push(JA, 0, 0, d);
        }
    }

    fn program(&mut self) {
        let low = self.low;
        let bad = self.ret(BAD_ARCH);
        let x86 = if low.enabled[A::X86 as usize] {
            let t = self.section(A::X86);
            self.fall_to(t);
            self.stmt(LD_W_ABS, OFF_NR)
        } else {
            bad
        };
        let x32 = if low.enabled[A::X32 as usize] {
            self.section(A::X32)
        } else {
            // Without x32, libseccomp still lets nr -1 reach the x86_64 rules (none match it).
            let def = self.ret(low.default);
            self.jump(JEQ_K, u32::MAX, def, bad)
        };
        let x64 = self.section(A::X86_64);
        self.jump(JSET_K, X32_BIT, x32, x64);
        let x64_entry = self.stmt(LD_W_ABS, OFF_NR);
        let other = if low.enabled[A::X86 as usize] {
            self.jump(JEQ_K, AUDIT_ARCH_I386, x86, bad)
        } else {
            bad
        };
        self.jump(JEQ_K, AUDIT_ARCH_X86_64, x64_entry, other);
        self.stmt(LD_W_ABS, OFF_ARCH);
    }
}

/// Generate the program for `low`.
pub(crate) fn generate(low: &Lowered) -> Vec<libc::sock_filter> {
    let mut g = Gen {
        rev: Vec::with_capacity(256),
        rets: HashMap::new(),
        blocks: HashMap::new(),
        low,
    };
    g.program();
    g.rev.reverse();
    g.rev
}
