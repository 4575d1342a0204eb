//! The shared busybox rootfs, per-case hard-linked copies, and the base
//! config.json.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `runc spec`-style base config (bundles/busybox/config.json).
pub const BASE_CONFIG: &str = include_str!("../../../bundles/busybox/config.json");

/// Default rootfs build script, relative to the workspace.
pub fn default_rootfs_script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bundles/busybox/build-rootfs.sh"
    ))
}

/// True if the ELF file at `path` has no program interpreter (static).
pub fn is_static_elf(path: &Path) -> Result<bool> {
    let b = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        bail!("{} is not a 64-bit ELF file", path.display());
    }
    let u16at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16at(0x36), u16at(0x38));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if o + 4 > b.len() {
            break;
        }
        if u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) == 3 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Build the base rootfs in `dest` with `script` and install the checker as
/// /oci-checker.
pub fn build_base(script: &Path, dest: &Path, checker: &Path) -> Result<()> {
    let st = Command::new(script)
        .arg(dest)
        .status()
        .with_context(|| format!("run {}", script.display()))?;
    if !st.success() {
        bail!("{} {} failed: {st}", script.display(), dest.display());
    }
    let target = dest.join("oci-checker");
    std::fs::copy(checker, &target)
        .with_context(|| format!("copy {} into the rootfs", checker.display()))?;
    Ok(())
}

/// Recreate `src` at `dst` with directories copied and files hard-linked.
pub fn link_tree(src: &Path, dst: &Path) -> Result<()> {
    let md = std::fs::symlink_metadata(src).with_context(|| format!("stat {}", src.display()))?;
    std::fs::create_dir(dst).with_context(|| format!("mkdir {}", dst.display()))?;
    std::fs::set_permissions(dst, md.permissions())?;
    for e in std::fs::read_dir(src).with_context(|| format!("readdir {}", src.display()))? {
        let e = e?;
        let (s, d) = (e.path(), dst.join(e.file_name()));
        let ft = e.file_type()?;
        if ft.is_dir() {
            link_tree(&s, &d)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&s)?, &d)
                .with_context(|| format!("symlink {}", d.display()))?;
        } else {
            std::fs::hard_link(&s, &d).with_context(|| format!("link {}", d.display()))?;
        }
    }
    Ok(())
}
