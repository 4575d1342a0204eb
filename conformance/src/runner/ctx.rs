//! Per-case context: a private --root, bundle and output directory, helpers
//! to drive the runtime, and cleanup that runs even when the case fails.

use super::bundle::{link_tree, BASE_CONFIG};
use super::cmd::{self, Output};
use super::{Outcome, Suite};
use crate::procfs::{ns_proc_name, parse_mountinfo, NS_TYPES};
use crate::tap::{Point, Tap};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// Everything one case owns. Dropping it kills and deletes its containers,
/// unmounts what is left under its directory, removes its cgroups and files.
pub struct Ctx<'s> {
    suite: &'s Suite,
    /// Case name.
    pub name: String,
    /// The case's private directory.
    pub dir: PathBuf,
    /// The runtime's --root for this case.
    pub root: PathBuf,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The config that [`Ctx::write_config`] writes.
    pub config: Value,
    ids: Vec<String>,
    children: Vec<Child>,
    cgroups: Vec<String>,
    deadline: Instant,
    ncmd: usize,
    /// Extra global options put before every runtime subcommand.
    pub global: Vec<String>,
}

impl<'s> Ctx<'s> {
    /// Prepare the case directory, hard-linked rootfs and base config.
    pub fn new(suite: &'s Suite, name: &str) -> Result<Ctx<'s>> {
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let dir = suite.work.join(&safe);
        let root = dir.join("root");
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&root).with_context(|| format!("mkdir {}", root.display()))?;
        std::fs::create_dir_all(&bundle)?;
        let out = dir.join("out");
        std::fs::create_dir_all(&out)?;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777))?;
        link_tree(&suite.base_rootfs, &bundle.join("rootfs"))?;
        let config: Value = serde_json::from_str(BASE_CONFIG).context("parse base config")?;
        Ok(Ctx {
            suite,
            name: name.to_string(),
            dir,
            root,
            bundle,
            config,
            ids: Vec::new(),
            children: Vec::new(),
            cgroups: Vec::new(),
            deadline: Instant::now() + suite.timeout,
            ncmd: 0,
            global: Vec::new(),
        })
    }

    /// A container id unique to this case and runner process.
    pub fn id(&self, n: usize) -> String {
        let safe: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("oc{}-{n}-{safe}", std::process::id())
    }

    /// The runtime under test.
    pub fn runtime(&self) -> &Path {
        &self.suite.runtime
    }

    /// Host path of the case's shared output directory (mounted at /out by
    /// [`Ctx::mount_out`]).
    pub fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// Bind-mount the output directory read-write at /out.
    pub fn mount_out(&mut self) {
        let src = self.out().to_string_lossy().into_owned();
        self.push_mount(json!({
            "destination": "/out", "type": "bind", "source": src,
            "options": ["rbind", "rw"]
        }));
    }

    /// Append a mount to config.mounts.
    pub fn push_mount(&mut self, m: Value) {
        if let Some(a) = self.config["mounts"].as_array_mut() {
            a.push(m);
        } else {
            self.config["mounts"] = json!([m]);
        }
    }

    /// Set process.args.
    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
    }

    /// Set process.args to a `/bin/sh -c script`.
    pub fn set_sh(&mut self, script: &str) {
        self.set_args(&["/bin/sh", "-c", script]);
    }

    /// Remove a namespace type from linux.namespaces.
    pub fn drop_ns(&mut self, ty: &str) {
        if let Some(a) = self.config["linux"]["namespaces"].as_array_mut() {
            a.retain(|n| n["type"] != ty);
        }
    }

    /// Add (or replace) a namespace entry.
    pub fn set_ns(&mut self, ty: &str, path: Option<&str>) {
        self.drop_ns(ty);
        let e = match path {
            Some(p) => json!({"type": ty, "path": p}),
            None => json!({"type": ty}),
        };
        if let Some(a) = self.config["linux"]["namespaces"].as_array_mut() {
            a.push(e);
        }
    }

    /// Use `cgroupsPath` `/boxrun/<id>` and remember to remove it afterwards.
    pub fn use_cgroup(&mut self, id: &str) -> String {
        let p = format!("/boxrun/{id}");
        self.config["linux"]["cgroupsPath"] = json!(p);
        self.cgroups.push(p.clone());
        p
    }

    /// Write config.json, the checker's copy of it and the host facts.
    pub fn write_config(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.config)?;
        std::fs::write(self.bundle.join("config.json"), &text)
            .context("write bundle config.json")?;
        let rootfs = self.rootfs();
        if !rootfs.is_dir() {
            // Cases that test a missing rootfs.
            return Ok(());
        }
        std::fs::write(rootfs.join("oci-checker.json"), &text).context("write oci-checker.json")?;
        std::fs::write(
            rootfs.join("oci-checker-host.json"),
            serde_json::to_string(&self.host_facts())?,
        )
        .context("write oci-checker-host.json")?;
        Ok(())
    }

    /// Host path of the rootfs.
    pub fn rootfs(&self) -> PathBuf {
        let p = self.config["root"]["path"].as_str().unwrap_or("rootfs");
        if p.starts_with('/') {
            PathBuf::from(p)
        } else {
            self.bundle.join(p)
        }
    }

    fn host_facts(&self) -> Value {
        let mut ns = serde_json::Map::new();
        for ty in NS_TYPES {
            if let Some(n) = ns_proc_name(ty) {
                if let Ok(m) = std::fs::metadata(format!("/proc/self/ns/{n}")) {
                    ns.insert(ty.to_string(), json!(m.ino()));
                }
            }
        }
        let mut paths = serde_json::Map::new();
        if let Some(a) = self.config["linux"]["namespaces"].as_array() {
            for e in a {
                if let Some(p) = e["path"].as_str() {
                    if let Ok(m) = std::fs::metadata(p) {
                        paths.insert(p.to_string(), json!(m.ino()));
                    }
                }
            }
        }
        json!({"ns": ns, "nsPaths": paths})
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Run the runtime with `--root <root>`, the global options and `args`.
    pub fn rt(&mut self, args: &[&str]) -> Result<Output> {
        let t = self.remaining();
        if t.is_zero() {
            bail!("case deadline of {:?} exceeded", self.suite.timeout);
        }
        self.rt_timeout(args, t)
    }

    fn rt_timeout(&mut self, args: &[&str], t: Duration) -> Result<Output> {
        let mut full = vec![
            "--root".to_string(),
            self.root.to_string_lossy().into_owned(),
        ];
        full.extend(self.global.iter().cloned());
        full.extend(args.iter().map(|s| s.to_string()));
        self.ncmd += 1;
        let base = self.dir.join(format!("cmd{}", self.ncmd));
        let out = cmd::run(&self.suite.runtime, &full, &self.bundle, &base, t)?;
        if self.suite.verbose {
            eprintln!(
                "[{}] {} {} -> {}",
                self.name,
                self.suite.runtime.display(),
                full.join(" "),
                out.describe()
            );
        }
        Ok(out)
    }

    /// Run and require success.
    pub fn rt_ok(&mut self, args: &[&str]) -> Result<Output> {
        let out = self.rt(args)?;
        cmd::require(
            &format!("{} {}", self.suite.runtime.display(), args.join(" ")),
            out,
        )
    }

    /// Remember `id` for cleanup.
    pub fn track(&mut self, id: &str) {
        if !self.ids.iter().any(|i| i == id) {
            self.ids.push(id.to_string());
        }
    }

    /// `create --bundle <bundle> <id>` after writing the config.
    pub fn create(&mut self, id: &str) -> Result<Output> {
        self.write_config()?;
        self.track(id);
        let b = self.bundle.to_string_lossy().into_owned();
        self.rt_ok(&["create", "--bundle", &b, id])
    }

    /// Like [`Ctx::create`] but returns the output whatever the status.
    pub fn try_create(&mut self, id: &str) -> Result<Output> {
        self.write_config()?;
        self.track(id);
        let b = self.bundle.to_string_lossy().into_owned();
        self.rt(&["create", "--bundle", &b, id])
    }

    /// `state <id>` parsed as JSON.
    pub fn state(&mut self, id: &str) -> Result<Value> {
        let out = self.rt_ok(&["state", id])?;
        serde_json::from_str(&out.stdout)
            .with_context(|| format!("state output is not JSON: {:?}", out.stdout))
    }

    /// `state <id>`'s status.
    pub fn status(&mut self, id: &str) -> Result<String> {
        let s = self.state(id)?;
        s["status"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("state has no status: {s}"))
    }

    /// The container's pid from `state`.
    pub fn pid(&mut self, id: &str) -> Result<i32> {
        let s = self.state(id)?;
        s["pid"]
            .as_i64()
            .filter(|p| *p > 0)
            .map(|p| p as i32)
            .ok_or_else(|| anyhow!("state has no pid: {s}"))
    }

    /// Wait (pidfd) until the container process exits and `state` says
    /// stopped.
    pub fn wait_stopped(&mut self, id: &str) -> Result<()> {
        let s = self.state(id)?;
        if s["status"] == "stopped" {
            return Ok(());
        }
        let pid = s["pid"]
            .as_i64()
            .filter(|p| *p > 0)
            .ok_or_else(|| anyhow!("state of a non-stopped container has no pid: {s}"))?
            as i32;
        if !cmd::wait_pid_exit(pid, self.remaining())? {
            bail!("container {id} (pid {pid}) did not exit before the case deadline");
        }
        let st = self.status(id)?;
        if st != "stopped" {
            bail!("container {id}: process exited but state says {st:?}");
        }
        Ok(())
    }

    /// Run the checker as the container process with `--only <only>` and
    /// return the runtime's output and the parsed TAP.
    pub fn run_checker(&mut self, only: &[&str]) -> Result<(Output, Tap)> {
        self.run_checker_with(only, |_| {})
    }

    /// Like [`Ctx::run_checker`], but `lie` edits the checker's copy of the
    /// config after the runtime's config.json is written: a negative control
    /// that proves a check can fail.
    pub fn run_checker_with(
        &mut self,
        only: &[&str],
        lie: impl FnOnce(&mut Value),
    ) -> Result<(Output, Tap)> {
        let mut args = vec!["/oci-checker".to_string()];
        if !only.is_empty() {
            args.push("--only".into());
            args.push(only.join(","));
        }
        self.config["process"]["args"] = json!(args);
        self.write_config()?;
        let mut told = self.config.clone();
        lie(&mut told);
        if told != self.config {
            std::fs::write(self.rootfs().join("oci-checker.json"), told.to_string())
                .context("write the altered oci-checker.json")?;
        }
        let id = self.id(0);
        self.track(&id);
        let b = self.bundle.to_string_lossy().into_owned();
        let out = self.rt(&["run", "--bundle", &b, &id])?;
        let tap = Tap::parse(&out.stdout);
        Ok((out, tap))
    }

    /// Run the checker and turn its TAP into a case outcome: every selected
    /// check must pass, and at least one must not be skipped.
    pub fn expect_checks(&mut self, only: &[&str]) -> Result<(), Outcome> {
        let (out, tap) = self.run_checker(only)?;
        self.expect_checks_from(out, tap)
    }

    fn expect_checks_from(&mut self, out: Output, tap: Tap) -> Result<(), Outcome> {
        if tap.points.is_empty() || !tap.complete() {
            return Err(Outcome::Fail(format!(
                "checker produced no complete TAP ({} points): {}",
                tap.points.len(),
                out.describe()
            )));
        }
        let fails: Vec<String> = tap
            .failures()
            .map(|p| match &p.point {
                Point::NotOk(r) => format!("{}: {r}", p.desc),
                _ => p.desc.clone(),
            })
            .collect();
        if !fails.is_empty() {
            return Err(Outcome::Fail(fails.join(" | ")));
        }
        if !tap.points.iter().any(|p| p.point == Point::Ok) {
            let why: Vec<String> = tap
                .points
                .iter()
                .map(|p| match &p.point {
                    Point::Skip(r) => format!("{}: {r}", p.desc),
                    _ => p.desc.clone(),
                })
                .collect();
            return Err(Outcome::Fail(format!(
                "every check skipped: {}",
                why.join(" | ")
            )));
        }
        if !out.success() {
            return Err(Outcome::Fail(format!("runtime run: {}", out.describe())));
        }
        Ok(())
    }

    /// Like [`Ctx::expect_checks`] for an optional feature: a runtime that
    /// refuses the config with an error (instead of ignoring the field) is
    /// reported as unsupported, which runtime.md allows ("If the runtime
    /// cannot apply a property ... it MUST generate an error").
    pub fn expect_checks_optional(&mut self, only: &[&str], feature: &str) -> Result<(), Outcome> {
        let (out, tap) = self.run_checker(only)?;
        if tap.points.is_empty() && !out.success() {
            let why: String = out.stderr.trim().chars().take(200).collect();
            return Err(Outcome::Skip(format!("runtime refused {feature}: {why}")));
        }
        self.expect_checks_from(out, tap)
    }

    /// Spawn a helper process this case owns (killed on drop).
    pub fn spawn(&mut self, cmd: &mut std::process::Command) -> Result<&mut Child> {
        let c = cmd.spawn().context("spawn helper process")?;
        self.children.push(c);
        let n = self.children.len() - 1;
        Ok(&mut self.children[n])
    }

    /// Turn `path` (a directory under the case dir) into a shared mount
    /// point on the host, so slave propagation has a master to follow.
    pub fn make_shared_mount(&self, path: &Path) -> Result<()> {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .context("mount path has a NUL byte")?;
        // SAFETY: valid C strings / null pointers as mount(2) documents.
        let rc = unsafe {
            libc::mount(
                c.as_ptr(),
                c.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            bail!(
                "bind mount {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: as above; only changes propagation of our own mount.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                c.as_ptr(),
                std::ptr::null(),
                libc::MS_SHARED,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            bail!(
                "make {} shared: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// Create a FIFO `name` in the output directory (visible at /out/<name>
    /// after [`Ctx::mount_out`]) and open its read end.
    pub fn fifo(&self, name: &str) -> Result<Fifo> {
        let path = self.out().join(name);
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .context("fifo path has a NUL byte")?;
        // SAFETY: valid C string.
        if unsafe { libc::mkfifo(c.as_ptr(), 0o666) } != 0 {
            bail!(
                "mkfifo {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        Ok(Fifo {
            file,
            buf: Vec::new(),
        })
    }

    /// Time left before the case deadline.
    pub fn time_left(&self) -> Duration {
        self.remaining()
    }

    fn cleanup(&mut self) {
        let ids: Vec<String> = self.ids.drain(..).rev().collect();
        for id in ids {
            let _ = self.rt_timeout(&["kill", &id, "KILL"], Duration::from_secs(10));
            let _ = self.rt_timeout(&["delete", "--force", &id], Duration::from_secs(10));
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let prefix = format!("{}/", self.dir.display());
        if let Ok(t) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut mps: Vec<String> = parse_mountinfo(&t)
                .into_iter()
                .map(|m| m.mount_point)
                .filter(|m| m.starts_with(&prefix))
                .collect();
            mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in mps {
                if let Ok(c) = std::ffi::CString::new(m) {
                    // SAFETY: valid C string; detaching a mount under our own dir.
                    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                }
            }
        }
        for cg in &self.cgroups {
            remove_cgroup(cg);
        }
        if !self.suite.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Remove a cgroup path (relative to every mounted hierarchy), deepest first;
/// the `/boxrun` parent itself is left alone.
pub fn remove_cgroup(path: &str) {
    let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut hier: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    hier.push(PathBuf::from("/sys/fs/cgroup"));
    for h in hier {
        let p = h.join(path.trim_start_matches('/'));
        if p.is_dir() {
            let _ = std::fs::remove_dir(&p);
        }
    }
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Read end of a FIFO the container writes lines to.
pub struct Fifo {
    file: std::fs::File,
    buf: Vec<u8>,
}

impl Fifo {
    /// Next line, waiting (poll) up to `timeout`.
    pub fn read_line(&mut self, timeout: Duration) -> Result<String> {
        use std::io::Read;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Ok(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "no line from the container within {timeout:?} (got {:?})",
                    String::from_utf8_lossy(&self.buf)
                );
            }
            let mut p = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&self.file),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc =
                unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
            if rc <= 0 {
                continue;
            }
            let mut chunk = [0u8; 512];
            match self.file.read(&mut chunk) {
                Ok(0) => {
                    // Writer closed (POLLHUP): wait for the next writer without spinning.
                    if p.revents & libc::POLLHUP != 0 {
                        bail!(
                            "container closed the fifo without writing a line (got {:?})",
                            String::from_utf8_lossy(&self.buf)
                        );
                    }
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("read fifo"),
            }
        }
    }
}
