//! Space on disk: what images, instances and volumes take (`system df`)
//! and what pruning would give back.

use serde::Serialize;

use crate::allocation::allocated;
use crate::error::Result;
use crate::store::Store;
use crate::{image, volumes};

/// One row of `system df`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UsageRow {
    /// `images`, `instances` or `volumes`.
    pub kind: String,
    /// How many there are.
    pub total: usize,
    /// How many are in use (images and volumes used by an instance,
    /// instances running).
    pub active: usize,
    /// Bytes on disk.
    pub size: u64,
    /// Bytes that removing the unused ones would free (what `prune`, with
    /// `--volumes` for volumes, removes).
    pub reclaimable: u64,
    /// The storage pool (row `pool`: total counts its disks, active the
    /// instance disks, size its bytes on the host file system).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<crate::pool::PoolUsage>,
}

impl UsageRow {
    fn empty(kind: &str) -> UsageRow {
        UsageRow {
            kind: kind.into(),
            total: 0,
            active: 0,
            size: 0,
            reclaimable: 0,
            pool: None,
        }
    }
}

/// Disk usage of images, instances and volumes.
pub fn usage(store: &Store) -> Result<Vec<UsageRow>> {
    let list = crate::lifecycle::refresh(store)?;
    let mut images = UsageRow::empty("images");
    for img in image::list(store)? {
        let size = allocated(&store.image_dir(&img.meta.name));
        images.total += 1;
        images.size += size;
        if list.iter().any(|i| i.image == img.meta.name) {
            images.active += 1;
        } else {
            images.reclaimable += size;
        }
    }
    let mut instances = UsageRow::empty("instances");
    instances.total = list.len();
    for i in &list {
        let size = allocated(&store.instance_dir(&i.id));
        instances.size += size;
        if i.is_active() {
            instances.active += 1;
        } else if i.status == crate::instance_file::Status::Exited {
            instances.reclaimable += size;
        }
    }
    let mut vols = UsageRow::empty("volumes");
    for v in volumes::list(store)? {
        let size = allocated(&v.dir);
        vols.total += 1;
        vols.size += size;
        if volumes::users(&list, &v.meta.name).is_empty() {
            vols.reclaimable += size;
        } else {
            vols.active += 1;
        }
    }
    let mut rows = vec![images, instances, vols];
    if let Some(pool) = crate::pool::existing(store)? {
        let u = pool.usage()?;
        let mut row = UsageRow::empty("pool");
        row.total = u.images + u.instances;
        row.active = u.instances;
        row.size = u.host_allocated;
        row.pool = Some(u);
        rows.push(row);
    }
    Ok(rows)
}
