//! The store's default network, `boxctl0` (as docker0 or lxcbr0): what `run`
//! and `create` attach an instance to when no `--net` is given.
//!
//! It is an ordinary boxctl network, made on first use
//! ([`crate::networking::ensure_default`]) with a free /24 of
//! [`crate::networking::DEFAULT_SUBNET_RANGE`]; only its bridge name differs:
//! `bx0-` + the first 8 hex digits of the store id, so that two stores on
//! one host (`--root A`, `--root B`) each have their own bridge instead of
//! both asking for `bx-boxctl0` (which the owner marks would refuse to
//! share). It stays until `boxctl network rm boxctl0` (refused while an
//! instance uses it); the next run without `--net` makes it again. No NAT:
//! instances reach each other and the host, not beyond.

/// The default network's name.
pub const DEFAULT_NETWORK: &str = "boxctl0";

/// The `--net` entry (`NAME=`, no fixed address) of an instance given no `--net`.
pub fn default_attachment() -> String {
    format!("{DEFAULT_NETWORK}=")
}

/// The bridge of the default network of the store whose id is `store_id`:
/// `bx0-` + its first 8 hex digits. Never equal to a [`boxctl_network::bridge_name_for`]
/// name (`bx-…`) nor to a veth name (`bx` + hex + `v` + index).
pub fn bridge_name(store_id: &str) -> String {
    let head: String = store_id.chars().take(8).collect();
    format!("bx0-{head}")
}

/// Whether `networks` (`NAME=ADDR` entries) name the default network.
pub fn wanted(networks: &[String]) -> bool {
    networks
        .iter()
        .any(|n| n.split_once('=').map_or(n.as_str(), |(name, _)| name) == DEFAULT_NETWORK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_are_per_store_and_apart_from_other_names() {
        let a = bridge_name("0123456789abcdef");
        assert_eq!(a, "bx0-01234567");
        assert_ne!(a, bridge_name("fedcba9876543210"));
        assert!(boxctl_network::validate_host_ifname(&a).is_ok());
        assert!(!a.starts_with("bx-"));
        assert!(!a.contains('v'));
    }

    #[test]
    fn wanted_reads_names() {
        assert!(wanted(&[default_attachment()]));
        assert!(wanted(&["web=".into(), "boxctl0=10.209.3.7".into()]));
        assert!(!wanted(&["boxctl01=".into()]));
        assert!(!wanted(&[]));
    }
}
