//! Stamps the build with a hash of the crate's sources, part of the seccomp cache key: a filter
//! cached by one build is never served to a build whose compiler code differs, even when the
//! crate version is unchanged (as during development).

use std::hash::Hasher;

fn main() {
    println!("cargo:rerun-if-changed=src");
    let mut files: Vec<_> = std::fs::read_dir("src")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new_with_keys(1, 2);
    for f in files {
        h.write(f.to_string_lossy().as_bytes());
        h.write(&std::fs::read(&f).unwrap_or_default());
    }
    println!(
        "cargo:rustc-env=BOXRUN_SECCOMP_SRC_HASH={:016x}",
        h.finish()
    );
}
