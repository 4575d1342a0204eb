//! What ties a pod to its node: stats, resources, host namespaces, DNS, OOM, restarts and
//! mount propagation between the host and the container.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use k8s_cri::v1::{
    ContainerState, ContainerStatsRequest, LinuxContainerResources, Mount, MountPropagation,
    NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxStatsRequest,
    StartContainerRequest, UpdateContainerResourcesRequest,
};

use crate::lane::{kubelet_namespaces, Lane};

pub(super) async fn container_stats(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("cstats");
    let c = l.container_config("c", &["sleep", "1000"]);
    let (_, id) = l.pod_with(&cfg, c).await?;
    l.sh(&id, "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")
        .await?;
    let s = l
        .cri
        .rt
        .container_stats(ContainerStatsRequest {
            container_id: id.clone(),
        })
        .await
        .context("ContainerStats failed")?
        .into_inner()
        .stats
        .context("ContainerStats answered no stats")?;
    let cpu = s
        .cpu
        .and_then(|c| c.usage_core_nano_seconds)
        .map_or(0, |v| v.value);
    let mem = s
        .memory
        .and_then(|m| m.working_set_bytes)
        .map_or(0, |v| v.value);
    ensure!(
        cpu > 0 && mem > 0,
        "cpu {cpu} ns, working set {mem} bytes: want both above 0"
    );
    Ok(())
}

pub(super) async fn pod_stats(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("pstats");
    let c = l.container_config("c", &["sleep", "1000"]);
    let (pod, id) = l.pod_with(&cfg, c).await?;
    let s = l
        .cri
        .rt
        .pod_sandbox_stats(PodSandboxStatsRequest {
            pod_sandbox_id: pod,
        })
        .await
        .context("PodSandboxStats failed")?
        .into_inner()
        .stats
        .and_then(|s| s.linux)
        .context("PodSandboxStats answered no linux stats")?;
    let cpu = s
        .cpu
        .and_then(|c| c.usage_core_nano_seconds)
        .map_or(0, |v| v.value);
    let mem = s
        .memory
        .and_then(|m| m.working_set_bytes)
        .map_or(0, |v| v.value);
    let has = s
        .containers
        .iter()
        .any(|c| c.attributes.as_ref().is_some_and(|a| a.id == id));
    ensure!(
        cpu > 0 && mem > 0 && has,
        "pod cpu {cpu} ns, working set {mem} bytes, container listed: {has}"
    );
    Ok(())
}

pub(super) async fn update_resources(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("update");
    let mut c = l.container_config("c", &["sleep", "1000"]);
    c.linux.get_or_insert_with(Default::default).resources = Some(LinuxContainerResources {
        memory_limit_in_bytes: 128 << 20,
        cpu_shares: 1024,
        ..Default::default()
    });
    let (_, id) = l.pod_with(&cfg, c).await?;
    l.cri
        .rt
        .update_container_resources(UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                cpu_shares: 512,
                cpu_period: 100_000,
                cpu_quota: 50_000,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .context("UpdateContainerResources failed")?;
    let out = l
        .sh(
            &id,
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        )
        .await?;
    ensure!(
        out == "67108864\n512\n50000\n",
        "the container's cgroup says {out:?}, want 67108864, 512, 50000"
    );
    Ok(())
}

/// A pod whose sandbox and container use the node's namespace of KIND; the container's
/// `readlink /proc/self/ns/KIND` must be this process's.
async fn host_ns(l: &mut Lane, kind: &str, set: fn(&mut NamespaceOption)) -> Result<()> {
    let mut ns = kubelet_namespaces();
    set(&mut ns);
    let mut cfg = l.pod_config(&format!("host{kind}"));
    if kind == "net" {
        // a kubelet leaves the hostname empty for a host-network pod (the host's UTS namespace)
        cfg.hostname.clear();
    }
    if let Some(s) = cfg.linux.as_mut().and_then(|x| x.security_context.as_mut()) {
        s.namespace_options = Some(ns.clone());
    }
    let mut c = l.container_config("c", &["sleep", "1000"]);
    c.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
        .namespace_options = Some(ns);
    let (_, id) = l.pod_with(&cfg, c).await?;
    let host = std::fs::read_link(format!("/proc/self/ns/{kind}"))?;
    let out = l.sh(&id, &format!("readlink /proc/self/ns/{kind}")).await?;
    ensure!(
        out.trim() == host.to_string_lossy(),
        "container's {kind} namespace {} is not the host's {}",
        out.trim(),
        host.display()
    );
    Ok(())
}

pub(super) async fn host_network(l: &mut Lane) -> Result<()> {
    host_ns(l, "net", |n| n.network = NamespaceMode::Node as i32).await
}

pub(super) async fn host_pid(l: &mut Lane) -> Result<()> {
    host_ns(l, "pid", |n| n.pid = NamespaceMode::Node as i32).await
}

pub(super) async fn host_ipc(l: &mut Lane) -> Result<()> {
    host_ns(l, "ipc", |n| n.ipc = NamespaceMode::Node as i32).await
}

pub(super) async fn pod_pid(l: &mut Lane) -> Result<()> {
    let ns = NamespaceOption {
        pid: NamespaceMode::Pod as i32,
        ..kubelet_namespaces()
    };
    let mut cfg = l.pod_config("podpid");
    if let Some(s) = cfg.linux.as_mut().and_then(|x| x.security_context.as_mut()) {
        s.namespace_options = Some(ns.clone());
    }
    let mut a = l.container_config("a", &["sleep", "1001"]);
    a.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
        .namespace_options = Some(ns.clone());
    let mut b = l.container_config("b", &["sleep", "1002"]);
    b.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
        .namespace_options = Some(ns);
    let (pod, _) = l.pod_with(&cfg, a).await?;
    let id = l.create_start(&pod, &cfg, b).await?;
    let out = l
        .sh(&id, "cat /proc/1/cmdline | tr '\\0' ' '; echo; ps -o args")
        .await?;
    ensure!(
        !out.starts_with("sleep") && out.contains("sleep 1001") && out.contains("sleep 1002"),
        "want the pause process as pid 1 and both containers' processes, got {out:?}"
    );
    Ok(())
}

pub(super) async fn dns(l: &mut Lane) -> Result<()> {
    let mut cfg = l.pod_config("dns");
    cfg.dns_config = Some(k8s_cri::v1::DnsConfig {
        servers: vec!["192.0.2.53".into()],
        searches: vec!["bxcri.test".into()],
        options: vec!["ndots:2".into()],
    });
    let c = l.container_config("c", &["sleep", "1000"]);
    let (_, id) = l.pod_with(&cfg, c).await?;
    let out = l.sh(&id, "cat /etc/resolv.conf").await?;
    for want in [
        "nameserver 192.0.2.53",
        "search bxcri.test",
        "options ndots:2",
    ] {
        ensure!(
            out.lines().any(|x| x.trim() == want),
            "resolv.conf has no {want:?}: {out:?}"
        );
    }
    Ok(())
}

pub(super) async fn oom(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("oom");
    let mut c = l.container_config("c", &["sh", "-c", "tail /dev/zero"]);
    c.linux.get_or_insert_with(Default::default).resources = Some(LinuxContainerResources {
        memory_limit_in_bytes: 32 << 20,
        ..Default::default()
    });
    let (_, id) = l.pod_with(&cfg, c).await?;
    let st = l.wait_state(&id, ContainerState::ContainerExited).await?;
    ensure!(
        st.reason == "OOMKilled" && st.exit_code == 137,
        "reason {:?} exit code {}, want OOMKilled 137",
        st.reason,
        st.exit_code
    );
    Ok(())
}

pub(super) async fn restart(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("restart");
    let c = l.container_config("c", &["sleep", "1000"]);
    let (pod, id) = l.pod_with(&cfg, c).await?;
    let (_, info) = l.status(&id).await?;
    let pid = info["pid"]
        .as_i64()
        .filter(|p| *p > 1)
        .context("the verbose status has no pid")?;
    let pid = i32::try_from(pid).context("pid out of range")?;
    // SAFETY: kill(2) with a pid the runtime reported for the container's init, and a signal number.
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    ensure!(
        rc == 0,
        "kill -9 {pid} failed: {}",
        std::io::Error::last_os_error()
    );
    let st = l.wait_state(&id, ContainerState::ContainerExited).await?;
    ensure!(
        st.exit_code == 137,
        "exit code {} after kill -9, want 137",
        st.exit_code
    );
    let mut again = l.container_config("c", &["sleep", "1000"]);
    if let Some(m) = again.metadata.as_mut() {
        m.attempt = 1;
    }
    let id2 = l.create(&pod, &cfg, again).await?;
    l.cri
        .rt
        .start_container(StartContainerRequest {
            container_id: id2.clone(),
        })
        .await
        .context("StartContainer (attempt 1) failed")?;
    let out = l.sh(&id2, "echo restarted").await?;
    ensure!(out == "restarted\n", "attempt 1 answered {out:?}");
    let (st2, _) = l.status(&id2).await?;
    ensure!(
        st2.metadata.map(|m| m.attempt) == Some(1),
        "the new container's attempt is not 1"
    );
    Ok(())
}

/// A host directory bind-mounted on itself and made rshared (what a node does for
/// Bidirectional volumes); unmounted (with whatever propagated into it) when dropped.
struct SharedDir(PathBuf);

impl SharedDir {
    fn new(path: PathBuf) -> Result<SharedDir> {
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let d = SharedDir(path);
        sh_host(&["mount", "--bind", &d.path(), &d.path()])?;
        sh_host(&["mount", "--make-rshared", &d.path()])?;
        Ok(d)
    }
    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-R", "-l"])
            .arg(&self.0)
            .status();
    }
}

fn sh_host(argv: &[&str]) -> Result<()> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .with_context(|| format!("cannot run {}", argv[0]))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn is_mountpoint(path: &Path) -> bool {
    let p = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(4) == Some(p.as_ref())))
}

/// A privileged pod with one container mounting DIR at /prop with PROPAGATION.
async fn prop_pod(
    l: &mut Lane,
    base: &str,
    dir: &str,
    propagation: MountPropagation,
    script: &str,
) -> Result<(PodSandboxConfig, String)> {
    let mut cfg = l.pod_config(base);
    if let Some(s) = cfg.linux.as_mut().and_then(|x| x.security_context.as_mut()) {
        s.privileged = true;
    }
    let mut c = l.container_config("c", &["sh", "-c", script]);
    c.mounts.push(Mount {
        container_path: "/prop".into(),
        host_path: dir.into(),
        propagation: propagation as i32,
        ..Default::default()
    });
    c.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
        .privileged = true;
    let (_, id) = l.pod_with(&cfg, c).await?;
    Ok((cfg, id))
}

pub(super) async fn propagation_rshared(l: &mut Lane) -> Result<()> {
    let dir = SharedDir::new(l.node.work.join("prop-rshared"))?;
    let script = "mkdir -p /prop/sub && mount -t tmpfs bxprop /prop/sub && echo from-container >/prop/sub/f && exec sleep 1000";
    let (_, id) = prop_pod(
        l,
        "rshared",
        &dir.path(),
        MountPropagation::PropagationBidirectional,
        script,
    )
    .await?;
    // host to container first: the row's message then tells which way fails
    host_mount_reaches(l, &id, &dir, "fromhost").await?;
    let sub = dir.0.join("sub");
    let mut seen = false;
    for _ in 0..100 {
        if is_mountpoint(&sub)
            && std::fs::read_to_string(sub.join("f")).is_ok_and(|s| s == "from-container\n")
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = l.status(&id).await.map(|(s, _)| s.state).unwrap_or(-1);
    ensure!(seen, "the container's tmpfs on /prop/sub did not appear on the host at {} (container state {state})", sub.display());
    Ok(())
}

pub(super) async fn propagation_rslave(l: &mut Lane) -> Result<()> {
    let dir = SharedDir::new(l.node.work.join("prop-rslave"))?;
    let (_, id) = prop_pod(
        l,
        "rslave",
        &dir.path(),
        MountPropagation::PropagationHostToContainer,
        "exec sleep 1000",
    )
    .await?;
    host_mount_reaches(l, &id, &dir, "sub").await?;
    // and not the other way: a mount made in the container stays there (propagation is
    // synchronous, so the host's view is final once the exec returns)
    l.sh(&id, "mkdir -p /prop/own && mount -t tmpfs bxown /prop/own")
        .await?;
    let own = dir.0.join("own");
    ensure!(
        !is_mountpoint(&own),
        "the container's mount on /prop/own reached the host at {} (rslave)",
        own.display()
    );
    Ok(())
}

/// The host mounts a tmpfs on DIR/NAME after the container started: the container sees it
/// at /prop/NAME.
async fn host_mount_reaches(l: &mut Lane, id: &str, dir: &SharedDir, name: &str) -> Result<()> {
    let sub = dir.0.join(name);
    std::fs::create_dir_all(&sub)?;
    sh_host(&["mount", "-t", "tmpfs", "bxprop", &sub.to_string_lossy()])?;
    std::fs::write(sub.join("f"), "from-host\n")?;
    let out = l
        .sh(
            id,
            &format!("cat /prop/{name}/f; grep -c ' /prop/{name} ' /proc/self/mountinfo"),
        )
        .await;
    ensure!(
        out.as_ref().is_ok_and(|o| o == "from-host\n1\n"),
        "the host's tmpfs on {} is not seen in the container at /prop/{name}: {out:?}",
        sub.display()
    );
    Ok(())
}
