//! Binary size of a runtime, alone and with the shared libraries `ldd` lists.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Sizes in bytes.
#[derive(Debug, Clone, Default)]
pub struct BinarySize {
    /// The executable itself.
    pub binary: u64,
    /// The executable plus every shared library and the dynamic loader.
    pub with_libs: u64,
    /// Library paths counted in `with_libs`.
    pub libs: Vec<PathBuf>,
}

fn size(p: &Path) -> u64 {
    // metadata follows symlinks: we want the library file's own size.
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Parse `ldd` output into library paths (`x => /path (addr)` and
/// `/path (addr)` lines; `linux-vdso` and unresolved lines have no path).
pub fn parse_ldd(text: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in text.lines() {
        let target = match line.split_once("=>") {
            Some((_, rhs)) => rhs.trim(),
            None => line.trim(),
        };
        let path = target.split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            let p = PathBuf::from(path);
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Measure `bin` and the libraries it loads.
pub fn measure(bin: &Path) -> BinarySize {
    let binary = size(bin);
    let libs = Command::new("ldd")
        .arg(bin)
        .output()
        .map(|o| parse_ldd(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default();
    let with_libs = binary + libs.iter().map(|l| size(l)).sum::<u64>();
    BinarySize {
        binary,
        with_libs,
        libs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd_lines() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibseccomp.so.2 => /lib/x86_64-linux-gnu/libseccomp.so.2 (0x7f)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        let libs = parse_ldd(text);
        assert_eq!(libs.len(), 3);
        assert_eq!(libs[2], PathBuf::from("/lib64/ld-linux-x86-64.so.2"));
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
    }
}
