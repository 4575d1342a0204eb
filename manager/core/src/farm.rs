//! Farms: `boxctl up`, `down` and `scale` for a compose-like description of
//! images, networks and services (see bundles/webfarm/README.md).
//!
//! Everything a farm makes is named after it (`NAME-NET` networks,
//! `NAME-SERVICE[-N]` instances), so `up` finds what already exists and only
//! makes or starts what is missing, and `down` removes exactly what `up`
//! made. A service with a `balance` section is an nginx reverse proxy whose
//! upstream list (the backend service's addresses) `up` and `scale` write
//! into the proxy instance and reload gracefully: new backends are added only
//! once they answer, and a backend leaves the list (reload finished, old
//! workers gone) before its instance is removed, so no request is sent to a
//! server that is going away.

pub mod file;
mod nginx;
pub mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::healthcheck::HealthStatus;
use crate::instance_file::{Instance, Status};
use crate::lifecycle::{self, CreateSpec};
use crate::limits::{self, Limits};
use crate::store::{LockGuard, Store};
use crate::{image, instance, networking, procs, runtime_cli};
use nginx::Backend;
use spec::{Farm, Service};

/// How long a new instance may take to answer its health check.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What `up`, `down` and `scale` report as they go; the front end words it.
#[derive(Debug)]
pub enum Event<'a> {
    /// Another `up`, `down` or `scale` of the farm holds its lock: waiting.
    WaitingForLock {
        /// Farm name.
        farm: &'a str,
    },
    /// An image's root filesystem is being built by its build script.
    ImageBuilding {
        /// Image name.
        image: &'a str,
        /// Root filesystem being built.
        rootfs: &'a Path,
        /// The build script.
        build: &'a Path,
    },
    /// An image was imported.
    ImageImported {
        /// Image name.
        image: &'a str,
        /// Where from.
        rootfs: &'a Path,
    },
    /// A network was created.
    NetworkCreated {
        /// The network.
        network: &'a networking::Network,
    },
    /// A network was removed.
    NetworkRemoved {
        /// Network name.
        name: &'a str,
    },
    /// A named volume was created.
    VolumeCreated {
        /// Volume name.
        name: &'a str,
    },
    /// A named volume was removed (`down --volumes`).
    VolumeRemoved {
        /// Volume name.
        name: &'a str,
    },
    /// An instance was created and started.
    InstanceCreated {
        /// The instance.
        instance: &'a Instance,
    },
    /// A stopped instance was started.
    InstanceStarted {
        /// Instance name.
        name: &'a str,
    },
    /// A new instance answers its health check.
    InstanceReady {
        /// Instance name.
        name: &'a str,
    },
    /// An instance was removed.
    InstanceRemoved {
        /// Instance name.
        name: &'a str,
    },
    /// An instance's limits were brought to the file's.
    LimitsUpdated {
        /// Instance name.
        name: &'a str,
    },
    /// A proxy's backend list was written (`outcome`: `unchanged` or `reloaded`).
    ProxyUpdated {
        /// Proxy instance name.
        name: &'a str,
        /// What the install script said.
        outcome: &'a str,
        /// How many backends the list has.
        backends: usize,
    },
    /// An instance runs another image than its service says.
    ImageMismatch {
        /// Instance name.
        instance: &'a str,
        /// The image it runs.
        has: &'a str,
        /// Service key.
        service: &'a str,
        /// The image the file says.
        wants: &'a str,
    },
    /// An instance has a limit the file no longer sets (only remaking lifts it).
    LimitDropped {
        /// Instance name.
        instance: &'a str,
    },
    /// The farm is served at `url` (one event per published port, at the end of `up`).
    Serving {
        /// Where a browser reaches it, e.g. `http://127.0.0.1:8080/`.
        url: &'a str,
    },
    /// One step of `down` failed; the others go on.
    Failed(&'a Error),
}

/// Where a farm's progress goes.
pub type Report<'r> = &'r mut dyn FnMut(Event<'_>);

/// `boxctl up -f FILE`: make or start whatever is missing; idempotent.
pub fn up(store: &Store, runtime: Option<&str>, file: &Path, report: Report) -> Result<()> {
    let farm = file::load(file)?;
    let _lock = lock_farm(store, &farm, report)?;
    ensure_images(store, &farm, report)?;
    ensure_networks(store, &farm, report)?;
    for name in farm.volume_names()? {
        if crate::volumes::get(store, &name).is_err() {
            crate::volumes::create(store, &name, None)?;
            report(Event::VolumeCreated { name: &name });
        }
    }
    converge(store, &farm, runtime, &BTreeMap::new(), report)?;
    save_record(store, &farm, file, &BTreeMap::new())?;
    for p in farm.services.values().flat_map(|s| &s.publish) {
        let (listen, _) = networking::parse_publish(p)?;
        report(Event::Serving {
            url: &boxctl_network::forward::local_url(listen),
        });
    }
    Ok(())
}

/// `boxctl scale -f FILE SERVICE=N`: the farm must be up.
pub fn scale(
    store: &Store,
    runtime: Option<&str>,
    file: &Path,
    services: &[String],
    report: Report,
) -> Result<()> {
    let farm = file::load(file)?;
    let _lock = lock_farm(store, &farm, report)?;
    let mut want = BTreeMap::new();
    for s in services {
        let (key, n) = s
            .split_once('=')
            .with_context(|| format!("invalid {s:?}: expected SERVICE=N, e.g. web=5"))?;
        let n: u32 =
            n.parse().ok().filter(|n| *n <= 200).with_context(|| {
                format!("invalid {s:?}: N must be a whole number from 0 to 200")
            })?;
        let svc = farm
            .services
            .get(key)
            .with_context(|| format!("farm {} has no service {key}", farm.name))?;
        if svc.replicas.is_none() {
            bail!(
                "service {key} has one instance: give it `replicas` in the farm file to scale it"
            );
        }
        want.insert(key.to_string(), n);
    }
    let nets = networking::load(store)?;
    if let Some(k) = farm
        .networks
        .keys()
        .find(|k| !nets.contains_key(&farm.network_name(k)))
    {
        bail!(
            "farm {} is not up (network {} is missing): run `boxctl up -f {}` first",
            farm.name,
            farm.network_name(k),
            file.display()
        );
    }
    converge(store, &farm, runtime, &want, report)?;
    save_record(store, &farm, file, &want)
}

/// `boxctl down -f FILE`: remove the farm's instances (proxies first) and
/// networks, and its named volumes when `volumes`. A step that fails is
/// reported and the others go on; returns how many failed.
pub fn down(store: &Store, file: &Path, volumes: bool, report: Report) -> Result<usize> {
    let farm = file::load(file)?;
    let _lock = lock_farm(store, &farm, report)?;
    // First, so that no health change refreshes a proxy being removed.
    let _ = std::fs::remove_file(record_path(store, &farm.name));
    let list = lifecycle::refresh(store)?;
    let mut failed = 0;
    let mut order = farm.start_order();
    order.reverse();
    for key in order {
        for inst in list
            .iter()
            .filter(|i| belongs(&farm, key, &i.name).is_some())
        {
            match lifecycle::remove(store, &inst.id, true) {
                Ok(()) => report(Event::InstanceRemoved { name: &inst.name }),
                Err(e) => {
                    report(Event::Failed(&e));
                    failed += 1;
                }
            }
        }
    }
    let nets = networking::load(store)?;
    for key in farm.networks.keys() {
        let name = farm.network_name(key);
        if !nets.contains_key(&name) {
            continue;
        }
        match networking::remove(store, &name) {
            Ok(()) => report(Event::NetworkRemoved { name: &name }),
            Err(e) => {
                report(Event::Failed(&e));
                failed += 1;
            }
        }
    }
    let names = if volumes {
        farm.volume_names()?
    } else {
        Vec::new()
    };
    for name in names {
        if crate::volumes::get(store, &name).is_err() {
            continue;
        }
        match crate::volumes::remove(store, &name) {
            Ok(()) => report(Event::VolumeRemoved { name: &name }),
            Err(e) => {
                report(Event::Failed(&e));
                failed += 1;
            }
        }
    }
    Ok(failed)
}

/// What a farm that is up leaves in the store (`ROOT/farms/NAME.json`) for
/// the health checkers of its instances: the farm file as `up` or `scale`
/// read it and the replica counts `scale` set, so that a backend's health
/// change can rewrite the proxy's upstream list as `scale` would.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Record {
    /// The farm file's text.
    text: String,
    /// Its directory (relative paths).
    dir: std::path::PathBuf,
    /// Replica counts `scale` gave.
    overrides: BTreeMap<String, u32>,
    /// The text is a compose file.
    #[serde(default)]
    compose: bool,
}

fn record_path(store: &Store, farm: &str) -> std::path::PathBuf {
    store.root().join("farms").join(format!("{farm}.json"))
}

/// Write the farm's record (under the farm lock).
fn save_record(
    store: &Store,
    farm: &Farm,
    file: &Path,
    overrides: &BTreeMap<String, u32>,
) -> Result<()> {
    let rec = Record {
        text: std::fs::read_to_string(file)
            .with_context(|| format!("cannot read farm file {}", file.display()))?,
        dir: farm.dir.clone(),
        overrides: overrides.clone(),
        compose: crate::compose::is_compose(file),
    };
    crate::store::write_atomic(
        &record_path(store, &farm.name),
        serde_json::to_string(&rec)?.as_bytes(),
    )
}

/// Rewrite the upstream list of every proxy (of a farm that is up) whose
/// backends `inst` is one of: called by `inst`'s health checker when its
/// health changes, under the farm's lock.
pub fn refresh_proxy_of(store: &Store, inst: &Instance) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(store.root().join("farms")) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        let rec: Record = serde_json::from_slice(&data)
            .with_context(|| format!("farm record {} is damaged", path.display()))?;
        let farm = file::from_text(&rec.text, &rec.dir, rec.compose)?;
        for (key, svc) in &farm.services {
            let Some(b) = &svc.balance else { continue };
            if belongs(&farm, &b.backends, &inst.name).is_none() {
                continue;
            }
            let _lock = lock_farm(store, &farm, &mut |_| {})?;
            if !path.exists() {
                return Ok(()); // brought down meanwhile
            }
            let Ok(proxy) = store.find(&farm.instance_name(key, None)) else {
                continue;
            };
            if proxy.status == Status::Running {
                update_proxy(store, &farm, key, svc, &proxy, &rec.overrides, &mut |_| {})?;
            }
        }
    }
    Ok(())
}

/// Serialise `up`, `down` and `scale` of one farm: ROOT/farms/NAME.lock
/// (flock, released when the returned file is dropped or the process dies).
fn lock_farm(store: &Store, farm: &Farm, report: Report) -> Result<LockGuard> {
    let dir = store.root().join("farms");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    crate::store::lock_file_or_wait(&dir.join(format!("{}.lock", farm.name)), || {
        report(Event::WaitingForLock { farm: &farm.name })
    })
}

/// Whether instance `name` belongs to service `key`: Some(None) for the
/// single instance, Some(Some(n)) for replica n.
fn belongs(farm: &Farm, key: &str, name: &str) -> Option<Option<u32>> {
    if name == farm.instance_name(key, None) {
        return Some(None);
    }
    let rest = name.strip_prefix(&format!("{}-{key}-", farm.name))?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) || rest.starts_with('0') {
        return None;
    }
    rest.parse().ok().map(Some)
}

/// Import every image a service uses that the store lacks, building its
/// root filesystem first when the file says how.
fn ensure_images(store: &Store, farm: &Farm, report: Report) -> Result<()> {
    let used: BTreeSet<&str> = farm.services.values().map(|s| s.image.as_str()).collect();
    for name in used {
        if image::get(store, name).is_ok() {
            continue;
        }
        let Some(spec) = farm.images.get(name) else {
            bail!(
                "image {name} is missing: import it with `boxctl image import DIR {name}` \
                 or describe it in an [images.{name}] section"
            );
        };
        let Some(rootfs) = spec.rootfs.as_deref().map(|r| farm.path(r)) else {
            bail!("image {name} is missing and [images.{name}] has no rootfs: import it with `boxctl image import DIR {name}`");
        };
        if !rootfs.exists() {
            let Some(build) = spec.build.as_deref().map(|b| farm.path(b)) else {
                bail!(
                    "image {name}: {} does not exist and [images.{name}] has no build script",
                    rootfs.display()
                );
            };
            report(Event::ImageBuilding {
                image: name,
                rootfs: &rootfs,
                build: &build,
            });
            if let Some(parent) = rootfs.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            let st = Command::new("sh")
                .arg(&build)
                .arg(&rootfs)
                .stdin(Stdio::null())
                .status()
                .with_context(|| format!("cannot run {}", build.display()))?;
            if !st.success() || !rootfs.exists() {
                bail!(
                    "image {name}: {} {} failed ({st}): see its messages above",
                    build.display(),
                    rootfs.display()
                );
            }
        }
        let size = spec
            .size
            .as_deref()
            .map(|s| limits::parse_size("size", s))
            .transpose()?;
        image::import(store, &rootfs, name, size)
            .with_context(|| format!("cannot import image {name} from {}", rootfs.display()))?;
        report(Event::ImageImported {
            image: name,
            rootfs: &rootfs,
        });
    }
    Ok(())
}

/// Create the farm's networks that do not exist; refuse one whose subnet
/// differs from the file.
fn ensure_networks(store: &Store, farm: &Farm, report: Report) -> Result<()> {
    let existing = networking::load(store)?;
    for (key, spec) in &farm.networks {
        let name = farm.network_name(key);
        match existing.get(&name) {
            Some(n) => {
                if let Some(want) = &spec.subnet {
                    if want != &n.subnet {
                        bail!(
                            "network {name} exists with subnet {} but the file says {want}: \
                             run `boxctl down` first",
                            n.subnet
                        );
                    }
                }
            }
            None => {
                let n =
                    networking::create(store, &name, spec.subnet.as_deref(), None, spec.internal)?;
                report(Event::NetworkCreated { network: &n });
            }
        }
    }
    Ok(())
}

/// Bring every service to its wanted number of instances (`overrides` or
/// the file's), then rewrite the proxies' backend lists, then remove the
/// instances no longer wanted.
fn converge(
    store: &Store,
    farm: &Farm,
    runtime: Option<&str>,
    overrides: &BTreeMap<String, u32>,
    report: Report,
) -> Result<()> {
    let runtime = runtime_cli::locate(runtime)?;
    let mut surplus: Vec<Instance> = Vec::new();
    for key in farm.start_order() {
        let svc = &farm.services[key];
        let list = lifecycle::refresh(store)?;
        let mine: Vec<(Option<u32>, Instance)> = list
            .into_iter()
            .filter_map(|i| belongs(farm, key, &i.name).map(|n| (n, i)))
            .collect();
        let wanted: Vec<Option<u32>> = match overrides.get(key).copied().or(svc.replicas) {
            Some(n) if svc.replicas.is_some() => (1..=n).map(Some).collect(),
            _ => vec![None],
        };
        for (n, inst) in &mine {
            if !wanted.contains(n) {
                surplus.push(inst.clone());
            }
        }
        let mut fresh = Vec::new();
        for n in &wanted {
            let name = farm.instance_name(key, *n);
            let existing = mine.iter().find(|(m, _)| m == n).map(|(_, i)| i);
            if let Some(inst) =
                ensure_instance(store, farm, (key, svc), &name, existing, &runtime, report)?
            {
                fresh.push(inst);
            }
        }
        for inst in &fresh {
            if svc.balance.is_none() {
                wait_ready(store, farm, svc, inst)?;
                report(Event::InstanceReady { name: &inst.name });
            }
        }
        if svc.balance.is_some() {
            for n in &wanted {
                let inst = store.find(&farm.instance_name(key, *n))?;
                update_proxy(store, farm, key, svc, &inst, overrides, report)?;
            }
        }
    }
    for inst in surplus {
        lifecycle::remove(store, &inst.id, true)?;
        report(Event::InstanceRemoved { name: &inst.name });
    }
    Ok(())
}

/// Make sure instance `name` of service `(key, svc)` exists and runs.
/// Returns it when it was created or started now.
fn ensure_instance(
    store: &Store,
    farm: &Farm,
    (key, svc): (&str, &Service),
    name: &str,
    existing: Option<&Instance>,
    runtime: &Path,
    report: Report,
) -> Result<Option<Instance>> {
    let limits = svc.limits()?;
    if let Some(inst) = existing {
        if inst.image != svc.image {
            report(Event::ImageMismatch {
                instance: name,
                has: &inst.image,
                service: key,
                wants: &svc.image,
            });
        }
        if inst.limits != limits {
            update_limits(store, inst, &limits, report)?;
        }
        return match inst.status {
            Status::Running | Status::Restarting => Ok(None),
            Status::Created | Status::Exited => {
                let inst = lifecycle::start(store, &inst.id)?;
                report(Event::InstanceStarted { name });
                Ok(Some(inst))
            }
            Status::Creating | Status::Removing => {
                bail!("instance {name} is being created or removed by another boxctl: try again")
            }
        };
    }
    let networks: Vec<String> = svc
        .networks
        .iter()
        .map(|n| format!("{}=", farm.network_name(n)))
        .collect();
    let spec = CreateSpec {
        name: Some(name.to_string()),
        image: svc.image.clone(),
        command: svc.command.clone(),
        entrypoint: svc.entrypoint.clone(),
        env: svc.env.clone(),
        labels: svc.labels.clone(),
        limits,
        restart: svc.restart_policy()?,
        runtime: runtime.to_path_buf(),
        net_mode: if networks.is_empty() {
            "none"
        } else {
            "bridge"
        }
        .into(),
        networks,
        publish: svc.publish.clone(),
        cow: svc.cow,
        storage: farm.storage(svc)?,
        health: svc.health.check.parse()?,
        ..CreateSpec::default()
    };
    let inst = lifecycle::create(store, &spec)?;
    if let Err(e) = lifecycle::start(store, &inst.id) {
        let _ = lifecycle::remove(store, &inst.id, true);
        return Err(e.context(format!("cannot start instance {name}")));
    }
    let inst = store.find(&inst.id)?;
    report(Event::InstanceCreated { instance: &inst });
    Ok(Some(inst))
}

/// Bring an instance's limits to the file's, in process through
/// [`instance::update_limits`] (live when it runs). A limit the file dropped
/// cannot be lifted that way: report it.
fn update_limits(store: &Store, inst: &Instance, want: &Limits, report: Report) -> Result<()> {
    let l = &inst.limits;
    if (l.memory.is_some() && want.memory.is_none())
        || (l.cpus.is_some() && want.cpus.is_none())
        || (l.pids.is_some() && want.pids.is_none())
    {
        report(Event::LimitDropped {
            instance: &inst.name,
        });
    }
    let changed = (want.memory.is_some() && want.memory != l.memory)
        || (want.cpus.is_some() && want.cpus != l.cpus)
        || (want.pids.is_some() && want.pids != l.pids);
    if !changed {
        return Ok(());
    }
    instance::update_limits(store, &inst.id, want)
        .map_err(|e| e.context(format!("cannot update the limits of {}", inst.name)))?;
    report(Event::LimitsUpdated { name: &inst.name });
    Ok(())
}

/// The IPv4 address of `inst` on boxctl network `network`.
fn address_on(inst: &Instance, network: &str) -> Option<Ipv4Addr> {
    inst.attachments()
        .into_iter()
        .find(|a| a.network == network)
        .and_then(|a| a.address.split('/').next().and_then(|s| s.parse().ok()))
}

/// Wait until `inst` answers 200 on the service's health path, asked from inside
/// the instance's own network namespace (its address on the service's first
/// network): internal networks have no address on the host, so the host cannot
/// reach them, and the check must not depend on it.
fn wait_ready(store: &Store, farm: &Farm, svc: &Service, inst: &Instance) -> Result<()> {
    let Some(net) = svc.networks.first() else {
        return Ok(());
    };
    let addr = address_on(inst, &farm.network_name(net))
        .with_context(|| format!("instance {} has no address on {net}", inst.name))?;
    let target = SocketAddr::from((addr, svc.port));
    let ns = store.instance_dir(&inst.id).join("netns");
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        let health = svc.health.path.clone();
        let res = boxctl_network::netns::run_in(&ns, move || http_status(target, &health));
        match res {
            Ok(Ok(200)) => return Ok(()),
            Ok(Ok(code)) => last = format!("status {code}"),
            Ok(Err(e)) => last = e.to_string(),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "instance {} does not answer http://{target}{} after {} s ({last}): see `boxctl logs {}`",
        inst.name,
        svc.health.path,
        READY_TIMEOUT.as_secs(),
        inst.name
    )
}

/// One HTTP/1.0 GET; the status code.
fn http_status(target: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", target.ip()).as_bytes())?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

/// Write the proxy's backend list (the wanted, running instances of its
/// backend service) into it and reload nginx when it changed.
fn update_proxy(
    store: &Store,
    farm: &Farm,
    key: &str,
    svc: &Service,
    proxy: &Instance,
    overrides: &BTreeMap<String, u32>,
    report: Report,
) -> Result<()> {
    let Some(b) = &svc.balance else {
        return Ok(());
    };
    let back_svc = &farm.services[&b.backends];
    let net_key = farm
        .backend_network(svc)
        .with_context(|| format!("service {key}: no network shared with {}", b.backends))?;
    let net = farm.network_name(&net_key);
    let count = overrides
        .get(&b.backends)
        .copied()
        .or(back_svc.replicas)
        .unwrap_or(1);
    let list = store.load()?;
    let mut backends = Vec::new();
    let indexes: Vec<Option<u32>> = if back_svc.replicas.is_some() {
        (1..=count).map(Some).collect()
    } else {
        vec![None]
    };
    for n in indexes {
        let name = farm.instance_name(&b.backends, n);
        if let Some(inst) = list.iter().find(|i| i.name == name) {
            // Out of the list while its health check fails; back once it passes.
            if inst.health.status == Some(HealthStatus::Unhealthy) {
                continue;
            }
            let addr = address_on(inst, &net)
                .with_context(|| format!("instance {name} has no address on {net}"))?;
            backends.push(Backend { name, addr });
        }
    }
    let conf = nginx::render(&farm.name, b, back_svc.port, &backends);
    let outcome = install_config(store, proxy, &b.config_path, &conf)?;
    report(Event::ProxyUpdated {
        name: &proxy.name,
        outcome: &outcome,
        backends: backends.len(),
    });
    Ok(())
}

/// Run the install script in the proxy instance with `conf` on its stdin;
/// `unchanged` or `reloaded`.
fn install_config(store: &Store, proxy: &Instance, path: &str, conf: &str) -> Result<String> {
    // The start may still be completing (restart policy): wait for a pid.
    let deadline = Instant::now() + READY_TIMEOUT;
    let inst = loop {
        let i = store.find(&proxy.id)?;
        if i.status == Status::Running && i.pid.is_some_and(procs::alive) {
            break i;
        }
        if Instant::now() > deadline {
            bail!(
                "proxy instance {} is not running: see `boxctl logs {}`",
                i.name,
                i.name
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let rt = lifecycle::runtime_for(store, &inst);
    let mut child = rt
        .command()
        .arg("exec")
        .arg(&inst.id)
        .args(["sh", "-c", nginx::INSTALL_SCRIPT, "sh", path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run runtime {}", rt.bin.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(conf.as_bytes())
            .with_context(|| format!("cannot send the nginx configuration to {}", inst.name))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("cannot wait for exec in {}", inst.name))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said = stdout.lines().last().unwrap_or("").trim().to_string();
    if !out.status.success() || !matches!(said.as_str(), "unchanged" | "reloaded") {
        bail!(
            "cannot update the nginx configuration of {}: {}",
            inst.name,
            runtime_cli::last_line(&out.stderr)
        );
    }
    Ok(said)
}

/// The farm (one that is up) whose service instance `name` would be, if any:
/// such names are how `down` and `scale` find their instances.
pub fn owner_of(store: &Store, name: &str) -> Option<String> {
    let rd = std::fs::read_dir(store.root().join("farms")).ok()?;
    for e in rd.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Some(rec) = std::fs::read(&path)
            .ok()
            .and_then(|d| serde_json::from_slice::<Record>(&d).ok())
        else {
            continue;
        };
        let Ok(farm) = file::from_text(&rec.text, &rec.dir, rec.compose) else {
            continue;
        };
        if farm
            .services
            .keys()
            .any(|k| belongs(&farm, k, name).is_some())
        {
            return Some(farm.name);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ownership() {
        let farm = Farm::parse(
            "name = \"wf\"\n[services.web]\nimage = \"w\"\nreplicas = 2\n\
             [services.web2]\nimage = \"w\"\n",
        )
        .unwrap();
        assert_eq!(belongs(&farm, "web", "wf-web-3"), Some(Some(3)));
        assert_eq!(belongs(&farm, "web", "wf-web"), Some(None));
        assert_eq!(belongs(&farm, "web", "wf-web-03"), None);
        assert_eq!(belongs(&farm, "web", "wf-web-x"), None);
        assert_eq!(belongs(&farm, "web", "wf-web2"), None);
        assert_eq!(belongs(&farm, "web2", "wf-web2"), Some(None));
        assert_eq!(belongs(&farm, "web", "other-web-1"), None);
    }
}
