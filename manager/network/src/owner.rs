//! Which boxctl store made a host interface.
//!
//! Bridge names derive from network names only (`bx-farm`), so two stores
//! (`boxctl --root A`, `--root B`) that each name a network `farm` ask for
//! the same bridge. Every bridge and veth host end a store makes is marked
//! as the store's own: its alias (`IFLA_IFALIAS`, shown by `ip -d link`)
//! reads `boxctl store ID LABEL`, and a bridge is created with a MAC
//! address derived from the store id and its name. The MAC is set in the
//! same netlink request that creates the bridge (the kernel ignores an
//! alias there), so a store that died between creating its bridge and
//! marking it still recognises the bridge as its own next time.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::names::fnv1a;
use crate::nl::{Handle, Link};

/// Start of every owner mark.
const MARK_PREFIX: &str = "boxctl store ";
/// Length of a store id in hex digits.
const ID_LEN: usize = 16;
/// The kernel keeps at most 255 alias bytes; stay well inside.
const MARK_MAX: usize = 200;

/// The identity of one boxctl store, as marked on the interfaces it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    id: String,
    label: String,
}

/// Who an existing interface belongs to, as seen by one [`Owner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Marked as this owner's (or, for a bridge, unmarked with this owner's MAC).
    Ours,
    /// No owner mark: made by hand or by a boxctl older than the marks.
    Unmarked,
    /// Marked as another owner's; the mark is given.
    Other(String),
}

/// Which existing interfaces a caller may take over as its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Only interfaces marked as the caller's: the name is new to the caller
    /// (`network create`), so an unmarked interface is somebody else's.
    OwnOnly,
    /// Also unmarked interfaces: the caller has the name on record, made
    /// before interfaces were marked. They are marked as the caller's.
    OwnOrUnmarked,
}

impl Owner {
    /// An owner from a store id (16 lowercase hex digits) and a label for
    /// people (the store's path), kept in the mark after the id.
    pub fn new(id: &str, label: &str) -> Result<Owner> {
        if id.len() != ID_LEN
            || !id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(Error::InvalidOwner {
                id: id.to_string(),
                reason: "a store id is 16 lowercase hex digits".into(),
            });
        }
        let label: String = label.chars().filter(|c| !c.is_control()).collect();
        Ok(Owner {
            id: id.to_string(),
            label,
        })
    }

    /// The owner recorded in `file` (the store id on one line), created
    /// with a fresh random id when absent. Safe against a concurrent first
    /// call: the first id written wins and both callers get it.
    pub fn load_or_create(file: &Path, label: &str) -> Result<Owner> {
        match fs::read_to_string(file) {
            Ok(text) => return Owner::from_file_text(file, &text, label),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(owner_file(file, "read", e)),
        }
        // `.NAME.tmp.PID`: the name boxctl's store clears when PID is gone.
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let tmp = file.with_file_name(format!(
            ".{}.tmp.{}",
            name.as_deref().unwrap_or("owner"),
            std::process::id()
        ));
        let written = (|| -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            writeln!(f, "{}", random_id()?)?;
            f.sync_all()
        })();
        let linked = written.and_then(|()| fs::hard_link(&tmp, file));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(owner_file(file, "create", e)),
        }
        let text = fs::read_to_string(file).map_err(|e| owner_file(file, "read", e))?;
        Owner::from_file_text(file, &text, label)
    }

    fn from_file_text(file: &Path, text: &str, label: &str) -> Result<Owner> {
        Owner::new(text.trim(), label).map_err(|_| {
            owner_file(
                file,
                "read",
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "it does not hold a store id (16 hex digits); restore it from a backup",
                ),
            )
        })
    }

    /// The store id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The mark put in the alias of the interfaces this owner makes:
    /// `boxctl store ID LABEL`, at most 200 bytes.
    pub fn mark(&self) -> String {
        let mut mark = format!("{MARK_PREFIX}{} {}", self.id, self.label);
        if mark.len() > MARK_MAX {
            let mut end = MARK_MAX;
            while !mark.is_char_boundary(end) {
                end -= 1;
            }
            mark.truncate(end);
        }
        mark.trim_end().to_string()
    }

    /// Whether `mark` (an interface's alias) names this owner.
    pub fn is_mark_of(&self, mark: &str) -> bool {
        mark.strip_prefix(MARK_PREFIX)
            .and_then(|rest| rest.split(' ').next())
            == Some(self.id.as_str())
    }

    /// The MAC address a bridge called `ifname` gets from this owner:
    /// locally administered unicast, from a hash of the id and the name.
    pub(crate) fn mac(&self, ifname: &str) -> [u8; 6] {
        let h = fnv1a(format!("{}/{ifname}", self.id).as_bytes()).to_be_bytes();
        [0x02, h[3], h[4], h[5], h[6], h[7]]
    }

    /// Who `link` (called `ifname`) belongs to, as seen by this owner.
    pub(crate) fn ownership(&self, link: &Link, ifname: &str) -> Ownership {
        match link.alias.as_deref().filter(|a| !a.is_empty()) {
            Some(a) if self.is_mark_of(a) => Ownership::Ours,
            // Another store's mark, or an alias somebody else set.
            Some(a) => Ownership::Other(a.to_string()),
            None if link.mac == Some(self.mac(ifname)) => Ownership::Ours,
            None => Ownership::Unmarked,
        }
    }

    /// Checks that the caller may use `link` under `claim` (as [`Owner::check`])
    /// and marks it as this owner's when it does not carry the mark yet.
    pub(crate) fn claim(
        &self,
        nl: &mut Handle,
        link: &Link,
        ifname: &str,
        kind: &'static str,
        claim: Claim,
    ) -> Result<()> {
        self.check(link, ifname, kind, claim)?;
        let mark = self.mark();
        if link.alias.as_deref() != Some(mark.as_str()) {
            nl.set_alias(link.index, ifname, &mark)?;
        }
        Ok(())
    }

    /// Checks that the caller may use `link` as its own under `claim`:
    /// the [`Error::NotOwned`] refusal otherwise, naming the other owner.
    pub(crate) fn check(
        &self,
        link: &Link,
        ifname: &str,
        kind: &'static str,
        claim: Claim,
    ) -> Result<Ownership> {
        let ownership = self.ownership(link, ifname);
        let hint = match kind {
            "bridge" => "use another network name",
            _ => "recreate the instance: its interface names derive from its id",
        };
        match (&ownership, claim) {
            (Ownership::Ours, _) | (Ownership::Unmarked, Claim::OwnOrUnmarked) => Ok(ownership),
            (Ownership::Unmarked, Claim::OwnOnly) => Err(Error::NotOwned {
                kind,
                name: ifname.to_string(),
                owner: "it carries no boxctl store mark: made by hand or by an older boxctl".into(),
                hint,
            }),
            (Ownership::Other(mark), _) => Err(Error::NotOwned {
                kind,
                name: ifname.to_string(),
                owner: format!("it is marked {mark:?}"),
                hint,
            }),
        }
    }
}

fn owner_file(file: &Path, op: &'static str, source: io::Error) -> Error {
    Error::OwnerFile {
        path: file.to_path_buf(),
        op,
        source,
    }
}

/// 16 hex digits from the kernel's random pool.
fn random_id() -> io::Result<String> {
    let mut buf = [0u8; ID_LEN / 2];
    // SAFETY: getrandom writes at most buf.len() bytes into a valid buffer.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        return Err(io::Error::last_os_error());
    }
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(alias: Option<&str>, mac: Option<[u8; 6]>) -> Link {
        Link {
            index: 1,
            kind: None,
            up: false,
            controller: None,
            alias: alias.map(str::to_string),
            mac,
        }
    }

    #[test]
    fn marks_and_ownership() {
        let a = Owner::new("0123456789abcdef", "/var/lib/boxctl").unwrap();
        let b = Owner::new("fedcba9876543210", "/tmp/b").unwrap();
        assert_eq!(a.mark(), "boxctl store 0123456789abcdef /var/lib/boxctl");
        assert!(a.is_mark_of(&a.mark()));
        assert!(!b.is_mark_of(&a.mark()));
        assert!(!a.is_mark_of("boxctl store 0123456789abcde"));
        assert_eq!(
            a.ownership(&link(Some(&a.mark()), None), "bx-x"),
            Ownership::Ours
        );
        assert_eq!(
            b.ownership(&link(Some(&a.mark()), None), "bx-x"),
            Ownership::Other(a.mark())
        );
        // Unmarked: ours only with our MAC for that very name.
        assert_eq!(
            a.ownership(&link(None, Some(a.mac("bx-x"))), "bx-x"),
            Ownership::Ours
        );
        assert_eq!(
            b.ownership(&link(None, Some(a.mac("bx-x"))), "bx-x"),
            Ownership::Unmarked
        );
        assert_eq!(
            a.ownership(&link(Some(""), Some(a.mac("bx-y"))), "bx-x"),
            Ownership::Unmarked
        );
        assert_eq!(
            a.ownership(&link(Some("uplink"), None), "bx-x"),
            Ownership::Other("uplink".into())
        );
        let unmarked = link(None, None);
        assert!(a
            .check(&unmarked, "bx-x", "bridge", Claim::OwnOnly)
            .is_err());
        assert!(a
            .check(&unmarked, "bx-x", "bridge", Claim::OwnOrUnmarked)
            .is_ok());
        let err = b
            .check(
                &link(Some(&a.mark()), None),
                "bx-x",
                "bridge",
                Claim::OwnOrUnmarked,
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bridge bx-x") && err.contains("/var/lib/boxctl"),
            "{err}"
        );
    }

    #[test]
    fn bad_ids_and_long_labels() {
        assert!(Owner::new("0123", "x").is_err());
        assert!(Owner::new("0123456789ABCDEF", "x").is_err());
        assert!(Owner::new("0123456789abcdeg", "x").is_err());
        let long = Owner::new("0123456789abcdef", &"ä".repeat(300)).unwrap();
        assert!(long.mark().len() <= MARK_MAX);
        assert!(long.is_mark_of(&long.mark()));
        let ctl = Owner::new("0123456789abcdef", "a\nb").unwrap();
        assert!(!ctl.mark().contains('\n'));
    }

    #[test]
    fn id_file_is_created_once() {
        let dir = std::env::temp_dir().join(format!("boxctl-owner-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("store-id");
        let first = Owner::load_or_create(&file, "one");
        let second = Owner::load_or_create(&file, "two");
        fs::write(&file, "garbage\n").unwrap();
        let damaged = Owner::load_or_create(&file, "three");
        let _ = fs::remove_dir_all(&dir);
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first.id(), second.id());
        assert!(second.mark().ends_with(" two"));
        let err = damaged.unwrap_err().to_string();
        assert!(
            err.contains("store-id") && err.contains("16 hex digits"),
            "{err}"
        );
    }
}
