//! Network glue between instances and the boxctl-network crate.
//!
//! Not integrated yet: the boxctl-network crate has no API so far. Instances
//! get `--net none` (a new, empty network namespace: loopback only) or
//! `--net host`; `--net NAME[:ADDR]` and `--publish` are refused with a
//! clear error until then.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::instance_file::Instance;
use crate::lifecycle::CreateSpec;
use crate::store::Store;

/// Check the network options of a new instance.
pub fn validate(_store: &Store, spec: &CreateSpec) -> Result<()> {
    match spec.net_mode.as_str() {
        "none" | "host" => {}
        other => bail!("network mode {other:?} is not available yet: use --net none or --net host"),
    }
    if !spec.networks.is_empty() {
        bail!("attaching instances to bridges is not available yet: use --net none or --net host");
    }
    if !spec.publish.is_empty() {
        bail!("--publish is not available yet");
    }
    Ok(())
}

/// Prepare the instance's network before the container is created; returns
/// a network namespace path to join, if any.
pub fn setup(_store: &Store, _inst: &Instance, _rootfs: &Path) -> Result<Option<PathBuf>> {
    Ok(None)
}

/// Called once the container's init runs (`pid`).
pub fn started(_store: &Store, _inst: &Instance, _pid: i32) -> Result<()> {
    Ok(())
}

/// Release the instance's network resources (idempotent).
pub fn teardown(_store: &Store, _inst: &Instance) -> Result<()> {
    Ok(())
}
