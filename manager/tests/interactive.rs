//! Interactive and one-shot runs (issue 17): `run -it` on a real terminal
//! (boxctl driven under a pty made here), window size followed, Ctrl-C, exit
//! code; `run --rm` after a normal exit, a killed process and a killed
//! monitor; `attach` with Ctrl-P Ctrl-Q; `wait`.

mod common;
use common::*;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long any expected output may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// boxctl running on the slave side of a pty this test holds the master of,
/// as a user's terminal would run it (session leader, controlling terminal).
struct OnPty {
    master: std::fs::File,
    child: Child,
    seen: String,
}

impl OnPty {
    fn spawn(env: &Env, args: &[&str], rows: u16, cols: u16) -> OnPty {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let (mut m, mut s) = (-1, -1);
        // SAFETY: openpty with valid out pointers and a winsize; no name or termios.
        let rc =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both fds were just returned by openpty and are ours.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        // SAFETY: F_SETFD on our own fd: boxctl must not inherit the master.
        unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_boxctl"));
        cmd.arg("--root")
            .arg(&env.root)
            .arg("--runtime")
            .arg(&env.runtime)
            .args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only setsid and ioctl (async-signal-safe) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn boxctl on a pty");
        OnPty {
            master: std::fs::File::from(master),
            child,
            seen: String::new(),
        }
    }

    fn type_in(&mut self, text: &[u8]) {
        self.master.write_all(text).expect("write to the pty");
    }

    /// Read until `needle` appears in the output after what earlier calls
    /// consumed; returns the output up to and including it.
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(i) = self.seen.find(needle) {
                let upto: String = self.seen.drain(..i + needle.len()).collect();
                return upto;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {needle:?} in the terminal's output: {:?}",
                self.seen
            );
            let mut p = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) };
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(n) if n > 0 => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => panic!("the terminal closed before {needle:?}: {:?}", self.seen),
            }
        }
    }

    fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ on our master with a valid winsize (the kernel sends
        // SIGWINCH to boxctl, the terminal's foreground process).
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(rc, 0);
    }

    /// boxctl's exit code, waited for through a pidfd (bounded).
    fn exit_code(&mut self) -> i32 {
        assert!(
            wait_pid(self.child.id() as i32, PATIENCE.as_secs()),
            "boxctl did not exit: {:?}",
            self.seen
        );
        self.child
            .wait()
            .unwrap()
            .code()
            .expect("boxctl exited by a signal")
    }
}

impl Drop for OnPty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `boxctl wait NAMES...` in the background, its stdout piped.
fn spawn_wait(env: &Env, names: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_boxctl"))
        .arg("--root")
        .arg(&env.root)
        .arg("wait")
        .args(names)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn boxctl wait")
}

fn id_of(env: &Env, name: &str) -> String {
    env.inspect(name)["id"].as_str().unwrap().to_string()
}

/// `run -it`: a real terminal, typed input, its window size followed,
/// Ctrl-C reaching the process, the exit code returned, and `--rm`.
#[test]
fn run_it_is_a_real_terminal() {
    let env = Env::new("it");
    let mut t = OnPty::spawn(
        &env,
        &["run", "-it", "--rm", "--name", "it", "bb", "sh"],
        24,
        80,
    );
    t.type_in(b"tty; stty size; echo $((6*7))\n");
    t.expect("$((6*7))"); // the echo of the typed line
    let out = t.expect("42");
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("24 80"), "{out:?}");
    let id = env.ok(&["ps", "-q"]).trim().to_string();
    assert_eq!(id.len(), 12, "{id:?}");

    // Ctrl-C is a byte on the terminal: the process in the foreground gets SIGINT.
    t.type_in(b"sh -c 'trap \"echo got-int; exit 130\" INT; echo ar\"\"med; read x'\n");
    t.expect("armed");
    t.type_in(b"\x03");
    t.expect("got-int");
    t.type_in(b"echo rc=$?\n");
    t.expect("rc=130");

    // A new size on the outer terminal reaches the instance's terminal.
    t.resize(30, 100);
    t.type_in(b"stty size\n");
    t.expect("30 100");

    t.type_in(b"exit 7\n");
    assert_eq!(t.exit_code(), 7, "{:?}", t.seen);
    // --rm: gone with its disk and cgroup.
    assert!(env.ps_all().is_empty());
    assert!(env.instance_dirs().is_empty(), "{:?}", env.instance_dirs());
    env.assert_no_leaks(&[id]);
}

fn veth_exists(id: &str) -> bool {
    std::path::Path::new("/sys/class/net")
        .join(boxctl_network::veth_name_for(id, 0))
        .exists()
}

/// The instance's id, as seen from inside it (its cgroup path).
const PRINT_ID: &str = "grep -o 'boxctl/[0-9a-f]*' /proc/self/cgroup | head -n 1 | cut -d/ -f2";

/// `run --rm` removes the instance, its disk, cgroup and veth after a
/// normal exit, after its process is killed, and after its monitor is
/// killed -9 (the next command reconciles).
#[test]
fn run_rm_removes_the_instance_whatever_ends_it() {
    let env = Env::new("rm");
    let net = env.create_network(221, &["rmnet"]);
    let _ = net;

    // Normal exit, in the foreground: output, exit code, nothing left.
    let script = format!("{PRINT_ID}; echo bye; exit 4");
    let out = env.boxctl(&["run", "--rm", "--net", "rmnet", "bb", "sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let id = lines.next().unwrap_or_default().to_string();
    assert_eq!(id.len(), 12, "{text:?}");
    assert_eq!(lines.next(), Some("bye"), "{text:?}");
    assert!(env.ps_all().is_empty());
    assert!(env.instance_dirs().is_empty());
    assert!(!veth_exists(&id));
    env.assert_no_leaks(&[id]);

    // Stdin reaches the process with -i and its end closes the process's stdin.
    let mut child = Command::new(env!("CARGO_BIN_EXE_boxctl"))
        .arg("--root")
        .arg(&env.root)
        .arg("--runtime")
        .arg(&env.runtime)
        .args(["run", "-i", "--rm", "bb", "sh", "-c", "cat; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"typed\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "typed\ndone\n");
    assert!(out.status.success());
    assert!(env.ps_all().is_empty());

    // The process is killed: the monitor removes it; `wait` still gets its code.
    let id = env
        .ok(&[
            "run", "-d", "--rm", "--name", "killed", "--net", "rmnet", "bb", "sleep", "1000",
        ])
        .trim()
        .to_string();
    assert!(veth_exists(&id));
    let pid = env.inspect("killed")["pid"].as_i64().unwrap() as i32;
    let waiter = spawn_wait(&env, &["killed"]);
    // SAFETY: killing the instance's init this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "137");
    assert!(env.ps_all().is_empty());
    assert!(env.instance_dirs().is_empty());
    assert!(!veth_exists(&id));
    env.assert_no_leaks(&[id]);

    // Its monitor is killed -9: the instance runs on unmonitored; when its
    // process dies, the next command removes what is left.
    let id = env
        .ok(&[
            "run", "-d", "--rm", "--name", "orphan", "--net", "rmnet", "bb", "sleep", "1000",
        ])
        .trim()
        .to_string();
    let i = env.inspect("orphan");
    let monitor = i["monitor_pid"].as_i64().unwrap() as i32;
    let pid = i["pid"].as_i64().unwrap() as i32;
    // SAFETY: killing the monitor boxctl started for this test.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    assert!(wait_pid(monitor, 10));
    let ps = env.ps_all();
    assert!(
        ps[0]["state"].as_str().unwrap().contains("unmonitored"),
        "{ps:?}"
    );
    // SAFETY: killing the instance's init.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_pid(pid, 10));
    assert!(env.ps_all().is_empty());
    assert!(env.instance_dirs().is_empty(), "{:?}", env.instance_dirs());
    assert!(!veth_exists(&id));
    env.assert_no_leaks(&[id]);

    // ... and `stop` of an unmonitored --rm instance removes it too.
    let id = env
        .ok(&[
            "run", "-d", "--rm", "--name", "orphan2", "bb", "sleep", "1000",
        ])
        .trim()
        .to_string();
    let monitor = env.inspect("orphan2")["monitor_pid"].as_i64().unwrap() as i32;
    // SAFETY: as above.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    assert!(wait_pid(monitor, 10));
    env.ok(&["stop", "-t", "0", "orphan2"]);
    assert!(env.ps_all().is_empty());
    assert!(env.instance_dirs().is_empty());
    env.assert_no_leaks(&[id]);

    // Bad input: one line, nothing made.
    let err = env.fails(&["run", "--rm", "--restart", "always", "bb", "true"]);
    assert!(err.contains("--rm and --restart always conflict"), "{err}");
    assert!(env.ps_all().is_empty());
    assert!(env.instance_dirs().is_empty());
    env.ok(&["network", "rm", "rmnet"]);
}

/// `attach` to a running `-t` instance sees its output and sends input;
/// Ctrl-P Ctrl-Q detaches and leaves it running; `wait` prints the code.
#[test]
fn attach_and_detach_and_wait() {
    let env = Env::new("attach");
    env.ok(&["run", "-dit", "--name", "at", "bb", "sh"]);
    let id = id_of(&env, "at");
    let waiter = spawn_wait(&env, &["at"]);

    let mut t = OnPty::spawn(&env, &["attach", "at"], 24, 80);
    t.type_in(b"echo hel\"\"lo > /tmp/mark; cat /tmp/mark\n");
    t.expect("hel\"\"lo"); // the echo of the typed line
    t.expect("hello");
    t.type_in(b"\x10\x11");
    assert_eq!(t.exit_code(), 0, "{:?}", t.seen);
    drop(t);
    let i = env.inspect("at");
    assert_eq!(i["status"], "running", "{i}");

    // Attach again: the same shell (its file is there), its size from this terminal.
    let mut t = OnPty::spawn(&env, &["attach", "at"], 33, 111);
    t.type_in(b"cat /tmp/mark; stty size\n");
    t.expect("stty size");
    t.expect("hello");
    t.expect("33 111");
    t.type_in(b"exit 3\n");
    assert_eq!(t.exit_code(), 3, "{:?}", t.seen);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
    assert_eq!(env.inspect("at")["status"], "exited");
    // What the terminal showed is in the log too.
    let logs = env.ok(&["logs", "at"]);
    assert!(logs.contains("hello"), "{logs}");

    // Bad input: one line each.
    let err = env.fails(&["attach", "at"]);
    assert!(err.contains("is not running"), "{err}");
    let err = env.fails(&["wait", "nosuch"]);
    assert!(err.contains("nosuch"), "{err}");
    env.ok(&["rm", "at"]);
    env.assert_no_leaks(&[id]);
}

/// `wait NAME...` blocks until each exits and prints the codes in order;
/// a foreground run passes SIGINT on to its process (no -t).
#[test]
fn wait_prints_exit_codes_and_run_forwards_sigint() {
    let env = Env::new("wait");
    env.ok(&["run", "-d", "--name", "w1", "bb", "sleep", "1000"]);
    env.ok(&["run", "-d", "--name", "w2", "bb", "sh", "-c", "exit 5"]);
    let waiter = spawn_wait(&env, &["w1", "w2"]);
    env.ok(&["stop", "-t", "0", "w1"]);
    let out = waiter.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "137\n5\n");
    // One not started yet is awaited through its start (inotify on the instance file).
    env.ok(&["create", "--name", "w3", "bb", "sh", "-c", "exit 9"]);
    let waiter = spawn_wait(&env, &["w3"]);
    env.ok(&["start", "w3"]);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "9\n");
    let ids = [id_of(&env, "w1"), id_of(&env, "w2"), id_of(&env, "w3")];
    env.ok(&["rm", "w1", "w2", "w3"]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_boxctl"))
        .arg("--root")
        .arg(&env.root)
        .arg("--runtime")
        .arg(&env.runtime)
        .args([
            "run",
            "-i",
            "--name",
            "ci",
            "bb",
            "sh",
            "-c",
            "trap 'echo got-int; exit 130' INT; echo ready; read x",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Held open until boxctl exits: its end would end `read` before the signal.
    let stdin = child.stdin.take();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // SAFETY: signalling the boxctl process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    drop(stdin);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("got-int"), "{rest}");
    assert_eq!(status.code(), Some(130));
    let id = id_of(&env, "ci");
    env.ok(&["rm", "ci"]);
    let mut ids = ids.to_vec();
    ids.push(id);
    env.assert_no_leaks(&ids);
}
