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
    let bad = || {
        Error::Other(format!(
            "unknown signal {s:?}: use a name like TERM or a number"
        ))
    };
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
            rest.strip_prefix('+')
                .ok_or_else(bad)?
                .parse::<i32>()
                .map_err(|_| bad())?
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
            rest.strip_prefix('-')
                .ok_or_else(bad)?
                .parse::<i32>()
                .map_err(|_| bad())?
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
