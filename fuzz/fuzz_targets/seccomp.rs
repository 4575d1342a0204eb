//! linux.seccomp JSON → compile: never panics, programs fit the kernel's 4096 limit,
//! errors are one line.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) else {
        return;
    };
    match boxrun_seccomp::compile(&p) {
        Ok(f) => {
            let n = f.instructions().len();
            assert!(n > 0 && n <= boxrun_seccomp::MAX_INSNS);
        }
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
});
