//! Loading a filter with seccomp(2).

use std::os::fd::{FromRawFd, OwnedFd};

use crate::profile::flag;
use crate::{Filter, SeccompError};

const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

fn flag_names(flags: u32) -> String {
    const NAMES: [(u32, &str); 6] = [
        (flag::TSYNC, "SECCOMP_FILTER_FLAG_TSYNC"),
        (flag::LOG, "SECCOMP_FILTER_FLAG_LOG"),
        (flag::SPEC_ALLOW, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"),
        (flag::NEW_LISTENER, "SECCOMP_FILTER_FLAG_NEW_LISTENER"),
        (flag::TSYNC_ESRCH, "SECCOMP_FILTER_FLAG_TSYNC_ESRCH"),
        (
            flag::WAIT_KILLABLE_RECV,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        ),
    ];
    let v: Vec<&str> = NAMES
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, n)| *n)
        .collect();
    v.join("|")
}

pub(crate) fn install(f: &Filter) -> Result<Option<OwnedFd>, SeccompError> {
    let prog = libc::sock_fprog {
        len: f.insns.len() as u16,
        filter: f.insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `f.insns`, which outlives the call; the kernel copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            f.flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EINVAL) if f.flags & !(flag::TSYNC) != 0 => SeccompError::UnsupportedFlags {
                flags: flag_names(f.flags),
                hint: "this kernel is too old for one of them (LOG needs Linux 4.14, SPEC_ALLOW 4.17, \
                       NEW_LISTENER 5.0, TSYNC with NOTIFY 5.7, WAIT_KILLABLE_RECV 6.0); remove it from linux.seccomp.flags",
            },
            Some(libc::EACCES) => SeccompError::Install {
                source: e,
                hint: " (set process.noNewPrivileges or keep CAP_SYS_ADMIN when the filter is loaded)",
            },
            Some(libc::ESRCH) => SeccompError::Install {
                source: e,
                hint: " (another thread of the process runs a different filter: TSYNC could not synchronise)",
            },
            _ => SeccompError::Install { source: e, hint: "" },
        });
    }
    if f.flags & flag::NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER, seccomp(2) returns a new fd that we now own.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(r as i32) }))
    } else {
        Ok(None)
    }
}
