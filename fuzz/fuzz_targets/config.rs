//! config.json bytes → parse + validate: never panics, errors are one line.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match boxrun::config::parse(data) {
        Ok(spec) => {
            for need in [false, true] {
                if let Err(e) = boxrun::config::validate(&spec, need) {
                    assert!(!e.to_string().contains('\n'));
                }
            }
            if let Some(p) = spec.process() {
                let _ = boxrun::config::check_process(p);
            }
        }
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
});
