//! Mount option parsing: the fstab-style words of `mounts[].options` turned into
//! mount(2) flags, propagation changes and filesystem data, as runc reads them.

use boxrun_cgroups::mount_attr as attr;
use nix::mount::MsFlags;

/// MS_NOSYMFOLLOW (Linux 5.10; nix does not name it).
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

/// Attributes applied with one mount_setattr(2) on the mount and every mount below
/// it: the runtime-spec's recursive mount options (`rro`, `rnosuid`, `ratime`...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recursive {
    /// `MOUNT_ATTR_*` bits to set.
    pub set: u64,
    /// `MOUNT_ATTR_*` bits to clear.
    pub clr: u64,
}

impl Recursive {
    /// No recursive option was given.
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0
    }

    fn set(&mut self, bit: u64) {
        self.set |= bit;
        self.clr &= !bit;
    }

    fn clear(&mut self, bit: u64) {
        self.clr |= bit;
        self.set &= !bit;
    }

    /// An atime mode is an enum: the whole mask is cleared and the mode set.
    fn atime(&mut self, mode: u64) {
        self.set = (self.set & !attr::ATIME_MASK) | mode;
        self.clr |= attr::ATIME_MASK;
    }
}

/// The recursive mount options and what each does (runc's table; `ratime`,
/// `rnorelatime` and `rnostrictatime` select the kernel's default, relatime, and
/// `rnorelatime` strictatime, as their non-recursive words do with mount(8)).
pub const RECURSIVE_OPTIONS: [&str; 18] = [
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rnoatime",
    "ratime",
    "rstrictatime",
    "rnostrictatime",
    "rnosymfollow",
    "rsymfollow",
];

/// Apply recursive option `word` to `r`; false when `word` is not one.
fn recursive_word(r: &mut Recursive, word: &str) -> bool {
    match word {
        "rro" => r.set(attr::RDONLY),
        "rrw" => r.clear(attr::RDONLY),
        "rnosuid" => r.set(attr::NOSUID),
        "rsuid" => r.clear(attr::NOSUID),
        "rnodev" => r.set(attr::NODEV),
        "rdev" => r.clear(attr::NODEV),
        "rnoexec" => r.set(attr::NOEXEC),
        "rexec" => r.clear(attr::NOEXEC),
        "rnodiratime" => r.set(attr::NODIRATIME),
        "rdiratime" => r.clear(attr::NODIRATIME),
        "rrelatime" | "ratime" | "rnostrictatime" => r.atime(attr::RELATIME),
        "rnorelatime" | "rstrictatime" => r.atime(attr::STRICTATIME),
        "rnoatime" => r.atime(attr::NOATIME),
        "rnosymfollow" => r.set(attr::NOSYMFOLLOW),
        "rsymfollow" => r.clear(attr::NOSYMFOLLOW),
        _ => return false,
    }
    true
}

/// A parsed mount entry's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Flags for the mount call.
    pub flags: MsFlags,
    /// Flags that some option explicitly cleared (e.g. `rw`, `dev`) — relevant for remounts.
    pub cleared: MsFlags,
    /// Propagation changes applied after mounting (MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE, maybe | MS_REC).
    pub propagation: Vec<MsFlags>,
    /// Comma-joined filesystem-specific data.
    pub data: String,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// The recursive options (`rro`, `rnosuid`...), applied with mount_setattr.
    pub recursive: Recursive,
}

/// Parse a list of option words.
pub fn parse(options: &[String]) -> Options {
    let mut o = Options {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
        bind: false,
        recursive: Recursive::default(),
    };
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let s = opt.as_str();
        if recursive_word(&mut o.recursive, s) {
            // `rro` also makes the top mount read-only with the bind remount, as before.
            match s {
                "rro" => {
                    o.flags.insert(MsFlags::MS_RDONLY);
                    o.cleared.remove(MsFlags::MS_RDONLY);
                }
                "rrw" => {
                    o.flags.remove(MsFlags::MS_RDONLY);
                    o.cleared.insert(MsFlags::MS_RDONLY);
                }
                _ => {}
            }
            continue;
        }
        let (set, clear): (MsFlags, MsFlags) = match s {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "bind" => {
                o.bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                o.bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            "nosymfollow" => (MS_NOSYMFOLLOW, MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), MS_NOSYMFOLLOW),
            "private" => {
                o.propagation.push(MsFlags::MS_PRIVATE);
                continue;
            }
            "rprivate" => {
                o.propagation.push(MsFlags::MS_PRIVATE | MsFlags::MS_REC);
                continue;
            }
            "shared" => {
                o.propagation.push(MsFlags::MS_SHARED);
                continue;
            }
            "rshared" => {
                o.propagation.push(MsFlags::MS_SHARED | MsFlags::MS_REC);
                continue;
            }
            "slave" => {
                o.propagation.push(MsFlags::MS_SLAVE);
                continue;
            }
            "rslave" => {
                o.propagation.push(MsFlags::MS_SLAVE | MsFlags::MS_REC);
                continue;
            }
            "unbindable" => {
                o.propagation.push(MsFlags::MS_UNBINDABLE);
                continue;
            }
            "runbindable" => {
                o.propagation.push(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC);
                continue;
            }
            // Options runc accepts and handles elsewhere or ignores.
            "tmpcopyup" | "idmap" | "ridmap" => continue,
            other => {
                data.push(other);
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
        o.cleared.insert(clear);
        o.cleared.remove(set);
    }
    o.data = data.join(",");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Options {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_and_data() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert!(o
            .flags
            .contains(MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME));
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.bind);
    }

    #[test]
    fn later_words_win() {
        let o = p(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn bind_and_propagation() {
        let o = p(&["rbind", "rprivate", "ro"]);
        assert!(o.bind);
        assert!(o
            .flags
            .contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn every_recursive_option_is_a_mount_setattr_change_not_data() {
        for word in RECURSIVE_OPTIONS {
            let o = p(&[word]);
            assert!(!o.recursive.is_empty(), "{word} changes nothing");
            assert_eq!(o.data, "", "{word} went to the filesystem data");
        }
        let o = p(&[
            "rnosuid",
            "rnodev",
            "rnoexec",
            "rnodiratime",
            "rnosymfollow",
        ]);
        assert_eq!(
            o.recursive.set,
            attr::NOSUID | attr::NODEV | attr::NOEXEC | attr::NODIRATIME | attr::NOSYMFOLLOW
        );
        assert_eq!(o.recursive.clr, 0);
    }

    #[test]
    fn recursive_atime_modes_clear_the_whole_mask_and_later_words_win() {
        let o = p(&["rnoatime"]);
        assert_eq!(
            (o.recursive.set, o.recursive.clr),
            (attr::NOATIME, attr::ATIME_MASK)
        );
        let o = p(&["rnoatime", "rstrictatime"]);
        assert_eq!(o.recursive.set, attr::STRICTATIME);
        let o = p(&["rnoexec", "rexec"]);
        assert_eq!((o.recursive.set, o.recursive.clr), (0, attr::NOEXEC));
    }

    #[test]
    fn nosymfollow_is_a_mount_flag() {
        assert!(p(&["nosymfollow"]).flags.contains(MS_NOSYMFOLLOW));
        assert!(p(&["nosymfollow", "symfollow"])
            .cleared
            .contains(MS_NOSYMFOLLOW));
    }
}
