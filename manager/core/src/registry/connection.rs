//! One registry session: the `oci-client` client (TLS roots, `--insecure`),
//! the credentials it presents, the runtime it runs on, and registry
//! errors turned into one line that says what to do.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use oci_client::client::{
    linux_amd64_resolver, Certificate, CertificateEncoding, ClientConfig, ClientProtocol,
};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use super::auth::{self, Credentials};
use super::options::Options;
use crate::error::{Context, Error, Result};
use crate::store::Store;

/// Run `f` to completion on a current-thread runtime made for the call.
pub(crate) fn block_on<F: Future>(f: F) -> Result<F::Output> {
    install_tls_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the registry client's runtime")?;
    Ok(rt.block_on(f))
}

/// reqwest is built without a TLS provider; boxctl's is ring (no C build of
/// aws-lc), whose lack of post-quantum key exchange rustls now flags.
#[allow(deprecated)]
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client set up for one registry.
pub(crate) struct Connection {
    /// The protocol client.
    pub client: Client,
    /// What it presents.
    pub auth: RegistryAuth,
    /// `HOST[:PORT]` as the user wrote it.
    host: String,
    /// The user logged in, if any.
    user: Option<String>,
}

/// The directories whose `*.crt` files are trusted for `host`.
fn cert_dirs(store: &Store, host: &str) -> Vec<PathBuf> {
    [
        store.root().join("certs.d"),
        PathBuf::from("/etc/containers/certs.d"),
        PathBuf::from("/etc/docker/certs.d"),
    ]
    .into_iter()
    .map(|d| d.join(host))
    .collect()
}

fn extra_roots(dirs: &[PathBuf]) -> Result<Vec<Certificate>> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        for e in rd {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "crt") {
                let data =
                    std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
                out.push(Certificate {
                    encoding: CertificateEncoding::Pem,
                    data,
                });
            }
        }
    }
    Ok(out)
}

fn make_client(roots: &[Certificate], insecure: bool, protocol: ClientProtocol) -> Result<Client> {
    let config = ClientConfig {
        protocol,
        accept_invalid_certificates: insecure,
        extra_root_certificates: roots.to_vec(),
        platform_resolver: Some(Box::new(linux_amd64_resolver)),
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(120)),
        ..Default::default()
    };
    Client::try_from(config).map_err(|e| {
        Error::Registry(format!(
            "cannot set up the registry client: {} (check the certificates under certs.d)",
            one_line(&e)
        ))
    })
}

impl Connection {
    /// Reach the registry of `r` for a pull (or a push), presenting `creds`
    /// or else the stored credentials; with `--insecure`, unverified TLS
    /// first, then plain http.
    pub async fn open(
        store: &Store,
        r: &Reference,
        opts: &Options,
        creds: Option<Credentials>,
        push: bool,
    ) -> Result<Connection> {
        let host = r.registry().to_string();
        let creds = match creds {
            Some(c) => Some(c),
            None => auth::lookup(store, &host)?,
        };
        let user = creds.as_ref().map(|c| c.user.clone());
        let auth = creds.map_or(RegistryAuth::Anonymous, |c| {
            RegistryAuth::Basic(c.user, c.password)
        });
        let dirs = cert_dirs(store, r.resolve_registry());
        let roots = extra_roots(&dirs)?;
        let op = if push {
            RegistryOperation::Push
        } else {
            RegistryOperation::Pull
        };
        let mut conn = Connection {
            client: make_client(&roots, opts.insecure, ClientProtocol::Https)?,
            auth,
            host,
            user,
        };
        match conn.client.auth(r, &conn.auth, op).await {
            Ok(_) => Ok(conn),
            Err(OciDistributionError::RequestError(_)) if opts.insecure => {
                conn.client = make_client(&roots, true, ClientProtocol::Http)?;
                match conn.client.auth(r, &conn.auth, op).await {
                    Ok(_) => Ok(conn),
                    Err(e) => Err(conn.explain(e, r)),
                }
            }
            Err(OciDistributionError::RequestError(e)) => Err(Error::Registry(format!(
                "cannot reach registry {} over https: {} (trust its CA by putting it in {}/ca.crt, or pass --insecure for plain http or an unverified certificate)",
                conn.host,
                one_line(&e),
                dirs[0].display()
            ))),
            Err(e) => Err(conn.explain(e, r)),
        }
    }

    /// Whether the registry accepts the credentials (a manifest lookup that
    /// is refused only for want of them).
    pub async fn check_credentials(&self, probe: &Reference) -> Result<()> {
        match self.client.fetch_manifest_digest(probe, &self.auth).await {
            Err(e) if is_auth_error(&e) => Err(self.explain(e, probe)),
            Err(OciDistributionError::RequestError(e)) => Err(Error::Registry(format!(
                "cannot reach registry {}: {}",
                self.host,
                one_line(&e)
            ))),
            _ => Ok(()),
        }
    }

    /// `e`, met while working on `r`, as one line saying what to do.
    pub fn explain(&self, e: OciDistributionError, r: &Reference) -> Error {
        let host = &self.host;
        let reference = r.whole();
        let msg = if is_auth_error(&e) {
            match &self.user {
                Some(u) => format!(
                    "registry {host} refused the credentials of user {u} for {reference}: log in again with `boxctl login {host}`"
                ),
                None => format!(
                    "registry {host} needs credentials for {reference}: log in with `boxctl login {host}`"
                ),
            }
        } else if is_not_found(&e) {
            format!("no image {reference} in registry {host}: check the repository and tag")
        } else {
            match e {
                OciDistributionError::DigestError(d) => format!(
                    "a blob of {reference} from registry {host} does not match its digest ({d}): refusing it, nothing was kept"
                ),
                OciDistributionError::RequestError(e) => {
                    format!("cannot reach registry {host}: {}", one_line(&e))
                }
                other => format!("registry {host} failed on {reference}: {}", one_line(&other)),
            }
        };
        Error::Registry(msg)
    }
}

fn is_auth_error(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => true,
        OciDistributionError::ServerError { code, .. } => *code == 401,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|x| matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        _ => false,
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| {
            matches!(
                x.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound
            )
        }),
        _ => false,
    }
}

/// An error and its sources on one line, repeats left out.
pub(crate) fn one_line(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = s.source();
    }
    out.replace('\n', " ")
}
