//! The process identity: supplementary groups, gid, uid, umask, and HOME from /etc/passwd.

use crate::capabilities::{self, Sets};
use crate::error::{Error, Result, SysContext};
use crate::syscall::{Linux, Syscall};
use oci_spec::runtime::{Process, User};
use std::os::unix::ffi::OsStrExt;

/// Set groups, gid and uid (in that order). `setgroups_allowed` is false in a user
/// namespace whose setgroups file says deny.
pub fn switch(sys: &dyn Syscall, user: &User, setgroups_allowed: bool) -> Result<()> {
    let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
    if setgroups_allowed {
        sys.setgroups(&groups).sys_ctx(|| "setgroups".into())?;
    } else if !groups.is_empty() {
        return Err(Error::Config(
            "process.user.additionalGids cannot be set: setgroups is denied in this user namespace"
                .into(),
        ));
    }
    let gid = user.gid();
    let uid = user.uid();
    sys.setresgid(gid).sys_ctx(|| format!("setresgid {gid}"))?;
    sys.setresuid(uid).sys_ctx(|| format!("setresuid {uid}"))?;
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

/// CVE-2024-21626: the working directory must be inside the container's root.
pub fn check_cwd_inside() -> Result<()> {
    let cwd = nix::unistd::getcwd().map_err(|e| Error::sys("getcwd", e))?;
    if !cwd.is_absolute() || cwd.as_os_str().as_bytes().starts_with(b"(unreachable)") {
        return Err(Error::Other(format!(
            "process.cwd {} is outside the container",
            cwd.display()
        )));
    }
    Ok(())
}

/// Enter the process's working directory and drop to its credentials, in runc's
/// order, for the container's init and for `exec` alike: cwd (checked before a profile
/// that may deny getcwd), seccomp early unless no_new_privs, bounding set, user and
/// groups keeping capabilities, cwd as the user if it was denied before, the capability
/// sets, umask,
/// then no_new_privs and a late seccomp. `install` loads a filter (and hands a NOTIFY
/// listener to the runtime).
pub fn enter(
    p: &Process,
    sets: &Sets,
    in_userns: bool,
    seccomp: Option<&boxrun_seccomp::Filter>,
    install: &mut dyn FnMut(&boxrun_seccomp::Filter) -> Result<()>,
) -> Result<()> {
    enter_with(&Linux, p, sets, in_userns, seccomp, install)
}

/// [`enter`] through `sys`.
pub fn enter_with(
    sys: &dyn Syscall,
    p: &Process,
    sets: &Sets,
    in_userns: bool,
    seccomp: Option<&boxrun_seccomp::Filter>,
    install: &mut dyn FnMut(&boxrun_seccomp::Filter) -> Result<()>,
) -> Result<()> {
    let nnp = p.no_new_privileges().unwrap_or(false);
    let last = sys.cap_last();
    let cwd = p.cwd();
    let cwd_err = || format!("process.cwd {}", cwd.display());
    // As runc: before the user switch (the user may not reach it, as root may not in a
    // user namespace); denied, it is tried again as the user.
    let cwd_later = match sys.chdir(cwd) {
        Ok(()) => false,
        Err(nix::Error::EACCES | nix::Error::EPERM) => true,
        Err(e) => return Err(Error::sys(cwd_err(), e)),
    };
    if !cwd_later {
        check_cwd_inside()?;
    }
    if let (Some(f), false) = (seccomp, nnp) {
        install(f)?;
    }
    capabilities::drop_bounding(sys, sets, last)?;
    sys.set_keepcaps(true);
    let setgroups_ok = !in_userns
        || std::fs::read_to_string("/proc/self/setgroups")
            .map(|s| s.trim() != "deny")
            .unwrap_or(true);
    switch(sys, p.user(), setgroups_ok)?;
    sys.set_keepcaps(false);
    if cwd_later {
        sys.chdir(cwd).sys_ctx(cwd_err)?;
        check_cwd_inside()?;
    }
    capabilities::apply(sys, sets, last)?;
    sys.umask(p.user().umask().unwrap_or(0o022) as libc::mode_t);
    if nnp {
        sys.set_no_new_privs()
            .sys_ctx(|| "set no_new_privs".into())?;
        if let Some(f) = seccomp {
            install(f)?;
        }
    }
    Ok(())
}
