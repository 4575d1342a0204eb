//! Operations on one existing instance beyond its life cycle: live limit
//! changes, exec, logs, signal forwarding and the characteristics `inspect`
//! shows.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::bail;
use crate::error::{Context, Result};
use crate::instance_file::{Instance, Status};
use crate::limits::Limits;
use crate::store::{self, Store};
use crate::{bundle, console, disk, instance_disk, lifecycle, mounts, procs, util};

/// Set every limit `change` gives on instance `key` (others stay); live
/// through the runtime when it runs. Returns the updated instance.
///
/// Every limit, block I/O throttles included, goes through
/// `RUNTIME update -r resources.json`: boxrun applies `blockIO` there. A
/// runtime that ignores `blockIO` in `update` (runc 1.1) keeps the old
/// throttles until the next start, which writes them from `config.json`.
pub fn update_limits(store: &Store, key: &str, change: &Limits) -> Result<Instance> {
    let inst = store.find(key)?;
    let merged = inst.limits.merged(change);
    if inst.status == Status::Running && inst.pid.is_some() {
        let dir = store.instance_dir(&inst.id);
        let mut devs = instance_disk::devices(store, &inst);
        devs.extend(crate::volumes::devices(store, &inst));
        let mut res = merged.to_oci(&devs)?;
        res.set_devices(None);
        let file = dir.join("update.json");
        store::write_quick(&file, serde_json::to_string(&res)?.as_bytes())?;
        let rt = lifecycle::runtime_for(store, &inst);
        let r = rt.update(&inst.id, &["-r".to_string(), file.display().to_string()]);
        let _ = std::fs::remove_file(&file);
        r?;
    }
    store.update_one(&inst.id, |i| {
        i.limits = merged.clone();
        Ok(())
    })?;
    Ok(Instance {
        limits: merged,
        ..inst
    })
}

/// Instance `key`, refused unless it runs.
pub fn running(store: &Store, key: &str) -> Result<Instance> {
    let inst = store.find(key)?;
    if inst.status != Status::Running || inst.pid.is_none() {
        bail!(
            "instance {} is not running: start it with `boxctl start {}`",
            inst.name,
            inst.name
        );
    }
    Ok(inst)
}

/// Run `command` in running instance `key` (stdin kept with `interactive`,
/// a terminal with `tty`); returns its exit code.
pub fn exec(
    store: &Store,
    key: &str,
    interactive: bool,
    tty: bool,
    command: &[String],
) -> Result<i32> {
    let inst = running(store, key)?;
    if inst.paused {
        bail!(
            "instance {} is paused: resume it with `boxctl unpause {}`",
            inst.name,
            inst.name
        );
    }
    let rt = lifecycle::runtime_for(store, &inst);
    let mut c = rt.command();
    c.arg("exec");
    if tty {
        c.arg("-t");
        let dir = store.instance_dir(&inst.id);
        return console::exec_tty(c, &dir, &inst.id, command);
    }
    c.arg(&inst.id).args(command);
    if !interactive {
        c.stdin(Stdio::null());
    }
    let status = c
        .status()
        .with_context(|| format!("cannot run runtime {}", rt.bin.display()))?;
    Ok(status.code().unwrap_or(128 + 9))
}

/// In a foreground `run`, pass SIGINT, SIGTERM and SIGHUP on to the instance
/// (as `docker run` does) instead of dying and leaving it behind.
pub fn forward_signals(store: &Store, inst: &Instance) -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block().context("cannot block signals")?;
    let rt = lifecycle::runtime_for(store, inst);
    let id = inst.id.clone();
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            let name = sig.as_str().trim_start_matches("SIG");
            let _ = rt.kill(&id, name);
        }
    });
    Ok(())
}

fn log_paths(store: &Store, inst: &Instance) -> (PathBuf, PathBuf) {
    let dir = store.instance_dir(&inst.id);
    (dir.join("container.log.1"), dir.join("container.log"))
}

/// Copy an instance's output to `out`: the last `tail` lines (all when
/// None), then with `follow` what it writes until it stops.
pub fn logs(
    store: &Store,
    inst: &Instance,
    follow: bool,
    tail: Option<usize>,
    out: &mut dyn Write,
) -> Result<()> {
    let (old, cur) = log_paths(store, inst);
    let mut data = std::fs::read(&old).unwrap_or_default();
    let cur_bytes = std::fs::read(&cur).unwrap_or_default();
    let mut offset = cur_bytes.len() as u64;
    data.extend_from_slice(&cur_bytes);
    if let Some(n) = tail {
        let mut count = 0;
        let mut start = 0;
        let end = if data.ends_with(b"\n") {
            data.len() - 1
        } else {
            data.len()
        };
        for (i, b) in data[..end].iter().enumerate().rev() {
            if *b == b'\n' {
                count += 1;
                if count == n {
                    start = i + 1;
                    break;
                }
            }
        }
        if n == 0 {
            start = data.len();
        }
        data.drain(..start);
    }
    out.write_all(&data)?;
    out.flush()?;
    if !follow {
        return Ok(());
    }
    loop {
        let live = store
            .find(&inst.id)
            .map(|i| {
                i.is_active()
                    && (i.monitor_pid.is_some_and(|p| procs::is_monitor(p, &i.id))
                        || i.owner_pid.is_some())
            })
            .unwrap_or(false);
        if let Ok(mut f) = std::fs::File::open(&cur) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < offset {
                offset = 0; // rotated
            }
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            offset += buf.len() as u64;
            out.write_all(&buf)?;
            out.flush()?;
        }
        if !live {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every characteristic of instance `key` and where its pieces are, as
/// `inspect` shows them.
pub fn inspect(store: &Store, key: &str) -> Result<Value> {
    let inst = store.find(key)?;
    let dir = store.instance_dir(&inst.id);
    let mut v = serde_json::to_value(&inst)?;
    v["id"] = json!(inst.id);
    v["state"] = json!(lifecycle::status_text(&inst, util::now_secs()));
    v["directory"] = json!(dir);
    let disk = instance_disk::disk_file(store, &inst);
    v["disk"] = json!(disk);
    v["disk_size"] = json!(std::fs::metadata(&disk).map(|m| m.len()).unwrap_or(0));
    v["disk_allocated"] = json!(disk::allocated_bytes(&disk));
    v["bundle"] = json!(dir);
    v["log"] = json!(dir.join("container.log"));
    v["cgroups_path"] = json!(bundle::cgroups_path(&inst.id));
    v["mounted"] = json!(mounts::is_mount_point(&dir.join("rootfs")));
    v["mounts"] = crate::volumes::describe(store, &inst);
    v["userns"] = match crate::userns::IdRange::of(&inst) {
        Some(r) => {
            json!({"mode": "private", "host_uid": r.base, "host_gid": r.base, "size": r.size,
            "uid_map": r.map_line()})
        }
        None => json!({"mode": "host"}),
    };
    if !matches!(inst.security.seccomp.as_str(), "" | "unconfined") {
        v["seccomp_profile"] = json!(dir.join(crate::security::SECCOMP_FILE));
    }
    if inst.health.enabled() {
        v["health"] = json!({
            "status": inst.health.status,
            "failing_streak": inst.health.failures,
            "interval": crate::duration::format(inst.health.interval()),
            "timeout": crate::duration::format(inst.health.timeout()),
            "start_period": crate::duration::format(inst.health.start_period()),
            "retries": inst.health.retries(),
            "last_check": crate::healthcheck::last_check(&dir),
        });
    }
    Ok(v)
}
