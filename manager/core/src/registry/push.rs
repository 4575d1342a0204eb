//! `image push NAME REF`: image NAME's file system as one gzip layer plus an
//! OCI config carrying its defaults, pushed as an OCI image manifest.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_client::client::{Config, ImageLayer};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::connection::{self, Connection};
use super::options::Options;
use super::progress::Progress;
use super::reference;
use crate::error::{Context, Result};
use crate::image::{self, import_oci, Image, ImageConfig};
use crate::store::Store;
use crate::{instance_disk, mounts, util};

/// Push image `name` to `reference`; returns the manifest's URL.
pub fn push(
    store: &Store,
    name: &str,
    reference: &str,
    opts: &Options,
    progress: &mut dyn FnMut(&Progress),
) -> Result<String> {
    let img = image::get(store, name)?;
    let r = reference::parse(reference)?;
    let (layer, diff_id) = layer_of(store, &img)?;
    let config = config_json(&img.meta.config, &diff_id);
    let layer = ImageLayer::oci_v1_gzip(layer, None);
    let config = Config::oci_v1(serde_json::to_vec(&config)?, None);
    let blobs = [
        (layer.sha256_digest(), layer.data.len() as u64),
        (config.sha256_digest(), config.data.len() as u64),
    ];
    for (digest, size) in &blobs {
        progress(&Progress::Start {
            digest: digest.clone(),
            total: Some(*size),
        });
    }
    let resp = connection::block_on(async {
        let conn = Connection::open(store, &r, opts, None, true).await?;
        conn.client
            .push(&r, &[layer], config, &conn.auth, None)
            .await
            .map_err(|e| conn.explain(e, &r))
    })??;
    for (digest, size) in blobs {
        progress(&Progress::Done { digest, size });
    }
    Ok(resp.manifest_url)
}

/// The image config for a one-layer image with `defaults`.
fn config_json(defaults: &ImageConfig, diff_id: &str) -> serde_json::Value {
    let created = util::format_time(util::now_secs());
    json!({
        "created": created,
        "architecture": import_oci::host_arch(),
        "os": "linux",
        "config": {
            "Entrypoint": defaults.entrypoint,
            "Cmd": defaults.cmd,
            "Env": defaults.env,
            "WorkingDir": defaults.workdir,
            "User": defaults.user,
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "boxctl image push"}],
    })
}

/// A read-only mount of an image's disk, unmounted and removed on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        if mounts::is_mount_point(&self.0) {
            let _ = mounts::unmount(&self.0);
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Writes through to `inner`, hashing what passes.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The image's file system as a gzip tar, and the digest of the tar (its diff id).
fn layer_of(store: &Store, img: &Image) -> Result<(Vec<u8>, String)> {
    let mnt = store
        .images_dir()
        .join(format!(".push-{}", util::random_id()));
    let guard = Mounted(mnt);
    instance_disk::attach_mount(&img.disk, &guard.0, true)
        .with_context(|| format!("cannot mount the disk of image {}", img.meta.name))?;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut w = Hashing {
        inner: gz,
        hasher: Sha256::new(),
    };
    let root = crate::fs_at::open_dir_path(Path::new(&guard.0))?;
    crate::copy_tar::write_tar(&root, OsStr::new("."), &mut w)
        .with_context(|| format!("cannot pack image {}", img.meta.name))?;
    let diff_id = super::content_store::digest_of(w.hasher);
    let data = w
        .inner
        .finish()
        .with_context(|| format!("cannot compress image {}", img.meta.name))?;
    drop(guard);
    Ok((data, diff_id))
}
