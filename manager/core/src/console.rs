//! `exec -t`: the terminal through the OCI console socket, so it works the
//! same with every runtime. The runtime sends the pty master over a unix
//! socket; boxctl puts its own terminal in raw mode and copies both ways.

use std::fs::File;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::bail;
use crate::error::{Context, Result};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use nix::sys::termios::{self, SetArg, Termios};

/// Restores the terminal's settings on drop.
pub(crate) struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Put stdin's terminal in raw mode (nothing when stdin is no terminal).
    pub(crate) fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

fn copy_winsize(master: &OwnedFd) {
    // SAFETY: winsize is plain old data; the ioctls read/write one.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Accept the runtime's connection on `listener` and receive the pty master
/// it sends; fails when `child` (the runtime) exits without sending one.
pub(crate) fn receive_master(
    listener: &UnixListener,
    child: &mut std::process::Child,
) -> Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Some(status) = child.try_wait()? {
                    if let Ok((s, _)) = listener.accept() {
                        break s;
                    }
                    bail!("the runtime exited ({status}) before handing over the terminal");
                }
                let mut p = libc::pollfd {
                    fd: listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, 100) };
            }
            Err(e) => return Err(e).context("cannot accept the console socket connection"),
        }
    };
    stream.set_nonblocking(false)?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .context("cannot receive the terminal from the runtime")?;
    for c in msg
        .cmsgs()
        .context("bad control message from the runtime")?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the fd was just received with SCM_RIGHTS and is ours.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    bail!("the runtime sent no terminal over the console socket")
}

/// Run `cmd` (a runtime `exec -t`; `-d`, the console socket, a pid file,
/// `id` and `args` are added here) with a terminal; returns the exit code.
///
/// The runtime runs detached (runc accepts a console socket only then), so
/// boxctl makes itself a child subreaper: the process is reparented to it
/// when the runtime exits, and its exit status is reaped here.
pub fn exec_tty(mut cmd: Command, dir: &Path, id: &str, args: &[String]) -> Result<i32> {
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let me = std::process::id();
    let path = dir.join(format!("console-{me}.sock"));
    let pidfile = dir.join(format!("exec-{me}.pid"));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&pidfile);
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot create console socket {}", path.display()))?;
    cmd.arg("-d")
        .arg("--console-socket")
        .arg(&path)
        .arg("--pid-file")
        .arg(&pidfile)
        .arg(id)
        .args(args);
    let mut child = cmd
        .stdin(Stdio::null())
        .spawn()
        .context("cannot run the runtime")?;
    let master = receive_master(&listener, &mut child);
    drop(listener);
    let _ = std::fs::remove_file(&path);
    let master = match master {
        Ok(m) => m,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let status = child.wait()?;
    if !status.success() {
        bail!("runtime exec failed ({status})");
    }
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .context("the runtime wrote no pid file for the exec'd process")?;
    let _ = std::fs::remove_file(&pidfile);
    copy_winsize(&master);
    let raw = RawMode::enter();
    let mut to_master = File::from(master.try_clone()?);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || to_master.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut from_master = File::from(master);
    let mut out = std::io::stdout();
    let mut buf = [0u8; 4096];
    loop {
        match from_master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break, // EIO once the last slave fd closes
        }
    }
    drop(raw);
    let mut wstatus = 0;
    let r = loop {
        // SAFETY: waitpid on the reparented exec'd process with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut wstatus, 0) };
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        break r;
    };
    if r != pid {
        bail!("lost track of the exec'd process {pid}");
    }
    Ok(boxrun_common::wait::exit_code(wstatus))
}
