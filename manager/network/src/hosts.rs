//! Contents of an instance's /etc/hosts and /etc/resolv.conf.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::error::{Error, Result};

/// One /etc/hosts line: an address and its names (first one canonical).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The address.
    pub addr: IpAddr,
    /// Host names for it, e.g. `["web1", "web1.boxnet"]`.
    pub names: Vec<String>,
}

impl HostEntry {
    /// Convenience constructor.
    pub fn new(addr: impl Into<IpAddr>, names: &[&str]) -> HostEntry {
        HostEntry {
            addr: addr.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }
}

/// Whether `name` is an acceptable host name: 1..=253 bytes of dot-separated
/// labels of 1..=63 ASCII letters, digits, `-` or `_`, not starting or
/// ending with `-`.
pub fn is_valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Renders /etc/hosts: the usual loopback lines, then one line per entry in
/// the given order (put the instance itself first so its own name resolves
/// to its address, then its peers on the same networks).
///
/// Fails on an entry without names or with a name that is not a valid host
/// name (nothing that could inject another line).
pub fn render_hosts(entries: &[HostEntry]) -> Result<String> {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for entry in entries {
        if entry.names.is_empty() {
            return Err(Error::InvalidHostsEntry {
                entry: entry.addr.to_string(),
                reason: "an address needs at least one name".into(),
            });
        }
        if let Some(bad) = entry.names.iter().find(|n| !is_valid_hostname(n)) {
            return Err(Error::InvalidHostsEntry {
                entry: bad.clone(),
                reason: "host names are dot-separated labels of letters, digits, '-' and '_'"
                    .into(),
            });
        }
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{}\t{}", entry.addr, entry.names.join(" "));
    }
    Ok(out)
}

/// Renders /etc/resolv.conf with the given name servers (in order).
pub fn render_resolv_conf(nameservers: &[IpAddr]) -> String {
    let mut out = String::new();
    for ns in nameservers {
        let _ = writeln!(out, "nameserver {ns}");
    }
    out
}

/// The name servers of a host's resolv.conf (`content`) that an instance can
/// use: loopback resolvers (127.0.0.53 and the like) are dropped, since they
/// are unreachable from inside a network namespace.
pub fn usable_host_nameservers(content: &str) -> Vec<IpAddr> {
    content
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => addr.parse::<IpAddr>().ok(),
                _ => None,
            }
        })
        .filter(|a| !a.is_loopback())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn hosts_file() {
        let text = render_hosts(&[
            HostEntry::new(Ipv4Addr::new(10, 209, 0, 2), &["web1", "web1.net"]),
            HostEntry::new(Ipv4Addr::new(10, 209, 0, 3), &["db"]),
        ])
        .unwrap();
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"), "{text}");
        assert!(text.contains("\n10.209.0.2\tweb1 web1.net\n"), "{text}");
        assert!(text.ends_with("10.209.0.3\tdb\n"), "{text}");
    }

    #[test]
    fn hosts_rejects_injection() {
        for bad in ["a\n1.2.3.4 evil", "a b", "", "-x", "a..b", "x#y"] {
            let err = render_hosts(&[HostEntry::new(Ipv4Addr::LOCALHOST, &[bad])]);
            assert!(err.is_err(), "{bad:?} accepted");
        }
        assert!(render_hosts(&[HostEntry::new(Ipv4Addr::LOCALHOST, &[])]).is_err());
    }

    #[test]
    fn resolv_conf() {
        let ns = usable_host_nameservers(
            "# c\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch x\nnameserver ::1\nnameserver 2001:db8::1\n",
        );
        assert_eq!(
            ns,
            vec![
                "192.0.2.53".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert_eq!(
            render_resolv_conf(&ns),
            "nameserver 192.0.2.53\nnameserver 2001:db8::1\n"
        );
    }
}
