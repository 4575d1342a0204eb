//! A fake [`Syscall`] for unit tests: it makes no privileged call, logs each one as a
//! line (`mount proc <rootfs>/proc proc NOSUID|NODEV|NOEXEC -`), and fails the calls it
//! was told to. Paths through `/proc/self/fd/N` and directory fds are logged as what
//! they name, with the rootfs shown as `<rootfs>`.

use super::Syscall;
use crate::capabilities::Sets;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// Which calls fail, and how.
enum Fault {
    /// Every call whose log line starts with this text.
    Matching(String, Errno),
    /// The call with this 0-based index in the log.
    Nth(usize, Errno),
}

/// The recording fake.
pub struct Recording {
    rootfs: PathBuf,
    bundle: PathBuf,
    calls: RefCell<Vec<String>>,
    faults: RefCell<Vec<Fault>>,
    last_cap: u8,
    umask: Cell<libc::mode_t>,
    dirs: RefCell<Vec<PathBuf>>,
}

impl Recording {
    /// A fake whose log shows paths under `rootfs` as `<rootfs>/…`, and other paths
    /// under `bundle` as `<bundle>/…`.
    pub fn new(bundle: &Path, rootfs: &Path) -> Self {
        let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        Recording {
            rootfs: real(rootfs),
            bundle: real(bundle),
            calls: RefCell::default(),
            faults: RefCell::default(),
            last_cap: 40,
            umask: Cell::new(0o022),
            dirs: RefCell::default(),
        }
    }

    /// Fail every call whose log line starts with `prefix`, with `errno`.
    pub fn fail(&self, prefix: &str, errno: Errno) {
        self.faults
            .borrow_mut()
            .push(Fault::Matching(prefix.to_string(), errno));
    }

    /// Answer [`Syscall::is_dir`] for `path` (as the container sees it) with true; every
    /// other path is a file to it. Not logged: a query, like `mount_flags`.
    pub fn dir(&self, path: &str) {
        self.dirs.borrow_mut().push(PathBuf::from(path));
    }

    /// Fail the call that would be logged at index `n` (0-based), with `errno`.
    pub fn fail_nth(&self, n: usize, errno: Errno) {
        self.faults.borrow_mut().push(Fault::Nth(n, errno));
    }

    /// The calls so far, one line each (failed ones included: they were made).
    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    fn record(&self, line: String) -> nix::Result<()> {
        let mut calls = self.calls.borrow_mut();
        let n = calls.len();
        // The fault added last wins where several match.
        let fault = self.faults.borrow().iter().rev().find_map(|f| match f {
            Fault::Matching(p, e) if line.starts_with(p.as_str()) => Some(*e),
            Fault::Nth(i, e) if *i == n => Some(*e),
            _ => None,
        });
        calls.push(line);
        fault.map_or(Ok(()), Err)
    }

    fn show(&self, p: &Path) -> String {
        let p = match p.strip_prefix("/proc/self/fd") {
            Ok(_) => std::fs::read_link(p).unwrap_or_else(|_| p.to_path_buf()),
            Err(_) => p.to_path_buf(),
        };
        for (dir, name) in [(&self.rootfs, "<rootfs>"), (&self.bundle, "<bundle>")] {
            match p.strip_prefix(dir) {
                Ok(rest) if rest.as_os_str().is_empty() => return name.into(),
                Ok(rest) => return format!("{name}/{}", rest.display()),
                Err(_) => {}
            }
        }
        p.display().to_string()
    }

    fn show_at(&self, dir: RawFd, name: &CStr) -> String {
        let dir = PathBuf::from(format!("/proc/self/fd/{dir}"));
        let dir = std::fs::read_link(&dir).unwrap_or(dir);
        self.show(&dir.join(name.to_string_lossy().as_ref()))
    }
}

/// `NOSUID|NODEV` for MS_NOSUID | MS_NODEV, `0` for none.
fn ms(f: MsFlags) -> String {
    let v: Vec<&str> = f
        .iter_names()
        .map(|(n, _)| n.trim_start_matches("MS_"))
        .collect();
    if v.is_empty() {
        "0".into()
    } else {
        v.join("|")
    }
}

/// Namespace names of CLONE_NEW* flags.
fn ns(flags: libc::c_int) -> String {
    [
        (libc::CLONE_NEWUSER, "user"),
        (libc::CLONE_NEWNS, "mnt"),
        (libc::CLONE_NEWCGROUP, "cgroup"),
        (libc::CLONE_NEWUTS, "uts"),
        (libc::CLONE_NEWIPC, "ipc"),
        (libc::CLONE_NEWPID, "pid"),
        (libc::CLONE_NEWNET, "net"),
        (libc::CLONE_NEWTIME, "time"),
    ]
    .iter()
    .filter(|(f, _)| flags & f != 0)
    .map(|(_, n)| *n)
    .collect::<Vec<_>>()
    .join("|")
}

fn opt(s: Option<String>) -> String {
    s.unwrap_or_else(|| "-".into())
}

impl Syscall for Recording {
    fn setns(&self, _fd: RawFd, nstype: libc::c_int) -> nix::Result<()> {
        self.record(format!("setns {}", ns(nstype)))
    }

    fn unshare(&self, flags: libc::c_int) -> nix::Result<()> {
        self.record(format!("unshare {}", ns(flags)))
    }

    fn setsid(&self) {
        let _ = self.record("setsid".into());
    }

    fn join_session_keyring(&self, name: &CStr) {
        let _ = self.record(format!("keyring {}", name.to_string_lossy()));
    }

    fn loopback_up(&self) -> crate::error::Result<()> {
        self.record("loopback up".into())
            .map_err(|e| crate::error::Error::sys("bring up lo in the new network namespace", e))
    }

    fn sethostname(&self, name: &str) -> nix::Result<()> {
        self.record(format!("sethostname {name}"))
    }

    fn setdomainname(&self, name: &str) -> nix::Result<()> {
        self.record(format!("setdomainname {name}"))
    }

    fn umask(&self, mask: libc::mode_t) -> libc::mode_t {
        let _ = self.record(format!("umask {mask:o}"));
        self.umask.replace(mask)
    }

    fn write_file(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        self.record(format!(
            "write {} {}",
            self.show(path),
            String::from_utf8_lossy(data).trim_end()
        ))
        .map_err(std::io::Error::from)
    }

    fn mount(
        &self,
        src: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        self.record(format!(
            "mount {} {} {} {} {}",
            opt(src.map(|s| self.show(s))),
            self.show(target),
            opt(fstype.map(str::to_string)),
            ms(flags),
            opt(data.map(str::to_string)),
        ))
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> nix::Result<()> {
        let f: Vec<&str> = flags.iter_names().map(|(n, _)| n).collect();
        self.record(format!("umount2 {} {}", self.show(target), f.join("|")))
    }

    fn mount_setattr_recursive(&self, target: &Path, set: u64, clr: u64) -> std::io::Result<()> {
        self.record(format!(
            "mount_setattr recursive {} set={set:#x} clr={clr:#x}",
            self.show(target)
        ))
        .map_err(std::io::Error::from)
    }

    fn mount_flags(&self, _path: &Path) -> nix::Result<nix::sys::statvfs::FsFlags> {
        Ok(nix::sys::statvfs::FsFlags::empty())
    }

    fn is_dir(&self, path: &Path) -> nix::Result<bool> {
        Ok(self.dirs.borrow().iter().any(|d| d == path))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> nix::Result<()> {
        self.record(format!(
            "pivot_root {} {}",
            self.show(new_root),
            self.show(put_old)
        ))
    }

    fn chroot(&self, path: &Path) -> nix::Result<()> {
        self.record(format!("chroot {}", self.show(path)))
    }

    fn chdir(&self, path: &Path) -> nix::Result<()> {
        self.record(format!("chdir {}", self.show(path)))
    }

    fn fchdir(&self, fd: RawFd) -> nix::Result<()> {
        let p = PathBuf::from(format!("/proc/self/fd/{fd}"));
        self.record(format!("fchdir {}", self.show(&p)))
    }

    fn mknodat(
        &self,
        dir: RawFd,
        name: &CStr,
        mode: libc::mode_t,
        dev: libc::dev_t,
    ) -> nix::Result<()> {
        let kind = match mode & libc::S_IFMT {
            libc::S_IFCHR => 'c',
            libc::S_IFBLK => 'b',
            _ => 'p',
        };
        self.record(format!(
            "mknod {} {kind} {}:{} {:o}",
            self.show_at(dir, name),
            libc::major(dev),
            libc::minor(dev),
            mode & 0o7777
        ))
    }

    fn fchownat(&self, dir: RawFd, name: &CStr, uid: u32, gid: u32) -> nix::Result<()> {
        self.record(format!("chown {} {uid}:{gid}", self.show_at(dir, name)))
    }

    fn fchmodat(&self, dir: RawFd, name: &CStr, mode: libc::mode_t) -> nix::Result<()> {
        self.record(format!("chmod {} {mode:o}", self.show_at(dir, name)))
    }

    fn symlinkat(&self, target: &CStr, dir: RawFd, name: &CStr) -> nix::Result<()> {
        self.record(format!(
            "symlink {} -> {}",
            self.show_at(dir, name),
            target.to_string_lossy()
        ))
    }

    fn setgroups(&self, gids: &[libc::gid_t]) -> nix::Result<()> {
        self.record(format!("setgroups {gids:?}"))
    }

    fn setresgid(&self, gid: libc::gid_t) -> nix::Result<()> {
        self.record(format!("setresgid {gid}"))
    }

    fn setresuid(&self, uid: libc::uid_t) -> nix::Result<()> {
        self.record(format!("setresuid {uid}"))
    }

    fn cap_last(&self) -> u8 {
        self.last_cap
    }

    fn cap_drop_bound(&self, n: u8) -> nix::Result<()> {
        self.record(format!("cap_drop_bound {n}"))
    }

    fn set_keepcaps(&self, keep: bool) {
        let _ = self.record(format!("keepcaps {}", keep as u8));
    }

    fn capset(&self, s: &Sets) -> nix::Result<()> {
        self.record(format!(
            "capset e={:#x} p={:#x} i={:#x}",
            s.effective, s.permitted, s.inheritable
        ))
    }

    fn ambient_clear(&self) {
        let _ = self.record("ambient clear".into());
    }

    fn ambient_raise(&self, n: u8) -> nix::Result<()> {
        self.record(format!("ambient raise {n}"))
    }

    fn set_no_new_privs(&self) -> nix::Result<()> {
        self.record("no_new_privs".into())
    }

    fn execve(&self, exe: &CStr, args: &[CString], _env: &[CString]) -> nix::Error {
        let args: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
        let line = format!("exec {} {}", exe.to_string_lossy(), args.join(" "));
        // A fake cannot replace the process: exec "fails" with ENOSYS unless told otherwise.
        self.record(line).err().unwrap_or(Errno::ENOSYS)
    }
}
