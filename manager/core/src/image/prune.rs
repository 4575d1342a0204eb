//! `image prune`: remove dangling images (a damaged record, or a disk that
//! is gone, e.g. with a lost storage pool) and, with `all`, every image no
//! instance uses.

use crate::allocation::allocated;
use crate::error::Result;
use crate::prune::PruneReport;
use crate::store::Store;

/// What [`prune`] would remove now, with the space it would free.
pub fn plan(store: &Store, all: bool) -> Result<PruneReport> {
    let list = crate::lifecycle::refresh(store)?;
    let mut r = PruneReport::default();
    let mut names: Vec<String> = std::fs::read_dir(store.images_dir())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    for name in names {
        if list.iter().any(|i| i.image == name) {
            continue;
        }
        let dangling = super::get(store, &name).map_or(true, |img| !img.disk.exists());
        if dangling || all {
            r.reclaimed += allocated(&store.image_dir(&name));
            r.images.push(name);
        }
    }
    Ok(r)
}

/// Remove what [`plan`] lists, each re-checked under the store lock (an
/// image an instance started to use meanwhile stays).
pub fn prune(store: &Store, all: bool) -> Result<PruneReport> {
    let todo = plan(store, all)?;
    let mut done = PruneReport::default();
    for name in todo.images {
        let size = allocated(&store.image_dir(&name));
        match super::remove_unused(store, &name) {
            Ok(()) => {
                done.images.push(name);
                done.reclaimed += size;
            }
            Err(e) => done.failed.push(format!("image {name}: {}", e.chain())),
        }
    }
    Ok(done)
}
