//! The host's packet filter, forwarding sysctls and routing table are the
//! same before and after a full network lifecycle, apart from the connected
//! route the kernel itself adds for a bridge's gateway address (and removes
//! with the bridge).

mod common;

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;

use boxctl_network::forward::Forwarder;
use boxctl_network::{Route, Subnet};
use common::*;

/// Output of a read-only listing command, normalized (comments and packet
/// counters dropped); `None` if the tool is not installed.
fn listing(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match (l.find('['), l.find(']')) {
            // ":INPUT ACCEPT [12:3456]" -> ":INPUT ACCEPT"
            (Some(a), Some(b)) if a < b && l.starts_with(':') => l[..a].trim_end().to_string(),
            _ => strip_nft_counters(l),
        })
        .collect();
    lines.push(format!("exit: {}", out.status));
    Some(lines.join("\n"))
}

/// "counter packets 12 bytes 345 jump X" -> "counter jump X".
fn strip_nft_counters(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        if words[i] == "packets" && words.get(i + 2) == Some(&"bytes") {
            i += 4;
            continue;
        }
        out.push(words[i]);
        i += 1;
    }
    out.join(" ")
}

#[derive(Debug, PartialEq, Eq)]
struct HostState {
    iptables: Option<String>,
    ip6tables: Option<String>,
    nft: Option<String>,
    sysctls: Vec<(String, String)>,
    /// IPv4 routes of every table, except those on `bx*` interfaces (test
    /// bridges of tests that may run concurrently).
    routes: Vec<Route>,
}

fn snapshot() -> HostState {
    let sysctls = [
        "net/ipv4/ip_forward",
        "net/ipv4/conf/all/forwarding",
        "net/ipv6/conf/all/forwarding",
    ]
    .iter()
    .map(|k| {
        let v = std::fs::read_to_string(format!("/proc/sys/{k}")).unwrap_or_default();
        (k.to_string(), v.trim().to_string())
    })
    .collect();
    // Links first: a route on an interface created after this listing is
    // necessarily someone's new (test) interface and is skipped too.
    let links: HashSet<u32> = boxctl_network::interfaces()
        .unwrap()
        .into_iter()
        .filter(|(_, n)| !n.starts_with("bx"))
        .map(|(i, _)| i)
        .collect();
    let mut routes: Vec<Route> = boxctl_network::host_ipv4_routes()
        .unwrap()
        .into_iter()
        .filter(|r| r.oif.is_none_or(|o| links.contains(&o)))
        .collect();
    routes.sort();
    HostState {
        iptables: listing("iptables-save", &[]),
        ip6tables: listing("ip6tables-save", &[]),
        nft: listing("nft", &["list", "ruleset"]),
        sysctls,
        routes,
    }
}

impl HostState {
    fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (tag, text) in [
            ("iptables", &self.iptables),
            ("ip6tables", &self.ip6tables),
            ("nft", &self.nft),
        ] {
            for l in text.as_deref().unwrap_or("(not installed)").lines() {
                out.push(format!("{tag}: {l}"));
            }
        }
        for (k, v) in &self.sysctls {
            out.push(format!("sysctl: {k}={v}"));
        }
        for r in &self.routes {
            out.push(format!("route: {r:?}"));
        }
        out
    }
}

/// Asserts `now == before`. Other engineers' tools (podman/netavark, for
/// one) may change the host's filter or sysctls while this test runs; such a
/// difference is reported but only fails the test if it mentions one of our
/// objects (`markers`: interface names, subnet prefix).
fn assert_unchanged(before: &HostState, now: &HostState, markers: &[String], when: &str) {
    if before == now {
        return;
    }
    let old = before.lines();
    let new = now.lines();
    let changed: Vec<String> = old
        .iter()
        .filter(|l| !new.contains(l))
        .map(|l| format!("- {l}"))
        .chain(
            new.iter()
                .filter(|l| !old.contains(l))
                .map(|l| format!("+ {l}")),
        )
        .collect();
    let ours: Vec<&String> = changed
        .iter()
        .filter(|l| markers.iter().any(|m| l.contains(m.as_str())))
        .collect();
    assert!(
        ours.is_empty(),
        "host state changed {when} in a way that involves this test's objects: {ours:#?}"
    );
    eprintln!(
        "warning: host state changed {when} by someone else (nothing mentions {markers:?}):\n{}",
        changed.join("\n")
    );
}

fn routes_on(index: u32) -> Vec<Route> {
    boxctl_network::host_ipv4_routes()
        .unwrap()
        .into_iter()
        .filter(|r| r.oif == Some(index))
        .collect()
}

fn index_of(name: &str) -> u32 {
    bx_indexes()
        .into_iter()
        .find(|(_, n)| n == name)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("interface {name} not found"))
}

#[test]
fn network_lifecycle_leaves_filter_and_routes_alone() {
    let before = snapshot();
    eprintln!(
        "iptables-save present: {}, nft present: {}, {} host routes",
        before.iptables.is_some(),
        before.nft.is_some(),
        before.routes.len()
    );
    let subnet: Subnet = free_subnet();
    let gw = subnet.default_gateway();
    let net = subnet.network().octets();
    // "10.231.7." for 10.231.7.0/24.
    let mut markers = vec![format!("{}.{}.{}.", net[0], net[1], net[2])];
    let (br_index, veth_index) = {
        let br = BridgeGuard::new(unique_ifname("hs"), Some((gw, subnet.prefix())));
        let mut ipam = boxctl_network::Ipam::new(subnet);
        let a = Instance::new(&br.0, ipam.allocate().unwrap(), 24, Some(gw));
        let b = Instance::new(&br.0, ipam.allocate().unwrap(), 24, Some(gw));
        let target = a.echo_server(9000, 2);
        assert_eq!(
            round_trip_from(b.ns.path(), target, b"b->a").unwrap(),
            b"b->a"
        );
        let mut fwd = Forwarder::new().unwrap();
        let front = fwd
            .add(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), target)
            .unwrap();
        let running = fwd.spawn().unwrap();
        assert_eq!(round_trip(front, b"published").unwrap(), b"published");
        running.stop().unwrap();

        // While everything is up: the only main-table route on our
        // interfaces is the kernel's connected route for the subnet.
        let br_index = index_of(&br.0);
        let veth_index = index_of(&a.veth.0);
        let main: Vec<Route> = routes_on(br_index)
            .into_iter()
            .filter(|r| r.table == 254)
            .collect();
        assert_eq!(main.len(), 1, "{main:?}");
        assert_eq!(
            (main[0].destination, main[0].prefix, main[0].gateway),
            (subnet.network(), subnet.prefix(), None)
        );
        assert_eq!(main[0].protocol, 2, "not a kernel route: {main:?}"); // RTPROT_KERNEL
        assert!(routes_on(veth_index).is_empty());
        markers.extend([br.0.clone(), a.veth.0.clone(), b.veth.0.clone()]);
        assert_unchanged(&before, &snapshot(), &markers, "while the network is up");
        (br_index, veth_index)
        // Guards drop here: veths, namespaces, bridge.
    };
    assert_unchanged(&before, &snapshot(), &markers, "after the clean-up");
    assert!(
        routes_on(br_index).is_empty(),
        "routes left on the deleted bridge"
    );
    assert!(routes_on(veth_index).is_empty());
}
