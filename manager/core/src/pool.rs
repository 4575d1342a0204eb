//! The storage pool: where the store's file system cannot share extents
//! (ext4, the Debian default), image and instance disks live in a sparse XFS
//! file system made with reflink, so that an instance's disk is a reflink
//! copy of its image's and costs the same time whatever the image's size.
//! Made on first use, grown when its free space runs low, re-attached by
//! any command after a reboot or an unmount behind boxctl's back.
//!
//! ```text
//! ROOT/pool/pool.img                  the XFS file system (a sparse file)
//! ROOT/pool/lock                      flock(2) around attach, grow and garbage collection
//! ROOT/pool/mnt/                      where it is mounted (through an auto-clearing loop device)
//! ROOT/pool/mnt/images/RANDOM.img     image disks; ROOT/images/NAME/disk.img links here
//! ROOT/pool/mnt/instances/ID.img      instance disks; ROOT/instances/ID/disk.img links here
//! ```

use std::ffi::CString;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use crate::bail;
use crate::error::{Context, Result};
use crate::loopdev::{self, LoopDevice};
use crate::store::{self, Store};
use crate::util;

/// `off` keeps disks in the store's own file system (no pool is made).
pub const ENV_MODE: &str = "BOXCTL_STORAGE_POOL";
/// Size a new pool starts at (e.g. `1g`; default 20 GiB, at least 512 MiB).
pub const ENV_SIZE: &str = "BOXCTL_POOL_SIZE";

const DEFAULT_SIZE: u64 = 20 << 30;
/// mkfs.xfs refuses file systems under 300 MB.
const MIN_SIZE: u64 = 512 << 20;
/// Free space kept on the host file system: below it, nothing more is written to the pool.
const HOST_RESERVE: u64 = 128 << 20;
/// Free space kept in the pool beyond what an operation needs, before it grows.
const POOL_SLACK: u64 = 256 << 20;
const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// A store's storage pool.
#[derive(Debug, Clone)]
pub struct Pool {
    dir: PathBuf,
}

/// What `system df` shows of the pool.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PoolUsage {
    /// The pool's file.
    pub file: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Its loop device, when attached.
    pub device: Option<PathBuf>,
    /// The file system's size.
    pub size: u64,
    /// Bytes used in it.
    pub used: u64,
    /// Bytes free in it.
    pub free: u64,
    /// Bytes the pool's file takes on the host file system.
    pub host_allocated: u64,
    /// Image disks in it.
    pub images: usize,
    /// Instance disks in it.
    pub instances: usize,
}

impl Pool {
    fn of(store: &Store) -> Pool {
        Pool {
            dir: store.root().join("pool"),
        }
    }

    /// ROOT/pool/pool.img.
    pub fn file(&self) -> PathBuf {
        self.dir.join("pool.img")
    }

    /// ROOT/pool/mnt.
    pub fn mount_point(&self) -> PathBuf {
        self.dir.join("mnt")
    }

    /// A new, unused path for an image disk.
    pub fn new_image_disk(&self) -> PathBuf {
        self.mount_point()
            .join("images")
            .join(format!("{}.img", util::random_id()))
    }

    /// The disk of instance `id`.
    pub fn instance_disk(&self, id: &str) -> PathBuf {
        self.mount_point()
            .join("instances")
            .join(format!("{id}.img"))
    }

    /// Whether `path` (a link is followed) is a file in this pool.
    pub fn holds(&self, path: &Path) -> bool {
        fs::canonicalize(path).is_ok_and(|p| p.starts_with(self.mount_point()))
    }

    fn lock(&self) -> Result<store::LockGuard> {
        store::lock_file(&self.dir.join("lock"))
    }

    fn is_mounted(&self) -> bool {
        match (fs::metadata(self.mount_point()), fs::metadata(&self.dir)) {
            (Ok(m), Ok(d)) => m.dev() != d.dev(),
            _ => false,
        }
    }

    /// The loop device behind the pool (at most one: attach reuses it).
    pub fn device(&self) -> Option<PathBuf> {
        loopdev::devices_backed_by(&self.file()).into_iter().next()
    }

    /// Mount the pool if it is not: on its loop device when one is still
    /// attached (never a second one), else on a new one.
    fn attach(&self) -> Result<()> {
        if self.is_mounted() {
            return Ok(());
        }
        let _lock = self.lock()?;
        if self.is_mounted() {
            return Ok(());
        }
        let mnt = self.mount_point();
        fs::create_dir_all(&mnt).with_context(|| format!("cannot create {}", mnt.display()))?;
        let mounted = match self.device() {
            Some(dev) => mount_xfs(&dev, &mnt),
            None => {
                let lo = LoopDevice::attach(&self.file(), false)?;
                let r = mount_xfs(lo.path(), &mnt);
                if r.is_err() {
                    let _ = lo.detach();
                }
                r // once mounted the device auto-clears at unmount
            }
        };
        mounted.with_context(|| {
            format!(
                "cannot attach the storage pool {}: check `dmesg` (xfs support) or move it away to start a new one",
                self.file().display()
            )
        })?;
        for d in ["images", "instances"] {
            fs::create_dir_all(mnt.join(d))?;
        }
        Ok(())
    }

    /// Make sure `need` more bytes can be written: refused when the host
    /// file system is (nearly) full, and the pool grown when its own free
    /// space runs low.
    pub fn reserve(&self, need: u64) -> Result<()> {
        let host_free = statvfs(&self.dir)?.0;
        if host_free < need + HOST_RESERVE {
            bail!(
                "the file system holding {} is full ({} free, {} needed): free space on it, the storage pool's disks are stored there",
                self.dir.display(),
                util::human_bytes(host_free),
                util::human_bytes(need + HOST_RESERVE)
            );
        }
        let (free, total) = statvfs(&self.mount_point())?;
        if free >= need + (total / 10).max(POOL_SLACK) {
            return Ok(());
        }
        let _lock = self.lock()?;
        let len = fs::metadata(self.file())
            .with_context(|| format!("cannot read {}", self.file().display()))?
            .len();
        self.grow(len.saturating_mul(2).max(len + 2 * need + POOL_SLACK))
    }

    /// Grow the pool to `len` bytes: the file, its loop device, then XFS.
    fn grow(&self, len: u64) -> Result<()> {
        let dev = self.device().with_context(|| {
            format!(
                "the storage pool {} has no loop device: run any boxctl command to re-attach it",
                self.file().display()
            )
        })?;
        File::options()
            .write(true)
            .open(self.file())
            .and_then(|f| f.set_len(len))
            .with_context(|| format!("cannot grow {}", self.file().display()))?;
        loopdev::set_capacity(&dev)?;
        run_tool(
            Command::new("xfs_growfs").arg("-d").arg(self.mount_point()),
            "xfs_growfs",
            "grow the storage pool",
        )
    }

    /// Unmount the pool and wait for its loop device to go (refused while
    /// a disk in it is in use).
    pub fn detach(&self) -> Result<()> {
        if !self.is_mounted() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let mnt = self.mount_point();
        let dev = crate::mounts::device_of(&mnt);
        let c = CString::new(mnt.as_os_str().as_encoded_bytes())?;
        // SAFETY: a valid C string.
        if unsafe { libc::umount2(c.as_ptr(), libc::UMOUNT_NOFOLLOW) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EBUSY) {
                bail!(
                    "the storage pool {} is in use: stop the instances on it first",
                    mnt.display()
                );
            }
            return Err(e).with_context(|| format!("cannot unmount {}", mnt.display()));
        }
        if let Some((major, minor)) = dev {
            loopdev::wait_released(major, minor, Duration::from_secs(5));
        }
        Ok(())
    }

    /// The pool's size, use and disks.
    pub fn usage(&self) -> Result<PoolUsage> {
        let meta = fs::metadata(self.file())
            .with_context(|| format!("cannot read {}", self.file().display()))?;
        let (free, size, used) = if self.is_mounted() {
            let (free, total) = statvfs(&self.mount_point())?;
            let used = total.saturating_sub(statvfs_free_all(&self.mount_point())?);
            (free, total, used)
        } else {
            (0, meta.len(), 0)
        };
        let count = |d: &str| {
            fs::read_dir(self.mount_point().join(d))
                .map(|rd| rd.flatten().count())
                .unwrap_or(0)
        };
        Ok(PoolUsage {
            file: self.file(),
            mount_point: self.mount_point(),
            device: self.device(),
            size,
            used,
            free,
            host_allocated: meta.blocks() * 512,
            images: count("images"),
            instances: count("instances"),
        })
    }

    /// Remove pool files nothing links to any more (left by a killed
    /// process): instance disks whose instance directory is gone, image
    /// disks no link under ROOT/images names.
    pub fn collect_garbage(&self, store: &Store) {
        let Ok(_lock) = self.lock() else { return };
        let mnt = self.mount_point();
        for e in fs::read_dir(mnt.join("instances"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".img") {
                if !store.instance_dir(id).exists() {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let mut linked = Vec::new();
        for img in fs::read_dir(store.images_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            for e in fs::read_dir(img.path()).into_iter().flatten().flatten() {
                // The link of a killed `adopt_image` names a half-made copy.
                if store::is_stale_temp(&e.file_name().to_string_lossy()) {
                    let _ = fs::remove_file(e.path());
                } else if let Ok(t) = fs::read_link(e.path()) {
                    linked.push(t);
                }
            }
        }
        for e in fs::read_dir(mnt.join("images"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if !linked.contains(&e.path()) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The store's pool if it has one, attached and mounted.
pub fn existing(store: &Store) -> Result<Option<Pool>> {
    let pool = Pool::of(store);
    if !pool.file().exists() {
        return Ok(None);
    }
    let was_mounted = pool.is_mounted();
    pool.attach()?;
    if !was_mounted {
        pool.collect_garbage(store);
    }
    Ok(Some(pool))
}

/// Re-attach the store's pool if it has one and it is not mounted (after
/// a reboot, or an unmount behind boxctl's back), and collect its garbage
/// when `stale` (a killed boxctl left temporary files). Errors wait for the
/// commands that use the pool, which report them.
pub fn reconcile(store: &Store, stale: bool) {
    if let Ok(Some(pool)) = existing(store) {
        if stale {
            pool.collect_garbage(store);
        }
    }
}

/// The pool new disks go to: the store's, or a new one when the store's
/// file system cannot reflink (`image_size`: the disk about to be made).
/// `None`: disks stay in the store's own file system.
pub fn for_new_disk(store: &Store, image_size: u64) -> Result<Option<Pool>> {
    if let Some(p) = existing(store)? {
        return Ok(Some(p));
    }
    if !wanted(store.root()) {
        return Ok(None);
    }
    let pool = Pool::of(store);
    fs::create_dir_all(&pool.dir)
        .with_context(|| format!("cannot create {}", pool.dir.display()))?;
    {
        let _lock = pool.lock()?;
        if !pool.file().exists() {
            create(&pool, image_size)?;
        }
    }
    pool.attach()?;
    Ok(Some(pool))
}

/// Whether disks in the store at `root` should go to a pool: its file
/// system cannot reflink, is not in memory (tmpfs), and `BOXCTL_STORAGE_POOL`
/// is not `off`.
pub fn wanted(root: &Path) -> bool {
    if std::env::var(ENV_MODE).is_ok_and(|v| v == "off") {
        return false;
    }
    // SAFETY: statfs is plain old data; zero is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let Ok(c) = CString::new(root.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a valid C string and a statfs buffer that outlives the call.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    let magic = st.f_type as i64;
    if magic == TMPFS_MAGIC || magic == RAMFS_MAGIC {
        return false;
    }
    !can_reflink(root)
}

/// Try FICLONE once between two small files in `dir`.
fn can_reflink(dir: &Path) -> bool {
    use std::io::Write;
    let a = dir.join(format!(".tmp-{}-reflink-a", std::process::id()));
    let b = dir.join(format!(".tmp-{}-reflink-b", std::process::id()));
    let r = (|| -> std::io::Result<()> {
        let mut src = File::create(&a)?;
        src.write_all(&[0x5a; 4096])?;
        src.sync_all()?;
        let dst = File::create(&b)?;
        crate::disk::reflink(&src, &dst)
    })();
    let _ = fs::remove_file(&a);
    let _ = fs::remove_file(&b);
    r.is_ok()
}

fn create(pool: &Pool, image_size: u64) -> Result<()> {
    let start = match std::env::var(ENV_SIZE) {
        Ok(s) => crate::limits::parse_size(ENV_SIZE, &s)?,
        Err(_) => DEFAULT_SIZE,
    };
    let size = start.max(MIN_SIZE).max(image_size.saturating_mul(2));
    let host_free = statvfs(&pool.dir)?.0;
    if host_free < HOST_RESERVE {
        bail!(
            "the file system holding {} is full ({} free): free space on it before boxctl makes its storage pool there",
            pool.dir.display(),
            util::human_bytes(host_free)
        );
    }
    let tmp = pool
        .dir
        .join(format!(".tmp-{}-pool.img", std::process::id()));
    let made = File::create_new(&tmp)
        .and_then(|f| f.set_len(size))
        .with_context(|| format!("cannot create {}", tmp.display()))
        .and_then(|_| {
            run_tool(
                Command::new("mkfs.xfs")
                    .args(["-q", "-m", "reflink=1", "-L", "boxctl-pool"])
                    .arg(&tmp),
                "mkfs.xfs",
                "make the storage pool (install xfsprogs, or set BOXCTL_STORAGE_POOL=off)",
            )
        })
        .and_then(|_| {
            fs::rename(&tmp, pool.file())
                .with_context(|| format!("cannot rename {}", tmp.display()))
        });
    if made.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    made
}

/// Bytes a link to a pool disk stands for in `system df`: an image disk's
/// allocated blocks; an instance disk's blocks not shared with its image
/// (what removing it frees). `None` for anything else.
pub fn linked_disk_bytes(link: &Path) -> Option<u64> {
    let target = fs::canonicalize(link).ok()?;
    let kind = target.parent()?;
    if kind.parent()?.file_name()? != "mnt" || kind.parent()?.parent()?.file_name()? != "pool" {
        return None;
    }
    match kind.file_name()?.to_str()? {
        "images" => Some(crate::disk::allocated_bytes(&target)),
        "instances" => crate::disk::extents(&target)
            .ok()
            .map(|e| e.bytes - e.shared),
        _ => None,
    }
}

fn mount_xfs(dev: &Path, target: &Path) -> Result<()> {
    let src = CString::new(dev.as_os_str().as_encoded_bytes())?;
    let dst = CString::new(target.as_os_str().as_encoded_bytes())?;
    let fstype = CString::new("xfs")?;
    // Discard: space freed in the pool is punched out of pool.img on the host.
    let data = CString::new("discard")?;
    // SAFETY: valid C strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot mount {} on {}", dev.display(), target.display()));
    }
    Ok(())
}

fn run_tool(cmd: &mut Command, tool: &str, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {tool} to {what}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{tool} failed to {what}: {}",
            err.lines().last().unwrap_or("no message").trim()
        );
    }
    Ok(())
}

fn statvfs_raw(path: &Path) -> Result<libc::statvfs> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: statvfs is plain old data; zero is valid.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a buffer that outlives the call.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot read the free space of {}", path.display()));
    }
    Ok(st)
}

/// `(bytes available to unprivileged writers, total bytes)` of the file system at `path`.
fn statvfs(path: &Path) -> Result<(u64, u64)> {
    let st = statvfs_raw(path)?;
    Ok((
        st.f_bavail as u64 * st.f_frsize as u64,
        st.f_blocks as u64 * st.f_frsize as u64,
    ))
}

fn statvfs_free_all(path: &Path) -> Result<u64> {
    let st = statvfs_raw(path)?;
    Ok(st.f_bfree as u64 * st.f_frsize as u64)
}
