//! Linux bridges ("virtual switches") on the host, one per boxctl network.

use std::net::Ipv4Addr;

use netlink_packet_route::link::InfoKind;

use crate::error::{Error, Result};
use crate::names::{bridge_mac, validate_host_ifname};
use crate::nl::Handle;
use crate::owner::{Claim, Owner};

/// The most ports a Linux bridge takes: port numbers are 10 bits wide and
/// port 0 is reserved (`BR_MAX_PORTS - 1`, net/bridge/br_if.c); enslaving one
/// more interface fails with `EXFULL`.
pub const MAX_PORTS: usize = 1023;

/// Turns the kernel's answer to "attach `ifname` to `bridge`" into
/// [`Error::BridgeFull`] when the bridge has no port number left.
pub fn full_bridge_error(err: Error, bridge: &str, ifname: &str) -> Error {
    if err.raw_os_error() == Some(libc::EXFULL) {
        Error::BridgeFull {
            bridge: bridge.to_string(),
            ifname: ifname.to_string(),
            max: MAX_PORTS,
        }
    } else {
        err
    }
}

fn check_prefix(name: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
    if (1..=30).contains(&prefix) {
        Ok(())
    } else {
        Err(Error::InvalidAddress {
            addr,
            subnet: format!("{addr}/{prefix} on {name}"),
            reason: "the gateway prefix length must be between 1 and 30".into(),
        })
    }
}

/// Makes sure bridge `name` exists, is up and, when `gateway` is given,
/// carries that address and no other IPv4 address (so the host reaches the
/// instances; the kernel adds the connected route for the subnet itself,
/// and removes those of addresses taken away). Idempotent.
///
/// `name` must start with `bx` and be at most 15 bytes (see
/// [`crate::bridge_name_for`]). Fails with [`Error::WrongKind`] if an
/// interface of that name exists and is not a bridge. Addresses already on
/// the bridge are left alone.
pub fn ensure(name: &str, gateway: Option<(Ipv4Addr, u8)>) -> Result<()> {
    ensure_inner(name, gateway, None)
}

/// [`ensure`] for a bridge of `owner`'s: one it creates is marked as its
/// own (see [`crate::owner`]); one that exists is used only if `owner` may
/// claim it under `claim` ([`crate::Error::NotOwned`] otherwise, and the
/// bridge is not touched), and is then marked as `owner`'s if it was not.
pub fn ensure_owned(
    name: &str,
    gateway: Option<(Ipv4Addr, u8)>,
    owner: &Owner,
    claim: Claim,
) -> Result<()> {
    ensure_inner(name, gateway, Some((owner, claim)))
}

fn ensure_inner(
    name: &str,
    gateway: Option<(Ipv4Addr, u8)>,
    owner: Option<(&Owner, Claim)>,
) -> Result<()> {
    validate_host_ifname(name)?;
    if let Some((addr, prefix)) = gateway {
        check_prefix(name, addr, prefix)?;
    }
    let mut nl = Handle::new()?;
    let link = match nl.link_by_name(name)? {
        Some(link) => link,
        None => {
            let mac = owner.map_or_else(|| bridge_mac(name), |(o, _)| o.mac(name));
            match nl.create_bridge(name, mac) {
                // Someone else created it in between: check it below.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                other => other?,
            }
            nl.link_by_name(name)?
                .ok_or_else(|| Error::NoSuchInterface {
                    name: name.to_string(),
                    hint: "; it vanished right after being created, retry".into(),
                })?
        }
    };
    if link.kind != Some(InfoKind::Bridge) {
        return Err(Error::WrongKind {
            name: name.to_string(),
            expected: "bridge",
        });
    }
    if let Some((owner, claim)) = owner {
        owner.claim(&mut nl, &link, name, "bridge", claim)?;
    }
    if let Some((addr, prefix)) = gateway {
        // A bridge left over from an earlier network of the same name may
        // carry another subnet's gateway: only the requested one stays.
        for (old, old_prefix) in nl.addresses(link.index, name)? {
            if (old, old_prefix) != (addr, prefix) {
                nl.del_address(link.index, name, old, old_prefix)?;
            }
        }
        nl.add_address(link.index, name, addr, prefix)?;
    }
    if !link.up {
        nl.set_up(link.index, name)?;
    }
    Ok(())
}

/// Deletes bridge `name` (its addresses and connected routes go with it;
/// veths still attached are detached from it, not deleted). Absent is not an
/// error. Refuses to delete an interface that is not a bridge.
pub fn delete(name: &str) -> Result<()> {
    delete_inner(name, None)
}

/// [`delete`] for a bridge of `owner`'s: refuses ([`crate::Error::NotOwned`],
/// bridge untouched) one `owner` may not claim under `claim`.
pub fn delete_owned(name: &str, owner: &Owner, claim: Claim) -> Result<()> {
    delete_inner(name, Some((owner, claim)))
}

fn delete_inner(name: &str, owner: Option<(&Owner, Claim)>) -> Result<()> {
    validate_host_ifname(name)?;
    let mut nl = Handle::new()?;
    let Some(link) = nl.link_by_name(name)? else {
        return Ok(());
    };
    if link.kind != Some(InfoKind::Bridge) {
        return Err(Error::WrongKind {
            name: name.to_string(),
            expected: "bridge",
        });
    }
    if let Some((owner, claim)) = owner {
        owner.check(&link, name, "bridge", claim)?;
    }
    nl.delete_link(link.index, name)
}

/// Whether a bridge called `name` exists (an interface of that name that is
/// not a bridge answers `false`).
pub fn exists(name: &str) -> Result<bool> {
    let mut nl = Handle::new()?;
    Ok(nl
        .link_by_name(name)?
        .is_some_and(|l| l.kind == Some(InfoKind::Bridge)))
}

/// The IPv4 addresses (with prefix length) on bridge `name`.
pub fn addresses(name: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
    let mut nl = Handle::new()?;
    let link = nl
        .link_by_name(name)?
        .ok_or_else(|| Error::NoSuchInterface {
            name: name.to_string(),
            hint: "; create it with bridge::ensure".into(),
        })?;
    nl.addresses(link.index, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exfull_names_the_full_bridge() {
        let exfull = Error::Netlink {
            op: "attach interface bxv1 to its bridge".into(),
            detail: String::new(),
            source: std::io::Error::from_raw_os_error(libc::EXFULL),
        };
        let e = full_bridge_error(exfull, "bx-net", "bxv1");
        assert!(matches!(e, Error::BridgeFull { max: 1023, .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("bridge bx-net is full") && text.contains("another network"),
            "{text}"
        );
        let other = Error::Netlink {
            op: "attach".into(),
            detail: String::new(),
            source: std::io::Error::from_raw_os_error(libc::EPERM),
        };
        assert!(matches!(
            full_bridge_error(other, "bx-net", "bxv1"),
            Error::Netlink { .. }
        ));
    }
}
