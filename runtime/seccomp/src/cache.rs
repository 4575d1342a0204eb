//! On-disk cache of compiled filters.
//!
//! Entry name: 128-bit key (two keyed SipHash-2-4 runs with distinct prefixes) over a canonical
//! encoding of the profile, the crate version, a format version, the kernel release and the
//! machine. Entry content:
//!
//! ```text
//! magic "BXSECC01" | key (16) | flags u32 | count u32 | count * sock_filter (8) | checksum u64
//! ```
//!
//! Written to a temporary file and renamed into place; an entry that is short, has the wrong
//! key or checksum, or a bad program is ignored and rewritten. A hit costs one open, one read
//! and one close. The cache directory must only be writable by root (the runtime's state dir).

use std::hash::Hasher;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;

use crate::{compile, Filter, SeccompError, MAX_INSNS};

const MAGIC: &[u8; 8] = b"BXSECC01";
const HEADER: usize = 8 + 16 + 4 + 4;
const MAX_FILE: usize = HEADER + MAX_INSNS * 8 + 8;

/// Canonical byte encoding of everything in the profile that affects the program.
fn encode(p: &LinuxSeccomp, out: &mut Vec<u8>) {
    fn u(out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn opt(out: &mut Vec<u8>, v: Option<u64>) {
        match v {
            Some(v) => {
                out.push(1);
                u(out, v)
            }
            None => out.push(0),
        }
    }
    fn s(out: &mut Vec<u8>, v: &str) {
        u(out, v.len() as u64);
        out.extend_from_slice(v.as_bytes());
    }
    u(out, p.default_action() as u64);
    opt(out, p.default_errno_ret().map(u64::from));
    let arches = p.architectures().as_deref().unwrap_or(&[]);
    u(out, arches.len() as u64);
    for a in arches {
        u(out, *a as u32 as u64);
    }
    let flags = p.flags().as_deref().unwrap_or(&[]);
    u(out, flags.len() as u64);
    for f in flags {
        u(out, *f as u64);
    }
    let calls = p.syscalls().as_deref().unwrap_or(&[]);
    u(out, calls.len() as u64);
    for c in calls {
        u(out, c.names().len() as u64);
        for n in c.names() {
            s(out, n);
        }
        u(out, c.action() as u64);
        opt(out, c.errno_ret().map(u64::from));
        let args = c.args().as_deref().unwrap_or(&[]);
        u(out, args.len() as u64);
        for a in args {
            u(out, a.index() as u64);
            u(out, a.value());
            opt(out, a.value_two());
            u(out, a.op() as u64);
        }
    }
}

fn environment() -> &'static [u8] {
    static ENV: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let mut v = Vec::new();
        v.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
        v.push(0);
        // SAFETY: uname fills a zeroed utsname; the fields are NUL-terminated.
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to a utsname.
        if unsafe { libc::uname(&mut uts) } == 0 {
            for f in [&uts.release[..], &uts.machine[..]] {
                v.extend(f.iter().take_while(|&&c| c != 0).map(|&c| c as u8));
                v.push(0);
            }
        }
        v
    })
}

fn sip(prefix: u8, parts: &[&[u8]]) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(0x626f_7872_756e_7365 ^ prefix as u64, 0x6363_6f6d_7063_6163);
    for p in parts {
        h.write(p);
    }
    h.finish()
}

/// The cache key of `p` in this environment.
fn key(p: &LinuxSeccomp) -> [u8; 16] {
    let mut buf = Vec::with_capacity(8192);
    encode(p, &mut buf);
    let env = environment();
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&sip(1, &[env, &buf]).to_le_bytes());
    k[8..].copy_from_slice(&sip(2, &[env, &buf]).to_le_bytes());
    k
}

fn hex(k: &[u8; 16]) -> String {
    let mut s = String::with_capacity(32 + 4);
    for b in k {
        s.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
        s.push(char::from_digit((b & 15) as u32, 16).unwrap_or('0'));
    }
    s.push_str(".bpf");
    s
}

fn serialize(k: &[u8; 16], f: &Filter) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + f.insns.len() * 8 + 8);
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(k);
    v.extend_from_slice(&f.flags.to_le_bytes());
    v.extend_from_slice(&(f.insns.len() as u32).to_le_bytes());
    for i in &f.insns {
        v.extend_from_slice(&i.code.to_le_bytes());
        v.push(i.jt);
        v.push(i.jf);
        v.extend_from_slice(&i.k.to_le_bytes());
    }
    let sum = sip(3, &[&v]);
    v.extend_from_slice(&sum.to_le_bytes());
    v
}

fn parse(k: &[u8; 16], b: &[u8]) -> Option<Filter> {
    if b.len() < HEADER + 8 || &b[..8] != MAGIC || &b[8..24] != k {
        return None;
    }
    let word = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let flags = word(24);
    let n = word(28) as usize;
    if n == 0 || n > MAX_INSNS || b.len() != HEADER + n * 8 + 8 {
        return None;
    }
    let body = &b[..HEADER + n * 8];
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&b[HEADER + n * 8..]);
    if sip(3, &[body]) != u64::from_le_bytes(sum) {
        return None;
    }
    let insns = body[HEADER..]
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Some(Filter { insns, flags })
}

fn read_entry(path: &Path, k: &[u8; 16]) -> Option<Filter> {
    let mut f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path).ok()?;
    let mut buf = vec![0u8; MAX_FILE + 1];
    let mut len = 0;
    // A regular file read returns everything up to EOF at once: normally one read() call.
    loop {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if len == buf.len() {
                    return None;
                }
                if len < buf.len() && n < buf.len() - (len - n) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse(k, &buf[..len])
}

fn write_entry(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(data)?;
        std::fs::rename(&tmp, dir.join(name))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Like [`compile`], with an on-disk cache under `cache_dir` (the runtime passes
/// `<root>/seccomp-cache`), keyed by the profile, crate version, kernel release and machine.
/// Writes are atomic (temporary file + rename); a corrupt or short entry is ignored and
/// rewritten; failing to write the cache is not an error.
pub fn compile_cached(profile: &LinuxSeccomp, cache_dir: &Path) -> Result<Filter, SeccompError> {
    let k = key(profile);
    let name = hex(&k);
    let path = cache_dir.join(&name);
    if let Some(f) = read_entry(&path, &k) {
        return Ok(f);
    }
    let f = compile(profile)?;
    let _ = write_entry(cache_dir, &name, &serialize(&k, &f));
    Ok(f)
}
