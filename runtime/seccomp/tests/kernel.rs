//! Real filters in forked children (needs root or at least seccomp; sets no_new_privs in the child).

mod common;

use std::ffi::CString;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use boxrun_seccomp::{compile, send_listener_fd, Filter};
use common::profile;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;

enum Exit {
    Code(i32),
    Signal(i32),
}

/// Kills and reaps the child if the test fails before waiting for it.
struct Child(libc::pid_t);
impl Child {
    fn wait(mut self) -> Exit {
        let mut st = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(self.0, &mut st, 0) };
        assert_eq!(r, self.0, "waitpid: {}", std::io::Error::last_os_error());
        self.0 = 0;
        if libc::WIFEXITED(st) {
            Exit::Code(libc::WEXITSTATUS(st))
        } else {
            Exit::Signal(libc::WTERMSIG(st))
        }
    }
}
impl Drop for Child {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// Fork; the child disables core dumps, sets no_new_privs, installs `filter` (if any) and exits
/// with `body(listener)`'s code. Only raw syscalls happen in the child before `body`.
fn spawn(filter: Option<&Filter>, body: impl FnOnce(Option<OwnedFd>) -> i32) -> Child {
    // SAFETY: the child only makes syscalls and exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid > 0 {
        return Child(pid);
    }
    let code = (|| {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain syscalls on our own process.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return 120;
            }
        }
        let listener = match filter.map(|f| f.install()) {
            None => None,
            Some(Ok(l)) => l,
            Some(Err(_)) => return 121,
        };
        body(listener)
    })();
    // SAFETY: leave the forked child without running the parent's destructors.
    unsafe { libc::_exit(code) }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn expect_code(e: Exit, want: i32) {
    match e {
        Exit::Code(c) => assert_eq!(
            c, want,
            "child exit code (120/121: no_new_privs/install failed)"
        ),
        Exit::Signal(s) => panic!("child killed by signal {s}, wanted exit {want}"),
    }
}

fn expect_signal(e: Exit, want: i32) {
    match e {
        Exit::Code(c) => panic!("child exited with {c}, wanted signal {want}"),
        Exit::Signal(s) => assert_eq!(s, want),
    }
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn tempdir(tag: &str) -> TempDir {
    let p = std::env::temp_dir().join(format!(
        "boxrun-seccomp-kernel-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    TempDir(p)
}

#[test]
fn errno_rules_return_the_errno() {
    let d = tempdir("errno");
    let path = CString::new(d.0.join("x").to_str().unwrap()).unwrap();
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["rmdir", "unlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    })))
    .unwrap();
    let c = spawn(Some(&f), |_| {
        // SAFETY: plain syscalls with a valid C string.
        unsafe {
            if libc::mkdir(path.as_ptr(), 0o700) != -1 || errno() != libc::EPERM {
                return 1;
            }
            if libc::rmdir(path.as_ptr()) != -1 || errno() != libc::ENOSYS {
                return 2;
            }
        }
        0
    });
    expect_code(c.wait(), 0);
    assert!(!d.0.join("x").exists(), "mkdir was not blocked");
}

#[test]
fn argument_filters() {
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["fcntl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 52,
             "args": [{"index": 1, "value": libc::F_GETFD, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
             "args": [{"index": 1, "value": 64, "op": "SCMP_CMP_GT"}, {"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]},
            {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": 78,
             "args": [{"index": 0, "value": 0o7000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    })))
    .unwrap();
    let c = spawn(Some(&f), |_| {
        // SAFETY: plain syscalls.
        unsafe {
            if libc::fcntl(0, libc::F_GETFD) != -1 || errno() != 52 {
                return 1;
            }
            if libc::fcntl(0, libc::F_GETFL) == -1 {
                return 2;
            }
            // The high word differs: no match (the kernel itself truncates cmd to 32 bits).
            if libc::syscall(libc::SYS_fcntl, 0, (1u64 << 32) | libc::F_GETFD as u64) == -1 {
                return 3;
            }
            let me = libc::getpid();
            if libc::kill(me, 65) != -1 || errno() != 77 {
                return 4;
            }
            if libc::kill(me, 0) != 0 {
                return 5;
            }
            if libc::syscall(libc::SYS_umask, 0o4022) != -1 || errno() != 78 {
                return 6;
            }
            if libc::syscall(libc::SYS_umask, 0o2022) == -1 {
                return 7;
            }
        }
        0
    });
    expect_code(c.wait(), 0);
}

#[test]
fn kill_actions_deliver_sigsys() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
    ] {
        let f = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": action}]
        })))
        .unwrap();
        let c = spawn(Some(&f), |_| {
            // SAFETY: a plain syscall.
            unsafe { libc::getppid() };
            0
        });
        expect_signal(c.wait(), libc::SIGSYS);
    }
}

#[test]
fn log_allow_and_trace() {
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_LOG"},
            {"names": ["gettid", "exit_group", "exit"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getpgrp"], "action": "SCMP_ACT_TRACE"}
        ]
    })))
    .unwrap();
    let c = spawn(Some(&f), |_| {
        // SAFETY: plain syscalls.
        unsafe {
            let pid = libc::syscall(libc::SYS_getpid);
            if pid <= 0 || pid != libc::syscall(libc::SYS_gettid) {
                return 1;
            }
            // No tracer: SECCOMP_RET_TRACE fails the syscall with ENOSYS.
            if libc::syscall(libc::SYS_getpgrp) != -1 || errno() != libc::ENOSYS {
                return 2;
            }
            if libc::syscall(libc::SYS_getppid) != -1 || errno() != libc::EPERM {
                return 3;
            }
        }
        0
    });
    expect_code(c.wait(), 0);
}

#[test]
fn docker_default_profile_in_the_kernel() {
    let p: oci_spec::runtime::LinuxSeccomp =
        serde_json::from_str(include_str!("fixtures/docker-default-amd64.json")).unwrap();
    let f = compile(&p).unwrap();
    let c = spawn(Some(&f), |_| {
        // SAFETY: plain syscalls.
        unsafe {
            if libc::getpid() <= 0 {
                return 1;
            }
            if libc::syscall(libc::SYS_keyctl, 0, 0, 0, 0, 0) != -1 || errno() != libc::EPERM {
                return 2;
            }
            if libc::socket(40, libc::SOCK_STREAM, 0) != -1 || errno() != libc::EPERM {
                return 3;
            }
            // Newer than anything the profile names: runc's -ENOSYS stub.
            if libc::syscall(1000) != -1 || errno() != libc::ENOSYS {
                return 4;
            }
            if libc::personality(0xffff_ffff) == -1 {
                return 5;
            }
        }
        0
    });
    expect_code(c.wait(), 0);
}

/// i386 syscalls through `int 0x80` carry AUDIT_ARCH_I386: the arch check is real.
#[test]
fn i386_syscalls_hit_the_x86_section() {
    fn int80_getpid() -> i64 {
        let ret: i64;
        // SAFETY: i386 getpid (20) via int 0x80 touches no memory.
        unsafe { std::arch::asm!("int 0x80", inlateout("rax") 20i64 => ret, options(nostack)) };
        ret
    }
    // Probe: without IA32 emulation int 0x80 raises SIGSEGV and there is nothing to test.
    if let Exit::Signal(s) = spawn(None, |_| (int80_getpid() <= 0) as i32).wait() {
        eprintln!("skipping: no IA32 emulation (int 0x80 -> signal {s})");
        return;
    }
    let native_only = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap();
    expect_signal(
        spawn(Some(&native_only), |_| int80_getpid() as i32).wait(),
        libc::SIGSYS,
    );
    let with_x86 = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33}]})))
    .unwrap();
    expect_code(
        spawn(Some(&with_x86), |_| (int80_getpid() != -33) as i32).wait(),
        0,
    );
}

fn notify_round_trip(flags: serde_json::Value) {
    let d = tempdir(&format!(
        "notify-{}",
        flags.as_array().map_or(0, |a| a.len())
    ));
    let sock = d.0.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": flags,
        "listenerPath": sock,
        "listenerMetadata": "meta",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .unwrap();
    assert!(f.needs_notify());
    let sock2 = sock.clone();
    let child = spawn(Some(&f), move |l| {
        let Some(l) = l else { return 10 };
        let state =
            br#"{"ociVersion":"1.2.0","fds":["seccompFd"],"pid":1,"metadata":"meta","state":{}}"#;
        if send_listener_fd(&sock2, l.as_fd(), state).is_err() {
            return 11;
        }
        drop(l);
        // SAFETY: a plain syscall; the agent answers it.
        let r = unsafe { libc::getppid() };
        if r == 4242 {
            0
        } else {
            12
        }
    });

    let (conn, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(v) = c {
            fds.extend(v);
        }
    }
    let n = msg.bytes;
    assert_eq!(fds.len(), 1, "one fd in SCM_RIGHTS");
    // SAFETY: the fd arrived in SCM_RIGHTS and is ours now.
    let notify_fd = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
    assert_eq!(v["fds"], json!(["seccompFd"]));
    assert_eq!(v["metadata"], json!("meta"));

    // SAFETY: zeroed plain-data struct, filled by the kernel.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: ioctl with a valid seccomp_notif.
    let r = unsafe {
        libc::ioctl(
            notify_fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req,
        )
    };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    assert_eq!(req.pid as i32, child.0);
    assert_eq!(req.data.nr as i64, libc::SYS_getppid);
    assert_eq!(req.data.arch, common::AUDIT_ARCH_X86_64);
    let mut resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 4242,
        error: 0,
        flags: 0,
    };
    // SAFETY: ioctl with a valid seccomp_notif_resp.
    let r = unsafe {
        libc::ioctl(
            notify_fd.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp,
        )
    };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    expect_code(child.wait(), 0);
}

#[test]
fn notify_listener_is_handed_over_and_answered() {
    notify_round_trip(json!([]));
}

#[test]
fn notify_with_tsync_and_wait_killable_recv() {
    notify_round_trip(json!([
        "SECCOMP_FILTER_FLAG_TSYNC",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        "SECCOMP_FILTER_FLAG_LOG"
    ]));
}

#[test]
fn flags_are_accepted_by_the_kernel() {
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap();
    let c = spawn(Some(&f), |_| {
        // SAFETY: a plain syscall.
        (unsafe { libc::getppid() } != -1) as i32
    });
    expect_code(c.wait(), 0);
}

#[test]
fn install_without_privilege_explains() {
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap();
    // Drop CAP_SYS_ADMIN from the effective set without no_new_privs: seccomp(2) says EACCES.
    // SAFETY: fork; the child only makes syscalls and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = (|| {
            let hdr = libc_cap_header();
            let mut data = [[0u32; 3]; 2];
            // SAFETY: capget/capset with valid buffers (version 3 layout).
            unsafe {
                if libc::syscall(libc::SYS_capget, &hdr, data.as_mut_ptr()) != 0 {
                    return 1;
                }
                data[0][0] &= !(1 << 21); // CAP_SYS_ADMIN in the effective set
                if libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) != 0 {
                    return 2;
                }
            }
            match f.install() {
                Err(e) if e.to_string().contains("noNewPrivileges") => 0,
                _ => 3,
            }
        })();
        // SAFETY: leave the forked child.
        unsafe { libc::_exit(code) }
    }
    expect_code(Child(pid).wait(), 0);
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}
fn libc_cap_header() -> CapHeader {
    CapHeader {
        version: 0x2008_0522,
        pid: 0,
    }
}
