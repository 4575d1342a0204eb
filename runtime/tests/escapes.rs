//! Escape attempts from inside a container, each shown to fail (issue: security
//! hardening). Each check runs against boxrun and, for comparison, against runc when
//! /usr/sbin/runc is installed: a check runc also passes is known to test the escape,
//! not a boxrun quirk. Each also runs against an unprivileged container (its own user
//! namespace, as boxctl's instances by default, issue 19).

mod common;
use common::*;
use serde_json::json;
use std::os::unix::fs::MetadataExt;

/// Host uid and gid of root in [`unprivileged`] containers (above boxctl's pool of
/// ranges, 1,000,000,000 + 2,000,000,000 ids, so never one of its instances').
const USERNS_BASE: u32 = 3_500_000_000;

/// boxrun, then runc if present, then boxrun with an unprivileged container.
fn runtimes() -> Vec<Fixture> {
    let mut v = vec![Fixture::new()];
    if std::path::Path::new("/usr/sbin/runc").exists() {
        v.push(Fixture::with_runtime("/usr/sbin/runc"));
    }
    v.push(unprivileged());
    v
}

/// A container in its own user namespace, as boxctl runs its instances: root inside is
/// host uid/gid [`USERNS_BASE`], which owns the rootfs (boxctl's idmapped disk shows
/// the image that way on the host).
fn unprivileged() -> Fixture {
    let mut f = Fixture::new();
    let l = &mut f.config["linux"];
    l["namespaces"]
        .as_array_mut()
        .expect("spec namespaces")
        .push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": USERNS_BASE, "size": 65536}]);
    l["uidMappings"] = map.clone();
    l["gidMappings"] = map;
    let ids = format!("{USERNS_BASE}:{USERNS_BASE}");
    let st = std::process::Command::new("chown")
        .args(["-R", &ids])
        .arg(f.bundle.join("rootfs"))
        .status()
        .expect("run chown");
    assert!(st.success(), "chown -R {ids} rootfs failed");
    f.save();
    f
}

fn run_sh(f: &mut Fixture, id: &str, script: &str) -> std::process::Output {
    f.args(&["/bin/sh", "-c", script]);
    f.run(&["run", "--bundle", f.bundle.to_str().unwrap(), id])
}

#[test]
fn host_runtime_binary_is_not_reachable_through_proc() {
    for mut f in runtimes() {
        host_binary_check(&mut f);
    }
}

fn host_binary_check(f: &mut Fixture) {
    let meta = std::fs::metadata(&f.runtime).unwrap();
    let (dev, ino) = (meta.dev(), meta.ino());
    // Every /proc/*/exe the container can see must not be the host boxrun binary, and
    // writing through any of them must fail.
    let o = run_sh(f, "exe", "for p in /proc/[0-9]*; do stat -L -c '%d %i' $p/exe 2>/dev/null; (echo x >> $p/exe) 2>/dev/null && echo WROTE $p; done; true");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("WROTE"), "{out}");
    for l in out.lines() {
        let v: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() == 2 {
            assert!(
                !(v[0] == dev && v[1] == ino),
                "host boxrun binary visible in the container: {out}"
            );
        }
    }
    // the binary is unchanged
    assert_eq!(std::fs::metadata(&f.runtime).unwrap().len(), meta.len());
}

#[test]
fn exec_child_is_not_dumpable_while_it_enters() {
    // `boxrun exec` runs runtime code inside the container until exec; the child marks
    // itself non-dumpable first, so a container process cannot open its /proc/PID/exe.
    // Check the observable end of it: from a second exec, every runtime-owned process
    // visible in the container is either gone or not readable.
    for mut f in [Fixture::new(), unprivileged()] {
        f.args(&["/bin/sleep", "100"]);
        let c = f.create("d");
        assert!(c.status.success(), "{}", stderr(&c));
        assert!(f.run(&["start", "d"]).status.success());
        let o = f.run(&[
            "exec",
            "d",
            "/bin/sh",
            "-c",
            "for p in /proc/[0-9]*; do readlink $p/exe; done",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!stdout(&o).contains("boxrun"), "{}", stdout(&o));
    }
}

#[test]
fn cwd_through_leaked_fd_is_refused() {
    for mut f in runtimes() {
        cwd_check(&mut f);
    }
}

fn cwd_check(f: &mut Fixture) {
    // CVE-2024-21626: a cwd of /proc/self/fd/N must never land outside the container.
    f.config["root"]["readonly"] = false.into();
    for n in 3..9 {
        f.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let o = run_sh(
            f,
            &format!("cwd{n}"),
            "pwd; ls .. >/dev/null 2>&1; cat /proc/self/mountinfo | head -1",
        );
        if o.status.success() {
            let out = stdout(&o);
            assert!(
                !out.contains("unreachable"),
                "cwd outside the container with fd {n}: {out}"
            );
        }
    }
}

#[test]
fn no_mknod_no_host_processes_no_proc_sys_writes() {
    for mut f in runtimes() {
        privileges_check(&mut f);
    }
}

fn privileges_check(f: &mut Fixture) {
    f.config["root"]["readonly"] = false.into();
    let host_pid = std::process::id();
    let script = format!(
        "mknod /tmp/null c 1 3 2>/dev/null && echo MKNOD; \
         kill -0 {host_pid} 2>/dev/null && echo SEES-HOST; \
         ls /proc | grep -c '^[0-9]'; \
         echo x > /proc/sys/kernel/hostname 2>/dev/null && echo PROCSYS; \
         echo 1 > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ; \
         awk '{{print $5}}' /proc/self/mountinfo | grep -c '{}'; true",
        f.bundle.display()
    );
    let o = run_sh(f, "sec", &script);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for bad in ["MKNOD", "SEES-HOST", "PROCSYS", "SYSRQ"] {
        assert!(!out.contains(bad), "{}: {bad}: {out}", f.runtime.display());
    }
    let v: Vec<&str> = out.lines().collect();
    // the shell, ls and grep: a handful of processes, not the host's hundreds
    assert!(v[0].parse::<u32>().unwrap() <= 4, "{out}");
    assert_eq!(
        v[1], "0",
        "host mount points in the container's mount table: {out}"
    );
}
