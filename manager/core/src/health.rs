//! The health checker of one instance (`boxctl __health ID`), a child of
//! its monitor started with the container and killed when it dies: every
//! interval it runs the check through the runtime's `exec` (`/bin/sh -c
//! CMD`), records `starting`/`healthy`/`unhealthy` in the instance file and
//! a `health_status` event on each change, refreshes the farm proxy in
//! front of the instance, and with `--restart on-unhealthy` kills an
//! unhealthy instance so that its monitor restarts it.
//!
//! It is a process of its own rather than a thread of the monitor because
//! the monitor, a child subreaper, reaps every child in its wait loop and
//! would take the exit status of the checks' `exec`s.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::error::Result;
use crate::events::{self, Action};
use crate::healthcheck::{self, HealthStatus};
use crate::instance_file::Status;
use crate::runtime_cli::Runtime;
use crate::store::{self, Store};
use crate::teardown::runtime_for;
use crate::{farm, procs, util};

/// Most output of one check kept for `inspect`.
const OUTPUT_MAX: usize = 4096;

/// The result of one check.
struct Probe {
    ok: bool,
    exit_code: i32,
    output: String,
}

/// Run the check once, killing it after `timeout`.
fn probe(rt: &Runtime, id: &str, cmd: &str, timeout: Duration) -> Probe {
    let failed = |output: String| Probe {
        ok: false,
        exit_code: -1,
        output,
    };
    let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => return failed(format!("cannot create a pipe: {e}")),
    };
    let w = std::fs::File::from(w);
    let (Ok(w2), Ok(w3)) = (w.try_clone(), w.try_clone()) else {
        return failed("cannot duplicate a pipe".into());
    };
    drop(w);
    let spawned = rt
        .command()
        .arg("exec")
        .arg(id)
        .args(["/bin/sh", "-c", cmd])
        .stdin(Stdio::null())
        .stdout(w2)
        .stderr(w3)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot run runtime {}: {e}", rt.bin.display())),
    };
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = std::fs::File::from(r)
            .take(OUTPUT_MAX as u64 * 4)
            .read_to_end(&mut out);
        out
    });
    let done = procs::wait_exit(child.id() as i32, timeout);
    if !done {
        let _ = child.kill();
    }
    let status = child.wait();
    // A process the check left behind could hold the pipe: do not wait for it.
    let output = if done {
        let mut o = reader.join().unwrap_or_default();
        o.truncate(OUTPUT_MAX);
        String::from_utf8_lossy(&o).trim_end().to_string()
    } else {
        String::new()
    };
    match (done, status) {
        (false, _) => failed(format!(
            "the check did not finish in {}",
            crate::duration::format(timeout)
        )),
        (true, Ok(st)) => Probe {
            ok: st.success(),
            exit_code: st.code().unwrap_or(128 + 9),
            output,
        },
        (true, Err(e)) => failed(format!("cannot wait for the check: {e}")),
    }
}

/// The checker's loop (`boxctl __health ID`); returns when the instance no
/// longer runs the process it was started for.
pub fn main(store: &Store, id: &str) -> Result<()> {
    let inst = store.find(id)?;
    let Some(cmd) = inst.health.cmd.clone() else {
        return Ok(());
    };
    let pid = inst.pid;
    let rt = runtime_for(store, &inst);
    let started = Instant::now();
    let last_file = store.instance_dir(id).join(healthcheck::LAST_CHECK_FILE);
    loop {
        std::thread::sleep(inst.health.interval());
        let cur = store.find(id)?;
        if cur.status != Status::Running || cur.pid != pid || cur.stop_requested {
            return Ok(());
        }
        // As docker does: no checks of a paused instance (its exec would fail).
        if cur.paused {
            continue;
        }
        let p = probe(&rt, id, &cmd, inst.health.timeout());
        let last = json!({
            "time": util::format_time(util::now_secs()),
            "exit_code": p.exit_code,
            "output": p.output,
        });
        let _ = store::write_quick(&last_file, last.to_string().as_bytes());
        let grace = started.elapsed() < inst.health.start_period();
        let (changed, now) = store.update_one(id, |i| {
            if i.status != Status::Running || i.pid != pid || i.stop_requested {
                return Ok((false, None));
            }
            if i.paused {
                return Ok((false, None));
            }
            let before = i.health.status;
            if p.ok {
                i.health.failures = 0;
                i.health.status = Some(HealthStatus::Healthy);
            } else if !grace {
                i.health.failures += 1;
                if i.health.failures >= i.health.retries() {
                    i.health.status = Some(HealthStatus::Unhealthy);
                }
            }
            Ok((i.health.status != before, i.health.status))
        })?;
        if !changed {
            continue;
        }
        let cur = store.find(id)?;
        events::record(store, &cur, Action::HealthStatus, None, now);
        if let Err(e) = farm::refresh_proxy_of(store, &cur) {
            eprintln!(
                "boxctl health: cannot update the proxy in front of {}: {}",
                cur.name,
                e.chain()
            );
        }
        if now == Some(HealthStatus::Unhealthy) && cur.restart.acts_on_unhealthy() {
            eprintln!(
                "boxctl health: {} is unhealthy: killing it for its restart policy {}",
                cur.name, cur.restart
            );
            rt.kill(id, "KILL")?;
            return Ok(());
        }
    }
}
