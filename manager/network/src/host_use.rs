//! Whether a subnet is already in use on the host: by a route of any
//! routing table (default routes aside) or by an address of any interface.
//! A bridge on such a subnet would take traffic meant for a VPN, podman's
//! `podman0` (10.88.0.0/16), docker's `docker0` or another boxctl store.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::ipam::Subnet;
use crate::nl::{Handle, Route};

/// The main routing table's id.
const TABLE_MAIN: u32 = 254;
/// The local routing table's id (the host's own and broadcast addresses).
const TABLE_LOCAL: u32 = 255;

/// A host route or address overlapping a subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostUse {
    /// A route whose destination overlaps the subnet.
    Route {
        /// The route.
        route: Route,
        /// Name of its output interface, when it has one.
        dev: Option<String>,
    },
    /// An interface address whose network overlaps the subnet.
    Address {
        /// The address.
        addr: Ipv4Addr,
        /// Its prefix length.
        prefix: u8,
        /// The interface carrying it.
        dev: String,
    },
}

impl fmt::Display for HostUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostUse::Route { route, dev } => {
                write!(f, "route {}/{}", route.destination, route.prefix)?;
                if let Some(gw) = route.gateway {
                    write!(f, " via {gw}")?;
                }
                if let Some(dev) = dev {
                    write!(f, " dev {dev}")?;
                }
                if route.table != TABLE_MAIN {
                    write!(f, " table {}", route.table)?;
                }
                Ok(())
            }
            HostUse::Address { addr, prefix, dev } => {
                write!(f, "address {addr}/{prefix} on {dev}")
            }
        }
    }
}

/// A snapshot of the host's IPv4 routes (every table), addresses and
/// interface names, to check subnets against.
#[derive(Debug, Clone, Default)]
pub struct HostNetworks {
    routes: Vec<Route>,
    /// (link index, address, prefix).
    addresses: Vec<(u32, Ipv4Addr, u8)>,
    names: HashMap<u32, String>,
}

impl HostNetworks {
    /// Reads the caller's network namespace over netlink.
    pub fn read() -> Result<HostNetworks> {
        let mut nl = Handle::new()?;
        Ok(HostNetworks {
            routes: nl.ipv4_routes()?,
            addresses: nl.all_addresses()?,
            names: nl.link_names()?.into_iter().collect(),
        })
    }

    /// What overlaps `subnet`: main-table routes first, then other tables,
    /// then addresses. Default routes (prefix 0) do not count; neither does
    /// anything on the interface called `except` (the caller's own bridge).
    pub fn overlapping(&self, subnet: &Subnet, except: Option<&str>) -> Vec<HostUse> {
        let names = &self.names;
        let excepted = |index: Option<u32>| {
            except.is_some() && index.and_then(|i| names.get(&i)).map(String::as_str) == except
        };
        let rank = |r: &Route| match r.table {
            TABLE_MAIN => 0,
            TABLE_LOCAL => 2,
            _ => 1,
        };
        let mut hits: Vec<&Route> = self
            .routes
            .iter()
            .filter(|r| r.prefix > 0 && subnet.overlaps_prefix(r.destination, r.prefix))
            .filter(|r| !excepted(r.oif))
            .collect();
        hits.sort_by_key(|r| rank(r));
        let mut out: Vec<HostUse> = hits
            .into_iter()
            .map(|r| HostUse::Route {
                route: r.clone(),
                dev: r.oif.and_then(|i| names.get(&i)).cloned(),
            })
            .collect();
        out.extend(
            self.addresses
                .iter()
                .filter(|(i, addr, prefix)| {
                    subnet.overlaps_prefix(*addr, *prefix) && !excepted(Some(*i))
                })
                .map(|(i, addr, prefix)| HostUse::Address {
                    addr: *addr,
                    prefix: *prefix,
                    dev: names.get(i).cloned().unwrap_or_else(|| format!("#{i}")),
                }),
        );
        out
    }
}

/// The host's routes and addresses that overlap `subnet`, read now; see
/// [`HostNetworks::overlapping`] for the order and for `except`.
pub fn host_uses(subnet: &Subnet, except: Option<&str>) -> Result<Vec<HostUse>> {
    Ok(HostNetworks::read()?.overlapping(subnet, except))
}

/// Refuses ([`Error::SubnetInUse`], naming the first route or address) a
/// subnet the host already uses; see [`host_uses`].
pub fn check_subnet_free(subnet: &Subnet, except: Option<&str>) -> Result<()> {
    match host_uses(subnet, except)?.into_iter().next() {
        Some(conflict) => Err(Error::SubnetInUse {
            subnet: subnet.to_string(),
            conflict: conflict.to_string(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn route(dest: &str, prefix: u8, table: u32, oif: Option<u32>) -> Route {
        Route {
            table,
            destination: ip(dest),
            prefix,
            gateway: None,
            oif,
            protocol: 2,
            scope: 253,
            kind: 1,
            priority: None,
            pref_source: None,
        }
    }

    #[test]
    fn routes_and_addresses_that_overlap() {
        let names: HashMap<u32, String> = [(1, "lo"), (2, "eth0"), (3, "podman0"), (4, "bx-web")]
            .into_iter()
            .map(|(i, n)| (i, n.to_string()))
            .collect();
        let mut default = route("0.0.0.0", 0, TABLE_MAIN, Some(2));
        default.gateway = Some(ip("192.168.1.1"));
        let routes = [
            default,
            route("192.168.1.0", 24, TABLE_MAIN, Some(2)),
            route("10.88.0.1", 32, TABLE_LOCAL, Some(3)),
            route("10.88.0.0", 16, TABLE_MAIN, Some(3)),
            route("10.50.0.0", 16, 51820, None),
            route("10.60.1.0", 24, TABLE_MAIN, Some(4)),
        ];
        let addresses = [
            (1, ip("127.0.0.1"), 8),
            (2, ip("192.168.1.7"), 24),
            (3, ip("10.88.0.1"), 16),
            (4, ip("10.60.1.1"), 24),
        ];
        let host = HostNetworks {
            routes: routes.to_vec(),
            addresses: addresses.to_vec(),
            names,
        };
        let check = |s: &str, except: Option<&str>| -> Vec<String> {
            let subnet: Subnet = s.parse().unwrap();
            host.overlapping(&subnet, except)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            check("10.88.5.0/24", None),
            [
                "route 10.88.0.0/16 dev podman0",
                "address 10.88.0.1/16 on podman0"
            ]
        );
        // Main table first, the local table last.
        assert_eq!(
            check("10.88.0.0/24", None),
            [
                "route 10.88.0.0/16 dev podman0",
                "route 10.88.0.1/32 dev podman0 table 255",
                "address 10.88.0.1/16 on podman0"
            ]
        );
        // The default route alone is no overlap.
        assert!(check("10.210.200.0/24", None).is_empty());
        // A wider subnet covering a route overlaps it too.
        assert_eq!(
            check("10.0.0.0/8", None)[0],
            "route 10.88.0.0/16 dev podman0"
        );
        // Routes of other tables count (a VPN's policy table).
        assert_eq!(
            check("10.50.3.0/24", None),
            ["route 10.50.0.0/16 table 51820"]
        );
        assert_eq!(check("127.0.0.0/24", None), ["address 127.0.0.1/8 on lo"]);
        // The caller's own bridge is left out.
        assert!(check("10.60.1.0/24", Some("bx-web")).is_empty());
        assert_eq!(check("10.60.1.0/24", Some("bx-other")).len(), 2);
    }

    #[test]
    fn error_names_the_route() {
        let err = Error::SubnetInUse {
            subnet: "10.88.5.0/24".into(),
            conflict: HostUse::Route {
                route: route("10.88.0.0", 16, TABLE_MAIN, Some(3)),
                dev: Some("podman0".into()),
            }
            .to_string(),
        };
        assert_eq!(
            err.to_string(),
            "subnet 10.88.5.0/24 overlaps host route 10.88.0.0/16 dev podman0: choose another subnet"
        );
    }
}
