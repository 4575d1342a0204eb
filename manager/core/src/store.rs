//! The on-disk layout under the root (default /var/lib/boxctl), the lock
//! and atomic file replacement.
//!
//! ```text
//! ROOT/lock                 flock(2) taken around every read-modify-write of instances.toml
//! ROOT/instances.toml       every instance and its characteristics (see instance_file)
//! ROOT/images/NAME/         disk.img (raw ext4) + image.json (defaults, size, created)
//! ROOT/instances/ID/        disk.img, config.json (bundle), rootfs/ (mount point), logs
//! ROOT/runtime/             the OCI runtime's --root
//! ROOT/volumes/NAME/        volume.img + volume.json (see volumes)
//! ROOT/pool/                the storage pool, where the store cannot reflink (see pool)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result};

use crate::instance_file::{self, Instance};

/// Paths of one boxctl root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Whether opening it removed temporary files of a killed boxctl.
    cleaned_stale: bool,
}

/// An exclusive flock on ROOT/lock, released on drop.
pub struct LockGuard {
    _file: File,
}

impl Store {
    /// The store at `root`, creating its directories if needed.
    pub fn open(root: &Path) -> Result<Store> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir()
                .context("cannot read the current directory")?
                .join(root)
        };
        for d in ["images", "instances", "runtime", "networks"] {
            let p = root.join(d);
            fs::create_dir_all(&p)
                .with_context(|| format!("cannot create {}: are you root?", p.display()))?;
        }
        let mut store = Store {
            root,
            cleaned_stale: false,
        };
        store.cleaned_stale = store.clean_stale_temps();
        Ok(store)
    }

    /// Whether [`Store::open`] found and removed temporary files left by a killed
    /// boxctl (the storage pool then collects its garbage: [`crate::pool::reconcile`]).
    pub fn cleaned_stale_temps(&self) -> bool {
        self.cleaned_stale
    }

    /// Remove temporary files and directories left by boxctl processes that
    /// were killed (their names carry the writer's pid); whether there were any.
    fn clean_stale_temps(&self) -> bool {
        let mut cleaned = false;
        let dirs = [
            self.root.clone(),
            self.images_dir(),
            self.root.join("volumes"),
            self.root.join("pool"),
        ];
        for dir in dirs {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if is_stale_temp(&name) {
                    cleaned = true;
                    let p = e.path();
                    let _ = if p.is_dir() {
                        fs::remove_dir_all(&p)
                    } else {
                        fs::remove_file(&p)
                    };
                }
            }
        }
        cleaned
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// ROOT/images.
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// ROOT/images/NAME (the name must have been validated).
    pub fn image_dir(&self, name: &str) -> PathBuf {
        self.images_dir().join(name)
    }

    /// ROOT/instances/ID.
    pub fn instance_dir(&self, id: &str) -> PathBuf {
        self.root.join("instances").join(id)
    }

    /// The runtime's state root.
    pub fn runtime_root(&self) -> PathBuf {
        self.root.join("runtime")
    }

    /// ROOT/instances.toml.
    pub fn instance_file(&self) -> PathBuf {
        self.root.join("instances.toml")
    }

    /// Take the store lock (blocks until free).
    pub fn lock(&self) -> Result<LockGuard> {
        lock_file(&self.root.join("lock"))
    }

    /// The instance file's text ("" when there is none yet).
    fn read_text(&self) -> Result<String> {
        let path = self.instance_file();
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn parse(&self, text: &str) -> Result<Vec<Instance>> {
        instance_file::parse(text).with_context(|| {
            format!(
                "instance file {} is damaged",
                self.instance_file().display()
            )
        })
    }

    /// Read every instance (the caller should hold the lock for a consistent
    /// read-modify-write; a plain read is safe anyway thanks to atomic renames).
    pub fn load(&self) -> Result<Vec<Instance>> {
        self.parse(&self.read_text()?)
    }

    /// Replace the instance file atomically (caller holds the lock).
    pub fn save(&self, list: &[Instance]) -> Result<()> {
        write_atomic(
            &self.instance_file(),
            instance_file::render(list).as_bytes(),
        )
    }

    /// Lock, load, let `f` change the list, save if `f` succeeded and changed
    /// it. The sections of unchanged instances are copied from the old text,
    /// so only changed ones are rendered again.
    pub fn update<R>(&self, f: impl FnOnce(&mut Vec<Instance>) -> Result<R>) -> Result<R> {
        let _guard = self.lock()?;
        let text = self.read_text()?;
        let mut list = self.parse(&text)?;
        let before = list.clone();
        let r = f(&mut list)?;
        if list != before {
            let out = render_reusing(&text, &before, &list);
            write_atomic(&self.instance_file(), out.as_bytes())?;
        }
        Ok(r)
    }

    /// Lock, let `f` change the instance with id `id`, save if it changed:
    /// only that instance's section is parsed and rendered, the rest of the
    /// file is copied as text (the one whole-file cost is the write itself).
    pub fn update_one<R>(&self, id: &str, f: impl FnOnce(&mut Instance) -> Result<R>) -> Result<R> {
        let _guard = self.lock()?;
        let text = self.read_text()?;
        let (_, secs) = instance_file::sections(&text);
        let Some(sec) = secs.iter().find(|s| s.id == id) else {
            // Not in canonical form (hand-edited) or gone: the whole-file path says which.
            drop(_guard);
            return self.update(|list| f(get_mut(list, id)?));
        };
        let range = sec.range.clone();
        let mut inst = self
            .parse(&text[range.clone()])?
            .pop()
            .with_context(|| format!("instance {id} has disappeared from the instance file"))?;
        let before = inst.clone();
        let r = f(&mut inst)?;
        if inst != before {
            let mut out = String::with_capacity(text.len() + 256);
            out.push_str(&text[..range.start]);
            instance_file::render_section(&mut out, &inst);
            out.push_str(&text[range.end..]);
            write_atomic(&self.instance_file(), out.as_bytes())?;
        }
        Ok(r)
    }

    /// Remove the records of `ids` in one rewrite (ids not in the file are
    /// ignored); nothing is parsed.
    pub fn remove_records(&self, ids: &[&str]) -> Result<()> {
        let _guard = self.lock()?;
        let text = self.read_text()?;
        let (preamble, secs) = instance_file::sections(&text);
        if !secs.iter().any(|s| ids.contains(&s.id)) {
            return Ok(());
        }
        let mut out = String::with_capacity(text.len());
        out.push_str(&text[..preamble]);
        let mut first = true;
        for s in secs.iter().filter(|s| !ids.contains(&s.id)) {
            if !first {
                out.push('\n');
            }
            first = false;
            out.push_str(&text[s.range.clone()]);
        }
        write_atomic(&self.instance_file(), out.as_bytes())
    }

    /// The instance named or identified by `key` (name, full id or unique id prefix).
    /// An exact id or name parses only that instance's section.
    pub fn find(&self, key: &str) -> Result<Instance> {
        let text = self.read_text()?;
        let quick = instance_file::find_quick(&text, key).with_context(|| {
            format!(
                "instance file {} is damaged",
                self.instance_file().display()
            )
        })?;
        match quick {
            Some(inst) => Ok(inst),
            None => find_in(&self.parse(&text)?, key).cloned(),
        }
    }

    /// Whether an instance with id `id` is recorded (a scan, no parse).
    pub fn has_id(&self, id: &str) -> Result<bool> {
        let text = self.read_text()?;
        Ok(instance_file::sections(&text).1.iter().any(|s| s.id == id))
    }
}

/// The text of `after` with the sections of instances unchanged since
/// `before` (parsed from `text`) copied from `text` rather than rendered.
fn render_reusing(text: &str, before: &[Instance], after: &[Instance]) -> String {
    let (_, secs) = instance_file::sections(text);
    // Sections that match the parsed list one to one (a canonical file).
    let aligned = secs.len() == before.len() && secs.iter().zip(before).all(|(s, i)| s.id == i.id);
    if !aligned {
        return instance_file::render(after);
    }
    let old: std::collections::HashMap<&str, usize> = before
        .iter()
        .enumerate()
        .map(|(n, i)| (i.id.as_str(), n))
        .collect();
    let mut out = String::with_capacity(text.len() + 512);
    out.push_str(instance_file::HEADER);
    for inst in after {
        out.push('\n');
        match old.get(inst.id.as_str()) {
            Some(&n) if before[n] == *inst => out.push_str(&text[secs[n].range.clone()]),
            _ => instance_file::render_section(&mut out, inst),
        }
    }
    out
}

/// Whether `name` is a temporary file of a boxctl process that is gone
/// (`.tmp-PID-…` or `.NAME.tmp.PID`).
pub(crate) fn is_stale_temp(name: &str) -> bool {
    let pid = if let Some(rest) = name.strip_prefix(".tmp-") {
        rest.split('-').next()
    } else if name.starts_with('.') && name.contains(".tmp.") {
        name.rsplit('.').next()
    } else {
        None
    };
    pid.and_then(|p| p.parse::<i32>().ok())
        .is_some_and(|pid| !crate::procs::alive(pid))
}

/// Look an instance up by name, id, or unique id prefix.
pub fn find_in<'a>(list: &'a [Instance], key: &str) -> Result<&'a Instance> {
    if let Some(i) = list.iter().find(|i| i.name == key || i.id == key) {
        return Ok(i);
    }
    let matches: Vec<_> = list
        .iter()
        .filter(|i| key.len() >= 3 && i.id.starts_with(key))
        .collect();
    match matches.len() {
        1 => Ok(matches[0]),
        0 => crate::bail!("no such instance: {key} (see `boxctl ps -a`)"),
        _ => crate::bail!("instance id prefix {key} is ambiguous: give more digits or the name"),
    }
}

/// Write `data` to `path` atomically but without forcing it to disk (temp
/// file + rename): for files regenerated at every start (config.json, hosts).
pub fn write_quick(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let r = fs::write(&tmp, data)
        .with_context(|| format!("cannot write {} (is the disk full?)", tmp.display()))
        .and_then(|_| {
            fs::rename(&tmp, path)
                .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
        });
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

/// Write `data` to `path` atomically: temp file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(data)
            .and_then(|_| f.sync_all())
            .with_context(|| format!("cannot write {} (is the disk full?)", tmp.display()))?;
        fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync directory {}", dir.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The instance with id `id`, mutably.
pub fn get_mut<'a>(list: &'a mut [Instance], id: &str) -> Result<&'a mut Instance> {
    list.iter_mut()
        .find(|i| i.id == id)
        .with_context(|| format!("instance {id} has disappeared from the instance file"))
}

/// Take an exclusive `flock` on `path` (created if absent; blocks until free),
/// held until the guard is dropped.
pub fn lock_file(path: &Path) -> Result<LockGuard> {
    lock_file_or_wait(path, || {})
}

/// [`lock_file`], calling `on_wait` once first when another holder makes it wait.
pub fn lock_file_or_wait(path: &Path, on_wait: impl FnOnce()) -> Result<LockGuard> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    let fd = file.as_raw_fd();
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(LockGuard { _file: file });
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
        return Err(err).with_context(|| format!("cannot lock {}", path.display()));
    }
    on_wait();
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(fd, libc::LOCK_EX) } == 0 {
            return Ok(LockGuard { _file: file });
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
}
