//! End-to-end tests of the security options users pass to docker
//! (capabilities, no-new-privileges, seccomp, devices, ulimits, /dev/shm
//! size, privileged), labels, and `ps --filter/--format` (root required).

mod common;

use common::Env;

fn id_of(env: &Env, name: &str) -> String {
    env.inspect(name)["id"].as_str().unwrap().to_string()
}

/// Run `script` in a new instance in the foreground (removed when it
/// exits) with `opts`; returns its output (stderr folded in) and exit code.
fn run_sh(env: &Env, opts: &[&str], script: &str) -> (String, i32) {
    let mut args = vec!["run", "--rm"];
    args.extend(opts);
    let script = format!("{{ {script} ; }} 2>&1");
    args.extend(["bb", "sh", "-c", script.as_str()]);
    let out = env.boxctl(&args);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// The value of `key:` in /proc/self/status lines of `out`.
fn status_field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {out:?}"))
}

/// The capability mask of `caps` (kernel numbers) as /proc/self/status prints it.
fn mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | 1 << c))
}

#[test]
fn capabilities_nnp_ulimits_and_shm_size_hold_inside_and_through_restarts() {
    let env = Env::new("sec-caps");
    let script = "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; \
                  echo soft=$(ulimit -n) hard=$(ulimit -Hn) core=$(ulimit -c); \
                  df -k /dev/shm | tail -1";
    env.ok(&[
        "create",
        "--name",
        "caps",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "net_admin",
        "--cap-add",
        "CAP_SYS_PTRACE",
        "--security-opt",
        "no-new-privileges=false",
        "--ulimit",
        "nofile=256:512",
        "--ulimit",
        "core=-1",
        "--shm-size",
        "16m",
        "bb",
        "sh",
        "-c",
        script,
    ]);
    let id = id_of(&env, "caps");
    let i = env.inspect("caps");
    assert_eq!(
        i["cap_add"],
        serde_json::json!(["CAP_NET_ADMIN", "CAP_SYS_PTRACE"])
    );
    assert_eq!(i["cap_drop"], serde_json::json!(["ALL"]));
    assert_eq!(i["no_new_privileges"], false);
    assert_eq!(
        i["ulimits"],
        serde_json::json!(["nofile=256:512", "core=-1:-1"])
    );
    assert_eq!(i["shm_size"], 16 << 20);
    let file = std::fs::read_to_string(env.root.join("instances.toml")).unwrap();
    assert!(
        file.contains("ulimits = [\"nofile=256:512\",\"core=-1:-1\"]"),
        "{file}"
    );
    // Twice: what the instance file keeps applies again at the next start.
    for round in 1..=2 {
        env.ok(&["start", "caps"]);
        assert_eq!(env.ok(&["wait", "caps"]).trim(), "0");
        let logs = env.ok(&["logs", "caps"]);
        assert_eq!(logs.matches("NoNewPrivs").count(), round, "{logs}");
        let last: String = logs
            .lines()
            .skip(logs.lines().count() - 5)
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(status_field(&last, "CapEff"), mask(&[12, 19]), "{last}");
        assert_eq!(status_field(&last, "CapBnd"), mask(&[12, 19]), "{last}");
        assert_eq!(status_field(&last, "NoNewPrivs"), "0", "{last}");
        assert!(last.contains("soft=256 hard=512 core=unlimited"), "{last}");
        let shm: Vec<&str> = last.lines().last().unwrap().split_whitespace().collect();
        assert_eq!(shm[1], "16384", "{last}");
    }
    // The defaults: docker's 14 capabilities, no_new_privs set, 64 MiB /dev/shm.
    let (out, code) = run_sh(
        &env,
        &[],
        "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; df -k /dev/shm | tail -1",
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        status_field(&out, "CapEff"),
        mask(&[0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31])
    );
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    assert!(out.contains(" 65536 "), "{out}");
    env.ok(&["rm", "caps"]);
    env.assert_no_leaks(&[id]);
}

#[test]
fn seccomp_profile_is_copied_checked_and_enforced() {
    let env = Env::new("sec-seccomp");
    let profile = env.dir.join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 1, "comment": "EPERM"}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    env.ok(&[
        "create",
        "--name",
        "sc",
        "--security-opt",
        &opt,
        "bb",
        "sh",
        "-c",
        "mkdir /tmp/d 2>&1; echo rc=$?; touch /tmp/f && echo touched",
    ]);
    let i = env.inspect("sc");
    assert_eq!(i["seccomp"], profile.display().to_string());
    let copy = std::path::PathBuf::from(i["seccomp_profile"].as_str().unwrap());
    assert!(copy.starts_with(&env.root), "{copy:?}");
    // The instance keeps its own copy: the user's file may go.
    std::fs::remove_file(&profile).unwrap();
    env.ok(&["start", "sc"]);
    assert_eq!(env.ok(&["wait", "sc"]).trim(), "0");
    let logs = env.ok(&["logs", "sc"]);
    assert!(logs.contains("Operation not permitted"), "{logs}");
    assert!(logs.contains("rc=1") && logs.contains("touched"), "{logs}");
    // unconfined (and the default) lets mkdir through.
    for opts in [&["--security-opt", "seccomp=unconfined"][..], &[]] {
        let (out, code) = run_sh(&env, opts, "mkdir /tmp/d && echo made");
        assert_eq!((out.trim(), code), ("made", 0), "{opts:?}");
    }
    env.ok(&["rm", "sc"]);
}

#[test]
fn devices_get_a_node_and_a_cgroup_rule_with_their_permissions() {
    let env = Env::new("sec-dev");
    // loop-control: not one of the devices every instance gets.
    let (out, code) = run_sh(
        &env,
        &["--device", "/dev/loop-control:/dev/lc:r"],
        "ls -l /dev/lc; true </dev/lc && echo read-ok; true >/dev/lc || echo write-denied",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("crw"), "{out}");
    assert!(out.contains("10, 237"), "{out}");
    assert!(out.contains("read-ok"), "{out}");
    assert!(
        out.contains("Operation not permitted") && out.contains("write-denied"),
        "{out}"
    );
    let (out, _) = run_sh(
        &env,
        &["--device", "/dev/loop-control"],
        "true >/dev/loop-control && echo write-ok",
    );
    assert_eq!(out.trim(), "write-ok");
    let (out, _) = run_sh(&env, &[], "ls /dev/loop-control /dev/lc");
    assert!(out.contains("No such file"), "{out}");
}

#[test]
fn privileged_has_every_capability_device_and_writable_proc() {
    let env = Env::new("sec-priv");
    // Every capability boxctl has itself (the host may withhold some).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status_field(&status, "CapBnd").to_string();
    let (out, code) = run_sh(
        &env,
        &["--privileged", "--hostname", "before"],
        "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; ls -l /dev/loop-control; \
         echo after > /proc/sys/kernel/hostname && hostname",
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(status_field(&out, "CapEff"), bounding, "{out}");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0", "{out}");
    assert!(out.contains("10, 237"), "{out}");
    assert_eq!(out.lines().last(), Some("after"), "{out}");
    // Unprivileged, /proc/sys stays read-only.
    let (out, _) = run_sh(
        &env,
        &["--hostname", "before"],
        "echo after > /proc/sys/kernel/hostname; hostname",
    );
    assert!(out.contains("Read-only file system"), "{out}");
    assert_eq!(out.lines().last(), Some("before"), "{out}");
}

#[test]
fn labels_filters_and_formats_print_what_docker_users_expect() {
    let env = Env::new("sec-ps");
    env.ok(&[
        "run", "-d", "--name", "sx-web", "-l", "tier=web", "--label", "team=a", "bb", "sleep",
        "1000",
    ]);
    env.ok(&[
        "create", "--name", "sx-db", "--label", "tier=db", "bb", "true",
    ]);
    env.ok(&["run", "--name", "sx-job", "bb", "true"]);
    let (web, db, job) = (
        id_of(&env, "sx-web"),
        id_of(&env, "sx-db"),
        id_of(&env, "sx-job"),
    );
    assert_eq!(
        env.inspect("sx-web")["labels"],
        serde_json::json!(["tier=web", "team=a"])
    );
    let ps = |args: &[&str]| {
        let mut all = vec!["ps"];
        all.extend(args);
        env.ok(&all)
    };
    assert_eq!(
        ps(&["--filter", "label=tier", "--format", "{{.Names}}"]),
        "sx-web\n"
    );
    assert_eq!(
        ps(&["-a", "--filter", "label=tier", "--format", "{{.Names}}"]),
        "sx-web\nsx-db\n"
    );
    assert_eq!(
        ps(&[
            "-a",
            "-f",
            "label=tier=db",
            "--format",
            "{{.Names}} {{.Labels}}"
        ]),
        "sx-db tier=db\n"
    );
    assert_eq!(
        ps(&[
            "-a",
            "-f",
            "label=tier",
            "-f",
            "label=team=a",
            "--format",
            "{{.ID}}"
        ]),
        format!("{web}\n")
    );
    // A status filter looks at every instance, as docker's does.
    assert_eq!(
        ps(&["-f", "status=exited", "--format", "{{.Names}}"]),
        "sx-job\n"
    );
    assert_eq!(
        ps(&[
            "-f",
            "status=created",
            "-f",
            "status=running",
            "--format",
            "{{.Names}}"
        ]),
        "sx-web\nsx-db\n"
    );
    assert_eq!(ps(&["-a", "-f", "name=job", "-q"]), format!("{job}\n"));
    assert_eq!(
        ps(&[
            "-a",
            "--format",
            "{{.Names}}:{{.State}}:{{.Label \"tier\"}}"
        ]),
        "sx-web:running:web\nsx-db:created:db\nsx-job:exited:\n"
    );
    assert_eq!(
        ps(&["-a", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.Labels}}"]),
        format!(
            "CONTAINER ID   NAMES    LABELS\n\
             {web}   sx-web   tier=web,team=a\n\
             {db}   sx-db    tier=db\n\
             {job}   sx-job\n"
        )
    );
    let status = ps(&["--format", "{{.Status}}|{{.Command}}"]);
    assert!(
        status.starts_with("Up ") && status.ends_with("|\"sleep 1000\"\n"),
        "{status}"
    );
    let created = env.inspect("sx-db")["created"]
        .as_str()
        .unwrap()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&ps(&[
        "-f",
        "label=tier=db",
        "-f",
        "status=created",
        "--format",
        "{{json .}}",
    ]))
    .unwrap();
    assert_eq!(v["ID"], db.as_str());
    assert_eq!(v["Names"], "sx-db");
    assert_eq!(v["State"], "created");
    assert_eq!(v["Labels"], "tier=db");
    assert_eq!(
        v["CreatedAt"],
        format!(
            "{} +0000 UTC",
            created.replace('T', " ").trim_end_matches('Z')
        )
    );
    for bad in [
        &["-f", "color=red"][..],
        &["-f", "status=up"],
        &["-f", "label"],
        &["--format", "{{.Foo}}"],
        &["--format", "{{.ID"],
    ] {
        let mut all = vec!["ps"];
        all.extend(bad);
        let err = env.fails(&all);
        assert!(
            err.contains("--filter") || err.contains("--format"),
            "{err}"
        );
    }
    env.ok(&["rm", "-f", "sx-web", "sx-db", "sx-job"]);
    env.assert_no_leaks(&[web, db, job]);
}

#[test]
fn bad_security_options_are_one_line_and_make_nothing() {
    let env = Env::new("sec-bad");
    let not_json = env.dir.join("bad.json");
    std::fs::write(&not_json, "{\"syscalls\": 3").unwrap();
    let missing = env.dir.join("missing.json");
    let (bad_json, missing) = (
        format!("seccomp={}", not_json.display()),
        format!("seccomp={}", missing.display()),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--cap-add", "NET_FOO"],
            "unknown capability \"NET_FOO\"",
        ),
        (vec!["--cap-drop", "CAP_"], "unknown capability"),
        (vec!["--device", "/dev/bx-missing"], "/dev/bx-missing"),
        (
            vec!["--device", "/etc/passwd"],
            "not a character or block device",
        ),
        (vec!["--device", "dev/null"], "must be absolute"),
        (vec!["--ulimit", "nofile=2:1"], "soft limit is above"),
        (vec!["--ulimit", "files=10"], "invalid --ulimit"),
        (
            vec!["--security-opt", missing.as_str()],
            "cannot read seccomp profile",
        ),
        (
            vec!["--security-opt", bad_json.as_str()],
            "invalid seccomp profile",
        ),
        (
            vec!["--security-opt", "apparmor=x"],
            "unsupported --security-opt",
        ),
        (vec!["--shm-size", "lots"], "--shm-size"),
        (vec!["--label", "=x"], "invalid --label"),
        (vec!["--label", "a b=1"], "invalid --label"),
    ];
    for (opts, want) in cases {
        for cmd in ["create", "run"] {
            let mut args = vec![cmd];
            if cmd == "run" {
                args.push("-d");
            }
            args.extend(&opts);
            args.extend(["bb", "true"]);
            let err = env.fails(&args);
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }
    // A capability boxctl itself lacks (a sandboxed host may withhold some)
    // could never be given: refused at create, not at start.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = u64::from_str_radix(status_field(&status, "CapBnd"), 16).unwrap();
    let late = [
        ("SYS_RESOURCE", 24),
        ("PERFMON", 38),
        ("BPF", 39),
        ("CHECKPOINT_RESTORE", 40),
    ];
    if let Some((c, _)) = late.iter().find(|(_, n)| bounding & (1 << n) == 0) {
        let err = env.fails(&["create", "--cap-add", c, "bb", "true"]);
        assert!(err.contains("boxctl itself does not have it"), "{err}");
    }
    assert_eq!(env.ok(&["ps", "-a", "-q"]), "");
    assert!(env.instance_dirs().is_empty(), "{:?}", env.instance_dirs());
    env.assert_no_leaks(&[]);
}
