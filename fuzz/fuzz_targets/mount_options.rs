//! Comma-separated mount option words → mounts::parse: never panics; set and cleared
//! flags never overlap.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let opts: Vec<String> = s.split(',').map(str::to_string).collect();
    let o = boxrun::mounts::parse(&opts);
    assert!(!o.flags.intersects(o.cleared));
});
