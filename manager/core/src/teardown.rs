//! Driving an instance's runtime and releasing what a stopped instance holds,
//! shared by the life-cycle commands and the monitor.

use std::path::PathBuf;

use crate::error::{Context, Result};
use crate::instance_file::Instance;
use crate::runtime_cli::Runtime;
use crate::store::Store;
use crate::{instance_disk, networking};

/// The runtime driver for an instance.
pub fn runtime_for(store: &Store, inst: &Instance) -> Runtime {
    Runtime {
        bin: PathBuf::from(&inst.runtime),
        root: store.runtime_root(),
        log: Some(store.instance_dir(&inst.id).join("runtime.log")),
    }
}

/// Release what a stopped instance still holds: runtime state, mount (the
/// loop device goes with it), network, the volumes no other instance uses.
/// Idempotent.
pub fn teardown(store: &Store, inst: &Instance) -> Result<()> {
    let rt = runtime_for(store, inst);
    let mut first_err = None;
    if let Err(e) = rt.delete_force(&inst.id) {
        first_err.get_or_insert(e);
    }
    if let Err(e) = networking::teardown(store, inst) {
        first_err.get_or_insert(e);
    }
    if let Err(e) = instance_disk::unmount(store, inst) {
        first_err.get_or_insert(e);
    }
    if let Err(e) = crate::volumes::release(store, inst) {
        first_err.get_or_insert(e);
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Remove a stopped instance for good: release what it holds, delete its
/// directory (disk, bundle, logs), then its record.
pub fn purge(store: &Store, inst: &Instance) -> Result<()> {
    purge_files(store, inst)?;
    forget(store, std::slice::from_ref(inst))
}

/// [`purge`] but the record: release what it holds and delete its directory.
/// A record left without its directory (a crash here) is dropped by the next
/// [`crate::lifecycle::refresh`].
pub fn purge_files(store: &Store, inst: &Instance) -> Result<()> {
    teardown(store, inst)?;
    let dir = store.instance_dir(&inst.id);
    instance_disk::discard(store, inst);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    Ok(())
}

/// Remove the records of purged instances, all in one rewrite of the
/// instance file, and record their `rm` events.
pub fn forget(store: &Store, insts: &[Instance]) -> Result<()> {
    let ids: Vec<&str> = insts.iter().map(|i| i.id.as_str()).collect();
    store.remove_records(&ids)?;
    for inst in insts {
        crate::events::record(store, inst, crate::events::Action::Rm, None, None);
    }
    Ok(())
}
