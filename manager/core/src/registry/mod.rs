//! Images from and to registries (OCI distribution spec): `image pull`,
//! `image push`, `login`, `logout`.
//!
//! The protocol is `oci-client`'s (auth challenges, manifest lists, chunked
//! uploads), which is async: each call here runs it on a current-thread
//! tokio runtime of its own (`connection::block_on`) and returns when
//! done, so the rest of the library stays blocking. Blobs land in the
//! store's content store ([`content_store`]), verified against their
//! digest; a pulled image is then flattened into a boxctl image by the
//! same code that imports OCI layouts ([`crate::image::import_oci`]).
//!
//! TLS trusts the system roots plus, for registry `HOST[:PORT]`, every
//! `*.crt` in `<store>/certs.d/HOST[:PORT]/`, `/etc/containers/certs.d/HOST[:PORT]/`
//! and `/etc/docker/certs.d/HOST[:PORT]/` (as podman and docker look them up).

pub mod auth;
mod connection;
pub mod content_store;
pub mod login;
pub mod options;
pub mod progress;
mod pull;
mod push;
pub mod reference;

pub use login::{login, logout};
pub use options::Options;
pub use progress::Progress;
pub use pull::pull;
pub use push::push;
