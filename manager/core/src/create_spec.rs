//! What makes an instance: [`CreateSpec`], and [`InstanceOptions`] (the
//! options of `create`/`run` as a user writes them) checked into one.

use std::path::PathBuf;

use crate::error::Result;
use crate::healthcheck::{Health, HealthOptions};
use crate::instance_file::Session;
use crate::invalid;
use crate::limits::{LimitSpec, Limits, RestartPolicy};
use crate::security::{Security, SecurityOptions};
use crate::volume_spec::Storage;
use crate::{default_network, runtime_cli, util};

/// Everything `create`/`run` need to make an instance.
#[derive(Debug, Clone, Default)]
pub struct CreateSpec {
    /// Name (None: generated from the image and id).
    pub name: Option<String>,
    /// Image name.
    pub image: String,
    /// Command override (None: the image's entrypoint + cmd, else `/bin/sh`).
    pub command: Vec<String>,
    /// Entrypoint override.
    pub entrypoint: Option<Vec<String>>,
    /// Extra environment.
    pub env: Vec<String>,
    /// Working directory override.
    pub workdir: Option<String>,
    /// User override.
    pub user: Option<String>,
    /// Hostname.
    pub hostname: Option<String>,
    /// Limits.
    pub limits: Limits,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// Runtime binary.
    pub runtime: PathBuf,
    /// `none`, `host` or `bridge`.
    pub net_mode: String,
    /// `NAME=ADDR` entries.
    pub networks: Vec<String>,
    /// `HOSTPORT:PORT` entries.
    pub publish: Vec<String>,
    /// Copy-on-write: overlay on the shared image instead of a full copy.
    pub cow: bool,
    /// Volumes, bind mounts, tmpfs mounts, read-only root.
    pub storage: Storage,
    /// Health check (none when `cmd` is None).
    pub health: Health,
    /// `-i`, `-t`, `--rm`.
    pub session: Session,
    /// Security options.
    pub security: Security,
    /// The checked seccomp profile copied into the instance (`seccomp=FILE`).
    pub seccomp_profile: Option<String>,
    /// Labels, `KEY=VALUE` each.
    pub labels: Vec<String>,
    /// Container root is host root (`--privileged`, `--device`, `--userns=host`); else
    /// the instance gets its own user namespace and host id range.
    pub host_userns: bool,
}

/// The options of `create`/`run` as a user gives them; [`CreateSpec::from_options`]
/// checks them.
#[derive(Debug, Clone, Default)]
pub struct InstanceOptions {
    /// Instance name.
    pub name: Option<String>,
    /// Environment, `KEY=VALUE` each.
    pub env: Vec<String>,
    /// Working directory.
    pub workdir: Option<String>,
    /// User (uid[:gid] or name[:group]).
    pub user: Option<String>,
    /// Hostname (default: the instance name).
    pub hostname: Option<String>,
    /// Entrypoint override (empty string clears it).
    pub entrypoint: Option<String>,
    /// Limits.
    pub limits: LimitSpec,
    /// Restart policy: no, always, on-failure[:N].
    pub restart: String,
    /// Networks: none, host, or NAME[:ADDR/PREFIX] each (empty: the default
    /// network, see [`crate::default_network`]).
    pub net: Vec<String>,
    /// Published ports, `[IP:]HOSTPORT:PORT` each.
    pub publish: Vec<String>,
    /// Copy-on-write instance.
    pub cow: bool,
    /// `-v NAME:/path[:ro]` or `/host/path:/path[:ro]` each.
    pub volumes: Vec<String>,
    /// `--tmpfs /path[:size=64m,mode=1777]` each.
    pub tmpfs: Vec<String>,
    /// Mount the root file system read-only.
    pub read_only: bool,
    /// Health-check options.
    pub health: HealthOptions,
    /// `-i`, `-t`, `--rm` (`--rm` refuses a restart policy other than `no`).
    pub session: Session,
    /// Capabilities, security options, devices, ulimits, /dev/shm size, privileged.
    pub security: SecurityOptions,
    /// `--label KEY=VALUE` each.
    pub labels: Vec<String>,
    /// `--userns`: `host` for none of its own (empty: its own).
    pub userns: String,
    /// Image.
    pub image: String,
    /// Command and arguments (empty: the image's).
    pub command: Vec<String>,
}

impl CreateSpec {
    /// Check `o` and make the spec; `runtime` as `--runtime` gives it.
    pub fn from_options(o: &InstanceOptions, runtime: Option<&str>) -> Result<CreateSpec> {
        let limits = o.limits.parse()?;
        let restart: RestartPolicy = o.restart.parse()?;
        let health = o.health.parse()?;
        if restart.acts_on_unhealthy() && !health.enabled() {
            invalid!("--restart {restart} needs a health check: give --health-cmd");
        }
        // No --net: the store's default network, as docker's docker0.
        let (mut net_mode, mut networks) = if o.net.is_empty() {
            (
                "bridge".to_string(),
                vec![default_network::default_attachment()],
            )
        } else {
            ("none".to_string(), Vec::new())
        };
        for n in &o.net {
            match n.as_str() {
                "none" | "host" => net_mode = n.clone(),
                other => {
                    net_mode = "bridge".into();
                    let (name, addr) = other.split_once(':').unwrap_or((other, ""));
                    util::validate_name("network", name)?;
                    networks.push(format!("{name}={addr}"));
                }
            }
        }
        if o.session.auto_remove && restart != RestartPolicy::No {
            invalid!("--rm and --restart {} conflict: an instance removed when it exits cannot be restarted; drop one of them", o.restart);
        }
        for e in &o.env {
            if !e.contains('=') || e.starts_with('=') {
                invalid!("invalid --env {e:?}: expected KEY=VALUE");
            }
        }
        let (security, seccomp_profile) = o.security.parse()?;
        let labels = crate::labels::parse(&o.labels)?;
        // Host device nodes are host root's: in a user namespace its root
        // could not open them, so `--device` keeps the host's ids too.
        let host_userns = match o.userns.as_str() {
            "" => security.privileged || !security.devices.is_empty(),
            "host" => true,
            other => invalid!("invalid --userns {other:?}: the only value is `host` (no user namespace of its own)"),
        };
        Ok(CreateSpec {
            name: o.name.clone(),
            image: o.image.clone(),
            command: o.command.clone(),
            entrypoint: o.entrypoint.as_ref().map(|e| {
                if e.is_empty() {
                    Vec::new()
                } else {
                    vec![e.clone()]
                }
            }),
            env: o.env.clone(),
            workdir: o.workdir.clone(),
            user: o.user.clone(),
            hostname: o.hostname.clone(),
            limits,
            restart,
            runtime: runtime_cli::locate(runtime)?,
            net_mode,
            networks,
            publish: o.publish.clone(),
            cow: o.cow,
            storage: Storage::new(&o.volumes, &o.tmpfs, o.read_only)?,
            health,
            session: o.session,
            security,
            seccomp_profile,
            labels,
            host_userns,
        })
    }
}
