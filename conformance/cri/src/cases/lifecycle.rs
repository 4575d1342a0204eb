//! Sandboxes and containers through their lifecycle, and ExecSync.

use anyhow::{ensure, Context, Result};
use k8s_cri::v1::{
    ContainerState, ContainerStatusRequest, ExecSyncRequest, ImageSpec, ImageStatusRequest,
    PodSandboxState, PodSandboxStatusRequest, RemoveContainerRequest, RemovePodSandboxRequest,
    StartContainerRequest, StopContainerRequest, StopPodSandboxRequest, VersionRequest,
};

use crate::lane::Lane;

/// The script of a container that exits 3 on SIGTERM (sleep in the background so the
/// trap runs at once).
const TRAP_TERM: &str = "trap 'exit 3' TERM; echo ready; while :; do sleep 1 & wait $!; done";

pub(super) async fn version(l: &mut Lane) -> Result<()> {
    let v = l
        .cri
        .rt
        .version(VersionRequest {
            version: "v1".into(),
        })
        .await?
        .into_inner();
    ensure!(
        v.runtime_name == "containerd" && v.runtime_api_version.starts_with("v1"),
        "Version answered {v:?}"
    );
    Ok(())
}

pub(super) async fn image(l: &mut Lane) -> Result<()> {
    let spec = ImageSpec {
        image: l.node.image.clone(),
        ..Default::default()
    };
    let img = l
        .cri
        .img
        .image_status(ImageStatusRequest {
            image: Some(spec),
            verbose: false,
        })
        .await?
        .into_inner()
        .image;
    ensure!(
        img.is_some_and(|i| i.repo_tags.contains(&l.node.image)),
        "ImageStatus does not know {}",
        l.node.image
    );
    Ok(())
}

async fn pod_ip(l: &mut Lane, id: &str) -> Result<(i32, String)> {
    let st = l
        .cri
        .rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: false,
        })
        .await
        .context("PodSandboxStatus failed")?
        .into_inner()
        .status
        .context("PodSandboxStatus answered no status")?;
    Ok((st.state, st.network.map(|n| n.ip).unwrap_or_default()))
}

pub(super) async fn pod_run(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("run");
    let id = l.run_pod(&cfg).await?;
    let (state, ip) = pod_ip(l, &id).await?;
    ensure!(
        state == PodSandboxState::SandboxReady as i32,
        "sandbox state {state}, want SANDBOX_READY"
    );
    ensure!(
        ip.starts_with(&format!("{}.", l.node.subnet)),
        "pod IP '{ip}' is not in {}.0/24",
        l.node.subnet
    );
    Ok(())
}

pub(super) async fn pod_runtime(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("rt");
    let id = l.run_pod(&cfg).await?;
    let root = l.node.runtime_root.clone();
    let ids = l.runtime_ids(&root)?;
    ensure!(
        ids.contains(&id),
        "{} --root {} list does not show the sandbox {id}: {ids:?}",
        l.node.runtime.display(),
        root.display()
    );
    Ok(())
}

pub(super) async fn pod_default_handler(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("default");
    let id = l.run_pod_with(&cfg, "").await?;
    let root = l.node.default_runtime_root.clone();
    let ids = l.runtime_ids(&root)?;
    ensure!(
        ids.contains(&id),
        "{} --root {} list does not show the sandbox {id}: {ids:?}",
        l.node.runtime.display(),
        root.display()
    );
    Ok(())
}

pub(super) async fn pod_gateway(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("gw");
    let c = l.container_config("c", &["sleep", "1000"]);
    let (_, id) = l.pod_with(&cfg, c).await?;
    let gw = format!("{}.1", l.node.subnet);
    let out = l
        .sh(
            &id,
            &format!("ip -o -4 addr show eth0; ping -c 1 -W 2 {gw}"),
        )
        .await?;
    ensure!(
        out.contains(&format!("inet {}.", l.node.subnet)) && out.contains("1 packets received"),
        "got: {out}"
    );
    Ok(())
}

pub(super) async fn pod_stop_remove(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("stop");
    let c = l.container_config("c", &["sleep", "1000"]);
    let (pod, id) = l.pod_with(&cfg, c).await?;
    l.cri
        .rt
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .context("StopPodSandbox failed")?;
    let (state, _) = pod_ip(l, &pod).await?;
    ensure!(
        state == PodSandboxState::SandboxNotready as i32,
        "sandbox state {state} after stop, want SANDBOX_NOTREADY"
    );
    let (st, _) = l.status(&id).await?;
    ensure!(
        st.state == ContainerState::ContainerExited as i32,
        "container state {} after the pod's stop, want EXITED",
        st.state
    );
    l.cri
        .rt
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .context("RemovePodSandbox failed")?;
    l.forget(&pod);
    ensure!(
        pod_ip(l, &pod).await.is_err(),
        "PodSandboxStatus still answers after RemovePodSandbox"
    );
    let root = l.node.runtime_root.clone();
    let ids = l.runtime_ids(&root)?;
    ensure!(
        !ids.contains(&pod) && !ids.contains(&id),
        "the runtime still lists the pod or its container: {ids:?}"
    );
    Ok(())
}

pub(super) async fn container_create_start(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("create");
    let pod = l.run_pod(&cfg).await?;
    let c = l.container_config("c", &["sleep", "1000"]);
    let id = l.create(&pod, &cfg, c).await?;
    let (st, _) = l.status(&id).await?;
    ensure!(
        st.state == ContainerState::ContainerCreated as i32,
        "state {} after create, want CREATED",
        st.state
    );
    l.cri
        .rt
        .start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .context("StartContainer failed")?;
    let (st, info) = l.status(&id).await?;
    ensure!(
        st.state == ContainerState::ContainerRunning as i32,
        "state {} after start, want RUNNING",
        st.state
    );
    ensure!(
        info["pid"].as_i64().unwrap_or(0) > 0,
        "verbose status has no pid: {info}"
    );
    let out = l.sh(&id, "cat /proc/1/cmdline | tr '\\0' ' '").await?;
    ensure!(
        out.starts_with("sleep 1000"),
        "pid 1 is '{out}', want the container's command"
    );
    Ok(())
}

pub(super) async fn container_stop_remove(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("cstop");
    let c = l.container_config("c", &["sh", "-c", TRAP_TERM]);
    let (_, id) = l.pod_with(&cfg, c).await?;
    // TERM before the trap is set would be ignored (pid 1 has no default action)
    l.wait_log(&cfg, "c", "ready").await?;
    l.cri
        .rt
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 20,
        })
        .await
        .context("StopContainer failed")?;
    let st = l.wait_state(&id, ContainerState::ContainerExited).await?;
    ensure!(
        st.exit_code == 3,
        "exit code {} after a trapped TERM, want 3",
        st.exit_code
    );
    l.cri
        .rt
        .remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .context("RemoveContainer failed")?;
    let gone = l
        .cri
        .rt
        .container_status(ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        })
        .await;
    ensure!(
        gone.is_err(),
        "ContainerStatus still answers after RemoveContainer"
    );
    let root = l.node.runtime_root.clone();
    ensure!(
        !l.runtime_ids(&root)?.contains(&id),
        "the runtime still lists the removed container"
    );
    Ok(())
}

pub(super) async fn container_stop_kill(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("ckill");
    let c = l.container_config(
        "c",
        &["sh", "-c", "trap '' TERM; while :; do sleep 1; done"],
    );
    let (_, id) = l.pod_with(&cfg, c).await?;
    l.cri
        .rt
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 1,
        })
        .await
        .context("StopContainer failed")?;
    let st = l.wait_state(&id, ContainerState::ContainerExited).await?;
    ensure!(
        st.exit_code == 137,
        "exit code {} after the stop timeout, want 137 (SIGKILL)",
        st.exit_code
    );
    Ok(())
}

pub(super) async fn exec_sync(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("exec");
    let c = l.container_config("c", &["sleep", "1000"]);
    let (_, id) = l.pod_with(&cfg, c).await?;
    let (out, err, code) = l
        .exec(&id, &["sh", "-c", "echo out; echo err >&2; exit 3"])
        .await?;
    ensure!(
        out == "out\n" && err == "err\n" && code == 3,
        "got stdout {out:?} stderr {err:?} code {code}"
    );
    Ok(())
}

pub(super) async fn exec_sync_timeout(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("exect");
    let c = l.container_config("c", &["sleep", "1000"]);
    let (_, id) = l.pod_with(&cfg, c).await?;
    let r = l
        .cri
        .rt
        .exec_sync(ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["sleep".into(), "30".into()],
            timeout: 1,
        })
        .await;
    ensure!(
        r.is_err(),
        "ExecSync of sleep 30 with a 1 s timeout answered {r:?}, want a timeout error"
    );
    let out = l.sh(&id, "echo still-running").await?;
    ensure!(
        out == "still-running\n",
        "the container does not answer after the timed out exec"
    );
    Ok(())
}
