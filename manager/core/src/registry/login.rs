//! `login` (credentials checked against the registry, then stored) and `logout`.

use super::auth::{self, Credentials};
use super::connection::{self, Connection};
use super::options::Options;
use super::reference;
use crate::error::Result;
use crate::store::Store;

/// Check `creds` against `registry` (`HOST[:PORT]`) and store them in
/// `<store>/auth.json`.
pub fn login(store: &Store, registry: &str, creds: &Credentials, opts: &Options) -> Result<()> {
    if registry.is_empty() || registry.contains('/') {
        crate::invalid!("invalid registry {registry:?}: give HOST[:PORT]");
    }
    let probe = reference::parse(&format!("{registry}/boxctl-login-check:latest"))?;
    connection::block_on(async {
        let conn = Connection::open(store, &probe, opts, Some(creds.clone()), false).await?;
        conn.check_credentials(&probe).await
    })??;
    auth::save(store, registry, creds)
}

/// Forget the credentials stored for `registry` in `<store>/auth.json`.
pub fn logout(store: &Store, registry: &str) -> Result<()> {
    auth::remove(store, registry)
}
