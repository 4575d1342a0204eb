//! Everyday operations on one instance that are not its life cycle:
//! `pause`/`unpause` (the runtime's cgroup freezer), `rename`, `top` (the
//! runtime's `ps`) and `port` (its published ports).

use crate::error::Result;
use crate::events::{self, Action};
use crate::instance::running;
use crate::instance_file::Instance;
use crate::store::{self, Store};
use crate::{bail, lifecycle, networking, util};

/// Freeze every process of running instance `key`.
pub fn pause(store: &Store, key: &str) -> Result<Instance> {
    let inst = running(store, key)?;
    let inst = store.update_one(&inst.id, |i| {
        if i.paused {
            bail!(
                "instance {} is already paused: resume it with `boxctl unpause {}`",
                i.name,
                i.name
            );
        }
        lifecycle::runtime_for(store, i).pause(&i.id)?;
        i.paused = true;
        Ok(i.clone())
    })?;
    events::record(store, &inst, Action::Pause, None, None);
    Ok(inst)
}

/// Thaw paused instance `key`.
pub fn unpause(store: &Store, key: &str) -> Result<Instance> {
    let inst = running(store, key)?;
    let inst = store.update_one(&inst.id, |i| {
        if !i.paused {
            bail!("instance {} is not paused", i.name);
        }
        lifecycle::runtime_for(store, i).resume(&i.id)?;
        i.paused = false;
        Ok(i.clone())
    })?;
    events::record(store, &inst, Action::Unpause, None, None);
    Ok(inst)
}

/// Give instance `key` the name `new` (unique, validated); returns it renamed.
pub fn rename(store: &Store, key: &str, new: &str) -> Result<Instance> {
    util::validate_name("instance", new)?;
    // Farms find their instances by name: renaming one in or out would
    // hide it from `down` and `scale`.
    let old = store.find(key)?.name;
    for n in [old.as_str(), new] {
        if let Some(farm) = crate::farm::owner_of(store, n) {
            bail!("instance name {n} belongs to farm {farm}: farm instances keep their names (use `boxctl scale` or `down`)");
        }
    }
    let inst = store.update(|list| {
        let cur = store::find_in(list, key)?;
        if cur.name == new {
            bail!("instance {new} is already named {new}: give another name");
        }
        let id = cur.id.clone();
        if let Some(other) = list.iter().find(|i| i.name == new && i.id != id) {
            bail!(
                "the name {new} is already used by instance {}: choose another name",
                other.id
            );
        }
        let i = store::get_mut(list, &id)?;
        i.name = new.to_string();
        Ok(i.clone())
    })?;
    events::record(store, &inst, Action::Rename, None, None);
    Ok(inst)
}

/// The runtime's `ps` table of running instance `key` (`ps_args` passed to
/// ps(1), `-ef` by default).
pub fn top(store: &Store, key: &str, ps_args: &[String]) -> Result<String> {
    let inst = running(store, key)?;
    // ps lists only the caller's uid's processes unless told to list all: an
    // unprivileged instance's run as its range's uids.
    let mut args = ps_args.to_vec();
    let selects_all = [
        "-e", "-A", "ax", "aux", "-ax", "-aux", "-ef", "-eF", "-el", "-ely",
    ];
    if crate::userns::IdRange::of(&inst).is_some()
        && !args.is_empty()
        && !args.iter().any(|a| selects_all.contains(&a.as_str()))
    {
        args.push("-e".into());
    }
    lifecycle::runtime_for(store, &inst).ps(&inst.id, &args)
}

/// Published ports of instance `key` as docker prints them
/// (`80/tcp -> 0.0.0.0:8080`), only those of container port `port` when given.
pub fn ports(store: &Store, key: &str, port: Option<&str>) -> Result<Vec<String>> {
    let inst = store.find(key)?;
    let want = match port {
        None => None,
        Some(p) => {
            let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            match (num.parse::<u16>(), proto) {
                (Ok(n), "tcp") if n > 0 => Some(n),
                (_, "tcp") => {
                    crate::invalid!("invalid port {p:?}: give a number like 80 or 80/tcp")
                }
                _ => crate::invalid!("invalid port {p:?}: boxctl publishes only tcp ports"),
            }
        }
    };
    let mut out = Vec::new();
    for p in &inst.publish {
        let (listen, cport) = networking::parse_publish(p)?;
        if want.is_none_or(|w| w == cport) {
            out.push(format!("{cport}/tcp -> {listen}"));
        }
    }
    if out.is_empty() {
        if let Some(p) = port {
            bail!("instance {} has no published port {p}", inst.name);
        }
    }
    Ok(out)
}
