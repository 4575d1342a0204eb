//! The pod's and the container's security context, as a kubelet translates a pod spec.

use anyhow::{ensure, Context, Result};
use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::{
    Capability, ContainerConfig, Int64Value, LinuxContainerSecurityContext, PodSandboxConfig,
    SecurityProfile,
};

use crate::lane::Lane;

/// The container's security context, to edit.
fn sc(c: &mut ContainerConfig) -> &mut LinuxContainerSecurityContext {
    c.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

/// Runs a pod with one container (`sleep 1000`) whose config EDIT changes, then SCRIPT in it.
async fn run_in(
    l: &mut Lane,
    base: &str,
    edit_pod: impl FnOnce(&mut PodSandboxConfig),
    edit: impl FnOnce(&mut ContainerConfig),
    script: &str,
) -> Result<String> {
    let mut cfg = l.pod_config(base);
    edit_pod(&mut cfg);
    let mut c = l.container_config("c", &["sleep", "1000"]);
    edit(&mut c);
    let (_, id) = l.pod_with(&cfg, c).await?;
    l.sh(&id, script).await
}

/// A status line of this process (the host's view: containerd runs as this user).
fn own_status(key: &str) -> Result<String> {
    let s = std::fs::read_to_string("/proc/self/status")?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim_start_matches(':').trim().to_owned())
        .with_context(|| format!("no {key} in /proc/self/status"))
}

pub(super) async fn run_as(l: &mut Lane) -> Result<()> {
    let out = run_in(
        l,
        "runas",
        |_| {},
        |c| {
            sc(c).run_as_user = Some(Int64Value { value: 1234 });
            sc(c).run_as_group = Some(Int64Value { value: 5678 });
        },
        "id",
    )
    .await?;
    ensure!(
        out.contains("uid=1234") && out.contains("gid=5678"),
        "id says {out:?}"
    );
    Ok(())
}

pub(super) async fn readonly_root(l: &mut Lane) -> Result<()> {
    let out = run_in(
        l,
        "rofs",
        |_| {},
        |c| sc(c).readonly_rootfs = true,
        "touch /x 2>/dev/null; echo rc=$?; grep -E '^[^ ]+ / ' /proc/mounts",
    )
    .await?;
    ensure!(
        out.starts_with("rc=1") && (out.contains(" ro,") || out.contains(" ro ")),
        "got {out:?}"
    );
    Ok(())
}

pub(super) async fn privileged(l: &mut Lane) -> Result<()> {
    let caps = own_status("CapEff")?;
    let out = run_in(
        l,
        "priv",
        |p| {
            if let Some(s) = p.linux.as_mut().and_then(|x| x.security_context.as_mut()) {
                s.privileged = true;
            }
        },
        |c| sc(c).privileged = true,
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; ls /dev",
    )
    .await?;
    ensure!(
        out.contains(&format!("CapEff:\t{caps}"))
            && out.contains("Seccomp:\t0")
            && out.contains("loop-control"),
        "want CapEff {caps}, Seccomp 0 and host devices, got {out:?}"
    );
    Ok(())
}

pub(super) async fn capabilities(l: &mut Lane) -> Result<()> {
    let out = run_in(
        l,
        "caps",
        |_| {},
        |c| {
            sc(c).capabilities = Some(Capability {
                add_capabilities: vec!["NET_ADMIN".into()],
                drop_capabilities: vec!["ALL".into()],
                ..Default::default()
            })
        },
        "grep -E '^Cap(Eff|Bnd):' /proc/self/status",
    )
    .await?;
    ensure!(
        out.contains("CapEff:\t0000000000001000") && out.contains("CapBnd:\t0000000000001000"),
        "want only CAP_NET_ADMIN (0x1000), got {out:?}"
    );
    Ok(())
}

pub(super) async fn seccomp_default(l: &mut Lane) -> Result<()> {
    let out = run_in(
        l,
        "scdef",
        |_| {},
        |c| {
            sc(c).seccomp = Some(SecurityProfile {
                profile_type: ProfileType::RuntimeDefault as i32,
                ..Default::default()
            })
        },
        "grep -E '^Seccomp:' /proc/self/status; unshare -U true 2>&1; echo rc=$?",
    )
    .await?;
    ensure!(
        out.contains("Seccomp:\t2") && !out.contains("rc=0"),
        "want a filter that refuses unshare(2), got {out:?}"
    );
    Ok(())
}

pub(super) async fn seccomp_localhost(l: &mut Lane) -> Result<()> {
    let profile = l.node.work.join("seccomp-deny-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    )
    .with_context(|| format!("cannot write {}", profile.display()))?;
    let path = profile.to_string_lossy().into_owned();
    let out = run_in(
        l,
        "sclocal",
        |_| {},
        |c| {
            sc(c).seccomp = Some(SecurityProfile {
                profile_type: ProfileType::Localhost as i32,
                localhost_ref: path,
            })
        },
        "grep -E '^Seccomp:' /proc/self/status; mkdir /tmp/bx 2>&1; echo rc=$?",
    )
    .await?;
    ensure!(
        out.contains("Seccomp:\t2")
            && out.contains("Operation not permitted")
            && out.contains("rc=1"),
        "want mkdir refused with EPERM, got {out:?}"
    );
    Ok(())
}

pub(super) async fn no_new_privs(l: &mut Lane) -> Result<()> {
    let out = run_in(
        l,
        "nnp",
        |_| {},
        |c| sc(c).no_new_privs = true,
        "grep NoNewPrivs /proc/self/status",
    )
    .await?;
    ensure!(out.contains("NoNewPrivs:\t1"), "got {out:?}");
    Ok(())
}

pub(super) async fn sysctls(l: &mut Lane) -> Result<()> {
    let out = run_in(
        l,
        "sysctl",
        |p| {
            if let Some(x) = p.linux.as_mut() {
                x.sysctls.insert("net.core.somaxconn".into(), "1234".into());
                x.sysctls
                    .insert("kernel.shm_rmid_forced".into(), "1".into());
            }
        },
        |_| {},
        "cat /proc/sys/net/core/somaxconn /proc/sys/kernel/shm_rmid_forced",
    )
    .await?;
    ensure!(out == "1234\n1\n", "got {out:?}");
    Ok(())
}

pub(super) async fn masked_readonly(l: &mut Lane) -> Result<()> {
    let out = run_in(
        l,
        "mask",
        |_| {},
        |c| {
            sc(c).masked_paths = vec!["/proc/cpuinfo".into(), "/sys/firmware".into()];
            sc(c).readonly_paths = vec!["/proc/sys".into(), "/tmp".into()];
        },
        "wc -c </proc/cpuinfo; ls /sys/firmware | wc -l; touch /tmp/x 2>/dev/null; echo tmp=$?; \
         echo 1 >/proc/sys/kernel/shm_rmid_forced 2>/dev/null; echo sys=$?",
    )
    .await?;
    let words: Vec<&str> = out.split_whitespace().collect();
    ensure!(
        words == ["0", "0", "tmp=1", "sys=1"],
        "want cpuinfo empty, /sys/firmware empty, /tmp and /proc/sys read-only; got {out:?}"
    );
    Ok(())
}
