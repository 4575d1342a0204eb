//! OCI image layouts (directory or archive) and docker-archive tars: layers
//! applied in order with whiteouts, the image config's defaults kept.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::bail;
use crate::error::{Context, Result};
use serde_json::Value;

use super::image_config::ImageConfig;
use super::import_tar::{apply_whiteouts, extract, normalize, open_in};

fn read_json(dir: &Path, rel: &Path) -> Result<Value> {
    let mut s = String::new();
    open_in(dir, rel)?
        .read_to_string(&mut s)
        .with_context(|| format!("cannot read {}", rel.display()))?;
    serde_json::from_str(&s).with_context(|| format!("{} is not valid JSON", rel.display()))
}

/// `sha256:abc…` → `blobs/sha256/abc…`, refusing anything but `[a-z0-9]` parts.
fn blob_path(digest: &str) -> Result<PathBuf> {
    let (alg, hex) = digest
        .split_once(':')
        .with_context(|| format!("bad digest {digest:?}"))?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if !ok(alg) || !ok(hex) {
        bail!("bad digest {digest:?}: refusing the image");
    }
    Ok(PathBuf::from("blobs").join(alg).join(hex))
}

pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Apply one (possibly gzip- or zstd-compressed) layer file, found at `rel` in `dir`, to `rootfs`.
fn apply_layer(dir: &Path, rel: &Path, rootfs: &Path) -> Result<()> {
    let open = || -> Result<Box<dyn Read>> {
        let mut f = open_in(dir, rel)?;
        let mut magic = [0u8; 2];
        let n = f.read(&mut magic)?;
        let mut more = [0u8; 2];
        let m = f.read(&mut more)?;
        let f = open_in(dir, rel)?;
        if n == 2 && magic == [0x1f, 0x8b] {
            Ok(Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(
                f,
            ))))
        } else if n + m == 4 && [magic[0], magic[1], more[0], more[1]] == ZSTD_MAGIC {
            Ok(Box::new(zstd::stream::read::Decoder::new(f).with_context(
                || format!("layer {}: cannot start zstd", rel.display()),
            )?))
        } else {
            Ok(Box::new(BufReader::new(f)))
        }
    };
    apply_whiteouts(open()?, rootfs).with_context(|| format!("layer {}", rel.display()))?;
    extract(open()?, rootfs, true).with_context(|| format!("layer {}", rel.display()))?;
    Ok(())
}

/// The defaults from an image config blob (`config.Cmd`, …).
pub fn image_config(v: &Value) -> ImageConfig {
    let c = &v["config"];
    let strings = |k: &str| -> Vec<String> {
        c[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    ImageConfig {
        entrypoint: strings("Entrypoint"),
        cmd: strings("Cmd"),
        env: strings("Env"),
        workdir: c["WorkingDir"].as_str().unwrap_or("").to_string(),
        user: c["User"].as_str().unwrap_or("").to_string(),
    }
}

/// What an OCI or docker image brings besides its files.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// The defaults its instances get.
    pub defaults: ImageConfig,
    /// Its config blob as it was (history, labels, …).
    pub config: Value,
    /// Its layers, in order.
    pub layers: Vec<LayerRecord>,
}

/// One layer of an imported image.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerRecord {
    /// `sha256:…` of the blob (OCI) or its path in the archive (docker).
    pub digest: String,
    /// Its size in bytes as stored.
    pub size: u64,
    /// Its media type, when the manifest gives one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
}

fn imported(config: Value, layers: Vec<LayerRecord>) -> Imported {
    Imported {
        defaults: image_config(&config),
        config,
        layers,
    }
}

/// Import the OCI layout at `dir` into `rootfs`; returns the image defaults.
pub fn from_layout(dir: &Path, rootfs: &Path) -> Result<Imported> {
    let index = read_json(dir, Path::new("index.json"))?;
    let mut manifest = pick_manifest(dir, &index)?;
    // Nested indexes (multi-platform images) resolve to a manifest.
    for _ in 0..4 {
        if manifest["manifests"].is_array() {
            manifest = pick_manifest(dir, &manifest)?;
        } else {
            break;
        }
    }
    apply_manifest(dir, &manifest, rootfs)
}

/// Apply the layers of image `manifest` (OCI or docker v2 schema 2), whose
/// blobs are under `dir/blobs/`, to `rootfs`; returns the config and layers.
pub fn apply_manifest(dir: &Path, manifest: &Value, rootfs: &Path) -> Result<Imported> {
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .context("image manifest has no config")?;
    let config = read_json(dir, &blob_path(config_digest)?)?;
    let layers = manifest["layers"]
        .as_array()
        .context("image manifest has no layers")?;
    let mut records = Vec::new();
    for l in layers {
        let d = l["digest"].as_str().context("layer without digest")?;
        let media = l["mediaType"].as_str().unwrap_or("");
        apply_layer(dir, &blob_path(d)?, rootfs)?;
        records.push(LayerRecord {
            digest: d.to_string(),
            size: l["size"].as_u64().unwrap_or(0),
            media_type: media.to_string(),
        });
    }
    Ok(imported(config, records))
}

fn pick_manifest(dir: &Path, index: &Value) -> Result<Value> {
    let list = index["manifests"]
        .as_array()
        .filter(|a| !a.is_empty())
        .context("index.json lists no manifests")?;
    let chosen = list
        .iter()
        .find(|m| {
            m["platform"]["architecture"].as_str() == Some(host_arch())
                && m["platform"]["os"].as_str().unwrap_or("linux") == "linux"
        })
        .unwrap_or(&list[0]);
    let digest = chosen["digest"]
        .as_str()
        .context("manifest without digest")?;
    read_json(dir, &blob_path(digest)?)
}

/// Import an extracted docker-archive (`manifest.json` + config + layer tars).
pub fn from_docker_archive(dir: &Path, rootfs: &Path) -> Result<Imported> {
    let manifest = read_json(dir, Path::new("manifest.json"))?;
    let first = manifest
        .as_array()
        .and_then(|a| a.first())
        .context("manifest.json lists no image")?;
    let config_rel = normalize(
        first["Config"]
            .as_str()
            .context("manifest.json has no Config")?
            .as_bytes(),
    )?;
    let config = read_json(dir, &config_rel)?;
    let mut records = Vec::new();
    let diff_ids = config["rootfs"]["diff_ids"].as_array();
    for (i, l) in first["Layers"]
        .as_array()
        .context("manifest.json has no Layers")?
        .iter()
        .enumerate()
    {
        let rel = normalize(l.as_str().context("bad layer entry")?.as_bytes())?;
        apply_layer(dir, &rel, rootfs)?;
        let diff_id = diff_ids.and_then(|d| d.get(i)).and_then(|d| d.as_str());
        records.push(LayerRecord {
            digest: diff_id.map_or_else(|| rel.display().to_string(), String::from),
            size: open_in(dir, &rel)?.metadata().map(|m| m.len()).unwrap_or(0),
            media_type: String::new(),
        });
    }
    Ok(imported(config, records))
}
