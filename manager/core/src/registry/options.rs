//! How a registry command reaches its registry.

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Accept plain http and unverified TLS (only when asked).
    pub insecure: bool,
}
