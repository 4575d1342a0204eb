//! Talking to CRIU for `checkpoint` and `restore`: finding the binary, `criu check`
//! before anything is touched, and running `criu dump`/`pre-dump`/`restore` through its
//! command line (no RPC: boxrun needs none of its callbacks, and the binary stays free
//! of a protobuf dependency), with criu's log in the work directory.
//!
//! Not supported (refused with a message): `--lazy-pages` (needs criu's lazy-pages
//! daemon and page server driven through the RPC's status fd) and restoring a
//! terminal (criu hands the pty master over only through an RPC callback).

use crate::args::CriuArgs;
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A criu binary that `criu check` accepted on this kernel.
pub struct Criu {
    bin: PathBuf,
    version: String,
}

impl Criu {
    /// Find criu (`--criu PATH`, else `criu` on PATH) and run `criu check`; either
    /// failing is one line naming the cause.
    pub fn ready(path: Option<&str>) -> Result<Criu> {
        let bin = PathBuf::from(path.unwrap_or("criu"));
        let out = Command::new(&bin)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                Error::Other(format!(
                    "criu not found ({}: {e}): install criu (apt-get install criu) or pass --criu PATH",
                    bin.display()
                ))
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text
            .lines()
            .find_map(|l| l.strip_prefix("Version:"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| "(unknown version)".into());
        let check = Command::new(&bin)
            .arg("check")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Other(format!("run {} check: {e}", bin.display())))?;
        if !check.status.success() {
            let mut all = String::from_utf8_lossy(&check.stderr).into_owned();
            all.push_str(&String::from_utf8_lossy(&check.stdout));
            return Err(Error::Other(check_failure(
                &version,
                &kernel_release(),
                &all,
            )));
        }
        Ok(Criu { bin, version })
    }

    /// Run `criu ACTION ARGS` with its log at `WORK/ACTION.log`. With `join`, criu
    /// starts in the container's cgroups (restored tasks are born there).
    pub fn run(
        &self,
        action: &str,
        args: &[OsString],
        work: &Path,
        join: Option<&boxrun_cgroups::Cgroup>,
    ) -> Result<()> {
        let log = work.join(format!("{action}.log"));
        let mut cmd = Command::new(&self.bin);
        cmd.arg(action)
            .args(args)
            .arg("--work-dir")
            .arg(work)
            .arg("-o")
            .arg(&log)
            .arg("-v4")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let procs = match join {
            Some(cg) => procs_files(cg)?,
            None => Vec::new(),
        };
        let fds: Vec<i32> = procs.iter().map(AsRawFd::as_raw_fd).collect();
        // SAFETY: the hook only calls write(2) on descriptors opened before the fork.
        unsafe {
            cmd.pre_exec(move || {
                for fd in &fds {
                    // "0": the writing process itself joins this hierarchy's cgroup.
                    if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let out = cmd
            .output()
            .map_err(|e| Error::Other(format!("run {} {action}: {e}", self.bin.display())))?;
        if out.status.success() {
            return Ok(());
        }
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        let reason = first_error(&logged)
            .or_else(|| first_error(&String::from_utf8_lossy(&out.stderr)))
            .unwrap_or_else(|| format!("exit status {}", out.status));
        Err(Error::Other(format!(
            "criu {} {action} failed: {reason} (log: {})",
            self.version,
            log.display()
        )))
    }
}

/// The one-line message for a failed `criu check`: criu's first error that is not a
/// helper program's exit status (criu tolerates those), and the detection step that
/// failed.
fn check_failure(version: &str, kernel: &str, output: &str) -> String {
    let errors: Vec<(String, String)> = output.lines().filter_map(error_of).collect();
    let first = errors.iter().find(|(at, _)| !at.starts_with("criu/util.c"));
    let step = errors
        .iter()
        .find(|(_, t)| t.ends_with("failed when initializing kerndat."))
        .map(|(_, t)| t.trim_end_matches('.'));
    let reason = match (first, step) {
        (Some((_, f)), Some(s)) if f != s => format!("{f} ({s})"),
        (Some((_, f)), _) => f.clone(),
        (None, Some(s)) => s.to_owned(),
        (None, None) => "criu check failed".into(),
    };
    let hint = if reason.contains("vDSO") {
        " (criu before 4.1 does not know the split vvar/vvar_vclock vDSO layout of Linux 6.13 and later: use criu 4.1 or later)"
    } else {
        ""
    };
    format!("criu {version} cannot run on kernel {kernel}: {reason}{hint}")
}

/// The first error of criu's output, as its text.
fn first_error(output: &str) -> Option<String> {
    output.lines().find_map(error_of).map(|(_, t)| t)
}

/// `Error (FILE:LINE): TEXT` as (`FILE:LINE`, `TEXT`); `Error: TEXT` as ("", `TEXT`).
fn error_of(line: &str) -> Option<(String, String)> {
    let rest = &line[line.find("Error")? + "Error".len()..];
    let (at, text) = match rest.trim_start().strip_prefix('(') {
        Some(r) => r.split_once("):").unwrap_or(("", r)),
        None => ("", rest.trim_start_matches(':')),
    };
    Some((at.to_owned(), text.trim().to_owned()))
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "(unknown)".into())
}

/// The `cgroup.procs` file of each of the container's hierarchies, opened for writing.
fn procs_files(cg: &boxrun_cgroups::Cgroup) -> Result<Vec<OwnedFd>> {
    cg.hierarchies
        .iter()
        .map(|h| {
            let p = h.path.join("cgroup.procs");
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&p)
                .map(OwnedFd::from)
                .map_err(|e| Error::io(p, e))
        })
        .collect()
}

/// The image and work directories of a checkpoint or restore (runc's defaults:
/// `./checkpoint`, and the image directory for the work files), made if missing.
pub fn dirs(a: &CriuArgs) -> Result<(PathBuf, PathBuf)> {
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    let images = cwd.join(a.image_path.as_deref().unwrap_or(Path::new("checkpoint")));
    let work = a
        .work_path
        .as_ref()
        .map_or_else(|| images.clone(), |w| cwd.join(w));
    for d in [&images, &work] {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    Ok((images, work))
}

/// The options `dump` and `restore` share: `--images-dir`, the allow flags and the
/// cgroup mode. Refuses what boxrun does not support.
pub fn common_args(a: &CriuArgs, images: &Path) -> Result<Vec<OsString>> {
    if a.lazy_pages {
        return Err(Error::Other(
            "--lazy-pages is not supported by boxrun: checkpoint without it".into(),
        ));
    }
    let mode = a.manage_cgroups_mode.as_deref().unwrap_or("soft");
    if !["soft", "full", "strict", "ignore"].contains(&mode) {
        return Err(Error::Other(format!(
            "--manage-cgroups-mode {mode:?}: use soft, full, strict or ignore"
        )));
    }
    let mut v: Vec<OsString> = vec!["--images-dir".into(), images.into()];
    for (on, flag) in [
        (a.tcp_established, "--tcp-established"),
        (a.ext_unix_sk, "--ext-unix-sk"),
        (a.shell_job, "--shell-job"),
        (a.file_locks, "--file-locks"),
        (a.auto_dedup, "--auto-dedup"),
    ] {
        if on {
            v.push(flag.into());
        }
    }
    v.push(format!("--manage-cgroups={mode}").into());
    Ok(v)
}

/// `--external mnt[KEY]:VALUE`: at dump KEY is the mount point in the container and
/// VALUE its name in the images; at restore KEY is that name and VALUE the host path.
pub fn external_mount(key: &Path, value: &Path) -> [OsString; 2] {
    let mut s = OsString::from("mnt[");
    s.push(key);
    s.push("]:");
    s.push(value);
    ["--external".into(), s]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_failure_names_version_kernel_and_cause() {
        let out = "Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n\
                   Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable\n\
                   Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed when initializing kerndat.\n\
                   Error (criu/crtools.c:260): Could not initialize kernel features detection.\n";
        let m = check_failure("3.17.1", "6.18.44", out);
        assert!(m.starts_with(
            "criu 3.17.1 cannot run on kernel 6.18.44: vdso: Unexpected rt vDSO area bounds \
             (kerndat_vdso_fill_symtable failed when initializing kerndat)"
        ));
        assert!(m.contains("criu 4.1"));
        assert!(!m.contains('\n'));
        assert_eq!(
            check_failure("3.17.1", "6.1.0", "Error: no ptrace\n"),
            "criu 3.17.1 cannot run on kernel 6.1.0: no ptrace"
        );
        // a helper's exit status is not the cause (the lane's VM without loopback)
        let out = "Error (criu/util.c:642): exited, status=1\n\
                   Error (criu/kerndat.c:659): Unable to connect a socket: Network is unreachable\n\
                   Error (criu/kerndat.c:1570): kerndat_tcp_repair failed when initializing kerndat.\n";
        assert_eq!(
            check_failure("3.17.1", "6.1.0", out),
            "criu 3.17.1 cannot run on kernel 6.1.0: Unable to connect a socket: Network is \
             unreachable (kerndat_tcp_repair failed when initializing kerndat)"
        );
    }

    #[test]
    fn common_args_refuse_what_is_not_supported() {
        let a = CriuArgs {
            lazy_pages: true,
            ..CriuArgs::default()
        };
        assert!(common_args(&a, Path::new("/i")).is_err());
        let a = CriuArgs {
            manage_cgroups_mode: Some("bogus".into()),
            ..CriuArgs::default()
        };
        assert!(common_args(&a, Path::new("/i")).is_err());
        let a = CriuArgs {
            tcp_established: true,
            ..CriuArgs::default()
        };
        let v = common_args(&a, Path::new("/i")).expect("args");
        assert!(v.contains(&"--tcp-established".into()));
        assert!(v.contains(&"--manage-cgroups=soft".into()));
        assert_eq!(
            external_mount(Path::new("/data"), Path::new("/srv/d"))[1],
            OsString::from("mnt[/data]:/srv/d")
        );
    }
}
