//! Bytes a path really holds on disk, for `system df`, `inspect` and prune.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes allocated on disk under `path` (sparse files count their written
/// blocks), not crossing into other file systems (a mounted `rootfs/`); a
/// link to a disk in the storage pool counts what that disk holds (an
/// instance's: only what it does not share with its image).
pub fn allocated(path: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let dev = top.dev();
    let mut total = 0;
    let mut stack = vec![(path.to_path_buf(), top)];
    while let Some((p, m)) = stack.pop() {
        if m.dev() != dev {
            continue;
        }
        total += m.blocks() * 512;
        if m.is_symlink() {
            total += crate::pool::linked_disk_bytes(&p).unwrap_or(0);
        }
        if m.is_dir() {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                if let Ok(cm) = e.metadata() {
                    stack.push((e.path(), cm));
                }
            }
        }
    }
    total
}
