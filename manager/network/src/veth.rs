//! Veth pairs joining an instance's network namespace to a bridge.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use netlink_packet_route::link::InfoKind;

use crate::error::{Error, Result};
use crate::names::{validate_host_ifname, validate_ifname};
use crate::netns;
use crate::nl::Handle;
use crate::owner::{Claim, Owner};

/// Attaches the namespace at `netns_path` to `bridge`.
///
/// Creates a veth pair whose host end `host_ifname` (must start with `bx`,
/// see [`crate::veth_name_for`]) is enslaved to `bridge` and up, and whose
/// other end is created directly inside the namespace as `ifname_in_ns`
/// (`eth0`, `eth1`, ...), given `addr/prefix` and brought up. When
/// `gateway_route` is given, a default route via it is added inside the
/// namespace only. On failure nothing is left behind.
pub fn attach(
    netns_path: &Path,
    bridge: &str,
    ifname_in_ns: &str,
    addr: Ipv4Addr,
    prefix: u8,
    gateway_route: Option<Ipv4Addr>,
    host_ifname: &str,
) -> Result<()> {
    validate_host_ifname(host_ifname)?;
    validate_ifname(ifname_in_ns)?;
    if !(1..=32).contains(&prefix) {
        return Err(Error::InvalidAddress {
            addr,
            subnet: format!("{addr}/{prefix}"),
            reason: "the prefix length must be between 1 and 32".into(),
        });
    }
    let ns = File::open(netns_path).map_err(|e| Error::Netns {
        path: netns_path.to_path_buf(),
        op: "open",
        source: e,
    })?;
    let mut nl = Handle::new()?;
    let br = nl
        .link_by_name(bridge)?
        .ok_or_else(|| Error::NoSuchInterface {
            name: bridge.to_string(),
            hint: "; create it with bridge::ensure first".into(),
        })?;
    if br.kind != Some(InfoKind::Bridge) {
        return Err(Error::WrongKind {
            name: bridge.to_string(),
            expected: "bridge",
        });
    }
    nl.create_veth(host_ifname, ifname_in_ns, ns.as_raw_fd())?;
    let configured = configure(
        &mut nl,
        netns_path,
        bridge,
        br.index,
        ifname_in_ns,
        addr,
        prefix,
        gateway_route,
        host_ifname,
    );
    if configured.is_err() {
        // Deleting the host end removes the peer as well.
        let _ = detach(host_ifname);
    }
    configured
}

#[allow(clippy::too_many_arguments)]
fn configure(
    nl: &mut Handle,
    netns_path: &Path,
    bridge: &str,
    bridge_index: u32,
    ifname_in_ns: &str,
    addr: Ipv4Addr,
    prefix: u8,
    gateway_route: Option<Ipv4Addr>,
    host_ifname: &str,
) -> Result<()> {
    let host = nl
        .link_by_name(host_ifname)?
        .ok_or_else(|| Error::NoSuchInterface {
            name: host_ifname.to_string(),
            hint: "; it vanished right after being created, retry".into(),
        })?;
    nl.set_controller(host.index, host_ifname, bridge_index)
        .map_err(|e| crate::bridge::full_bridge_error(e, bridge, host_ifname))?;
    nl.set_up(host.index, host_ifname)?;
    netns::run_in(netns_path, || -> Result<()> {
        let mut nl = Handle::new()?;
        let peer = nl
            .link_by_name(ifname_in_ns)?
            .ok_or_else(|| Error::NoSuchInterface {
                name: ifname_in_ns.to_string(),
                hint: format!(" in namespace {}", netns_path.display()),
            })?;
        nl.add_address(peer.index, ifname_in_ns, addr, prefix)?;
        nl.set_up(peer.index, ifname_in_ns)?;
        if let Some(gw) = gateway_route {
            nl.add_default_route(peer.index, ifname_in_ns, gw)?;
        }
        Ok(())
    })?
}

/// Removes the veth pair whose host end is `host_ifname` (the end inside the
/// namespace goes with it). Absent is not an error; refuses to delete an
/// interface that is not a veth.
pub fn detach(host_ifname: &str) -> Result<()> {
    validate_host_ifname(host_ifname)?;
    let mut nl = Handle::new()?;
    let Some(link) = veth_link(&mut nl, host_ifname)? else {
        return Ok(());
    };
    nl.delete_link(link.index, host_ifname)
}

/// Marks the host end `host_ifname` of a veth pair made by [`attach`] as
/// `owner`'s (see [`crate::owner`]), so that [`detach_owned`] of another
/// owner leaves it alone.
pub fn mark(host_ifname: &str, owner: &Owner) -> Result<()> {
    validate_host_ifname(host_ifname)?;
    let mut nl = Handle::new()?;
    let link = veth_link(&mut nl, host_ifname)?.ok_or_else(|| Error::NoSuchInterface {
        name: host_ifname.to_string(),
        hint: "; attach it first".into(),
    })?;
    owner.claim(&mut nl, &link, host_ifname, "veth", Claim::OwnOrUnmarked)
}

/// [`detach`] that refuses ([`Error::NotOwned`], pair untouched) a veth
/// marked as another owner's. An unmarked one is removed: it was made by a
/// boxctl older than the marks, or by one that died before marking it.
pub fn detach_owned(host_ifname: &str, owner: &Owner) -> Result<()> {
    validate_host_ifname(host_ifname)?;
    let mut nl = Handle::new()?;
    let Some(link) = veth_link(&mut nl, host_ifname)? else {
        return Ok(());
    };
    owner.check(&link, host_ifname, "veth", Claim::OwnOrUnmarked)?;
    nl.delete_link(link.index, host_ifname)
}

/// The veth called `host_ifname`: `None` when absent, an error when the
/// interface is not a veth.
fn veth_link(nl: &mut Handle, host_ifname: &str) -> Result<Option<crate::nl::Link>> {
    let link = nl.link_by_name(host_ifname)?;
    if link
        .as_ref()
        .is_some_and(|l| l.kind != Some(InfoKind::Veth))
    {
        return Err(Error::WrongKind {
            name: host_ifname.to_string(),
            expected: "veth",
        });
    }
    Ok(link)
}

/// Whether a host interface called `host_ifname` exists.
pub fn exists(host_ifname: &str) -> Result<bool> {
    Ok(Handle::new()?.link_by_name(host_ifname)?.is_some())
}
