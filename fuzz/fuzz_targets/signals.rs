//! Signal names and numbers → signals::parse: never panics, results are 1..=64.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(n) = boxrun::signals::parse(s) {
            assert!((1..=64).contains(&n));
        }
    }
});
