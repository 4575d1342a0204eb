//! The store's content store: blobs under `<store>/blobs/sha256/<hex>`,
//! shared by every image pulled (a layer two images share is stored once).
//!
//! A blob is written to `blobs/tmp/` under an `flock` held while it is
//! written, its digest checked, fsynced and renamed into place, so
//! `blobs/sha256/` only ever holds complete, verified blobs. A writer killed
//! midway leaves its temp file unlocked; the next [`ContentStore::open`]
//! removes such files.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Context, Result};
use crate::store::Store;
use crate::{bail, util};

/// The content store of one boxctl store.
#[derive(Debug, Clone)]
pub struct ContentStore {
    /// `<store>/blobs`.
    dir: PathBuf,
}

impl ContentStore {
    /// Open (creating) the content store of `store` and remove temp files
    /// that no live writer holds.
    pub fn open(store: &Store) -> Result<ContentStore> {
        let cs = ContentStore {
            dir: store.root().join("blobs"),
        };
        for d in [cs.dir.join("sha256"), cs.tmp_dir()] {
            fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        cs.remove_stale()?;
        Ok(cs)
    }

    /// The directory an OCI layout would call its root: `blobs/sha256/<hex>`
    /// are found under it.
    pub fn layout_root(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Where blob `digest` lives (whether or not it is there).
    pub fn path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.dir.join("sha256").join(sha256_hex(digest)?))
    }

    /// Whether blob `digest` is stored.
    pub fn has(&self, digest: &str) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    /// Start writing blob `digest`.
    pub fn writer(&self, digest: &str) -> Result<BlobWriter> {
        let final_path = self.path(digest)?;
        let tmp = self.tmp_dir().join(format!("{}.part", util::random_id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        // SAFETY: flock on a descriptor we own; held until the file is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot lock {}", tmp.display()));
        }
        Ok(BlobWriter {
            file: Some(file),
            tmp,
            final_path,
            expected: digest.to_string(),
            hasher: Sha256::new(),
            written: 0,
        })
    }

    /// Remove the temp files of writers that are gone (killed or crashed).
    fn remove_stale(&self) -> Result<()> {
        let tmp = self.tmp_dir();
        for e in fs::read_dir(&tmp).with_context(|| format!("cannot list {}", tmp.display()))? {
            let p = e?.path();
            let Ok(f) = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&p)
            else {
                continue;
            };
            // SAFETY: flock on a descriptor we own; a live writer holds it.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                let _ = fs::remove_file(&p);
            }
        }
        Ok(())
    }

    /// Bytes allocated on disk by the stored blobs.
    pub fn allocated_bytes(&self) -> u64 {
        fs::read_dir(self.dir.join("sha256"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| crate::disk::allocated_bytes(&e.path()))
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// `sha256:<64 lowercase hex>` → the hex, refusing anything else.
fn sha256_hex(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) =>
        {
            Ok(h)
        }
        _ => bail!("unsupported blob digest {digest:?}: boxctl stores sha256 digests only"),
    }
}

/// `sha256:<hex>` of what `hasher` has seen.
pub(crate) fn digest_of(hasher: Sha256) -> String {
    let mut out = String::from("sha256:");
    for b in hasher.finalize().iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A blob being written; removed unless [`BlobWriter::commit`] succeeds.
#[derive(Debug)]
pub struct BlobWriter {
    file: Option<File>,
    tmp: PathBuf,
    final_path: PathBuf,
    expected: String,
    hasher: Sha256,
    written: u64,
}

impl BlobWriter {
    /// Append `data`.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.hasher.update(data);
        self.written += data.len() as u64;
        match self.file.as_mut() {
            Some(f) => f
                .write_all(data)
                .with_context(|| format!("cannot write {}", self.tmp.display())),
            None => bail!("blob {} is already closed", self.expected),
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Check the digest, fsync and move the blob into place; returns its size.
    pub fn commit(mut self) -> Result<u64> {
        let actual = digest_of(self.hasher.clone());
        if actual != self.expected {
            bail!(
                "blob {} is corrupt (its content hashes to {actual}): refusing it, nothing was kept",
                self.expected
            );
        }
        let file = self.file.take().context("blob already closed")?;
        file.sync_all()
            .with_context(|| format!("cannot sync {}", self.tmp.display()))?;
        fs::rename(&self.tmp, &self.final_path)
            .with_context(|| format!("cannot store {}", self.final_path.display()))?;
        if let Some(dir) = self.final_path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).ok();
        }
        drop(file);
        Ok(self.written)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked() {
        assert!(sha256_hex("sha256:../../etc").is_err());
        assert!(sha256_hex(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(sha256_hex(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(sha256_hex(&format!("sha512:{}", "a".repeat(64))).is_err());
    }
}
