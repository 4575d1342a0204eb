//! The process start-up that the `boxrun` binary does itself instead of std's runtime
//! (`#![no_main]`): std's would also install a stack-overflow handler, which reads
//! `/proc/self/maps` (glibc finds the main thread's stack there) and maps an alternate
//! signal stack: about 17 system calls, paid by every runtime command, that a runtime
//! whose every command is short needs no more than runc's or crun's init does. What the
//! rest of the runtime relies on is kept, as std does it: SIGPIPE ignored (a closed pipe
//! is an EPIPE error, not a death) and fds 0-2 open (on /dev/null when the caller
//! closed them), so that no file the runtime opens lands on a standard descriptor.

/// Ignore SIGPIPE and make sure fds 0, 1 and 2 are open.
pub fn prepare() {
    // SAFETY: setting a signal disposition in a single-threaded process.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: fds is a valid array of three pollfd.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } < 0 {
        return;
    }
    for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // SAFETY: opening /dev/null (a NUL-terminated literal); the lowest free fd is
        // the closed standard one, as std's start-up relies on too.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if fd >= 0 && fd != p.fd {
            // SAFETY: fd was just opened by us.
            unsafe { libc::close(fd) };
        }
    }
}
