//! An instance's root file system: its own copy of the image's disk
//! (`disk.img`), or — copy-on-write instances — an overlay of the image's
//! disk mounted read-only (shared by every such instance) and a per-instance
//! upper layer in its own ext4 file (`upper.img`). Where the store keeps a
//! storage pool (see [`crate::pool`]), `disk.img` is a link to a reflink
//! copy of the image's disk in the pool.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bail;
use crate::error::{Context, Result};

use crate::image::{self, Image};
use crate::instance_file::Instance;
use crate::loopdev::{self, LoopDevice};
use crate::mounts;
use crate::store::Store;

/// The disk file an instance writes to.
pub fn disk_file(store: &Store, inst: &Instance) -> PathBuf {
    store
        .instance_dir(&inst.id)
        .join(if inst.cow { "upper.img" } else { "disk.img" })
}

/// Space taken in the pool at once by a new instance disk (its first writes).
const NEW_DISK_RESERVE: u64 = 64 << 20;

/// Make the instance's disk in `dir` (at create time).
pub fn prepare(store: &Store, dir: &Path, img: &Image, cow: bool) -> Result<()> {
    if cow {
        let size = std::fs::metadata(&img.disk)
            .with_context(|| format!("cannot read {}", img.disk.display()))?
            .len()
            .max(64 << 20);
        // An empty ext4 upper layer, made once per image and then copied
        // (sparse: a few MiB) — faster than mkfs for every instance.
        let template = img.disk.with_file_name("upper.tmpl");
        if !template.exists() {
            let tmp = img
                .disk
                .with_file_name(format!(".tmp-{}-upper", std::process::id()));
            image::ext4::make_empty(&tmp, size)?;
            if let Err(e) = std::fs::rename(&tmp, &template) {
                let _ = std::fs::remove_file(&tmp);
                return Err(e).context("cannot store the upper-layer template");
            }
        }
        crate::disk::copy_image(&template, &dir.join("upper.img")).map(|_| ())
    } else if let Some(pool) = crate::pool::for_new_disk(store, img.meta.size)? {
        pool.reserve(NEW_DISK_RESERVE)?;
        let src = adopt_image(&pool, img)?;
        let id = dir
            .file_name()
            .context("an instance directory has a name")?
            .to_string_lossy();
        let target = pool.instance_disk(&id);
        crate::disk::copy_image(&src, &target)?;
        std::os::unix::fs::symlink(&target, dir.join("disk.img")).map_err(|e| {
            let _ = std::fs::remove_file(&target);
            crate::error::Error::from(e).context(format!("cannot link {}", target.display()))
        })
    } else {
        crate::disk::copy_image(&img.disk, &dir.join("disk.img")).map(|_| ())
    }
}

/// Remove the instance's disk from the storage pool (its directory, with
/// the link, is removed by the caller).
pub fn discard(store: &Store, inst: &Instance) {
    let link = store.instance_dir(&inst.id).join("disk.img");
    if let Ok(target) = std::fs::read_link(&link) {
        if target.starts_with(store.root().join("pool")) {
            let _ = std::fs::remove_file(target);
        }
    }
}

/// Attach `file` to a loop device and mount its ext4 file system on
/// `target`; returns the device's major:minor.
pub(crate) fn attach_mount(file: &Path, target: &Path, read_only: bool) -> Result<(u64, u64)> {
    std::fs::create_dir_all(target)?;
    let lo = LoopDevice::attach(file, read_only)?;
    let mm = lo.major_minor()?;
    if let Err(e) = mounts::mount_ext4(lo.path(), target, read_only) {
        let _ = lo.detach();
        return Err(e);
    }
    Ok(mm) // the device auto-clears at unmount
}

/// Mount the instance's root file system on `rootfs/`; returns the loop
/// devices behind it (for block I/O throttles).
pub fn mount(store: &Store, inst: &Instance) -> Result<Vec<(u64, u64)>> {
    let dir = store.instance_dir(&inst.id);
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs)?;
    // Before any loop device is attached: see `unmount`.
    std::fs::write(dir.join(LOOPS_MARK), b"")
        .with_context(|| format!("cannot write {}", dir.join(LOOPS_MARK).display()))?;
    // Re-attached if need be, and grown at each start too: instances fill
    // the pool as they write.
    if let Some(pool) = crate::pool::existing(store)? {
        if pool.holds(&dir.join("disk.img")) {
            pool.reserve(NEW_DISK_RESERVE)?;
        }
    }
    if !inst.cow {
        let dev = attach_mount(&dir.join("disk.img"), &rootfs, false)?;
        if let Err(e) = crate::idmap::stack_for(inst, &rootfs) {
            let _ = unmount(store, inst);
            return Err(e);
        }
        return Ok(vec![dev]);
    }
    let img = image::get(store, &inst.image)?;
    let (lower, upper) = (dir.join("lower"), dir.join("upper"));
    for p in [&lower, &upper] {
        let s = p.to_string_lossy();
        if s.contains([',', ':', '\\']) {
            bail!("the path {s} cannot be used in overlay options: choose a --root without ',' or ':'");
        }
    }
    let result = (|| -> Result<Vec<(u64, u64)>> {
        let lo = attach_mount(&img.disk, &lower, true)?;
        crate::idmap::stack_for(inst, &lower)?;
        let up = attach_mount(&dir.join("upper.img"), &upper, false)?;
        std::fs::create_dir_all(upper.join("data"))?;
        std::fs::create_dir_all(upper.join("work"))?;
        crate::idmap::own_upper_root(inst, &upper.join("data"))?;
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.join("data").display(),
            upper.join("work").display()
        );
        mounts::mount_overlay(&rootfs, &opts)?;
        Ok(vec![lo, up])
    })();
    if result.is_err() {
        let _ = unmount(store, inst);
    }
    result
}

/// The loop devices behind a mounted instance.
pub fn devices(store: &Store, inst: &Instance) -> Vec<(u64, u64)> {
    let dir = store.instance_dir(&inst.id);
    loop_points(inst)
        .iter()
        .filter_map(|p| mounts::device_of(&dir.join(p)))
        .collect()
}

/// Present from before an instance's first loop device is attached until a
/// teardown has released them all: without it no loop device of the
/// instance can be left, and teardown skips the scan of every loop device.
const LOOPS_MARK: &str = ".loops";

/// The mount points of an instance's loop devices.
fn loop_points(inst: &Instance) -> &'static [&'static str] {
    if inst.cow {
        &["lower", "upper"]
    } else {
        &["rootfs"]
    }
}

/// Unmount everything (idempotent), wait for the loop devices to be
/// released and flush the instance's disk file.
pub fn unmount(store: &Store, inst: &Instance) -> Result<()> {
    let dir = store.instance_dir(&inst.id);
    let mut first: Option<crate::error::Error> = None;
    let mut released = Vec::new();
    let mut loops_unmounted = 0;
    for p in ["rootfs", "upper", "lower"] {
        let target = dir.join(p);
        let dev = mounts::device_of(&target);
        match mounts::unmount(&target) {
            Ok(()) => {
                if dev.is_some() && loop_points(inst).contains(&p) {
                    loops_unmounted += 1;
                }
                released.extend(dev)
            }
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    // The file systems (and so the auto-clearing loop devices) live on until
    // the container's mount namespace is gone, which the kernel finishes
    // asynchronously; wait for it so that a following start or rm finds the
    // disks free.
    for &(major, minor) in &released {
        loopdev::wait_released(major, minor, Duration::from_secs(5));
    }
    // A loop device still bound to the disk but not mounted (a process killed
    // between attach and mount, with the fd inherited elsewhere). Such a crash
    // leaves the mark and a loop mount point unmounted: only then are all the
    // host's loop devices scanned (O(instances) opens, ~2,000 at 300).
    let disk = disk_file(store, inst);
    let disk = std::fs::canonicalize(&disk).unwrap_or(disk);
    let mark = dir.join(LOOPS_MARK);
    let all_were_mounted = loops_unmounted == loop_points(inst).len();
    if !mounts::is_mount_point(&dir.join("rootfs")) {
        if !all_were_mounted && mark.exists() {
            for (dev, backing) in loopdev::devices_backed_under(&disk) {
                if backing == disk {
                    let _ = loopdev::detach_path(&dev);
                }
            }
        }
        if first.is_none() {
            let _ = std::fs::remove_file(&mark);
        }
    }
    // The loop device wrote through the host's page cache: make the stopped
    // disk durable, so it is in a stable state even across a host crash.
    if released.is_empty() {
        return match first {
            Some(e) => Err(e),
            None => Ok(()),
        };
    }
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&disk) {
        if let Err(e) = f.sync_all() {
            first.get_or_insert(crate::error::Error::from(e).context(format!(
                "cannot flush the disk of {} (is the disk full?)",
                inst.name
            )));
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The image's disk in the pool, moving it there first if it was imported
/// before the pool existed (a one-time sparse copy; the link then replaces
/// the file atomically, instances already using the old file keep it).
fn adopt_image(pool: &crate::pool::Pool, img: &crate::image::Image) -> Result<PathBuf> {
    if pool.holds(&img.disk) {
        return std::fs::canonicalize(&img.disk)
            .with_context(|| format!("cannot read {}", img.disk.display()));
    }
    let dir = img.disk.parent().context("an image disk has a directory")?;
    let _lock = crate::store::lock_file(&dir.join(".adopt.lock"))?;
    if pool.holds(&img.disk) {
        return std::fs::canonicalize(&img.disk)
            .with_context(|| format!("cannot read {}", img.disk.display()));
    }
    pool.reserve(crate::disk::allocated_bytes(&img.disk))?;
    let target = pool.new_image_disk();
    let link = dir.join(format!(".tmp-{}-disk.img", std::process::id()));
    let _ = std::fs::remove_file(&link);
    let r = std::os::unix::fs::symlink(&target, &link)
        .with_context(|| format!("cannot create {}", link.display()))
        .and_then(|_| crate::disk::copy_image(&img.disk, &target).map(|_| ()))
        .and_then(|_| {
            std::fs::rename(&link, &img.disk)
                .with_context(|| format!("cannot replace {}", img.disk.display()))
        });
    if r.is_err() {
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_file(&target);
    }
    r.map(|_| target)
}
