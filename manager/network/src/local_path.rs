//! The in-kernel path of published ports for clients on this host, as
//! Cilium's socket load balancer does it: two small BPF programs of type
//! `CGROUP_SOCK_ADDR` on the root of the cgroup v2 hierarchy.
//!
//! * `connect4`: a TCP `connect()` from a process in the host's network
//!   namespace (its netns cookie is compared with ours) to a published
//!   `(address, port)` has its destination rewritten to the instance's
//!   address and port. The connection then goes straight over the bridge:
//!   no forwarder, no second socket, the same cost as connecting to the
//!   instance's address. A port published on `0.0.0.0` matches any
//!   loopback address and every IPv4 address the host had when the path was
//!   made. The original destination is remembered per socket (by socket
//!   cookie, in an LRU map of [`PEER_ENTRIES`]).
//! * `getpeername4`: such a socket's `getpeername()` gives back the
//!   published address, not the instance's.
//!
//! Not rewritten: other network namespaces (a container's own
//! `127.0.0.1:PORT` stays its own), sockets bound to a loopback address
//! before connecting, UDP, IPv6 sockets (also for `::ffff:` addresses), and
//! clients on other hosts: they reach the listening socket, served by the
//! userspace [`crate::forward::Forwarder`].
//!
//! The programs are attached with BPF links held by this value: dropping
//! it, or the death of the process holding it (SIGKILL included), detaches
//! and frees them; nothing is pinned. The kernel takes at most 64 programs
//! per cgroup and attach point, so at most 64 live paths (one per monitor
//! with published ports); beyond that [`LocalPath::attach`] fails with
//! [`crate::Error::LocalPathUnavailable`] and the forwarder serves.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use crate::bpf::{self, helper, Asm, Cond, Map, Prog, Reg, Size};
use crate::error::{Error, Result};

/// The name every program of this module starts with.
pub const PROGRAM_PREFIX: &str = "bx_pub_";
/// The most sockets whose published peer address is remembered at once.
pub const PEER_ENTRIES: u32 = 4096;

// Offsets in `struct bpf_sock_addr` and `struct bpf_sock`.
const CTX_USER_IP4: i16 = 4;
const CTX_USER_PORT: i16 = 24;
const CTX_TYPE: i16 = 32;
const CTX_SK: i16 = 64;
const SK_SRC_IP4: i16 = 24;
const SO_NETNS_COOKIE: libc::c_int = 71;

fn unavailable(reason: impl Into<String>) -> Error {
    Error::LocalPathUnavailable {
        reason: reason.into(),
    }
}

/// The local path of one set of published ports; detached on drop.
pub struct LocalPath {
    _links: Vec<OwnedFd>,
    progs: Vec<Prog>,
    _maps: [Map; 2],
}

impl LocalPath {
    /// Makes and attaches the path for `routes` (`published address ->
    /// instance address`). IPv6 routes are left to the forwarder.
    pub fn attach(routes: &[(SocketAddr, SocketAddr)]) -> Result<LocalPath> {
        let keys = keys_for(routes)?;
        if keys.is_empty() {
            return Err(unavailable(
                "no IPv4 published address with an IPv4 instance address",
            ));
        }
        let cgroup_dir = cgroup2_root()?;
        let cgroup: OwnedFd = File::open(&cgroup_dir)
            .map_err(|e| {
                unavailable(format!(
                    "cannot open cgroup v2 root {}: {e}",
                    cgroup_dir.display()
                ))
            })?
            .into();
        let cookie = netns_cookie()?;
        let dst =
            Map::create(bpf::MAP_HASH, "bx_pub_dst", 8, 8, keys.len() as u32).map_err(refused)?;
        for (from, to) in &keys {
            dst.update(&encode(*from), &encode(*to))?;
        }
        let peer =
            Map::create(bpf::MAP_LRU_HASH, "bx_pub_peer", 8, 8, PEER_ENTRIES).map_err(refused)?;
        let connect = Prog::load_sock_addr(
            "bx_pub_connect4",
            bpf::ATTACH_INET4_CONNECT,
            &connect4(cookie, &dst, &peer),
        )
        .map_err(refused)?;
        let getpeername = Prog::load_sock_addr(
            "bx_pub_peer4",
            bpf::ATTACH_INET4_GETPEERNAME,
            &getpeername4(&peer),
        )
        .map_err(refused)?;
        // getpeername first: a connection rewritten by connect4 always finds
        // its reverse translation in place.
        let mut links = Vec::new();
        for (prog, kind) in [
            (&getpeername, bpf::ATTACH_INET4_GETPEERNAME),
            (&connect, bpf::ATTACH_INET4_CONNECT),
        ] {
            let link = prog.attach_cgroup(&cgroup, kind).map_err(|e| {
                let why = match e.raw_os_error() {
                    Some(libc::E2BIG) => format!(
                        "the kernel's limit of 64 programs per attach point of {} is reached (64 instances with published ports)",
                        cgroup_dir.display()
                    ),
                    Some(libc::EPERM) => "attaching to the cgroup root needs CAP_BPF and CAP_NET_ADMIN".into(),
                    _ => format!("cannot attach to {}: {e}", cgroup_dir.display()),
                };
                unavailable(why)
            })?;
            links.push(link);
        }
        Ok(LocalPath {
            _links: links,
            progs: vec![connect, getpeername],
            _maps: [dst, peer],
        })
    }

    /// The kernel's ids of the attached programs.
    pub fn program_ids(&self) -> Result<Vec<u32>> {
        self.progs.iter().map(Prog::id).collect()
    }
}

/// A load refusal, said in words a log reader can act on.
fn refused(e: Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EPERM) => unavailable(format!("{e} (needs CAP_BPF, or root)")),
        _ => unavailable(e.to_string()),
    }
}

/// `(published, instance)` pairs as the programs look them up; `0.0.0.0`
/// stands for any loopback address.
fn keys_for(routes: &[(SocketAddr, SocketAddr)]) -> Result<Vec<(SocketAddrV4, SocketAddrV4)>> {
    let mut out = Vec::new();
    let mut host: Option<Vec<Ipv4Addr>> = None;
    for (listen, target) in routes {
        let (SocketAddr::V4(listen), SocketAddr::V4(target)) = (listen, target) else {
            continue;
        };
        out.push((*listen, *target));
        if !listen.ip().is_unspecified() {
            continue;
        }
        let addrs = match &host {
            Some(a) => a,
            None => host.insert(
                crate::nl::Handle::new()?
                    .all_addresses()?
                    .into_iter()
                    .map(|(_, ip, _)| ip)
                    .filter(|ip| !ip.is_loopback())
                    .collect(),
            ),
        };
        for ip in addrs {
            out.push((SocketAddrV4::new(*ip, listen.port()), *target));
        }
    }
    out.sort();
    out.dedup_by_key(|(from, _)| *from);
    Ok(out)
}

/// A map key or value: the address and the port as `bpf_sock_addr` holds
/// them (network byte order, the port in a 32-bit word).
fn encode(a: SocketAddrV4) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&a.ip().octets());
    b[4..6].copy_from_slice(&a.port().to_be_bytes());
    b
}

/// `r` = the first octet of the IPv4 address in `r` (as loaded from a
/// context field).
fn first_octet(asm: &mut Asm, r: Reg) {
    if cfg!(target_endian = "little") {
        asm.and_imm(r, 0xff);
    } else {
        asm.rsh_imm(r, 24);
    }
}

/// Look `map` up with the key at `fp + key`; R0 = the value or 0.
fn lookup<'a>(a: &'a mut Asm, map: &Map, key: i16) -> &'a mut Asm {
    use Reg::*;
    a.load_map(R1, map)
        .mov(R2, Fp)
        .add_imm(R2, i32::from(key))
        .call(helper::MAP_LOOKUP)
}

/// Copy the context's (R6) destination address and port to `fp + at`, in
/// the layout of [`encode`].
fn save_destination(a: &mut Asm, at: i16) -> &mut Asm {
    use Reg::*;
    a.load(Size::W, R2, R6, CTX_USER_IP4)
        .store(Size::W, Fp, at, R2)
        .load(Size::W, R2, R6, CTX_USER_PORT)
        .store(Size::W, Fp, at + 4, R2)
}

/// Set the context's (R6) destination to the [`encode`]d address at `src`.
fn set_destination(a: &mut Asm, src: Reg) -> &mut Asm {
    use Reg::*;
    a.load(Size::W, R2, src, 0)
        .store(Size::W, R6, CTX_USER_IP4, R2)
        .load(Size::W, R2, src, 4)
        .store(Size::W, R6, CTX_USER_PORT, R2)
}

fn connect4(host_netns: u64, dst: &Map, peer: &Map) -> Asm {
    use Reg::*;
    let mut a = Asm::default();
    a.mov(R6, R1)
        // TCP only.
        .load(Size::W, R2, R6, CTX_TYPE)
        .jump_imm(Cond::Ne, R2, libc::SOCK_STREAM, "allow")
        // Clients in the host's network namespace only.
        .mov(R1, R6)
        .call(helper::NETNS_COOKIE)
        .load_imm64(R1, host_netns)
        .jump_reg(Cond::Ne, R0, R1, "allow")
        // A socket bound to loopback cannot reach the bridge: forwarder.
        .load(Size::Dw, R2, R6, CTX_SK)
        .load(Size::W, R2, R2, SK_SRC_IP4);
    first_octet(&mut a, R2);
    a.jump_imm(Cond::Eq, R2, 127, "allow");
    // key = (destination address, port) at fp-8.
    save_destination(&mut a, -8);
    lookup(&mut a, dst, -8)
        .jump_imm(Cond::Ne, R0, 0, "found")
        // Any loopback address: the 0.0.0.0 entry.
        .load(Size::W, R2, Fp, -8);
    first_octet(&mut a, R2);
    a.jump_imm(Cond::Ne, R2, 127, "allow")
        .store_imm(Size::W, Fp, -8, 0);
    lookup(&mut a, dst, -8)
        .jump_imm(Cond::Eq, R0, 0, "allow")
        .label("found")
        .mov(R7, R0)
        // peer[socket cookie] = original destination, for getpeername.
        .mov(R1, R6)
        .call(helper::SOCKET_COOKIE)
        .store(Size::Dw, Fp, -16, R0);
    save_destination(&mut a, -24)
        .load_map(R1, peer)
        .mov(R2, Fp)
        .add_imm(R2, -16)
        .mov(R3, Fp)
        .add_imm(R3, -24)
        .mov_imm(R4, 0)
        .call(helper::MAP_UPDATE);
    // Rewrite the destination to the instance.
    set_destination(&mut a, R7).label("allow").exit_with(1);
    a
}

fn getpeername4(peer: &Map) -> Asm {
    use Reg::*;
    let mut a = Asm::default();
    a.mov(R6, R1)
        .call(helper::SOCKET_COOKIE)
        .store(Size::Dw, Fp, -8, R0);
    lookup(&mut a, peer, -8).jump_imm(Cond::Eq, R0, 0, "out");
    set_destination(&mut a, R0).label("out").exit_with(1);
    a
}

/// The mount point of the cgroup v2 hierarchy's root (`/sys/fs/cgroup` on
/// a pure v2 host, `/sys/fs/cgroup/unified` on a hybrid one).
pub fn cgroup2_root() -> Result<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| unavailable(format!("cannot read /proc/self/mountinfo: {e}")))?;
    boxrun_common::mountinfo::parse_mountinfo(&info)
        .into_iter()
        .find(|m| m.fstype == "cgroup2" && m.root == "/")
        .map(|m| PathBuf::from(m.mount_point))
        .ok_or_else(|| {
            unavailable("no cgroup v2 hierarchy is mounted (mount cgroup2 to enable it)")
        })
}

/// The cookie of the caller's network namespace (`SO_NETNS_COOKIE`).
pub fn netns_cookie() -> Result<u64> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| unavailable(format!("cannot make a socket: {e}")))?;
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(unavailable(format!(
            "the kernel gives no network namespace cookie (SO_NETNS_COOKIE, Linux 5.14): {e}"
        )));
    }
    Ok(cookie)
}
