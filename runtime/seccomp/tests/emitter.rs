//! The BPF emitter, checked by running compiled programs in a BPF interpreter.

mod common;

use boxrun_seccomp::{compile, SeccompError};
use common::*;
use serde_json::json;

fn prog(v: serde_json::Value) -> Vec<libc::sock_filter> {
    compile(&profile(v))
        .expect("profile compiles")
        .instructions()
        .to_vec()
}

#[test]
fn every_action() {
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["getpid"], "action": "SCMP_ACT_KILL"},
            {"names": ["getppid"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["gettid"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["uname"], "action": "SCMP_ACT_TRAP"},
            {"names": ["getuid"], "action": "SCMP_ACT_TRACE"},
            {"names": ["getgid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {"names": ["geteuid"], "action": "SCMP_ACT_LOG"},
            {"names": ["getegid"], "action": "SCMP_ACT_NOTIFY"},
            {"names": ["sync"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}
        ]
    })))
    .unwrap();
    let p = f.instructions();
    let z = [0; 6];
    assert_eq!(run64(p, "mkdir", z), EPERM);
    assert_eq!(run64(p, "rmdir", z), ENOSYS);
    assert_eq!(run64(p, "getpid", z), KILL_THREAD);
    assert_eq!(run64(p, "getppid", z), KILL_THREAD);
    assert_eq!(run64(p, "gettid", z), KILL_PROCESS);
    assert_eq!(run64(p, "uname", z), TRAP);
    assert_eq!(
        run64(p, "getuid", z),
        TRACE | 1,
        "TRACE data defaults to EPERM like runc"
    );
    assert_eq!(run64(p, "getgid", z), TRACE | 7);
    assert_eq!(run64(p, "geteuid", z), LOG);
    assert_eq!(run64(p, "getegid", z), NOTIFY);
    assert_eq!(
        run64(p, "sync", z),
        ERRNO | (70000 & 0xffff),
        "errno data is 16 bits"
    );
    assert_eq!(run64(p, "read", z), ALLOW);
    assert!(f.needs_notify());
    assert_eq!(
        f.flags() & boxrun_seccomp::FLAG_NEW_LISTENER,
        boxrun_seccomp::FLAG_NEW_LISTENER
    );
}

#[test]
fn default_errno_ret_and_no_notify_flag() {
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
    })))
    .unwrap();
    assert!(!f.needs_notify());
    assert_eq!(f.flags(), 0);
    let p = f.instructions();
    assert_eq!(run64(p, "read", [0; 6]), ALLOW);
    assert_eq!(run64(p, "write", [0; 6]), ALLOW);
    assert_eq!(run64(p, "open", [0; 6]), ERRNO | 13);
}

/// Reference semantics of one condition (64-bit).
fn holds(op: &str, arg: u64, v: u64, v2: u64) -> bool {
    match op {
        "SCMP_CMP_NE" => arg != v,
        "SCMP_CMP_LT" => arg < v,
        "SCMP_CMP_LE" => arg <= v,
        "SCMP_CMP_EQ" => arg == v,
        "SCMP_CMP_GE" => arg >= v,
        "SCMP_CMP_GT" => arg > v,
        // libseccomp masks the datum too.
        "SCMP_CMP_MASKED_EQ" => arg & v == v2 & v,
        _ => unreachable!(),
    }
}

#[test]
fn every_operator_with_64_bit_values() {
    let values: [u64; 8] = [
        0,
        1,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0xffff_ffff_ffff_ffff,
        0x8000_0000_0000_0000,
        0x7fff_ffff_0000_0001,
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for op in SCMP_OPS {
        for &v in &values {
            let v2 = if op == "SCMP_CMP_MASKED_EQ" {
                v & 0x0000_ffff_0000_ff00
            } else {
                0
            };
            let p = prog(json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 2, "value": v, "valueTwo": v2, "op": op}]}]
            }));
            let mut probes: Vec<u64> = values
                .iter()
                .flat_map(|&x| [x, x.wrapping_add(1), x.wrapping_sub(1)])
                .collect();
            probes.extend([
                v,
                v.wrapping_add(1),
                v.wrapping_sub(1),
                v ^ (1 << 32),
                v ^ 1,
                v2,
                v2 | 0xffff_0000_0000_00ff,
            ]);
            probes.extend((0..200).map(|_| rng.next()));
            probes
                .extend((0..50).map(|_| (v & 0xffff_ffff_0000_0000) | (rng.next() & 0xffff_ffff)));
            probes.extend((0..50).map(|_| (v & 0xffff_ffff) | (rng.next() << 32)));
            for arg in probes {
                let want = if holds(op, arg, v, v2) { ALLOW } else { EPERM };
                let got = run64(&p, "ioctl", [7, 8, arg, 0, 0, 0]);
                assert_eq!(got, want, "{op} value {v:#x} valueTwo {v2:#x} arg {arg:#x}");
            }
        }
    }
}

#[test]
fn random_conjunctions_match_reference() {
    let mut rng = Rng(42);
    for _ in 0..300 {
        let n = 1 + (rng.next() % 4) as usize;
        let mut idx: Vec<usize> = (0..6).collect();
        // Distinct argument indexes: the conditions AND.
        for i in 0..6 {
            let j = i + (rng.next() % (6 - i) as u64) as usize;
            idx.swap(i, j);
        }
        let pick = |r: &mut Rng| -> u64 {
            match r.next() % 4 {
                0 => r.next() % 4,
                1 => r.next() & 0xffff_ffff,
                2 => (r.next() % 3) << 32 | (r.next() % 3),
                _ => r.next(),
            }
        };
        let conds: Vec<(usize, &str, u64, u64)> = (0..n)
            .map(|i| {
                (
                    idx[i],
                    SCMP_OPS[(rng.next() % 7) as usize],
                    pick(&mut rng),
                    pick(&mut rng),
                )
            })
            .collect();
        let args: Vec<_> = conds
            .iter()
            .map(|c| json!({"index": c.0, "op": c.1, "value": c.2, "valueTwo": c.3}))
            .collect();
        let p = prog(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": args}]
        }));
        for _ in 0..60 {
            let mut a = [0u64; 6];
            for (i, x) in a.iter_mut().enumerate() {
                // Often hit the condition's own values.
                *x = match conds.iter().find(|c| c.0 == i) {
                    Some(c) if rng.next() & 1 == 0 => {
                        [c.2, c.3, c.2 & c.3, c.2.wrapping_add(1)][(rng.next() % 4) as usize]
                    }
                    _ => pick(&mut rng),
                };
            }
            let all = conds.iter().all(|c| holds(c.1, a[c.0], c.2, c.3));
            let want = if all { ERRNO | 5 } else { ALLOW };
            assert_eq!(run64(&p, "openat", a), want, "conds {conds:?} args {a:?}");
        }
    }
}

#[test]
fn conditions_on_the_same_argument_become_separate_rules() {
    // runc splits such a rule into one rule per condition: they OR.
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}
        ]}]
    }));
    assert_eq!(run64(&p, "kill", [5, 9, 0, 0, 0, 0]), EPERM);
    assert_eq!(run64(&p, "kill", [5, 15, 0, 0, 0, 0]), EPERM);
    assert_eq!(run64(&p, "kill", [1, 2, 0, 0, 0, 0]), EPERM);
    assert_eq!(run64(&p, "kill", [5, 2, 0, 0, 0, 0]), ALLOW);
}

#[test]
fn several_rules_for_one_syscall() {
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 0xffffffffu32, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]},
            {"names": ["chmod"], "action": "SCMP_ACT_LOG", "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["chmod"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
        ]
    }));
    assert_eq!(run64(&p, "personality", [0; 6]), ALLOW);
    assert_eq!(run64(&p, "personality", [8, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run64(&p, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]), LOG);
    assert_eq!(
        run64(&p, "personality", [0xffff_ffff_ffff_ffff, 0, 0, 0, 0, 0]),
        EPERM
    );
    assert_eq!(run64(&p, "personality", [1, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(run64(&p, "socket", [2, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run64(&p, "socket", [40, 0, 0, 0, 0, 0]), EPERM);
    // An unconditional rule overrides conditional ones (libseccomp replaces the chains).
    assert_eq!(run64(&p, "chmod", [0; 6]), ALLOW);
    // A rule with the default action is skipped.
    assert_eq!(run64(&p, "read", [0; 6]), EPERM);
}

#[test]
fn architectures() {
    let base = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "socketcall", "arch_prctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2}]
    });
    // Native only: i386, x32 and foreign architectures get the bad-arch action (KILL_THREAD).
    let p = prog(base.clone());
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 83, [0; 6]), ERRNO | 2);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 84, [0; 6]), ALLOW);
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, 158, [0; 6]),
        ERRNO | 2,
        "arch_prctl"
    );
    assert_eq!(run(&p, AUDIT_ARCH_I386, 39, [0; 6]), KILL_THREAD);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32 | 83, [0; 6]), KILL_THREAD);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 0x8000_0000, [0; 6]), KILL_THREAD);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 0xffff_fffe, [0; 6]), KILL_THREAD);
    // libseccomp lets -1 (a syscall a tracer skipped) through to the rules.
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 0xffff_ffff, [0; 6]), ALLOW);
    assert_eq!(run(&p, AUDIT_ARCH_AARCH64, 34, [0; 6]), KILL_THREAD);

    let mut all = base.clone();
    all["architectures"] = json!([
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
        "SCMP_ARCH_AARCH64"
    ]);
    let p = prog(all);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 83, [0; 6]), ERRNO | 2);
    // i386: mkdir is 39; 83 is symlink there. socketcall (102) exists only on i386.
    assert_eq!(run(&p, AUDIT_ARCH_I386, 39, [0; 6]), ERRNO | 2);
    assert_eq!(run(&p, AUDIT_ARCH_I386, 83, [0; 6]), ALLOW);
    assert_eq!(run(&p, AUDIT_ARCH_I386, 102, [0; 6]), ERRNO | 2);
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, 102, [0; 6]),
        ALLOW,
        "102 is getuid on x86_64"
    );
    // x32 uses the x86_64 audit arch with the x32 bit in nr.
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32 | 83, [0; 6]), ERRNO | 2);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32 | 84, [0; 6]), ALLOW);
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, X32 | 158, [0; 6]),
        ERRNO | 2,
        "arch_prctl on x32"
    );
    // A default of ALLOW means no -ENOSYS stub.
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 1000, [0; 6]), ALLOW);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 0xffff_ffff, [0; 6]), ALLOW);
    // aarch64 is never produced by an x86_64 kernel: no section.
    assert_eq!(run(&p, AUDIT_ARCH_AARCH64, 34, [0; 6]), KILL_THREAD);

    // x32 alone (plus the native arch, always present).
    let mut x32 = base;
    x32["architectures"] = json!(["SCMP_ARCH_X32"]);
    let p = prog(x32);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32 | 83, [0; 6]), ERRNO | 2);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 83, [0; 6]), ERRNO | 2);
    assert_eq!(run(&p, AUDIT_ARCH_I386, 39, [0; 6]), KILL_THREAD);
}

#[test]
fn arguments_on_32_bit_architectures_compare_the_low_word() {
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 1, "value": 0x1_0000_0009u64, "op": "SCMP_CMP_EQ"}]}]
    }));
    assert_eq!(run64(&p, "kill", [1, 9, 0, 0, 0, 0]), ALLOW);
    assert_eq!(run64(&p, "kill", [1, 0x1_0000_0009, 0, 0, 0, 0]), EPERM);
    // i386 kill is 37: libseccomp drops the high word of the datum there.
    assert_eq!(run(&p, AUDIT_ARCH_I386, 37, [1, 9, 0, 0, 0, 0]), EPERM);
    assert_eq!(run(&p, AUDIT_ARCH_I386, 37, [1, 8, 0, 0, 0, 0]), ALLOW);
}

#[test]
fn unknown_syscalls_are_ignored() {
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["no_such_syscall", "read", "breakpoint", "s390_runtime_instr"], "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(run64(&p, "read", [0; 6]), ALLOW);
    assert_eq!(run64(&p, "write", [0; 6]), EPERM);
}

#[test]
fn enosys_stub_like_runc() {
    let v = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["read", "mkdir", "openat2", "_llseek"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["close_range"], "action": "SCMP_ACT_ERRNO"}]
    });
    let p = prog(v.clone());
    // The newest syscall named is openat2 (437) on x86_64 and x32, 437 on i386 too.
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 437, [0; 6]), ALLOW);
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, 436, [0; 6]),
        EPERM,
        "close_range has the default action"
    );
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 438, [0; 6]), ENOSYS);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 0xffff_ffff, [0; 6]), ENOSYS);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32 | 437, [0; 6]), ALLOW);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32 | 438, [0; 6]), ENOSYS);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32 | 300, [0; 6]), EPERM);
    assert_eq!(
        run(&p, AUDIT_ARCH_I386, 140, [0; 6]),
        ALLOW,
        "_llseek on i386"
    );
    assert_eq!(run(&p, AUDIT_ARCH_I386, 438, [0; 6]), ENOSYS);
    assert_eq!(run(&p, AUDIT_ARCH_I386, 200, [0; 6]), EPERM);
    // KILL default gets the stub too.
    let mut k = v.clone();
    k["defaultAction"] = json!("SCMP_ACT_KILL_PROCESS");
    let p = prog(k);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 500, [0; 6]), ENOSYS);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 200, [0; 6]), KILL_PROCESS);
    // No architectures listed: no stub (runc only patches listed architectures).
    let mut n = v;
    n.as_object_mut().unwrap().remove("architectures");
    let p = prog(n);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 500, [0; 6]), EPERM);
}

#[test]
fn profile_errors() {
    let e = compile(&profile(json!({"defaultAction": "SCMP_ACT_NOTIFY"}))).unwrap_err();
    assert!(matches!(e, SeccompError::NotifyDefault), "{e}");
    let e = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]})))
    .unwrap_err();
    assert!(matches!(e, SeccompError::NotifyWrite { rule: 0 }), "{e}");
    let e = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})))
    .unwrap_err();
    assert!(matches!(e, SeccompError::ArgIndex { index: 6, .. }), "{e}");
    let e = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": [""], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap_err();
    assert!(matches!(e, SeccompError::EmptyName { rule: 0 }), "{e}");
}

#[test]
fn notify_on_an_unknown_syscall_still_asks_for_a_listener() {
    // runc sets NEW_LISTENER for any NOTIFY rule, resolved or not, and hands the fd over.
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall"], "action": "SCMP_ACT_NOTIFY"}]})))
    .unwrap();
    assert!(f.needs_notify());
}

#[test]
fn flags() {
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]})))
    .unwrap();
    assert_eq!(
        f.flags(),
        2 | 4,
        "WAIT_KILLABLE_RECV is dropped without a NOTIFY rule"
    );
    let f = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})))
    .unwrap();
    assert_eq!(
        f.flags(),
        1 | 8 | 16 | 32,
        "TSYNC with NOTIFY adds TSYNC_ESRCH"
    );
}

/// All x86_64 syscalls with alternating actions and argument conditions: exercises long jumps.
#[test]
fn jump_range_stress() {
    let names: Vec<String> = (0..470u32)
        .filter_map(|nr| {
            let n = name_of(nr)?;
            Some(n)
        })
        .collect();
    assert!(names.len() >= 350, "{}", names.len());
    let acts = [
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
    ];
    let rules: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if i % 3 == 0 {
                json!({"names": [n], "action": acts[i % 4], "errnoRet": i as u32,
                       "args": [{"index": i % 6, "value": (i as u64) << 31, "op": "SCMP_CMP_EQ"},
                                {"index": (i + 1) % 6, "value": 0xff, "valueTwo": i as u64 & 0xff, "op": "SCMP_CMP_MASKED_EQ"}]})
            } else {
                json!({"names": [n], "action": acts[i % 4], "errnoRet": i as u32})
            }
        })
        .collect();
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_KILL_PROCESS",
        "syscalls": rules
    })))
    .unwrap();
    let p = f.instructions();
    eprintln!("stress program: {} instructions", p.len());
    assert!(p.len() > 1000, "expected long jumps to matter: {}", p.len());
    for (i, n) in names.iter().enumerate() {
        let expect = match acts[i % 4] {
            "SCMP_ACT_ALLOW" => ALLOW,
            "SCMP_ACT_LOG" => LOG,
            "SCMP_ACT_TRAP" => TRAP,
            _ => ERRNO | (i as u32 & 0xffff),
        };
        if i % 3 == 0 {
            let mut a = [0u64; 6];
            a[i % 6] = (i as u64) << 31;
            a[(i + 1) % 6] = 0x1200 | (i as u64 & 0xff);
            assert_eq!(run64(p, n, a), expect, "{n} matching args");
            a[i % 6] ^= 1 << 40;
            assert_eq!(run64(p, n, a), KILL_PROCESS, "{n} non-matching args");
        } else {
            assert_eq!(run64(p, n, [0; 6]), expect, "{n}");
        }
    }
}

#[test]
fn too_long_is_an_error() {
    let rules: Vec<_> = (0..700)
        .map(|i| json!({"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 1, "value": i, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": i, "op": "SCMP_CMP_GE"}]}))
        .collect();
    let e = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}),
    ))
    .unwrap_err();
    assert!(matches!(e, SeccompError::TooLong { .. }), "{e}");
}

fn name_of(nr: u32) -> Option<String> {
    // Inverse lookup through the public name lookup, over the names the kernel headers use.
    NAMES
        .iter()
        .find(|n| boxrun_seccomp::syscall_nr_x86_64(n) == Some(nr))
        .map(|s| s.to_string())
}

const NAMES: &[&str] = &include!("fixtures/x86_64_names.in");

#[test]
fn i386_socketcall_and_ipc_multiplexing() {
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["socket", "shmget", "send"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11},
            {"names": ["connect"], "action": "SCMP_ACT_ERRNO", "errnoRet": 12,
             "args": [{"index": 0, "value": 23, "op": "SCMP_CMP_EQ"}]}
        ]
    }));
    let e11 = ERRNO | 11;
    assert_eq!(run(&p, AUDIT_ARCH_I386, 359, [0; 6]), e11, "direct socket");
    assert_eq!(
        run(&p, AUDIT_ARCH_I386, 102, [1, 0, 0, 0, 0, 0]),
        e11,
        "socketcall(SYS_SOCKET)"
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_I386, 102, [9, 0, 0, 0, 0, 0]),
        e11,
        "socketcall(SYS_SEND)"
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_I386, 102, [2, 0, 0, 0, 0, 0]),
        ALLOW,
        "socketcall(SYS_BIND)"
    );
    // The multiplexed form cannot see the real arguments: libseccomp matches the call only.
    assert_eq!(
        run(&p, AUDIT_ARCH_I386, 102, [3, 0, 0, 0, 0, 0]),
        ERRNO | 12
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_I386, 362, [23, 0, 0, 0, 0, 0]),
        ERRNO | 12
    );
    assert_eq!(run(&p, AUDIT_ARCH_I386, 362, [22, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(
        run(&p, AUDIT_ARCH_I386, 117, [23, 0, 0, 0, 0, 0]),
        e11,
        "ipc(SHMGET)"
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_I386, 117, [21, 0, 0, 0, 0, 0]),
        ALLOW,
        "ipc(SHMAT)"
    );
    assert_eq!(run64(&p, "socket", [0; 6]), e11);
}

#[test]
fn masked_eq_masks_the_datum_like_libseccomp() {
    // (arg & 0) == (1 & 0): always true, so the rule is effectively unconditional.
    let p = prog(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["add_key"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 2, "value": 0, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 0xf0, "valueTwo": 0x1_0000_0010u64, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    }));
    assert_eq!(run64(&p, "add_key", [0; 6]), EPERM);
    assert_eq!(run64(&p, "add_key", [0, 0, 7, 0, 0, 0]), EPERM);
    assert_eq!(run64(&p, "keyctl", [0x13, 0, 0, 0, 0, 0]), EPERM);
    assert_eq!(run64(&p, "keyctl", [0x23, 0, 0, 0, 0, 0]), ALLOW);
}
