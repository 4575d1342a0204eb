//! IPv4 subnets and address allocation (pure, no system access).
//!
//! The manager keeps an [`Ipam`] per network in its own state file (it is
//! `Serialize`/`Deserialize`), allocates the lowest free host address for a
//! new instance with [`Ipam::allocate`] or checks a user-chosen one with
//! [`Ipam::reserve`], and gives it back with [`Ipam::release`].

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An IPv4 subnet such as `10.209.0.0/24` (prefix 1..=30, no host bits set).
///
/// Serialized as its string form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// Builds a subnet from its network address and prefix length.
    ///
    /// Refuses prefixes outside 1..=30 (a /31 or /32 has no room for a
    /// gateway and an instance) and addresses with host bits set.
    pub fn new(network: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        let input = format!("{network}/{prefix}");
        if !(1..=30).contains(&prefix) {
            return Err(Error::InvalidSubnet {
                input,
                reason: "the prefix length must be between 1 and 30".into(),
            });
        }
        let mask = mask(prefix);
        let bits = u32::from(network);
        if bits & !mask != 0 {
            return Err(Error::InvalidSubnet {
                input,
                reason: format!(
                    "host bits are set; did you mean {}/{prefix}?",
                    Ipv4Addr::from(bits & mask)
                ),
            });
        }
        Ok(Subnet { network, prefix })
    }

    /// The network address (`10.209.0.0` for `10.209.0.0/24`).
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length (`24` for `10.209.0.0/24`).
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The netmask (`255.255.255.0` for a /24).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix))
    }

    /// The broadcast address (`10.209.0.255` for `10.209.0.0/24`).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// The default gateway: the first host address (`10.209.0.1`).
    pub fn default_gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Whether `addr` lies in the subnet (network and broadcast included).
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether `addr` is a host address of the subnet (not network or broadcast).
    pub fn is_host(&self, addr: Ipv4Addr) -> bool {
        self.contains(addr) && addr != self.network && addr != self.broadcast()
    }

    /// Whether this subnet shares any address with `other`.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.overlaps_prefix(other.network, other.prefix)
    }

    /// Whether this subnet shares any address with the block
    /// `addr/prefix` (any prefix 0..=32, e.g. a route's destination; a
    /// prefix of 0 covers everything).
    pub fn overlaps_prefix(&self, addr: Ipv4Addr, prefix: u8) -> bool {
        let shorter = self.prefix.min(prefix.min(32));
        let m = mask(shorter);
        u32::from(self.network) & m == u32::from(addr) & m
    }

    /// Number of host addresses (network and broadcast excluded).
    pub fn host_count(&self) -> u32 {
        (!mask(self.prefix)) - 1
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = Error;

    fn from_str(s: &str) -> Result<Subnet> {
        let bad = |reason: &str| Error::InvalidSubnet {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let (addr, prefix) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| bad("expected ADDRESS/PREFIX, e.g. 10.209.0.0/24"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("the address is not a dotted-quad IPv4 address"))?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the prefix length is not a number"));
        }
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| bad("the prefix length must be between 1 and 30"))?;
        Subnet::new(addr, prefix)
    }
}

impl TryFrom<String> for Subnet {
    type Error = Error;
    fn try_from(s: String) -> Result<Subnet> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// Address bookkeeping for one network: its subnet, gateway and the host
/// addresses in use. Pure data; serializable into the manager's state
/// (deserializing re-checks every address, so a damaged state file is
/// refused rather than trusted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "IpamState")]
pub struct Ipam {
    subnet: Subnet,
    gateway: Ipv4Addr,
    used: BTreeSet<Ipv4Addr>,
}

/// The unchecked serialized form of [`Ipam`].
#[derive(Deserialize)]
struct IpamState {
    subnet: Subnet,
    gateway: Ipv4Addr,
    used: BTreeSet<Ipv4Addr>,
}

impl TryFrom<IpamState> for Ipam {
    type Error = Error;
    fn try_from(s: IpamState) -> Result<Ipam> {
        Ipam::with_used(s.subnet, s.gateway, s.used)
    }
}

impl Ipam {
    /// A new allocator with the default gateway (first host address) and no
    /// address in use.
    pub fn new(subnet: Subnet) -> Ipam {
        Ipam {
            subnet,
            gateway: subnet.default_gateway(),
            used: BTreeSet::new(),
        }
    }

    /// A new allocator with an explicit gateway, which must be a host
    /// address of the subnet.
    pub fn with_gateway(subnet: Subnet, gateway: Ipv4Addr) -> Result<Ipam> {
        if !subnet.is_host(gateway) {
            return Err(Error::InvalidAddress {
                addr: gateway,
                subnet: subnet.to_string(),
                reason: "a gateway must be a host address inside the subnet".into(),
            });
        }
        Ok(Ipam {
            subnet,
            gateway,
            used: BTreeSet::new(),
        })
    }

    /// Rebuilds an allocator from addresses already handed out (for example
    /// read back from the manager's state); each one is checked like
    /// [`Ipam::reserve`].
    pub fn with_used(
        subnet: Subnet,
        gateway: Ipv4Addr,
        used: impl IntoIterator<Item = Ipv4Addr>,
    ) -> Result<Ipam> {
        let mut ipam = Ipam::with_gateway(subnet, gateway)?;
        for addr in used {
            ipam.reserve(addr)?;
        }
        Ok(ipam)
    }

    /// The subnet.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// The gateway address (put on the bridge).
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// Addresses in use, in ascending order.
    pub fn used(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.used.iter().copied()
    }

    /// Whether `addr` is handed out.
    pub fn is_used(&self, addr: Ipv4Addr) -> bool {
        self.used.contains(&addr)
    }

    /// Hands out the lowest free host address (never the gateway).
    pub fn allocate(&mut self) -> Result<Ipv4Addr> {
        let first = u32::from(self.subnet.network()) + 1;
        let last = u32::from(self.subnet.broadcast()) - 1;
        let gateway = u32::from(self.gateway);
        let mut candidate = first;
        // `used` is sorted: walk it alongside the candidate.
        let mut used = self.used.range(Ipv4Addr::from(first)..).peekable();
        while candidate <= last {
            if candidate == gateway {
                candidate += 1;
                continue;
            }
            match used.peek().map(|a| u32::from(**a)) {
                Some(u) if u < candidate => {
                    used.next();
                }
                Some(u) if u == candidate => {
                    used.next();
                    candidate += 1;
                }
                _ => break,
            }
        }
        if candidate > last {
            return Err(Error::SubnetExhausted {
                subnet: self.subnet.to_string(),
            });
        }
        let addr = Ipv4Addr::from(candidate);
        self.used.insert(addr);
        Ok(addr)
    }

    /// Checks whether `addr` could be reserved, without reserving it.
    pub fn check(&self, addr: Ipv4Addr) -> Result<()> {
        let refuse = |reason: &str| {
            Err(Error::InvalidAddress {
                addr,
                subnet: self.subnet.to_string(),
                reason: reason.to_string(),
            })
        };
        if !self.subnet.contains(addr) {
            return refuse("it is outside the subnet; pick an address inside it");
        }
        if addr == self.subnet.network() {
            return refuse("it is the network address");
        }
        if addr == self.subnet.broadcast() {
            return refuse("it is the broadcast address");
        }
        if addr == self.gateway {
            return refuse("it is the gateway address");
        }
        if self.used.contains(&addr) {
            return refuse("it is already used by another instance");
        }
        Ok(())
    }

    /// Reserves a static address chosen by the user.
    pub fn reserve(&mut self, addr: Ipv4Addr) -> Result<()> {
        self.check(addr)?;
        self.used.insert(addr);
        Ok(())
    }

    /// Gives an address back; returns whether it was in use.
    pub fn release(&mut self, addr: Ipv4Addr) -> bool {
        self.used.remove(&addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_formats() {
        let s: Subnet = "10.209.0.0/24".parse().unwrap();
        assert_eq!(s.network(), ip("10.209.0.0"));
        assert_eq!(s.prefix(), 24);
        assert_eq!(s.netmask(), ip("255.255.255.0"));
        assert_eq!(s.broadcast(), ip("10.209.0.255"));
        assert_eq!(s.default_gateway(), ip("10.209.0.1"));
        assert_eq!(s.host_count(), 254);
        assert_eq!(s.to_string(), "10.209.0.0/24");
        let s: Subnet = "172.16.0.0/12".parse().unwrap();
        assert_eq!(s.broadcast(), ip("172.31.255.255"));
        assert!(s.contains(ip("172.20.1.1")));
        assert!(!s.contains(ip("172.32.0.1")));
    }

    #[test]
    fn overlaps() {
        let a: Subnet = "10.209.1.0/24".parse().unwrap();
        let wide: Subnet = "10.209.0.0/16".parse().unwrap();
        let other: Subnet = "10.89.0.0/24".parse().unwrap();
        assert!(a.overlaps(&wide) && wide.overlaps(&a));
        assert!(!a.overlaps(&other) && !other.overlaps(&a));
        assert!(a.overlaps(&a));
        assert!(a.overlaps_prefix(ip("10.209.1.77"), 32));
        assert!(!a.overlaps_prefix(ip("10.209.2.77"), 32));
        assert!(a.overlaps_prefix(ip("10.0.0.0"), 8));
        assert!(a.overlaps_prefix(ip("0.0.0.0"), 0));
    }

    #[test]
    fn rejects_bad_subnets() {
        for bad in [
            "10.209.0.0",
            "10.209.0.0/",
            "10.209.0.0/33",
            "10.209.0.0/31",
            "10.209.0.0/0",
            "10.209.0.0/+4",
            "10.209.0/24",
            "10.209.0.5/24",
            "banana/24",
        ] {
            let err = bad.parse::<Subnet>().unwrap_err();
            assert!(
                matches!(err, Error::InvalidSubnet { .. }),
                "{bad}: unexpected {err:?}"
            );
        }
        let err = "10.209.0.5/24".parse::<Subnet>().unwrap_err().to_string();
        assert!(err.contains("did you mean 10.209.0.0/24"), "{err}");
    }

    #[test]
    fn allocates_lowest_free_skipping_gateway() {
        let mut ipam = Ipam::new("10.209.0.0/24".parse().unwrap());
        assert_eq!(ipam.allocate().unwrap(), ip("10.209.0.2"));
        assert_eq!(ipam.allocate().unwrap(), ip("10.209.0.3"));
        ipam.reserve(ip("10.209.0.5")).unwrap();
        assert_eq!(ipam.allocate().unwrap(), ip("10.209.0.4"));
        assert_eq!(ipam.allocate().unwrap(), ip("10.209.0.6"));
        assert!(ipam.release(ip("10.209.0.3")));
        assert!(!ipam.release(ip("10.209.0.3")));
        assert_eq!(ipam.allocate().unwrap(), ip("10.209.0.3"));
    }

    #[test]
    fn gateway_in_the_middle() {
        let subnet: Subnet = "10.1.0.0/29".parse().unwrap();
        let mut ipam = Ipam::with_gateway(subnet, ip("10.1.0.3")).unwrap();
        let got: Vec<_> = (0..5).map(|_| ipam.allocate().unwrap()).collect();
        assert_eq!(
            got,
            ["10.1.0.1", "10.1.0.2", "10.1.0.4", "10.1.0.5", "10.1.0.6"].map(ip)
        );
        assert!(matches!(
            ipam.allocate(),
            Err(Error::SubnetExhausted { .. })
        ));
        assert!(Ipam::with_gateway(subnet, ip("10.1.0.7")).is_err());
        assert!(Ipam::with_gateway(subnet, ip("10.1.0.0")).is_err());
        assert!(Ipam::with_gateway(subnet, ip("10.2.0.1")).is_err());
    }

    #[test]
    fn exhausts_small_subnet() {
        let mut ipam = Ipam::new("192.168.7.0/30".parse().unwrap());
        assert_eq!(ipam.allocate().unwrap(), ip("192.168.7.2"));
        let err = ipam.allocate().unwrap_err();
        assert!(err.to_string().contains("192.168.7.0/30"), "{err}");
    }

    #[test]
    fn allocation_with_gateway_just_before_a_used_address() {
        // used = {.2}; gateway .1 => next is .3
        let subnet: Subnet = "10.0.0.0/24".parse().unwrap();
        let mut ipam = Ipam::with_used(subnet, ip("10.0.0.1"), [ip("10.0.0.2")]).unwrap();
        assert_eq!(ipam.allocate().unwrap(), ip("10.0.0.3"));
        // gateway .3, used {.1, .2} => .4
        let mut ipam =
            Ipam::with_used(subnet, ip("10.0.0.3"), [ip("10.0.0.1"), ip("10.0.0.2")]).unwrap();
        assert_eq!(ipam.allocate().unwrap(), ip("10.0.0.4"));
    }

    #[test]
    fn rejects_bad_static_addresses() {
        let mut ipam = Ipam::new("10.209.0.0/24".parse().unwrap());
        ipam.reserve(ip("10.209.0.10")).unwrap();
        for (addr, why) in [
            ("10.89.0.10", "outside"),
            ("10.209.0.0", "network address"),
            ("10.209.0.255", "broadcast"),
            ("10.209.0.1", "gateway"),
            ("10.209.0.10", "already used"),
        ] {
            let err = ipam.reserve(ip(addr)).unwrap_err().to_string();
            assert!(err.contains(why), "{addr}: {err}");
        }
        assert_eq!(ipam.used().collect::<Vec<_>>(), vec![ip("10.209.0.10")]);
    }

    #[test]
    fn serde_round_trip() {
        let mut ipam = Ipam::new("10.209.0.0/24".parse().unwrap());
        ipam.allocate().unwrap();
        ipam.reserve(ip("10.209.0.77")).unwrap();
        let json = serde_json::to_string(&ipam).unwrap();
        assert!(json.contains("\"10.209.0.0/24\""), "{json}");
        let back: Ipam = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ipam);
        assert!(serde_json::from_str::<Subnet>("\"10.209.0.3/24\"").is_err());
        let damaged = json.replace("10.209.0.77", "10.99.0.77");
        let err = serde_json::from_str::<Ipam>(&damaged).unwrap_err();
        assert!(err.to_string().contains("outside the subnet"), "{err}");
    }
}
