//! Freezing and thawing (v1 `freezer.state`, v2 `cgroup.freeze`).

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::cgroup::{Cgroup, Hierarchy, Version};
use crate::error::{CgroupError, Result};
use crate::fsutil;

/// How long `freeze` waits for all tasks to stop.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

impl Cgroup {
    /// The hierarchy that freezes: v1 `freezer` if mounted, else cgroup2.
    pub(crate) fn freezer(&self) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.version == Version::V1 && h.has("freezer"))
            .or_else(|| self.v2())
    }

    fn require_freezer(&self) -> Result<&Hierarchy> {
        self.freezer()
            .ok_or_else(|| CgroupError::missing_controller("freezer", "pause/resume"))
    }

    /// Freeze every process in the cgroup and wait until the kernel reports
    /// the cgroup frozen.
    pub fn freeze(&self) -> Result<()> {
        let h = self.require_freezer()?;
        let r = match h.version {
            Version::V1 => freeze_v1(&h.path),
            Version::V2 => freeze_v2(&h.path),
        };
        if r.is_err() {
            let _ = self.thaw();
        }
        r
    }

    /// Thaw the cgroup.
    pub fn thaw(&self) -> Result<()> {
        let h = self.require_freezer()?;
        match h.version {
            Version::V1 => fsutil::write(&h.path.join("freezer.state"), "THAWED"),
            Version::V2 => fsutil::write(&h.path.join("cgroup.freeze"), "0"),
        }
    }

    /// Whether the cgroup is frozen (v1: `FROZEN`, a cgroup still `FREEZING`
    /// counts as not frozen; v2: `cgroup.freeze` is 1).
    pub fn is_frozen(&self) -> Result<bool> {
        let h = self.require_freezer()?;
        Ok(match h.version {
            Version::V1 => fsutil::read(&h.path.join("freezer.state"))?.trim() == "FROZEN",
            Version::V2 => fsutil::read(&h.path.join("cgroup.freeze"))?.trim() == "1",
        })
    }
}

fn freeze_v1(dir: &Path) -> Result<()> {
    let state = dir.join("freezer.state");
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut delay = Duration::from_micros(50);
    loop {
        // Writing FROZEN again nudges tasks that were forking meanwhile.
        fsutil::write(&state, "FROZEN")?;
        if fsutil::read(&state)?.trim() == "FROZEN" {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CgroupError::FreezeTimeout {
                path: dir.to_path_buf(),
                millis: FREEZE_TIMEOUT.as_millis() as u64,
            });
        }
        // v1 has no notification for FREEZING -> FROZEN.
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
}

fn freeze_v2(dir: &Path) -> Result<()> {
    fsutil::write(&dir.join("cgroup.freeze"), "1")?;
    let events = dir.join("cgroup.events");
    let mut f = std::fs::File::open(&events).map_err(|source| CgroupError::Read {
        path: events.clone(),
        source,
    })?;
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut buf = String::new();
    loop {
        buf.clear();
        f.seek(SeekFrom::Start(0))
            .and_then(|_| f.read_to_string(&mut buf))
            .map_err(|source| CgroupError::Read {
                path: events.clone(),
                source,
            })?;
        if fsutil::flat_key(&buf, "frozen") == Some(1) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CgroupError::FreezeTimeout {
                path: dir.to_path_buf(),
                millis: FREEZE_TIMEOUT.as_millis() as u64,
            });
        }
        // cgroup.events signals changes with POLLPRI.
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLPRI)];
        let ms = PollTimeout::from(left.as_millis().min(10_000) as u16);
        match poll(&mut fds, ms) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => {
                return Err(CgroupError::Read {
                    path: events,
                    source: e.into(),
                })
            }
        }
    }
}
