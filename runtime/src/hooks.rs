//! OCI hooks: run a hook with the container state on stdin, honour its timeout, and
//! report its output when it fails.

use crate::error::{Error, Result};
use oci_spec::runtime::Hook;
use std::ffi::CString;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn memfd(name: &str) -> Result<std::fs::File> {
    let c = CString::new(name).map_err(|e| Error::invalid("memfd name", e))?;
    let fd = nix::sys::memfd::memfd_create(&c, nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| Error::sys("memfd_create", e))?;
    Ok(std::fs::File::from(fd))
}

/// Run one hook to completion. `kind` names the hook list in errors.
pub fn run(hook: &Hook, state_json: &[u8], kind: &str) -> Result<()> {
    run_in(hook, state_json, kind, None, None)
}

/// [`run`] with the hook's working directory set to `cwd` (else the runtime's own) and
/// `default_env` as its environment when the hook has no `env` (else the runtime's own).
fn run_in(
    hook: &Hook,
    state_json: &[u8],
    kind: &str,
    cwd: Option<&CString>,
    default_env: Option<&[String]>,
) -> Result<()> {
    let path = hook.path();
    let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|e| {
        Error::invalid_config(format!("hook path {} has a NUL byte", path.display()), e)
    })?;
    let args: Vec<CString> = match hook.args() {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|s| CString::new(s.as_str()).unwrap_or_default())
            .collect(),
        _ => vec![cpath.clone()],
    };
    let env: Option<Vec<CString>> = hook.env().as_deref().or(default_env).map(|e| {
        e.iter()
            .map(|s| CString::new(s.as_str()).unwrap_or_default())
            .collect()
    });
    let mut stdin = memfd("hook-stdin")?;
    stdin
        .write_all(state_json)
        .map_err(|e| Error::io(path, e))?;
    stdin.rewind().map_err(|e| Error::io(path, e))?;
    let mut out = memfd("hook-output")?;
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Option<Vec<*const libc::c_char>> = env.as_ref().map(|e| {
        e.iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    });

    // SAFETY: single-threaded program; the child only calls async-signal-safe functions.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::sys(format!("fork {kind} hook"), nix::Error::last()));
    }
    if pid == 0 {
        // SAFETY: in the child; dup2/exec/_exit are async-signal-safe.
        unsafe {
            libc::dup2(stdin.as_raw_fd(), 0);
            libc::dup2(out.as_raw_fd(), 1);
            libc::dup2(out.as_raw_fd(), 2);
            crate::signals::reset_for_exec();
            if cwd.is_some_and(|d| libc::chdir(d.as_ptr()) != 0) {
                libc::_exit(127);
            }
            match &envp {
                Some(e) => libc::execve(cpath.as_ptr(), argv.as_ptr(), e.as_ptr()),
                None => libc::execv(cpath.as_ptr(), argv.as_ptr()),
            };
            libc::_exit(127);
        }
    }
    let status = wait_with_timeout(pid, hook.timeout())?;
    let ok = matches!(status, Some(0));
    if ok {
        return Ok(());
    }
    let mut output = String::new();
    let _ = out.rewind();
    let _ = (&mut out).take(4096).read_to_string(&mut output);
    let output = output.trim();
    let why = match status {
        None => format!("timed out after {}s", hook.timeout().unwrap_or(0)),
        Some(127) => "could not be executed (exit status 127)".to_string(),
        Some(s) if s >= 256 => signal_text(s - 256),
        Some(s) => format!("exit status {s}"),
    };
    let mut msg = format!("{kind} hook {} failed: {why}", path.display());
    if !output.is_empty() {
        msg.push_str(&format!(": {output}"));
    }
    Err(Error::Hook(msg))
}

/// A hook killed by signal `n`, in runc's (Go's) words: `signal: killed (signal 9)`.
fn signal_text(n: i32) -> String {
    // SAFETY: strsignal returns a pointer to a static or thread-local string.
    let name = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(n)) };
    format!(
        "signal: {} (signal {n})",
        name.to_string_lossy().to_lowercase()
    )
}

/// Wait for `pid`; Some(code) (signal n reported as 256+n), None on timeout (child killed).
fn wait_with_timeout(pid: i32, timeout: Option<i64>) -> Result<Option<i32>> {
    if let Some(t) = timeout.filter(|t| *t > 0) {
        // SAFETY: pidfd_open on our own child.
        let pfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if pfd >= 0 {
            // SAFETY: fresh fd.
            let pfd = unsafe { OwnedFd::from_raw_fd(pfd as i32) };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(t as u64);
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let mut p = libc::pollfd {
                    fd: pfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let r =
                    unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
                if r > 0 {
                    break;
                }
                if r == 0 {
                    // SAFETY: killing our own child.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    let _ = reap(pid);
                    return Ok(None);
                }
                if nix::Error::last() != nix::Error::EINTR {
                    break;
                }
            }
        }
    }
    reap(pid).map(Some)
}

fn reap(pid: i32) -> Result<i32> {
    let mut st = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            break;
        }
        if r < 0 && nix::Error::last() != nix::Error::EINTR {
            return Err(Error::sys("wait for hook", nix::Error::last()));
        }
    }
    Ok(if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else {
        256 + libc::WTERMSIG(st)
    })
}

/// Run a list of hooks in order, stopping at the first failure.
pub fn run_all(hooks: Option<&Vec<Hook>>, state_json: &[u8], kind: &str) -> Result<()> {
    run_all_in(hooks, state_json, kind, None)
}

/// [`run_all`] for hooks run in the container (startContainer): a hook without its own
/// `env` gets the container's `process.env`, as with runc and youki.
pub fn run_all_with_env(
    hooks: Option<&Vec<Hook>>,
    state_json: &[u8],
    kind: &str,
    env: &[String],
) -> Result<()> {
    for h in hooks.into_iter().flatten() {
        run_in(h, state_json, kind, None, Some(env))?;
    }
    Ok(())
}

/// [`run_all`] with `cwd` as the hooks' working directory, as runc: createContainer
/// hooks run in the container's root (a hook may call `./lib/...` of the rootfs), the
/// create-time runtime hooks in the bundle.
pub fn run_all_in(
    hooks: Option<&Vec<Hook>>,
    state_json: &[u8],
    kind: &str,
    cwd: Option<&Path>,
) -> Result<()> {
    let Some(hooks) = hooks.filter(|h| !h.is_empty()) else {
        return Ok(());
    };
    let dir = cwd
        .map(|d| CString::new(d.as_os_str().as_bytes()))
        .transpose()
        .map_err(|e| Error::invalid_config(format!("{kind} hook directory has a NUL byte"), e))?;
    for h in hooks {
        run_in(h, state_json, kind, dir.as_ref(), None)?;
    }
    Ok(())
}

/// Run a list of hooks in order; failures are logged as warnings and do not stop the rest.
pub fn run_all_warn(hooks: Option<&Vec<Hook>>, state_json: &[u8], kind: &str) {
    for h in hooks.into_iter().flatten() {
        if let Err(e) = run(h, state_json, kind) {
            crate::logging::warn(&e.to_string());
        }
    }
}
