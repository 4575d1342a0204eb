//! The `boxrun` binary: a thin entry point over [`boxrun::cli`]. `#![no_main]`: the C
//! `main` below replaces std's runtime start-up (see [`boxrun::startup`]). The test
//! build of this file keeps the test harness's own `main` (it has no tests).
#![cfg_attr(not(test), no_main)]

/// The process entry point, called by the C runtime with the arguments std reads too.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    boxrun::startup::prepare();
    std::process::exit(boxrun::cli::main());
}
