//! The parser's unit tests, through [`super::parse`] only.

use std::ffi::OsString;
use std::path::PathBuf;

use super::table::COMMANDS;
use super::*;

fn ok(args: &[&str]) -> Cli {
    match parse(args.iter().copied()) {
        Ok(Parsed::Run(c)) => *c,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn cmd_of(args: &[&str]) -> Cmd {
    ok(args).cmd.expect("a command")
}

fn err(args: &[&str]) -> String {
    match parse(args.iter().copied()) {
        Err(e) => {
            let s = e.to_string();
            assert!(!s.contains('\n'), "{args:?}: not one line: {s}");
            assert_eq!(s, s.to_lowercase(), "{args:?}: not lower case: {s}");
            s
        }
        other => panic!("{args:?}: expected an error, got {other:?}"),
    }
}

fn help_of(args: &[&str]) -> String {
    match parse(args.iter().copied()) {
        Ok(Parsed::Help(h)) => h,
        other => panic!("{args:?}: expected help, got {other:?}"),
    }
}

/// Every spelling of a value flag: `--x v`, `--x=v` and the short forms if any.
fn spellings(long: &str, short: Option<char>, value: &str) -> Vec<Vec<String>> {
    let mut v = vec![
        vec![format!("--{long}"), value.to_owned()],
        vec![format!("--{long}={value}")],
    ];
    if let Some(c) = short {
        v.push(vec![format!("-{c}"), value.to_owned()]);
        v.push(vec![format!("-{c}{value}")]);
        v.push(vec![format!("-{c}={value}")]);
    }
    v
}

fn with(pre: &[&str], mid: &[String], post: &[&str]) -> Cli {
    let all: Vec<&str> = pre
        .iter()
        .copied()
        .chain(mid.iter().map(String::as_str))
        .chain(post.iter().copied())
        .collect();
    ok(&all)
}

fn create(id: &str, bundle: &str) -> CreateArgs {
    CreateArgs {
        bundle: bundle.into(),
        console_socket: None,
        pid_file: None,
        no_pivot: false,
        no_new_keyring: false,
        preserve_fds: 0,
        id: id.into(),
    }
}

#[test]
fn defaults() {
    let c = ok(&["state", "x"]);
    assert_eq!(c.root, PathBuf::from("/run/boxrun"));
    assert_eq!(c.log, "");
    assert_eq!(c.log_format, "text");
    assert!(!c.debug && !c.systemd_cgroup && !c.version);
    assert_eq!(c.rootless, None);
    assert_eq!(c.criu, None);
    assert_eq!(c.cmd, Some(Cmd::State { id: "x".into() }));
    assert_eq!(ok(&[]), Cli::default());
}

#[test]
fn create_and_run_flags() {
    for sp in spellings("bundle", Some('b'), "/b") {
        assert_eq!(
            with(&["create"], &sp, &["c1"]).cmd,
            Some(Cmd::Create(create("c1", "/b")))
        );
        // Flags after the id work too.
        assert_eq!(
            with(&["create", "c1"], &sp, &[]).cmd,
            Some(Cmd::Create(create("c1", "/b")))
        );
    }
    for sp in spellings("console-socket", None, "/s") {
        let Some(Cmd::Create(a)) = with(&["create"], &sp, &["c"]).cmd else {
            panic!()
        };
        assert_eq!(a.console_socket, Some("/s".into()));
    }
    for sp in spellings("pid-file", None, "/p") {
        let Some(Cmd::Create(a)) = with(&["create"], &sp, &["c"]).cmd else {
            panic!()
        };
        assert_eq!(a.pid_file, Some("/p".into()));
    }
    for sp in spellings("preserve-fds", None, "3") {
        let Some(Cmd::Run { c, .. }) = with(&["run"], &sp, &["c"]).cmd else {
            panic!()
        };
        assert_eq!(c.preserve_fds, 3);
    }
    let Cmd::Create(a) = cmd_of(&["create", "--no-pivot", "--no-new-keyring", "c"]) else {
        panic!()
    };
    assert!(a.no_pivot && a.no_new_keyring);
    assert_eq!(a.bundle, PathBuf::from("."));

    assert_eq!(
        cmd_of(&["run", "-d", "--keep", "-b", "/b", "r"]),
        Cmd::Run {
            c: create("r", "/b"),
            detach: true,
            keep: true
        }
    );
    assert_eq!(
        cmd_of(&["run", "r"]),
        Cmd::Run {
            c: create("r", "."),
            detach: false,
            keep: false
        }
    );
    // A short bool followed by a short value flag in one cluster.
    let Cmd::Run { c, detach, .. } = cmd_of(&["run", "-db/x", "r"]) else {
        panic!()
    };
    assert!(detach);
    assert_eq!(c.bundle, PathBuf::from("/x"));
}

#[test]
fn bool_flags_take_true_and_false() {
    for (arg, want) in [
        ("--detach=true", true),
        ("--detach=false", false),
        ("--detach=1", true),
        ("--detach=0", false),
        ("-d=true", true),
        ("-d=false", false),
    ] {
        let Cmd::Run { detach, .. } = cmd_of(&["run", arg, "r"]) else {
            panic!()
        };
        assert_eq!(detach, want, "{arg}");
    }
    let Cmd::Delete { force, .. } = cmd_of(&["delete", "--force=false", "x"]) else {
        panic!()
    };
    assert!(!force);
    assert!(ok(&["--debug=true", "list"]).debug);
    assert!(!ok(&["--debug=false", "list"]).debug);
    // The last one wins.
    assert!(!ok(&["--debug", "list", "--debug=false"]).debug);
    let e = err(&["run", "--detach=maybe", "r"]);
    assert!(
        e.contains("--detach") && e.contains("maybe") && e.starts_with("run: "),
        "{e}"
    );
}

#[test]
fn simple_id_commands() {
    assert_eq!(cmd_of(&["start", "a"]), Cmd::Start { id: "a".into() });
    assert_eq!(cmd_of(&["state", "a"]), Cmd::State { id: "a".into() });
    assert_eq!(cmd_of(&["pause", "a"]), Cmd::Pause { id: "a".into() });
    assert_eq!(cmd_of(&["resume", "a"]), Cmd::Resume { id: "a".into() });
    assert_eq!(cmd_of(&["features"]), Cmd::Features);
    // `--` lets an id start with a dash.
    assert_eq!(
        cmd_of(&["start", "--", "-a"]),
        Cmd::Start { id: "-a".into() }
    );
}

#[test]
fn kill_and_delete() {
    assert_eq!(
        cmd_of(&["kill", "k"]),
        Cmd::Kill {
            all: false,
            id: "k".into(),
            signal: "SIGTERM".into()
        }
    );
    for args in [
        &["kill", "--all", "k", "KILL"][..],
        &["kill", "-a", "k", "KILL"],
        &["kill", "k", "KILL", "--all"],
        &["kill", "--all=true", "k", "KILL"],
    ] {
        assert_eq!(
            cmd_of(args),
            Cmd::Kill {
                all: true,
                id: "k".into(),
                signal: "KILL".into()
            },
            "{args:?}"
        );
    }
    for args in [&["delete", "-f", "x"][..], &["delete", "x", "--force"]] {
        assert_eq!(
            cmd_of(args),
            Cmd::Delete {
                force: true,
                id: "x".into()
            }
        );
    }
}

#[test]
fn list_and_alias() {
    for name in ["list", "ls"] {
        assert_eq!(
            cmd_of(&[name]),
            Cmd::List {
                format: "table".into(),
                quiet: false
            }
        );
        for sp in spellings("format", Some('f'), "json") {
            assert_eq!(
                with(&[name], &sp, &["-q"]).cmd,
                Some(Cmd::List {
                    format: "json".into(),
                    quiet: true
                })
            );
        }
    }
    // Clustered: a bool then a value flag.
    assert_eq!(
        cmd_of(&["list", "-qfjson"]),
        Cmd::List {
            format: "json".into(),
            quiet: true
        }
    );
    assert_eq!(
        cmd_of(&["list", "--quiet", "--format="]),
        Cmd::List {
            format: "".into(),
            quiet: true
        }
    );
}

#[test]
fn spec_has_its_own_rootless() {
    assert_eq!(
        cmd_of(&["spec"]),
        Cmd::Spec {
            bundle: ".".into(),
            rootless: false
        }
    );
    for sp in spellings("bundle", Some('b'), "/b") {
        let c = with(&["spec"], &sp, &["--rootless"]);
        assert_eq!(
            c.cmd,
            Some(Cmd::Spec {
                bundle: "/b".into(),
                rootless: true
            })
        );
        // After `spec`, --rootless is spec's flag, not the global one.
        assert_eq!(c.rootless, None);
    }
    let c = ok(&["--rootless", "spec"]);
    assert_eq!(c.rootless.as_deref(), Some("auto"));
    assert_eq!(
        c.cmd,
        Some(Cmd::Spec {
            bundle: ".".into(),
            rootless: false
        })
    );
    let Cmd::Spec { rootless, .. } = cmd_of(&["spec", "--rootless=false"]) else {
        panic!()
    };
    assert!(!rootless);
}

#[test]
fn exec_flags() {
    let base = |id: &str, cmd: &[&str]| ExecArgs {
        id: id.into(),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        ..ExecArgs::default()
    };
    for sp in spellings("env", Some('e'), "A=1") {
        let Cmd::Exec(a) = with(&["exec"], &sp, &["x", "sh"]).cmd.expect("cmd") else {
            panic!()
        };
        assert_eq!(a.env, vec!["A=1"]);
    }
    for sp in spellings("user", Some('u'), "1:2") {
        let Cmd::Exec(a) = with(&["exec"], &sp, &["x", "sh"]).cmd.expect("cmd") else {
            panic!()
        };
        assert_eq!(a.user.as_deref(), Some("1:2"));
    }
    for sp in spellings("additional-gids", Some('g'), "7") {
        let Cmd::Exec(a) = with(&["exec"], &sp, &["x", "sh"]).cmd.expect("cmd") else {
            panic!()
        };
        assert_eq!(a.additional_gids, vec![7]);
    }
    for sp in spellings("process", Some('p'), "/p.json") {
        let Cmd::Exec(a) = with(&["exec"], &sp, &["x"]).cmd.expect("cmd") else {
            panic!()
        };
        assert_eq!(a.process, Some("/p.json".into()));
        assert!(a.command.is_empty());
    }
    for sp in spellings("cap", Some('c'), "CAP_NET_ADMIN") {
        let Cmd::Exec(a) = with(&["exec"], &sp, &["x", "sh"]).cmd.expect("cmd") else {
            panic!()
        };
        assert_eq!(a.cap, vec!["CAP_NET_ADMIN"]);
    }
    let Cmd::Exec(a) = cmd_of(&[
        "exec",
        "--console-socket",
        "/s",
        "--cwd=/w",
        "-t",
        "-d",
        "--pid-file",
        "/p",
        "--process-label=l",
        "--apparmor",
        "prof",
        "--no-new-privs",
        "--preserve-fds",
        "2",
        "--ignore-paused",
        "--cgroup",
        "a",
        "--cgroup=b",
        "-e",
        "A=1",
        "--env=B=2",
        "-eC=3",
        "-g",
        "1",
        "--additional-gids=2",
        "-c",
        "CAP_A",
        "--cap=CAP_B",
        "x",
        "sh",
    ]) else {
        panic!()
    };
    assert_eq!(
        a,
        ExecArgs {
            console_socket: Some("/s".into()),
            cwd: Some("/w".into()),
            env: vec!["A=1".into(), "B=2".into(), "C=3".into()],
            tty: true,
            user: None,
            additional_gids: vec![1, 2],
            process: None,
            detach: true,
            pid_file: Some("/p".into()),
            process_label: Some("l".into()),
            apparmor: Some("prof".into()),
            no_new_privs: true,
            cap: vec!["CAP_A".into(), "CAP_B".into()],
            preserve_fds: 2,
            ignore_paused: true,
            cgroup: vec!["a".into(), "b".into()],
            ..base("x", &["sh"])
        }
    );
    // Clustered short bools.
    let Cmd::Exec(a) = cmd_of(&["exec", "-td", "x", "sh"]) else {
        panic!()
    };
    assert!(a.tty && a.detach);
}

#[test]
fn exec_command_is_everything_after_the_id() {
    let command = |args: &[&str]| match cmd_of(args) {
        Cmd::Exec(a) => (a.id, a.command, a.tty),
        other => panic!("{other:?}"),
    };
    let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        command(&["exec", "id", "sh", "-c", "x"]),
        ("id".into(), v(&["sh", "-c", "x"]), false)
    );
    assert_eq!(
        command(&["exec", "-t", "id", "ls", "-la"]),
        ("id".into(), v(&["ls", "-la"]), true)
    );
    // Flag-looking words after the id are the command's, even boxrun's own flags.
    assert_eq!(
        command(&["exec", "id", "--tty", "--root", "/x", "-h"]),
        ("id".into(), v(&["--tty", "--root", "/x", "-h"]), false)
    );
    // `--` before the id, or right after it, only separates.
    assert_eq!(
        command(&["exec", "--", "id", "sh"]),
        ("id".into(), v(&["sh"]), false)
    );
    assert_eq!(
        command(&["exec", "id", "--", "sh", "--", "x"]),
        ("id".into(), v(&["sh", "--", "x"]), false)
    );
    assert_eq!(
        command(&["exec", "--", "id", "--", "sh"]),
        ("id".into(), v(&["--", "sh"]), false)
    );
    assert_eq!(command(&["exec", "id"]), ("id".into(), vec![], false));
    // Global flags before the id.
    let c = ok(&["exec", "--root", "/r", "--debug", "id", "sh"]);
    assert_eq!(c.root, PathBuf::from("/r"));
    assert!(c.debug);
}

#[test]
fn ps_and_events() {
    assert_eq!(
        cmd_of(&["ps", "p"]),
        Cmd::Ps {
            format: "table".into(),
            id: "p".into(),
            ps_args: vec![]
        }
    );
    for sp in spellings("format", Some('f'), "json") {
        assert_eq!(
            with(&["ps"], &sp, &["p", "-ef", "--forest"]).cmd,
            Some(Cmd::Ps {
                format: "json".into(),
                id: "p".into(),
                ps_args: vec!["-ef".into(), "--forest".into()]
            })
        );
    }
    assert_eq!(
        cmd_of(&["events", "e"]),
        Cmd::Events {
            interval: "5s".into(),
            stats: false,
            id: "e".into()
        }
    );
    for sp in spellings("interval", None, "1m") {
        assert_eq!(
            with(&["events"], &sp, &["--stats", "e"]).cmd,
            Some(Cmd::Events {
                interval: "1m".into(),
                stats: true,
                id: "e".into()
            })
        );
    }
}

#[test]
fn update_flags() {
    let Cmd::Update(u) = cmd_of(&[
        "update",
        "--blkio-weight",
        "500",
        "--cpu-period=100000",
        "--cpu-quota",
        "-1",
        "--cpu-share",
        "1024",
        "--cpu-rt-period=1000",
        "--cpu-rt-runtime=-5",
        "--cpuset-cpus",
        "0-1",
        "--cpuset-mems=0",
        "--memory",
        "128m",
        "--memory-reservation=64m",
        "--memory-swap",
        "-1",
        "--pids-limit",
        "64",
        "--kernel-memory=1g",
        "--kernel-memory-tcp",
        "1m",
        "--l3-cache-schema=L3:0=f",
        "--mem-bw-schema",
        "MB:0=20",
        "u",
    ]) else {
        panic!()
    };
    assert_eq!(
        u,
        UpdateArgs {
            resources: None,
            blkio_weight: Some(500),
            cpu_period: Some(100000),
            cpu_quota: Some(-1),
            cpu_share: Some(1024),
            cpu_rt_period: Some(1000),
            cpu_rt_runtime: Some(-5),
            cpuset_cpus: Some("0-1".into()),
            cpuset_mems: Some("0".into()),
            memory: Some("128m".into()),
            memory_reservation: Some("64m".into()),
            memory_swap: Some("-1".into()),
            pids_limit: Some(64),
            kernel_memory: Some("1g".into()),
            kernel_memory_tcp: Some("1m".into()),
            l3_cache_schema: Some("L3:0=f".into()),
            mem_bw_schema: Some("MB:0=20".into()),
            id: "u".into(),
        }
    );
    for sp in spellings("resources", Some('r'), "-") {
        let Some(Cmd::Update(u)) = with(&["update"], &sp, &["u"]).cmd else {
            panic!()
        };
        assert_eq!(u.resources.as_deref(), Some("-"));
    }
    assert_eq!(
        cmd_of(&["update", "u"]),
        Cmd::Update(UpdateArgs {
            id: "u".into(),
            ..UpdateArgs::default()
        })
    );
}

#[test]
fn checkpoint_and_restore_take_runc_flags() {
    let Cmd::Checkpoint(c) = cmd_of(&[
        "checkpoint",
        "--image-path",
        "img",
        "--leave-running",
        "--tcp-established",
        "--manage-cgroups-mode=full",
        "--parent-path",
        "../pre",
        "--empty-ns",
        "network",
        "id",
    ]) else {
        panic!("not a checkpoint")
    };
    assert_eq!(c.criu.id, "id");
    assert_eq!(c.criu.image_path, Some(PathBuf::from("img")));
    assert!(c.leave_running && c.criu.tcp_established && !c.pre_dump);
    assert_eq!(c.criu.manage_cgroups_mode.as_deref(), Some("full"));
    assert_eq!(c.parent_path, Some(PathBuf::from("../pre")));
    assert_eq!(c.criu.empty_ns, vec!["network".to_string()]);
    let r = ok(&[
        "restore",
        "-d",
        "-b",
        "/b",
        "--root",
        "/r",
        "id",
        "--pid-file=p",
    ]);
    assert_eq!(r.root, PathBuf::from("/r"));
    let Some(Cmd::Restore(r)) = r.cmd else {
        panic!("not a restore")
    };
    assert!(r.detach && !r.no_subreaper);
    assert_eq!(r.bundle, PathBuf::from("/b"));
    assert_eq!(r.pid_file, Some(PathBuf::from("p")));
    assert!(err(&["restore"]).contains("missing container id"));
    assert!(err(&["checkpoint", "--bogus", "id"]).contains("--bogus"));
}

#[test]
fn global_flags_before_and_after_the_command() {
    let check = |c: Cli| {
        assert_eq!(c.root, PathBuf::from("/r"));
        assert_eq!(c.log, "/l");
        assert_eq!(c.log_format, "json");
        assert!(c.debug);
        assert!(c.systemd_cgroup);
        assert_eq!(c.criu.as_deref(), Some("/c"));
        assert_eq!(c.cmd, Some(Cmd::State { id: "s".into() }));
    };
    let flags = [
        "--root",
        "/r",
        "--log=/l",
        "--log-format",
        "json",
        "--debug",
        "--systemd-cgroup",
        "--criu",
        "/c",
    ];
    let mut before = flags.to_vec();
    before.extend(["state", "s"]);
    check(ok(&before));
    let mut after = vec!["state"];
    after.extend(flags);
    after.push("s");
    check(ok(&after));
    // After the positional too (clap allowed that for commands without a tail).
    let mut last = vec!["state", "s"];
    last.extend(flags);
    check(ok(&last));
    // Split, with `=` forms.
    check(ok(&[
        "--root=/r",
        "--log-format=json",
        "state",
        "--log",
        "/l",
        "--debug",
        "--systemd-cgroup",
        "--criu=/c",
        "s",
    ]));
    // The later one wins.
    assert_eq!(
        ok(&["--root", "/a", "list", "--root", "/b"]).root,
        PathBuf::from("/b")
    );
}

#[test]
fn rootless_with_and_without_value() {
    assert_eq!(
        ok(&["--rootless", "list"]).rootless.as_deref(),
        Some("auto")
    );
    assert_eq!(
        ok(&["--rootless=true", "list"]).rootless.as_deref(),
        Some("true")
    );
    assert_eq!(
        ok(&["--rootless", "false", "list"]).rootless.as_deref(),
        Some("false")
    );
    let c = ok(&["--rootless", "list"]);
    assert_eq!(
        c.cmd,
        Some(Cmd::List {
            format: "table".into(),
            quiet: false
        })
    );
    // After the command.
    assert_eq!(
        ok(&["list", "--rootless"]).rootless.as_deref(),
        Some("auto")
    );
    let c = ok(&["create", "--rootless", "c"]);
    assert_eq!(c.rootless.as_deref(), Some("auto"));
    assert_eq!(c.cmd, Some(Cmd::Create(create("c", "."))));
    assert_eq!(
        ok(&["delete", "--rootless=auto", "x"]).rootless.as_deref(),
        Some("auto")
    );
}

#[test]
fn version() {
    for a in ["-v", "--version"] {
        assert!(ok(&[a]).version);
        assert!(ok(&[a, "list"]).version);
    }
    // Only before the command.
    let e = err(&["list", "--version"]);
    assert!(e.contains("--version") && e.starts_with("list: "), "{e}");
}

#[test]
fn help() {
    for args in [&["--help"][..], &["-h"], &["help"], &["--root", "/x", "-h"]] {
        let h = help_of(args);
        assert!(
            h.starts_with("NAME:\n   boxrun - ")
                && h.contains("USAGE:\n   boxrun [global options] command"),
            "{h}"
        );
        assert!(
            h.contains("create")
                && h.contains("Create a container (the process waits for `start`)")
        );
        assert!(h.contains("--root PATH") && h.contains("(default: \"/run/boxrun\")"));
        assert!(
            h.contains("--criu PATH"),
            "checkpoint's --criu not shown: {h}"
        );
    }
    for c in COMMANDS {
        for args in [
            vec![c.name, "--help"],
            vec![c.name, "-h"],
            vec!["help", c.name],
        ] {
            let h = help_of(&args);
            assert!(
                h.starts_with(&format!("NAME:\n   boxrun {} - {}", c.name, c.about)),
                "{args:?}: {h}"
            );
            assert!(
                h.contains(&format!("USAGE:\n   boxrun {} [command options]", c.name)),
                "{h}"
            );
            for f in c.flags {
                assert!(
                    h.contains(&format!("--{}", f.long)),
                    "{args:?}: no --{}",
                    f.long
                );
            }
        }
    }
    assert!(help_of(&["ls", "--help"]).contains("List containers"));
    assert!(help_of(&["create", "--bundle", "/b", "-h"]).contains("--bundle PATH, -b"));
    // Help wins over a missing id.
    assert!(help_of(&["start", "--help"]).contains("Start a created container"));
    // In a short cluster.
    assert!(help_of(&["list", "-qh"]).contains("List containers"));
}

#[test]
fn errors_name_the_culprit() {
    let e = err(&["create", "--bundel", "x", "c"]);
    assert_eq!(
        e,
        "create: unknown flag --bundel (see boxrun create --help)"
    );
    let e = err(&["create", "--bundel=x", "c"]);
    assert_eq!(
        e,
        "create: unknown flag --bundel (see boxrun create --help)"
    );
    let e = err(&["list", "-qx"]);
    assert!(e.starts_with("list: unknown flag -x in -qx"), "{e}");
    let e = err(&["list", "-x"]);
    assert!(e.starts_with("list: unknown flag -x "), "{e}");
    let e = err(&["--nope", "list"]);
    assert_eq!(e, "unknown flag --nope (see boxrun --help)");
    let e = err(&["--bundle", "/b", "create", "c"]);
    assert!(
        e.contains("--bundle") && e.contains("after the command"),
        "{e}"
    );

    let e = err(&["frobnicate"]);
    assert!(
        e.contains("unknown command frobnicate") && e.contains("boxrun --help"),
        "{e}"
    );
    let e = err(&["help", "frobnicate"]);
    assert!(e.contains("frobnicate"), "{e}");

    let e = err(&["create", "c", "--bundle"]);
    assert!(
        e.starts_with("create: missing value for --bundle") && e.contains("--bundle <path>"),
        "{e}"
    );
    let e = err(&["list", "-f"]);
    assert!(e.contains("--format"), "{e}");
    let e = err(&["--root"]);
    assert!(e.starts_with("missing value for --root"), "{e}");
    // A flag is not taken as a value.
    let e = err(&["--log", "--debug", "list"]);
    assert!(e.contains("missing value for --log"), "{e}");

    for c in [
        "create", "run", "start", "state", "kill", "delete", "exec", "pause", "resume", "ps",
        "events", "update",
    ] {
        let e = err(&[c]);
        let want = format!("{c}: missing container id (usage: boxrun {c} [options] id");
        assert!(e.starts_with(&want), "{e}");
    }

    let e = err(&["start", "a", "b"]);
    assert_eq!(
        e,
        "start: unexpected argument b (usage: boxrun start [options] id)"
    );
    let e = err(&["kill", "a", "KILL", "x"]);
    assert!(e.starts_with("kill: unexpected argument x"), "{e}");
    let e = err(&["list", "x"]);
    assert!(e.starts_with("list: unexpected argument x"), "{e}");
    let e = err(&["features", "x"]);
    assert!(e.starts_with("features: unexpected argument x"), "{e}");

    let e = err(&["update", "--blkio-weight", "70000", "u"]);
    assert!(
        e.starts_with("update: bad value 70000 for --blkio-weight") && e.contains("65535"),
        "{e}"
    );
    let e = err(&["update", "--cpu-quota=lots", "u"]);
    assert!(e.contains("lots") && e.contains("--cpu-quota"), "{e}");
    let e = err(&["update", "--cpu-period=-1", "u"]);
    assert!(e.contains("--cpu-period"), "{e}");
    let e = err(&["create", "--preserve-fds", "x", "c"]);
    assert!(e.contains("--preserve-fds"), "{e}");
    let e = err(&["exec", "-g", "wheel", "x", "sh"]);
    assert!(
        e.contains("--additional-gids") && e.contains("wheel"),
        "{e}"
    );

    let e = err(&["delete", "--force=yes", "x"]);
    assert!(e.contains("--force") && e.contains("yes"), "{e}");

    // Odd input stays on one line.
    let e = err(&["create", "--bun\ndel", "c"]);
    assert!(e.contains("\\n"), "{e}");
    let e = err(&["start", "a", "b c"]);
    assert!(e.contains("\"b c\""), "{e}");
}

#[test]
fn non_utf8() {
    use std::os::unix::ffi::OsStringExt;
    let bad = OsString::from_vec(vec![b'/', 0xff]);
    // Paths need not be UTF-8 ...
    let p = parse(vec![
        OsString::from("create"),
        "-b".into(),
        bad.clone(),
        "c".into(),
    ]);
    let Ok(Parsed::Run(cli)) = p else {
        panic!("{p:?}")
    };
    let Some(Cmd::Create(a)) = cli.cmd else {
        panic!("{cli:?}")
    };
    assert_eq!(a.bundle, PathBuf::from(bad.clone()));
    // ... ids and strings must.
    let e = parse(vec![OsString::from("start"), bad.clone()]).expect_err("bad id");
    assert!(e.to_string().contains("container id"), "{e}");
    let e = parse(vec![OsString::from("--log"), bad, "list".into()]).expect_err("bad log");
    assert!(e.to_string().contains("--log"), "{e}");
}

#[test]
fn no_command() {
    let c = ok(&["--root", "/x"]);
    assert_eq!(c.cmd, None);
    assert_eq!(c.root, PathBuf::from("/x"));
    assert_eq!(
        ok(&["--", "list"]).cmd,
        Some(Cmd::List {
            format: "table".into(),
            quiet: false
        })
    );
}
