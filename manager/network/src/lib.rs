//! Networking for boxctl: Linux bridges, network namespaces, veth pairs,
//! IPv4 address management and userspace port forwarding — without ever
//! touching the host's packet filter (iptables/nftables) or routing table.
//!
//! Everything is synchronous (no async runtime): the manager is a
//! short-lived CLI. The kernel is driven over rtnetlink (crates
//! `netlink-packet-route` + `netlink-sys`); nothing shells out to `ip`.
//! All functions need `CAP_NET_ADMIN` (and `CAP_SYS_ADMIN` for namespaces),
//! i.e. root.
//!
//! # Model
//!
//! A boxctl *network* is a standard Linux bridge on the host (a virtual
//! switch) named by [`bridge_name_for`], with the network's gateway address
//! on it. Each instance owns a network namespace (bind-mounted on a file
//! chosen by the manager) and is attached to one or more networks, each
//! through a veth pair: host end enslaved to the bridge, other end inside
//! the namespace as `eth0`, `eth1`, ... with the instance's address.
//!
//! * Instances on the same bridge reach each other directly (layer 2).
//! * The host reaches every instance through the bridge's gateway address
//!   (the kernel adds the connected route when the address is set and
//!   removes it with the bridge; this crate adds no other host route).
//! * Instances on different bridges are isolated at layer 2; whether the
//!   host routes between subnets is decided by the host's own
//!   `net.ipv4.ip_forward` and firewall, which this crate never changes.
//! * Published ports are served by a userspace [`forward::Forwarder`]
//!   (like docker-proxy), not by NAT rules; clients on the host itself take
//!   an in-kernel path instead when it can be made ([`local_path`]: BPF
//!   programs that rewrite their `connect()` to the instance's address).
//! * Caveat: when the host has `br_netfilter` loaded with
//!   `net.bridge.bridge-nf-call-iptables=1` (Docker or podman do that),
//!   even traffic between instances of one bridge crosses the host's
//!   iptables FORWARD chain; a DROP policy there (Docker sets one) blocks
//!   it. boxctl does not touch either setting; that is the host
//!   administrator's call.
//!
//! # Tests
//!
//! `cargo test -p boxctl-network`, as root: unit tests, then kernel tests
//! that create `bxt*` bridges and veths, namespaces under the temp dir and
//! subnets in 10.231.0.0/16 that no host route uses, all removed by drop
//! guards. Traffic stays on loopback and those bridges. `cargo run
//! --release -p boxctl-network --example forward_bench` compares direct and
//! forwarded loopback TCP.
//!
//! # API
//!
//! Addresses (pure, serializable):
//! * [`Subnet`]: `"10.209.0.0/24".parse::<Subnet>()`, `default_gateway()`
//!   (`.1`), `broadcast()`, `contains()`, `overlaps()`; pick a subnet not
//!   yet used on the host with [`host_routes_overlapping`].
//! * [`Ipam`]: `Ipam::new(subnet)` / `with_gateway` / `with_used`;
//!   `allocate()` gives the lowest free host address, `reserve(addr)` checks
//!   and takes a static one (refusing outside/network/broadcast/gateway/taken),
//!   `release(addr)`.
//! * [`check_subnet_free`]`(subnet, except)` refuses a subnet that overlaps a
//!   host route (any table, default routes aside) or address, naming it;
//!   [`host_uses`] lists them all; [`HostNetworks`] reads them once to
//!   check many subnets.
//!
//! Names: [`bridge_name_for`]`(network)` (`bx-<name>` or a hashed form, ≤15
//! bytes), [`veth_name_for`]`(instance_id, index)` (`bx<hash>v<index>`).
//!
//! Host objects:
//! * [`bridge::ensure`]`(name, Some((gateway, prefix)))` — create if absent,
//!   up, address; idempotent. [`bridge::delete`], [`bridge::exists`],
//!   [`bridge::addresses`].
//! * Ownership: bridge names come from network names, so two stores may ask
//!   for the same one. An [`Owner`] (a store id kept in a file,
//!   [`Owner::load_or_create`]) marks what it makes (alias and MAC, see
//!   [`owner`]); [`bridge::ensure_owned`] / [`bridge::delete_owned`] and
//!   [`veth::mark`] / [`veth::detach_owned`] never take over or remove
//!   another owner's interface ([`Error::NotOwned`]).
//! * [`netns::create`]`(path)` — new namespace bind-mounted at `path`,
//!   loopback up, caller untouched; [`netns::delete`] (umount + unlink,
//!   idempotent); [`netns::exists`]; [`netns::run_in`]`(path, closure)` runs
//!   a closure on a thread inside the namespace (sockets it creates stay
//!   there).
//! * [`veth::attach`]`(netns_path, bridge, "eth0", addr, prefix,
//!   Some(gateway), host_ifname)`; [`veth::detach`]`(host_ifname)`
//!   (idempotent; deleting the host end removes the pair).
//!
//! Files for the instance: [`hosts::render_hosts`], [`hosts::render_resolv_conf`],
//! [`hosts::usable_host_nameservers`].
//!
//! Published ports: [`forward::Forwarder`] — `new()`, `add(listen, target)`
//! per port, then `run()` (blocking, stopped through a
//! [`forward::StopHandle`]) or `spawn()`.
//!
//! # Example
//!
//! ```no_run
//! use boxctl_network::{bridge, bridge_name_for, netns, veth, veth_name_for, Ipam};
//! # fn main() -> Result<(), boxctl_network::Error> {
//! let mut ipam = Ipam::new("10.209.0.0/24".parse()?);
//! let br = bridge_name_for("web");
//! bridge::ensure(&br, Some((ipam.gateway(), ipam.subnet().prefix())))?;
//! let ns = std::path::Path::new("/var/lib/boxctl/netns/web1");
//! netns::create(ns)?;
//! let addr = ipam.allocate()?;
//! veth::attach(ns, &br, "eth0", addr, ipam.subnet().prefix(), Some(ipam.gateway()),
//!              &veth_name_for("web1", 0))?;
//! // ... run the instance with its network namespace path set to `ns` ...
//! veth::detach(&veth_name_for("web1", 0))?;
//! netns::delete(ns)?;
//! # Ok(()) }
//! ```

pub mod bpf;
pub mod bridge;
mod error;
pub mod forward;
pub mod host_use;
pub mod hosts;
mod ipam;
pub mod local_path;
mod names;
pub mod netns;
mod nl;
pub mod owner;
pub mod veth;

pub use error::{Error, Result};
pub use host_use::{check_subnet_free, host_uses, HostNetworks, HostUse};
pub use ipam::{Ipam, Subnet};
pub use names::{
    bridge_name_for, validate_host_ifname, validate_ifname, veth_name_for, HOST_PREFIX, IFNAME_MAX,
};
pub use nl::Route;
pub use owner::{Claim, Owner, Ownership};

/// The host's IPv4 routes (all tables), read over netlink; for diagnostics
/// and tests that check nothing else changed.
pub fn host_ipv4_routes() -> Result<Vec<Route>> {
    nl::Handle::new()?.ipv4_routes()
}

/// Host routes (main table, default route excluded) whose destination
/// overlaps `subnet`: a non-empty answer means the subnet is already in use
/// on this host (another bridge, a VPN, podman's 10.88.0.0/16...) and a new
/// network should pick another one.
pub fn host_routes_overlapping(subnet: &Subnet) -> Result<Vec<Route>> {
    Ok(host_ipv4_routes()?
        .into_iter()
        .filter(|r| r.table == 254 && r.prefix > 0)
        .filter(|r| subnet.overlaps_prefix(r.destination, r.prefix))
        .collect())
}

/// Index and name of every interface in the caller's network namespace.
pub fn interfaces() -> Result<Vec<(u32, String)>> {
    nl::Handle::new()?.link_names()
}
