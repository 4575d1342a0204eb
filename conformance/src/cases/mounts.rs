//! `mounts`, `root.readonly`, `linux.rootfsPropagation`, `linux.maskedPaths`,
//! `linux.readonlyPaths`.

use crate::check;
use crate::runner::{Case, CaseResult, Ctx};
use serde_json::json;

/// Cases of this area.
pub const CASES: &[Case] = &[
    Case {
        name: "mounts.default",
        run: default,
    },
    Case {
        name: "mounts.bind-ro",
        run: bind_ro,
    },
    Case {
        name: "mounts.tmpfs-options",
        run: tmpfs_options,
    },
    Case {
        name: "mounts.order-nested",
        run: order_nested,
    },
    Case {
        name: "mounts.propagation-rslave",
        run: |c| propagation(c, "rslave"),
    },
    Case {
        name: "mounts.propagation-rshared",
        run: |c| propagation(c, "rshared"),
    },
    Case {
        name: "mounts.propagation-rprivate",
        run: |c| propagation(c, "rprivate"),
    },
    Case {
        name: "mounts.root-readonly",
        run: |c| root_ro(c, true),
    },
    Case {
        name: "mounts.root-absolute-path",
        run: root_absolute,
    },
    Case {
        name: "mounts.root-readwrite",
        run: |c| root_ro(c, false),
    },
    Case {
        name: "mounts.rootfsPropagation-private",
        run: |c| rootfs_prop(c, "private"),
    },
    Case {
        name: "mounts.rootfsPropagation-slave",
        run: |c| rootfs_prop(c, "slave"),
    },
    Case {
        name: "mounts.rootfsPropagation-shared",
        run: |c| rootfs_prop(c, "shared"),
    },
    Case {
        name: "mounts.rootfsPropagation-unbindable",
        run: |c| rootfs_prop(c, "unbindable"),
    },
    Case {
        name: "mounts.rootfsPropagation-slave-receives",
        run: slave_receives,
    },
    Case {
        name: "mounts.maskedPaths",
        run: masked,
    },
    Case {
        name: "mounts.readonlyPaths",
        run: readonly,
    },
    Case {
        name: "mounts.recursive-options",
        run: recursive_options,
    },
];

fn default(c: &mut Ctx) -> CaseResult {
    c.expect_checks(&["mounts.", "root."])
}

fn bind_ro(c: &mut Ctx) -> CaseResult {
    let src = c.dir.join("data");
    std::fs::create_dir_all(&src).map_err(anyhow::Error::from)?;
    std::fs::write(src.join("f"), b"x").map_err(anyhow::Error::from)?;
    c.push_mount(json!({
        "destination": "/mnt/data", "type": "bind",
        "source": src.to_string_lossy(), "options": ["rbind", "ro", "nosuid", "nodev"]
    }));
    c.expect_checks(&["mounts."])
}

fn tmpfs_options(c: &mut Ctx) -> CaseResult {
    c.push_mount(json!({
        "destination": "/mnt/tmp", "type": "tmpfs", "source": "octmp",
        "options": ["nosuid", "nodev", "noexec", "noatime", "mode=700", "size=1m", "uid=7", "gid=8"]
    }));
    c.expect_checks(&["mounts."])
}

fn order_nested(c: &mut Ctx) -> CaseResult {
    c.push_mount(json!({"destination": "/mnt/a", "type": "tmpfs", "source": "oc-a", "options": ["mode=755"]}));
    c.push_mount(json!({"destination": "/mnt/a/b", "type": "tmpfs", "source": "oc-b", "options": ["mode=711"]}));
    c.push_mount(json!({"destination": "/mnt/c", "type": "tmpfs", "source": "oc-c"}));
    c.expect_checks(&["mounts."])
}

fn propagation(c: &mut Ctx, p: &str) -> CaseResult {
    let src = c.dir.join("prop");
    std::fs::create_dir_all(&src).map_err(anyhow::Error::from)?;
    // A shared source, so rslave has a master (a slave of a private mount
    // stays private).
    c.make_shared_mount(&src)?;
    c.push_mount(json!({
        "destination": "/mnt/prop", "type": "bind",
        "source": src.to_string_lossy(), "options": ["rbind", p]
    }));
    c.expect_checks(&["mounts./mnt/prop"])
}

fn root_ro(c: &mut Ctx, ro: bool) -> CaseResult {
    c.config["root"]["readonly"] = json!(ro);
    c.expect_checks(&["root.readonly"])
}

fn rootfs_prop(c: &mut Ctx, p: &str) -> CaseResult {
    c.config["linux"]["rootfsPropagation"] = json!(p);
    // The rootfs is made a shared mount point on the host first, so slave
    // and shared have a peer group to refer to.
    let rootfs = c.rootfs();
    c.make_shared_mount(&rootfs)?;
    c.expect_checks(&["rootfsPropagation"])
}

fn masked(c: &mut Ctx) -> CaseResult {
    if let Some(a) = c.config["linux"]["maskedPaths"].as_array_mut() {
        a.push(json!("/proc/cpuinfo"));
        a.push(json!("/etc"));
    }
    c.expect_checks(&["maskedPaths"])
}

fn readonly(c: &mut Ctx) -> CaseResult {
    c.config["root"]["readonly"] = json!(false);
    if let Some(a) = c.config["linux"]["readonlyPaths"].as_array_mut() {
        a.push(json!("/var"));
        a.push(json!("/etc/passwd"));
    }
    c.expect_checks(&["readonlyPaths"])
}

/// Behavioural form of rootfsPropagation=slave: "the rootfs mount receives
/// propagation events from the host (e.g. if something is mounted on the host
/// it will also appear in the container)".
fn slave_receives(c: &mut Ctx) -> CaseResult {
    c.config["linux"]["rootfsPropagation"] = json!("slave");
    let rootfs = c.rootfs();
    let probe = rootfs.join("mnt/oc-probe");
    std::fs::create_dir_all(&probe).map_err(anyhow::Error::from)?;
    c.make_shared_mount(&rootfs)?;
    c.set_args(&["/bin/sleep", "600"]);
    let id = c.id(1);
    c.create(&id)?;
    c.rt_ok(&["start", &id])?;
    let p = std::ffi::CString::new(probe.as_os_str().as_encoded_bytes())
        .map_err(anyhow::Error::from)?;
    let fstype = c"tmpfs";
    // SAFETY: valid C strings; mounts a tmpfs under the case directory,
    // which the case cleanup detaches.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            p.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(anyhow::anyhow!(
            "mount tmpfs on {}: {}",
            probe.display(),
            std::io::Error::last_os_error()
        )
        .into());
    }
    let out = c.rt_ok(&["exec", &id, "/bin/cat", "/proc/self/mountinfo"])?;
    check!(
        out.stdout.lines().any(|l| l.split(' ').nth(4) == Some("/mnt/oc-probe")),
        "a tmpfs mounted on the host at rootfs/mnt/oc-probe after start is not visible in the container"
    );
    Ok(())
}

fn root_absolute(c: &mut Ctx) -> CaseResult {
    let abs = c.bundle.join("rootfs");
    c.config["root"]["path"] = json!(abs.to_string_lossy());
    c.expect_checks(&["root.readonly", "process.args"])
}

/// The recursive options (`rro`, `rnosuid`, `rnodev`, `rnoexec`, `rnoatime`,
/// `rnodiratime`) hold on the mount and on the mount below it, as the checker
/// sees in mountinfo. A runtime that drops them fails; one that refuses them
/// counts as unsupported.
fn recursive_options(c: &mut Ctx) -> CaseResult {
    let src = c.rootfs().join("recsrc");
    std::fs::create_dir_all(src.join("sub")).map_err(anyhow::Error::from)?;
    // The tmpfs is mounted first, so the rbind carries it to /rec/sub.
    c.push_mount(
        json!({"destination": "/recsrc/sub", "type": "tmpfs", "source": "tmpfs",
        "options": ["size=1m"]}),
    );
    c.push_mount(json!({"destination": "/rec", "type": "bind",
        "source": src.to_string_lossy(),
        "options": ["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime", "rnodiratime"]}));
    c.expect_checks_optional(&["mounts./rec"], "recursive mount options")
}
