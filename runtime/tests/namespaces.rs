//! linux.namespaces: new ones, joined ones, wrong types, user namespace mappings.

mod common;
use common::*;
use serde_json::json;
use std::os::unix::fs::MetadataExt;

fn ns_inode(pid: &str, name: &str) -> u64 {
    std::fs::metadata(format!("/proc/{pid}/ns/{name}"))
        .unwrap()
        .ino()
}

#[test]
fn new_namespaces_differ_from_host_and_missing_ones_are_shared() {
    let mut f = Fixture::new();
    // no ipc namespace: shared with the host
    f.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "network"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}]);
    f.args(&[
        "/bin/sh",
        "-c",
        "echo $$; for n in pid net uts mnt cgroup ipc; do stat -L -c %i /proc/self/ns/$n; done",
    ]);
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "ns"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let v: Vec<&str> = out.lines().collect();
    assert_eq!(v[0], "1", "not pid 1 in its pid namespace");
    for (i, n) in ["pid", "net", "uts", "mnt", "cgroup"].iter().enumerate() {
        assert_ne!(
            v[i + 1].parse::<u64>().unwrap(),
            ns_inode("self", n),
            "{n} shared with host"
        );
    }
    assert_eq!(
        v[6].parse::<u64>().unwrap(),
        ns_inode("self", "ipc"),
        "ipc not shared"
    );
}

#[test]
fn join_namespace_by_path_and_wrong_type() {
    let mut f = Fixture::new();
    // a holder container whose network namespace a second container joins
    f.args(&["/bin/sleep", "100"]);
    assert!(f.create("holder").status.success());
    let pid = f.state("holder")["pid"].as_i64().unwrap().to_string();
    let mut g = Fixture::new();
    g.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "network", "path": format!("/proc/{pid}/ns/net")}]);
    g.args(&["/bin/sh", "-c", "stat -L -c %i /proc/self/ns/net"]);
    let o = g.run(&["run", "--bundle", g.bundle.to_str().unwrap(), "joiner"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim().parse::<u64>().unwrap(),
        ns_inode(&pid, "net")
    );
    // a path to a namespace of another type is an error that leaves nothing behind
    g.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "network", "path": format!("/proc/{pid}/ns/uts")}]);
    g.save();
    let o = g.run(&["run", "--bundle", g.bundle.to_str().unwrap(), "wrong"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a net namespace"), "{}", stderr(&o));
    assert!(!g.root.join("wrong").exists());
}

#[test]
fn user_namespace_with_mappings() {
    let mut f = Fixture::userns();
    f.args(&[
        "/bin/sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; ls -n /dev/null",
    ]);
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "userns"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let norm: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(norm[0], "0 100000 65536");
    assert_eq!(norm[1], "0 100000 65536");
    assert_eq!(norm[2], "0");
}

/// A new user namespace with a network namespace the host made (by path, as boxctl or
/// podman pass one): the init is born in it (joined from inside its user namespace it
/// would be refused), and `exec` enters it too.
#[test]
fn user_namespace_joins_a_host_network_namespace_by_path() {
    let mut holder = Fixture::new();
    holder.args(&["/bin/sleep", "100"]);
    assert!(holder.create("netholder").status.success());
    let pid = holder.state("netholder")["pid"]
        .as_i64()
        .unwrap()
        .to_string();
    let mut f = Fixture::userns();
    let ns = f.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "network", "path": format!("/proc/{pid}/ns/net")}));
    f.args(&["/bin/sleep", "100"]);
    let o = f.create("usernet");
    assert!(o.status.success(), "{}", stderr(&o));
    let init = f.state("usernet")["pid"].as_i64().unwrap().to_string();
    assert_eq!(ns_inode(&init, "net"), ns_inode(&pid, "net"));
    assert_ne!(ns_inode(&init, "user"), ns_inode("self", "user"));
    // the runtime went back to its own network namespace: the host's is untouched
    assert_ne!(ns_inode(&pid, "net"), ns_inode("self", "net"));
    let o = f.run(&[
        "exec",
        "usernet",
        "/bin/sh",
        "-c",
        "stat -L -c %i /proc/self/ns/net; id -u",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let v: Vec<&str> = out.lines().collect();
    assert_eq!(v[0].parse::<u64>().unwrap(), ns_inode(&pid, "net"));
    assert_eq!(v[1], "0");
}

/// The init of a user namespace cannot open the host's cgroup files: it moves itself
/// into its v1 cgroups through `tasks` files the runtime opened and passed to it.
#[test]
fn user_namespace_init_joins_every_cgroup_hierarchy() {
    let mut f = Fixture::userns();
    f.args(&["/bin/sleep", "100"]);
    let o = f.create("usercg");
    assert!(o.status.success(), "create: {}", stderr(&o));
    let pid = f.state("usercg")["pid"].as_i64().unwrap() as i32;
    assert_in_cgroup_everywhere(pid, "boxrun/usercg");
    let o = f.run(&["delete", "--force", "usercg"]);
    assert!(o.status.success(), "delete: {}", stderr(&o));
}

/// podman creates the state root under conmon's umask (0700 here): the mapped root of
/// a user namespace cannot traverse it, so the init must never reach its exec fifo by
/// path (regression: `open /run/boxrun/<id>/exec.fifo: EACCES` under `podman --uidmap`).
#[test]
fn user_namespace_init_with_a_private_state_root() {
    use std::os::unix::fs::PermissionsExt;
    let mut f = Fixture::userns();
    std::fs::create_dir_all(&f.root).unwrap();
    std::fs::set_permissions(&f.root, std::fs::Permissions::from_mode(0o700)).unwrap();
    f.args(&["/bin/sh", "-c", "id -u"]);
    let o = f.create("private");
    assert!(o.status.success(), "create: {}", stderr(&o));
    let o = f.run(&["start", "private"]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    f.wait_stopped("private");
    assert_eq!(f.container_stdout("private").trim(), "0");
}

/// `linux.timeOffsets` with a user namespace: the offsets are written before the
/// identity change makes the init non-dumpable (its /proc/self files would then belong
/// to the host's root), so the container sees them (issue 22 item 5).
#[test]
fn time_offsets_apply_in_a_user_namespace() {
    let mut f = Fixture::userns();
    let mut ns = f.config["linux"]["namespaces"].as_array().unwrap().clone();
    ns.push(json!({"type": "time"}));
    f.config["linux"]["namespaces"] = json!(ns);
    f.config["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 172800, "nanosecs": 0}});
    f.args(&["/bin/cat", "/proc/self/timens_offsets"]);
    let o = f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), "tns"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let norm: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(norm.contains(&"monotonic 86400 0".to_string()), "{out}");
    assert!(norm.contains(&"boottime 172800 0".to_string()), "{out}");
}
