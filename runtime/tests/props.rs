//! Property tests (issue 11, bad input) for boxrun's parsers: config.json parse +
//! validate, mount options, signal names. None may panic on any input; errors are one
//! line and name what is wrong. Regression tests for findings follow the properties.

use boxrun::{config, mounts, signals};
use proptest::prelude::*;
use serde_json::{json, Value};

fn base() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "box",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0, "additionalGids": [1, 2]},
            "args": ["/bin/sh", "-c", "true"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]}
        ],
        "hooks": {"poststop": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]},
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}],
            "resources": {"memory": {"limit": 1048576}, "pids": {"limit": 10}, "cpu": {"shares": 512}},
            "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"},
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
            "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO"}]}
        }
    })
}

/// Replacement values for a mutated field: wrong types, huge numbers, odd strings.
fn junk() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(1e300)),
        ".{0,20}".prop_map(Value::from),
        Just(json!("relative/path")),
        Just(json!("")),
        Just(json!([])),
        Just(json!({})),
        Just(json!(["a", 1, null])),
        Just(json!({"type": "pid", "path": "x"})),
    ]
}

/// Walk to a random node of `v` (following `path` choices modulo fan-out) and replace
/// or delete it.
fn mutate(v: &mut Value, path: &[usize], with: Value, delete: bool) {
    let Some((&choice, rest)) = path.split_first() else {
        *v = with;
        return;
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(choice % m.len()).cloned().unwrap_or_default();
            if rest.is_empty() {
                if delete {
                    m.remove(&key);
                } else {
                    m.insert(key, with);
                }
            } else if let Some(next) = m.get_mut(&key) {
                mutate(next, rest, with, delete);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = choice % a.len();
            if rest.is_empty() {
                if delete {
                    a.remove(i);
                } else {
                    a[i] = with;
                }
            } else {
                mutate(&mut a[i], rest, with, delete);
            }
        }
        _ => *v = with,
    }
}

/// parse + validate never panic; errors are one line.
fn check_config(raw: &[u8]) -> Result<(), TestCaseError> {
    match config::parse(raw) {
        Ok(spec) => {
            for need in [false, true] {
                if let Err(e) = config::validate(&spec, need) {
                    let m = e.to_string();
                    prop_assert!(!m.is_empty() && !m.contains('\n'), "validate error: {m:?}");
                }
            }
            if let Some(p) = spec.process() {
                if let Err(e) = config::check_process(p) {
                    prop_assert!(!e.to_string().contains('\n'));
                }
            }
            // rootfs resolution against a bundle that does not exist is an error, not a panic
            if let Err(e) = config::rootfs_path(std::path::Path::new("/nonexistent-bundle"), &spec)
            {
                prop_assert!(!e.to_string().contains('\n'));
            }
            // a parsed spec is a fixed point of serialize + parse
            let again = serde_json::to_vec(&spec).expect("spec serializes");
            prop_assert!(
                config::parse(&again).is_ok(),
                "reserialized spec does not parse"
            );
        }
        Err(e) => {
            let m = e.to_string();
            prop_assert!(!m.is_empty() && !m.contains('\n'), "parse error: {m:?}");
        }
    }
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
    #![proptest_config(ProptestConfig { cases: cases(600), ..ProptestConfig::default() })]

    #[test]
    fn mutated_configs_never_panic(
        muts in proptest::collection::vec((proptest::collection::vec(any::<usize>(), 1..6), junk(), any::<bool>()), 1..5)
    ) {
        let mut v = base();
        for (path, with, delete) in muts {
            mutate(&mut v, &path, with, delete);
        }
        check_config(v.to_string().as_bytes())?;
    }

    #[test]
    fn byte_mutated_configs_never_panic(pos in any::<usize>(), bytes in proptest::collection::vec(any::<u8>(), 1..8), truncate in any::<bool>()) {
        let mut raw = serde_json::to_vec(&base()).expect("enc");
        let i = pos % raw.len();
        if truncate {
            raw.truncate(i);
        } else {
            for (k, b) in bytes.into_iter().enumerate() {
                if i + k < raw.len() {
                    raw[i + k] = b;
                }
            }
        }
        check_config(&raw)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_config(&raw)?;
    }

    #[test]
    fn mount_options_never_panic(opts in proptest::collection::vec(prop_oneof![
        3 => prop_oneof![
            Just("ro"), Just("rw"), Just("bind"), Just("rbind"), Just("nosuid"), Just("suid"),
            Just("nodev"), Just("dev"), Just("noexec"), Just("exec"), Just("rro"), Just("rrw"),
            Just("private"), Just("rshared"), Just("rslave"), Just("unbindable"), Just("remount"),
            Just("strictatime"), Just("relatime"), Just("noatime"), Just("defaults"), Just("idmap"),
        ].prop_map(str::to_string),
        1 => ".{0,12}",
        1 => "[a-z]{1,6}=[0-9a-z,]{0,6}",
    ], 0..12)) {
        let o = mounts::parse(&opts);
        // set and cleared never overlap; data holds exactly the unknown words
        prop_assert!(!o.flags.intersects(o.cleared), "{opts:?}: {o:?}");
        prop_assert_eq!(o.bind, opts.iter().any(|s| s == "bind" || s == "rbind"));
        let words: Vec<&str> = if o.data.is_empty() { Vec::new() } else { o.data.split(',').collect() };
        for w in &words {
            prop_assert!(opts.iter().any(|s| s.contains(w)), "data word {w:?} from nowhere");
        }
        // the last of ro/rw (or rro/rrw) decides read-only
        let ro = opts.iter().rev().find(|s| matches!(s.as_str(), "ro" | "rw" | "rro" | "rrw"));
        if let Some(last) = ro {
            let want = last == "ro" || last == "rro";
            prop_assert_eq!(o.flags.contains(nix::mount::MsFlags::MS_RDONLY), want, "{:?}", opts);
        }
    }

    #[test]
    fn signal_parse_never_panics(s in prop_oneof![
        ".{0,12}",
        "(SIG|sig)?(RTMIN|RTMAX|rtmin|rtmax)[+-]?[0-9]{0,12}",
        "-?[0-9]{1,12}",
    ]) {
        match signals::parse(&s) {
            Ok(n) => prop_assert!((1..=64).contains(&n), "{s:?} gave signal {n}"),
            Err(e) => prop_assert!(!e.to_string().contains('\n')),
        }
    }
}

// Regression tests for findings.

/// RTMIN+n / RTMAX-n with n out of range must be an error, not a signal number beyond 64
/// or an arithmetic overflow.
#[test]
fn realtime_signal_offsets_stay_in_range() {
    for s in [
        "RTMIN+100",
        "RTMAX-100",
        "SIGRTMIN+2147483647",
        "RTMAX-2147483647",
        "RTMIN+-5",
        "RTMAX--5",
        "RTMIN-1",
        "RTMAX+1",
    ] {
        match signals::parse(s) {
            Ok(n) => assert!(
                (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n),
                "{s} gave {n}"
            ),
            Err(e) => assert!(e.to_string().contains(s), "{e}"),
        }
    }
    assert_eq!(
        signals::parse("RTMIN+1").expect("RTMIN+1"),
        libc::SIGRTMIN() + 1
    );
    assert_eq!(
        signals::parse("SIGRTMAX-1").expect("RTMAX-1"),
        libc::SIGRTMAX() - 1
    );
}

#[test]
fn huge_numbers_in_config_are_parse_errors_or_valid() {
    let mut v = base();
    v["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "hard": 9223372036854775808u64, "soft": u64::MAX}]);
    v["linux"]["resources"]["memory"]["limit"] = json!(i64::MAX);
    v["process"]["user"]["uid"] = json!(u32::MAX);
    let raw = v.to_string();
    let spec = config::parse(raw.as_bytes()).expect("huge but well-typed values parse");
    config::validate(&spec, true).expect("validation does not look at magnitudes");
    v["process"]["user"]["uid"] = json!(u64::from(u32::MAX) + 1);
    let e = config::parse(v.to_string().as_bytes()).expect_err("uid above u32");
    assert!(!e.to_string().contains('\n'));
}
