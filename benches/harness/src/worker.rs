//! The worker: runs one [`Spec`] and writes its samples.
//!
//! Every measured command is spawned directly (no shell) and reaped with
//! `wait4`, whose rusage covers the child and every descendant it waited for,
//! so CPU time and peak RSS cover the runtime's whole process tree (runc init,
//! the container process, ...). The worker makes itself a child subreaper so
//! that detached container processes (`create`/`start`) are reaped here and
//! never linger as zombies.

use crate::spec::{sample_line, Sample, Spec, Step};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Where crun's hybrid-host check looks.
pub const UNIFIED_CONTROLLERS: &str = "/sys/fs/cgroup/unified/cgroup.controllers";

type Error = Box<dyn std::error::Error>;

fn err(msg: String) -> Error {
    msg.into()
}

/// Bind-mount `empty` over [`UNIFIED_CONTROLLERS`], refusing to do so unless
/// this process runs in a mount namespace other than `outer_mntns`.
pub fn hide_unified_controllers(empty: &str, outer_mntns: &str) -> Result<(), Error> {
    let own = fs::read_link("/proc/self/ns/mnt")
        .map_err(|e| err(format!("read /proc/self/ns/mnt: {e}")))?;
    if own.to_string_lossy() == outer_mntns {
        return Err(err(format!(
            "worker: refusing to bind-mount over {UNIFIED_CONTROLLERS} in the host mount \
             namespace ({outer_mntns}): run the worker under `unshare -m --propagation private`"
        )));
    }
    let c = |s: &str| std::ffi::CString::new(s).map_err(|e| err(format!("bad path {s:?}: {e}")));
    let (src, dst) = (c(empty)?, c(UNIFIED_CONTROLLERS)?);
    // SAFETY: both pointers are valid NUL-terminated strings living across the
    // call; fstype and data may be null for a bind mount.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(err(format!(
            "bind-mount {empty} over {UNIFIED_CONTROLLERS}: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

fn subst(argv: &[String], id: &str, j: Option<u32>) -> Vec<String> {
    argv.iter()
        .map(|a| {
            let a = a.replace("{id}", id);
            match j {
                Some(j) => a.replace("{j}", &j.to_string()),
                None => a,
            }
        })
        .collect()
}

struct Ctx<'a> {
    spec: &'a Spec,
    log: File,
    /// The pidfd of the last `PidfdOpen` and the pid it refers to.
    pidfd: Option<(OwnedFd, libc::pid_t)>,
}

impl Ctx<'_> {
    fn spawn(&mut self, argv: &[String]) -> Result<libc::pid_t, Error> {
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| err("worker: empty command".into()))?;
        let log = self
            .log
            .try_clone()
            .map_err(|e| err(format!("clone log fd: {e}")))?;
        let child = Command::new(prog)
            .args(args)
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| err(format!("spawn {prog}: {e}")))?;
        // The child is reaped with wait4 below, never through `Child`.
        Ok(child.id() as libc::pid_t)
    }

    /// Run `argv` to completion; returns its sample, or an error naming the
    /// command when it fails.
    fn run_one(&mut self, argv: &[String]) -> Result<Sample, Error> {
        let t0 = Instant::now();
        let pid = self.spawn(argv)?;
        let (status, ru) = wait4(pid)?;
        let wall = t0.elapsed();
        check_status(argv, status)?;
        Ok(sample(wall.as_nanos() as u64, &ru))
    }

    fn batch(&mut self, argv: &[String], id: &str, n: u32, parallel: u32) -> Result<Sample, Error> {
        let t0 = Instant::now();
        let mut running: HashMap<libc::pid_t, u32> = HashMap::new();
        let mut next = 0u32;
        let mut total = Sample::default();
        let mut failure: Option<Error> = None;
        while next < n || !running.is_empty() {
            while failure.is_none() && next < n && (running.len() as u32) < parallel {
                let cmd = subst(argv, id, Some(next));
                match self.spawn(&cmd) {
                    Ok(pid) => {
                        running.insert(pid, next);
                    }
                    Err(e) => failure = Some(e),
                }
                next += 1;
            }
            if running.is_empty() {
                break;
            }
            let (pid, status, ru) = wait_any()?;
            // Reparented orphans (we are a subreaper) are reaped and ignored.
            if let Some(j) = running.remove(&pid) {
                total.user_us += tv_us(&ru.ru_utime);
                total.sys_us += tv_us(&ru.ru_stime);
                total.maxrss_kb = total.maxrss_kb.max(ru.ru_maxrss.max(0) as u64);
                if let Err(e) = check_status(&subst(argv, id, Some(j)), status) {
                    failure.get_or_insert(e);
                }
            }
        }
        total.wall_ns = t0.elapsed().as_nanos() as u64;
        match failure {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }
}

fn tv_us(tv: &libc::timeval) -> u64 {
    (tv.tv_sec.max(0) as u64) * 1_000_000 + tv.tv_usec.max(0) as u64
}

fn sample(wall_ns: u64, ru: &libc::rusage) -> Sample {
    Sample {
        wall_ns,
        user_us: tv_us(&ru.ru_utime),
        sys_us: tv_us(&ru.ru_stime),
        maxrss_kb: ru.ru_maxrss.max(0) as u64,
    }
}

fn check_status(argv: &[String], status: libc::c_int) -> Result<(), Error> {
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        return Ok(());
    }
    let how = if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    };
    Err(err(format!("`{}` failed: {how}", argv.join(" "))))
}

fn wait4(pid: libc::pid_t) -> Result<(libc::c_int, libc::rusage), Error> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: status and ru are valid, writable and outlive the call.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if rc == pid {
            return Ok((status, ru));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(err(format!("wait4 {pid}: {e}")));
        }
    }
}

fn wait_any() -> Result<(libc::pid_t, libc::c_int, libc::rusage), Error> {
    let mut status = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: status and ru are valid, writable and outlive the call.
        let rc = unsafe { libc::wait4(-1, &mut status, 0, &mut ru) };
        if rc > 0 {
            return Ok((rc, status, ru));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(err(format!("wait4 any: {e}")));
        }
    }
}

/// Reap every exited child (orphans handed to us as subreaper) without blocking.
fn reap_orphans() {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid writable int.
        let rc = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if rc <= 0 {
            break;
        }
    }
}

fn pidfd_open(path: &str) -> Result<(OwnedFd, libc::pid_t), Error> {
    let text = fs::read_to_string(path).map_err(|e| err(format!("read pid file {path}: {e}")))?;
    let pid: libc::pid_t = text
        .trim()
        .parse()
        .map_err(|_| err(format!("pid file {path} holds {text:?}, not a pid")))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(err(format!(
            "pidfd_open {pid}: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: fd is a fresh descriptor we own exclusively.
    Ok((unsafe { OwnedFd::from_raw_fd(fd as i32) }, pid))
}

fn pidfd_wait(fd: &OwnedFd, timeout_ms: u64) -> Result<(), Error> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let deadline = Instant::now() + std::time::Duration::from_millis(timeout_ms);
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as i32;
        // SAFETY: pfd is a valid pollfd array of length 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, left) };
        if rc > 0 {
            return Ok(());
        }
        if rc == 0 {
            return Err(err(format!(
                "container process still running after {timeout_ms} ms"
            )));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(err(format!("poll pidfd: {e}")));
        }
    }
}

/// Reap `pid`, which has exited, and return its rusage (that of the process
/// and of every descendant it reaped) as a sample without wall time.
fn reap_exited(pid: libc::pid_t) -> Result<Sample, Error> {
    let (_, ru) = wait4(pid).map_err(|e| {
        err(format!(
            "{e}: the container process is not a child of the harness (subreaper)"
        ))
    })?;
    Ok(sample(0, &ru))
}

/// The samples of one iteration: written to the output, and kept for `Sum`.
struct Recorded<'a> {
    out: &'a mut String,
    iteration: u32,
    samples: Vec<(String, Sample)>,
}

impl Recorded<'_> {
    fn push(&mut self, label: String, s: Sample) {
        self.out.push_str(&sample_line(&label, self.iteration, &s));
        self.samples.push((label, s));
    }

    fn sum(&self, of: &[String]) -> Result<Sample, Error> {
        let mut parts = Vec::new();
        for want in of {
            let (_, s) = self
                .samples
                .iter()
                .find(|(l, _)| l == want)
                .ok_or_else(|| err(format!("worker: nothing recorded as {want} to sum")))?;
            parts.push(*s);
        }
        Ok(Sample::sum(&parts))
    }
}

fn iteration(ctx: &mut Ctx<'_>, i: u32, out: &mut String) -> Result<(), Error> {
    let id = format!("{}-{i}", ctx.spec.id_prefix);
    let mut rec = Recorded {
        out,
        iteration: i,
        samples: Vec::new(),
    };
    for step in ctx.spec.steps.clone() {
        match step {
            Step::Timed { label, argv } => {
                let s = ctx.run_one(&subst(&argv, &id, None))?;
                rec.push(label, s);
            }
            Step::Untimed { argv } => {
                ctx.run_one(&subst(&argv, &id, None))?;
            }
            Step::BestEffort { argv } => {
                let _ = ctx.run_one(&subst(&argv, &id, None));
            }
            Step::RemoveTree { path } => {
                let path = path.replace("{id}", &id);
                match fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(err(format!("remove {path}: {e}"))),
                }
            }
            Step::PidfdOpen { path } => {
                ctx.pidfd = Some(pidfd_open(&path.replace("{id}", &id))?);
            }
            Step::PidfdWait { timeout_ms, label } => {
                let (fd, pid) = ctx
                    .pidfd
                    .take()
                    .ok_or_else(|| err("worker: pidfd_wait without pidfd_open".into()))?;
                pidfd_wait(&fd, timeout_ms)?;
                if let Some(label) = label {
                    rec.push(label, reap_exited(pid)?);
                }
                reap_orphans();
            }
            Step::Sum { label, of } => {
                let s = rec.sum(&of)?;
                rec.push(label, s);
            }
            Step::Batch {
                label,
                n,
                parallel,
                argv,
            } => {
                let s = ctx.batch(&argv, &id, n, parallel)?;
                rec.push(label, s);
            }
        }
    }
    Ok(())
}

/// Run `spec`, writing samples to `out_path`. On the first failing iteration
/// the `on_fail` commands run and the error is returned (samples of earlier
/// iterations are kept).
pub fn run(spec: &Spec, out_path: &str) -> Result<(), Error> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only changes this process's
    // reparenting behaviour.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(|e| err(format!("open log {}: {e}", spec.log)))?;
    let mut ctx = Ctx {
        spec,
        log,
        pidfd: None,
    };
    let mut out = String::new();
    let mut result = Ok(());
    for i in 0..spec.iterations {
        if let Err(e) = iteration(&mut ctx, i, &mut out) {
            let id = format!("{}-{i}", spec.id_prefix);
            let _ = writeln!(ctx.log, "bench worker: iteration {i}: {e}");
            for cmd in &spec.on_fail {
                let _ = ctx.run_one(&subst(cmd, &id, None));
            }
            result = Err(e);
            break;
        }
    }
    reap_orphans();
    fs::write(out_path, out).map_err(|e| err(format!("write {out_path}: {e}")))?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_samples;
    use std::path::PathBuf;

    /// `run` reaps with wait4(-1) (it owns its process in production), so
    /// tests that spawn must not run concurrently within this test process.
    static SPAWN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SPAWN_LOCK.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A scratch directory removed on drop, even when the test fails.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let p = std::env::temp_dir()
                .join(format!("boxrun-bench-test-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).expect("create scratch dir");
            Scratch(p)
        }
        fn path(&self, name: &str) -> String {
            self.0.join(name).display().to_string()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn spec(steps: Vec<Step>, s: &Scratch, on_fail: Vec<Vec<String>>) -> Spec {
        Spec {
            iterations: 2,
            id_prefix: "t".into(),
            env: vec![("BENCH_TEST".into(), "1".into())],
            steps,
            on_fail,
            log: s.path("log"),
        }
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// Start a short sleep detached like a container process (its parent
    /// exits first, so it is reparented to the worker, a child subreaper)
    /// and open a pidfd on it.
    fn detached_sleep(pidfile: &str) -> [Step; 2] {
        [
            Step::Untimed {
                argv: argv(&["sh", "-c", &format!("sleep 0.05 & echo $! > {pidfile}")]),
            },
            Step::PidfdOpen {
                path: pidfile.to_owned(),
            },
        ]
    }

    #[test]
    fn times_commands_and_batches_with_ids() {
        let _serial = serial();
        let s = Scratch::new("ok");
        let marker = s.path("{id}");
        let sp = spec(
            vec![
                Step::Timed {
                    label: "touch".into(),
                    argv: argv(&["touch", &marker]),
                },
                Step::Batch {
                    label: "batch".into(),
                    n: 4,
                    parallel: 2,
                    argv: argv(&["touch", &s.path("{id}-{j}")]),
                },
                Step::RemoveTree {
                    path: s.path("absent"),
                },
                Step::Untimed {
                    argv: argv(&["sh", "-c", "test \"$BENCH_TEST\" = 1"]),
                },
            ],
            &s,
            vec![],
        );
        run(&sp, &s.path("out")).expect("worker run");
        let samples =
            parse_samples(&fs::read_to_string(s.path("out")).expect("out")).expect("parse");
        assert_eq!(samples.len(), 4, "2 iterations × (touch + batch)");
        assert!(samples
            .iter()
            .all(|(_, x)| x.wall_ns > 0 && x.maxrss_kb > 0));
        for f in ["t-0", "t-1", "t-0-0", "t-0-3", "t-1-3"] {
            assert!(s.0.join(f).exists(), "{f} not created");
        }
    }

    #[test]
    fn failing_step_runs_on_fail_and_keeps_earlier_samples() {
        let _serial = serial();
        let s = Scratch::new("fail");
        let mut sp = spec(
            vec![Step::Timed {
                label: "probe".into(),
                // Succeeds on iteration 0, fails on iteration 1.
                argv: argv(&["test", "{id}", "=", "t-0"]),
            }],
            &s,
            vec![argv(&["touch", &s.path("cleaned-{id}")])],
        );
        sp.iterations = 3;
        let e = run(&sp, &s.path("out")).expect_err("iteration 1 must fail");
        assert!(e.to_string().contains("exit status 1"), "{e}");
        assert!(s.0.join("cleaned-t-1").exists(), "on_fail did not run");
        let samples =
            parse_samples(&fs::read_to_string(s.path("out")).expect("out")).expect("parse");
        assert_eq!(samples.len(), 1);
    }

    #[test]
    fn pidfd_wait_sees_exit() {
        let _serial = serial();
        let s = Scratch::new("pidfd");
        let mut steps = detached_sleep(&s.path("pid")).to_vec();
        steps.push(Step::PidfdWait {
            timeout_ms: 5_000,
            label: None,
        });
        let sp = spec(steps, &s, vec![]);
        run(&sp, &s.path("out")).expect("worker run");
    }

    #[test]
    fn reaps_labelled_pidfd_and_sums_steps() {
        let _serial = serial();
        let s = Scratch::new("sum");
        let [detach, open] = detached_sleep(&s.path("pid"));
        let sp = spec(
            vec![
                Step::Timed {
                    label: "a".into(),
                    argv: argv(&["true"]),
                },
                detach,
                open,
                Step::Timed {
                    label: "b".into(),
                    argv: argv(&["true"]),
                },
                Step::PidfdWait {
                    timeout_ms: 5_000,
                    label: Some("detached".into()),
                },
                Step::Sum {
                    label: "a+b".into(),
                    of: argv(&["a", "b"]),
                },
            ],
            &s,
            vec![],
        );
        run(&sp, &s.path("out")).expect("worker run");
        let samples =
            parse_samples(&fs::read_to_string(s.path("out")).expect("out")).expect("parse");
        let labels: Vec<&str> = samples.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            labels,
            ["a", "b", "detached", "a+b", "a", "b", "detached", "a+b"]
        );
        for it in samples.chunks(4) {
            let (a, b, d, sum) = (it[0].1, it[1].1, it[2].1, it[3].1);
            assert_eq!(sum.wall_ns, a.wall_ns + b.wall_ns);
            assert_eq!(
                sum.user_us + sum.sys_us,
                a.user_us + a.sys_us + b.user_us + b.sys_us
            );
            assert_eq!(sum.maxrss_kb, a.maxrss_kb.max(b.maxrss_kb));
            assert_eq!(d.wall_ns, 0, "a reaped process has no wall time");
            assert!(d.maxrss_kb > 0, "rusage of the reaped process");
        }
    }

    #[test]
    fn sum_of_unrecorded_step_fails() {
        let _serial = serial();
        let s = Scratch::new("sumbad");
        let sp = spec(
            vec![Step::Sum {
                label: "x".into(),
                of: argv(&["missing"]),
            }],
            &s,
            vec![],
        );
        let e = run(&sp, &s.path("out")).expect_err("nothing to sum");
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn refuses_to_hide_controllers_in_outer_namespace() {
        let own = fs::read_link("/proc/self/ns/mnt").expect("mntns");
        let e = hide_unified_controllers("/dev/null", &own.to_string_lossy())
            .expect_err("must refuse in the same namespace");
        assert!(e.to_string().contains("refusing"), "{e}");
    }
}
