//! Thin `cargo test` wrapper: run a few cases of the suite against runc.
//! Needs root, /usr/sbin/runc and a static oci-checker, so it is ignored by
//! default: `cargo test -p boxrun-conformance -- --ignored` after building
//! the checker as described in conformance/README.md.

use std::process::Command;

#[test]
#[ignore = "needs root, runc and a statically linked oci-checker (see README)"]
fn runc_passes_core_cases() {
    let runc = std::env::var("RUNTIME").unwrap_or_else(|_| "/usr/sbin/runc".into());
    let out = Command::new(env!("CARGO_BIN_EXE_oci-conformance"))
        .args([
            "--runtime",
            &runc,
            "--filter",
            "lifecycle.state-transitions,lifecycle.unknown-id,process.default,mounts.default,devices.default",
        ])
        .output()
        .expect("run oci-conformance");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "oci-conformance failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("5 passed, 0 failed"), "{stdout}");
}
