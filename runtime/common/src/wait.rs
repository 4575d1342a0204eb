//! Wait statuses (`waitpid(2)`) as the exit codes a shell reports.

/// The exit code of a wait status, or 128+N for a process killed by signal N;
/// -1 for a status that is neither (stopped or continued).
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::exit_code;

    #[test]
    fn exits_signals_and_stops() {
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(libc::SIGKILL), 128 + 9);
        // stopped by SIGSTOP: low byte 0x7f, signal in the next
        assert_eq!(exit_code((libc::SIGSTOP << 8) | 0x7f), -1);
    }
}
