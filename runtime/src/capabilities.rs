//! Capabilities: the five sets exactly as configured, with one capset(2) call.

use crate::error::{Error, Result};
use crate::syscall::Syscall;
use oci_spec::runtime::{Capability, LinuxCapabilities};
use std::collections::HashSet;
use std::str::FromStr;

/// Kernel capability number of an OCI capability.
pub fn number(c: &Capability) -> Result<u8> {
    let name = format!("CAP_{c}");
    caps::Capability::from_str(&name)
        .map(|k| k.index())
        .map_err(|e| Error::invalid_config(format!("unknown capability {name}"), e))
}

/// The five sets as bit masks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sets {
    /// Bounding.
    pub bounding: u64,
    /// Effective.
    pub effective: u64,
    /// Permitted.
    pub permitted: u64,
    /// Inheritable.
    pub inheritable: u64,
    /// Ambient.
    pub ambient: u64,
}

fn mask(set: &Option<HashSet<Capability>>) -> Result<u64> {
    let mut m = 0u64;
    if let Some(s) = set {
        for c in s {
            m |= 1u64 << number(c)?;
        }
    }
    Ok(m)
}

impl Sets {
    /// Build from the spec; absent capabilities means none.
    pub fn from_spec(c: Option<&LinuxCapabilities>) -> Result<Sets> {
        let Some(c) = c else {
            return Ok(Sets::default());
        };
        Ok(Sets {
            bounding: mask(c.bounding())?,
            effective: mask(c.effective())?,
            permitted: mask(c.permitted())?,
            inheritable: mask(c.inheritable())?,
            ambient: mask(c.ambient())?,
        })
    }
}

/// The highest capability number the running kernel knows.
pub fn last_cap() -> u8 {
    let mut last = 40u8;
    while last < 63 && kernel_knows(last + 1) {
        last += 1;
    }
    while last > 0 && !kernel_knows(last) {
        last -= 1;
    }
    last
}

/// Whether the kernel knows capability `n`: PR_CAPBSET_READ fails (EINVAL) past the last.
fn kernel_knows(n: u8) -> bool {
    // SAFETY: PR_CAPBSET_READ only reads; it takes the capability number and no pointer.
    unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(n), 0, 0, 0) >= 0 }
}

/// Drop every capability not in the bounding set (needs CAP_SETPCAP: call before setuid).
pub fn drop_bounding(sys: &dyn Syscall, s: &Sets, last: u8) -> Result<()> {
    for n in 0..=last {
        if s.bounding & (1u64 << n) == 0 {
            match sys.cap_drop_bound(n) {
                Ok(()) | Err(nix::Error::EINVAL) => {}
                Err(e) => {
                    return Err(Error::sys(
                        format!("drop capability {n} from bounding set"),
                        e,
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Set effective, permitted and inheritable in one call, then the ambient set.
pub fn apply(sys: &dyn Syscall, s: &Sets, last: u8) -> Result<()> {
    sys.capset(s)
        .map_err(|e| Error::sys("set capabilities", e))?;
    sys.ambient_clear();
    for n in 0..=last {
        if s.ambient & (1u64 << n) != 0 {
            if let Err(e) = sys.ambient_raise(n) {
                // runc only warns too: an ambient capability that is not also permitted and
                // inheritable cannot be raised, and `runc spec` configs list it that way.
                crate::logging::debug(&format!("cannot raise ambient capability {n}: {e}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_the_kernel() {
        assert_eq!(number(&Capability::Chown).expect("chown"), 0);
        assert_eq!(number(&Capability::SysAdmin).expect("sys_admin"), 21);
        assert_eq!(number(&Capability::CheckpointRestore).expect("cr"), 40);
    }

    #[test]
    fn masks_from_spec() {
        let c: LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL"]
        }))
        .expect("caps");
        let s = Sets::from_spec(Some(&c)).expect("sets");
        assert_eq!(s.bounding, 1 | (1 << 5));
        assert_eq!(s.effective, 1 << 5);
        assert_eq!(s.ambient, 0);
    }
}
