//! Property tests (issue 11, bad input): the compiler never panics on random profiles,
//! either returns a program the kernel would accept (1..=4096 instructions, structurally
//! valid under the test interpreter) or a one-line error; a syscall no rule names gets the
//! default action; named x86_64 syscalls agree with the plain reference model.

mod common;
use common::*;

use oci_spec::runtime::{Arch, LinuxSeccomp};
use proptest::prelude::*;
use serde_json::{json, Value};

const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];
const ARCHES: &[&str] = &[
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
];
const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];
const NAMES: &[&str] = &[
    "read",
    "write",
    "openat",
    "open",
    "close",
    "mmap",
    "clone",
    "clone3",
    "socket",
    "socketcall",
    "ipc",
    "execve",
    "kill",
    "getpid",
    "ptrace",
    "mount",
    "personality",
    "futex",
    "io_uring_setup",
    "exit_group",
    "uname",
    "time",
    "_llseek",
    "ugetrlimit",
    "nosuchsyscall",
    "SYS_read",
    "",
];

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..4,
        any::<u32>().prop_map(u64::from),
        any::<u64>(),
        Just(u64::MAX)
    ]
}

fn cond() -> impl Strategy<Value = Value> {
    (
        0usize..8,
        0..SCMP_OPS.len(),
        value(),
        value(),
        any::<bool>(),
    )
        .prop_map(|(i, op, v, v2, two)| {
            if two {
                json!({"index": i, "op": SCMP_OPS[op], "value": v, "valueTwo": v2})
            } else {
                json!({"index": i, "op": SCMP_OPS[op], "value": v})
            }
        })
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0..NAMES.len()).prop_map(|i| NAMES[i].to_string()),
        1 => "[a-z_0-9]{1,12}",
    ]
}

fn rule() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(name(), 0..4),
        0..ACTIONS.len(),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(cond(), 0..4),
    )
        .prop_map(|(names, a, errno, args)| {
            let mut r = json!({"names": names, "action": ACTIONS[a]});
            if let Some(e) = errno {
                r["errnoRet"] = json!(e);
            }
            if !args.is_empty() {
                r["args"] = json!(args);
            }
            r
        })
}

fn profile_json() -> impl Strategy<Value = Value> {
    (
        0..ACTIONS.len(),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(0..ARCHES.len(), 0..4),
        proptest::collection::vec(0..FLAGS.len(), 0..3),
        proptest::collection::vec(rule(), 0..24),
    )
        .prop_map(|(d, derr, arches, flags, rules)| {
            let mut p = json!({"defaultAction": ACTIONS[d], "syscalls": rules});
            if let Some(e) = derr {
                p["defaultErrnoRet"] = json!(e);
            }
            if !arches.is_empty() {
                p["architectures"] = json!(arches.iter().map(|&i| ARCHES[i]).collect::<Vec<_>>());
            }
            if !flags.is_empty() {
                p["flags"] = json!(flags.iter().map(|&i| FLAGS[i]).collect::<Vec<_>>());
            }
            p
        })
}

/// The return value of an OCI action (runc's mapping; ERRNO and TRACE default to EPERM).
fn ret_of(v: &Value, action_key: &str, errno_key: &str) -> u32 {
    let e = v[errno_key].as_u64().map(|e| e as u32).unwrap_or(1) & 0xffff;
    match v[action_key].as_str().unwrap_or("") {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => KILL_PROCESS,
        "SCMP_ACT_TRAP" => TRAP,
        "SCMP_ACT_ERRNO" => ERRNO | e,
        "SCMP_ACT_TRACE" => TRACE | e,
        "SCMP_ACT_LOG" => LOG,
        "SCMP_ACT_NOTIFY" => NOTIFY,
        _ => ALLOW,
    }
}

/// x86_64 numbers of every syscall any rule names.
fn named_x86_64(p: &LinuxSeccomp) -> Vec<u32> {
    p.syscalls()
        .iter()
        .flatten()
        .flat_map(|s| s.names().iter())
        .filter_map(|n| boxrun_seccomp::resolve_syscall(n, Arch::ScmpArchX86_64))
        .collect()
}

fn check(v: &Value, probes: &[u32], args: [u64; 6]) -> Result<(), TestCaseError> {
    let Ok(p) = serde_json::from_value::<LinuxSeccomp>(v.clone()) else {
        return Ok(());
    };
    let f = match boxrun_seccomp::compile(&p) {
        Ok(f) => f,
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(
                !msg.is_empty() && !msg.contains('\n'),
                "error is not one line: {msg:?}"
            );
            return Ok(());
        }
    };
    let prog = f.instructions();
    prop_assert!(
        !prog.is_empty() && prog.len() <= boxrun_seccomp::MAX_INSNS,
        "length {}",
        prog.len()
    );
    let default = ret_of(v, "defaultAction", "defaultErrnoRet");
    let named = named_x86_64(&p);
    let last = named.iter().copied().max();
    for &nr in probes {
        let verdict = run(prog, AUDIT_ARCH_X86_64, nr, args);
        if named.contains(&nr) {
            // Named syscalls follow the reference model.
            let want = reference(&p, Arch::ScmpArchX86_64, nr, args);
            prop_assert_eq!(verdict, want, "nr {} args {:?}", nr, args);
        } else if last.is_none_or(|l| nr <= l) {
            prop_assert_eq!(verdict, default, "unnamed nr {} below the newest named", nr);
        } else {
            // Above the newest named syscall, runc's stub may answer ENOSYS.
            prop_assert!(
                verdict == default || verdict == ENOSYS,
                "unnamed nr {nr}: {verdict:#x}"
            );
        }
    }
    // Any architecture the filter does not cover is killed, never allowed.
    let v = run(prog, AUDIT_ARCH_AARCH64, 0, args);
    prop_assert_eq!(v, KILL_THREAD);
    Ok(())
}

/// Cases per property: `PROPTEST_CASES` when set (longer runs), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), ..ProptestConfig::default() })]

    #[test]
    fn random_profiles_compile_or_fail_cleanly(
        p in profile_json(),
        probes in proptest::collection::vec(0u32..470, 1..12),
        args in proptest::array::uniform6(value()),
    ) {
        let mut probes = probes;
        // Always probe the named syscalls too.
        if let Ok(lp) = serde_json::from_value::<LinuxSeccomp>(p.clone()) {
            probes.extend(named_x86_64(&lp));
        }
        check(&p, &probes, args)?;
    }

    /// Arbitrary JSON (mutated profiles) never panics the parser + compiler.
    #[test]
    fn mutated_profile_json_never_panics(p in profile_json(), cut in 0usize..2000, byte in any::<u8>()) {
        let mut raw = serde_json::to_vec(&p).unwrap_or_default();
        if !raw.is_empty() {
            let i = cut % raw.len();
            raw[i] = byte;
        }
        if let Ok(lp) = serde_json::from_slice::<LinuxSeccomp>(&raw) {
            match boxrun_seccomp::compile(&lp) {
                Ok(f) => prop_assert!(f.instructions().len() <= boxrun_seccomp::MAX_INSNS),
                Err(e) => prop_assert!(!e.to_string().contains('\n')),
            }
        }
    }
}

// Regression tests for inputs found while writing the properties.

/// 256 conditions on one argument of one rule: `lower` counted conditions per argument
/// index in a `u8`, which overflowed (a panic in debug builds, a wrong split decision in
/// release builds when the count wrapped to 1). Regression test.
#[test]
fn many_conditions_on_one_argument() {
    let args: Vec<Value> = (0..300)
        .map(|i| json!({"index": 0, "op": "SCMP_CMP_EQ", "value": i}))
        .collect();
    let p = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["openat"], "action": "SCMP_ACT_ERRNO", "args": args}]
    }));
    match boxrun_seccomp::compile(&p) {
        Ok(f) => {
            assert!(f.instructions().len() <= 4096);
            assert_eq!(
                run64(f.instructions(), "openat", [299, 0, 0, 0, 0, 0]),
                EPERM
            );
            assert_eq!(
                run64(f.instructions(), "openat", [300, 0, 0, 0, 0, 0]),
                ALLOW
            );
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
}

/// A profile too large for one program is a clean error, never a truncated program.
#[test]
fn oversized_profile_is_a_clean_error() {
    let rules: Vec<Value> = (0..2000u64)
        .map(|i| json!({"names": ["openat", "read", "write"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": i}, {"index": 1, "op": "SCMP_CMP_MASKED_EQ", "value": i, "valueTwo": i}]}))
        .collect();
    let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    let e = boxrun_seccomp::compile(&p).expect_err("too long");
    assert!(e.to_string().contains("4096"), "{e}");
    assert!(!e.to_string().contains('\n'));
}
