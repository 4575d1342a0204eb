//! `linux.resources.devices`: v1 `devices.allow`/`devices.deny`, or on
//! cgroup2 an eBPF device program (see [`crate::bpf`]).

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

use crate::bpf;
use crate::cgroup::{Cgroup, Version};
use crate::error::{CgroupError, Result};
use crate::fsutil::{open_setting, write_opened};

/// mknod permission bit (as in `BPF_DEVCG_ACC_MKNOD`).
pub const ACC_MKNOD: u8 = 1;
/// read permission bit (`BPF_DEVCG_ACC_READ`).
pub const ACC_READ: u8 = 2;
/// write permission bit (`BPF_DEVCG_ACC_WRITE`).
pub const ACC_WRITE: u8 = 4;
/// All three.
pub const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Device kinds a rule can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevKind {
    /// Every device (`a`).
    All,
    /// Block devices (`b`).
    Block,
    /// Character devices (`c`, `u`).
    Char,
}

/// A validated device rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (true) or deny.
    pub allow: bool,
    /// Which kind of device.
    pub kind: DevKind,
    /// Major number, `None` for any.
    pub major: Option<u32>,
    /// Minor number, `None` for any.
    pub minor: Option<u32>,
    /// `ACC_*` bits.
    pub access: u8,
}

fn parse_access(s: Option<&str>) -> Result<u8> {
    let s = match s {
        None | Some("") => return Ok(ACC_ALL),
        Some(s) => s,
    };
    let mut acc = 0;
    for ch in s.chars() {
        acc |= match ch {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(CgroupError::invalid(
                    "linux.resources.devices[].access",
                    format!("{s:?} may only contain the letters r, w and m"),
                ))
            }
        };
    }
    Ok(acc)
}

fn dev_number(v: Option<i64>, what: &str) -> Result<Option<u32>> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(CgroupError::invalid(
            format!("linux.resources.devices[].{what}"),
            format!("{n} is not a device number"),
        )),
    }
}

impl DeviceRule {
    /// Validate an OCI rule. FIFO (`p`) rules yield `None`: the device
    /// controller never checks FIFOs, so they have nothing to enforce.
    pub fn from_oci(r: &LinuxDeviceCgroup) -> Result<Option<DeviceRule>> {
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DevKind::All,
            LinuxDeviceType::B => DevKind::Block,
            LinuxDeviceType::C | LinuxDeviceType::U => DevKind::Char,
            LinuxDeviceType::P => return Ok(None),
        };
        Ok(Some(DeviceRule {
            allow: r.allow(),
            kind,
            major: dev_number(r.major(), "major")?,
            minor: dev_number(r.minor(), "minor")?,
            access: parse_access(r.access().as_deref())?,
        }))
    }

    fn access_string(&self) -> String {
        let mut s = String::new();
        if self.access & ACC_READ != 0 {
            s.push('r');
        }
        if self.access & ACC_WRITE != 0 {
            s.push('w');
        }
        if self.access & ACC_MKNOD != 0 {
            s.push('m');
        }
        s
    }

    /// The line for v1 `devices.allow`/`devices.deny`.
    pub fn v1_line(&self) -> String {
        let t = match self.kind {
            DevKind::All => return "a".into(),
            DevKind::Block => 'b',
            DevKind::Char => 'c',
        };
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{t} {}:{} {}",
            num(self.major),
            num(self.minor),
            self.access_string()
        )
    }
}

/// Validate every OCI rule (FIFO rules dropped, see [`DeviceRule::from_oci`]).
pub fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>> {
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        if let Some(r) = DeviceRule::from_oci(r)? {
            out.push(r);
        }
    }
    Ok(out)
}

/// The device rules runc adds to every container on top of the config's
/// (deny everything, then allow mknod of any device and use of the standard
/// /dev nodes: null, zero, full, random, urandom, tty, ptmx, pts/*, net/tun).
/// The runtime may prepend these to `linux.resources.devices` for runc parity.
pub fn runc_default_rules() -> Vec<LinuxDeviceCgroup> {
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .access(access.to_string());
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().unwrap_or_default()
    };
    use LinuxDeviceType::{B, C};
    vec![
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"),
        rule(C, Some(1), Some(8), "rwm"),
        rule(C, Some(1), Some(7), "rwm"),
        rule(C, Some(5), Some(0), "rwm"),
        rule(C, Some(1), Some(5), "rwm"),
        rule(C, Some(1), Some(9), "rwm"),
        rule(C, Some(136), None, "rwm"),
        rule(C, Some(5), Some(2), "rwm"),
        rule(C, Some(10), Some(200), "rwm"),
    ]
}

/// The v1 writes that replay `rules`, in order: `(true, line)` for `devices.allow`,
/// `(false, line)` for `devices.deny`. They start from "nothing allowed" (`a` denied);
/// a deny rule while nothing is allowed changes nothing and is left out (the config's
/// own leading deny-all, for one).
fn v1_writes(rules: &[DeviceRule]) -> Vec<(bool, String)> {
    let mut out = vec![(false, "a".to_string())];
    let mut none_allowed = true;
    for r in rules {
        let line = r.v1_line();
        if r.allow {
            none_allowed = false;
        } else if none_allowed {
            continue;
        } else {
            none_allowed = line == "a";
        }
        out.push((r.allow, line));
    }
    out
}

fn apply_v1(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    const W: &str = "linux.resources.devices";
    // devices.allow and devices.deny take one rule per write(2): each is opened once.
    let mut deny = None;
    let mut allow = None;
    for (is_allow, line) in v1_writes(rules) {
        let (slot, file) = if is_allow {
            (&mut allow, "devices.allow")
        } else {
            (&mut deny, "devices.deny")
        };
        let f = match slot {
            Some(f) => f,
            None => slot.insert(open_setting(dir, file, W, &line)?),
        };
        write_opened(f, dir, file, &line)?;
    }
    Ok(())
}

pub(crate) fn apply(cg: &Cgroup, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let parsed = parse_rules(rules)?;
    if let Some(h) = cg
        .hierarchies
        .iter()
        .find(|h| h.version == Version::V1 && h.has("devices"))
    {
        return apply_v1(&h.path, &parsed);
    }
    match cg.v2() {
        Some(h) => bpf::apply_device_rules(&h.path, &parsed),
        None => Err(CgroupError::missing_controller(
            "devices",
            "linux.resources.devices",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn oci(
        allow: bool,
        t: LinuxDeviceType,
        maj: Option<i64>,
        min: Option<i64>,
        acc: Option<&str>,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default().allow(allow).typ(t);
        if let Some(m) = maj {
            b = b.major(m);
        }
        if let Some(m) = min {
            b = b.minor(m);
        }
        if let Some(a) = acc {
            b = b.access(a.to_string());
        }
        b.build().unwrap()
    }

    #[test]
    fn v1_lines() {
        let r = DeviceRule::from_oci(&oci(
            true,
            LinuxDeviceType::C,
            Some(1),
            Some(3),
            Some("mwr"),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(r.v1_line(), "c 1:3 rwm");
        let r = DeviceRule::from_oci(&oci(true, LinuxDeviceType::B, None, Some(0), Some("r")))
            .unwrap()
            .unwrap();
        assert_eq!(r.v1_line(), "b *:0 r");
        let r = DeviceRule::from_oci(&oci(false, LinuxDeviceType::A, None, None, None))
            .unwrap()
            .unwrap();
        assert_eq!(r.v1_line(), "a");
        assert_eq!(r.access, ACC_ALL);
        let r = DeviceRule::from_oci(&oci(true, LinuxDeviceType::U, Some(4), None, Some("w")))
            .unwrap()
            .unwrap();
        assert_eq!(r.v1_line(), "c 4:* w");
    }

    #[test]
    fn rejects_bad_rules_and_skips_fifos() {
        assert!(
            DeviceRule::from_oci(&oci(true, LinuxDeviceType::C, Some(1), Some(3), Some("rx")))
                .is_err()
        );
        assert!(
            DeviceRule::from_oci(&oci(true, LinuxDeviceType::C, Some(-4), Some(3), None)).is_err()
        );
        assert_eq!(
            DeviceRule::from_oci(&oci(true, LinuxDeviceType::P, None, None, None)).unwrap(),
            None
        );
    }

    #[test]
    fn v1_replay_leaves_out_denies_while_nothing_is_allowed() {
        let deny_all = oci(false, LinuxDeviceType::A, None, None, None);
        let null = oci(true, LinuxDeviceType::C, Some(1), Some(3), Some("rwm"));
        let deny_null = oci(false, LinuxDeviceType::C, Some(1), Some(3), Some("rwm"));
        let rules = parse_rules(&[
            deny_all.clone(),
            deny_null.clone(),
            null,
            deny_null.clone(),
            deny_all,
            deny_null,
        ])
        .unwrap();
        let want = [
            (false, "a"),
            (true, "c 1:3 rwm"),
            (false, "c 1:3 rwm"),
            (false, "a"),
        ];
        let want: Vec<(bool, String)> = want.iter().map(|(a, l)| (*a, l.to_string())).collect();
        assert_eq!(v1_writes(&rules), want);
    }

    #[test]
    fn runc_defaults_parse() {
        let d = parse_rules(&runc_default_rules()).unwrap();
        assert_eq!(d.len(), 11);
        assert!(d.iter().all(|r| r.allow));
        assert_eq!(d[2].v1_line(), "c 1:3 rwm");
        assert_eq!(d[8].v1_line(), "c 136:* rwm");
    }
}
