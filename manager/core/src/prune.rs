//! `prune`: remove exited instances, then the images no instance uses, and
//! (only when asked) the volumes no instance names.

use serde::Serialize;

use crate::allocation::allocated;
use crate::error::Result;
use crate::instance_file::Status;
use crate::store::Store;
use crate::{image, lifecycle, volumes};

/// What a prune removes (or, from [`plan`], would remove).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PruneReport {
    /// Names of exited instances.
    pub instances: Vec<String>,
    /// Images no remaining instance uses.
    pub images: Vec<String>,
    /// Volumes no remaining instance names (with `volumes` only).
    pub volumes: Vec<String>,
    /// Bytes freed on disk.
    pub reclaimed: u64,
    /// What could not be removed, one message each.
    pub failed: Vec<String>,
}

/// What [`prune`] would remove now, with the space it would free.
pub fn plan(store: &Store, with_volumes: bool) -> Result<PruneReport> {
    let list = lifecycle::refresh(store)?;
    let mut r = PruneReport::default();
    let (gone, kept): (Vec<_>, Vec<_>) = list
        .iter()
        .partition(|i| i.status == Status::Exited && !i.session.auto_remove);
    for i in gone {
        r.instances.push(i.name.clone());
        r.reclaimed += allocated(&store.instance_dir(&i.id));
    }
    for img in image::list(store)? {
        if !kept.iter().any(|i| i.image == img.meta.name) {
            r.reclaimed += allocated(&store.image_dir(&img.meta.name));
            r.images.push(img.meta.name);
        }
    }
    if with_volumes {
        let kept: Vec<_> = kept.into_iter().cloned().collect();
        for v in volumes::list(store)? {
            if volumes::users(&kept, &v.meta.name).is_empty() {
                r.reclaimed += allocated(&v.dir);
                r.volumes.push(v.meta.name);
            }
        }
    }
    Ok(r)
}

/// Remove exited instances, then unused images, then (with `with_volumes`)
/// unused volumes. Each removal re-checks under the store lock, so what
/// started to be used meanwhile stays; failures are listed in the report.
pub fn prune(store: &Store, with_volumes: bool) -> Result<PruneReport> {
    let todo = plan(store, with_volumes)?;
    let mut done = PruneReport::default();
    let list = store.load()?;
    for name in &todo.instances {
        let Ok(inst) = crate::store::find_in(&list, name).cloned() else {
            continue;
        };
        let size = allocated(&store.instance_dir(&inst.id));
        // Only if still exited: a `start` since the plan keeps it.
        let r = match store.find(&inst.id) {
            Ok(cur) if cur.status == Status::Exited => lifecycle::remove(store, &inst.id, false),
            _ => continue,
        };
        match r {
            Ok(()) => {
                done.instances.push(name.clone());
                done.reclaimed += size;
            }
            Err(e) => done.failed.push(format!("instance {name}: {}", e.chain())),
        }
    }
    for name in &todo.images {
        let size = allocated(&store.image_dir(name));
        match image::remove(store, name) {
            Ok(()) => {
                done.images.push(name.clone());
                done.reclaimed += size;
            }
            Err(e) => done.failed.push(format!("image {name}: {}", e.chain())),
        }
    }
    for name in &todo.volumes {
        let Ok(v) = volumes::get(store, name) else {
            continue;
        };
        let size = allocated(&v.dir);
        match volumes::remove(store, name) {
            Ok(()) => {
                done.volumes.push(name.clone());
                done.reclaimed += size;
            }
            Err(e) => done.failed.push(format!("volume {name}: {}", e.chain())),
        }
    }
    Ok(done)
}
