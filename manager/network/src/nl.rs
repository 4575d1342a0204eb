//! A minimal synchronous rtnetlink client on top of netlink-sys and
//! netlink-packet-route. A [`Handle`] talks to the network namespace of the
//! thread that created it.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::RawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{Error, Result};

/// What we know about a link after looking it up.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub index: u32,
    pub kind: Option<InfoKind>,
    pub up: bool,
    pub controller: Option<u32>,
    /// `IFLA_IFALIAS`, when set.
    pub alias: Option<String>,
    /// The hardware address, when it is an Ethernet one.
    pub mac: Option<[u8; 6]>,
}

/// A connected rtnetlink socket in the caller thread's network namespace.
pub(crate) struct Handle {
    socket: Socket,
    seq: u32,
    /// Whether NETLINK_CAP_ACK is on (error replies omit the request body).
    capped: bool,
}

fn nl_err(op: &str, source: io::Error) -> Error {
    Error::Netlink {
        op: op.to_string(),
        detail: String::new(),
        source,
    }
}

/// `NLM_F_ACK_TLVS`: the error message carries extended-ack attributes.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: a human-readable error string.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Length of a netlink message header.
const NLMSG_HDRLEN: usize = 16;

/// The kernel's extended-ack message in an error reply, if any.
fn ext_ack_message(flags: u16, payload: &[u8], capped: bool) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || payload.len() < NLMSG_HDRLEN {
        return None;
    }
    let offset = if capped {
        NLMSG_HDRLEN
    } else {
        let len = u32::from_ne_bytes(payload[..4].try_into().ok()?) as usize;
        (len + 3) & !3
    };
    let tlvs = payload.get(offset..)?;
    for nla in NlasIterator::new(tlvs) {
        let nla = nla.ok()?;
        if nla.kind() & 0x3fff == NLMSGERR_ATTR_MSG {
            let text = nla.value();
            let text = text.split(|b| *b == 0).next().unwrap_or(text);
            let text = String::from_utf8_lossy(text).trim().to_string();
            return (!text.is_empty()).then_some(text);
        }
    }
    None
}

impl Handle {
    /// Opens a socket in the current thread's network namespace.
    pub fn new() -> Result<Handle> {
        let op = "open rtnetlink socket";
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| nl_err(op, e))?;
        socket.bind_auto().map_err(|e| nl_err(op, e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| nl_err(op, e))?;
        // Both are optional comforts: shorter error replies and the
        // kernel's explanation of a refusal.
        let capped = socket.set_cap_ack(true).is_ok();
        let _ = socket.set_ext_ack(true);
        Ok(Handle {
            socket,
            seq: 0,
            capped,
        })
    }

    /// Sends one request and collects every inner message of the reply
    /// until the ACK / DONE (or the error).
    fn request(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        loop {
            match self.socket.send(&buf, 0) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(nl_err(op, e)),
            }
        }

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut out = Vec::new();
        loop {
            let data = match self.socket.recv_from_full() {
                Ok((data, _)) => data,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(nl_err(op, e)),
            };
            if data.is_empty() {
                return Err(Error::NetlinkProtocol {
                    op: op.to_string(),
                    detail: "the socket returned no data".into(),
                });
            }
            let mut offset = 0;
            while offset < data.len() {
                let msg: NetlinkMessage<RouteNetlinkMessage> =
                    NetlinkMessage::deserialize(&data[offset..]).map_err(|e| {
                        Error::NetlinkProtocol {
                            op: op.to_string(),
                            detail: e.to_string(),
                        }
                    })?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(Error::NetlinkProtocol {
                        op: op.to_string(),
                        detail: "zero-length message".into(),
                    });
                }
                offset += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(_) => Err(Error::Netlink {
                                op: op.to_string(),
                                detail: ext_ack_message(msg.header.flags, &e.header, self.capped)
                                    .map(|m| format!("; kernel says: {m}"))
                                    .unwrap_or_default(),
                                source: e.to_io(),
                            }),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Sends a request that only expects an acknowledgement.
    fn ack(&mut self, op: &str, msg: RouteNetlinkMessage, flags: u16) -> Result<()> {
        self.request(op, msg, flags | NLM_F_ACK).map(|_| ())
    }

    /// Looks a link up by name; `Ok(None)` when it does not exist.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let op = format!("look up interface {name}");
        match self.request(&op, RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(to_link(&l)),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a bridge (fails with EEXIST if the name is taken) with a
    /// fixed MAC address: otherwise the bridge takes the lowest MAC of its
    /// ports, which changes as instances come and go and leaves stale
    /// gateway entries in the instances' ARP caches.
    pub fn create_bridge(&mut self, name: &str, mac: [u8; 6]) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.ack(
            &format!("create bridge {name}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Creates a veth pair: `host` here, `peer` directly inside the network
    /// namespace referred to by `netns_fd`.
    pub fn create_veth(&mut self, host: &str, peer: &str, netns_fd: RawFd) -> Result<()> {
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        peer_msg.attributes.push(LinkAttribute::NetNsFd(netns_fd));
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(netlink_packet_route::link::InfoVeth::Peer(
                peer_msg,
            ))),
        ]));
        self.ack(
            &format!("create veth pair {host} / {peer}"),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Deletes a link by index; already gone is not an error.
    pub fn delete_link(&mut self, index: u32, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        match self.ack(
            &format!("delete interface {name}"),
            RouteNetlinkMessage::DelLink(msg),
            0,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }

    /// Brings a link up.
    pub fn set_up(&mut self, index: u32, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.ack(
            &format!("bring interface {name} up"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
    }

    /// Enslaves a link to a bridge.
    pub fn set_controller(&mut self, index: u32, name: &str, controller: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Controller(controller));
        self.ack(
            &format!("attach interface {name} to its bridge"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
    }

    /// Sets a link's alias (`IFLA_IFALIAS`; empty removes it).
    pub fn set_alias(&mut self, index: u32, name: &str, alias: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::IfAlias(alias.to_string()));
        self.ack(
            &format!("set the alias of interface {name}"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        )
    }

    /// IPv4 addresses (with prefix) on a link.
    pub fn addresses(&mut self, index: u32, name: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
        Ok(self
            .dump_addresses(&format!("list addresses of {name}"))?
            .into_iter()
            .filter(|(i, _, _)| *i == index)
            .map(|(_, addr, prefix)| (addr, prefix))
            .collect())
    }

    /// Every IPv4 address of this namespace as (link index, address, prefix).
    pub fn all_addresses(&mut self) -> Result<Vec<(u32, Ipv4Addr, u8)>> {
        self.dump_addresses("list IPv4 addresses")
    }

    fn dump_addresses(&mut self, op: &str) -> Result<Vec<(u32, Ipv4Addr, u8)>> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        let replies = self.request(op, RouteNetlinkMessage::GetAddress(msg), NLM_F_DUMP)?;
        let mut out = Vec::new();
        for m in replies {
            if let RouteNetlinkMessage::NewAddress(a) = m {
                for attr in &a.attributes {
                    if let AddressAttribute::Local(std::net::IpAddr::V4(ip)) = attr {
                        out.push((a.header.index, *ip, a.header.prefix_len));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Adds an IPv4 address; already present is not an error.
    pub fn add_address(
        &mut self,
        index: u32,
        name: &str,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> Result<()> {
        let mut msg = address_message(index, addr, prefix);
        msg.header.scope = AddressScope::Universe;
        msg.attributes.push(AddressAttribute::Address(addr.into()));
        if prefix < 31 {
            let host_mask = u32::MAX >> prefix;
            let brd = Ipv4Addr::from(u32::from(addr) | host_mask);
            msg.attributes.push(AddressAttribute::Broadcast(brd));
        }
        match self.ack(
            &format!("add address {addr}/{prefix} to {name}"),
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Removes an IPv4 address; already absent is not an error.
    pub fn del_address(
        &mut self,
        index: u32,
        name: &str,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> Result<()> {
        let msg = address_message(index, addr, prefix);
        match self.ack(
            &format!("remove address {addr}/{prefix} from {name}"),
            RouteNetlinkMessage::DelAddress(msg),
            0,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(()),
            other => other,
        }
    }

    /// Adds a default route via `gateway` out of link `index`, in the main
    /// table of this handle's namespace.
    pub fn add_default_route(&mut self, index: u32, name: &str, gateway: Ipv4Addr) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.destination_prefix_length = 0;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        msg.attributes.push(RouteAttribute::Oif(index));
        self.ack(
            &format!("add default route via {gateway} dev {name}"),
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Dumps the IPv4 main routing table as `(destination/prefix, gateway, oif)`.
    pub fn ipv4_routes(&mut self) -> Result<Vec<Route>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        let replies = self.request(
            "list IPv4 routes",
            RouteNetlinkMessage::GetRoute(msg),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for m in replies {
            let RouteNetlinkMessage::NewRoute(r) = m else {
                continue;
            };
            let mut route = Route {
                table: u32::from(r.header.table),
                destination: Ipv4Addr::UNSPECIFIED,
                prefix: r.header.destination_prefix_length,
                gateway: None,
                oif: None,
                protocol: u8::from(r.header.protocol),
                scope: u8::from(r.header.scope),
                kind: u8::from(r.header.kind),
                priority: None,
                pref_source: None,
            };
            for attr in &r.attributes {
                match attr {
                    RouteAttribute::Table(t) => route.table = *t,
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => route.destination = *d,
                    RouteAttribute::Gateway(RouteAddress::Inet(g)) => route.gateway = Some(*g),
                    RouteAttribute::PrefSource(RouteAddress::Inet(s)) => {
                        route.pref_source = Some(*s)
                    }
                    RouteAttribute::Oif(o) => route.oif = Some(*o),
                    RouteAttribute::Priority(p) => route.priority = Some(*p),
                    _ => {}
                }
            }
            out.push(route);
        }
        Ok(out)
    }

    /// Names of all links with their index.
    pub fn link_names(&mut self) -> Result<Vec<(u32, String)>> {
        let replies = self.request(
            "list interfaces",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for m in replies {
            if let RouteNetlinkMessage::NewLink(l) = m {
                for attr in &l.attributes {
                    if let LinkAttribute::IfName(n) = attr {
                        out.push((l.header.index, n.clone()));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// One IPv4 route, as listed by [`crate::host_ipv4_routes`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    /// Routing table id.
    pub table: u32,
    /// Destination network.
    pub destination: Ipv4Addr,
    /// Destination prefix length.
    pub prefix: u8,
    /// Next hop, if any.
    pub gateway: Option<Ipv4Addr>,
    /// Output interface index, if any.
    pub oif: Option<u32>,
    /// `RTPROT_*` of the route.
    pub protocol: u8,
    /// `RT_SCOPE_*` of the route.
    pub scope: u8,
    /// `RTN_*` type of the route.
    pub kind: u8,
    /// Metric.
    pub priority: Option<u32>,
    /// Preferred source address.
    pub pref_source: Option<Ipv4Addr>,
}

fn to_link(msg: &LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        kind: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        controller: None,
        alias: None,
        mac: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfAlias(a) => link.alias = Some(a.clone()),
            LinkAttribute::Address(a) => link.mac = a.as_slice().try_into().ok(),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(k) = info {
                        link.kind = Some(k.clone());
                    }
                }
            }
            LinkAttribute::Controller(c) => link.controller = Some(*c),
            _ => {}
        }
    }
    link
}

/// An IPv4 address message for link `index` naming `addr/prefix` as its local address.
fn address_message(index: u32, addr: Ipv4Addr, prefix: u8) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.prefix_len = prefix;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(addr.into()));
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        while v.len() & 3 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn extended_ack_message_is_found() {
        // Capped: embedded request header only, then the TLVs.
        let mut payload = vec![0u8; NLMSG_HDRLEN];
        payload[..4].copy_from_slice(&64u32.to_ne_bytes());
        payload.extend(tlv(4, &7u32.to_ne_bytes())); // NLMSGERR_ATTR_OFFS
        payload.extend(tlv(NLMSGERR_ATTR_MSG, b"Nexthop has invalid gateway\0"));
        assert_eq!(
            ext_ack_message(NLM_F_ACK_TLVS, &payload, true).as_deref(),
            Some("Nexthop has invalid gateway")
        );
        assert_eq!(ext_ack_message(0, &payload, true), None);
        // Uncapped: the whole request (length from its header) comes first.
        let mut payload = vec![0u8; 20];
        payload[..4].copy_from_slice(&18u32.to_ne_bytes());
        payload.extend(tlv(NLMSGERR_ATTR_MSG, b"no\0"));
        assert_eq!(
            ext_ack_message(NLM_F_ACK_TLVS, &payload, false).as_deref(),
            Some("no")
        );
        assert_eq!(ext_ack_message(NLM_F_ACK_TLVS, &[1, 2], true), None);
    }
}
