//! The order of the init's set-up, through the recording fake: no root needed, nothing
//! is mounted. Each test runs the real `setup` on a temporary rootfs (directories it
//! creates there are real, every privileged call is only logged) up to the exec.

use super::*;
use crate::syscall::recording::Recording;
use nix::errno::Errno;
use serde_json::{json, Value};

/// A bundle directory with an empty rootfs and bind sources, removed on drop.
struct Bundle {
    dir: PathBuf,
    rootfs: PathBuf,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir =
            std::env::temp_dir().join(format!("boxrun-init-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs).expect("create test rootfs");
        std::fs::create_dir_all(dir.join("data")).expect("create bind source dir");
        std::fs::write(dir.join("hosts"), "127.0.0.1 localhost\n").expect("create bind source");
        Bundle { dir, rootfs }
    }

    fn fake(&self) -> Recording {
        Recording::new(&self.dir, &self.rootfs)
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A spec from `base()` with the top-level keys of `over` replaced (and `linux`'s merged).
fn spec(over: Value) -> Spec {
    let mut v = json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {
            "cwd": "/",
            "args": ["/bin/sh"],
            "env": ["PATH=/usr/bin:/bin"],
            "user": {"uid": 0, "gid": 0}
        },
        "linux": {"namespaces": [{"type": "mount"}]}
    });
    if let Value::Object(o) = over {
        for (k, val) in o {
            if let (Some(Value::Object(base)), "linux", Value::Object(l)) =
                (v.get_mut("linux"), k.as_str(), &val)
            {
                for (lk, lv) in l {
                    base.insert(lk.clone(), lv.clone());
                }
            } else {
                v[k] = val;
            }
        }
    }
    serde_json::from_value(v).expect("test spec")
}

/// Run `setup` with `sys`; the error it ends with (the fake's exec never replaces us).
fn run(b: &Bundle, spec: &Spec, no_pivot: bool, sys: &Recording) -> Error {
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let plan = crate::namespaces::plan(&list).expect("namespace plan");
    let (parent, child) = crate::sync::pair().expect("socketpair");
    // What the runtime would send: the id maps are written, the init is in its cgroup.
    if plan.new_user {
        parent.send(ToInit::Go).expect("send go");
    }
    parent
        .send(ToInit::CgroupJoined)
        .expect("send cgroup joined");
    let ctx = InitCtx {
        spec,
        rootfs: &b.rootfs,
        bundle: &b.dir,
        state_dir: &b.dir,
        ns: &plan,
        cgroup: None,
        seccomp: None,
        console_socket: None,
        no_pivot,
        wait_fifo: false,
        fifo: None,
        preserve_fds: 0,
        extra_env: Vec::new(),
        runtime_hooks: false,
        no_new_keyring: false,
        id: "t1",
        close_fds: Vec::new(),
        bind_sources: &[],
    };
    match setup(&ctx, &child, sys) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// The calls of a run that reached the exec.
fn calls_to_exec(b: &Bundle, spec: &Spec, no_pivot: bool, sys: &Recording) -> Vec<String> {
    let err = run(b, spec, no_pivot, sys);
    let calls = sys.calls();
    assert!(
        calls.last().is_some_and(|c| c.starts_with("exec ")),
        "set-up stopped before exec: {err}\n{calls:#?}"
    );
    calls
}

/// The lines of `calls` that start with `prefix`.
fn matching<'a>(calls: &'a [String], prefix: &str) -> Vec<&'a str> {
    calls
        .iter()
        .filter(|c| c.starts_with(prefix))
        .map(String::as_str)
        .collect()
}

/// Index of the first line equal to `line`.
fn pos(calls: &[String], line: &str) -> usize {
    calls
        .iter()
        .position(|c| c == line)
        .unwrap_or_else(|| panic!("no call {line:?} in {calls:#?}"))
}

/// Index of the last line equal to `line`.
fn rpos(calls: &[String], line: &str) -> usize {
    calls
        .iter()
        .rposition(|c| c == line)
        .unwrap_or_else(|| panic!("no call {line:?} in {calls:#?}"))
}

/// Assert `want` appears in `calls` as consecutive lines.
fn assert_run(calls: &[String], want: &[&str]) {
    assert!(
        calls.windows(want.len()).any(|w| w == want),
        "{want:#?} not found in a row in {calls:#?}"
    );
}

/// The kind of config a container engine sends.
fn representative() -> Spec {
    spec(json!({
        "hostname": "box",
        "domainname": "example.org",
        "process": {
            "cwd": "/",
            "args": ["/bin/sh"],
            "env": ["PATH=/usr/bin:/bin"],
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [10]},
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_KILL"],
                "effective": ["CAP_KILL"],
                "permitted": ["CAP_KILL"],
                "inheritable": [],
                "ambient": ["CAP_KILL"]
            },
            "noNewPrivileges": true
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "hosts", "options": ["bind", "ro"]},
            {"destination": "/data", "source": "data", "options": ["rbind", "rprivate"]}
        ],
        "linux": {
            "namespaces": [{"type": "mount"}, {"type": "uts"}, {"type": "network"}, {"type": "pid"}],
            "sysctl": {"net.ipv4.ip_forward": "1"},
            "maskedPaths": ["/proc/kcore", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys"]
        }
    }))
}

/// The fake told that /sys/firmware is a directory (binding /dev/null on it would fail).
fn fake_with_dirs(b: &Bundle) -> Recording {
    let sys = b.fake();
    sys.dir("/sys/firmware");
    sys.fail("mount /dev/null /sys/firmware ", Errno::ENOTDIR);
    sys
}

/// The calls of a run (to exec, with pivot_root) of `spec(over)`.
fn calls_of(name: &str, over: Value) -> Vec<String> {
    let b = Bundle::new(name);
    calls_to_exec(&b, &spec(over), false, &b.fake())
}

/// The calls of the representative config set up with pivot_root.
fn representative_calls(name: &str) -> Vec<String> {
    let b = Bundle::new(name);
    calls_to_exec(&b, &representative(), false, &fake_with_dirs(&b))
}

#[test]
fn mounts_follow_the_config_order_with_their_flags() {
    let calls = representative_calls("mounts");
    let from = pos(&calls, "mount <rootfs> <rootfs> bind BIND|REC -") + 1;
    let to = pos(&calls, "mknod <rootfs>/dev/null c 1:3 666");
    let mounts: Vec<&str> = calls[from..to]
        .iter()
        .filter(|c| c.starts_with("mount "))
        .map(String::as_str)
        .collect();
    assert_eq!(
        mounts,
        [
            "mount proc <rootfs>/proc proc NOSUID|NODEV|NOEXEC -",
            "mount tmpfs <rootfs>/dev tmpfs NOSUID|STRICTATIME mode=755,size=65536k",
            "mount devpts <rootfs>/dev/pts devpts NOSUID|NOEXEC newinstance,ptmxmode=0666,mode=0620",
            "mount <bundle>/hosts <rootfs>/etc/hosts - BIND -",
            "mount - <rootfs>/etc/hosts - RDONLY|REMOUNT|BIND -",
            "mount <bundle>/data <rootfs>/data - BIND|REC -",
            "mount - <rootfs>/data - REC|PRIVATE -",
        ]
    );
}

#[test]
fn a_read_only_bind_is_a_bind_then_a_remount_and_a_plain_bind_no_remount() {
    let calls = calls_of(
        "robind",
        json!({"mounts": [
            {"destination": "/ro", "type": "bind", "source": "data", "options": ["rbind", "ro", "nosuid", "nodev"]},
            {"destination": "/rw", "type": "bind", "source": "data", "options": ["rbind"]},
            {"destination": "/rro", "type": "bind", "source": "data", "options": ["rbind", "rro"]}
        ]}),
    );
    assert_run(
        &calls,
        &[
            "mount <bundle>/data <rootfs>/ro - BIND|REC -",
            "mount - <rootfs>/ro - RDONLY|NOSUID|NODEV|REMOUNT|BIND -",
            "mount <bundle>/data <rootfs>/rw - BIND|REC -",
            "mount <bundle>/data <rootfs>/rro - BIND|REC -",
            "mount - <rootfs>/rro - RDONLY|REMOUNT|BIND -",
            "mount_setattr recursive <rootfs>/rro set=0x1 clr=0x0",
        ],
    );
}

#[test]
fn a_remount_refused_for_locked_flags_is_retried_once_keeping_them() {
    let b = Bundle::new("locked");
    let s = spec(json!({"mounts": [
        {"destination": "/ro", "type": "bind", "source": "data", "options": ["bind", "ro"]}
    ]}));
    let good = calls_to_exec(&b, &s, false, &b.fake());
    let sys = b.fake();
    sys.fail_nth(
        pos(&good, "mount - <rootfs>/ro - RDONLY|REMOUNT|BIND -"),
        Errno::EPERM,
    );
    let calls = calls_to_exec(&b, &s, false, &sys);
    assert_eq!(
        matching(&calls, "mount - <rootfs>/ro "),
        [
            "mount - <rootfs>/ro - RDONLY|REMOUNT|BIND -",
            "mount - <rootfs>/ro - RDONLY|REMOUNT|BIND -"
        ]
    );
}

#[test]
fn rootfs_propagation_is_set_on_slash_first_and_applied_after_pivot() {
    for (mode, first, last) in [
        (None, "REC|SLAVE", None),
        (Some("rslave"), "REC|SLAVE", None),
        (Some("private"), "REC|PRIVATE", Some("PRIVATE")),
        (Some("rprivate"), "REC|PRIVATE", Some("REC|PRIVATE")),
        // Shared modes as runc: `/` shared first, the rootfs's parent mount private.
        (Some("shared"), "SHARED", Some("SHARED")),
        (Some("rshared"), "REC|SHARED", Some("REC|SHARED")),
        (Some("unbindable"), "REC|SLAVE", Some("UNBINDABLE")),
    ] {
        let b = Bundle::new("propagation");
        let mut linux = json!({"namespaces": [{"type": "mount"}]});
        if let Some(m) = mode {
            linux["rootfsPropagation"] = m.into();
        }
        let s = spec(json!({"linux": linux}));
        let sys = b.fake();
        let calls = calls_to_exec(&b, &s, false, &sys);
        // The parent mount of the rootfs, made private when the host shares it.
        let mut mounts = matching(&calls, "mount ");
        mounts.retain(|m| !m.ends_with(" - PRIVATE -") || m.starts_with("mount - / "));
        assert_eq!(
            mounts[..2],
            [
                format!("mount - / - {first} -"),
                "mount <rootfs> <rootfs> bind BIND|REC -".to_string()
            ],
            "{mode:?}"
        );
        let after_pivot = &calls[pos(&calls, "umount2 . MNT_DETACH") + 2..];
        match last {
            Some(f) => assert_eq!(after_pivot[0], format!("mount - / - {f} -"), "{mode:?}"),
            None => assert!(
                matching(after_pivot, "mount - / ").is_empty(),
                "{mode:?}: {calls:#?}"
            ),
        }
    }
}

#[test]
fn an_unknown_rootfs_propagation_fails_before_any_mount() {
    let b = Bundle::new("badprop");
    let s = spec(json!({"linux": {"rootfsPropagation": "sideways"}}));
    let sys = b.fake();
    let err = run(&b, &s, false, &sys);
    assert!(err.to_string().contains("sideways"), "{err}");
    assert!(matching(&sys.calls(), "mount").is_empty());
}

#[test]
fn pivot_root_comes_after_devices_and_detaches_the_old_root() {
    let calls = representative_calls("pivot");
    assert_run(
        &calls,
        &[
            "symlink <rootfs>/dev/ptmx -> pts/ptmx",
            "chdir <rootfs>",
            "pivot_root . .",
            "fchdir /",
            "mount - . - REC|SLAVE -",
            "umount2 . MNT_DETACH",
            "chdir /",
        ],
    );
    assert!(matching(&calls, "chroot").is_empty());
}

#[test]
fn no_pivot_moves_the_rootfs_onto_slash_and_chroots() {
    let b = Bundle::new("nopivot");
    let sys = fake_with_dirs(&b);
    let calls = calls_to_exec(&b, &representative(), true, &sys);
    assert_run(
        &calls,
        &[
            "chdir <rootfs>",
            "mount <rootfs> / - MOVE -",
            "chroot .",
            "chdir /",
        ],
    );
    assert!(matching(&calls, "pivot_root").is_empty());
    // First the host's full procfs (as runc's msMoveRoot): slave, then detached.
    let proc_at = pos(&calls, "umount2 /proc MNT_DETACH");
    assert_eq!(calls[proc_at - 1], "mount - /proc - REC|SLAVE -");
    assert!(proc_at < pos(&calls, "mount <rootfs> / - MOVE -"));
}

#[test]
fn without_a_mount_namespace_the_init_chroots_and_mounts_nothing() {
    let calls = calls_of(
        "nomntns",
        json!({
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": "uts"}], "maskedPaths": ["/proc/kcore"]}
        }),
    );
    assert!(matching(&calls, "mount").is_empty(), "{calls:#?}");
    assert!(matching(&calls, "mknod").is_empty(), "{calls:#?}");
    assert_run(&calls, &["chroot <rootfs>", "chdir /"]);
}

#[test]
fn masked_paths_bind_dev_null_on_files_and_read_only_tmpfs_on_directories() {
    let b = Bundle::new("masked");
    let s = spec(json!({"linux": {"maskedPaths": [
        "/proc/kcore", "/sys/firmware", "/proc/acpi", "/proc/absent"
    ]}}));
    let sys = b.fake();
    // A directory stat recognises gets its tmpfs without a failing bind first.
    sys.dir("/sys/firmware");
    sys.fail("mount /dev/null /sys/firmware ", Errno::ENOTDIR);
    // One stat did not call a directory: the bind's ENOTDIR still leads to the tmpfs.
    sys.fail("mount /dev/null /proc/acpi ", Errno::ENOTDIR);
    sys.fail("mount /dev/null /proc/absent ", Errno::ENOENT);
    let calls = calls_to_exec(&b, &s, false, &sys);
    let after_pivot = &calls[pos(&calls, "umount2 . MNT_DETACH")..];
    assert_eq!(
        matching(after_pivot, "mount "),
        [
            "mount /dev/null /proc/kcore - BIND -",
            "mount tmpfs /sys/firmware tmpfs RDONLY -",
            "mount /dev/null /proc/acpi - BIND -",
            "mount tmpfs /proc/acpi tmpfs RDONLY -",
            "mount /dev/null /proc/absent - BIND -",
        ]
    );
}

#[test]
fn readonly_paths_are_bound_and_remounted_before_masking_and_the_root_last() {
    let calls = calls_of(
        "readonly",
        json!({
            "root": {"path": "rootfs", "readonly": true},
            "linux": {"readonlyPaths": ["/proc/sys", "/proc/bus"], "maskedPaths": ["/proc/kcore"]}
        }),
    );
    let after_pivot = &calls[pos(&calls, "umount2 . MNT_DETACH")..];
    assert_eq!(
        matching(after_pivot, "mount "),
        [
            "mount /proc/sys /proc/sys - BIND|REC -",
            "mount - /proc/sys - RDONLY|REMOUNT|BIND|REC -",
            "mount /proc/bus /proc/bus - BIND|REC -",
            "mount - /proc/bus - RDONLY|REMOUNT|BIND|REC -",
            "mount /dev/null /proc/kcore - BIND -",
            "mount - / - RDONLY|REMOUNT|BIND -",
        ]
    );
}

#[test]
fn names_and_namespaces_come_before_the_rootfs_and_sysctls_after_pivot() {
    let calls = representative_calls("names");
    assert_eq!(
        calls[..6],
        [
            "unshare net",
            "loopback up",
            "setsid",
            "keyring _ses.t1",
            "sethostname box",
            "setdomainname example.org",
        ]
    );
    assert!(pos(&calls, "setdomainname example.org") < pos(&calls, "mount - / - REC|SLAVE -"));
    let sysctl = pos(&calls, "write /proc/sys/net/ipv4/ip_forward 1");
    assert!(sysctl > pos(&calls, "pivot_root . ."));
    assert!(sysctl < pos(&calls, "mount /proc/sys /proc/sys - BIND|REC -"));
}

#[test]
fn an_empty_hostname_is_not_set() {
    let calls = calls_of("nohostname", json!({"hostname": ""}));
    assert!(matching(&calls, "sethostname").is_empty());
    assert!(matching(&calls, "setdomainname").is_empty());
}

#[test]
fn device_nodes_are_made_in_list_order_under_umask_0_then_the_dev_links() {
    let calls = calls_of(
        "devices",
        json!({"linux": {"devices": [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 432},
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
            {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0, "uid": 5, "gid": 6}
        ]}}),
    );
    assert_eq!(
        matching(&calls, "mknod "),
        [
            "mknod <rootfs>/dev/fuse c 10:229 660",
            "mknod <rootfs>/dev/null c 1:3 666",
            "mknod <rootfs>/dev/sda b 8:0 666",
            "mknod <rootfs>/dev/zero c 1:5 666",
            "mknod <rootfs>/dev/full c 1:7 666",
            "mknod <rootfs>/dev/random c 1:8 666",
            "mknod <rootfs>/dev/urandom c 1:9 666",
            "mknod <rootfs>/dev/tty c 5:0 666",
        ]
    );
    // A node owned by someone else is chowned (and given its mode) right after mknod.
    assert_run(
        &calls,
        &[
            "mknod <rootfs>/dev/sda b 8:0 666",
            "chown <rootfs>/dev/sda 5:6",
            "chmod <rootfs>/dev/sda 666",
        ],
    );
    let first = pos(&calls, "mknod <rootfs>/dev/fuse c 10:229 660");
    assert_eq!(calls[first - 1], "umask 0");
    let last_node = pos(&calls, "mknod <rootfs>/dev/tty c 5:0 666");
    let links = pos(&calls, "symlink <rootfs>/dev/fd -> /proc/self/fd");
    assert!(last_node < links);
    assert!(matching(&calls, "mount /dev/").is_empty());
}

#[test]
fn in_a_user_namespace_devices_are_bind_mounted_not_made() {
    let calls = calls_of(
        "userns",
        json!({"linux": {"namespaces": [{"type": "user"}, {"type": "mount"}]}}),
    );
    assert_eq!(calls[..2], ["setresgid 0", "setresuid 0"]);
    assert!(matching(&calls, "mknod").is_empty(), "{calls:#?}");
    assert_eq!(
        matching(&calls, "mount /dev/"),
        [
            "mount /dev/null <rootfs>/dev/null - BIND -",
            "mount /dev/zero <rootfs>/dev/zero - BIND -",
            "mount /dev/full <rootfs>/dev/full - BIND -",
            "mount /dev/random <rootfs>/dev/random - BIND -",
            "mount /dev/urandom <rootfs>/dev/urandom - BIND -",
            "mount /dev/tty <rootfs>/dev/tty - BIND -",
        ]
    );
}

#[test]
fn a_bind_mounted_dev_gets_no_nodes_and_no_links() {
    let calls = calls_of(
        "devbind",
        json!({"mounts": [
            {"destination": "/dev", "type": "bind", "source": "data", "options": ["rbind"]}
        ]}),
    );
    assert!(matching(&calls, "mknod").is_empty());
    assert!(matching(&calls, "symlink").is_empty());
    assert_run(
        &calls,
        &[
            "mount <bundle>/data <rootfs>/dev - BIND|REC -",
            "chdir <rootfs>",
        ],
    );
}

#[test]
fn capabilities_are_bounded_before_the_uid_switch_and_set_after_it() {
    let calls = representative_calls("caps");
    let drops = matching(&calls, "cap_drop_bound ");
    // Everything but CAP_CHOWN (0) and CAP_KILL (5), up to the kernel's last (40 here).
    assert_eq!(drops.len(), 39);
    assert!(!drops.contains(&"cap_drop_bound 0") && !drops.contains(&"cap_drop_bound 5"));
    let last_drop = rpos(&calls, "cap_drop_bound 40");
    assert_eq!(
        calls[last_drop + 1..],
        [
            "keepcaps 1",
            "setgroups [10]",
            "setresgid 1000",
            "setresuid 1000",
            "keepcaps 0",
            "capset e=0x20 p=0x20 i=0x0",
            "ambient clear",
            "ambient raise 5",
            "umask 22",
            "no_new_privs",
            "exec /bin/sh /bin/sh",
        ]
    );
    // The process's cwd is entered before the bounding set is touched (runc's order),
    // and only then (again as the user only when it was denied).
    assert_eq!(calls[pos(&calls, "cap_drop_bound 1") - 1], "chdir /");
}

/// Calls whose failure the set-up ignores on purpose (as runc does).
const IGNORED: &[&str] = &["setsid", "keyring ", "umask ", "keepcaps ", "ambient "];

#[test]
fn a_failure_at_any_step_stops_the_set_up_at_that_step() {
    let b = Bundle::new("failnth");
    let good = calls_to_exec(&b, &representative(), false, &fake_with_dirs(&b));
    for (n, step) in good.iter().enumerate() {
        let sys = fake_with_dirs(&b);
        sys.fail_nth(n, Errno::EIO);
        let err = run(&b, &representative(), false, &sys);
        let calls = sys.calls();
        if IGNORED.iter().any(|p| step.starts_with(p)) {
            assert_eq!(
                calls, good,
                "an ignored failure of {step:?} changed the set-up"
            );
            continue;
        }
        // Only a umask being put back may follow the failed call.
        assert_eq!(calls[..=n], good[..=n]);
        assert!(
            calls[n + 1..].iter().all(|c| c.starts_with("umask ")),
            "failing {step:?} did not stop there: {calls:#?}"
        );
        // nix words it "EIO: …", std::io "… (os error 5)".
        let e = err.to_string();
        assert!(
            e.contains("EIO") || e.contains("os error 5"),
            "{step:?}: {e}"
        );
    }
}

#[test]
fn the_error_of_a_failed_step_names_it() {
    for (prefix, named) in [
        ("unshare net", "unshare namespaces"),
        ("sethostname", "set hostname \"box\""),
        ("setdomainname", "set domainname \"example.org\""),
        ("mount - / - REC|SLAVE", "set propagation of /"),
        ("mount proc ", "mount proc on /proc"),
        ("mount - <rootfs>/etc/hosts ", "remount /proc/self/fd/"),
        ("mknod <rootfs>/dev/tty ", "mknod /dev/tty"),
        ("symlink <rootfs>/dev/ptmx", "symlink /dev/ptmx"),
        ("pivot_root", "pivot_root "),
        ("umount2", "detach old root"),
        (
            "write /proc/sys/net/ipv4/ip_forward",
            "linux.sysctl net.ipv4.ip_forward=1",
        ),
        ("mount /dev/null /proc/kcore", "mask /proc/kcore"),
        ("mount - /proc/sys ", "remount /proc/sys"),
        ("cap_drop_bound 7", "drop capability 7 from bounding set"),
        ("setgroups", "setgroups"),
        ("setresuid 1000", "setresuid 1000"),
        ("capset", "set capabilities"),
        ("no_new_privs", "set no_new_privs"),
        ("exec", "exec /bin/sh"),
    ] {
        let b = Bundle::new("named");
        let sys = fake_with_dirs(&b);
        sys.fail(prefix, Errno::EIO);
        let err = run(&b, &representative(), false, &sys).to_string();
        let calls = sys.calls();
        assert!(
            calls
                .iter()
                .rfind(|c| !c.starts_with("umask "))
                .is_some_and(|c| c.starts_with(prefix)),
            "{prefix:?}: the set-up went on after the failure: {calls:#?}"
        );
        assert!(
            err.contains(named),
            "{prefix:?}: error {err:?} does not name {named:?}"
        );
    }
}
