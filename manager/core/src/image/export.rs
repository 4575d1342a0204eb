//! `image export`: an image as a docker archive, an OCI archive or an OCI
//! layout directory, so that podman, docker and skopeo take it. The disk is
//! mounted read-only and its tree written as one uncompressed layer; the
//! config keeps the imported image's (history marked as flattened) or is
//! made from the image's defaults.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::bail;
use crate::error::{Context, Result};
use crate::store::Store;
use crate::{fs_at, instance_disk, mounts, util};

use super::{get, Image, OCI_CONFIG};

const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The archive or directory formats `image export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `docker save`'s tar (manifest.json, config, layer.tar).
    DockerArchive,
    /// An OCI image layout in a tar.
    OciArchive,
    /// An OCI image layout directory.
    OciDir,
}

impl std::str::FromStr for Format {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> Result<Format> {
        Ok(match s {
            "docker-archive" => Format::DockerArchive,
            "oci-archive" => Format::OciArchive,
            "oci-dir" => Format::OciDir,
            other => crate::invalid!(
                "unknown export format {other:?}: use docker-archive, oci-archive or oci-dir"
            ),
        })
    }
}

/// A blob written under `blobs/sha256/`.
struct Blob {
    digest: String,
    size: u64,
}

impl Blob {
    fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// Work directory and read-only mount of the image, released on drop.
struct Work {
    dir: PathBuf,
}

impl Drop for Work {
    fn drop(&mut self) {
        let _ = mounts::unmount(&self.dir.join("rootfs"));
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Export image `name` to `out` in `format`; returns the image reference
/// written in it (`NAME:latest`).
pub fn export(store: &Store, name: &str, format: Format, out: &Path) -> Result<String> {
    let img = get(store, name)?;
    if format == Format::OciDir && fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "{} exists and is not empty: give a new directory",
            out.display()
        );
    }
    let work = Work {
        dir: store.images_dir().join(format!(
            ".tmp-{}-export-{}",
            std::process::id(),
            util::random_id()
        )),
    };
    let blobs = work.dir.join("layout/blobs/sha256");
    fs::create_dir_all(&blobs).with_context(|| format!("cannot create {}", blobs.display()))?;
    let rootfs = work.dir.join("rootfs");
    instance_disk::attach_mount(&img.disk, &rootfs, true)?;
    let layer_tmp = work.dir.join("layer.tar");
    write_layer(&rootfs, &layer_tmp)?;
    mounts::unmount(&rootfs)?;
    let layer = store_blob(&blobs, &layer_tmp)?;
    let reference = format!("{name}:latest");
    let config = store_json(&blobs, &work.dir, &config_of(store, &img, &layer)?)?;
    let manifest = store_json(
        &blobs,
        &work.dir,
        &json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": config.digest, "size": config.size},
            "layers": [{"mediaType": LAYER_TYPE, "digest": layer.digest, "size": layer.size}],
        }),
    )?;
    let layout = work.dir.join("layout");
    write_file(
        &layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MANIFEST_TYPE,
            "digest": manifest.digest,
            "size": manifest.size,
            "annotations": {"org.opencontainers.image.ref.name": reference},
        }],
    });
    write_file(&layout.join("index.json"), index.to_string().as_bytes())?;
    match format {
        Format::OciDir => {
            fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
            for entry in ["oci-layout", "index.json", "blobs"] {
                copy_tree(&layout.join(entry), &out.join(entry))?;
            }
        }
        Format::OciArchive => write_tar(out, |b| {
            b.append_dir_all(".", &layout)?;
            Ok(())
        })?,
        Format::DockerArchive => {
            let manifest = json!([{
                "Config": format!("{}.json", config.hex()),
                "RepoTags": [reference],
                "Layers": [format!("{}/layer.tar", layer.hex())],
            }]);
            let blob = |b: &Blob| blobs.join(b.hex());
            write_tar(out, |b| {
                append_bytes(b, "manifest.json", manifest.to_string().as_bytes())?;
                b.append_path_with_name(blob(&config), format!("{}.json", config.hex()))?;
                b.append_path_with_name(blob(&layer), format!("{}/layer.tar", layer.hex()))?;
                Ok(())
            })?
        }
    }
    Ok(reference)
}

/// The image's tree (but ext4's lost+found) as an uncompressed tar layer.
fn write_layer(rootfs: &Path, out: &Path) -> Result<()> {
    let dir = fs_at::open_dir_path(rootfs)?;
    let mut file = std::io::BufWriter::new(
        File::create(out).with_context(|| format!("cannot create {}", out.display()))?,
    );
    {
        let mut b = tar::Builder::new(&mut file as &mut dyn Write);
        let mut report = crate::copy_tar::CopyReport::default();
        for child in fs_at::list_dir(dir.as_raw_fd())? {
            if child == "lost+found" {
                continue;
            }
            let path = PathBuf::from(&child);
            crate::copy_tar::tar_entry(&mut b, dir.as_raw_fd(), &child, &path, &mut report)?;
        }
        b.finish()
            .with_context(|| format!("cannot write {} (is the disk full?)", out.display()))?;
    }
    file.flush()
        .with_context(|| format!("cannot write {} (is the disk full?)", out.display()))
}

/// The image config: the imported one, or one made from the defaults;
/// its layers replaced by the flattened one.
fn config_of(store: &Store, img: &Image, layer: &Blob) -> Result<Value> {
    let path = store.image_dir(&img.meta.name).join(OCI_CONFIG);
    let mut config = match fs::read_to_string(&path) {
        Ok(t) => {
            serde_json::from_str(&t).with_context(|| format!("{} is damaged", path.display()))?
        }
        Err(_) => {
            let c = &img.meta.config;
            let mut cfg = json!({});
            for (k, v) in [
                ("Env", json!(c.env)),
                ("Entrypoint", json!(c.entrypoint)),
                ("Cmd", json!(c.cmd)),
            ] {
                if v.as_array().is_some_and(|a| !a.is_empty()) {
                    cfg[k] = v;
                }
            }
            if !c.workdir.is_empty() {
                cfg["WorkingDir"] = json!(c.workdir);
            }
            if !c.user.is_empty() {
                cfg["User"] = json!(c.user);
            }
            json!({"created": img.meta.created, "config": cfg})
        }
    };
    if config["architecture"].as_str().is_none() {
        config["architecture"] = json!(super::import_oci::host_arch());
    }
    if config["os"].as_str().is_none() {
        config["os"] = json!("linux");
    }
    config["rootfs"] = json!({"type": "layers", "diff_ids": [layer.digest]});
    let mut history: Vec<Value> = config["history"].as_array().cloned().unwrap_or_default();
    for h in &mut history {
        h["empty_layer"] = json!(true);
    }
    history.push(json!({
        "created": util::format_time(util::now_secs()),
        "created_by": format!("boxctl image export {} (layers flattened)", img.meta.name),
    }));
    config["history"] = json!(history);
    Ok(config)
}

/// Move `file` into `blobs` under its sha256.
fn store_blob(blobs: &Path, file: &Path) -> Result<Blob> {
    let out = Command::new("sha256sum")
        .arg(file)
        .output()
        .context("cannot run sha256sum: install coreutils")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text.split_whitespace().next().unwrap_or("");
    if !out.status.success() || hex.len() != 64 {
        bail!("sha256sum failed on {}", file.display());
    }
    let size = fs::metadata(file)?.len();
    fs::rename(file, blobs.join(hex)).with_context(|| format!("cannot move {}", file.display()))?;
    Ok(Blob {
        digest: format!("sha256:{hex}"),
        size,
    })
}

fn store_json(blobs: &Path, work: &Path, v: &Value) -> Result<Blob> {
    let tmp = work.join("blob.json");
    write_file(&tmp, serde_json::to_string(v)?.as_bytes())?;
    store_blob(blobs, &tmp)
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    fs::write(path, data)
        .with_context(|| format!("cannot write {} (is the disk full?)", path.display()))
}

/// Write a tar at `out` through a temporary file renamed into place.
fn write_tar(
    out: &Path,
    fill: impl FnOnce(&mut tar::Builder<File>) -> std::io::Result<()>,
) -> Result<()> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = out.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let r = (|| -> std::io::Result<()> {
        let mut b = tar::Builder::new(File::create(&tmp)?);
        b.follow_symlinks(false);
        fill(&mut b)?;
        b.into_inner()?.sync_all()?;
        fs::rename(&tmp, out)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r.with_context(|| format!("cannot write {} (is the disk full?)", out.display()))
}

fn append_bytes(b: &mut tar::Builder<File>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(util::now_secs().max(0) as u64);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data)
}

/// Copy the file or tree `from` to `to` (blobs and layout files).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
        for e in fs::read_dir(from)? {
            let e = e?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
        return Ok(());
    }
    fs::copy(from, to)
        .map(|_| ())
        .with_context(|| format!("cannot write {} (is the disk full?)", to.display()))
}
