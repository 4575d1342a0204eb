//! Instance life cycle: create, start, stop, remove, and reconciling the
//! instance file with reality.

use std::time::Duration;

use crate::bail;
use crate::error::{Context, Result};

pub use crate::create_spec::CreateSpec;
use crate::events::{self, Action};
use crate::healthcheck::HealthStatus;
use crate::image;
use crate::instance_file::{Instance, Status};
use crate::runtime_cli::Runtime;
use crate::store::{self, Store};
pub use crate::teardown::{forget, purge, runtime_for, teardown};
use crate::{monitor, mounts, networking, procs, util};

/// Removes a half-made instance (directory and record) unless disarmed.
struct CreateGuard<'a> {
    store: &'a Store,
    id: Option<String>,
    /// Volumes this create made (removed with the half-made instance).
    volumes: Vec<String>,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let _ = std::fs::remove_dir_all(self.store.instance_dir(&id));
            let _ = self.store.remove_records(&[&id]);
            crate::volumes::discard(self.store, &self.volumes);
        }
    }
}

/// Create an instance: record it, copy the image's disk into its directory.
pub fn create(store: &Store, spec: &CreateSpec) -> Result<Instance> {
    let img = image::get(store, &spec.image)?;
    if let Some(n) = &spec.name {
        util::validate_name("instance", n)?;
    }
    if let Some(h) = &spec.hostname {
        util::validate_name("hostname", h)?;
    }
    networking::validate(store, spec)?;
    let cfg = &img.meta.config;
    let entrypoint = spec
        .entrypoint
        .clone()
        .unwrap_or_else(|| cfg.entrypoint.clone());
    let cmd = if spec.command.is_empty() && spec.entrypoint.is_none() {
        cfg.cmd.clone()
    } else {
        spec.command.clone()
    };
    let mut command = entrypoint;
    command.extend(cmd);
    if command.is_empty() {
        command = vec!["/bin/sh".into()];
    }
    let mut env = cfg.env.clone();
    for e in &spec.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    if !spec.host_userns {
        crate::userns::check_reachable(&store.root().join("instances"))?;
    }
    networking::ensure_default(store, &spec.networks)?;
    let id = unique_id(store)?;
    // `-v NAME:/path` of a missing volume makes it, as docker does.
    let made_volumes = crate::volumes::ensure(store, &spec.storage)?;
    let name = spec
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", spec.image, &id[..6]));
    let inst = Instance {
        id: id.clone(),
        name: name.clone(),
        image: spec.image.clone(),
        created: util::format_time(util::now_secs()),
        status: Status::Creating,
        started_at: None,
        finished_at: None,
        exit_code: None,
        pid: None,
        monitor_pid: None,
        owner_pid: Some(std::process::id() as i32),
        stop_requested: false,
        restart_count: 0,
        restart: spec.restart,
        runtime: spec.runtime.display().to_string(),
        command,
        env,
        workdir: spec.workdir.clone().unwrap_or_else(|| {
            if cfg.workdir.is_empty() {
                "/".into()
            } else {
                cfg.workdir.clone()
            }
        }),
        user: spec.user.clone().unwrap_or_else(|| cfg.user.clone()),
        hostname: spec.hostname.clone().unwrap_or_default(),
        limits: spec.limits.clone(),
        net_mode: spec.net_mode.clone(),
        networks: spec.networks.clone(),
        publish: spec.publish.clone(),
        cow: spec.cow,
        storage: spec.storage.clone(),
        health: spec.health.clone(),
        session: spec.session,
        security: spec.security.clone(),
        labels: spec.labels.clone(),
        paused: false,
        userns_base: None,
        userns_size: None,
    };
    let pushed = store.update(|list| {
        if let Some(other) = list.iter().find(|i| i.name == name) {
            bail!(
                "the name {name} is already used by instance {}: choose another --name or remove it with `boxctl rm {name}`",
                other.id
            );
        }
        let mut new = inst.clone();
        new.networks = networking::allocate(store, list, &inst.networks)?;
        if !spec.host_userns {
            let range = crate::userns::allocate(list)?;
            new.userns_base = Some(range.base);
            new.userns_size = Some(range.size);
        }
        list.push(new);
        Ok(())
    });
    if let Err(e) = pushed {
        crate::volumes::discard(store, &made_volumes);
        return Err(e);
    }
    let mut guard = CreateGuard {
        store,
        id: Some(id.clone()),
        volumes: made_volumes,
    };
    let dir = store.instance_dir(&id);
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::create_dir(dir.join("rootfs"))?;
    if let Some(profile) = &spec.seccomp_profile {
        store::write_quick(&dir.join(crate::security::SECCOMP_FILE), profile.as_bytes())?;
    }
    crate::instance_disk::prepare(store, &dir, &img, spec.cow)
        .with_context(|| format!("cannot make the disk of {name} from image {}", spec.image))?;
    let inst = store.update_one(&id, |i| {
        i.status = Status::Created;
        i.owner_pid = None;
        Ok(i.clone())
    })?;
    guard.id = None;
    events::record(store, &inst, Action::Create, None, None);
    Ok(inst)
}

fn unique_id(store: &Store) -> Result<String> {
    for _ in 0..16 {
        let id = util::random_id();
        if !store.has_id(&id)? && !store.instance_dir(&id).exists() {
            return Ok(id);
        }
    }
    bail!("cannot find a free instance id")
}

/// Start a created or stopped instance under a new monitor.
pub fn start(store: &Store, key: &str) -> Result<Instance> {
    start_with(store, key, None)
}

/// [`start`], and with `attach` a client attaches to the instance's stdio
/// before its process starts (see [`monitor::spawn`]).
pub fn start_with(
    store: &Store,
    key: &str,
    attach: Option<&mut dyn FnMut() -> Result<()>>,
) -> Result<Instance> {
    let me = std::process::id() as i32;
    // An instance recorded running whose monitor died (kill -9, power loss) is
    // reconciled first, as `ps` would, so it can be started again.
    let cur = store.find(key)?;
    if matches!(cur.status, Status::Running | Status::Restarting)
        && !cur.owner_pid.is_some_and(procs::alive)
        && !cur
            .monitor_pid
            .is_some_and(|p| procs::is_monitor(p, &cur.id))
    {
        refresh(store)?;
    }
    let inst = store.update_one(&cur.id, |i| {
        match i.status {
            Status::Created | Status::Exited => {}
            Status::Running | Status::Restarting => bail!("instance {} is already running", i.name),
            Status::Creating => bail!("instance {} is still being created", i.name),
            Status::Removing => bail!("instance {} is being removed", i.name),
        }
        i.status = Status::Running;
        i.stop_requested = false;
        i.restart_count = 0;
        i.paused = false;
        i.owner_pid = Some(me);
        i.pid = None;
        Ok(i.clone())
    })?;
    match monitor::spawn(store, &inst, attach) {
        // The monitor cleared owner_pid when it recorded the instance running.
        Ok(()) => store.find(&inst.id),
        Err(e) => {
            let _ = store.update_one(&inst.id, |i| {
                i.owner_pid = None;
                if i.status == Status::Running && i.pid.is_none() {
                    i.status = Status::Exited;
                    i.monitor_pid = None;
                }
                Ok(())
            });
            Err(e)
        }
    }
}

/// Whether the runtime reports the container's process as alive.
fn container_alive(rt: &Runtime, inst: &Instance) -> bool {
    match rt.state(&inst.id) {
        Ok(Some(s)) => matches!(s.status.as_str(), "running" | "created" | "paused") && s.pid > 0,
        _ => false,
    }
}

/// Stop an instance: SIGTERM, then SIGKILL after `timeout`; the disk is kept.
pub fn stop(store: &Store, key: &str, timeout: Duration) -> Result<Instance> {
    let (was_active, inst) = stop_process(store, key, timeout)?;
    if was_active {
        events::record(store, &inst, Action::Stop, None, None);
    }
    Ok(inst)
}

/// [`stop`] without its event; also says whether the instance was running.
fn stop_process(store: &Store, key: &str, timeout: Duration) -> Result<(bool, Instance)> {
    let id = store.find(key)?.id;
    let inst = store.update_one(&id, |i| {
        if i.is_active() {
            i.stop_requested = true;
        }
        Ok(i.clone())
    })?;
    if !inst.is_active() {
        return Ok((false, inst));
    }
    let mut inst = inst;
    if inst.pid.is_none() {
        // A start is in progress: let it finish (its monitor sees stop_requested).
        if let Some(owner) = inst.owner_pid.filter(|p| procs::alive(*p)) {
            procs::wait_exit(owner, Duration::from_secs(30));
            inst = store.find(&inst.id)?;
        }
    }
    // A frozen process would take the signals only once thawed.
    thaw_for_stop(store, &inst);
    let rt = runtime_for(store, &inst);
    if let Some(pid) = inst.pid {
        if container_alive(&rt, &inst) {
            let sig = if timeout.is_zero() { "KILL" } else { "TERM" };
            let _ = rt.kill(&inst.id, sig);
            if !procs::wait_exit(pid, timeout) {
                let _ = rt.kill(&inst.id, "KILL");
                if !procs::wait_exit(pid, Duration::from_secs(10)) {
                    bail!("instance {} did not die after SIGKILL", inst.name);
                }
            }
        }
    }
    let monitor = inst.monitor_pid.filter(|p| procs::is_monitor(*p, &inst.id));
    if let Some(m) = monitor {
        if !procs::wait_exit(m, Duration::from_secs(30)) {
            bail!(
                "the monitor of {} (pid {m}) did not finish: try again",
                inst.name
            );
        }
        return match store.find(&inst.id) {
            // `run --rm`: the monitor removed it.
            Err(_) if inst.session.auto_remove => Ok((true, inst)),
            r => r.map(|i| (true, i)),
        };
    }
    // No monitor (killed): clean up ourselves.
    if inst.session.auto_remove {
        purge(store, &inst)?;
        return Ok((true, inst));
    }
    teardown(store, &inst)?;
    let inst = store.update_one(&inst.id, |i| {
        if i.is_active() {
            i.status = Status::Exited;
            i.finished_at = Some(util::format_time(util::now_secs()));
            i.pid = None;
            i.monitor_pid = None;
        }
        Ok(i.clone())
    })?;
    events::record(store, &inst, Action::Die, None, None);
    Ok((true, inst))
}

/// Thaw `inst` if `pause` froze it (before signals that must reach it);
/// errors are left to the kill that follows.
fn thaw_for_stop(store: &Store, inst: &Instance) {
    if !inst.paused {
        return;
    }
    let _ = runtime_for(store, inst).resume(&inst.id);
    let _ = store.update_one(&inst.id, |i| {
        i.paused = false;
        Ok(())
    });
}

/// Remove an instance and everything it owns. A running one needs `force`.
pub fn remove(store: &Store, key: &str, force: bool) -> Result<()> {
    match remove_files(store, key, force)? {
        Some(inst) => forget(store, std::slice::from_ref(&inst)),
        None => Ok(()),
    }
}

/// [`remove`] but the record, which the caller drops with [`forget`] (one
/// rewrite for many removals); `None` when stopping it removed it (`run --rm`).
pub fn remove_files(store: &Store, key: &str, force: bool) -> Result<Option<Instance>> {
    let inst = store.find(key)?;
    if inst.is_active() {
        if !force {
            bail!(
                "instance {} is running: stop it first or use `boxctl rm -f {}`",
                inst.name,
                inst.name
            );
        }
        stop(store, &inst.id, Duration::ZERO)?;
        if inst.session.auto_remove && store.find(&inst.id).is_err() {
            return Ok(None); // `run --rm`: stopping removed it
        }
    }
    if inst.status == Status::Creating && inst.owner_pid.is_some_and(procs::alive) {
        bail!(
            "instance {} is being created by pid {}: wait for it",
            inst.name,
            inst.owner_pid.unwrap_or(0)
        );
    }
    store.update_one(&inst.id, |i| {
        i.status = Status::Removing;
        // While this process lives, `ps` leaves the removal to it.
        i.owner_pid = Some(std::process::id() as i32);
        Ok(())
    })?;
    crate::teardown::purge_files(store, &inst)?;
    Ok(Some(inst))
}

/// Compare the instance file with reality (monitor pids, runtime state),
/// fix it, and release what dead instances still hold. Returns the fixed list.
pub fn refresh(store: &Store) -> Result<Vec<Instance>> {
    // Most calls (every `ps`) find nothing to fix: checked on a lock-free
    // snapshot, they take no lock and write nothing.
    let snapshot = store.load()?;
    if !needs_refresh(store, &snapshot) {
        return Ok(snapshot);
    }
    let mut to_teardown = Vec::new();
    let mut to_delete = Vec::new();
    let list = store.update(|list| {
        let now = util::format_time(util::now_secs());
        for i in list.iter_mut() {
            let owner_busy = i.owner_pid.is_some_and(procs::alive);
            match i.status {
                Status::Creating if !owner_busy => to_delete.push(i.id.clone()),
                // `run --rm` whose monitor died before removing it.
                Status::Exited if i.session.auto_remove && !owner_busy => {
                    to_delete.push(i.id.clone())
                }
                Status::Running | Status::Restarting if !owner_busy => {
                    let monitor_ok = i.monitor_pid.is_some_and(|p| procs::is_monitor(p, &i.id));
                    if monitor_ok {
                        continue;
                    }
                    i.monitor_pid = None;
                    let rt = runtime_for(store, i);
                    if container_alive(&rt, i) {
                        continue; // running unmonitored: still running
                    }
                    i.status = Status::Exited;
                    i.pid = None;
                    i.owner_pid = None;
                    i.finished_at.get_or_insert_with(|| now.clone());
                    if i.session.auto_remove {
                        to_delete.push(i.id.clone());
                        continue;
                    }
                    to_teardown.push(i.clone());
                }
                // An interrupted rm: the instance is back (exited) while its
                // directory is there, so `rm` can be run again; else it is gone.
                Status::Removing if !owner_busy => {
                    if store.instance_dir(&i.id).exists() && !i.session.auto_remove {
                        i.status = Status::Exited;
                        i.owner_pid = None;
                        i.pid = None;
                        i.monitor_pid = None;
                        to_teardown.push(i.clone());
                    } else {
                        to_delete.push(i.id.clone());
                    }
                }
                _ => {}
            }
        }
        // Half-made or half-removed instances: release and delete their
        // directory first, then the record (a crash in between is caught
        // again next time), all under the lock.
        for inst in list.iter().filter(|i| to_delete.contains(&i.id)) {
            let _ = teardown(store, inst);
            let _ = std::fs::remove_dir_all(store.instance_dir(&inst.id));
        }
        list.retain(|i| !to_delete.contains(&i.id));
        // Directories no record names (records are written before directories
        // are made and removed after they are deleted, so these are leftovers).
        if let Ok(rd) = std::fs::read_dir(store.root().join("instances")) {
            let known: std::collections::HashSet<&str> =
                list.iter().map(|i| i.id.as_str()).collect();
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if known.contains(name.as_str()) {
                    continue;
                }
                for m in ["rootfs", "upper", "lower"] {
                    let _ = mounts::unmount(&e.path().join(m));
                }
                // Idmapped views of volumes and bind sources (see volumes::attach).
                for m in mounts::mounts_under(&e.path().join("idmap")) {
                    let _ = mounts::unmount(&m);
                }
                let _ = boxctl_network::netns::delete(&e.path().join("netns"));
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(list.clone())
    })?;
    for inst in &to_teardown {
        let _ = teardown(store, inst);
    }
    Ok(list)
}

/// Whether [`refresh`] would change anything in `list` or below ROOT/instances
/// (the same conditions, without fixing anything).
fn needs_refresh(store: &Store, list: &[Instance]) -> bool {
    let stale = list.iter().any(|i| {
        let owner_busy = i.owner_pid.is_some_and(procs::alive);
        match i.status {
            Status::Creating | Status::Removing => !owner_busy,
            Status::Exited => i.session.auto_remove && !owner_busy,
            Status::Running | Status::Restarting => {
                !owner_busy && !i.monitor_pid.is_some_and(|p| procs::is_monitor(p, &i.id))
            }
            Status::Created => false,
        }
    });
    if stale {
        return true;
    }
    let Ok(rd) = std::fs::read_dir(store.root().join("instances")) else {
        return false;
    };
    let known: std::collections::HashSet<&str> = list.iter().map(|i| i.id.as_str()).collect();
    rd.flatten()
        .any(|e| !known.contains(e.file_name().to_string_lossy().as_ref()))
}

/// Uptime column as docker prints it.
pub fn status_text(inst: &Instance, now: i64) -> String {
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(util::parse_time)
            .map(|s| util::human_duration(now - s))
            .unwrap_or_else(|| "?".into())
    };
    match inst.status {
        Status::Running if inst.monitor_pid.is_none() && inst.pid.is_some() => {
            format!("Up {} (unmonitored)", since(&inst.started_at))
        }
        Status::Running if inst.paused => format!("Up {} (Paused)", since(&inst.started_at)),
        Status::Running => match inst.health.status {
            Some(HealthStatus::Starting) => {
                format!("Up {} (health: starting)", since(&inst.started_at))
            }
            Some(h) => format!("Up {} ({h})", since(&inst.started_at)),
            None => format!("Up {}", since(&inst.started_at)),
        },
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            inst.exit_code.unwrap_or(-1),
            since(&inst.finished_at)
        ),
        Status::Exited => match inst.exit_code {
            Some(c) => format!("Exited ({c}) {} ago", since(&inst.finished_at)),
            None => format!("Exited {} ago", since(&inst.finished_at)),
        },
        Status::Created => "Created".into(),
        Status::Creating => "Creating".into(),
        Status::Removing => "Removing".into(),
    }
}
