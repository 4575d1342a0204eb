//! The instance file: every instance and its characteristics in one
//! human-readable text file.
//!
//! One `[ID]` section per instance, one `key = value` line per
//! characteristic, values written as JSON scalars or arrays of strings,
//! which keeps the file valid TOML:
//!
//! ```text
//! [3f2a9c01b7de]
//! name = "web1"
//! image = "busybox"
//! status = "running"
//! memory = 268435456
//! networks = ["br0=10.209.0.2/24"]
//! ```

use crate::bail;
use crate::error::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::limits::{Limits, RestartPolicy};
use crate::volume_spec::Storage;

/// Life-cycle state of an instance as recorded in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Disk being copied / bundle being prepared by a boxctl command.
    Creating,
    /// Disk ready, never started (or being started).
    Created,
    /// The container is running under its monitor.
    Running,
    /// The process ended; the monitor waits before restarting it.
    Restarting,
    /// Stopped or exited; the disk is kept.
    Exited,
    /// Being removed.
    Removing,
}

/// An attachment to a network: the network name and the instance's address on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetAttachment {
    /// Network (bridge) name.
    pub network: String,
    /// Address with prefix, e.g. `10.209.0.2/24`; empty until allocated.
    pub address: String,
}

/// One instance and all its characteristics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// 12 hex digits.
    #[serde(skip)]
    pub id: String,
    /// Unique user-facing name.
    pub name: String,
    /// Name of the image it was made from.
    pub image: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// Recorded state.
    pub status: Status,
    /// Last start time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Last exit time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Last exit code (128+N for signal N).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Host pid of the container's init while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Pid of the monitor process while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_pid: Option<i32>,
    /// Pid of the boxctl command that is creating it (status creating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_pid: Option<i32>,
    /// Set by `stop`: the monitor must not restart.
    #[serde(default)]
    pub stop_requested: bool,
    /// Restarts done by the monitor since the last start.
    #[serde(default)]
    pub restart_count: u32,
    /// Restart policy.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// OCI runtime binary.
    pub runtime: String,
    /// Command run in the instance (entrypoint + cmd).
    pub command: Vec<String>,
    /// Environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// Working directory.
    #[serde(default = "root_dir")]
    pub workdir: String,
    /// `uid[:gid]` or a user name from the image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Hostname inside the instance.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Limits.
    #[serde(flatten)]
    pub limits: Limits,
    /// `bridge`, `none` or `host`.
    #[serde(default = "net_none")]
    pub net_mode: String,
    /// Networks as `NAME=ADDR/PREFIX` (address empty until allocated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    /// Published ports as `HOSTPORT:PORT`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    /// Copy-on-write instance (overlay on the shared image + upper.img).
    #[serde(default, skip_serializing_if = "is_false")]
    pub cow: bool,
    /// Volumes, bind mounts, tmpfs mounts, read-only root.
    #[serde(flatten)]
    pub storage: Storage,
    /// Health check and health (`health_*` keys; absent without a check).
    #[serde(flatten)]
    pub health: crate::healthcheck::Health,
    /// Interactive and one-shot options (`-i`, `-t`, `--rm`).
    #[serde(flatten)]
    pub session: Session,
    /// Capabilities, no_new_privs, seccomp, devices, ulimits, /dev/shm size, privileged.
    #[serde(flatten)]
    pub security: crate::security::Security,
    /// Labels as `KEY=VALUE`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Frozen by `pause` (its processes stopped in the cgroup freezer).
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// First host uid/gid of the instance's user namespace (root inside);
    /// None: privileged, container root is host root (`--privileged`,
    /// `--userns=host`, and instances made before user namespaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_base: Option<u32>,
    /// Ids in that range (see [`crate::userns::RANGE_SIZE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns_size: Option<u32>,
}

/// How an instance's stdio is wired and whether it outlives its exit:
/// `run -i` (stdin kept open for attached clients), `-t` (a terminal whose
/// master the monitor holds) and `--rm` (removed when it exits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Keep stdin open: attached clients' input reaches the process.
    #[serde(default, skip_serializing_if = "is_false")]
    pub interactive: bool,
    /// The process runs on a terminal (the runtime's console socket).
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
    /// Remove the instance when it exits (`run --rm`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto_remove: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn root_dir() -> String {
    "/".into()
}
fn net_none() -> String {
    "none".into()
}

impl Instance {
    /// Parsed network attachments.
    pub fn attachments(&self) -> Vec<NetAttachment> {
        self.networks
            .iter()
            .map(|s| {
                let (n, a) = s.split_once('=').unwrap_or((s.as_str(), ""));
                NetAttachment {
                    network: n.to_string(),
                    address: a.to_string(),
                }
            })
            .collect()
    }

    /// Whether a process may be alive (running or between restarts).
    pub fn is_active(&self) -> bool {
        matches!(self.status, Status::Running | Status::Restarting)
    }
}

pub(crate) const HEADER: &str = "# boxctl instance file: one [ID] section per instance.\n\
# Rewritten atomically by boxctl under ROOT/lock; do not edit while boxctl runs.\n";

/// Render the whole file.
pub fn render(list: &[Instance]) -> String {
    let mut out = String::with_capacity(HEADER.len() + list.len() * 512);
    out.push_str(HEADER);
    for inst in list {
        out.push('\n');
        render_section(&mut out, inst);
    }
    out
}

/// Append one instance's section (`[ID]` line and its `key = value` lines,
/// keys sorted) to `out`.
pub fn render_section(out: &mut String, inst: &Instance) {
    use std::fmt::Write as _;
    out.push('[');
    out.push_str(&inst.id);
    out.push_str("]\n");
    let value = serde_json::to_value(inst).unwrap_or(Value::Null);
    if let Value::Object(map) = value {
        for (k, v) in map {
            if v.is_null() {
                continue;
            }
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{k} = {v}");
        }
    }
}

/// One `[ID]` section of the file's text, as [`sections`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    /// The id in its header.
    pub id: &'a str,
    /// From the start of the header line to the end of its last non-blank
    /// line (newline included).
    pub range: std::ops::Range<usize>,
}

/// Where the sections of `text` are: a scan of line starts, without parsing
/// any value (values are one-line JSON, so a line starting with `[` is a
/// header, as [`parse`] reads it; every other non-blank line belongs to the
/// section above it). Returns the end of the preamble (header comments) and the sections.
pub fn sections(text: &str) -> (usize, Vec<Section<'_>>) {
    let mut out: Vec<Section<'_>> = Vec::new();
    let mut preamble = text.len();
    let mut pos = 0;
    while pos < text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
        let line = text[pos..end].trim();
        if let Some(id) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if out.is_empty() {
                preamble = pos;
            }
            out.push(Section {
                id,
                range: pos..end,
            });
        } else if !line.is_empty() {
            if let Some(last) = out.last_mut() {
                last.range.end = end;
            }
        }
        pos = end;
    }
    (preamble, out)
}

/// The one instance whose id or name is exactly `key`, parsing only its
/// section; `None` when no section or more than one matches (the caller
/// then parses the whole file, which also resolves id prefixes).
pub fn find_quick(text: &str, key: &str) -> Result<Option<Instance>> {
    let name_line = format!("\nname = {}\n", Value::String(key.to_string()));
    let mut found = None;
    for s in sections(text).1 {
        let body = &text[s.range.clone()];
        if s.id == key || body.contains(&name_line) {
            if found.is_some() {
                return Ok(None);
            }
            found = Some(body);
        }
    }
    let Some(body) = found else { return Ok(None) };
    let inst = parse(body)?.pop();
    Ok(inst.filter(|i| i.id == key || i.name == key))
}

/// A `key = value` line of a section: key, value (JSON text), line number.
type Pair<'a> = (&'a str, &'a str, usize);

/// One section's pairs as one JSON object for serde (no intermediate
/// `Value` per key); a value that is not JSON is named by its line.
fn instance_of(id: &str, pairs: &[Pair<'_>], json: &mut String) -> Result<Instance> {
    json.clear();
    json.push('{');
    for (n, (k, v, _)) in pairs.iter().enumerate() {
        if n > 0 {
            json.push(',');
        }
        json.push_str(&Value::String((*k).to_string()).to_string());
        json.push(':');
        json.push_str(v);
    }
    json.push('}');
    match serde_json::from_str::<Instance>(json) {
        Ok(mut inst) => {
            inst.id = id.to_string();
            Ok(inst)
        }
        Err(e) => {
            for (k, v, no) in pairs {
                serde_json::from_str::<serde::de::IgnoredAny>(v)
                    .with_context(|| format!("line {no}: bad value for {k}"))?;
            }
            Err(e).with_context(|| format!("section [{id}]"))
        }
    }
}

/// Parse the whole file.
pub fn parse(text: &str) -> Result<Vec<Instance>> {
    let mut list = Vec::new();
    let mut current: Option<(&str, Vec<Pair<'_>>)> = None;
    let mut json = String::new();
    for (no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let id = rest
                .strip_suffix(']')
                .with_context(|| format!("line {}: unterminated section header", no + 1))?;
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                bail!("line {}: bad instance id {id:?}", no + 1);
            }
            if let Some((id, pairs)) = current.take() {
                list.push(instance_of(id, &pairs, &mut json)?);
            }
            current = Some((id, Vec::new()));
            continue;
        }
        let (k, v) = line
            .split_once(" = ")
            .with_context(|| format!("line {}: expected `key = value`", no + 1))?;
        let (k, v) = (k.trim(), v.trim());
        let (_, pairs) = current
            .as_mut()
            .with_context(|| format!("line {}: key outside an [ID] section", no + 1))?;
        // A repeated key: the last one wins.
        match pairs.iter_mut().find(|(pk, _, _)| *pk == k) {
            Some(p) => (p.1, p.2) = (v, no + 1),
            None => pairs.push((k, v, no + 1)),
        }
    }
    if let Some((id, pairs)) = current {
        list.push(instance_of(id, &pairs, &mut json)?);
    }
    Ok(list)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An instance with most characteristics set.
    pub(crate) fn sample() -> Instance {
        Instance {
            id: "0123456789ab".into(),
            name: "web\"1".into(),
            image: "busybox".into(),
            created: "2024-01-01T00:00:00Z".into(),
            status: Status::Running,
            started_at: Some("2024-01-01T00:00:01Z".into()),
            finished_at: None,
            exit_code: None,
            pid: Some(42),
            monitor_pid: Some(41),
            owner_pid: None,
            stop_requested: false,
            restart_count: 0,
            restart: RestartPolicy::OnFailure { max: 2 },
            runtime: "/usr/sbin/runc".into(),
            command: vec!["sh".into(), "-c".into(), "echo 'a = b'\n".into()],
            env: vec!["PATH=/bin".into()],
            workdir: "/".into(),
            user: String::new(),
            hostname: "web1".into(),
            limits: Limits {
                memory: Some(1 << 28),
                cpus: Some(0.5),
                ..Default::default()
            },
            net_mode: "bridge".into(),
            networks: vec!["br0=10.0.0.2/24".into()],
            publish: vec![],
            cow: false,
            storage: Storage::default(),
            health: Default::default(),
            session: Session::default(),
            security: Default::default(),
            labels: Vec::new(),
            paused: false,
            userns_base: None,
            userns_size: None,
        }
    }

    #[test]
    fn round_trip() {
        let mut b = sample();
        b.id = "ba9876543210".into();
        b.status = Status::Exited;
        b.exit_code = Some(137);
        let list = vec![sample(), b];
        let text = render(&list);
        assert!(text.contains("memory = 268435456"), "{text}");
        assert!(text.contains("[0123456789ab]"), "{text}");
        assert_eq!(parse(&text).unwrap(), list);
    }

    #[test]
    fn session_options_round_trip_and_old_files_load() {
        let mut i = sample();
        i.session = Session {
            interactive: true,
            tty: true,
            auto_remove: true,
        };
        let text = render(std::slice::from_ref(&i));
        assert!(
            text.contains("tty = true") && text.contains("auto_remove = true"),
            "{text}"
        );
        assert_eq!(parse(&text).unwrap(), vec![i]);
        // A file written before these options existed: all off.
        let old = render(&[sample()]);
        assert!(!old.contains("tty"), "{old}");
        assert_eq!(parse(&old).unwrap()[0].session, Session::default());
    }

    #[test]
    fn paused_round_trips_and_old_files_load_unpaused() {
        let mut i = sample();
        i.paused = true;
        let text = render(std::slice::from_ref(&i));
        assert!(text.contains("paused = true"), "{text}");
        assert_eq!(parse(&text).unwrap(), vec![i]);
        let old = render(&[sample()]);
        assert!(!old.contains("paused"), "{old}");
        assert!(!parse(&old).unwrap()[0].paused);
    }

    #[test]
    fn userns_range_round_trips_and_old_files_load_privileged() {
        let mut i = sample();
        i.userns_base = Some(1_000_065_536);
        i.userns_size = Some(65536);
        let text = render(std::slice::from_ref(&i));
        assert!(text.contains("userns_base = 1000065536"), "{text}");
        assert_eq!(parse(&text).unwrap(), vec![i]);
        let old = render(&[sample()]);
        assert!(!old.contains("userns"), "{old}");
        assert_eq!(parse(&old).unwrap()[0].userns_base, None);
    }

    /// Three instances `a0`, `b1`, `c2` named `web0`, `web1`, `web2`.
    fn three() -> Vec<Instance> {
        (0..3)
            .map(|n| {
                let mut i = sample();
                i.id = format!("{}{n}", ["a", "b", "c"][n]);
                i.name = format!("web{n}");
                i
            })
            .collect()
    }

    #[test]
    fn sections_cover_each_record_and_nothing_else() {
        let list = three();
        let text = render(&list);
        let (preamble, secs) = sections(&text);
        assert_eq!(&text[..preamble], format!("{HEADER}\n"));
        let ids: Vec<_> = secs.iter().map(|s| s.id).collect();
        assert_eq!(ids, ["a0", "b1", "c2"]);
        for (s, inst) in secs.iter().zip(&list) {
            let mut one = String::new();
            render_section(&mut one, inst);
            assert_eq!(&text[s.range.clone()], one);
        }
    }

    #[test]
    fn find_quick_takes_an_exact_id_or_name_and_leaves_the_rest_to_parse() {
        let list = three();
        let text = render(&list);
        assert_eq!(find_quick(&text, "b1").unwrap(), Some(list[1].clone()));
        assert_eq!(find_quick(&text, "web2").unwrap(), Some(list[2].clone()));
        assert_eq!(find_quick(&text, "nothing").unwrap(), None);
        // A name that is also another instance's id: ambiguous here.
        let mut odd = three();
        odd[0].name = "c2".into();
        assert_eq!(find_quick(&render(&odd), "c2").unwrap(), None);
        // A name quoted in a command is not the name.
        let mut cmd = three();
        cmd[0].command = vec!["name = \"web9\"".into()];
        assert_eq!(find_quick(&render(&cmd), "web9").unwrap(), None);
    }

    #[test]
    fn a_repeated_key_keeps_the_last_value() {
        let mut text = render(&[sample()]);
        text.push_str("restart_count = 7\n");
        assert_eq!(parse(&text).unwrap()[0].restart_count, 7);
    }

    #[test]
    fn damaged_file_is_an_error() {
        assert!(parse("[abc]\nname = \"x\"\n").is_err());
        assert!(parse("name = \"x\"\n").is_err());
        assert!(parse("[../x]\n").is_err());
        let mut bad = render(&[sample()]);
        bad.push_str("memory = [1\n");
        let e = format!("{:#}", parse(&bad).unwrap_err());
        assert!(e.contains("bad value for memory"), "{e}");
    }
}
