//! The image store: each image is a raw ext4 disk file plus its metadata.

pub mod export;
pub mod ext4;
pub mod history;
pub mod image_config;
pub mod import_oci;
pub mod import_tar;
pub mod prune;

pub use image_config::ImageConfig;
use import_oci::Imported;

use std::fs;
use std::path::{Path, PathBuf};

use crate::bail;
use crate::error::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::store::Store;
use crate::util;

/// What `image.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageMeta {
    /// Image name.
    pub name: String,
    /// Import time (RFC 3339).
    pub created: String,
    /// Disk image size in bytes.
    pub size: u64,
    /// What it was imported from (`raw`, `directory`, `tar`, `oci`, `docker-archive`).
    pub source: String,
    /// Defaults.
    #[serde(default)]
    pub config: ImageConfig,
    /// The path it was imported from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub origin: String,
    /// The layers of the OCI/docker image it was made from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<import_oci::LayerRecord>,
}

/// The OCI image config kept from an OCI/docker import (ROOT/images/NAME/oci-config.json).
pub const OCI_CONFIG: &str = "oci-config.json";

/// An image as found in the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// Metadata.
    pub meta: ImageMeta,
    /// Its disk file.
    pub disk: PathBuf,
}

/// Look up image `name`.
pub fn get(store: &Store, name: &str) -> Result<Image> {
    util::validate_name("image", name)?;
    let dir = store.image_dir(name);
    let meta_path = dir.join("image.json");
    let text = match fs::read_to_string(&meta_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("no such image: {name} (import it with `boxctl image import SRC {name}`)")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", meta_path.display())),
    };
    let meta: ImageMeta = serde_json::from_str(&text)
        .with_context(|| format!("image metadata {} is damaged", meta_path.display()))?;
    Ok(Image {
        meta,
        disk: dir.join("disk.img"),
    })
}

/// Every image, sorted by name.
pub fn list(store: &Store) -> Result<Vec<Image>> {
    let mut out = Vec::new();
    for e in fs::read_dir(store.images_dir()).context("cannot list images")? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if let Ok(img) = get(store, &name) {
            out.push(img);
        }
    }
    out.sort_by(|a, b| a.meta.name.cmp(&b.meta.name));
    Ok(out)
}

/// Removes a work directory (and a disk made in the storage pool for it)
/// on drop unless disarmed.
struct TempDir(Option<PathBuf>, Option<PathBuf>);
impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(p);
            if let Some(d) = self.1.take() {
                let _ = fs::remove_file(d);
            }
        }
    }
}

/// Import `src` (raw ext4 image, rootfs directory, rootfs tar[.gz], OCI
/// layout directory or archive, docker-archive) as image `name`.
pub fn import(store: &Store, src: &Path, name: &str, size: Option<u64>) -> Result<ImageMeta> {
    util::validate_name("image", name)?;
    let src_meta = fs::metadata(src).with_context(|| format!("cannot read {}", src.display()))?;
    let origin = fs::canonicalize(src)
        .unwrap_or_else(|_| src.to_path_buf())
        .display()
        .to_string();
    build(store, name, size, origin, |work| {
        import_into(work, src, &src_meta)
    })
}

/// Make image `name` from the tree `fill` writes into an empty directory
/// (returning what it found of the image's config and layers); `source` is
/// recorded as its origin.
pub fn create_from_tree(
    store: &Store,
    name: &str,
    size: Option<u64>,
    source: &str,
    fill: impl FnOnce(&Path) -> Result<Imported>,
) -> Result<ImageMeta> {
    build(store, name, size, String::new(), |work| {
        let rootfs = work.dir.join("rootfs");
        fs::create_dir(&rootfs)?;
        let imported = fill(&rootfs)?;
        work.disk_from_tree(&rootfs)?;
        Ok((source.to_string(), imported))
    })
}

/// Copy image `name` as `new_name` (a reflink where the file system can),
/// with the same defaults and origin.
pub fn tag(store: &Store, name: &str, new_name: &str) -> Result<ImageMeta> {
    let img = get(store, name)?;
    let src_dir = store.image_dir(name);
    build(store, new_name, None, img.meta.origin.clone(), |work| {
        work.disk_from_disk(&img.disk)?;
        for f in [ORIGIN_FILE, OCI_CONFIG] {
            let from = src_dir.join(f);
            if from.exists() {
                fs::copy(&from, work.dir.join(f))
                    .with_context(|| format!("cannot copy {}", from.display()))?;
            }
        }
        Ok((
            img.meta.source.clone(),
            Imported {
                defaults: img.meta.config.clone(),
                config: serde_json::Value::Null,
                layers: img.meta.layers.clone(),
            },
        ))
    })
}

/// Where a pulled image records its registry origin (reference, digests).
pub const ORIGIN_FILE: &str = "origin.json";

/// A new image's work directory and where its disk goes: in the storage
/// pool when the store has one (work/disk.img then links to it).
struct Work {
    dir: PathBuf,
    disk: PathBuf,
    pool: Option<crate::pool::Pool>,
    size: Option<u64>,
}

impl Work {
    /// Make the disk from the files of `tree`.
    fn disk_from_tree(&self, tree: &Path) -> Result<()> {
        if let Some(p) = &self.pool {
            p.reserve(ext4::tree_usage(tree)?.0)?;
        }
        ext4::make_from_dir(tree, &self.disk, self.size)
    }

    /// Make the disk as a copy of the ext4 disk `src`.
    fn disk_from_disk(&self, src: &Path) -> Result<()> {
        if let Some(p) = &self.pool {
            p.reserve(crate::disk::allocated_bytes(src))?;
        }
        crate::disk::copy_image(src, &self.disk)?;
        Ok(())
    }
}

/// Make image `name` in a work directory that `make` fills (the disk through
/// [`Work`], returning the source label and what the import found), then
/// move it into place; nothing stays behind when any step fails.
fn build(
    store: &Store,
    name: &str,
    size: Option<u64>,
    origin: String,
    make: impl FnOnce(&Work) -> Result<(String, Imported)>,
) -> Result<ImageMeta> {
    util::validate_name("image", name)?;
    let final_dir = store.image_dir(name);
    if final_dir.exists() {
        bail!("image {name} already exists: remove it first with `boxctl image rm {name}`");
    }
    let dir = store
        .images_dir()
        .join(format!(".tmp-{}-{}", std::process::id(), util::random_id()));
    fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut guard = TempDir(Some(dir.clone()), None);
    // The link first, so that the pool's garbage collection sees the disk in use.
    let pool = crate::pool::for_new_disk(store, size.unwrap_or(0))?;
    let disk = match &pool {
        Some(p) => {
            let target = p.new_image_disk();
            std::os::unix::fs::symlink(&target, dir.join("disk.img"))
                .with_context(|| format!("cannot link {}", target.display()))?;
            guard.1 = Some(target.clone());
            target
        }
        None => dir.join("disk.img"),
    };
    let work = Work {
        dir: dir.clone(),
        disk: disk.clone(),
        pool,
        size,
    };
    let (source, imported) = make(&work)?;
    if !imported.config.is_null() {
        crate::store::write_atomic(
            &dir.join(OCI_CONFIG),
            serde_json::to_string_pretty(&imported.config)?.as_bytes(),
        )?;
    }
    for d in [dir.join("rootfs"), dir.join("src")] {
        if d.exists() {
            fs::remove_dir_all(&d).with_context(|| format!("cannot clean {}", d.display()))?;
        }
    }
    let meta = ImageMeta {
        name: name.to_string(),
        created: util::format_time(util::now_secs()),
        size: fs::metadata(&disk)?.len(),
        source,
        config: imported.defaults,
        origin,
        layers: imported.layers,
    };
    crate::store::write_atomic(
        &dir.join("image.json"),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    rename_noreplace(&dir, &final_dir).with_context(|| {
        format!("image {name} already exists: remove it first with `boxctl image rm {name}`")
    })?;
    guard.0 = None;
    Ok(meta)
}

/// Fill `work` with the disk (and scratch dirs) made from `src`.
fn import_into(work: &Work, src: &Path, src_meta: &fs::Metadata) -> Result<(String, Imported)> {
    let rootfs = work.dir.join("rootfs");
    let unpacked = work.dir.join("src");
    // An archive holding an image layout: unpacked, then its layers flattened into rootfs.
    let from_archive = |flatten: fn(&Path, &Path) -> Result<Imported>| -> Result<Imported> {
        fs::create_dir(&unpacked)?;
        import_tar::extract(import_tar::open_maybe_gzip(src)?, &unpacked, false)?;
        fs::create_dir(&rootfs)?;
        let c = flatten(&unpacked, &rootfs)?;
        work.disk_from_tree(&rootfs)?;
        Ok(c)
    };
    let (source, imported) = if src_meta.is_dir() {
        if src.join("oci-layout").exists() {
            fs::create_dir(&rootfs)?;
            let c = import_oci::from_layout(src, &rootfs)?;
            work.disk_from_tree(&rootfs)?;
            ("oci", c)
        } else {
            work.disk_from_tree(src)?;
            ("directory", Imported::default())
        }
    } else if ext4::is_ext4(src) {
        work.disk_from_disk(src)?;
        ("raw", Imported::default())
    } else {
        let names = import_tar::list_entries(src).with_context(|| {
            format!(
                "{} is neither an ext4 disk image, a directory, a tar archive nor an OCI image",
                src.display()
            )
        })?;
        let has = |n: &str| names.iter().any(|x| x == n);
        if has("oci-layout") || (has("index.json") && names.iter().any(|n| n.starts_with("blobs/")))
        {
            ("oci", from_archive(import_oci::from_layout)?)
        } else if has("manifest.json")
            && !names
                .iter()
                .any(|n| n.starts_with("bin/") || n.starts_with("etc/"))
        {
            (
                "docker-archive",
                from_archive(import_oci::from_docker_archive)?,
            )
        } else {
            fs::create_dir(&rootfs)?;
            import_tar::extract(import_tar::open_maybe_gzip(src)?, &rootfs, false)?;
            work.disk_from_tree(&rootfs)?;
            ("tar", Imported::default())
        }
    };
    Ok((source.to_string(), imported))
}

fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(from.as_os_str().as_bytes())?;
    let b = std::ffi::CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: valid C strings; AT_FDCWD dirfds.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Remove image `name`, refused while an instance uses it.
pub fn remove(store: &Store, name: &str) -> Result<()> {
    get(store, name)?;
    remove_unused(store, name)
}

/// Remove image `name` even when its record or disk is damaged, refused
/// while an instance uses it.
fn remove_unused(store: &Store, name: &str) -> Result<()> {
    util::validate_name("image", name)?;
    let _lock = store.lock()?;
    let users: Vec<String> = store
        .load()?
        .into_iter()
        .filter(|i| i.image == name)
        .map(|i| i.name)
        .collect();
    if !users.is_empty() {
        bail!(
            "image {name} is used by instance(s) {}: remove them first with `boxctl rm`",
            users.join(", ")
        );
    }
    let dir = store.image_dir(name);
    let trash = store
        .images_dir()
        .join(format!(".rm-{}", util::random_id()));
    let pooled = fs::read_link(dir.join("disk.img"))
        .ok()
        .filter(|t| t.starts_with(store.root().join("pool")));
    fs::rename(&dir, &trash).with_context(|| format!("cannot remove image {name}"))?;
    fs::remove_dir_all(&trash).with_context(|| format!("cannot remove {}", trash.display()))?;
    if let Some(t) = pooled {
        match fs::remove_file(&t) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", t.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Image `name` as `image inspect` shows it: its record, disk and users.
pub fn inspect(store: &Store, name: &str) -> Result<serde_json::Value> {
    let img = get(store, name)?;
    let users: Vec<String> = store
        .load()?
        .into_iter()
        .filter(|i| i.image == img.meta.name)
        .map(|i| i.name)
        .collect();
    let mut v = serde_json::to_value(&img.meta)?;
    v["disk"] = serde_json::json!(img.disk);
    v["disk_allocated"] = serde_json::json!(crate::disk::allocated_bytes(&img.disk));
    v["size_on_disk"] = serde_json::json!(crate::allocation::allocated(
        &store.image_dir(&img.meta.name)
    ));
    let pooled = fs::read_link(&img.disk).ok();
    v["storage"] = serde_json::json!(if pooled.is_some() { "pool" } else { "store" });
    if let Some(target) = pooled {
        v["pool_disk"] = serde_json::json!(target);
    }
    v["oci_config"] = fs::read_to_string(store.image_dir(name).join(OCI_CONFIG))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    v["layers"] = serde_json::json!(img.meta.layers);
    v["used_by"] = serde_json::json!(users);
    Ok(v)
}
