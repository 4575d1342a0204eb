//! The process identity: supplementary groups, gid, uid, umask, and HOME from /etc/passwd.

use crate::error::{Error, Result};
use oci_spec::runtime::User;

/// Set groups, gid and uid (in that order). `setgroups_allowed` is false in a user
/// namespace whose setgroups file says deny.
pub fn switch(user: &User, setgroups_allowed: bool) -> Result<()> {
    let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
    if setgroups_allowed {
        // SAFETY: groups is a valid slice of gids.
        if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
            return Err(Error::sys("setgroups", nix::Error::last()));
        }
    } else if !groups.is_empty() {
        return Err(Error::Config(
            "process.user.additionalGids cannot be set: setgroups is denied in this user namespace"
                .into(),
        ));
    }
    let gid = user.gid();
    let uid = user.uid();
    // SAFETY: plain integer arguments.
    if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
        return Err(Error::sys(format!("setresgid {gid}"), nix::Error::last()));
    }
    // SAFETY: plain integer arguments.
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        return Err(Error::sys(format!("setresuid {uid}"), nix::Error::last()));
    }
    Ok(())
}

/// The home directory of `uid` in the container's /etc/passwd, "/" if none.
pub fn home_of(uid: u32) -> String {
    let data = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for line in data.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid) && !f[5].is_empty() {
            return f[5].to_string();
        }
    }
    "/".to_string()
}
