//! The real calls: each method is the one system call it names, made as the set-up
//! made it before the seam existed.

use super::Syscall;
use crate::capabilities::Sets;
use nix::mount::{MntFlags, MsFlags};
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::path::Path;

/// The kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct Linux;

/// `Ok` when a libc call returned 0, the errno otherwise.
fn check(r: libc::c_int) -> nix::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(nix::Error::last())
    }
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

impl Syscall for Linux {
    fn setns(&self, fd: RawFd, nstype: libc::c_int) -> nix::Result<()> {
        // SAFETY: setns with an fd and a namespace flag; a bad fd is an error, not UB.
        check(unsafe { libc::setns(fd, nstype) })
    }

    fn unshare(&self, flags: libc::c_int) -> nix::Result<()> {
        // SAFETY: unshare with namespace flags.
        check(unsafe { libc::unshare(flags) })
    }

    fn setsid(&self) {
        // SAFETY: setsid takes no arguments.
        unsafe { libc::setsid() };
    }

    fn join_session_keyring(&self, name: &CStr) {
        // SAFETY: KEYCTL_JOIN_SESSION_KEYRING with a C string.
        unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                1, /* KEYCTL_JOIN_SESSION_KEYRING */
                name.as_ptr(),
            )
        };
    }

    fn loopback_up(&self) -> crate::error::Result<()> {
        crate::namespaces::loopback_up()
    }

    fn sethostname(&self, name: &str) -> nix::Result<()> {
        nix::unistd::sethostname(name)
    }

    fn setdomainname(&self, name: &str) -> nix::Result<()> {
        // SAFETY: name is valid for name.len() bytes.
        check(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) })
    }

    fn umask(&self, mask: libc::mode_t) -> libc::mode_t {
        // SAFETY: umask is always safe.
        unsafe { libc::umask(mask) }
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        std::fs::write(path, data)
    }

    fn mount(
        &self,
        src: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        nix::mount::mount(src, target, fstype, flags, data)
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> nix::Result<()> {
        nix::mount::umount2(target, flags)
    }

    fn mount_setattr_recursive(&self, target: &Path, set: u64, clr: u64) -> std::io::Result<()> {
        boxrun_cgroups::mount_setattr_recursive(target, set, clr)
    }

    fn mount_flags(&self, path: &Path) -> nix::Result<nix::sys::statvfs::FsFlags> {
        nix::sys::statvfs::statvfs(path).map(|s| s.flags())
    }

    fn is_dir(&self, path: &Path) -> nix::Result<bool> {
        nix::sys::stat::stat(path).map(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> nix::Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn chroot(&self, path: &Path) -> nix::Result<()> {
        nix::unistd::chroot(path)
    }

    fn chdir(&self, path: &Path) -> nix::Result<()> {
        nix::unistd::chdir(path)
    }

    fn fchdir(&self, fd: RawFd) -> nix::Result<()> {
        nix::unistd::fchdir(fd)
    }

    fn mknodat(
        &self,
        dir: RawFd,
        name: &CStr,
        mode: libc::mode_t,
        dev: libc::dev_t,
    ) -> nix::Result<()> {
        // SAFETY: a dir fd and a NUL-terminated name; mode and dev are plain integers.
        check(unsafe { libc::mknodat(dir, name.as_ptr(), mode, dev) })
    }

    fn fchownat(&self, dir: RawFd, name: &CStr, uid: u32, gid: u32) -> nix::Result<()> {
        // SAFETY: a dir fd and a NUL-terminated name.
        check(unsafe { libc::fchownat(dir, name.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW) })
    }

    fn fchmodat(&self, dir: RawFd, name: &CStr, mode: libc::mode_t) -> nix::Result<()> {
        // SAFETY: a dir fd and a NUL-terminated name.
        check(unsafe { libc::fchmodat(dir, name.as_ptr(), mode, 0) })
    }

    fn symlinkat(&self, target: &CStr, dir: RawFd, name: &CStr) -> nix::Result<()> {
        // SAFETY: NUL-terminated strings and a dir fd.
        check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) })
    }

    fn setgroups(&self, gids: &[libc::gid_t]) -> nix::Result<()> {
        // SAFETY: gids is a valid slice of gids.
        check(unsafe { libc::setgroups(gids.len(), gids.as_ptr()) })
    }

    fn setresgid(&self, gid: libc::gid_t) -> nix::Result<()> {
        // SAFETY: plain integer arguments.
        check(unsafe { libc::setresgid(gid, gid, gid) })
    }

    fn setresuid(&self, uid: libc::uid_t) -> nix::Result<()> {
        // SAFETY: plain integer arguments.
        check(unsafe { libc::setresuid(uid, uid, uid) })
    }

    fn cap_last(&self) -> u8 {
        crate::capabilities::last_cap()
    }

    fn cap_drop_bound(&self, n: u8) -> nix::Result<()> {
        // SAFETY: PR_CAPBSET_DROP with a capability number.
        check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) })
    }

    fn set_keepcaps(&self, keep: bool) {
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, keep as libc::c_ulong, 0, 0, 0) };
    }

    fn capset(&self, s: &Sets) -> nix::Result<()> {
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
        if r == 0 {
            Ok(())
        } else {
            Err(nix::Error::last())
        }
    }

    fn ambient_clear(&self) {
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
    }

    fn ambient_raise(&self, n: u8) -> nix::Result<()> {
        // SAFETY: raising an ambient capability by number.
        check(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                n as libc::c_ulong,
                0,
                0,
            )
        })
    }

    fn set_no_new_privs(&self) -> nix::Result<()> {
        // SAFETY: prctl with integer arguments.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
    }

    fn execve(&self, exe: &CStr, args: &[CString], env: &[CString]) -> nix::Error {
        let argv: Vec<*const libc::c_char> = args
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let envp: Vec<*const libc::c_char> = env
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        // SAFETY: argv and envp are NULL-terminated arrays of valid C strings.
        unsafe { libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        nix::Error::last()
    }
}
