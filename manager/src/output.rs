//! How the binary words what the library returns: tables, JSON, and the
//! farm's progress lines.

use std::io::Write;

use boxctl_core::farm::Event;
use boxctl_core::instance_file::{Instance, Status};
use boxctl_core::stats::Sample;
use boxctl_core::util::human_bytes;
use boxctl_core::{lifecycle, networking, util};
use serde_json::json;

/// Print rows as aligned columns.
pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    // One write(2) per 8 KiB rather than per line (stdout is line-buffered).
    let mut out = std::io::BufWriter::with_capacity(8192, std::io::stdout().lock());
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[c]));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = out.flush();
}

fn header(cols: &[&str]) -> Vec<String> {
    cols.iter().map(|s| s.to_string()).collect()
}

fn addresses(inst: &Instance) -> String {
    inst.attachments()
        .iter()
        .map(|a| {
            if a.address.is_empty() {
                a.network.clone()
            } else {
                format!("{}:{}", a.network, a.address)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Published ports as docker shows them (`127.0.0.1:8080->80/tcp`).
pub fn ports(inst: &Instance) -> String {
    inst.publish
        .iter()
        .filter_map(|p| networking::parse_publish(p).ok())
        .map(|(listen, port)| format!("{listen}->{port}/tcp"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `ps`'s USERNS column: the host range container root maps to
/// (`BASE+SIZE`), or `host` when container root is host root.
pub fn userns_column(i: &Instance) -> String {
    match boxctl_core::userns::IdRange::of(i) {
        Some(r) => format!("{}+{}", r.base, r.size),
        None => "host".into(),
    }
}

/// `ps --json`: the instances with their state and uptime.
pub fn ps_json(shown: &[&Instance], now: i64) -> serde_json::Value {
    let v: Vec<_> = shown
        .iter()
        .map(|i| {
            let uptime = (i.status == Status::Running)
                .then(|| {
                    i.started_at
                        .as_deref()
                        .and_then(util::parse_time)
                        .map(|t| now - t)
                })
                .flatten();
            let mut v = serde_json::to_value(i).unwrap_or_default();
            v["id"] = json!(i.id);
            v["state"] = json!(lifecycle::status_text(i, now));
            v["uptime_seconds"] = json!(uptime);
            v
        })
        .collect();
    serde_json::Value::Array(v)
}

/// `ps`: one row per instance.
pub fn ps_table(shown: &[&Instance], now: i64) -> Vec<Vec<String>> {
    let mut rows = vec![header(&[
        "ID",
        "NAME",
        "IMAGE",
        "COMMAND",
        "STATUS",
        "ADDRESSES",
        "PORTS",
        "LIMITS",
        "USERNS",
    ])];
    for i in shown {
        let mut cmd = i.command.join(" ");
        if cmd.chars().count() > 24 {
            cmd = format!("{}…", cmd.chars().take(23).collect::<String>());
        }
        rows.push(vec![
            i.id.clone(),
            i.name.clone(),
            i.image.clone(),
            format!("\"{cmd}\""),
            lifecycle::status_text(i, now),
            addresses(i),
            ports(i),
            i.limits.summary(),
            userns_column(i),
        ]);
    }
    rows
}

/// `stats --json`.
pub fn stats_json(samples: &[Sample]) -> serde_json::Value {
    let v: Vec<_> = samples
        .iter()
        .map(|s| {
            let now = &s.stats;
            json!({
                "id": s.id, "name": s.name, "cpu_percent": s.cpu_percent,
                "cpu_total_ns": now.cpu.usage.total,
                "cpu_throttled_periods": now.cpu.throttling.throttled_periods,
                "memory_usage": s.memory_usage, "memory_limit": s.memory_limit,
                "memory_max_usage": now.memory.usage.max,
                "memory_failcnt": now.memory.usage.failcnt,
                "pids": now.pids.current, "pids_limit": now.pids.limit,
                "block_read": s.block_read, "block_write": s.block_write,
            })
        })
        .collect();
    serde_json::Value::Array(v)
}

/// `stats`: one row per instance.
pub fn stats_table(samples: &[Sample]) -> Vec<Vec<String>> {
    let mut rows = vec![header(&[
        "ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "PIDS",
        "BLOCK I/O",
    ])];
    for s in samples {
        rows.push(vec![
            s.id.clone(),
            s.name.clone(),
            format!("{:.2}%", s.cpu_percent),
            format!(
                "{} / {}",
                human_bytes(s.memory_usage),
                human_bytes(s.memory_limit)
            ),
            format!("{:.2}%", s.memory_percent()),
            s.stats.pids.current.to_string(),
            format!(
                "{} / {}",
                human_bytes(s.block_read),
                human_bytes(s.block_write)
            ),
        ]);
    }
    rows
}

/// Print one step of `up`, `down` or `scale`.
pub fn farm_event(e: boxctl_core::farm::Event<'_>) {
    match e {
        Event::WaitingForLock { farm } => {
            eprintln!("boxctl: waiting for another up, down or scale of farm {farm}")
        }
        Event::ImageBuilding {
            image,
            rootfs,
            build,
        } => println!(
            "image {image}: building {} with {}",
            rootfs.display(),
            build.display()
        ),
        Event::ImageImported { image, rootfs } => {
            println!("image {image}: imported from {}", rootfs.display())
        }
        Event::NetworkCreated { network: n } => println!(
            "network {}: created ({}, bridge {})",
            n.name, n.subnet, n.bridge
        ),
        Event::NetworkRemoved { name } => println!("network {name}: removed"),
        Event::VolumeCreated { name } => println!("volume {name}: created"),
        Event::VolumeRemoved { name } => println!("volume {name}: removed"),
        Event::InstanceCreated { instance } => {
            let addrs = instance
                .attachments()
                .iter()
                .map(|a| format!("{} {}", a.network, a.address))
                .collect::<Vec<_>>()
                .join(", ");
            println!("instance {}: created ({addrs})", instance.name)
        }
        Event::InstanceStarted { name } => println!("instance {name}: started"),
        Event::InstanceReady { name } => println!("instance {name}: ready"),
        Event::InstanceRemoved { name } => println!("instance {name}: removed"),
        Event::LimitsUpdated { name } => println!("instance {name}: limits updated"),
        Event::ProxyUpdated {
            name,
            outcome,
            backends,
        } => println!(
            "instance {name}: {outcome} ({backends} backend{})",
            if backends == 1 { "" } else { "s" }
        ),
        Event::ImageMismatch {
            instance,
            has,
            service,
            wants,
        } => eprintln!(
            "boxctl: warning: instance {instance} runs image {has} but service {service} says \
             {wants}: `boxctl rm -f {instance}` and `up` again to remake it"
        ),
        Event::LimitDropped { instance } => eprintln!(
            "boxctl: warning: instance {instance} has a limit the file no longer sets: \
             `boxctl rm -f {instance}` and `up` again to lift it"
        ),
        Event::Serving { url } => println!("serving {url}"),
        Event::Failed(e) => eprintln!("boxctl: error: {}", e.chain()),
    }
}

/// `volume ls`: name, size, disk space used, age, the instances using it.
pub fn volume_table(
    vols: &[boxctl_core::volumes::Volume],
    list: &[Instance],
    now: i64,
) -> Vec<Vec<String>> {
    let mut rows = vec![header(&["NAME", "SIZE", "USED", "CREATED", "USED BY"])];
    for v in vols {
        let created = util::parse_time(&v.meta.created)
            .map(|t| format!("{} ago", util::human_duration(now - t)))
            .unwrap_or_else(|| v.meta.created.clone());
        rows.push(vec![
            v.meta.name.clone(),
            human_bytes(v.meta.size),
            human_bytes(boxctl_core::disk::allocated_bytes(&v.disk())),
            created,
            boxctl_core::volumes::users(list, &v.meta.name).join(","),
        ]);
    }
    rows
}

/// One line of `events`: time, action, instance name and id, details.
pub fn event_line(e: &boxctl_core::events::Event) -> String {
    let mut line = format!("{} {} {} (id={}", e.time, e.action, e.name, e.id);
    if let Some(c) = e.exit_code {
        line.push_str(&format!(", exit_code={c}"));
    }
    if let Some(h) = e.health {
        line.push_str(&format!(", health={h}"));
    }
    line.push(')');
    line
}

/// `system df`: one row per kind, docker's columns.
pub fn df_table(rows: &[boxctl_core::disk_usage::UsageRow]) -> Vec<Vec<String>> {
    let mut out = vec![header(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"])];
    for r in rows {
        let pct = (r.reclaimable * 100).checked_div(r.size).unwrap_or(0);
        let mut kind = r.kind.clone();
        if let Some(c) = kind.get_mut(..1) {
            c.make_ascii_uppercase();
        }
        out.push(vec![
            kind,
            r.total.to_string(),
            r.active.to_string(),
            util::human_bytes(r.size),
            format!("{} ({pct}%)", util::human_bytes(r.reclaimable)),
        ]);
    }
    out
}

/// `image history`: CREATED, CREATED BY, SIZE, COMMENT.
pub fn history_table(steps: &[boxctl_core::image::history::Step], now: i64) -> Vec<Vec<String>> {
    let mut out = vec![header(&["CREATED", "CREATED BY", "SIZE", "COMMENT"])];
    for s in steps {
        let created = util::parse_time(&s.created)
            .map(|t| format!("{} ago", util::human_duration(now - t)))
            .unwrap_or_else(|| s.created.clone());
        let mut by: String = s.created_by.chars().take(60).collect();
        if by.len() < s.created_by.len() {
            by.push_str("...");
        }
        out.push(vec![
            created,
            by,
            s.size.map(util::human_bytes).unwrap_or_else(|| "-".into()),
            s.comment.clone(),
        ]);
    }
    out
}

/// The storage pool under `system df`.
pub fn pool_table(p: &boxctl_core::pool::PoolUsage) -> Vec<Vec<String>> {
    vec![
        header(&["POOL", "DEVICE", "SIZE", "USED", "FREE", "ON HOST"]),
        vec![
            p.file.display().to_string(),
            p.device
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "detached".into()),
            util::human_bytes(p.size),
            util::human_bytes(p.used),
            util::human_bytes(p.free),
            util::human_bytes(p.host_allocated),
        ],
    ]
}

fn prune_lines(r: &boxctl_core::prune::PruneReport, verb: &str) -> String {
    let mut out = String::new();
    for (what, names) in [
        ("instances", &r.instances),
        ("images", &r.images),
        ("volumes", &r.volumes),
    ] {
        if !names.is_empty() {
            out.push_str(&format!("{verb} {what}: {}\n", names.join(", ")));
        }
    }
    out
}

/// What `prune` is about to remove, before the confirmation.
pub fn prune_plan(r: &boxctl_core::prune::PruneReport) -> String {
    let lines = prune_lines(r, "will remove");
    if lines.is_empty() {
        return "nothing to remove\n".into();
    }
    format!(
        "{lines}space to reclaim: {}\n",
        util::human_bytes(r.reclaimed)
    )
}

/// What `prune` removed and the space it freed.
pub fn prune_done(r: &boxctl_core::prune::PruneReport) -> String {
    format!(
        "{}Total reclaimed space: {}\n",
        prune_lines(r, "deleted"),
        util::human_bytes(r.reclaimed)
    )
}
