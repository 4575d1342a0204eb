//! Driving an OCI runtime (boxrun, runc, crun) through its command line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::bail;
use crate::error::{Context, Result};

/// An OCI runtime binary with its state root.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Binary.
    pub bin: PathBuf,
    /// `--root`.
    pub root: PathBuf,
    /// `--log` file (runtime errors), if any.
    pub log: Option<PathBuf>,
}

/// Find the runtime: an explicit path/name, else `boxrun` next to our own
/// executable, else `boxrun` on PATH.
pub fn locate(explicit: Option<&str>) -> Result<PathBuf> {
    if let Some(e) = explicit {
        let p = Path::new(e);
        if p.components().count() > 1 {
            if !p.exists() {
                bail!("runtime {e} does not exist");
            }
            return Ok(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()));
        }
        return search_path(e).with_context(|| format!("runtime {e} not found on PATH"));
    }
    if let Ok(me) = std::env::current_exe() {
        if let Some(dir) = me.parent() {
            let cand = dir.join("boxrun");
            if cand.is_file() {
                return Ok(cand);
            }
        }
    }
    search_path("boxrun").context(
        "no OCI runtime found: build boxrun next to boxctl, put it on PATH, or pass --runtime /usr/sbin/runc",
    )
}

fn search_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What `state` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// `creating`, `created`, `running`, `paused`, `stopped`.
    pub status: String,
    /// Init pid (0 when stopped).
    pub pid: i32,
}

impl Runtime {
    /// A command with the global flags set.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root);
        if let Some(l) = &self.log {
            c.arg("--log").arg(l);
        }
        c
    }

    fn run(&self, args: &[&str], what: &str) -> Result<String> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run runtime {}", self.bin.display()))?;
        if !out.status.success() {
            bail!("runtime {what} failed: {}", last_line(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `start ID`.
    pub fn start(&self, id: &str) -> Result<()> {
        self.run(&["start", id], "start").map(|_| ())
    }

    /// `state ID` (None when the runtime does not know the container).
    pub fn state(&self, id: &str) -> Result<Option<State>> {
        let out = self
            .command()
            .args(["state", id])
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run runtime {}", self.bin.display()))?;
        if !out.status.success() {
            return Ok(None);
        }
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("runtime state printed invalid JSON")?;
        Ok(Some(State {
            status: v["status"].as_str().unwrap_or("unknown").to_string(),
            pid: v["pid"].as_i64().unwrap_or(0) as i32,
        }))
    }

    /// `kill ID SIGNAL` (errors ignored by callers where the container may be gone).
    pub fn kill(&self, id: &str, signal: &str) -> Result<()> {
        self.run(&["kill", id, signal], "kill").map(|_| ())
    }

    /// `delete --force ID`; a container the runtime does not know is fine.
    pub fn delete_force(&self, id: &str) -> Result<()> {
        match self.run(&["delete", "--force", id], "delete") {
            Ok(_) => Ok(()),
            Err(e) => match self.state(id) {
                Ok(None) => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// `delete --force ID` only if the runtime knows the container (one
    /// `state` call when it does not, the usual case before a start).
    pub fn delete_if_known(&self, id: &str) -> Result<()> {
        if self.state(id)?.is_none() {
            return Ok(());
        }
        self.delete_force(id)
    }

    /// `pause ID`: freeze every process of the container (its cgroup freezer).
    pub fn pause(&self, id: &str) -> Result<()> {
        self.run(&["pause", id], "pause").map(|_| ())
    }

    /// `resume ID`: thaw a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        self.run(&["resume", id], "resume").map(|_| ())
    }

    /// `ps ID PS_ARGS...`: the runtime's `ps` table of the container's processes.
    pub fn ps(&self, id: &str, ps_args: &[String]) -> Result<String> {
        let mut args: Vec<&str> = vec!["ps", id];
        args.extend(ps_args.iter().map(String::as_str));
        self.run(&args, "ps")
    }

    /// `update` with the given flags.
    pub fn update(&self, id: &str, flags: &[String]) -> Result<()> {
        let mut args: Vec<&str> = vec!["update"];
        args.extend(flags.iter().map(String::as_str));
        args.push(id);
        self.run(&args, "update").map(|_| ())
    }
}

/// The last non-empty line of a runtime's error output, cleaned of runc's `level=error msg=` noise.
pub fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no error message")
        .trim();
    match line.find("msg=") {
        Some(i) => line[i + 4..].trim_matches('"').to_string(),
        None => line.to_string(),
    }
}
