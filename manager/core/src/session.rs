//! Client sessions on an instance, over its monitor's attach socket: a
//! foreground `run` (`-i`, `-t`), `attach` and `wait`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::attach::{self, ClientOptions, Connection, End};
use crate::bail;
use crate::error::{Context, Result};
use crate::instance_file::{Instance, Status};
use crate::store::{self, Store};
use crate::{instance, lifecycle, procs};

/// How long `wait` waits on an unmonitored process: forever, in practice.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Start created instance `inst` with this process attached to its stdio
/// from the first byte (its terminal with `-t`, its stdin with `-i`),
/// SIGINT/SIGTERM/SIGHUP passed on, until it exits: returns its exit code.
/// A failed start removes the instance.
pub fn run_foreground(store: &Store, inst: &Instance) -> Result<i32> {
    // Before any thread starts, so that the session sees every SIGWINCH.
    attach::block_winch()?;
    let path = attach::socket_path(&store.instance_dir(&inst.id));
    let tty = inst.session.tty;
    let mut conn = None;
    let mut connect = || -> Result<()> {
        let ws = if tty { attach::stdin_winsize() } else { None };
        conn = Some(Connection::connect(&path, true, ws)?);
        Ok(())
    };
    if let Err(e) = lifecycle::start_with(store, &inst.id, Some(&mut connect)) {
        let _ = lifecycle::remove(store, &inst.id, true);
        return Err(e);
    }
    let Some(conn) = conn else {
        bail!("the monitor of {} offered no attach socket", inst.name);
    };
    instance::forward_signals(store, inst)?;
    let end = conn.run(&ClientOptions {
        stdin: inst.session.interactive,
        tty,
        close_stdin_on_eof: true,
    })?;
    code_at_end(store, inst, end)
}

/// Attach this process to running instance `key`'s stdio (its input only
/// if it was started with `-i`) until it exits (returns its exit code) or
/// the user detaches with Ctrl-P Ctrl-Q (returns 0).
pub fn attach(store: &Store, key: &str) -> Result<i32> {
    lifecycle::refresh(store)?;
    let inst = instance::running(store, key)?;
    if !inst
        .monitor_pid
        .is_some_and(|p| procs::is_monitor(p, &inst.id))
    {
        bail!(
            "instance {} lost its monitor (and with it its console): restart it with `boxctl restart {}`",
            inst.name,
            inst.name
        );
    }
    attach::block_winch()?;
    let tty = inst.session.tty;
    let ws = if tty { attach::stdin_winsize() } else { None };
    let path = attach::socket_path(&store.instance_dir(&inst.id));
    let end = Connection::connect(&path, true, ws)?.run(&ClientOptions {
        stdin: inst.session.interactive,
        tty,
        close_stdin_on_eof: false,
    })?;
    code_at_end(store, &inst, end)
}

fn code_at_end(store: &Store, inst: &Instance, end: End) -> Result<i32> {
    match end {
        End::Exited(code) => Ok(code),
        End::Detached => Ok(0),
        End::Lost => match lifecycle::refresh(store)?.iter().find(|i| i.id == inst.id) {
            Some(i) if !i.is_active() => Ok(i.exit_code.unwrap_or(-1)),
            Some(i) => bail!(
                "lost the console of {}: its monitor was killed; it runs on unmonitored (see `boxctl ps`)",
                i.name
            ),
            None => bail!(
                "instance {} was removed before its exit code was read",
                inst.name
            ),
        },
    }
}

/// Watches the store's directory for a new instance file (written by
/// rename), so that `wait` sleeps until something changes.
struct FileWatch {
    fd: OwnedFd,
    name: Vec<u8>,
}

impl FileWatch {
    fn new(store: &Store) -> Result<FileWatch> {
        // SAFETY: inotify_init1 takes flags only.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("cannot watch the instance file");
        }
        // SAFETY: fd was just returned by inotify_init1 and is ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let root = std::ffi::CString::new(store.root().as_os_str().as_encoded_bytes())
            .context("the store's path has a NUL byte")?;
        // SAFETY: a valid inotify fd and NUL-terminated path.
        let wd =
            unsafe { libc::inotify_add_watch(fd.as_raw_fd(), root.as_ptr(), libc::IN_MOVED_TO) };
        if wd < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot watch {}", store.root().display()));
        }
        let name = store
            .instance_file()
            .file_name()
            .map(|n| n.as_encoded_bytes().to_vec())
            .unwrap_or_default();
        Ok(FileWatch { fd, name })
    }

    /// Block until the instance file has been replaced.
    fn changed(&self) -> Result<()> {
        const HEAD: usize = std::mem::size_of::<libc::inotify_event>();
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading inotify events into a buffer of this length.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("cannot read inotify events");
            }
            let mut events = &buf[..n as usize];
            // Each event: wd, mask, cookie, len (4 bytes each), then a NUL-padded name.
            while events.len() >= HEAD {
                let len =
                    u32::from_ne_bytes([events[12], events[13], events[14], events[15]]) as usize;
                let name = events.get(HEAD..HEAD + len).unwrap_or_default();
                if name.split(|b| *b == 0).next() == Some(self.name.as_slice()) {
                    return Ok(());
                }
                events = events.get(HEAD + len..).unwrap_or_default();
            }
        }
    }
}

/// Block until instance `key` has exited for good and return its exit code
/// (at once for one that has exited; one not started yet is awaited).
/// Its monitor tells it over the attach socket, so an instance made with
/// `--rm` gives its code too; without a monitor, the process is awaited
/// through a pidfd, and a start through inotify on the instance file.
pub fn wait(store: &Store, key: &str) -> Result<i32> {
    let mut seen: Option<String> = None;
    loop {
        // Set before reading, so that no change between the two is missed.
        let watch = FileWatch::new(store)?;
        let list = lifecycle::refresh(store)?;
        let inst = match (store::find_in(&list, key), &seen) {
            (Ok(i), _) => i.clone(),
            (Err(e), None) => return Err(e),
            (Err(_), Some(name)) => {
                bail!("instance {name} was removed before its exit code was read")
            }
        };
        seen = Some(inst.name.clone());
        if matches!(inst.status, Status::Creating | Status::Created) {
            watch.changed()?;
            continue;
        }
        if !inst.is_active() {
            return Ok(inst.exit_code.unwrap_or(0));
        }
        let path = attach::socket_path(&store.instance_dir(&inst.id));
        match inst.monitor_pid.filter(|p| procs::is_monitor(*p, &inst.id)) {
            Some(m) => match Connection::connect(&path, false, None) {
                Ok(c) => {
                    if let End::Exited(code) = c.wait_exit()? {
                        return Ok(code);
                    }
                }
                // A monitor of an older boxctl (no socket): its exit is the instance's.
                Err(_) => {
                    procs::wait_exit(m, FOREVER);
                }
            },
            None => match inst.pid {
                Some(p) => {
                    procs::wait_exit(p, FOREVER);
                }
                // Being started: its monitor is not recorded yet.
                None => watch.changed()?,
            },
        }
    }
}
