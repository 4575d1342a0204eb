//! Named volumes and the mounts an instance gets besides its root.
//!
//! ```text
//! ROOT/volumes/lock              flock around mounting and unmounting volumes
//! ROOT/volumes/NAME/volume.img   the volume's own sparse ext4 disk
//! ROOT/volumes/NAME/volume.json  name, size, created
//! ROOT/volumes/NAME/mnt/         where the disk is mounted while in use
//! ```
//!
//! A volume outlives the instances that use it. Its disk is loop-mounted
//! once, on `mnt/`, when the first instance using it starts, and bound from
//! there into every running instance that names it (never two mounts of one
//! ext4 image); it is unmounted (and its loop device released) when the last
//! of them stops.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::Mount;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Context, Result};
use crate::instance_file::Instance;
use crate::store::{LockGuard, Store};
use crate::volume_spec::{Source, Storage};
use crate::{bail, bundle, disk, image, instance_disk, loopdev, mounts, util};

/// Size of a volume made without `--size` (sparse: only what is written
/// takes room).
pub const DEFAULT_SIZE: u64 = 1 << 30;
/// The smallest volume mkfs.ext4 makes usefully.
pub const MIN_SIZE: u64 = 8 << 20;

/// What `volume.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeMeta {
    /// Volume name.
    pub name: String,
    /// Disk size in bytes.
    pub size: u64,
    /// Creation time (RFC 3339).
    pub created: String,
}

/// A volume in the store.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Its record.
    pub meta: VolumeMeta,
    /// ROOT/volumes/NAME.
    pub dir: PathBuf,
}

impl Volume {
    /// The disk file.
    pub fn disk(&self) -> PathBuf {
        self.dir.join("volume.img")
    }

    /// Where the disk is mounted while an instance uses it.
    pub fn mount_point(&self) -> PathBuf {
        self.dir.join("mnt")
    }
}

fn volumes_dir(store: &Store) -> PathBuf {
    store.root().join("volumes")
}

/// An exclusive flock on ROOT/volumes/lock, released on drop.
fn lock(store: &Store) -> Result<LockGuard> {
    let dir = volumes_dir(store);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    crate::store::lock_file(&dir.join("lock"))
}

/// Volume `name`, refused when it does not exist.
pub fn get(store: &Store, name: &str) -> Result<Volume> {
    util::validate_name("volume", name)?;
    let dir = volumes_dir(store).join(name);
    let text = match std::fs::read_to_string(dir.join("volume.json")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("no such volume: {name} (see `boxctl volume ls`)")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read volume {name}")),
    };
    let meta = serde_json::from_str(&text)
        .with_context(|| format!("volume {name}: {} is damaged", dir.display()))?;
    Ok(Volume { meta, dir })
}

/// Create volume `name` with a disk of `size` bytes (default [`DEFAULT_SIZE`]).
pub fn create(store: &Store, name: &str, size: Option<u64>) -> Result<Volume> {
    util::validate_name("volume", name)?;
    let size = size.unwrap_or(DEFAULT_SIZE);
    if size < MIN_SIZE {
        crate::invalid!(
            "volume size {} is too small: give at least {}",
            util::human_bytes(size),
            util::human_bytes(MIN_SIZE)
        );
    }
    let _lock = lock(store)?;
    let dir = volumes_dir(store).join(name);
    if dir.exists() {
        bail!("volume {name} already exists: use it, or remove it with `boxctl volume rm {name}`");
    }
    // Made under a temporary name (cleaned by Store::open if we die), then renamed.
    let tmp = volumes_dir(store).join(format!(".tmp-{}-{name}", std::process::id()));
    let made = (|| -> Result<VolumeMeta> {
        std::fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        std::fs::create_dir(tmp.join("mnt"))?;
        image::ext4::make_empty(&tmp.join("volume.img"), size)?;
        let meta = VolumeMeta {
            name: name.to_string(),
            size: size.div_ceil(1 << 20) << 20,
            created: util::format_time(util::now_secs()),
        };
        crate::store::write_quick(&tmp.join("volume.json"), &serde_json::to_vec_pretty(&meta)?)?;
        std::fs::rename(&tmp, &dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(meta)
    })();
    match made {
        Ok(meta) => Ok(Volume { meta, dir }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e.context(format!("cannot create volume {name}")))
        }
    }
}

/// Every volume, by name.
pub fn list(store: &Store) -> Result<Vec<Volume>> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(volumes_dir(store)) else {
        return Ok(out);
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() && !name.starts_with('.') {
            if let Ok(v) = get(store, &name) {
                out.push(v);
            }
        }
    }
    out.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
    Ok(out)
}

/// Names of the instances (running or stopped) whose `-v` names volume `name`.
pub fn users(list: &[Instance], name: &str) -> Vec<String> {
    list.iter()
        .filter(|i| i.storage.volume_names().iter().any(|n| n == name))
        .map(|i| i.name.clone())
        .collect()
}

/// Remove volume `name` and its data; refused while an instance names it.
pub fn remove(store: &Store, name: &str) -> Result<()> {
    let vol = get(store, name)?;
    // Under the store lock, so that no `create` starts using it meanwhile.
    store.update(|list| {
        if let Some(user) = users(list, name).first() {
            bail!(
                "volume {name} is used by instance {user}: remove it first with `boxctl rm {user}`"
            );
        }
        let _lock = lock(store)?;
        unmount(&vol)?;
        std::fs::remove_dir_all(&vol.dir)
            .with_context(|| format!("cannot remove {}", vol.dir.display()))
    })
}

/// Volume `name` as `volume inspect` shows it.
pub fn inspect(store: &Store, name: &str) -> Result<Value> {
    let vol = get(store, name)?;
    let disk = vol.disk();
    let mnt = vol.mount_point();
    Ok(json!({
        "name": vol.meta.name,
        "size": vol.meta.size,
        "created": vol.meta.created,
        "disk": disk,
        "disk_allocated": disk::allocated_bytes(&disk),
        "mount_point": mnt,
        "mounted": mounts::is_mount_point(&mnt),
        "used_by": users(&store.load()?, name),
    }))
}

/// Create the named volumes of `storage` that do not exist yet (with the
/// default size, as docker does); returns the names it created.
pub fn ensure(store: &Store, storage: &Storage) -> Result<Vec<String>> {
    let mut made = Vec::new();
    for name in storage.volume_names() {
        if volumes_dir(store).join(&name).join("volume.json").exists() || made.contains(&name) {
            continue;
        }
        match create(store, &name, None) {
            Ok(_) => made.push(name),
            Err(e) => {
                discard(store, &made);
                return Err(e);
            }
        }
    }
    Ok(made)
}

/// Remove volumes just made by [`ensure`] (a create that failed after).
pub fn discard(store: &Store, names: &[String]) {
    for n in names {
        let _ = std::fs::remove_dir_all(volumes_dir(store).join(n));
    }
}

/// What a starting instance gets from its [`Storage`].
#[derive(Debug, Default)]
pub struct Attached {
    /// OCI mounts: binds of the volumes and host paths, tmpfs mounts.
    pub mounts: Vec<Mount>,
    /// The volumes' loop devices (for block I/O throttles).
    pub devices: Vec<(u64, u64)>,
}

/// Mount the named volumes `inst` uses (those not mounted yet) and make
/// its OCI mounts. On failure, what this call mounted is released.
pub fn attach(store: &Store, inst: &Instance) -> Result<Attached> {
    let mut out = Attached::default();
    let vms = inst.storage.volume_mounts();
    for m in &vms {
        if let Source::Host(p) = &m.source {
            if !p.exists() {
                bail!(
                    "host path {} bound on {} in {} does not exist: create it again, or remove the instance",
                    p.display(),
                    m.target,
                    inst.name
                );
            }
        }
    }
    if vms.iter().any(|m| matches!(m.source, Source::Named(_))) {
        let _lock = lock(store)?;
        for name in inst.storage.volume_names() {
            let r = get(store, &name).and_then(|vol| {
                let mnt = vol.mount_point();
                if !mounts::is_mount_point(&mnt) {
                    instance_disk::attach_mount(&vol.disk(), &mnt, false)
                        .with_context(|| format!("cannot mount volume {name}"))?;
                }
                mounts::device_of(&mnt).with_context(|| format!("volume {name} is not mounted"))
            });
            match r {
                Ok(dev) => out.devices.push(dev),
                Err(e) => {
                    release_locked(store, inst);
                    return Err(e);
                }
            }
        }
    }
    let userns = match crate::userns::IdRange::of(inst) {
        Some(r) if !vms.is_empty() => Some(crate::userns::open(r)?),
        _ => None,
    };
    for (n, m) in vms.into_iter().enumerate() {
        let source = match &m.source {
            Source::Named(n) => volumes_dir(store).join(n).join("mnt"),
            Source::Host(p) => p.clone(),
        };
        let source = match &userns {
            Some(ns) => idmapped(store, inst, n, &source, ns).inspect_err(|_| {
                let _ = release(store, inst);
            })?,
            None => source,
        };
        let mut opts = vec!["rbind", "nosuid", "nodev"];
        if m.read_only {
            opts.push("ro");
        }
        let src = source.to_string_lossy();
        out.mounts
            .push(bundle::mount(&m.target, "bind", &src, &opts)?);
    }
    for t in inst.storage.tmpfs_mounts() {
        let mut opts = vec!["nosuid", "nodev"];
        opts.extend(t.options.iter().map(String::as_str));
        out.mounts
            .push(bundle::mount(&t.target, "tmpfs", "tmpfs", &opts)?);
    }
    Ok(out)
}

/// Where `inst`'s idmapped views of its volumes and bind sources are attached.
fn idmap_dir(store: &Store, inst: &Instance) -> PathBuf {
    store.instance_dir(&inst.id).join("idmap")
}

/// An idmapped view of `source` (the `n`th volume or bind source of
/// `inst`), attached under its instance directory: on-disk ids 0..65535
/// read and write there as the instance's range, as on its root.
fn idmapped(
    store: &Store,
    inst: &Instance,
    n: usize,
    source: &Path,
    userns: &OwnedFd,
) -> Result<PathBuf> {
    let target = idmap_dir(store, inst).join(n.to_string());
    std::fs::create_dir_all(idmap_dir(store, inst))?;
    mounts::unmount(&target)?;
    if source.is_dir() {
        std::fs::create_dir_all(&target)?;
    } else if !target.exists() {
        std::fs::File::create(&target)?;
    }
    crate::idmap::mount(source, &target, userns.as_fd(), false).with_context(|| {
        format!(
            "cannot give {} its view of {}: run it with --userns=host",
            inst.name,
            source.display()
        )
    })?;
    Ok(target)
}

/// Detach `inst`'s idmapped views (before the volumes they show unmount).
fn release_idmapped(store: &Store, inst: &Instance) -> Result<()> {
    let dir = idmap_dir(store, inst);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        mounts::unmount(&e.path())?;
    }
    Ok(())
}

/// The loop devices of the mounted volumes `inst` uses.
pub fn devices(store: &Store, inst: &Instance) -> Vec<(u64, u64)> {
    inst.storage
        .volume_names()
        .iter()
        .filter_map(|n| mounts::device_of(&volumes_dir(store).join(n).join("mnt")))
        .collect()
}

/// Unmount the volumes `inst` used that no other running instance uses
/// (idempotent; called at every stop).
pub fn release(store: &Store, inst: &Instance) -> Result<()> {
    release_idmapped(store, inst)?;
    if inst.storage.volume_names().is_empty() {
        return Ok(());
    }
    let _lock = lock(store)?;
    release_locked(store, inst);
    Ok(())
}

fn release_locked(store: &Store, inst: &Instance) {
    // A plain read: the caller may hold the store lock (refresh).
    let others: Vec<Instance> = store
        .load()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.id != inst.id && i.is_active())
        .collect();
    for name in inst.storage.volume_names() {
        if !users(&others, &name).is_empty() {
            continue;
        }
        if let Ok(vol) = get(store, &name) {
            if let Err(e) = unmount(&vol) {
                eprintln!("boxctl: cannot unmount volume {name}: {}", e.chain());
            }
        }
    }
}

/// Unmount a volume's disk and wait for its loop device to go.
fn unmount(vol: &Volume) -> Result<()> {
    let mnt = vol.mount_point();
    let dev = mounts::device_of(&mnt);
    mounts::unmount(&mnt)?;
    if let Some((major, minor)) = dev {
        // The instance's mount namespace, freed asynchronously, holds the
        // file system (and so the auto-clearing loop device) a little longer.
        loopdev::wait_released(major, minor, Duration::from_secs(5));
    }
    Ok(())
}

/// The mounts of `inst` besides its root, as `inspect` lists them.
pub fn describe(store: &Store, inst: &Instance) -> Value {
    let mut out: Vec<Value> = inst
        .storage
        .volume_mounts()
        .into_iter()
        .map(|m| match m.source {
            Source::Named(n) => json!({
                "type": "volume",
                "name": n,
                "source": volumes_dir(store).join(&n).join("volume.img"),
                "destination": m.target,
                "read_only": m.read_only,
            }),
            Source::Host(p) => json!({
                "type": "bind",
                "source": p,
                "destination": m.target,
                "read_only": m.read_only,
            }),
        })
        .collect();
    out.extend(
        inst.storage
            .tmpfs_mounts()
            .into_iter()
            .map(|t| json!({"type": "tmpfs", "destination": t.target, "options": t.options})),
    );
    Value::Array(out)
}
