//! The lane's connection to containerd's CRI socket and the kubelet-like calls every case
//! builds on: pod sandboxes and containers made, waited for and removed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatus, ContainerStatusRequest,
    CreateContainerRequest, ExecSyncRequest, ImageSpec, LinuxContainerConfig,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    ListPodSandboxRequest, NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopPodSandboxRequest,
};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

/// The CRI clients (runtime and image services) over one unix-socket channel.
pub struct Cri {
    /// RuntimeService: sandboxes, containers, exec, stats.
    pub rt: RuntimeServiceClient<Channel>,
    /// ImageService: the images imported for the lane.
    pub img: ImageServiceClient<Channel>,
}

/// Connects to containerd's CRI (gRPC) over its unix socket, as a kubelet does.
pub async fn connect(socket: &Path) -> Result<Cri> {
    let path = socket.to_path_buf();
    // The URI is required by tonic and ignored: the connector dials the socket.
    let channel = Endpoint::try_from("http://[::1]:1")?
        .connect_timeout(Duration::from_secs(10))
        .connect_with_connector(service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .with_context(|| {
            format!(
                "cannot connect to the CRI socket {}: is containerd running?",
                socket.display()
            )
        })?;
    Ok(Cri {
        rt: RuntimeServiceClient::new(channel.clone()),
        img: ImageServiceClient::new(channel),
    })
}

/// What the lane was told about the node: the handler to ask for, the runtime binary
/// behind it and where that runtime keeps its state.
pub struct Node {
    /// The runtime handler every case's pod asks for (`runtime_handler`).
    pub handler: String,
    /// The OCI runtime binary behind the handler (BinaryName).
    pub runtime: PathBuf,
    /// The runtime's `--root` for the handler (the shim's Root option plus the namespace).
    pub runtime_root: PathBuf,
    /// The runtime's `--root` for the default handler.
    pub default_runtime_root: PathBuf,
    /// The lane's scratch directory (logs, mounts, profiles).
    pub work: PathBuf,
    /// The cgroup parent of every pod (one child per pod), as a kubelet's pods get.
    pub cgroup_parent: String,
    /// The image every container runs.
    pub image: String,
    /// The first three octets of the CNI subnet (`a.b.c` of `a.b.c.0/24`).
    pub subnet: String,
}

/// One case's view: the node, the CRI clients and the sandboxes the case made (removed
/// after the case whatever its outcome).
pub struct Lane {
    /// The CRI clients.
    pub cri: Cri,
    /// The node's configuration.
    pub node: Node,
    pods: Vec<String>,
    serial: u32,
}

impl Lane {
    /// A lane over connected clients.
    pub fn new(cri: Cri, node: Node) -> Self {
        Lane {
            cri,
            node,
            pods: Vec::new(),
            serial: 0,
        }
    }

    /// A new pod name, unique within the lane.
    pub fn unique(&mut self, base: &str) -> String {
        self.serial += 1;
        format!("bxcri-{base}-{}", self.serial)
    }

    /// A pod sandbox config as a kubelet writes one: metadata, log directory, cgroup parent.
    pub fn pod_config(&mut self, base: &str) -> PodSandboxConfig {
        let name = self.unique(base);
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.clone(),
                uid: format!("{name}-{}", std::process::id()),
                namespace: "bxcri".into(),
                attempt: 0,
            }),
            hostname: name.clone(),
            log_directory: self
                .node
                .work
                .join("logs")
                .join(&name)
                .to_string_lossy()
                .into_owned(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: format!("{}/{name}", self.node.cgroup_parent),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(kubelet_namespaces()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Runs a sandbox through the lane's handler; it is removed after the case.
    pub async fn run_pod(&mut self, cfg: &PodSandboxConfig) -> Result<String> {
        let handler = self.node.handler.clone();
        self.run_pod_with(cfg, &handler).await
    }

    /// Runs a sandbox through HANDLER ("" is containerd's default runtime).
    pub async fn run_pod_with(&mut self, cfg: &PodSandboxConfig, handler: &str) -> Result<String> {
        if !cfg.log_directory.is_empty() {
            std::fs::create_dir_all(&cfg.log_directory).with_context(|| {
                format!("cannot create the pod log directory {}", cfg.log_directory)
            })?;
        }
        let id = self
            .cri
            .rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(cfg.clone()),
                runtime_handler: handler.into(),
            })
            .await
            .context("RunPodSandbox failed")?
            .into_inner()
            .pod_sandbox_id;
        self.pods.push(id.clone());
        Ok(id)
    }

    /// A container config running COMMAND in the lane's image, logging to NAME.log.
    pub fn container_config(&self, name: &str, command: &[&str]) -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: self.node.image.clone(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            linux: Some(LinuxContainerConfig {
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(kubelet_namespaces()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Creates a container in the pod (not started).
    pub async fn create(
        &mut self,
        pod: &str,
        pod_cfg: &PodSandboxConfig,
        cfg: ContainerConfig,
    ) -> Result<String> {
        Ok(self
            .cri
            .rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(cfg),
                sandbox_config: Some(pod_cfg.clone()),
            })
            .await
            .context("CreateContainer failed")?
            .into_inner()
            .container_id)
    }

    /// Creates and starts a container in the pod.
    pub async fn create_start(
        &mut self,
        pod: &str,
        pod_cfg: &PodSandboxConfig,
        cfg: ContainerConfig,
    ) -> Result<String> {
        let id = self.create(pod, pod_cfg, cfg).await?;
        self.cri
            .rt
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .context("StartContainer failed")?;
        Ok(id)
    }

    /// A pod with the given config and one started container running COMMAND: (pod, container).
    pub async fn pod_with(
        &mut self,
        pod_cfg: &PodSandboxConfig,
        cfg: ContainerConfig,
    ) -> Result<(String, String)> {
        let pod = self.run_pod(pod_cfg).await?;
        let id = self.create_start(&pod, pod_cfg, cfg).await?;
        Ok((pod, id))
    }

    /// The container's status and its verbose info (containerd's "info" JSON).
    pub async fn status(&mut self, id: &str) -> Result<(ContainerStatus, serde_json::Value)> {
        let resp = self
            .cri
            .rt
            .container_status(ContainerStatusRequest {
                container_id: id.into(),
                verbose: true,
            })
            .await
            .context("ContainerStatus failed")?
            .into_inner();
        let info = resp
            .info
            .get("info")
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        resp.status
            .map(|s| (s, info))
            .context("ContainerStatus answered no status")
    }

    /// Polls (bounded: 30 s) until the container is in STATE.
    pub async fn wait_state(&mut self, id: &str, state: ContainerState) -> Result<ContainerStatus> {
        for _ in 0..300 {
            let (st, _) = self.status(id).await?;
            if st.state == state as i32 {
                return Ok(st);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "container {id} did not reach {} within 30 s",
            state.as_str_name()
        )
    }

    /// Polls (bounded: 30 s) until container NAME's log file in the pod's log directory
    /// has a line ending in TEXT.
    pub async fn wait_log(&self, pod_cfg: &PodSandboxConfig, name: &str, text: &str) -> Result<()> {
        let path = Path::new(&pod_cfg.log_directory).join(format!("{name}.log"));
        for _ in 0..300 {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            if log.lines().any(|l| l.ends_with(text)) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "container {name} did not log {text:?} within 30 s ({})",
            path.display()
        )
    }

    /// ExecSync: (stdout, stderr, exit code).
    pub async fn exec(&mut self, id: &str, cmd: &[&str]) -> Result<(String, String, i32)> {
        let r = self
            .cri
            .rt
            .exec_sync(ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout: 20,
            })
            .await
            .context("ExecSync failed")?
            .into_inner();
        Ok((
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
            r.exit_code,
        ))
    }

    /// ExecSync that must exit 0; its stdout.
    pub async fn sh(&mut self, id: &str, script: &str) -> Result<String> {
        let (out, err, code) = self.exec(id, &["sh", "-c", script]).await?;
        if code != 0 {
            bail!("`{script}` exited {code}: {}{}", out.trim(), err.trim());
        }
        Ok(out)
    }

    /// The ids the runtime binary lists in its state directory ROOT.
    pub fn runtime_ids(&self, root: &Path) -> Result<Vec<String>> {
        let out = std::process::Command::new(&self.node.runtime)
            .arg("--root")
            .arg(root)
            .args(["list", "-q"])
            .output()
            .with_context(|| format!("cannot run {} list", self.node.runtime.display()))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Drops a sandbox the case removed itself from the clean-up list.
    pub fn forget(&mut self, id: &str) {
        self.pods.retain(|p| p != id);
    }

    /// Stops and removes the sandboxes the case made (their containers go with them).
    pub async fn remove_pods(&mut self) -> Result<()> {
        let mut first_err = None;
        for id in std::mem::take(&mut self.pods) {
            if let Err(e) = remove_pod(&mut self.cri, &id).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The namespaces a kubelet asks for a pod without `hostNetwork`, `hostPID`, `hostIPC` or
/// `shareProcessNamespace`: the pod's network and IPC, the container's own PID namespace.
pub fn kubelet_namespaces() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Pod as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// StopPodSandbox then RemovePodSandbox, as a kubelet does when a pod goes away.
pub async fn remove_pod(cri: &mut Cri, id: &str) -> Result<()> {
    cri.rt
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        })
        .await
        .with_context(|| format!("StopPodSandbox {id} failed"))?;
    cri.rt
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        })
        .await
        .with_context(|| format!("RemovePodSandbox {id} failed"))?;
    Ok(())
}

/// Removes every sandbox containerd knows (the lane's clean-up after a failure).
pub async fn remove_all_pods(cri: &mut Cri) -> Result<usize> {
    let pods = cri
        .rt
        .list_pod_sandbox(ListPodSandboxRequest { filter: None })
        .await?
        .into_inner()
        .items;
    for p in &pods {
        remove_pod(cri, &p.id).await?;
    }
    Ok(pods.len())
}
