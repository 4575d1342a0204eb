//! Namespaces: which to create with clone, which to join by path, and checks that a
//! path really is a namespace of the declared type.

use crate::error::{Error, Result};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use std::os::fd::{AsRawFd, OwnedFd};

/// The clone/unshare flag of a namespace type.
pub fn flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => 0x80, // CLONE_NEWTIME
    }
}

/// The /proc/PID/ns/ file name of a type.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// A namespace to join: its type and an open fd on the namespace file.
pub struct Join {
    /// Namespace type.
    pub typ: LinuxNamespaceType,
    /// Open fd (O_RDONLY|O_CLOEXEC) on the path.
    pub fd: OwnedFd,
}

/// The namespace plan for a container.
#[derive(Default)]
pub struct Plan {
    /// Flags for new namespaces created at clone time.
    pub clone_flags: libc::c_int,
    /// New namespaces unshared by the child later (network, time, cgroup after the join).
    pub late_unshare: libc::c_int,
    /// Namespaces joined by path, in the order they must be entered (user first).
    pub joins: Vec<Join>,
    /// Whether a new user namespace is created (the parent writes id maps).
    pub new_user: bool,
    /// Whether the container has a pid namespace of its own.
    pub new_pid: bool,
    /// Whether a pid namespace is joined by path (the parent enters it before clone).
    pub join_pid: Option<OwnedFd>,
    /// Whether any mount namespace (new or joined) is used.
    pub has_mount_ns: bool,
    /// Whether a new network namespace is created (its loopback is brought up, as runc does).
    pub new_net: bool,
    /// Whether the runtime itself runs in a user namespace (rootless podman): a user
    /// namespace's rules (no mknod, devices bind-mounted) apply without one of the
    /// container's own.
    pub runtime_in_userns: bool,
}

impl Plan {
    /// Whether the container runs in a user namespace, new or joined.
    pub fn in_userns(&self) -> bool {
        self.new_user || self.joins.iter().any(|j| j.typ == LinuxNamespaceType::User)
    }
}

const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Open a namespace path and check it is a namespace of type `t`.
pub fn open_checked(path: &std::path::Path, t: LinuxNamespaceType) -> Result<OwnedFd> {
    let fd = crate::util::open_owned(path, nix::fcntl::OFlag::empty())
        .map_err(|e| Error::field(format!("namespace path {}", path.display()), e))?;
    // SAFETY: NS_GET_NSTYPE takes no argument and returns the CLONE_NEW* type.
    let got = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    if got < 0 {
        return Err(Error::Config(format!(
            "namespace path {} is not a namespace file",
            path.display()
        )));
    }
    if got != flag(t) {
        return Err(Error::Config(format!(
            "namespace path {} is not a {} namespace",
            path.display(),
            proc_name(t)
        )));
    }
    Ok(fd)
}

/// Build the plan from `linux.namespaces`.
pub fn plan(list: &[LinuxNamespace]) -> Result<Plan> {
    let mut p = Plan::default();
    let user_joined = list
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_some());
    for ns in list {
        let t = ns.typ();
        if t == LinuxNamespaceType::Mount {
            p.has_mount_ns = true;
        }
        if t == LinuxNamespaceType::Network {
            p.new_net = ns.path().as_ref().is_none_or(|p| p.as_os_str().is_empty());
        }
        match ns.path() {
            Some(path) if !path.as_os_str().is_empty() => {
                let fd = open_checked(path, t)?;
                if t == LinuxNamespaceType::Pid {
                    p.join_pid = Some(fd);
                } else if t == LinuxNamespaceType::User {
                    p.joins.insert(0, Join { typ: t, fd });
                } else {
                    p.joins.push(Join { typ: t, fd });
                }
            }
            _ => match t {
                // Network: creating one costs ~1 ms of kernel time; the child does it
                // while the runtime makes the cgroups, instead of the runtime in clone().
                LinuxNamespaceType::Cgroup
                | LinuxNamespaceType::Time
                | LinuxNamespaceType::Network => {
                    p.late_unshare |= flag(t);
                }
                LinuxNamespaceType::Pid => {
                    p.new_pid = true;
                    p.clone_flags |= flag(t);
                }
                LinuxNamespaceType::User => {
                    p.new_user = true;
                    p.clone_flags |= flag(t);
                }
                _ if user_joined => p.late_unshare |= flag(t),
                _ => p.clone_flags |= flag(t),
            },
        }
    }
    if user_joined && p.new_pid {
        return Err(Error::Config(
            "a new pid namespace together with a user namespace joined by path is not supported"
                .into(),
        ));
    }
    Ok(p)
}

/// Enter a namespace by fd.
pub fn setns(j: &Join) -> Result<()> {
    setns_with(&crate::syscall::Linux, j)
}

/// [`setns`] through `sys`.
pub fn setns_with(sys: &dyn crate::syscall::Syscall, j: &Join) -> Result<()> {
    sys.setns(j.fd.as_raw_fd(), flag(j.typ))
        .map_err(|e| Error::sys(format!("join {} namespace", proc_name(j.typ)), e))
}

/// Bring up `lo` in the current (new) network namespace, as runc and crun do: engines
/// that ask for an empty network namespace (`--network none`) expect a usable loopback.
pub fn loopback_up() -> Result<()> {
    let err = |what: &str, e: nix::Error| {
        Error::sys(
            format!("bring up lo in the new network namespace: {what}"),
            e,
        )
    };
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| err("socket", e))?;
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo") {
        *d = *s as libc::c_char;
    }
    // SAFETY: req is a valid ifreq naming "lo"; the kernel fills ifru_flags.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } != 0 {
        return Err(err("SIOCGIFFLAGS", nix::Error::last()));
    }
    // SAFETY: ifru_flags was set by SIOCGIFFLAGS just above.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as above.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } != 0 {
        return Err(err("SIOCSIFFLAGS", nix::Error::last()));
    }
    Ok(())
}
