//! Host interface names: every interface this crate creates on the host
//! starts with `bx` and fits the kernel's 15-byte limit.

use crate::error::{Error, Result};

/// The kernel's limit on interface names (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// Prefix of every host interface created by boxctl.
pub const HOST_PREFIX: &str = "bx";

/// Checks an interface name the kernel would accept: 1..=15 bytes, not
/// `.`/`..`, no `/`, `:`, whitespace or control characters.
pub fn validate_ifname(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > IFNAME_MAX {
        return bad("it is longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("it is a path component");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return bad("it contains '/', ':', whitespace or a control character");
    }
    Ok(())
}

/// Checks a host-side name: valid and starting with `bx`.
pub fn validate_host_ifname(name: &str) -> Result<()> {
    validate_ifname(name)?;
    if !name.starts_with(HOST_PREFIX) {
        return Err(Error::InvalidName {
            name: name.to_string(),
            reason: "host interfaces created by boxctl must start with \"bx\"".into(),
        });
    }
    Ok(())
}

/// FNV-1a, 64 bits: small, stable across releases and platforms.
pub(crate) fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// The bridge name for a boxctl network, deterministic.
///
/// Names of up to 12 characters made of `[A-Za-z0-9_-]` map to
/// `bx-<name>`; anything else maps to `bx-` + up to 6 sanitized characters
/// + `.` + 5 hex digits of a hash of the full name. The `.` cannot appear in
///   the first form, so the two forms never collide.
pub fn bridge_name_for(network_name: &str) -> String {
    let direct = format!("bx-{network_name}");
    if !network_name.is_empty() && direct.len() <= IFNAME_MAX && network_name.chars().all(plain) {
        return direct;
    }
    let head: String = network_name.chars().filter(|c| plain(*c)).take(6).collect();
    let hash = fnv1a(network_name.as_bytes()) & 0xf_ffff;
    format!("bx-{head}.{hash:05x}")
}

/// A stable, locally administered unicast MAC address for bridge `name`.
pub(crate) fn bridge_mac(name: &str) -> [u8; 6] {
    let h = fnv1a(name.as_bytes()).to_be_bytes();
    [0x02, h[3], h[4], h[5], h[6], h[7]]
}

/// A host-side veth name for attachment number `index` of an instance,
/// deterministic: `bx` + 9 hex digits of a hash of the instance id + `v` +
/// the index (0..=999).
pub fn veth_name_for(instance_id: &str, index: u16) -> String {
    let hash = fnv1a(instance_id.as_bytes()) & 0xf_ffff_ffff;
    format!("bx{hash:09x}v{}", index % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names() {
        assert_eq!(bridge_name_for("web"), "bx-web");
        assert_eq!(bridge_name_for("abcdefghijkl"), "bx-abcdefghijkl");
        let long = bridge_name_for("abcdefghijklm");
        assert!(long.starts_with("bx-abcdef."), "{long}");
        assert_eq!(long.len(), 15);
        assert_eq!(long, bridge_name_for("abcdefghijklm"));
        assert_ne!(long, bridge_name_for("abcdefghijkln"));
        let odd = bridge_name_for("my net/ä");
        assert!(odd.starts_with("bx-mynet."), "{odd}");
        assert!(validate_host_ifname(&odd).is_ok());
        assert!(validate_host_ifname(&bridge_name_for("")).is_ok());
    }

    #[test]
    fn veth_names() {
        let a = veth_name_for("0123456789abcdef", 0);
        assert!(validate_host_ifname(&a).is_ok(), "{a}");
        assert!(a.len() <= IFNAME_MAX);
        assert_ne!(a, veth_name_for("0123456789abcdef", 1));
        assert_ne!(a, veth_name_for("0123456789abcdee", 0));
        assert_eq!(veth_name_for("x", 999).len(), 15);
    }

    #[test]
    fn name_checks() {
        assert!(validate_ifname("eth0").is_ok());
        assert!(validate_ifname("").is_err());
        assert!(validate_ifname("a234567890123456").is_err());
        assert!(validate_ifname("a b").is_err());
        assert!(validate_ifname("a/b").is_err());
        assert!(validate_ifname("..").is_err());
        assert!(validate_host_ifname("eth0").is_err());
        assert!(validate_host_ifname("bx0").is_ok());
    }
}
