//! Unprivileged instances: each gets its own range of 65536 host uids and
//! gids, root inside mapping to the range's base outside.
//!
//! Ranges come from boxctl's pool, by default host ids 1,000,000,000 up to
//! 3,000,000,000 (as Incus takes root's `/etc/subuid` range). A `boxctl`
//! line in `/etc/subuid` (`boxctl:START:COUNT`) replaces that pool. A range
//! never overlaps another instance's (they are allocated under the store lock
//! and recorded in the instance file, so `rm` frees them), any range
//! `/etc/subuid` or `/etc/subgid` lists for another user, nor any uid or gid
//! of `/etc/passwd` or `/etc/group`.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, Spec};

use crate::bail;
use crate::error::{Context, Result};
use crate::instance_file::Instance;

/// Ids per instance: uid and gid 0..65535 inside.
pub const RANGE_SIZE: u32 = 65536;
/// First host id of the default pool.
pub const POOL_START: u32 = 1_000_000_000;
/// Ids in the default pool (30517 ranges).
pub const POOL_SIZE: u32 = 2_000_000_000;
/// The `/etc/subuid` user naming boxctl's pool.
pub const SUBID_USER: &str = "boxctl";

/// A host id range: ids `0..size` inside are `base..base+size` outside
/// (the same for uids and gids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First host id (container root).
    pub base: u32,
    /// Number of ids.
    pub size: u32,
}

impl IdRange {
    /// The range `inst` runs in (None: privileged, host ids).
    pub fn of(inst: &Instance) -> Option<IdRange> {
        inst.userns_base.map(|base| IdRange {
            base,
            size: inst.userns_size.unwrap_or(RANGE_SIZE),
        })
    }

    /// One past the last host id.
    fn end(&self) -> u64 {
        u64::from(self.base) + u64::from(self.size)
    }

    /// The line of `/proc/PID/uid_map` (and gid_map).
    pub fn map_line(&self) -> String {
        format!("0 {} {}", self.base, self.size)
    }
}

/// Host id ranges `[start, end)` boxctl must not hand out, and its pool.
#[derive(Debug, Default)]
struct HostIds {
    pool: Option<(u64, u64)>,
    reserved: Vec<(u64, u64)>,
}

impl HostIds {
    fn read() -> HostIds {
        let text = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let mut h = HostIds::default();
        for file in ["/etc/subuid", "/etc/subgid"] {
            h.add_subids(&text(file), file == "/etc/subuid");
        }
        for file in ["/etc/passwd", "/etc/group"] {
            h.add_ids(&text(file));
        }
        h
    }

    /// `NAME:START:COUNT` lines; the `boxctl` line of subuid is the pool.
    fn add_subids(&mut self, text: &str, is_subuid: bool) {
        for l in text.lines() {
            let f: Vec<&str> = l.trim().split(':').collect();
            let [name, start, count] = f[..] else {
                continue;
            };
            let (Ok(start), Ok(count)) = (start.parse::<u64>(), count.parse::<u64>()) else {
                continue;
            };
            if name == SUBID_USER {
                if is_subuid {
                    self.pool = Some((start, start + count));
                }
            } else {
                self.reserved.push((start, start + count));
            }
        }
    }

    /// The third field of passwd/group lines: ids the host's users have.
    fn add_ids(&mut self, text: &str) {
        for l in text.lines() {
            if let Some(id) = l.split(':').nth(2).and_then(|s| s.parse::<u64>().ok()) {
                self.reserved.push((id, id + 1));
            }
        }
    }

    /// The first range of the pool free of `used` and of the host's ids.
    fn first_free(&self, used: &[IdRange]) -> Option<IdRange> {
        let (start, end) = self.pool.unwrap_or((
            u64::from(POOL_START),
            u64::from(POOL_START) + u64::from(POOL_SIZE),
        ));
        let end = end.min(u64::from(u32::MAX));
        // One sweep over the taken intervals by start (O(n log n), where a scan
        // of all of them per candidate was O(n^2) with n instances).
        let mut taken: Vec<(u64, u64)> = used
            .iter()
            .map(|r| (u64::from(r.base), r.end()))
            .chain(self.reserved.iter().copied())
            .collect();
        taken.sort_unstable();
        let size = u64::from(RANGE_SIZE);
        let mut base = start;
        for (s, e) in taken {
            if s >= base + size {
                break; // the gap before this interval fits
            }
            base = base.max(e);
        }
        if base + size > end {
            return None;
        }
        Some(IdRange {
            base: u32::try_from(base).ok()?,
            size: RANGE_SIZE,
        })
    }
}

/// Pick a free range for a new instance among `list` (the caller holds the
/// store lock and records the range in the instance it adds).
pub fn allocate(list: &[Instance]) -> Result<IdRange> {
    let used: Vec<IdRange> = list.iter().filter_map(IdRange::of).collect();
    match HostIds::read().first_free(&used) {
        Some(r) => Ok(r),
        None => bail!(
            "no free uid range of {RANGE_SIZE} ids left in boxctl's pool: remove instances, widen the `{SUBID_USER}` line of /etc/subuid, or use --userns=host"
        ),
    }
}

/// Check that root of a user namespace (an unprivileged host uid) can reach
/// `dir`: the runtime mounts the instance's root from inside it, so every
/// directory above must be searchable by other users.
pub fn check_reachable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for d in dir.ancestors() {
        let Ok(meta) = std::fs::metadata(d) else {
            continue;
        };
        if meta.permissions().mode() & 0o001 == 0 {
            bail!(
                "{} is not searchable by other users (mode {:o}), so an unprivileged instance's root cannot reach its disk below it: `chmod o+x {}`, use another --root, or --userns=host",
                d.display(),
                meta.permissions().mode() & 0o7777,
                d.display()
            );
        }
    }
    Ok(())
}

/// Give the bundle of `inst` a user namespace with its range's mapping
/// (nothing for a privileged instance).
pub fn apply(inst: &Instance, spec: &mut Spec) -> Result<()> {
    let Some(range) = IdRange::of(inst) else {
        return Ok(());
    };
    let map = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(range.base)
        .size(range.size)
        .build()?;
    let ns = LinuxNamespaceBuilder::default()
        .typ(LinuxNamespaceType::User)
        .build()?;
    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    namespaces.push(ns);
    linux.set_namespaces(Some(namespaces));
    linux.set_uid_mappings(Some(vec![map]));
    linux.set_gid_mappings(Some(vec![map]));
    Ok(())
}

/// Pin the network namespace of process `pid` (a container's init the
/// runtime made, inside its user namespace) at `path`, as
/// `boxctl_network::netns::create` pins the ones boxctl makes.
pub fn pin_netns(pid: i32, path: &Path) -> Result<()> {
    let _ = boxctl_network::netns::delete(path);
    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let src = std::ffi::CString::new(format!("/proc/{pid}/ns/net"))?;
    let dst = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: valid C strings, no data.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        let _ = std::fs::remove_file(path);
        return Err(e).with_context(|| {
            format!(
                "cannot pin the network namespace of pid {pid} at {}",
                path.display()
            )
        });
    }
    Ok(())
}

/// A user namespace with `range`'s mapping, held by its descriptor (for
/// idmapped mounts); no process stays in it.
pub fn open(range: IdRange) -> Result<OwnedFd> {
    // Close-on-exec: a process another thread spawns meanwhile must not hold
    // the ends whose closing the child waits for.
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (ready_r, ready_w) = nix::unistd::pipe2(cloexec).context("cannot make a pipe")?;
    let (done_r, done_w) = nix::unistd::pipe2(cloexec).context("cannot make a pipe")?;
    // SAFETY: the child only makes raw system calls (async-signal-safe) and
    // leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error())
            .context("cannot fork to make a user namespace");
    }
    if pid == 0 {
        // SAFETY: raw system calls on descriptors this process owns.
        unsafe {
            let ok: u8 = if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                1
            } else {
                0
            };
            libc::write(ready_w.as_raw_fd(), (&ok as *const u8).cast(), 1);
            let mut b = 0u8;
            libc::close(done_w.as_raw_fd());
            libc::read(done_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    drop(ready_w);
    drop(done_r);
    let result = (|| -> Result<OwnedFd> {
        let mut ok = [0u8; 1];
        let n = nix::unistd::read(ready_r.as_raw_fd(), &mut ok).context("cannot read a pipe")?;
        if n != 1 || ok[0] != 1 {
            bail!("cannot create a user namespace: does the kernel allow user namespaces (user.max_user_namespaces)?");
        }
        let proc = Path::new("/proc").join(pid.to_string());
        for f in ["uid_map", "gid_map"] {
            std::fs::write(proc.join(f), range.map_line()).with_context(|| {
                format!(
                    "cannot write the {f} of a user namespace for host ids {}",
                    range.base
                )
            })?;
        }
        let ns = File::open(proc.join("ns/user")).context("cannot open a user namespace")?;
        Ok(OwnedFd::from(ns))
    })();
    drop(done_w);
    let mut status = 0;
    // SAFETY: our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    result
}

/// Run `f` with this thread's file-system ids set to the container root of
/// `range` (files it creates are then owned by root inside), keeping its
/// capabilities; restores them after.
pub fn as_container_root<R>(range: Option<IdRange>, f: impl FnOnce() -> R) -> R {
    let Some(r) = range else { return f() };
    // SAFETY: prctl/setfsuid/setfsgid on this thread's own credentials.
    let old_bits = unsafe { libc::prctl(libc::PR_GET_SECUREBITS) };
    // SAFETY: as above; SECBIT_NO_SETUID_FIXUP (bit 2) keeps the capabilities.
    let fixed = old_bits >= 0 && unsafe { libc::prctl(libc::PR_SET_SECUREBITS, old_bits | 4) } == 0;
    // SAFETY: as above.
    let (uid, gid) = unsafe { (libc::setfsuid(r.base), libc::setfsgid(r.base)) };
    let out = f();
    // SAFETY: as above: back to what it was.
    unsafe {
        libc::setfsgid(gid as u32);
        libc::setfsuid(uid as u32);
        if fixed {
            libc::prctl(libc::PR_SET_SECUREBITS, old_bits);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(base: u32) -> IdRange {
        IdRange {
            base,
            size: RANGE_SIZE,
        }
    }

    #[test]
    fn first_range_skips_instances_subids_and_host_ids() {
        let mut h = HostIds::default();
        assert_eq!(h.first_free(&[]), Some(r(POOL_START)));
        assert_eq!(
            h.first_free(&[r(POOL_START)]),
            Some(r(POOL_START + RANGE_SIZE))
        );
        // after the instance's range: another user's subuid range, then a
        // host uid; a damaged line is ignored.
        h.add_subids(
            "root:100000:65536\nalice:1000100000:65536\nboxctl-x:bad\n",
            true,
        );
        h.add_ids("odd:x:1000200000:1000200000::/:/bin/sh\n");
        assert_eq!(h.first_free(&[r(POOL_START)]), Some(r(1_000_200_001)));
        // root's Incus-style range covering the pool's start is skipped whole.
        h.add_subids("root:1000000:1000000000\n", false);
        assert_eq!(h.first_free(&[]), Some(r(1_001_000_000)));
    }

    #[test]
    fn a_boxctl_subuid_line_is_the_pool() {
        let mut h = HostIds::default();
        h.add_subids("boxctl:200000:131072\n", true);
        assert_eq!(h.first_free(&[]), Some(r(200_000)));
        assert_eq!(h.first_free(&[r(200_000)]), Some(r(265_536)));
        assert_eq!(h.first_free(&[r(200_000), r(265_536)]), None);
        assert_eq!(r(5).map_line(), "0 5 65536");
    }
}
