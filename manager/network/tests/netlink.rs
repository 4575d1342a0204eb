//! Bridges, namespaces and veths against the real kernel (run as root).

mod common;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use boxctl_network::{bridge, netns, veth, Claim, Error, HostUse, Owner};
use common::*;

fn route_on(bridge_name: &str, subnet: boxctl_network::Subnet) -> bool {
    let Some(index) = boxctl_network::interfaces()
        .unwrap()
        .into_iter()
        .find(|(_, n)| n == bridge_name)
        .map(|(i, _)| i)
    else {
        return false;
    };
    boxctl_network::host_ipv4_routes().unwrap().iter().any(|r| {
        r.oif == Some(index)
            && r.table == 254
            && r.destination == subnet.network()
            && r.prefix == subnet.prefix()
    })
}

#[test]
fn bridge_create_is_idempotent_and_delete_removes_it() {
    let subnet = free_subnet();
    let gw = (subnet.default_gateway(), subnet.prefix());
    let br = BridgeGuard::new(unique_ifname("br"), Some(gw));
    assert!(bridge::exists(&br.0).unwrap());
    bridge::ensure(&br.0, Some(gw)).unwrap();
    bridge::ensure(&br.0, None).unwrap();
    assert_eq!(bridge::addresses(&br.0).unwrap(), vec![gw]);
    assert!(
        route_on(&br.0, subnet),
        "no connected route for {subnet} on {}",
        br.0
    );
    let wider = boxctl_network::Subnet::new(Ipv4Addr::new(10, 231, 0, 0), 16).unwrap();
    assert!(
        boxctl_network::host_routes_overlapping(&wider)
            .unwrap()
            .iter()
            .any(|r| r.destination == subnet.network() && r.prefix == 24),
        "the bridge's route does not show as overlapping {wider}"
    );

    // Re-ensuring with another subnet's gateway replaces the address and
    // the connected route.
    let other = free_subnet();
    let gw2 = (other.default_gateway(), other.prefix());
    bridge::ensure(&br.0, Some(gw2)).unwrap();
    assert_eq!(bridge::addresses(&br.0).unwrap(), vec![gw2]);
    assert!(route_on(&br.0, other));
    assert!(!route_on(&br.0, subnet));

    bridge::delete(&br.0).unwrap();
    assert!(!bridge::exists(&br.0).unwrap());
    assert!(!route_on(&br.0, other));
    assert!(!route_on(&br.0, subnet));
    bridge::delete(&br.0).unwrap(); // idempotent
}

#[test]
fn bad_names_are_refused() {
    assert!(matches!(
        bridge::ensure("eth0", None),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(
        bridge::ensure("bx-waytoolongname", None),
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(veth::detach("lo"), Err(Error::InvalidName { .. })));
    assert!(!bridge::exists("lo").unwrap());
}

#[test]
fn netns_create_leaves_caller_alone_and_delete_is_idempotent() {
    let before = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let ns = NetnsGuard::new("ns");
    assert_eq!(
        std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
        before
    );
    assert!(netns::exists(ns.path()));
    let (inside, lo_ok) = netns::run_in(ns.path(), || {
        let inside = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        // Loopback is up: a listener on 127.0.0.1 accepts a connection.
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let ok = std::net::TcpStream::connect(l.local_addr().unwrap()).is_ok();
        (inside, ok)
    })
    .unwrap();
    assert_ne!(inside, before, "run_in did not enter the namespace");
    assert!(lo_ok, "loopback is not up inside the namespace");
    let names: Vec<String> = netns::run_in(ns.path(), boxctl_network::interfaces)
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(names, vec!["lo".to_string()]);

    // Creating over an existing path is refused.
    let err = netns::create(ns.path()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err}");

    netns::delete(ns.path()).unwrap();
    assert!(!ns.path().exists());
    assert!(!netns::exists(ns.path()));
    netns::delete(ns.path()).unwrap();

    // Missing parent directories are created.
    let dir = TempDir::new("nested");
    let nested = dir.0.join("a/b/netns");
    netns::create(&nested).unwrap();
    let mounted = netns::exists(&nested);
    netns::delete(&nested).unwrap();
    assert!(mounted);
    assert!(!nested.exists());
}

#[test]
fn instances_on_one_bridge_reach_each_other_and_the_host_reaches_them() {
    let subnet = free_subnet();
    let gw = subnet.default_gateway();
    let br = BridgeGuard::new(unique_ifname("br"), Some((gw, subnet.prefix())));
    let mut ipam = boxctl_network::Ipam::new(subnet);
    let mac = || std::fs::read_to_string(format!("/sys/class/net/{}/address", br.0)).unwrap();
    let mac_before = mac();
    assert!(mac_before.starts_with("02:"), "{mac_before}");
    let a = Instance::new(&br.0, ipam.allocate().unwrap(), subnet.prefix(), Some(gw));
    let b = Instance::new(&br.0, ipam.allocate().unwrap(), subnet.prefix(), Some(gw));
    assert!(veth::exists(&a.veth.0).unwrap());
    assert_eq!(
        mac(),
        mac_before,
        "the bridge's MAC changed when ports were added"
    );

    let a_srv = a.echo_server(7000, 2);
    // b -> a across the bridge.
    assert_eq!(
        round_trip_from(b.ns.path(), a_srv, b"hello a").unwrap(),
        b"hello a"
    );
    // host -> a through the gateway address on the bridge.
    assert_eq!(round_trip(a_srv, b"from host").unwrap(), b"from host");

    // The default route inside a points at the gateway; none was added on the host.
    let routes = netns::run_in(a.ns.path(), boxctl_network::host_ipv4_routes)
        .unwrap()
        .unwrap();
    assert!(
        routes
            .iter()
            .any(|r| r.table == 254 && r.prefix == 0 && r.gateway == Some(gw)),
        "{routes:?}"
    );

    // A bridge refuses to be deleted through a veth name and vice versa.
    assert!(matches!(
        bridge::delete(&a.veth.0),
        Err(Error::WrongKind { .. })
    ));
    assert!(matches!(veth::detach(&br.0), Err(Error::WrongKind { .. })));

    // Detach removes both ends.
    veth::detach(&a.veth.0).unwrap();
    assert!(!veth::exists(&a.veth.0).unwrap());
    let names = netns::run_in(a.ns.path(), boxctl_network::interfaces)
        .unwrap()
        .unwrap();
    assert!(names.iter().all(|(_, n)| n != "eth0"), "{names:?}");
    veth::detach(&a.veth.0).unwrap(); // idempotent
}

#[test]
fn attach_failure_leaves_nothing_behind() {
    let subnet = free_subnet();
    let br = BridgeGuard::new(unique_ifname("br"), None);
    let ns = NetnsGuard::new("fail");
    let host = unique_ifname("v");
    let _guard = VethGuard(host.clone());
    // Gateway outside the instance's subnet: the route cannot be added.
    let err = veth::attach(
        ns.path(),
        &br.0,
        "eth0",
        subnet.default_gateway(),
        subnet.prefix(),
        Some(Ipv4Addr::new(192, 0, 2, 254)),
        &host,
    )
    .unwrap_err();
    eprintln!("attach with a foreign gateway: {err}");
    assert!(err.to_string().contains("default route"), "{err}");
    assert!(!veth::exists(&host).unwrap());
    // Missing bridge: clear error.
    let err = veth::attach(
        ns.path(),
        "bx-nonexistent",
        "eth0",
        subnet.default_gateway(),
        24,
        None,
        &host,
    )
    .unwrap_err();
    assert!(matches!(err, Error::NoSuchInterface { .. }), "{err}");
}

fn ip_forward() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
        .map(|s| s.trim() == "1")
        .unwrap_or(true)
}

#[test]
fn instances_on_different_bridges_are_isolated() {
    let s1 = free_subnet();
    let s2 = free_subnet();
    let br1 = BridgeGuard::new(unique_ifname("b1"), Some((s1.default_gateway(), 24)));
    let br2 = BridgeGuard::new(unique_ifname("b2"), Some((s2.default_gateway(), 24)));
    let mut ipam1 = boxctl_network::Ipam::new(s1);
    let mut ipam2 = boxctl_network::Ipam::new(s2);
    let a = Instance::new(
        &br1.0,
        ipam1.allocate().unwrap(),
        24,
        Some(s1.default_gateway()),
    );
    let srv = a.echo_server(7001, 3);
    // Positive control: a is up and reachable from the host.
    assert_eq!(round_trip(srv, b"ping").unwrap(), b"ping");

    // Layer 2: an instance on br2 holding an address of a's subnet (no
    // gateway) cannot reach a: the bridges are separate switches. This holds
    // whatever the host's forwarding setting.
    let intruder_addr = ipam1.allocate().unwrap();
    let c = Instance::new(&br2.0, intruder_addr, 24, None);
    let err = unreachable_from(c.ns.path(), srv);
    eprintln!("layer 2: other bridge -> a failed as expected: {err}");
    assert!(
        matches!(
            err.kind(),
            ErrorKind::HostUnreachable | ErrorKind::TimedOut | ErrorKind::WouldBlock
        ),
        "unexpected error {err}"
    );

    // Layer 3 without a route: an instance on br2 with no default route has
    // no way to a's subnet at all, whatever the host does.
    let d = Instance::new(&br2.0, ipam2.allocate().unwrap(), 24, None);
    let err = unreachable_from(d.ns.path(), srv);
    assert_eq!(err.kind(), ErrorKind::NetworkUnreachable, "{err}");

    // Layer 3: with ip_forward off (never changed by us), an instance on br2
    // routing through its own gateway cannot reach br1 either.
    let b = Instance::new(
        &br2.0,
        ipam2.allocate().unwrap(),
        24,
        Some(s2.default_gateway()),
    );
    if ip_forward() {
        eprintln!("net.ipv4.ip_forward=1 on this host: routed isolation not asserted");
    } else {
        let err = unreachable_from(b.ns.path(), srv);
        eprintln!("layer 3: other subnet -> a failed as expected: {err}");
        assert!(
            matches!(
                err.kind(),
                ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::TimedOut
                    | ErrorKind::WouldBlock
            ),
            "unexpected error {err}"
        );
    }
    // b still reaches its own gateway address on the host (control).
    let host_listener = TcpListener::bind((s2.default_gateway(), 0)).unwrap();
    let port = host_listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || host_listener.accept().map(|(c, _)| echo(c)));
    let back = round_trip_from(
        b.ns.path(),
        SocketAddr::from((s2.default_gateway(), port)),
        b"gw",
    )
    .unwrap();
    assert_eq!(back, b"gw");
    t.join().unwrap().unwrap();
}

/// The alias of host interface `name` (empty when none).
fn ifalias(name: &str) -> String {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifalias"))
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

fn owners() -> (Owner, Owner) {
    (
        Owner::new("00000000000000aa", "/store/a").unwrap(),
        Owner::new("00000000000000bb", "/store/b").unwrap(),
    )
}

#[test]
fn a_bridge_is_never_taken_over_by_another_owner() {
    let (a, b) = owners();
    let subnet = free_subnet();
    let gw = (subnet.default_gateway(), subnet.prefix());
    let other = free_subnet();
    let gw_b = (other.default_gateway(), other.prefix());
    let br = BridgeGuard(unique_ifname("o"));
    bridge::ensure_owned(&br.0, Some(gw), &a, Claim::OwnOnly).unwrap();
    assert_eq!(ifalias(&br.0), a.mark());
    bridge::ensure_owned(&br.0, Some(gw), &a, Claim::OwnOnly).unwrap();

    // B can neither use it (so not readdress it) nor delete it.
    for claim in [Claim::OwnOnly, Claim::OwnOrUnmarked] {
        let err = bridge::ensure_owned(&br.0, Some(gw_b), &b, claim).unwrap_err();
        assert!(matches!(err, Error::NotOwned { .. }), "{err}");
        assert!(err.to_string().contains("/store/a"), "{err}");
        let err = bridge::delete_owned(&br.0, &b, claim).unwrap_err();
        assert!(matches!(err, Error::NotOwned { .. }), "{err}");
    }
    assert_eq!(bridge::addresses(&br.0).unwrap(), vec![gw]);
    assert_eq!(ifalias(&br.0), a.mark());

    // A died between creating the bridge and marking it: no alias, but the
    // MAC it was created with still says A's.
    std::fs::write(format!("/sys/class/net/{}/ifalias", br.0), "\n").unwrap();
    assert_eq!(ifalias(&br.0), "");
    let err = bridge::ensure_owned(&br.0, Some(gw_b), &b, Claim::OwnOnly).unwrap_err();
    assert!(err.to_string().contains("no boxctl store mark"), "{err}");
    bridge::ensure_owned(&br.0, Some(gw), &a, Claim::OwnOnly).unwrap();
    assert_eq!(ifalias(&br.0), a.mark());
    bridge::delete_owned(&br.0, &a, Claim::OwnOnly).unwrap();
    assert!(!bridge::exists(&br.0).unwrap());
    bridge::delete_owned(&br.0, &a, Claim::OwnOnly).unwrap(); // absent: fine

    // A bridge made without an owner (by hand, or by a boxctl before the
    // marks) is taken only by a caller that has it on record.
    let hand = BridgeGuard::new(unique_ifname("h"), None);
    let err = bridge::ensure_owned(&hand.0, None, &a, Claim::OwnOnly).unwrap_err();
    assert!(matches!(err, Error::NotOwned { .. }), "{err}");
    assert_eq!(ifalias(&hand.0), "");
    bridge::ensure_owned(&hand.0, None, &a, Claim::OwnOrUnmarked).unwrap();
    assert_eq!(ifalias(&hand.0), a.mark());
    assert!(bridge::delete_owned(&hand.0, &b, Claim::OwnOrUnmarked).is_err());
}

#[test]
fn a_veth_is_never_removed_by_another_owner() {
    let (a, b) = owners();
    let subnet = free_subnet();
    let gw = subnet.default_gateway();
    let br = BridgeGuard::new(unique_ifname("vb"), Some((gw, subnet.prefix())));
    let ns = NetnsGuard::new("own");
    let host = VethGuard(unique_ifname("v"));
    let addr = Ipv4Addr::from(u32::from(gw) + 1);
    veth::attach(
        ns.path(),
        &br.0,
        "eth0",
        addr,
        subnet.prefix(),
        Some(gw),
        &host.0,
    )
    .unwrap();
    veth::mark(&host.0, &a).unwrap();
    assert_eq!(ifalias(&host.0), a.mark());
    let err = veth::detach_owned(&host.0, &b).unwrap_err();
    assert!(matches!(err, Error::NotOwned { kind: "veth", .. }), "{err}");
    assert!(veth::exists(&host.0).unwrap());
    veth::detach_owned(&host.0, &a).unwrap();
    assert!(!veth::exists(&host.0).unwrap());

    // Unmarked (its owner died before marking it, or an older boxctl made
    // it): removed by the teardown that finds it.
    let host2 = VethGuard(unique_ifname("v"));
    veth::attach(
        ns.path(),
        &br.0,
        "eth1",
        addr,
        subnet.prefix(),
        None,
        &host2.0,
    )
    .unwrap();
    veth::detach_owned(&host2.0, &b).unwrap();
    assert!(!veth::exists(&host2.0).unwrap());
}

#[test]
fn subnet_check_sees_host_routes_and_addresses() {
    let subnet = free_subnet();
    let gw = subnet.default_gateway();
    let br = BridgeGuard::new(unique_ifname("sc"), Some((gw, subnet.prefix())));
    let err = boxctl_network::check_subnet_free(&subnet, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "subnet {subnet} overlaps host route {subnet} dev {}: choose another subnet",
            br.0
        )
    );
    let uses = boxctl_network::host_uses(&subnet, None).unwrap();
    assert!(
        uses.iter().any(
            |u| matches!(u, HostUse::Address { addr, dev, .. } if *addr == gw && *dev == br.0)
        ),
        "{uses:?}"
    );
    // The caller's own bridge does not count.
    boxctl_network::check_subnet_free(&subnet, Some(&br.0)).unwrap();
    boxctl_network::check_subnet_free(&free_subnet(), None).unwrap();
}

/// `n` veth pairs with one end enslaved to a bridge (one `ip -batch`; this
/// kernel has no dummy links), deleted on drop: a cheap way to use up a
/// bridge's ports.
struct FillerPorts(Vec<String>);

impl FillerPorts {
    fn fill(bridge_name: &str, n: usize) -> FillerPorts {
        let ports = FillerPorts((0..n).map(|_| unique_ifname("")).collect());
        let script: String = ports
            .0
            .iter()
            .map(|d| format!("link add {d} master {bridge_name} type veth peer name {d}p\n"))
            .collect();
        ports.batch(&script, false);
        ports
    }

    fn batch(&self, script: &str, force: bool) {
        use std::io::Write;
        let mut cmd = std::process::Command::new("ip");
        if force {
            cmd.arg("-force");
        }
        let mut child = cmd
            .args(["-batch", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("run ip -batch");
        let wrote = child
            .stdin
            .take()
            .expect("ip's stdin")
            .write_all(script.as_bytes());
        let st = child.wait().expect("wait for ip -batch");
        assert!(wrote.is_ok() && (force || st.success()), "ip -batch failed");
    }
}

impl Drop for FillerPorts {
    fn drop(&mut self) {
        let script: String = self.0.iter().map(|d| format!("link del {d}\n")).collect();
        self.batch(&script, true);
    }
}

/// A Linux bridge takes 1,023 ports: the last one is handed out, the next
/// attach gets `Error::BridgeFull` naming the bridge and leaves no veth.
#[test]
fn a_full_bridge_refuses_the_next_veth_clearly() {
    let subnet = free_subnet();
    let br = BridgeGuard::new(unique_ifname("full"), None);
    let ns = NetnsGuard::new("full");
    let _ports = FillerPorts::fill(&br.0, bridge::MAX_PORTS - 1);
    let addr = Ipv4Addr::from(u32::from(subnet.default_gateway()) + 1);
    let last = VethGuard(unique_ifname("v"));
    veth::attach(ns.path(), &br.0, "eth0", addr, 24, None, &last.0)
        .expect("the 1,023rd port is still free");
    let ns2 = NetnsGuard::new("full2");
    let host = VethGuard(unique_ifname("v"));
    let err = veth::attach(ns2.path(), &br.0, "eth0", addr, 24, None, &host.0).unwrap_err();
    assert!(
        matches!(err, Error::BridgeFull { max: 1023, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&br.0), "{err}");
    assert!(
        !veth::exists(&host.0).unwrap(),
        "half-made veth left behind"
    );
}
