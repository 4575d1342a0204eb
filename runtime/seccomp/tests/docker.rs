//! Docker's default profile (OCI form, amd64, all capabilities): semantics and timings.

mod common;

use std::time::Instant;

use boxrun_seccomp::{compile, compile_cached, resolve_syscall};
use common::*;
use oci_spec::runtime::{Arch, LinuxSeccomp};

/// Docker's default seccomp profile for amd64, from the fixture.
pub fn docker_profile() -> LinuxSeccomp {
    let text = include_str!("fixtures/docker-default-amd64.json");
    serde_json::from_str(text).expect("docker profile fixture parses")
}

#[test]
fn docker_profile_matches_reference_semantics() {
    let p = docker_profile();
    let f = compile(&p).unwrap();
    let prog = f.instructions();
    eprintln!("docker default profile: {} BPF instructions", prog.len());
    assert!(
        prog.len() < 400,
        "program unexpectedly large: {}",
        prog.len()
    );
    let mut rng = Rng(7);
    for (arch, audit, bit) in [
        (Arch::ScmpArchX86_64, AUDIT_ARCH_X86_64, 0),
        (Arch::ScmpArchX86, AUDIT_ARCH_I386, 0),
        (Arch::ScmpArchX32, AUDIT_ARCH_X86_64, X32),
    ] {
        // The largest syscall number the profile names on this arch: runc's -ENOSYS boundary.
        let last = p
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().iter())
            .filter_map(|n| resolve_syscall(n, arch))
            .max()
            .unwrap();
        for nr in bit..=last {
            for args in [
                [0u64; 6],
                [40, 0, 0, 0, 0, 0],
                [8, 1, 2, 3, 4, 5],
                [0xffff_ffff, 0, 0, 0, 0, 0],
                [rng.next(); 6],
            ] {
                let want = reference(&p, arch, nr, args);
                assert_eq!(
                    run(prog, audit, nr, args),
                    want,
                    "{arch:?} nr {nr:#x} args {args:?}"
                );
            }
        }
        for nr in [last + 1, last + 100, bit | 0x3fff_ffff, u32::MAX] {
            assert_eq!(
                run(prog, audit, nr, [0; 6]),
                ENOSYS,
                "{arch:?} nr {nr:#x} above the profile"
            );
        }
    }
    // Spot checks, independent of the reference model.
    let z = [0; 6];
    assert_eq!(run64(prog, "read", z), ALLOW);
    assert_eq!(
        run64(prog, "mount", z),
        ALLOW,
        "all capabilities: CAP_SYS_ADMIN entries kept"
    );
    assert_eq!(run64(prog, "kexec_load", z), EPERM);
    assert_eq!(run64(prog, "keyctl", z), EPERM);
    assert_eq!(
        run64(prog, "socket", [40, 1, 0, 0, 0, 0]),
        EPERM,
        "AF_VSOCK"
    );
    assert_eq!(run64(prog, "socket", [2, 1, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run64(prog, "personality", [8, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run64(prog, "personality", [1, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(run(prog, AUDIT_ARCH_AARCH64, 63, z), KILL_THREAD);
}

/// Prints compile and cache-hit times for Docker's profile (mean and best of n: the best is
/// what the code costs, the mean includes whatever else the machine is doing). Not an assertion.
#[test]
fn docker_profile_timings() {
    let p = docker_profile();
    let dir = tempdir("timings");
    let n = 300;
    let time = |f: &mut dyn FnMut()| {
        let (mut best, mut total) = (f64::MAX, 0.0);
        for _ in 0..n {
            let t = Instant::now();
            f();
            let us = t.elapsed().as_secs_f64() * 1e6;
            best = best.min(us);
            total += us;
        }
        (best, total / n as f64)
    };
    let (cb, cm) = time(&mut || {
        std::hint::black_box(compile(std::hint::black_box(&p)).unwrap());
    });
    let first = compile_cached(&p, &dir.0).unwrap();
    let (hb, hm) = time(&mut || {
        let f = compile_cached(std::hint::black_box(&p), &dir.0).unwrap();
        assert_eq!(f.instructions().len(), first.instructions().len());
    });
    let msg = format!(
        "docker profile ({} instructions): compile best {cb:.1} us / mean {cm:.1} us; cache hit best {hb:.1} us / mean {hm:.1} us",
        first.instructions().len()
    );
    println!("{msg}");
    eprintln!("{msg}");
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh directory under the temp dir, removed when the value drops.
pub fn tempdir(tag: &str) -> TempDir {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let p = std::env::temp_dir().join(format!(
        "boxrun-seccomp-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    TempDir(p)
}
