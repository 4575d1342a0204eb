//! The error type shared by every module of this crate.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while setting up or tearing down networking.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A subnet string or (address, prefix) pair is not a usable IPv4 subnet.
    #[error("invalid subnet {input:?}: {reason}")]
    InvalidSubnet {
        /// What the caller passed.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// A static (or gateway) address cannot be used in a subnet.
    #[error("address {addr} cannot be used in subnet {subnet}: {reason}")]
    InvalidAddress {
        /// The refused address.
        addr: Ipv4Addr,
        /// The subnet it was checked against.
        subnet: String,
        /// Why it was refused.
        reason: String,
    },
    /// Every host address of the subnet is taken.
    #[error("subnet {subnet} has no free address left; remove an instance from the network or use a larger subnet")]
    SubnetExhausted {
        /// The full subnet.
        subnet: String,
    },
    /// A host or namespace interface name is not acceptable.
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidName {
        /// The refused name.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// A /etc/hosts name or address is not acceptable.
    #[error("invalid hosts entry {entry:?}: {reason}")]
    InvalidHostsEntry {
        /// The refused name.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// A netlink request was refused by the kernel or could not be exchanged.
    #[error("netlink: {op} failed: {source}{detail}")]
    Netlink {
        /// What was being done, naming the object (e.g. "create bridge bx-web").
        op: String,
        /// The kernel's extended error message, as "; kernel says: ...", or
        /// empty.
        detail: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// The kernel sent something this crate does not understand.
    #[error("netlink: {op}: unexpected reply: {detail}")]
    NetlinkProtocol {
        /// What was being done.
        op: String,
        /// What was wrong with the reply.
        detail: String,
    },
    /// An interface that must exist does not.
    #[error("interface {name} does not exist{hint}")]
    NoSuchInterface {
        /// The missing interface.
        name: String,
        /// What to do about it (starts with "; " when present).
        hint: String,
    },
    /// An interface exists but is not of the expected kind.
    #[error("interface {name} exists but is not a {expected}; delete it or choose another name")]
    WrongKind {
        /// The interface.
        name: String,
        /// What it should have been ("bridge").
        expected: &'static str,
    },
    /// Creating, entering or deleting a network namespace failed.
    #[error("network namespace {path}: {op} failed: {source}")]
    Netns {
        /// The bind-mount path of the namespace.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A helper thread panicked (a bug in this crate).
    #[error("{what}: helper thread panicked")]
    ThreadPanicked {
        /// What the thread was doing.
        what: String,
    },
    /// An interface exists but another store (or somebody else) made it.
    #[error("{kind} {name} was not made by this boxctl store ({owner}); it is left alone: {hint}")]
    NotOwned {
        /// "bridge" or "veth".
        kind: &'static str,
        /// The interface.
        name: String,
        /// Who it belongs to, as far as known.
        owner: String,
        /// What to do about it.
        hint: &'static str,
    },
    /// A store id is not acceptable.
    #[error("invalid store id {id:?}: {reason}")]
    InvalidOwner {
        /// The refused id.
        id: String,
        /// Why it was refused.
        reason: String,
    },
    /// The file holding a store's id could not be read or written.
    #[error("store id file {path}: {op} failed: {source}")]
    OwnerFile {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A subnet overlaps a route or an address of the host.
    #[error("subnet {subnet} overlaps host {conflict}: choose another subnet")]
    SubnetInUse {
        /// The refused subnet.
        subnet: String,
        /// The host route or address, e.g. "route 10.88.0.0/16 dev podman0".
        conflict: String,
    },
    /// The bridge has no port number left (the kernel's `EXFULL`).
    #[error("bridge {bridge} is full: a Linux bridge takes at most {max} ports (port 0 is reserved), so {ifname} cannot join it; put further instances on another network")]
    BridgeFull {
        /// The bridge.
        bridge: String,
        /// The interface that could not be attached.
        ifname: String,
        /// The most ports a bridge takes ([`crate::bridge::MAX_PORTS`]).
        max: usize,
    },
    /// A `bpf(2)` call failed (see [`crate::local_path`]).
    #[error("bpf: {op} failed: {source}{detail}")]
    Bpf {
        /// What was being done, naming the object.
        op: String,
        /// The verifier's last lines, as "; verifier says: ...", or empty.
        detail: String,
        /// The kernel's answer.
        #[source]
        source: io::Error,
    },
    /// The in-kernel path for local clients cannot be used here; the
    /// userspace forwarder serves them instead.
    #[error("no in-kernel path for local clients: {reason}")]
    LocalPathUnavailable {
        /// Why, and what would make it available.
        reason: String,
    },
    /// The port forwarder failed.
    #[error("port forwarder: {op} failed: {source}")]
    Forward {
        /// What was being done, naming the addresses.
        op: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The OS error number behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Netlink { source, .. }
            | Error::Netns { source, .. }
            | Error::Forward { source, .. }
            | Error::Bpf { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
