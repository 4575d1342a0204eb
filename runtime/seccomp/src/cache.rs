//! On-disk cache of compiled filters.
//!
//! The key is a canonical byte encoding of the profile plus the crate version, a hash of the
//! crate's sources (from build.rs), the kernel release and the machine. The entry's name is a 64-bit hash of the key; the entry stores the
//! whole key and a hit requires it to match byte for byte, so a hash collision can only cost a
//! recompile, never load the wrong filter. Entry content (little endian):
//!
//! ```text
//! magic "BXSECC02" | key_len u32 | flags u32 | count u32 | key | count * sock_filter (8) | checksum u64
//! ```
//!
//! Written to a temporary file and renamed into place; an entry that is short, has another key,
//! a bad checksum or a bad program is ignored and rewritten. A hit costs one open, one or two
//! reads and one close. The cache directory must only be writable by root (the runtime's state dir).

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;

use crate::{compile, Filter, SeccompError, MAX_INSNS};

const MAGIC: &[u8; 8] = b"BXSECC02";
const HEADER: usize = 8 + 4 + 4 + 4;

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
        v.extend_from_slice(env!("BOXRUN_SECCOMP_SRC_HASH").as_bytes());
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

/// A fast 64-bit hash (names entries and checks them for corruption; not a security boundary:
/// hits compare the full key).
fn fast_hash(b: &[u8]) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3 ^ b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
    let mut w = [0u8; 8];
    w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 31)
}

/// The cache key of `p` in this environment.
fn key(p: &LinuxSeccomp) -> Vec<u8> {
    let env = environment();
    let mut buf = Vec::with_capacity(8192);
    buf.extend_from_slice(env);
    encode(p, &mut buf);
    buf
}

fn entry_name(k: &[u8]) -> String {
    format!("{:016x}.bpf", fast_hash(k))
}

fn serialize(k: &[u8], f: &Filter) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + k.len() + f.insns.len() * 8 + 8);
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&(k.len() as u32).to_le_bytes());
    v.extend_from_slice(&f.flags.to_le_bytes());
    v.extend_from_slice(&(f.insns.len() as u32).to_le_bytes());
    v.extend_from_slice(k);
    for i in &f.insns {
        v.extend_from_slice(&i.code.to_le_bytes());
        v.push(i.jt);
        v.push(i.jf);
        v.extend_from_slice(&i.k.to_le_bytes());
    }
    let sum = fast_hash(&v);
    v.extend_from_slice(&sum.to_le_bytes());
    v
}

fn parse(k: &[u8], b: &[u8]) -> Option<Filter> {
    if b.len() < HEADER + 8 || &b[..8] != MAGIC {
        return None;
    }
    let word = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let (klen, flags, n) = (word(8) as usize, word(12), word(16) as usize);
    if klen != k.len() || n == 0 || n > MAX_INSNS || b.len() != HEADER + klen + n * 8 + 8 {
        return None;
    }
    if &b[HEADER..HEADER + klen] != k {
        return None;
    }
    let (body, sum) = b.split_at(b.len() - 8);
    if fast_hash(body) != u64::from_le_bytes(sum.try_into().ok()?) {
        return None;
    }
    let insns = body[HEADER + klen..]
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

fn read_entry(path: &Path, k: &[u8]) -> Option<Filter> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let max = HEADER + k.len() + MAX_INSNS * 8 + 8;
    // Room for the largest valid entry plus one byte, so an over-long file shows up as too long;
    // read_to_end fills the spare capacity without zeroing it first.
    let mut buf = Vec::with_capacity(max + 1);
    f.take(max as u64 + 1).read_to_end(&mut buf).ok()?;
    parse(k, &buf)
}

fn write_entry(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}.{nanos}.tmp", std::process::id()));
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
    let name = entry_name(&k);
    let path = cache_dir.join(&name);
    if let Some(f) = read_entry(&path, &k) {
        return Ok(f);
    }
    let f = compile(profile)?;
    let _ = write_entry(cache_dir, &name, &serialize(&k, &f));
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn dir(tag: &str) -> Dir {
        let p =
            std::env::temp_dir().join(format!("boxrun-seccomp-cache-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Dir(p)
    }
    fn profile(deny: &str) -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": [deny], "action": "SCMP_ACT_ERRNO"}]
        }))
        .unwrap()
    }
    fn entries(d: &Path) -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn miss_then_hit() {
        let d = dir("hit");
        let p = profile("mkdir");
        let f1 = compile_cached(&p, &d.0).unwrap();
        assert_eq!(f1, compile(&p).unwrap());
        let files = entries(&d.0);
        assert_eq!(files.len(), 1, "{files:?}");
        // Plant a different (valid) program under the same key: a hit must return it as is.
        let other = compile(&profile("rmdir")).unwrap();
        std::fs::write(&files[0], serialize(&key(&p), &other)).unwrap();
        assert_eq!(
            compile_cached(&p, &d.0).unwrap(),
            other,
            "second call is served from the cache"
        );
        // A second profile gets its own entry.
        compile_cached(&profile("rmdir"), &d.0).unwrap();
        assert_eq!(entries(&d.0).len(), 2);
    }

    #[test]
    fn corrupt_entries_are_ignored_and_rewritten() {
        let d = dir("corrupt");
        let p = profile("mkdir");
        let good = compile(&p).unwrap();
        compile_cached(&p, &d.0).unwrap();
        let path = entries(&d.0).remove(0);
        let bytes = std::fs::read(&path).unwrap();
        let mut flipped = bytes.clone();
        let mid = bytes.len() - 20;
        flipped[mid] ^= 0x40;
        let mut bad_magic = bytes.clone();
        bad_magic[0] = b'X';
        let other_key = serialize(
            &key(&profile("rmdir")),
            &compile(&profile("rmdir")).unwrap(),
        );
        let mut too_long = bytes.clone();
        too_long.push(0);
        for (what, content) in [
            ("empty", Vec::new()),
            ("short", bytes[..bytes.len() / 2].to_vec()),
            ("flipped", flipped),
            ("magic", bad_magic),
            ("other key", other_key),
            ("too long", too_long),
        ] {
            std::fs::write(&path, &content).unwrap();
            assert_eq!(compile_cached(&p, &d.0).unwrap(), good, "{what}");
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bytes,
                "{what}: entry rewritten"
            );
        }
        assert_eq!(entries(&d.0).len(), 1, "no temporary files left behind");
    }

    #[test]
    fn unwritable_cache_is_not_an_error() {
        let d = dir("unwritable");
        std::fs::create_dir_all(&d.0).unwrap();
        let file = d.0.join("file");
        std::fs::write(&file, b"x").unwrap();
        let p = profile("mkdir");
        assert_eq!(
            compile_cached(&p, &file.join("cache")).unwrap(),
            compile(&p).unwrap()
        );
    }

    #[test]
    fn key_covers_the_whole_profile() {
        let base = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1,
                "args": [{"index": 1, "value": 9, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]
        });
        let k0 = key(&serde_json::from_value(base.clone()).unwrap());
        let variants: [(&str, serde_json::Value); 11] = [
            ("/defaultAction", "SCMP_ACT_KILL".into()),
            ("/defaultErrnoRet", 2.into()),
            ("/architectures/0", "SCMP_ARCH_X86".into()),
            ("/flags/0", "SECCOMP_FILTER_FLAG_TSYNC".into()),
            ("/syscalls/0/names/0", "tkill".into()),
            ("/syscalls/0/action", "SCMP_ACT_LOG".into()),
            ("/syscalls/0/errnoRet", 2.into()),
            ("/syscalls/0/args/0/index", 2.into()),
            ("/syscalls/0/args/0/value", 10.into()),
            ("/syscalls/0/args/0/valueTwo", 1.into()),
            ("/syscalls/0/args/0/op", "SCMP_CMP_NE".into()),
        ];
        for (ptr, v) in variants {
            let mut j = base.clone();
            *j.pointer_mut(ptr).unwrap() = v;
            assert_ne!(key(&serde_json::from_value(j).unwrap()), k0, "{ptr}");
        }
    }
}
