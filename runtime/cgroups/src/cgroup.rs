//! The [`Cgroup`] handle: creation, joining, listing, signalling and removal.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::error::{CgroupError, Result};
use crate::fsutil;
use crate::layout::{self, Layout, Mode};
use crate::paths::{chain, CgroupsPath};

/// The kind of a hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// A cgroup v1 hierarchy (one or more controllers, or `name=…`).
    V1,
    /// The cgroup2 hierarchy.
    V2,
}

/// The container's directory in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// v1 or v2.
    pub version: Version,
    /// v1: the controllers of the mount (`cpu`, `cpuacct`, `name=systemd`);
    /// v2: the controllers available at the mount point.
    pub controllers: Vec<String>,
    /// Where the hierarchy is mounted on the host.
    pub mount_point: PathBuf,
    /// The container's cgroup directory (host path).
    pub path: PathBuf,
    /// Directories this runtime created, shallowest first; only these are removed.
    #[serde(default)]
    pub created: Vec<PathBuf>,
    /// Whether the directory was made (by [`Cgroup::materialize`] or
    /// [`Cgroup::materialize_v2`]); false in a [`Cgroup::plan`].
    #[serde(default)]
    pub made: bool,
}

impl Hierarchy {
    /// Whether this hierarchy carries `controller`.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// What the runtime created/joined; serialise it into the container state so
/// that later `delete`/`update`/`pause`/`ps`/`events` invocations can act on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// The host layout at creation time.
    pub mode: Mode,
    /// One entry per hierarchy (v1 mounts in mount order, then v2).
    pub hierarchies: Vec<Hierarchy>,
}

/// How long `destroy` keeps retrying `rmdir` while exiting tasks still pin a cgroup.
const RMDIR_PATIENCE: Duration = Duration::from_secs(2);

fn is_errno(e: &io::Error, errno: i32) -> bool {
    e.raw_os_error() == Some(errno)
}

/// `mkdir -p` of `dir` below `mount_point`, returning the directories that
/// were created (shallowest first). Tries the leaf first: in the common case
/// its parent exists and a single mkdir(2) suffices.
fn mkdir_p(mount_point: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    match std::fs::create_dir(dir) {
        Ok(()) => return Ok(vec![dir.to_path_buf()]),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Vec::new()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(CgroupError::Mkdir {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    // A concurrent `destroy` of a sibling container may remove a shared
    // parent between our mkdirs; start over a few times if that happens.
    let mut created = Vec::new();
    'attempt: for _ in 0..5 {
        for level in chain(mount_point, dir) {
            match std::fs::create_dir(&level) {
                Ok(()) => created.push(level),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue 'attempt,
                Err(source) => {
                    remove_created(&created);
                    return Err(CgroupError::Mkdir {
                        path: level,
                        source,
                    });
                }
            }
        }
        return Ok(created);
    }
    remove_created(&created);
    Err(CgroupError::Mkdir {
        path: dir.to_path_buf(),
        source: io::Error::from_raw_os_error(libc::ENOENT),
    })
}

/// Best-effort removal of directories created during a failed `create`.
fn remove_created(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// Remove `dir` and every cgroup below it, deepest first, retrying on EBUSY
/// for a short while (exiting tasks keep a cgroup busy briefly).
fn remove_tree(dir: &Path, deadline: Instant) -> Result<()> {
    // Fast path: no sub-cgroups and no tasks left.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) if is_errno(&e, libc::EBUSY) || is_errno(&e, libc::ENOTEMPTY) => {}
        Err(source) => {
            return Err(CgroupError::Rmdir {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    remove_tree(&e.path(), deadline)?;
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Rmdir {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    let mut delay = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if is_errno(&e, libc::EBUSY) && Instant::now() < deadline => {
                // No notification exists for "last task left" on v1; back off.
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Read `cgroup.procs` of `dir` and all cgroups below it.
fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let Some(text) = fsutil::read_opt(&procs)? else {
        return Ok(()); // removed meanwhile
    };
    for l in text.lines() {
        let pid = l.trim().parse::<i32>().map_err(|_| CgroupError::Parse {
            path: procs.clone(),
            reason: format!("bad pid {l:?}"),
        })?;
        if !out.contains(&pid) {
            out.push(pid);
        }
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_pids(&e.path(), out)?;
        }
    }
    Ok(())
}

/// Make a new v1 cpuset directory usable: an empty `cpuset.cpus`/`mems`
/// makes the kernel refuse tasks, so copy them from the parent.
fn init_cpuset(h: &Hierarchy) -> Result<()> {
    let levels = chain(&h.mount_point, &h.path);
    for file in ["cpuset.cpus", "cpuset.mems"] {
        // The value the level above has (read lazily, then carried down).
        let mut above: Option<String> = None;
        for dir in &levels {
            let path = dir.join(file);
            if !h.created.contains(dir) {
                let own = fsutil::read(&path)?.trim().to_string();
                if !own.is_empty() {
                    above = Some(own);
                    continue;
                }
            }
            let value = match above.take() {
                Some(v) => v,
                None => {
                    let parent = dir.parent().unwrap_or(&h.mount_point);
                    fsutil::read(&parent.join(file))?.trim().to_string()
                }
            };
            if !value.is_empty() {
                fsutil::write(&path, &value)?;
            }
            above = Some(value);
        }
    }
    Ok(())
}

/// Whether `resources` set anything that cgroup2 `controller` enforces.
fn uses_v2_controller(resources: &LinuxResources, controller: &str) -> bool {
    let raw = resources
        .unified()
        .as_ref()
        .is_some_and(|u| u.keys().any(|k| k.split('.').next() == Some(controller)));
    raw || match controller {
        "hugetlb" => resources
            .hugepage_limits()
            .as_ref()
            .is_some_and(|l| !l.is_empty()),
        "rdma" => resources.rdma().as_ref().is_some_and(|r| !r.is_empty()),
        "memory" => resources.memory().is_some(),
        "pids" => resources.pids().is_some(),
        "cpu" | "cpuset" => resources.cpu().is_some(),
        "io" => resources.block_io().is_some(),
        _ => false,
    }
}

/// The cgroup2 controllers to enable for the container: all of them on a pure
/// v2 host (as runc does); on a hybrid host only those no v1 hierarchy carries
/// and that `resources` use. Every enabled controller populates files in each
/// new cgroup, which costs a measurable share of a container start.
fn v2_controllers_to_enable(
    cg: &Cgroup,
    h: &Hierarchy,
    resources: Option<&LinuxResources>,
) -> Vec<String> {
    if cg.mode != Mode::Hybrid {
        return h.controllers.clone();
    }
    let Some(r) = resources else {
        return Vec::new();
    };
    h.controllers
        .iter()
        .filter(|c| {
            !cg.hierarchies
                .iter()
                .any(|v1| v1.version == Version::V1 && v1.has(c))
        })
        .filter(|c| uses_v2_controller(r, c))
        .cloned()
        .collect()
}

/// Enable `controllers` from the mount point down to the parent of the
/// container's directory. Levels that refuse (e.g. because they hold
/// processes) are skipped; a resource that then lacks its files fails with a
/// precise error when it is applied.
fn enable_v2_controllers(h: &Hierarchy, controllers: &[String]) {
    if controllers.is_empty() {
        return;
    }
    let all: String = controllers
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut levels = vec![h.mount_point.clone()];
    levels.extend(chain(&h.mount_point, &h.path));
    levels.pop(); // not the leaf: it holds the container's processes
    for dir in levels {
        let file = dir.join("cgroup.subtree_control");
        if fsutil::write_raw(&file, &all).is_err() {
            for c in controllers {
                let _ = fsutil::write_raw(&file, &format!("+{c}"));
            }
        }
    }
}

impl Cgroup {
    /// Resolve `linux.cgroupsPath` (absolute: from each hierarchy's root;
    /// relative: from the calling process's own cgroup in that hierarchy;
    /// `None`/empty: `/boxrun/<container_id>`), create the directory in every
    /// hierarchy (recording which directories were created) and apply
    /// `resources`. On failure everything created is removed again.
    pub fn create(
        cgroups_path: Option<&Path>,
        container_id: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<Cgroup> {
        Self::create_in(Layout::host()?, cgroups_path, container_id, resources)
    }

    /// [`Cgroup::create`] for an explicitly given layout.
    pub fn create_in(
        layout: &Layout,
        cgroups_path: Option<&Path>,
        container_id: &str,
        resources: Option<&LinuxResources>,
    ) -> Result<Cgroup> {
        let mut cg = Self::resolve(layout, cgroups_path, container_id)?;
        cg.materialize(resources)?;
        Ok(cg)
    }

    /// The container's directories on this host, computed but not created (see
    /// [`Cgroup::materialize`]): lets a runtime start the container's set-up while
    /// the directories are being made.
    pub fn plan(cgroups_path: Option<&Path>, container_id: &str) -> Result<Cgroup> {
        Self::resolve(Layout::host()?, cgroups_path, container_id)
    }

    /// Create the directories of a [`Cgroup::plan`] in every hierarchy (recording
    /// which ones were created) and apply `resources`. On failure everything
    /// created is removed again.
    pub fn materialize(&mut self, resources: Option<&LinuxResources>) -> Result<()> {
        self.materialize_or_keep(resources)
            .inspect_err(|_| drop(self.destroy()))
    }

    /// [`Cgroup::materialize`] that leaves what it created on failure (recorded, for
    /// [`Cgroup::destroy`]): for a caller whose process is already in one of the
    /// directories, which must kill it first, or `destroy` waits for it in vain.
    pub fn materialize_or_keep(&mut self, resources: Option<&LinuxResources>) -> Result<()> {
        for i in 0..self.hierarchies.len() {
            self.make_dir(i)?;
        }
        self.prepare(resources)
    }

    /// Create only the v2 directory of a [`Cgroup::plan`] (hybrid hosts), so that the
    /// child can be born in it ([`Cgroup::clone_into_fd`]) before [`Cgroup::materialize`]
    /// makes the rest. On failure it is removed again.
    pub fn materialize_v2(&mut self) -> Result<()> {
        let Some(i) = self
            .hierarchies
            .iter()
            .position(|h| h.version == Version::V2)
        else {
            return Ok(());
        };
        if let Err(e) = self.make_dir(i) {
            let _ = self.destroy();
            return Err(e);
        }
        Ok(())
    }

    /// Note, in every hierarchy not made yet, the directories that making it would
    /// create (the levels missing now) as created: a runtime that saves this before
    /// making them, and dies between the mkdir and its next save, still has them on
    /// record for [`Cgroup::destroy`], which skips the ones that never came to exist.
    /// A shared runtime parent ([`RUNTIME_PARENTS`]) is left out, unchecked: `destroy`
    /// never removes one, so it needs no record.
    pub fn reserve(&mut self) {
        for h in self.hierarchies.iter_mut().filter(|h| !h.made) {
            h.created = chain(&h.mount_point, &h.path)
                .into_iter()
                .filter(|d| !is_kept_parent(&h.mount_point, &h.path, d) && !d.exists())
                .collect();
        }
    }

    /// Whether every directory this cgroup created (shared runtime parents aside) is on
    /// record in `saved`, a copy taken after [`Cgroup::reserve`]: then a record holding
    /// `saved` already lets [`Cgroup::destroy`] remove all of them, and a runtime need
    /// not save it again after the mkdirs. False when a mkdir went beyond the
    /// reservation (a parent that another container's `destroy` removed meanwhile).
    pub fn recorded_in(&self, saved: &Cgroup) -> bool {
        self.hierarchies.len() == saved.hierarchies.len()
            && self
                .hierarchies
                .iter()
                .zip(&saved.hierarchies)
                .all(|(h, s)| {
                    h.path == s.path
                        && h.created.iter().all(|d| {
                            is_kept_parent(&h.mount_point, &h.path, d) || s.created.contains(d)
                        })
                })
    }

    fn make_dir(&mut self, i: usize) -> Result<()> {
        let h = &mut self.hierarchies[i];
        if !h.made {
            h.created = mkdir_p(&h.mount_point, &h.path)?;
            h.made = true;
        }
        Ok(())
    }

    /// Compute the host directories without touching the file system
    /// (except reading `/proc/self/cgroup` for relative paths).
    pub fn resolve(
        layout: &Layout,
        cgroups_path: Option<&Path>,
        container_id: &str,
    ) -> Result<Cgroup> {
        Self::resolve_target(layout, &CgroupsPath::parse(cgroups_path, container_id)?)
    }

    /// [`Cgroup::resolve`] of a parsed path.
    pub(crate) fn resolve_target(layout: &Layout, target: &CgroupsPath) -> Result<Cgroup> {
        let own = if target.is_relative() {
            let p = Path::new("/proc/self/cgroup");
            layout::parse_proc_cgroup(&fsutil::read(p)?)?
        } else {
            Vec::new()
        };
        let mut hierarchies = Vec::new();
        for m in &layout.v1 {
            let path = target.host_dir(
                &m.mount_point,
                &m.root,
                layout::own_path(&own, Some(&m.controllers)),
            )?;
            hierarchies.push(Hierarchy {
                version: Version::V1,
                controllers: m.controllers.clone(),
                mount_point: m.mount_point.clone(),
                path,
                created: Vec::new(),
                made: false,
            });
        }
        if let Some(m) = &layout.v2 {
            let path = target.host_dir(&m.mount_point, &m.root, layout::own_path(&own, None))?;
            hierarchies.push(Hierarchy {
                version: Version::V2,
                controllers: m.controllers.clone(),
                mount_point: m.mount_point.clone(),
                path,
                created: Vec::new(),
                made: false,
            });
        }
        Ok(Cgroup {
            mode: layout.mode,
            hierarchies,
        })
    }

    fn prepare(&self, resources: Option<&LinuxResources>) -> Result<()> {
        for h in &self.hierarchies {
            match h.version {
                Version::V1 if h.has("cpuset") => init_cpuset(h)?,
                Version::V2 => {
                    enable_v2_controllers(h, &v2_controllers_to_enable(self, h, resources))
                }
                Version::V1 => {}
            }
        }
        if let Some(r) = resources {
            self.apply(r)?;
        }
        Ok(())
    }

    /// The v2 hierarchy, if any.
    pub fn v2(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.version == Version::V2)
    }

    /// Where `controller` lives: a v1 hierarchy carrying it, else the v2
    /// hierarchy if it lists it.
    pub fn controller(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.version == Version::V1 && h.has(controller))
            .or_else(|| self.v2().filter(|h| h.has(controller)))
    }

    /// Like [`Cgroup::controller`] but an error naming the setting `what`.
    pub(crate) fn require(&self, controller: &str, what: &str) -> Result<&Hierarchy> {
        self.controller(controller)
            .ok_or_else(|| CgroupError::missing_controller(controller, what))
    }

    /// Move `pid` into the container's cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        let value = pid.to_string();
        for h in &self.hierarchies {
            fsutil::write(&h.path.join("cgroup.procs"), &value)?;
        }
        Ok(())
    }

    /// Move `pid` into the container's v2 cgroup only, for a child that could not be
    /// born there and joins its v1 hierarchies itself ([`Cgroup::join_v1_self`]).
    pub fn add_process_v2(&self, pid: i32) -> Result<()> {
        match self.v2() {
            Some(h) => fsutil::write(&h.path.join("cgroup.procs"), &pid.to_string()),
            None => Ok(()),
        }
    }

    /// The `tasks` file of every v1 hierarchy, opened for writing, in hierarchy
    /// order: handed to the container's init, which moves itself in with
    /// [`Cgroup::join_v1_self`]. Opened by the runtime so that the init needs no
    /// access of its own (it may already be in a user or mount namespace).
    pub fn v1_tasks_files(&self) -> Result<Vec<OwnedFd>> {
        self.hierarchies
            .iter()
            .filter(|h| h.version == Version::V1)
            .map(|h| {
                let path = h.path.join("tasks");
                OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(&path)
                    .map(OwnedFd::from)
                    .map_err(|source| CgroupError::Write {
                        path,
                        value: "0".into(),
                        source,
                    })
            })
            .collect()
    }

    /// Move the calling thread into every v1 hierarchy through `tasks`, the files of
    /// [`Cgroup::v1_tasks_files`]. Writing "0" to `tasks` moves only the caller, which
    /// Linux ≥ 6.0 does without write-locking cgroup_threadgroup_rwsem; writing a pid to
    /// `cgroup.procs` waits for an RCU grace period first (5-25 ms on an idle host).
    /// For a single-threaded caller the two are the same move.
    pub fn join_v1_self(&self, tasks: &[OwnedFd]) -> Result<()> {
        let v1 = self.hierarchies.iter().filter(|h| h.version == Version::V1);
        if v1.clone().count() != tasks.len() {
            return Err(CgroupError::invalid(
                "cgroup join",
                format!(
                    "got {} tasks files for {} v1 hierarchies",
                    tasks.len(),
                    v1.count()
                ),
            ));
        }
        for (h, fd) in v1.zip(tasks) {
            // SAFETY: fd is an open descriptor; the buffer is one valid byte.
            if unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
                return Err(CgroupError::Write {
                    path: h.path.join("tasks"),
                    value: "0".into(),
                    source: io::Error::last_os_error(),
                });
            }
        }
        Ok(())
    }

    /// Whether the host is pure cgroup v2, where every directory is made before the
    /// child is born in its cgroup ([`Cgroup::clone_into_fd`]).
    pub fn is_unified(&self) -> bool {
        self.mode == Mode::Unified
    }

    /// An `O_PATH|O_DIRECTORY` descriptor of the container's v2 directory for
    /// `clone3(CLONE_INTO_CGROUP)`, once that directory is made ([`Cgroup::materialize`],
    /// or [`Cgroup::materialize_v2`] on hybrid hosts); `None` otherwise or when it cannot
    /// be opened (the caller then uses [`Cgroup::add_process_v2`]).
    pub fn clone_into_fd(&self) -> Option<OwnedFd> {
        let h = self.v2().filter(|h| h.made)?;
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&h.path)
            .ok()
            .map(OwnedFd::from)
    }

    /// The hierarchy used to list processes: the v2 one on unified hosts,
    /// else a v1 hierarchy that every container process joins.
    fn procs_hierarchy(&self) -> Option<&Hierarchy> {
        if self.mode == Mode::Unified {
            return self.v2();
        }
        for c in ["freezer", "devices", "pids", "memory", "cpu"] {
            if let Some(h) = self
                .hierarchies
                .iter()
                .find(|h| h.version == Version::V1 && h.has(c))
            {
                return Some(h);
            }
        }
        self.hierarchies.first()
    }

    /// Every process in the container's cgroup, including sub-cgroups.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        if let Some(h) = self.procs_hierarchy() {
            collect_pids(&h.path, &mut out)?;
        }
        Ok(out)
    }

    /// Send `signal` to every process in the cgroup. The cgroup is frozen
    /// first so that no process can fork an unsignalled child meanwhile, and
    /// thawed afterwards (a cgroup that was already frozen stays frozen,
    /// except for SIGKILL, which needs the thaw to take effect). On v2 SIGKILL
    /// uses `cgroup.kill` when the kernel has it.
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        let sig = Signal::try_from(signal).map_err(|_| {
            CgroupError::invalid("signal", format!("{signal} is not a valid signal number"))
        })?;
        if sig == Signal::SIGKILL && self.mode == Mode::Unified {
            if let Some(h) = self.v2() {
                match fsutil::write_raw(&h.path.join("cgroup.kill"), "1") {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(CgroupError::Write {
                            path: h.path.join("cgroup.kill"),
                            value: "1".into(),
                            source,
                        })
                    }
                }
            }
        }
        let can_freeze = self.freezer().is_some();
        let was_frozen = can_freeze && self.is_frozen()?;
        if can_freeze && !was_frozen {
            self.freeze()?;
        }
        let result = (|| {
            for pid in self.pids()? {
                match kill(Pid::from_raw(pid), sig) {
                    Ok(()) | Err(nix::Error::ESRCH) => {}
                    Err(source) => {
                        return Err(CgroupError::Signal {
                            pid,
                            signal,
                            source,
                        })
                    }
                }
            }
            Ok(())
        })();
        if can_freeze && (!was_frozen || sig == Signal::SIGKILL) {
            self.thaw()?;
        }
        result
    }

    /// Remove the cgroup directories this runtime created, deepest first,
    /// retrying briefly on EBUSY while tasks exit. Pre-existing directories
    /// are left alone; created parents still used by other containers are
    /// kept, and so is a shared runtime parent ([`RUNTIME_PARENTS`]), empty
    /// or not, as runc and crun keep theirs: the next container then makes
    /// one directory per hierarchy instead of two (and removes one).
    /// Directories created below ours (e.g. by the container) are removed too.
    pub fn destroy(&self) -> Result<()> {
        let deadline = Instant::now() + RMDIR_PATIENCE;
        let mut first_err = None;
        for h in &self.hierarchies {
            for (i, dir) in h.created.iter().enumerate().rev() {
                if is_kept_parent(&h.mount_point, &h.path, dir) {
                    break;
                }
                let leaf = i + 1 == h.created.len() && *dir == h.path;
                let r = if leaf {
                    remove_tree(dir, deadline)
                } else {
                    match std::fs::remove_dir(dir) {
                        Ok(()) => Ok(()),
                        // shared parent still in use by another container
                        Err(e)
                            if e.kind() == io::ErrorKind::NotFound
                                || is_errno(&e, libc::EBUSY)
                                || is_errno(&e, libc::ENOTEMPTY) =>
                        {
                            break
                        }
                        Err(source) => Err(CgroupError::Rmdir {
                            path: dir.clone(),
                            source,
                        }),
                    }
                };
                if let Err(e) = r {
                    first_err.get_or_insert(e);
                    break;
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Top-level parents shared by every container of a runtime (`/boxrun/<id>` is boxrun's
/// default path, `/boxctl/<id>` the manager's). Made by the first container that needs
/// one and then kept between containers, as runc and crun keep theirs.
pub const RUNTIME_PARENTS: &[&str] = &["boxrun", "boxctl"];

/// Whether `destroy` keeps `dir`, a level of the container's cgroup `path`: a shared
/// runtime parent above it.
fn is_kept_parent(mount_point: &Path, path: &Path, dir: &Path) -> bool {
    dir != path && is_runtime_parent(mount_point, dir)
}

/// Whether `dir` is a shared runtime parent: `<mount point>/<one of RUNTIME_PARENTS>`.
fn is_runtime_parent(mount_point: &Path, dir: &Path) -> bool {
    dir.parent() == Some(mount_point)
        && dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| RUNTIME_PARENTS.contains(&n))
}
