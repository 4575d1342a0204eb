//! A minimal eBPF toolkit over `bpf(2)`: instruction encoding with labels,
//! hash maps, program loading (with the verifier's log on refusal), cgroup
//! links and program enumeration. Just what [`crate::local_path`] needs; no
//! ELF, no BTF.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};

// bpf(2) commands.
const MAP_CREATE: u32 = 0;
const MAP_UPDATE_ELEM: u32 = 2;
const PROG_LOAD: u32 = 5;
const PROG_GET_NEXT_ID: u32 = 11;
const PROG_GET_FD_BY_ID: u32 = 13;
const OBJ_GET_INFO_BY_FD: u32 = 15;
const LINK_CREATE: u32 = 28;

/// `BPF_MAP_TYPE_HASH`.
pub const MAP_HASH: u32 = 1;
/// `BPF_MAP_TYPE_LRU_HASH`.
pub const MAP_LRU_HASH: u32 = 9;
/// `BPF_PROG_TYPE_CGROUP_SOCK_ADDR`.
pub const PROG_CGROUP_SOCK_ADDR: u32 = 18;
/// `BPF_CGROUP_INET4_CONNECT`.
pub const ATTACH_INET4_CONNECT: u32 = 10;
/// `BPF_CGROUP_INET4_GETPEERNAME`.
pub const ATTACH_INET4_GETPEERNAME: u32 = 29;

/// Helper function numbers (`enum bpf_func_id`).
pub mod helper {
    /// `bpf_map_lookup_elem`.
    pub const MAP_LOOKUP: i32 = 1;
    /// `bpf_map_update_elem`.
    pub const MAP_UPDATE: i32 = 2;
    /// `bpf_get_socket_cookie`.
    pub const SOCKET_COOKIE: i32 = 46;
    /// `bpf_get_netns_cookie`.
    pub const NETNS_COOKIE: i32 = 122;
}

fn bpf_err(op: impl Into<String>, source: io::Error) -> Error {
    Error::Bpf {
        op: op.into(),
        detail: String::new(),
        source,
    }
}

/// A zeroed `union bpf_attr`, written by byte offset.
struct Attr([u64; 16]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 16])
    }
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: a [u64; 16] is 128 initialised bytes with no padding.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), 128) }
    }
    fn u32(mut self, off: usize, v: u32) -> Attr {
        self.bytes()[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(mut self, off: usize, v: u64) -> Attr {
        self.bytes()[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn name(mut self, off: usize, name: &str) -> Attr {
        let n = name.len().min(15);
        self.bytes()[off..off + n].copy_from_slice(&name.as_bytes()[..n]);
        self
    }
    fn get_u32(&mut self, off: usize) -> u32 {
        let b = &self.bytes()[off..off + 4];
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
    }
    fn call(&mut self, cmd: u32) -> io::Result<i64> {
        // SAFETY: the attribute is 128 valid bytes, larger than every
        // command's part that is used here; pointers inside it point to live
        // buffers of the sizes given next to them.
        let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, self.0.as_mut_ptr(), 128u32) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
    fn call_fd(&mut self, cmd: u32) -> io::Result<OwnedFd> {
        let fd = self.call(cmd)?;
        // SAFETY: these commands return a new descriptor that nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }
}

/// A BPF hash map.
pub struct Map {
    fd: OwnedFd,
    name: String,
    key_size: usize,
    value_size: usize,
}

impl Map {
    /// Creates a map of `kind` ([`MAP_HASH`], [`MAP_LRU_HASH`]).
    pub fn create(
        kind: u32,
        name: &str,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Result<Map> {
        let fd = Attr::new()
            .u32(0, kind)
            .u32(4, key_size)
            .u32(8, value_size)
            .u32(12, max_entries)
            .name(28, name)
            .call_fd(MAP_CREATE)
            .map_err(|e| bpf_err(format!("create map {name}"), e))?;
        Ok(Map {
            fd,
            name: name.to_string(),
            key_size: key_size as usize,
            value_size: value_size as usize,
        })
    }

    /// Inserts or replaces `key`.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let op = || format!("update map {}", self.name);
        if key.len() != self.key_size || value.len() != self.value_size {
            return Err(bpf_err(op(), io::Error::from_raw_os_error(libc::EINVAL)));
        }
        Attr::new()
            .u32(0, self.fd.as_raw_fd() as u32)
            .u64(8, key.as_ptr() as u64)
            .u64(16, value.as_ptr() as u64)
            .call(MAP_UPDATE_ELEM)
            .map(|_| ())
            .map_err(|e| bpf_err(op(), e))
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Registers, as the kernel numbers them.
#[derive(Clone, Copy)]
#[allow(missing_docs)]
pub enum Reg {
    R0 = 0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    Fp,
}

/// Memory access sizes.
#[derive(Clone, Copy)]
pub enum Size {
    /// 32 bits.
    W = 0x00,
    /// 64 bits.
    Dw = 0x18,
}

/// Conditions of a conditional jump against an immediate or a register.
#[derive(Clone, Copy)]
pub enum Cond {
    /// `==`.
    Eq = 0x10,
    /// `!=`.
    Ne = 0x50,
}

/// A program under construction: instructions plus label fix-ups.
#[derive(Default)]
pub struct Asm {
    insns: Vec<[u8; 8]>,
    labels: HashMap<&'static str, usize>,
    fixups: Vec<(usize, &'static str)>,
}

impl Asm {
    fn raw(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> &mut Asm {
        let mut b = [0u8; 8];
        b[0] = code;
        b[1] = if cfg!(target_endian = "little") {
            (dst as u8) | ((src as u8) << 4)
        } else {
            ((dst as u8) << 4) | (src as u8)
        };
        b[2..4].copy_from_slice(&off.to_ne_bytes());
        b[4..8].copy_from_slice(&imm.to_ne_bytes());
        self.insns.push(b);
        self
    }
    /// `dst = src` (64 bits).
    pub fn mov(&mut self, dst: Reg, src: Reg) -> &mut Asm {
        self.raw(0xbf, dst, src, 0, 0)
    }
    /// `dst = imm` (64 bits, sign-extended).
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.raw(0xb7, dst, Reg::R0, 0, imm)
    }
    /// `dst += imm` (64 bits).
    pub fn add_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.raw(0x07, dst, Reg::R0, 0, imm)
    }
    /// `dst &= imm` (64 bits).
    pub fn and_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.raw(0x57, dst, Reg::R0, 0, imm)
    }
    /// `dst >>= imm` (64 bits, logical).
    pub fn rsh_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.raw(0x77, dst, Reg::R0, 0, imm)
    }
    /// `dst = *(size *)(src + off)`.
    pub fn load(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Asm {
        self.raw(0x61 | size as u8, dst, src, off, 0)
    }
    /// `*(size *)(dst + off) = src`.
    pub fn store(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Asm {
        self.raw(0x63 | size as u8, dst, src, off, 0)
    }
    /// `*(size *)(dst + off) = imm`.
    pub fn store_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) -> &mut Asm {
        self.raw(0x62 | size as u8, dst, Reg::R0, off, imm)
    }
    /// `dst = imm64` (two instruction slots).
    pub fn load_imm64(&mut self, dst: Reg, imm: u64) -> &mut Asm {
        self.raw(0x18, dst, Reg::R0, 0, imm as u32 as i32);
        self.raw(0, Reg::R0, Reg::R0, 0, (imm >> 32) as u32 as i32)
    }
    /// `dst = map` (the map's descriptor, resolved by the kernel at load).
    pub fn load_map(&mut self, dst: Reg, map: &Map) -> &mut Asm {
        // src = BPF_PSEUDO_MAP_FD.
        self.raw(0x18, dst, Reg::R1, 0, map.raw());
        self.raw(0, Reg::R0, Reg::R0, 0, 0)
    }
    /// Calls helper `id` (arguments in r1-r5, result in r0).
    pub fn call(&mut self, id: i32) -> &mut Asm {
        self.raw(0x85, Reg::R0, Reg::R0, 0, id)
    }
    /// `if dst <cond> imm goto label`.
    pub fn jump_imm(&mut self, cond: Cond, dst: Reg, imm: i32, label: &'static str) -> &mut Asm {
        self.fixups.push((self.insns.len(), label));
        self.raw(0x05 | cond as u8, dst, Reg::R0, 0, imm)
    }
    /// `if dst <cond> src goto label`.
    pub fn jump_reg(&mut self, cond: Cond, dst: Reg, src: Reg, label: &'static str) -> &mut Asm {
        self.fixups.push((self.insns.len(), label));
        self.raw(0x0d | cond as u8, dst, src, 0, 0)
    }
    /// Places `label` at the next instruction.
    pub fn label(&mut self, label: &'static str) -> &mut Asm {
        self.labels.insert(label, self.insns.len());
        self
    }
    /// `return imm`.
    pub fn exit_with(&mut self, imm: i32) -> &mut Asm {
        self.mov_imm(Reg::R0, imm);
        self.raw(0x95, Reg::R0, Reg::R0, 0, 0)
    }

    /// The encoded program, jumps resolved; the error names an undefined (or
    /// too distant) label.
    fn finish(&self) -> std::result::Result<Vec<[u8; 8]>, &'static str> {
        let mut out = self.insns.clone();
        for &(at, label) in &self.fixups {
            let to = *self.labels.get(label).ok_or(label)?;
            let off = to as i64 - at as i64 - 1;
            let off = i16::try_from(off).map_err(|_| label)?;
            out[at][2..4].copy_from_slice(&off.to_ne_bytes());
        }
        Ok(out)
    }
}

/// A loaded program.
pub struct Prog {
    fd: OwnedFd,
}

impl Prog {
    /// Loads `asm` as a `CGROUP_SOCK_ADDR` program for `attach_type`, named
    /// `name` (at most 15 bytes). A verifier refusal carries the end of the
    /// verifier's log.
    pub fn load_sock_addr(name: &str, attach_type: u32, asm: &Asm) -> Result<Prog> {
        let insns = asm.finish().map_err(|label| Error::Bpf {
            op: format!("assemble program {name}"),
            detail: format!("; undefined or distant label {label}"),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        })?;
        let license = c"GPL";
        let load = |log: &mut [u8]| {
            Attr::new()
                .u32(0, PROG_CGROUP_SOCK_ADDR)
                .u32(4, insns.len() as u32)
                .u64(8, insns.as_ptr() as u64)
                .u64(16, license.as_ptr() as u64)
                .u32(24, u32::from(!log.is_empty()))
                .u32(28, log.len() as u32)
                .u64(32, log.as_mut_ptr() as u64)
                .name(48, name)
                .u32(68, attach_type)
                .call_fd(PROG_LOAD)
        };
        let source = match load(&mut []) {
            Ok(fd) => return Ok(Prog { fd }),
            Err(e) => e,
        };
        // Again with the verifier's log, only to say why.
        let mut log = vec![0u8; 64 * 1024];
        if let Ok(fd) = load(&mut log) {
            return Ok(Prog { fd });
        }
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let text = String::from_utf8_lossy(&log[..end]);
        let mut tail: Vec<&str> = text.lines().rev().take(3).collect();
        tail.reverse();
        let detail = if tail.is_empty() {
            String::new()
        } else {
            format!("; verifier says: {}", tail.join(" | "))
        };
        Err(Error::Bpf {
            op: format!("load program {name}"),
            detail,
            source,
        })
    }

    /// The kernel's id of this program.
    pub fn id(&self) -> Result<u32> {
        prog_info(&self.fd).map(|(id, _)| id)
    }

    /// Attaches the program to the cgroup `cgroup` (an open directory) with a
    /// BPF link: the attachment lasts as long as the returned descriptor, so
    /// it goes with the process that holds it, even on SIGKILL.
    pub fn attach_cgroup(&self, cgroup: &OwnedFd, attach_type: u32) -> io::Result<OwnedFd> {
        Attr::new()
            .u32(0, self.fd.as_raw_fd() as u32)
            .u32(4, cgroup.as_raw_fd() as u32)
            .u32(8, attach_type)
            .call_fd(LINK_CREATE)
    }
}

/// `(id, name)` of the program behind `fd`.
fn prog_info(fd: &OwnedFd) -> Result<(u32, String)> {
    let mut info = [0u8; 80];
    Attr::new()
        .u32(0, fd.as_raw_fd() as u32)
        .u32(4, info.len() as u32)
        .u64(8, info.as_mut_ptr() as u64)
        .call(OBJ_GET_INFO_BY_FD)
        .map_err(|e| bpf_err("read program info", e))?;
    let id = u32::from_ne_bytes([info[4], info[5], info[6], info[7]]);
    let name = &info[64..80];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok((id, String::from_utf8_lossy(&name[..end]).into_owned()))
}

/// Every BPF program loaded in the kernel, as `(id, name)`; programs freed
/// while the list is read are skipped.
pub fn loaded_programs() -> Result<Vec<(u32, String)>> {
    let mut out = Vec::new();
    let mut id = 0u32;
    loop {
        let mut attr = Attr::new().u32(0, id);
        match attr.call(PROG_GET_NEXT_ID) {
            Ok(_) => id = attr.get_u32(4),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            Err(e) => return Err(bpf_err("list programs", e)),
        }
        match Attr::new().u32(0, id).call_fd(PROG_GET_FD_BY_ID) {
            Ok(fd) => out.push(prog_info(&fd)?),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(bpf_err(format!("open program {id}"), e)),
        }
    }
}
