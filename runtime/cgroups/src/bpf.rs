//! The cgroup2 device controller: a hand-assembled
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program loaded and attached with raw
//! bpf(2) calls.
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
//! u32 minor; }` where `access_type = access << 16 | type`, and returns 1 to
//! allow, 0 to deny. Rules are evaluated last-to-first and the first match
//! decides, which equals replaying them in order as v1 does starting from
//! "deny all"; no match denies.
//!
//! Matching: an allow rule matches when the requested access is a subset of
//! the rule's access; a deny rule matches when the requested access
//! overlaps it (denying `w` denies an `rw` open, as on v1).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::error::{CgroupError, Result};
use crate::resources::devices::{DevKind, DeviceRule, ACC_ALL};

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// `dst_reg` in the low nibble, `src_reg` in the high nibble.
    pub regs: u8,
    /// Jump offset (instructions after the next one) or memory offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

// Opcode pieces (linux/bpf_common.h, linux/bpf.h).
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

/// `BPF_DEVCG_DEV_BLOCK` / `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }

    /// `dst = *(u32 *)(src + off)`
    pub const fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }
    /// `wdst &= imm`
    pub const fn and32_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm)
    }
    /// `wdst >>= imm`
    pub const fn rsh32_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm)
    }
    /// `wdst = wsrc`
    pub const fn mov32_reg(dst: u8, src: u8) -> Insn {
        Insn::new(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
    }
    /// `dst = imm`
    pub const fn mov64_imm(dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }
    /// `if dst != imm goto +off`
    pub const fn jne_imm(dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
    }
    /// `if dst != src goto +off`
    pub const fn jne_reg(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JNE | BPF_X, dst, src, off, 0)
    }
    /// `if dst == imm goto +off`
    pub const fn jeq_imm(dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, off, imm)
    }
    /// `exit`
    pub const fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }

    /// The 8-byte little-endian encoding the kernel reads.
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

/// Conditional jumps of a rule block, before their offsets are known.
enum Check {
    Type(i32),
    AccessSubset(i32),
    AccessOverlap(i32),
    Major(i32),
    Minor(i32),
}

/// The instructions for one rule: each check jumps to the end of the block
/// (the next rule) on mismatch; falling through returns the verdict.
/// Returns the block and whether it matches unconditionally.
fn rule_block(r: &DeviceRule) -> (Vec<Insn>, bool) {
    let mut checks = Vec::new();
    match r.kind {
        DevKind::All => {}
        DevKind::Block => checks.push(Check::Type(DEV_BLOCK)),
        DevKind::Char => checks.push(Check::Type(DEV_CHAR)),
    }
    if r.access != ACC_ALL {
        checks.push(if r.allow {
            Check::AccessSubset(i32::from(r.access))
        } else {
            Check::AccessOverlap(i32::from(r.access))
        });
    }
    if let Some(m) = r.major {
        checks.push(Check::Major(m as i32));
    }
    if let Some(m) = r.minor {
        checks.push(Check::Minor(m as i32));
    }
    let unconditional = checks.is_empty();
    // Lay out without offsets, then patch: every jump targets `len`.
    let mut code: Vec<(Insn, bool)> = Vec::new();
    for c in checks {
        match c {
            Check::Type(t) => code.push((Insn::jne_imm(R2, t, 0), true)),
            Check::AccessSubset(a) => {
                code.push((Insn::mov32_reg(R1, R3), false));
                code.push((Insn::and32_imm(R1, a), false));
                code.push((Insn::jne_reg(R1, R3, 0), true));
            }
            Check::AccessOverlap(a) => {
                code.push((Insn::mov32_reg(R1, R3), false));
                code.push((Insn::and32_imm(R1, a), false));
                code.push((Insn::jeq_imm(R1, 0, 0), true));
            }
            Check::Major(m) => code.push((Insn::jne_imm(R4, m, 0), true)),
            Check::Minor(m) => code.push((Insn::jne_imm(R5, m, 0), true)),
        }
    }
    code.push((Insn::mov64_imm(R0, i32::from(r.allow)), false));
    code.push((Insn::exit(), false));
    let len = code.len();
    let block = code
        .into_iter()
        .enumerate()
        .map(|(i, (mut insn, is_jump))| {
            if is_jump {
                insn.off = (len - (i + 1)) as i16;
            }
            insn
        })
        .collect();
    (block, unconditional)
}

/// Assemble the device program for `rules` (in config order).
pub fn device_program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        Insn::ldx_w(R2, R1, 0),      // r2 = access_type
        Insn::and32_imm(R2, 0xffff), // r2 = device type
        Insn::ldx_w(R3, R1, 0),      // r3 = access_type
        Insn::rsh32_imm(R3, 16),     // r3 = requested access bits
        Insn::ldx_w(R4, R1, 4),      // r4 = major
        Insn::ldx_w(R5, R1, 8),      // r5 = minor
    ];
    for r in rules.iter().rev() {
        let (block, unconditional) = rule_block(r);
        prog.extend(block);
        if unconditional {
            // Everything after is unreachable (and the verifier rejects
            // unreachable code).
            return prog;
        }
    }
    prog.push(Insn::mov64_imm(R0, 0));
    prog.push(Insn::exit());
    prog
}

// bpf(2) commands and constants (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Raw bpf(2).
///
/// # Safety
/// `attr` must be the attribute struct the kernel expects for `cmd`, and
/// every pointer stored in it must be valid for the duration of the call.
unsafe fn sys_bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: the caller guarantees `attr` matches `cmd`; the size passed is
    // exactly the size of the struct, so the kernel reads nothing beyond it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: libc::c_long) -> OwnedFd {
    // SAFETY: bpf(2) returned a new file descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

/// Load a device program; on failure the verifier log is in the error.
pub fn load(insns: &[Insn]) -> Result<OwnedFd> {
    const LICENSE: &[u8] = b"Apache\0";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..6].copy_from_slice(b"boxrun");
    // SAFETY: attr is a BPF_PROG_LOAD attribute; insns and LICENSE outlive the call.
    match unsafe { sys_bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(fd) => Ok(fd_from(fd)),
        Err(first) => {
            // Retry with the verifier log to explain the failure.
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            // SAFETY: as above; `log` is writable for log_size bytes during the call.
            let second = unsafe { sys_bpf(BPF_PROG_LOAD, &mut attr) };
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
            match second {
                Ok(fd) => Ok(fd_from(fd)),
                Err(_) => Err(CgroupError::Bpf {
                    op: "BPF_PROG_LOAD",
                    source: first,
                    log: if text.is_empty() {
                        String::new()
                    } else {
                        format!("\nverifier log:\n{text}")
                    },
                }),
            }
        }
    }
}

fn bpf_err(op: &'static str) -> impl FnOnce(io::Error) -> CgroupError {
    move |source| CgroupError::Bpf {
        op,
        source,
        log: String::new(),
    }
}

/// Ids of the device programs attached to the cgroup `dir_fd`.
fn query(dir_fd: i32) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: dir_fd as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    // SAFETY: attr is a BPF_PROG_QUERY attribute; `ids` holds prog_cnt slots.
    unsafe { sys_bpf(BPF_PROG_QUERY, &mut attr) }.map_err(bpf_err("BPF_PROG_QUERY"))?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Attach the program for `rules` to the cgroup2 directory `dir`, then
/// detach the device programs that were attached before (so `update`
/// replaces rather than stacks; during the switch both apply, which only
/// ever denies more).
pub fn apply_device_rules(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let prog = load(&device_program(rules))?;
    let d = File::open(dir).map_err(|source| CgroupError::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let dir_fd = d.as_raw_fd();
    let old = query(dir_fd)?;
    let mut attr = AttachAttr {
        target_fd: dir_fd as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    // SAFETY: attr is a BPF_PROG_ATTACH attribute with valid descriptors.
    unsafe { sys_bpf(BPF_PROG_ATTACH, &mut attr) }.map_err(bpf_err("BPF_PROG_ATTACH"))?;
    for id in old {
        let mut g = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        // SAFETY: attr is a BPF_PROG_GET_FD_BY_ID attribute.
        let old_fd = match unsafe { sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut g) } {
            Ok(fd) => fd_from(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(bpf_err("BPF_PROG_GET_FD_BY_ID")(e)),
        };
        let mut det = AttachAttr {
            target_fd: dir_fd as u32,
            attach_bpf_fd: old_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        // SAFETY: attr is a BPF_PROG_DETACH attribute with valid descriptors.
        match unsafe { sys_bpf(BPF_PROG_DETACH, &mut det) } {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(bpf_err("BPF_PROG_DETACH")(e)),
        }
    }
    Ok(())
}

/// Ids of the device programs attached to the cgroup2 directory `dir`.
pub fn attached_programs(dir: &Path) -> Result<Vec<u32>> {
    let d = File::open(dir).map_err(|source| CgroupError::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    query(d.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::devices::{ACC_MKNOD, ACC_READ, ACC_WRITE};

    fn rule(
        allow: bool,
        kind: DevKind,
        major: Option<u32>,
        minor: Option<u32>,
        access: u8,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    #[test]
    fn encoding_of_single_instructions() {
        // r2 = *(u32 *)(r1 + 0)
        assert_eq!(
            Insn::ldx_w(2, 1, 0).to_bytes(),
            [0x61, 0x12, 0, 0, 0, 0, 0, 0]
        );
        // r4 = *(u32 *)(r1 + 4)
        assert_eq!(
            Insn::ldx_w(4, 1, 4).to_bytes(),
            [0x61, 0x14, 4, 0, 0, 0, 0, 0]
        );
        // w2 &= 0xffff
        assert_eq!(
            Insn::and32_imm(2, 0xffff).to_bytes(),
            [0x54, 0x02, 0, 0, 0xff, 0xff, 0, 0]
        );
        // w3 >>= 16
        assert_eq!(
            Insn::rsh32_imm(3, 16).to_bytes(),
            [0x74, 0x03, 0, 0, 16, 0, 0, 0]
        );
        // w1 = w3
        assert_eq!(
            Insn::mov32_reg(1, 3).to_bytes(),
            [0xbc, 0x31, 0, 0, 0, 0, 0, 0]
        );
        // r0 = 1
        assert_eq!(
            Insn::mov64_imm(0, 1).to_bytes(),
            [0xb7, 0x00, 0, 0, 1, 0, 0, 0]
        );
        // if r2 != 2 goto +4
        assert_eq!(
            Insn::jne_imm(2, 2, 4).to_bytes(),
            [0x55, 0x02, 4, 0, 2, 0, 0, 0]
        );
        // if r1 != r3 goto +1
        assert_eq!(
            Insn::jne_reg(1, 3, 1).to_bytes(),
            [0x5d, 0x31, 1, 0, 0, 0, 0, 0]
        );
        // if r1 == 0 goto +3
        assert_eq!(
            Insn::jeq_imm(1, 0, 3).to_bytes(),
            [0x15, 0x01, 3, 0, 0, 0, 0, 0]
        );
        assert_eq!(Insn::exit().to_bytes(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn deny_all_then_allow_null() {
        let rules = [
            rule(false, DevKind::All, None, None, ACC_ALL),
            rule(true, DevKind::Char, Some(1), Some(3), ACC_ALL),
        ];
        let p = device_program(&rules);
        let expect = vec![
            Insn::ldx_w(2, 1, 0),
            Insn::and32_imm(2, 0xffff),
            Insn::ldx_w(3, 1, 0),
            Insn::rsh32_imm(3, 16),
            Insn::ldx_w(4, 1, 4),
            Insn::ldx_w(5, 1, 8),
            // allow c 1:3 rwm
            Insn::jne_imm(2, 2, 4),
            Insn::jne_imm(4, 1, 3),
            Insn::jne_imm(5, 3, 2),
            Insn::mov64_imm(0, 1),
            Insn::exit(),
            // deny a: unconditional, so no default tail follows
            Insn::mov64_imm(0, 0),
            Insn::exit(),
        ];
        assert_eq!(p, expect);
    }

    #[test]
    fn access_checks_and_default_tail() {
        let rules = [
            rule(true, DevKind::Block, None, None, ACC_MKNOD),
            rule(false, DevKind::Char, Some(5), None, ACC_WRITE),
        ];
        let p = device_program(&rules);
        let body = &p[6..];
        let expect = vec![
            // deny c 5:* w (overlap check)
            Insn::jne_imm(2, 2, 6),
            Insn::mov32_reg(1, 3),
            Insn::and32_imm(1, i32::from(ACC_WRITE)),
            Insn::jeq_imm(1, 0, 3),
            Insn::jne_imm(4, 5, 2),
            Insn::mov64_imm(0, 0),
            Insn::exit(),
            // allow b *:* m (subset check)
            Insn::jne_imm(2, 1, 5),
            Insn::mov32_reg(1, 3),
            Insn::and32_imm(1, i32::from(ACC_MKNOD)),
            Insn::jne_reg(1, 3, 2),
            Insn::mov64_imm(0, 1),
            Insn::exit(),
            // nothing matched: deny
            Insn::mov64_imm(0, 0),
            Insn::exit(),
        ];
        assert_eq!(body, &expect[..]);
        // every jump stays inside the program
        for (i, insn) in p.iter().enumerate() {
            if insn.code & 0x07 == BPF_JMP && insn.code != 0x95 {
                let target = i as i64 + 1 + i64::from(insn.off);
                assert!(
                    target > i as i64 && (target as usize) < p.len(),
                    "insn {i} jumps to {target}"
                );
            }
        }
        let _ = ACC_READ;
    }

    #[test]
    fn empty_rules_deny_everything() {
        let p = device_program(&[]);
        assert_eq!(p.len(), 8);
        assert_eq!(p[6], Insn::mov64_imm(0, 0));
        assert_eq!(p[7], Insn::exit());
    }

    #[test]
    fn kernel_verifier_accepts_programs() {
        // Loading needs CAP_BPF/CAP_SYS_ADMIN; the suite runs as root.
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let rules = [
            rule(false, DevKind::All, None, None, ACC_ALL),
            rule(true, DevKind::Char, Some(1), Some(3), ACC_ALL),
            rule(true, DevKind::Block, None, None, ACC_MKNOD),
            rule(false, DevKind::Char, Some(5), None, ACC_WRITE | ACC_READ),
        ];
        load(&device_program(&rules)).expect("verifier accepts the program");
        load(&device_program(&[])).expect("verifier accepts the empty program");
    }
}
