//! Network glue between instances and the boxctl-network crate.
//!
//! A boxctl network is a Linux bridge (`bx-NAME`) with a subnet, recorded in
//! ROOT/networks.toml (same section format as the instance file). An
//! instance's addresses are allocated when it is created (so they are kept
//! with its characteristics across stop/start), under the store lock. At
//! start the monitor makes the instance's network namespace
//! (ROOT/instances/ID/netns), one veth per network (`eth0`, `eth1`, …, the
//! default route via the first network's gateway), writes `hosts` and
//! `resolv.conf` next to the bundle and bind-mounts them, and runs the port
//! forwarder for `--publish`. Teardown removes veths and the namespace; the
//! bridge belongs to the network and stays. Bridges and veths are marked as
//! this store's (ROOT/store-id, see `boxctl_network::owner`): another
//! store's are never adopted nor removed. A new subnet must not overlap a
//! host route or address. An instance given no `--net` joins the store's
//! default network `boxctl0`, made here on first use ([`ensure_default`],
//! bridge named by [`crate::default_network`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use crate::bail;
use crate::error::{Context, Result};
use boxctl_network::{
    bridge, bridge_name_for, hosts, netns, veth, veth_name_for, Claim, Ipam, Owner, Subnet,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::create_spec::CreateSpec;
use crate::default_network::{self, DEFAULT_NETWORK};
use crate::instance_file::Instance;
use crate::store::{self, Store};
use crate::{bundle, util};

/// One network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Name (section header).
    #[serde(skip)]
    pub name: String,
    /// Subnet, e.g. `10.209.0.0/24`.
    pub subnet: String,
    /// Gateway address (on the bridge).
    pub gateway: String,
    /// Bridge interface name.
    pub bridge: String,
    /// Creation time.
    pub created: String,
    /// Internal: no address on the host bridge and no default route through it, so
    /// instances only reach their own bridge.
    #[serde(default)]
    pub internal: bool,
}

fn networks_file(store: &Store) -> PathBuf {
    store.root().join("networks.toml")
}

/// This store as the owner of the bridges and veths it makes (id in ROOT/store-id).
fn owner(store: &Store) -> Result<Owner> {
    let root = store.root();
    Ok(Owner::load_or_create(
        &root.join("store-id"),
        &root.display().to_string(),
    )?)
}

/// Every network (caller holds the lock for read-modify-write).
pub fn load(store: &Store) -> Result<BTreeMap<String, Network>> {
    let path = networks_file(store);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut out = BTreeMap::new();
    let mut cur: Option<(String, serde_json::Map<String, Value>)> = None;
    let mut finish = |c: Option<(String, serde_json::Map<String, Value>)>| -> Result<()> {
        if let Some((name, map)) = c {
            let mut n: Network = serde_json::from_value(Value::Object(map))
                .with_context(|| format!("{}: network [{name}] is damaged", path.display()))?;
            n.name = name.clone();
            out.insert(name, n);
        }
        Ok(())
    };
    for (no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            util::validate_name("network", name)?;
            finish(cur.take())?;
            cur = Some((name.to_string(), serde_json::Map::new()));
            continue;
        }
        let (k, v) = line
            .split_once(" = ")
            .with_context(|| format!("{} line {}: expected key = value", path.display(), no + 1))?;
        let v: Value = serde_json::from_str(v.trim())
            .with_context(|| format!("{} line {}: bad value", path.display(), no + 1))?;
        cur.as_mut()
            .with_context(|| format!("{} line {}: key outside a section", path.display(), no + 1))?
            .1
            .insert(k.trim().to_string(), v);
    }
    finish(cur)?;
    Ok(out)
}

fn save(store: &Store, nets: &BTreeMap<String, Network>) -> Result<()> {
    let mut text = String::from("# boxctl networks: one [NAME] section per bridge.\n");
    for n in nets.values() {
        text.push_str(&format!("\n[{}]\n", n.name));
        if let Value::Object(m) = serde_json::to_value(n)? {
            for (k, v) in m {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
    }
    store::write_atomic(&networks_file(store), text.as_bytes())
}

/// Where a network without `--subnet` gets its subnet: the first /24 of 10.209.0.0/16
/// that no boxctl network, host route or host address overlaps. The range is outside
/// the defaults of docker (172.17-31.x, 192.168.x), podman (10.88.0.0/16; its `network
/// create` counts up from 10.89.0.0/24, reaching 10.209 only after some 30,000
/// networks), libvirt (192.168.122.0/24) and common kubernetes setups (10.96.0.0/12
/// services, 10.244.0.0/16 pods, k3s 10.42-43.x).
pub const DEFAULT_SUBNET_RANGE: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 209, 0, 0), 16);

/// The host-wide lock held while a store picks a subnet and puts its gateway on
/// a bridge, so that two stores never pick the same free /24 at once.
pub const HOST_SUBNET_LOCK: &str = "/run/lock/boxctl-subnets.lock";

/// `network create NAME [--subnet CIDR]`.
pub fn create(
    store: &Store,
    name: &str,
    subnet: Option<&str>,
    gateway: Option<&str>,
    internal: bool,
) -> Result<Network> {
    util::validate_name("network", name)?;
    if matches!(name, "none" | "host") {
        bail!("{name} is reserved: choose another network name");
    }
    let _lock = store.lock()?;
    let mut nets = load(store)?;
    if nets.contains_key(name) {
        bail!("network {name} already exists");
    }
    let owner = owner(store)?;
    // Another store may be choosing a subnet at the same time: the choice and the
    // gateway address that claims it happen under one host-wide lock.
    let _ = std::fs::create_dir_all("/run/lock");
    let _host = store::lock_file(std::path::Path::new(HOST_SUBNET_LOCK))?;
    let taken: Vec<Subnet> = nets
        .values()
        .filter_map(|n| n.subnet.parse().ok())
        .collect();
    let overlaps = |s: &Subnet| {
        taken
            .iter()
            .any(|t| t.contains(s.network()) || s.contains(t.network()))
    };
    let bridge_name = if name == DEFAULT_NETWORK {
        default_network::bridge_name(owner.id())
    } else {
        bridge_name_for(name)
    };
    let subnet: Subnet = match subnet {
        Some(s) => {
            let s: Subnet = s
                .parse()
                .with_context(|| format!("invalid --subnet {s:?}"))?;
            if overlaps(&s) {
                bail!("subnet {s} overlaps another boxctl network: choose another --subnet");
            }
            boxctl_network::check_subnet_free(&s, Some(&bridge_name))?;
            s
        }
        None => {
            let host = boxctl_network::HostNetworks::read()?;
            let (base, prefix) = DEFAULT_SUBNET_RANGE;
            let [a, b, ..] = base.octets();
            (0..=255u8)
                .filter_map(|k| Subnet::new(Ipv4Addr::new(a, b, k, 0), 24).ok())
                .find(|s| !overlaps(s) && host.overlapping(s, Some(&bridge_name)).is_empty())
                .with_context(|| {
                    format!(
                        "no /24 of the default range {base}/{prefix} is free of boxctl networks, \
                         host routes and addresses: choose a subnet with --subnet"
                    )
                })?
        }
    };
    let gw = match gateway {
        Some(g) => {
            let g: Ipv4Addr = g
                .parse()
                .with_context(|| format!("invalid --gateway {g:?}: use an IPv4 address"))?;
            if !subnet.contains(g) || g == subnet.network() || g == subnet.broadcast() {
                bail!("--gateway {g} is not a host address of {subnet}");
            }
            g
        }
        None => subnet.default_gateway(),
    };
    let net = Network {
        name: name.to_string(),
        subnet: subnet.to_string(),
        gateway: gw.to_string(),
        bridge: bridge_name,
        created: util::format_time(util::now_secs()),
        internal,
    };
    bridge::ensure_owned(
        &net.bridge,
        (!internal).then_some((gw, subnet.prefix())),
        &owner,
        Claim::OwnOnly,
    )
    .with_context(|| format!("cannot create bridge {}", net.bridge))?;
    nets.insert(name.to_string(), net.clone());
    if let Err(e) = save(store, &nets) {
        let _ = bridge::delete_owned(&net.bridge, &owner, Claim::OwnOnly);
        return Err(e);
    }
    Ok(net)
}

/// Make the default network if `networks` (`NAME=ADDR` entries) use it and it
/// does not exist yet. Two first runs at once in one store: the one that loses
/// the race uses the winner's network.
pub fn ensure_default(store: &Store, networks: &[String]) -> Result<()> {
    if !default_network::wanted(networks) || load(store)?.contains_key(DEFAULT_NETWORK) {
        return Ok(());
    }
    match create(store, DEFAULT_NETWORK, None, None, false) {
        Ok(_) => Ok(()),
        Err(_) if load(store)?.contains_key(DEFAULT_NETWORK) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `network rm NAME`: refused while an instance is attached.
pub fn remove(store: &Store, name: &str) -> Result<()> {
    let _lock = store.lock()?;
    let mut nets = load(store)?;
    let net = nets
        .remove(name)
        .with_context(|| format!("no such network: {name} (see `boxctl network ls`)"))?;
    let users: Vec<String> = store
        .load()?
        .into_iter()
        .filter(|i| i.attachments().iter().any(|a| a.network == name))
        .map(|i| i.name)
        .collect();
    if !users.is_empty() {
        bail!(
            "network {name} is used by instance(s) {}: remove them first",
            users.join(", ")
        );
    }
    match bridge::delete_owned(&net.bridge, &owner(store)?, Claim::OwnOrUnmarked) {
        // Another store's bridge of the same name (recorded here by a boxctl
        // from before the marks): this store's record goes, the bridge stays.
        Err(e @ boxctl_network::Error::NotOwned { .. }) => {
            eprintln!("boxctl: warning: network {name}: {e}")
        }
        other => other.with_context(|| format!("cannot delete bridge {}", net.bridge))?,
    }
    save(store, &nets)
}

/// Check the network options of a new instance.
pub fn validate(store: &Store, spec: &CreateSpec) -> Result<()> {
    let nets = load(store)?;
    for n in &spec.networks {
        let (name, _) = n.split_once('=').unwrap_or((n.as_str(), ""));
        // The default network is made on first use (see `networking::ensure_default`).
        if !nets.contains_key(name) && name != DEFAULT_NETWORK {
            bail!("no such network: {name} (create it with `boxctl network create {name}`)");
        }
    }
    if !spec.publish.is_empty() && spec.networks.is_empty() {
        bail!("--publish needs the instance on a network: add --net NAME");
    }
    for p in &spec.publish {
        parse_publish(p)?;
    }
    Ok(())
}

/// `[IP:]HOSTPORT:PORT` → (listen address, container port).
pub fn parse_publish(p: &str) -> Result<(SocketAddr, u16)> {
    let parts: Vec<&str> = p.rsplitn(3, ':').collect();
    let bad = || {
        crate::error::Error::Invalid(format!(
            "invalid --publish {p:?}: expected [IP:]HOSTPORT:PORT, e.g. 8080:80"
        ))
    };
    let port: u16 = parts
        .first()
        .and_then(|s| s.parse().ok())
        .filter(|p| *p > 0)
        .ok_or_else(bad)?;
    let host_port: u16 = parts
        .get(1)
        .and_then(|s| s.parse().ok())
        .filter(|p| *p > 0)
        .ok_or_else(bad)?;
    let ip: IpAddr = match parts.get(2) {
        Some(ip) => ip.parse().map_err(|_| bad())?,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    Ok((SocketAddr::new(ip, host_port), port))
}

/// Allocate (or check static) addresses for `networks` (`NAME=` or
/// `NAME=ADDR[/PREFIX]`) against the instances in `list`; called under the lock.
pub fn allocate(store: &Store, list: &[Instance], networks: &[String]) -> Result<Vec<String>> {
    let nets = load(store)?;
    let mut out = Vec::new();
    let mut mine: Vec<(String, Ipv4Addr)> = Vec::new();
    for entry in networks {
        let (name, want) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        let net = nets
            .get(name)
            .with_context(|| format!("no such network: {name}"))?;
        let subnet: Subnet = net.subnet.parse()?;
        let gw: Ipv4Addr = net.gateway.parse().with_context(|| {
            format!(
                "network {name}: invalid gateway {:?} in networks.toml",
                net.gateway
            )
        })?;
        let used = list
            .iter()
            .flat_map(|i| i.attachments())
            .chain(
                mine.iter()
                    .map(|(n, a)| crate::instance_file::NetAttachment {
                        network: n.clone(),
                        address: format!("{a}/{}", subnet.prefix()),
                    }),
            )
            .filter(|a| a.network == name)
            .filter_map(|a| {
                a.address
                    .split('/')
                    .next()
                    .and_then(|s| s.parse::<Ipv4Addr>().ok())
            });
        let mut ipam = Ipam::with_used(subnet, gw, used)?;
        let addr = if want.is_empty() {
            ipam.allocate()?
        } else {
            let (a, prefix) = want.split_once('/').unwrap_or((want, ""));
            let a: Ipv4Addr = a
                .parse()
                .with_context(|| format!("invalid address {want:?} for network {name}"))?;
            if !prefix.is_empty() && prefix.parse::<u8>().ok() != Some(subnet.prefix()) {
                bail!("address {want} does not match network {name}'s subnet {subnet}");
            }
            ipam.reserve(a)
                .with_context(|| format!("cannot use address {a} on network {name}"))?;
            a
        };
        mine.push((name.to_string(), addr));
        out.push(format!("{name}={addr}/{}", subnet.prefix()));
    }
    Ok(out)
}

fn netns_path(store: &Store, inst: &Instance) -> PathBuf {
    store.instance_dir(&inst.id).join("netns")
}

/// What the bundle needs from the network set-up.
#[derive(Debug, Default)]
pub struct NetSetup {
    /// Network namespace to join.
    pub netns: Option<PathBuf>,
    /// Extra OCI mounts (hosts, resolv.conf).
    pub mounts: Vec<oci_spec::runtime::Mount>,
}

/// Prepare the instance's network before the container is created. An
/// instance with a user namespace gets its network namespace from the
/// runtime, made inside that user namespace (its root may then ping and
/// bind low ports): [`attach_created`] wires it once the runtime made it.
pub fn setup(store: &Store, inst: &Instance) -> Result<NetSetup> {
    if inst.net_mode != "bridge" {
        return Ok(NetSetup::default());
    }
    let ns = netns_path(store, inst);
    let _ = netns::delete(&ns);
    if crate::userns::IdRange::of(inst).is_some() {
        let r = files(store, inst);
        if r.is_err() {
            let _ = teardown(store, inst);
        }
        return r.map(|mounts| NetSetup {
            netns: None,
            mounts,
        });
    }
    netns::create(&ns)
        .with_context(|| format!("cannot create the network namespace of {}", inst.name))?;
    let result = wire(store, inst, &ns).and_then(|()| {
        Ok(NetSetup {
            netns: Some(ns.clone()),
            mounts: files(store, inst)?,
        })
    });
    if result.is_err() {
        let _ = teardown(store, inst);
    }
    result
}

/// For an instance with a user namespace, after the runtime's `create`:
/// pin the network namespace of its init (`pid`) at the instance's netns
/// path and attach it to its networks.
pub fn attach_created(store: &Store, inst: &Instance, pid: i32) -> Result<()> {
    if inst.net_mode != "bridge" || crate::userns::IdRange::of(inst).is_none() {
        return Ok(());
    }
    let ns = netns_path(store, inst);
    let result = crate::userns::pin_netns(pid, &ns).and_then(|()| wire(store, inst, &ns));
    if result.is_err() {
        let _ = teardown(store, inst);
    }
    result
}

/// Attach the network namespace at `ns` to the instance's networks (veths).
fn wire(store: &Store, inst: &Instance, ns: &std::path::Path) -> Result<()> {
    let nets = load(store)?;
    let owner = owner(store)?;
    // The default route goes through the first attachment to a non-internal network.
    let route_idx = inst
        .attachments()
        .iter()
        .position(|a| nets.get(&a.network).is_some_and(|n| !n.internal));
    for (idx, a) in inst.attachments().iter().enumerate() {
        let net = nets
            .get(&a.network)
            .with_context(|| format!("network {} no longer exists", a.network))?;
        let subnet: Subnet = net.subnet.parse()?;
        let gw: Ipv4Addr = net.gateway.parse().with_context(|| {
            format!(
                "network {}: invalid gateway {:?} in networks.toml",
                a.network, net.gateway
            )
        })?;
        let addr: Ipv4Addr = a
            .address
            .split('/')
            .next()
            .unwrap_or("")
            .parse()
            .with_context(|| format!("instance {} has no address on {}", inst.name, a.network))?;
        bridge::ensure_owned(
            &net.bridge,
            (!net.internal).then_some((gw, subnet.prefix())),
            &owner,
            Claim::OwnOrUnmarked,
        )?;
        let host_if = veth_name_for(&inst.id, idx as u16);
        veth::detach_owned(&host_if, &owner)?;
        veth::attach(
            ns,
            &net.bridge,
            &format!("eth{idx}"),
            addr,
            subnet.prefix(),
            (Some(idx) == route_idx).then_some(gw),
            &host_if,
        )
        .with_context(|| format!("cannot attach {} to network {}", inst.name, a.network))?;
        veth::mark(&host_if, &owner)?;
        // A MAC derived from the address (02:42:a:b:c:d, as docker does): after a
        // restart, peers' ARP caches still point at the right interface.
        let ifname = format!("eth{idx}");
        netns::run_in(ns, move || set_mac(&ifname, mac_for(addr)))?.with_context(|| {
            format!(
                "cannot set the MAC address of {} on {}",
                inst.name, a.network
            )
        })?;
    }
    Ok(())
}

/// The instance's hosts and resolv.conf (and its peers' hosts), as bind mounts.
fn files(store: &Store, inst: &Instance) -> Result<Vec<oci_spec::runtime::Mount>> {
    let all = store.load()?;
    let dir = store.instance_dir(&inst.id);
    store::write_quick(&dir.join("hosts"), hosts_for(inst, &all)?.as_bytes())?;
    // Running peers learn this instance's name: their hosts file is
    // bind-mounted, so it is changed in place (same inode).
    let mine = inst.attachments();
    for peer in all.iter().filter(|p| p.id != inst.id && p.is_active()) {
        let shared: Vec<String> = peer
            .attachments()
            .iter()
            .filter_map(|pa| mine.iter().find(|a| a.network == pa.network))
            .filter_map(|a| a.address.split('/').next().filter(|ip| !ip.is_empty()))
            .map(|ip| format!("{ip}\t{}", inst.name))
            .collect();
        if !shared.is_empty() {
            tell_peer(&store.instance_dir(&peer.id).join("hosts"), &shared, || {
                hosts_for(peer, &all)
            });
        }
    }
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = hosts::render_resolv_conf(&hosts::usable_host_nameservers(&host_resolv));
    store::write_quick(&dir.join("resolv.conf"), resolv.as_bytes())?;
    let bind = |src: &str, dst: &str| {
        let src = dir.join(src);
        bundle::mount(
            dst,
            "bind",
            &src.to_string_lossy(),
            &["rbind", "rprivate", "nosuid", "nodev", "noexec"],
        )
    };
    Ok(vec![
        bind("hosts", "/etc/hosts")?,
        bind("resolv.conf", "/etc/resolv.conf")?,
    ])
}

/// The /etc/hosts of `inst`: itself first, then every other instance sharing one of its networks.
/// Give a running peer's hosts file (`path`) the `lines` (`ADDR\tNAME`) of an
/// instance that starts: appended when missing, so a start costs O(1) per
/// peer rather than a render of every peer's whole file; the whole file
/// again (`render`) when one of the addresses is there under another name
/// or the name at another address (either left by a removed instance).
fn tell_peer(path: &Path, lines: &[String], render: impl FnOnce() -> Result<String>) {
    use std::io::Write as _;
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let mut missing = String::new();
    for line in lines {
        if text.contains(&format!("\n{line}\n")) {
            continue;
        }
        let (addr, name) = line.split_once('\t').unwrap_or_default();
        // The address under another name (reused after a removal), or the
        // name at another address (a removed instance's name taken again):
        // appending would leave the stale line, and lookups take the first.
        let stale = text.lines().any(|l| {
            let mut fields = l.split_whitespace();
            let at = fields.next().unwrap_or_default();
            (at == addr) != fields.any(|n| n == name)
        });
        if stale {
            if let Ok(text) = render() {
                let _ = std::fs::write(path, text);
            }
            return;
        }
        missing.push_str(line);
        missing.push('\n');
    }
    if !missing.is_empty() {
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(path) {
            let _ = f.write_all(missing.as_bytes());
        }
    }
}

fn hosts_for(inst: &Instance, all: &[Instance]) -> Result<String> {
    let mut entries = Vec::new();
    let hn = bundle::hostname(inst).to_string();
    for a in inst.attachments() {
        if let Some(ip) = a
            .address
            .split('/')
            .next()
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
        {
            let mut names = vec![hn.as_str()];
            if hn != inst.name {
                names.push(inst.name.as_str());
            }
            entries.push(hosts::HostEntry::new(ip, &names));
        }
    }
    let mine: Vec<String> = inst.attachments().into_iter().map(|a| a.network).collect();
    for peer in all.iter().filter(|p| p.id != inst.id) {
        for a in peer.attachments() {
            if !mine.contains(&a.network) {
                continue;
            }
            if let Some(ip) = a
                .address
                .split('/')
                .next()
                .and_then(|s| s.parse::<Ipv4Addr>().ok())
            {
                entries.push(hosts::HostEntry::new(ip, &[peer.name.as_str()]));
            }
        }
    }
    Ok(hosts::render_hosts(&entries)?)
}

/// Release the instance's network resources (idempotent).
pub fn teardown(store: &Store, inst: &Instance) -> Result<()> {
    let mut first: Option<crate::error::Error> = None;
    match owner(store) {
        Ok(owner) => {
            for idx in 0..inst.attachments().len() {
                let host_if = veth_name_for(&inst.id, idx as u16);
                if let Err(e) = veth::detach_owned(&host_if, &owner) {
                    first.get_or_insert(e.into());
                }
            }
        }
        Err(e) => first = Some(e),
    }
    let ns = netns_path(store, inst);
    if ns.exists() {
        if let Err(e) = netns::delete(&ns) {
            first.get_or_insert(e.into());
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Lines for `network ls`.
pub fn list(store: &Store) -> Result<Vec<Vec<String>>> {
    let nets = load(store)?;
    let insts = store.load()?;
    let mut rows = vec![vec![
        "NAME".to_string(),
        "SUBNET".into(),
        "GATEWAY".into(),
        "BRIDGE".into(),
        "INSTANCES".into(),
    ]];
    for n in nets.values() {
        let count = insts
            .iter()
            .filter(|i| i.attachments().iter().any(|a| a.network == n.name))
            .count();
        rows.push(vec![
            n.name.clone(),
            n.subnet.clone(),
            n.gateway.clone(),
            n.bridge.clone(),
            count.to_string(),
        ]);
    }
    Ok(rows)
}

/// The MAC address used for `addr`: locally administered, 02:42 + the IPv4 bytes.
pub fn mac_for(addr: Ipv4Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// Set the hardware address of `ifname` in the caller's network namespace.
fn set_mac(ifname: &str, mac: [u8; 6]) -> std::io::Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    if name.len() >= req.ifr_name.len() {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // SAFETY: sockaddr is plain old data; zero is valid.
    let mut hw: libc::sockaddr = unsafe { std::mem::zeroed() };
    hw.sa_family = libc::ARPHRD_ETHER;
    for (d, s) in hw.sa_data.iter_mut().zip(mac) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_hwaddr = hw;
    // SAFETY: SIOCSIFHWADDR with a valid ifreq on an open socket.
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::SIOCSIFHWADDR as _,
            &req,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_learns_a_name_by_one_line_and_a_reused_address_by_a_new_file() {
        let dir = std::env::temp_dir().join(format!("boxctl-tell-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _cleanup = Cleanup(dir.clone());
        let path = dir.join("hosts");
        std::fs::write(&path, "127.0.0.1\tlocalhost\n10.0.0.2\tweb\n").unwrap();
        let never = || -> Result<String> { panic!("no render for a missing line") };
        tell_peer(&path, &["10.0.0.3\tdb".into()], never);
        let once = "127.0.0.1\tlocalhost\n10.0.0.2\tweb\n10.0.0.3\tdb\n";
        assert_eq!(std::fs::read_to_string(&path).unwrap(), once);
        // Known already (a restart): unchanged.
        tell_peer(&path, &["10.0.0.3\tdb".into()], never);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), once);
        // 10.0.0.2 now belongs to another instance: the whole file again.
        tell_peer(&path, &["10.0.0.2\tcache".into()], || {
            Ok("rendered\n".into())
        });
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "rendered\n");
        // `web` removed and made again at another address: the whole file again.
        std::fs::write(&path, "127.0.0.1\tlocalhost\n10.0.0.2\tweb\n").unwrap();
        tell_peer(&path, &["10.0.0.7\tweb".into()], || Ok("again\n".into()));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "again\n");
    }

    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn default_range_is_clear_of_other_engines_defaults() {
        let (base, prefix) = DEFAULT_SUBNET_RANGE;
        let range = Subnet::new(base, prefix).expect("a valid range");
        for other in [
            "10.88.0.0/16",   // podman's default network
            "10.89.0.0/16",   // podman's first `network create` pool
            "172.16.0.0/12",  // docker's bridge pools
            "192.168.0.0/16", // docker's second pool, libvirt's default
            "10.96.0.0/12",   // kubeadm services
            "10.244.0.0/16",  // kind/flannel pods
            "10.42.0.0/15",   // k3s pods and services
            "10.210.0.0/16",  // the showcase farm's subnets (bundles/webfarm)
        ] {
            let other: Subnet = other.parse().expect("a valid subnet");
            assert!(!range.overlaps(&other), "{range} overlaps {other}");
        }
    }
}
