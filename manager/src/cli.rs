//! Command-line definition.

use std::path::PathBuf;

use boxctl_core::create_spec::InstanceOptions;
use boxctl_core::healthcheck::HealthOptions;
use boxctl_core::instance_file::Session;
use boxctl_core::limits::LimitSpec;
use boxctl_core::security::SecurityOptions;
use clap::{Args, Parser, Subcommand};

/// boxctl: a daemonless container manager for disk images.
#[derive(Debug, Parser)]
#[command(name = "boxctl", version, about)]
pub struct Cli {
    /// State directory (default: $BOXCTL_ROOT or /var/lib/boxctl).
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// OCI runtime binary (default: boxrun next to boxctl, then on PATH).
    #[arg(long, global = true)]
    pub runtime: Option<String>,
    /// Command.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Store credentials for a registry (checked first) in <root>/auth.json.
    Login(LoginArgs),
    /// Forget the credentials stored for a registry.
    Logout {
        /// Registry: HOST[:PORT].
        registry: String,
    },
    /// Manage networks (bridges).
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Manage named volumes (ext4 disks that outlive instances).
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Create an instance without starting it.
    Create(RunArgs),
    /// Create and start an instance.
    Run {
        /// Run in the background and print the id.
        #[arg(short, long)]
        detach: bool,
        /// Instance options.
        #[command(flatten)]
        args: RunArgs,
    },
    /// List instances.
    Ps {
        /// Show all instances, not only running ones.
        #[arg(short, long)]
        all: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Only ids.
        #[arg(short, long)]
        quiet: bool,
        /// Filter: label=KEY[=VALUE], status=STATE, name=PART, id=PREFIX
        /// (repeatable; a status filter looks at all instances).
        #[arg(short, long = "filter", value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// Print each instance through a template: {{.ID}} {{.Names}} {{.Image}}
        /// {{.Command}} {{.Status}} {{.State}} {{.Ports}} {{.Labels}} {{.Label "KEY"}}
        /// {{.CreatedAt}} {{.Networks}}; a `table ` prefix prints a header and
        /// aligns the columns that \t separates; {{json .}} prints JSON.
        #[arg(long)]
        format: Option<String>,
    },
    /// Start stopped instances.
    Start {
        /// Instances.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stop running instances (SIGTERM, then SIGKILL); their disks are kept.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        /// Instances.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stop then start instances.
    Restart {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        /// Instances.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove instances (disk, bundle, logs and characteristics).
    Rm {
        /// Stop running instances first.
        #[arg(short, long)]
        force: bool,
        /// Instances.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Print an instance's output.
    Logs {
        /// Keep following the output.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<usize>,
        /// Instance.
        name: String,
    },
    /// Run a command in a running instance.
    Exec {
        /// Keep stdin open.
        #[arg(short, long)]
        interactive: bool,
        /// Allocate a terminal.
        #[arg(short, long)]
        tty: bool,
        /// Instance.
        name: String,
        /// Command and arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Attach to a running instance's console (its input too if started
    /// with -i); detach with Ctrl-P Ctrl-Q.
    Attach {
        /// Instance.
        name: String,
    },
    /// Block until instances exit; print each one's exit code.
    Wait {
        /// Instances.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show instances' characteristics as JSON.
    Inspect {
        /// Instances.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Resource usage of running instances.
    Stats {
        /// Print once and exit.
        #[arg(long)]
        no_stream: bool,
        /// JSON output (implies --no-stream).
        #[arg(long)]
        json: bool,
        /// Instances (default: all running).
        names: Vec<String>,
    },
    /// Change the limits of an instance (live when running).
    Update {
        /// New limits.
        #[command(flatten)]
        limits: LimitArgs,
        /// Instance.
        name: String,
    },
    /// Bring a farm up from its description (images, networks, instances, proxy).
    Up(FarmArgs),
    /// Remove everything a farm's `up` made (images stay; volumes too unless --volumes).
    Down {
        /// Farm file.
        #[command(flatten)]
        farm: FarmArgs,
        /// Also remove the farm's named volumes (and their data).
        #[arg(long)]
        volumes: bool,
    },
    /// Change the number of instances of a farm's service without dropping requests.
    Scale(ScaleArgs),
    /// Farm files (TOML or compose) on their way to a cluster.
    #[command(subcommand)]
    Farm(FarmCmd),
    /// Internal: the per-instance monitor.
    #[command(name = "__monitor", hide = true)]
    Monitor {
        /// Instance id.
        id: String,
        /// Wait for a client on the attach socket before starting.
        #[arg(long)]
        attach_first: bool,
    },
    /// Show life-cycle events (create, start, die, oom, health_status, stop, rm).
    Events {
        /// Only events at or after TIME (2024-01-31T12:00:00Z, Unix seconds) or
        /// DURATION ago (10m, 1h30m).
        #[arg(long)]
        since: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Keep waiting for new events (without --since: only new ones).
        #[arg(short, long)]
        follow: bool,
    },
    /// Copy files or directory trees between the host and an instance
    /// (running or stopped): `cp SRC NAME:/path` or `cp NAME:/path DST`.
    Cp {
        /// Source: a host path or NAME:/path (a trailing `/.` copies a directory's contents).
        src: String,
        /// Destination: a host path or NAME:/path (into it when it is a directory).
        dst: String,
    },
    /// Show the processes of a running instance (the runtime's `ps`).
    Top {
        /// Instance.
        name: String,
        /// Options for ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List an instance's published ports (`80/tcp -> 0.0.0.0:8080`).
    Port {
        /// Instance.
        name: String,
        /// Only this container port (80 or 80/tcp).
        port: Option<String>,
    },
    /// Rename an instance.
    Rename {
        /// Current name or id.
        old: String,
        /// New name.
        new: String,
    },
    /// Freeze every process of running instances.
    Pause {
        /// Instances.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Thaw paused instances.
    Unpause {
        /// Instances.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove exited instances and the images no instance uses (and with
    /// --volumes the volumes none names); asks first unless -f.
    Prune {
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(short, long)]
        force: bool,
        /// Also remove volumes no instance names (and their data).
        #[arg(long)]
        volumes: bool,
    },
    /// System-wide information.
    #[command(subcommand)]
    System(SystemCmd),
    /// Internal: the health checker of an instance (started by its monitor).
    #[command(name = "__health", hide = true)]
    Health {
        /// Instance id.
        id: String,
    },
}

impl Cmd {
    /// Commands that only read the store and print to stdout: when the reader
    /// of a pipe goes away (`boxctl ps | head -1`) they end quietly, as `ls`
    /// does, instead of reporting the broken pipe. The others keep SIGPIPE
    /// ignored so a write to a socket or a child's pipe gets a clear error.
    pub fn only_prints(&self) -> bool {
        matches!(
            self,
            Cmd::Ps { .. }
                | Cmd::Logs { .. }
                | Cmd::Inspect { .. }
                | Cmd::Stats { .. }
                | Cmd::Events { .. }
                | Cmd::Port { .. }
                | Cmd::Image(
                    ImageCmd::Ls { .. } | ImageCmd::Inspect { .. } | ImageCmd::History { .. }
                )
                | Cmd::Network(NetworkCmd::Ls)
                | Cmd::Volume(VolumeCmd::Ls { .. } | VolumeCmd::Inspect { .. })
                | Cmd::System(SystemCmd::Df { .. })
        )
    }
}

/// `image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// Import a raw ext4 image, a rootfs directory or tarball, or an OCI/docker image.
    Import {
        /// Size of the disk image made from a directory or archive (e.g. 1g).
        #[arg(long)]
        size: Option<String>,
        /// Source path.
        src: PathBuf,
        /// Image name.
        name: String,
    },
    /// List images.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show images as JSON (record, disk, instances using them).
    Inspect {
        /// Images.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove images (refused while an instance uses them).
    Rm {
        /// Images.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// The steps an image was made by, newest first (its OCI/docker
    /// history, then its import).
    History {
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Image.
        name: String,
    },
    /// Remove dangling images (damaged, or their disk gone); with -a every
    /// image no instance uses. Asks first unless -f.
    Prune {
        /// Every image no instance (running or not) uses.
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(short, long)]
        force: bool,
    },
    /// Write an image for podman, docker or skopeo: docker-archive,
    /// oci-archive or oci-dir (its files flattened into one layer).
    Export {
        /// docker-archive, oci-archive or oci-dir.
        #[arg(long, default_value = "docker-archive")]
        format: String,
        /// The archive file or (oci-dir) directory to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Image.
        name: String,
    },
    /// Pull an image from a registry (linux/amd64 of a manifest list).
    Pull {
        /// Accept plain http and unverified TLS.
        #[arg(long)]
        insecure: bool,
        /// Reference: [REGISTRY/]REPOSITORY[:TAG][@DIGEST].
        reference: String,
        /// Image name (default: the repository's last component, -TAG unless latest).
        name: Option<String>,
    },
    /// Push an image to a registry as a one-layer OCI image.
    Push {
        /// Accept plain http and unverified TLS.
        #[arg(long)]
        insecure: bool,
        /// Image.
        name: String,
        /// Reference: REGISTRY/REPOSITORY[:TAG].
        reference: String,
    },
    /// Copy an image under a new name.
    Tag {
        /// Image.
        name: String,
        /// New name.
        new_name: String,
    },
}

/// `login` options.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name.
    #[arg(short, long)]
    pub username: String,
    /// Password (visible in `ps`: prefer --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Accept plain http and unverified TLS.
    #[arg(long)]
    pub insecure: bool,
    /// Registry: HOST[:PORT].
    pub registry: String,
}

/// `system` subcommands.
#[derive(Debug, Subcommand)]
pub enum SystemCmd {
    /// Disk space used by images, instances and volumes, and what prune would free.
    Df {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// Create a network (a Linux bridge).
    Create {
        /// Subnet, e.g. 10.210.10.0/24 (default: the first free /24 of 10.209.0.0/16, a
        /// range docker, podman, libvirt and kubernetes do not use by default).
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway address on the host bridge (default: the subnet's first address).
        #[arg(long)]
        gateway: Option<String>,
        /// No gateway on the host and no default route: instances only reach this bridge.
        #[arg(long)]
        internal: bool,
        /// Network name.
        name: String,
    },
    /// List networks.
    Ls,
    /// Remove networks.
    Rm {
        /// Networks.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `volume` subcommands.
#[derive(Debug, Subcommand)]
pub enum VolumeCmd {
    /// Create a named volume: its own sparse ext4 disk in the store.
    Create {
        /// Disk size (e.g. 512m, 1g; default 1g, only written blocks take room).
        #[arg(long)]
        size: Option<String>,
        /// Volume name.
        name: String,
    },
    /// List volumes.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Remove volumes and their data (refused while an instance, running or stopped, uses them).
    Rm {
        /// Volumes.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show volumes as JSON.
    Inspect {
        /// Volumes.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Limit options shared by run, create and update.
#[derive(Debug, Args, Default, Clone)]
pub struct LimitArgs {
    /// Memory limit (e.g. 256m, 1g).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// CPUs (fractional, e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPUs allowed (e.g. 0-1).
    #[arg(long)]
    pub cpuset: Option<String>,
    /// Maximum number of processes.
    #[arg(long)]
    pub pids: Option<String>,
    /// Read throughput limit on the instance's disk (e.g. 10m per second).
    #[arg(long)]
    pub io_read_bps: Option<String>,
    /// Write throughput limit on the instance's disk.
    #[arg(long)]
    pub io_write_bps: Option<String>,
    /// Read operations per second on the instance's disk.
    #[arg(long)]
    pub io_read_iops: Option<String>,
    /// Write operations per second on the instance's disk.
    #[arg(long)]
    pub io_write_iops: Option<String>,
}

/// Options of run and create.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Instance name.
    #[arg(long)]
    pub name: Option<String>,
    /// Environment variable (KEY=VALUE), repeatable.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Working directory.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// User (uid[:gid] or name[:group]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Hostname (default: the instance name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Override the image's entrypoint (empty string clears it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Restart policy: no, always, on-failure[:N], on-unhealthy[:N] (on-failure, and
    /// killed then restarted when the health check reports it unhealthy).
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Network: none, host, or NAME[:ADDR/PREFIX] (repeatable; default: the store's
    /// default network boxctl0, made on first use; none: loopback only).
    #[arg(long = "net")]
    pub net: Vec<String>,
    /// Publish a port: HOSTPORT:PORT (repeatable).
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Copy-on-write: run on an overlay of the shared image and a
    /// per-instance upper layer instead of a full copy of the disk.
    #[arg(long)]
    pub cow: bool,
    /// Mount a volume: NAME:/path[:ro] (a named volume, created with the default
    /// size of 1g if it does not exist, as docker does) or /host/dir:/path[:ro]
    /// (a bind mount of an existing host path). Repeatable.
    #[arg(short = 'v', long = "volume", value_name = "SRC:/PATH[:ro]")]
    pub volume: Vec<String>,
    /// Mount a tmpfs: /path[:size=64m,mode=1777,noexec] (repeatable).
    #[arg(long, value_name = "/PATH[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Mount the root file system read-only (volumes, binds and tmpfs stay writable).
    #[arg(long)]
    pub read_only: bool,
    /// Health check.
    #[command(flatten)]
    pub health: HealthArgs,
    /// Keep stdin open: input reaches the process (from a foreground run or `attach`).
    #[arg(short, long)]
    pub interactive: bool,
    /// Run the process on a terminal (Ctrl-P Ctrl-Q detaches an attached one).
    #[arg(short, long)]
    pub tty: bool,
    /// Remove the instance (disk, network, record) when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Security options.
    #[command(flatten)]
    pub security: SecurityArgs,
    /// Label KEY=VALUE (repeatable; shown by inspect, matched by `ps --filter label=`).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// `host`: no user namespace of its own, container root is host root (as with
    /// --privileged or --device). Default: its own user namespace, root inside mapped to
    /// an unprivileged host uid range of 65536 (see `boxctl inspect`).
    #[arg(long, value_name = "host")]
    pub userns: Option<String>,
    /// Image.
    pub image: String,
    /// Command and arguments (default: the image's).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl From<&LimitArgs> for LimitSpec {
    fn from(a: &LimitArgs) -> LimitSpec {
        LimitSpec {
            memory: a.memory.clone(),
            cpus: a.cpus.clone(),
            cpuset: a.cpuset.clone(),
            pids: a.pids.clone(),
            io_read_bps: a.io_read_bps.clone(),
            io_write_bps: a.io_write_bps.clone(),
            io_read_iops: a.io_read_iops.clone(),
            io_write_iops: a.io_write_iops.clone(),
        }
    }
}

impl From<&RunArgs> for InstanceOptions {
    fn from(a: &RunArgs) -> InstanceOptions {
        InstanceOptions {
            name: a.name.clone(),
            env: a.env.clone(),
            workdir: a.workdir.clone(),
            user: a.user.clone(),
            hostname: a.hostname.clone(),
            entrypoint: a.entrypoint.clone(),
            limits: LimitSpec::from(&a.limits),
            restart: a.restart.clone(),
            net: a.net.clone(),
            publish: a.publish.clone(),
            cow: a.cow,
            volumes: a.volume.clone(),
            tmpfs: a.tmpfs.clone(),
            read_only: a.read_only,
            health: HealthOptions::from(&a.health),
            session: Session {
                interactive: a.interactive,
                tty: a.tty,
                auto_remove: a.rm,
            },
            security: SecurityOptions::from(&a.security),
            labels: a.label.clone(),
            userns: a.userns.clone().unwrap_or_default(),
            image: a.image.clone(),
            command: a.command.clone(),
        }
    }
}

/// Health-check options of run and create.
#[derive(Debug, Args, Default, Clone)]
pub struct HealthArgs {
    /// Command run in the instance (`/bin/sh -c CMD`) to check its health; exit 0 is healthy.
    #[arg(long)]
    pub health_cmd: Option<String>,
    /// Time between checks (default 30s; at least 100ms).
    #[arg(long)]
    pub health_interval: Option<String>,
    /// Consecutive failures that make the instance unhealthy (default 3).
    #[arg(long)]
    pub health_retries: Option<String>,
    /// Time after a start during which failures do not count (default 0s).
    #[arg(long)]
    pub health_start_period: Option<String>,
    /// Time a check may take before it counts as failed (default 30s).
    #[arg(long)]
    pub health_timeout: Option<String>,
    /// No health check.
    #[arg(long)]
    pub no_healthcheck: bool,
}

impl From<&HealthArgs> for HealthOptions {
    fn from(a: &HealthArgs) -> HealthOptions {
        HealthOptions {
            cmd: a.health_cmd.clone(),
            interval: a.health_interval.clone(),
            timeout: a.health_timeout.clone(),
            start_period: a.health_start_period.clone(),
            retries: a.health_retries.clone(),
            disabled: a.no_healthcheck,
        }
    }
}

/// `farm` subcommands.
#[derive(Debug, Subcommand)]
pub enum FarmCmd {
    /// Write a farm as a compose file for `docker stack deploy` or as Kubernetes
    /// manifests (RuntimeClass boxrun, a Deployment and a Service per service).
    Export {
        /// Farm file (farm.toml, or a compose file: .yaml/.yml).
        file: PathBuf,
        /// What to write.
        #[arg(long, value_enum, default_value = "compose")]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// `farm export --format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// A compose file for `docker stack deploy` (and `boxctl up`).
    Compose,
    /// Kubernetes manifests for `kubectl apply`.
    Kube,
}

/// `boxctl up` and `boxctl down`.
#[derive(Debug, Args)]
pub struct FarmArgs {
    /// Farm file: TOML, or a compose file (.yaml/.yml).
    #[arg(short = 'f', long = "file", default_value = "farm.toml")]
    pub file: PathBuf,
}

/// `boxctl scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Farm file.
    #[arg(short = 'f', long = "file", default_value = "farm.toml")]
    pub file: PathBuf,
    /// SERVICE=N (repeatable).
    #[arg(required = true)]
    pub services: Vec<String>,
}

/// Security options of run and create.
#[derive(Debug, Args, Default, Clone)]
pub struct SecurityArgs {
    /// Add a capability (NET_ADMIN or CAP_NET_ADMIN, or ALL) to docker's default set (repeatable).
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability (or ALL) from the set (repeatable).
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// no-new-privileges[=true|false] (default true), seccomp=PROFILE.json (OCI or
    /// docker form, copied into the instance) or seccomp=unconfined (the default:
    /// boxctl sets no seccomp filter). Repeatable.
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Give the instance a host device: HOST[:CONTAINER][:rwm] (repeatable).
    #[arg(long, value_name = "HOST[:CTR][:rwm]")]
    pub device: Vec<String>,
    /// Resource limit NAME=SOFT[:HARD], docker names (nofile, nproc, core, memlock, stack, ...;
    /// -1: unlimited). Repeatable.
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm (default 64m).
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Privileged: every capability, every host device (and the cgroup rule allowing all),
    /// no seccomp filter, no_new_privs off, no masked or read-only /proc paths, /sys
    /// writable, no user namespace (container root is host root). The instance can
    /// then take over the host: only for trusted images.
    #[arg(long)]
    pub privileged: bool,
}

impl From<&SecurityArgs> for SecurityOptions {
    fn from(a: &SecurityArgs) -> SecurityOptions {
        SecurityOptions {
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            security_opt: a.security_opt.clone(),
            devices: a.device.clone(),
            ulimits: a.ulimit.clone(),
            shm_size: a.shm_size.clone(),
            privileged: a.privileged,
        }
    }
}
