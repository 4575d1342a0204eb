//! Published ports (`--publish`): the monitor's userspace forwarder, which
//! serves every client, and the in-kernel path that takes clients on this
//! host straight to the instance when it can be made
//! (`boxctl_network::local_path`). Its absence is one line in the monitor's
//! log, never an error: the forwarder serves those clients too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use boxctl_network::forward::{Forwarder, RunningForwarder};
use boxctl_network::local_path::LocalPath;

use crate::error::{Context, Result};
use crate::instance_file::Instance;
use crate::networking::{self, parse_publish};
use crate::store::Store;

/// `BOXCTL_PUBLISH_BPF=off` keeps every client on the forwarder.
pub const BPF_SWITCH: &str = "BOXCTL_PUBLISH_BPF";

/// The published ports of a running instance; dropping it closes them.
pub struct Published {
    // Declared first: detached before the forwarder stops.
    local: Option<LocalPath>,
    forwarder: RunningForwarder,
}

impl Published {
    /// Whether host clients take the in-kernel path.
    pub fn has_local_path(&self) -> bool {
        self.local.is_some()
    }

    /// Detaches the in-kernel path, then stops the forwarder.
    pub fn stop(self) -> Result<()> {
        drop(self.local);
        Ok(self.forwarder.stop()?)
    }
}

/// Starts the forwarder for `inst`'s published ports, and the in-kernel
/// path unless it is switched off or cannot be made (said on stderr, the
/// monitor's log). `None` without published ports.
pub fn start(store: &Store, inst: &Instance) -> Result<Option<Published>> {
    if inst.publish.is_empty() {
        return Ok(None);
    }
    let first = inst
        .attachments()
        .into_iter()
        .next()
        .context("--publish needs an address on a network")?;
    let addr = first
        .address
        .split('/')
        .next()
        .and_then(|s| s.parse::<Ipv4Addr>().ok())
        .context("--publish needs an address on a network")?;
    let mut fw = Forwarder::new()?;
    let mut routes = Vec::new();
    for p in &inst.publish {
        let (listen, port) = parse_publish(p)?;
        let target = SocketAddr::new(IpAddr::V4(addr), port);
        let bound = fw
            .add(listen, target)
            .with_context(|| format!("cannot publish {p}: is host port {} free?", listen.port()))?;
        routes.push((bound, target));
    }
    let forwarder = fw.spawn()?;
    let local = match local_path(store, &first.network, &routes) {
        Ok(path) => Some(path),
        Err(why) => {
            eprintln!(
                "boxctl monitor: {}: host clients of the published ports go through the userspace forwarder: {why}",
                inst.name
            );
            None
        }
    };
    Ok(Some(Published { local, forwarder }))
}

/// The in-kernel path, or why not.
fn local_path(
    store: &Store,
    network: &str,
    routes: &[(SocketAddr, SocketAddr)],
) -> std::result::Result<LocalPath, String> {
    if std::env::var(BPF_SWITCH).is_ok_and(|v| v == "off") {
        return Err(format!("switched off by {BPF_SWITCH}=off"));
    }
    let nets = networking::load(store).map_err(|e| e.to_string())?;
    if nets.get(network).is_some_and(|n| n.internal) {
        return Err(format!(
            "network {network} is internal: the host has no address on it to reach the instance"
        ));
    }
    LocalPath::attach(routes).map_err(|e| e.to_string())
}
