//! The per-container state directory under the runtime root (`/run/boxrun/<id>`).
//!
//! Layout: `state.json` (this module's [`Record`], written atomically), `config.json`
//! (the bundle's config as it was at create: later edits to the bundle have no effect),
//! `exec.fifo` (exists while the container is `created`), `lock` (flock for every
//! command that changes the container).

use crate::error::{Error, Result};
use crate::procfs;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Status recorded on disk; the live status is derived from it and from /proc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is under way (or died: then the live status is `stopped`).
    Creating,
    /// Set up and waiting for `start`.
    Created,
    /// The user process was started.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// The process has exited.
    Stopped,
}

impl Status {
    /// The lowercase name used by the OCI state.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What boxrun remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// OCI version of the config.
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// Recorded status.
    pub status: Status,
    /// Host pid of the container's init (0 before it exists).
    pub pid: i32,
    /// Start time of `pid` (ticks since boot), to survive pid reuse.
    pub pid_start_time: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Owner (empty for root).
    #[serde(default)]
    pub owner: String,
    /// Annotations from config.json.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The cgroups this container uses (and which of them create made).
    #[serde(default)]
    pub cgroup: Option<boxrun_cgroups::Cgroup>,
    /// Pid and start time of the `create` process, to tell a live `creating` from a dead one.
    #[serde(default)]
    pub creator: (i32, u64),
    /// Whether the container has its own pid namespace (kill --all and delete differ).
    #[serde(default)]
    pub own_pidns: bool,
}

impl Record {
    /// The status as it is now, from the record and the kernel.
    pub fn live_status(&self, dir: &Path) -> Status {
        match self.status {
            Status::Creating => {
                if self.pid > 0 && procfs::is_alive(self.pid, self.pid_start_time) {
                    // create died after clone or is still running: the creator decides.
                    if procfs::is_alive(self.creator.0, self.creator.1) {
                        Status::Creating
                    } else if dir.join("exec.fifo").exists() {
                        Status::Created
                    } else {
                        // A foreground `run` (no exec fifo) died after set-up: the init
                        // runs the user process with nobody watching. Never call a live
                        // process stopped: delete would skip the kill and leak it.
                        Status::Running
                    }
                } else if procfs::is_alive(self.creator.0, self.creator.1) {
                    Status::Creating
                } else {
                    Status::Stopped
                }
            }
            Status::Stopped => Status::Stopped,
            _ => {
                if !procfs::is_alive(self.pid, self.pid_start_time) {
                    return Status::Stopped;
                }
                if dir.join("exec.fifo").exists() {
                    return Status::Created;
                }
                if let Some(cg) = &self.cgroup {
                    if cg.is_frozen().unwrap_or(false) {
                        return Status::Paused;
                    }
                }
                Status::Running
            }
        }
    }

    /// The OCI state document (`boxrun state` output and hook stdin).
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let pid = match status {
            Status::Stopped => 0,
            _ => self.pid,
        };
        serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": pid,
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            "annotations": self.annotations,
        })
    }
}

/// A container's state directory, held under an exclusive lock while the value lives.
pub struct StateDir {
    /// `<root>/<id>`.
    pub path: PathBuf,
    _lock: Option<OwnedFd>,
}

fn lock_file(dir: &Path) -> Result<OwnedFd> {
    let p = dir.join("lock");
    let fd = OwnedFd::from(
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?,
    );
    loop {
        // SAFETY: flock on a valid fd.
        let r = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) };
        if r == 0 {
            return Ok(fd);
        }
        let e = nix::Error::last();
        if e != nix::Error::EINTR {
            return Err(Error::sys(format!("lock {}", p.display()), e));
        }
    }
}

impl StateDir {
    /// Create the state directory for a new container; fails if the id is in use.
    pub fn create(root: &Path, id: &str) -> Result<StateDir> {
        crate::util::validate_id(id)?;
        if let Err(e) = std::fs::create_dir_all(root) {
            return Err(Error::io(root, e));
        }
        let path = root.join(id);
        match nix::unistd::mkdir(&path, nix::sys::stat::Mode::from_bits_truncate(0o711)) {
            Ok(()) => {}
            Err(nix::Error::EEXIST) => return Err(Error::Exists(id.to_string())),
            Err(e) => return Err(Error::sys(format!("mkdir {}", path.display()), e)),
        }
        let lock = lock_file(&path)?;
        Ok(StateDir {
            path,
            _lock: Some(lock),
        })
    }

    /// Open and lock an existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<StateDir> {
        crate::util::validate_id(id).map_err(|_| Error::NotFound(id.to_string()))?;
        let path = root.join(id);
        if !path.is_dir() {
            return Err(Error::NotFound(id.to_string()));
        }
        let lock = lock_file(&path)?;
        if !path.is_dir() {
            // deleted while we waited for the lock
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(StateDir {
            path,
            _lock: Some(lock),
        })
    }

    /// Open without locking, for read-only commands (state, list, ps).
    pub fn open_unlocked(root: &Path, id: &str) -> Result<StateDir> {
        crate::util::validate_id(id).map_err(|_| Error::NotFound(id.to_string()))?;
        let path = root.join(id);
        if !path.is_dir() {
            return Err(Error::NotFound(id.to_string()));
        }
        Ok(StateDir { path, _lock: None })
    }

    /// The raw fd of the held lock, if any (children must close it).
    pub fn lock_fd(&self) -> Option<std::os::fd::RawFd> {
        self._lock.as_ref().map(|f| f.as_raw_fd())
    }

    /// The id (directory name).
    pub fn id(&self) -> String {
        self.path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Read `state.json`. A directory without one is a create that died before writing it.
    pub fn load(&self) -> Result<Option<Record>> {
        let p = self.path.join("state.json");
        match std::fs::read(&p) {
            Ok(data) => serde_json::from_slice(&data)
                .map(Some)
                .map_err(|e| Error::json(format!("{}: corrupt state", p.display()), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    /// Write `state.json` atomically.
    pub fn save(&self, rec: &Record) -> Result<()> {
        let data = serde_json::to_vec(rec).map_err(|e| Error::json("encode state", e))?;
        crate::util::atomic_write(&self.path.join("state.json"), &data, 0o600)
    }

    /// Path of the saved config.json.
    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.json")
    }

    /// Path of the exec fifo.
    pub fn fifo_path(&self) -> PathBuf {
        self.path.join("exec.fifo")
    }

    /// Remove the directory and everything in it.
    pub fn remove(self) -> Result<()> {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }
}

/// Ids of all containers under `root`, sorted.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(root, e)),
    };
    let mut ids: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| crate::util::validate_id(n).is_ok())
        .collect();
    ids.sort();
    Ok(ids)
}
