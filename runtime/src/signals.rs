//! Signal names and numbers as `kill` accepts them ("KILL", "SIGKILL", "9", "sigterm").

use crate::error::{Error, Result};

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Parse a signal given by name (with or without SIG, any case) or number.
pub fn parse(s: &str) -> Result<i32> {
    let msg = || format!("unknown signal {s:?}: use a name like TERM or a number");
    let bad = || Error::Other(msg());
    let offset = |n: &str| n.parse::<i32>().map_err(|e| Error::invalid(msg(), e));
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(bad());
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+').ok_or_else(bad).and_then(offset)?
        };
        return libc::SIGRTMIN()
            .checked_add(off)
            .filter(|n| (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(n))
            .ok_or_else(bad);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        let off = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('-').ok_or_else(bad).and_then(offset)?
        };
        return libc::SIGRTMAX()
            .checked_sub(off)
            .filter(|n| (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(n))
            .ok_or_else(bad);
    }
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v)
        .ok_or_else(bad)
}

/// Every signal a foreground `run`/`exec` forwards to its child: all but those that
/// cannot be caught or that signal a fault of the runtime itself.
pub fn forwardable() -> libc::sigset_t {
    // SAFETY: building a signal set in local storage.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for s in [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGTRAP,
        ] {
            libc::sigdelset(&mut set, s);
        }
        set
    }
}

pub use boxrun_common::wait::exit_code;

/// Wait for our child `pid`, forwarding the (blocked) signals of `set` to it; returns
/// its exit code (see [`exit_code`]).
pub fn wait_forwarding(pid: i32, set: &libc::sigset_t) -> i32 {
    loop {
        let mut st = 0;
        // SAFETY: reaping our own child without blocking.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            return exit_code(st);
        }
        if r < 0 && nix::Error::last() != nix::Error::EINTR {
            return 255;
        }
        // SAFETY: zeroed siginfo is valid storage.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waiting for a signal of the blocked set.
        let sig = unsafe { libc::sigwaitinfo(set, &mut info) };
        if sig > 0 && sig != libc::SIGCHLD {
            // SAFETY: forwarding to our own child.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

/// Give a process about to exec a program (the container's init, an exec'd process, a
/// hook) the signal state runc gives it: nothing blocked, and SIGPIPE back to its default
/// action (Rust ignores it in the runtime, and an ignored signal stays ignored across
/// exec). Async-signal-safe.
pub fn reset_for_exec() {
    // SAFETY: a zeroed sigset_t is valid storage; sigemptyset/sigprocmask/signal are
    // async-signal-safe calls on this thread's own state.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("KILL").expect("KILL"), 9);
        assert_eq!(parse("SIGTERM").expect("SIGTERM"), 15);
        assert_eq!(parse("sigusr1").expect("usr1"), libc::SIGUSR1);
        assert_eq!(parse("9").expect("9"), 9);
        assert!(parse("NOPE").is_err());
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
        // found by tests/props.rs: offsets past the real-time range, or without a sign
        assert!(parse("RTMIN+100").is_err());
        assert!(parse("RTMIN31").is_err());
        assert!(parse("RTMAX-2147483647").is_err());
        assert_eq!(parse("RTMIN+2").expect("RTMIN+2"), libc::SIGRTMIN() + 2);
        assert_eq!(parse("SIGRTMAX-1").expect("RTMAX-1"), libc::SIGRTMAX() - 1);
    }
}
