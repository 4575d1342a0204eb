//! Capabilities: the five sets exactly as configured, with one capset(2) call.

use crate::error::{Error, Result};
use oci_spec::runtime::{Capability, LinuxCapabilities};
use std::collections::HashSet;
use std::str::FromStr;

/// Kernel capability number of an OCI capability.
pub fn number(c: &Capability) -> Result<u8> {
    let name = format!("CAP_{c}");
    caps::Capability::from_str(&name)
        .map(|k| k.index())
        .map_err(|_| Error::Config(format!("unknown capability {name}")))
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
    // SAFETY: PR_CAPBSET_READ only reads.
    while last < 63
        && unsafe { libc::prctl(libc::PR_CAPBSET_READ, (last + 1) as libc::c_ulong, 0, 0, 0) } >= 0
    {
        last += 1;
    }
    // SAFETY: as above.
    while last > 0
        && unsafe { libc::prctl(libc::PR_CAPBSET_READ, last as libc::c_ulong, 0, 0, 0) } < 0
    {
        last -= 1;
    }
    last
}

/// Drop every capability not in the bounding set (needs CAP_SETPCAP: call before setuid).
pub fn drop_bounding(s: &Sets, last: u8) -> Result<()> {
    for n in 0..=last {
        if s.bounding & (1u64 << n) == 0 {
            // SAFETY: PR_CAPBSET_DROP with a capability number.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) };
            if r != 0 && nix::Error::last() != nix::Error::EINVAL {
                return Err(Error::sys(
                    format!("drop capability {n} from bounding set"),
                    nix::Error::last(),
                ));
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Set effective, permitted and inheritable in one call, then the ambient set.
pub fn apply(s: &Sets, last: u8) -> Result<()> {
    let hdr = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        CapData {
            effective: s.effective as u32,
            permitted: s.permitted as u32,
            inheritable: s.inheritable as u32,
        },
        CapData {
            effective: (s.effective >> 32) as u32,
            permitted: (s.permitted >> 32) as u32,
            inheritable: (s.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and a two-element data array as capset(2) v3 expects.
    let r = unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(Error::sys("set capabilities", nix::Error::last()));
    }
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointer.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    for n in 0..=last {
        if s.ambient & (1u64 << n) != 0 {
            // SAFETY: raising an ambient capability by number.
            let r = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    n as libc::c_ulong,
                    0,
                    0,
                )
            };
            if r != 0 {
                // runc only warns too: an ambient capability that is not also permitted and
                // inheritable cannot be raised, and `runc spec` configs list it that way.
                crate::logging::debug(&format!(
                    "cannot raise ambient capability {n}: {}",
                    nix::Error::last()
                ));
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
