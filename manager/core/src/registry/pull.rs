//! `image pull REF [NAME]`: the manifest (a manifest list resolves to its
//! linux/amd64 entry; OCI and docker v2 schema 2 alike), the config and
//! every layer not yet in the content store are downloaded and verified,
//! then the layers (gzip, zstd or plain, whiteouts included) are flattened
//! into a new boxctl image.

use futures_util::StreamExt as _;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::Reference;
use serde_json::json;

use super::connection::{self, one_line, Connection};
use super::content_store::ContentStore;
use super::options::Options;
use super::progress::Progress;
use super::reference;
use crate::error::{Error, Result};
use crate::image::{self, import_oci, ImageMeta};
use crate::store::Store;
use crate::{bail, util};

/// Pull `reference` as image `name` (by default the repository's last
/// component, see [`reference::default_name`]); `progress` hears of each blob.
pub fn pull(
    store: &Store,
    reference: &str,
    name: Option<&str>,
    opts: &Options,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ImageMeta> {
    let r = reference::parse(reference)?;
    let name = name
        .map(String::from)
        .unwrap_or_else(|| reference::default_name(&r));
    util::validate_name("image", &name)?;
    if store.image_dir(&name).exists() {
        bail!(
            "image {name} already exists: remove it with `boxctl image rm {name}` or pull under another name"
        );
    }
    let cs = ContentStore::open(store)?;
    let (manifest, digest) = connection::block_on(fetch(store, &r, opts, &cs, progress))??;
    let manifest_json = serde_json::to_value(&manifest)?;
    let meta = image::create_from_tree(store, &name, None, "registry", |rootfs| {
        import_oci::apply_manifest(cs.layout_root(), &manifest_json, rootfs)
    })?;
    let origin = json!({
        "reference": r.whole(),
        "manifest_digest": digest,
        "config": manifest.config.digest,
        "layers": manifest.layers.iter().map(|l| &l.digest).collect::<Vec<_>>(),
    });
    crate::store::write_atomic(
        &store.image_dir(&name).join(image::ORIGIN_FILE),
        serde_json::to_string_pretty(&origin)?.as_bytes(),
    )?;
    Ok(meta)
}

/// The manifest and its digest, with the config and layers in the content store.
async fn fetch(
    store: &Store,
    r: &Reference,
    opts: &Options,
    cs: &ContentStore,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(OciImageManifest, String)> {
    let conn = Connection::open(store, r, opts, None, false).await?;
    let (manifest, digest) = conn
        .client
        .pull_image_manifest(r, &conn.auth)
        .await
        .map_err(|e| conn.explain(e, r))?;
    for desc in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if cs.has(&desc.digest) {
            progress(&Progress::Present {
                digest: desc.digest.clone(),
            });
            continue;
        }
        fetch_blob(&conn, r, desc, cs, progress).await?;
    }
    Ok((manifest, digest))
}

/// Download blob `desc` into the content store (verified, or nothing kept).
async fn fetch_blob(
    conn: &Connection,
    r: &Reference,
    desc: &OciDescriptor,
    cs: &ContentStore,
    progress: &mut dyn FnMut(&Progress),
) -> Result<()> {
    let mut stream = conn
        .client
        .pull_blob_stream(r, desc)
        .await
        .map_err(|e| conn.explain(e, r))?;
    progress(&Progress::Start {
        digest: desc.digest.clone(),
        total: stream
            .content_length
            .or(u64::try_from(desc.size).ok().filter(|s| *s > 0)),
    });
    let mut w = cs.writer(&desc.digest)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Error::Registry(format!(
                "blob {} of {} from registry {} refused: {} (nothing of it was kept)",
                desc.digest,
                r.whole(),
                r.registry(),
                one_line(&e)
            ))
        })?;
        w.write(&chunk)?;
        progress(&Progress::Bytes {
            digest: desc.digest.clone(),
            done: w.written(),
        });
    }
    let size = w.commit()?;
    progress(&Progress::Done {
        digest: desc.digest.clone(),
        size,
    });
    Ok(())
}
