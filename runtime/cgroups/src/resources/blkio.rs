//! `linux.resources.blockIO` (v1 blkio, v2 io).

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use crate::cgroup::{Cgroup, Version};
use crate::error::{CgroupError, Result};
use crate::fsutil::write_setting;

/// runc's mapping of a blkio weight ([10, 1000]) to v2 `io.weight` ([1, 10000]).
pub fn blkio_weight_to_io_weight(weight: u16) -> Result<u64> {
    if !(10..=1000).contains(&weight) {
        return Err(CgroupError::invalid(
            "linux.resources.blockIO.weight",
            format!("{weight} is outside 10..=1000"),
        ));
    }
    Ok(1 + (u64::from(weight) - 10) * 9999 / 990)
}

fn dev(major: i64, minor: i64, what: &str) -> Result<String> {
    if major < 0 || minor < 0 {
        return Err(CgroupError::invalid(
            what,
            format!("device {major}:{minor} has a negative number"),
        ));
    }
    Ok(format!("{major}:{minor}"))
}

fn throttles(
    b: &LinuxBlockIo,
) -> [(
    &'static str,
    &'static str,
    &Option<Vec<LinuxThrottleDevice>>,
    &'static str,
); 4] {
    [
        (
            "blkio.throttle.read_bps_device",
            "rbps",
            b.throttle_read_bps_device(),
            "linux.resources.blockIO.throttleReadBpsDevice",
        ),
        (
            "blkio.throttle.write_bps_device",
            "wbps",
            b.throttle_write_bps_device(),
            "linux.resources.blockIO.throttleWriteBpsDevice",
        ),
        (
            "blkio.throttle.read_iops_device",
            "riops",
            b.throttle_read_iops_device(),
            "linux.resources.blockIO.throttleReadIOPSDevice",
        ),
        (
            "blkio.throttle.write_iops_device",
            "wiops",
            b.throttle_write_iops_device(),
            "linux.resources.blockIO.throttleWriteIOPSDevice",
        ),
    ]
}

fn any_set(b: &LinuxBlockIo) -> bool {
    b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || throttles(b)
            .iter()
            .any(|(_, _, v, _)| v.as_ref().is_some_and(|v| !v.is_empty()))
}

pub(crate) fn apply(cg: &Cgroup, b: &LinuxBlockIo) -> Result<()> {
    if !any_set(b) {
        return Ok(());
    }
    let h = match cg.controller("blkio") {
        Some(h) => h,
        None => cg.require("io", "linux.resources.blockIO")?,
    };
    match h.version {
        Version::V1 => apply_v1(&h.path, b),
        Version::V2 => apply_v2(&h.path, b),
    }
}

fn apply_v1(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // CFQ files if present, else BFQ's (the only weight interface left in
    // current kernels).
    let cfq = dir.join("blkio.weight").exists();
    let (weight_file, weight_dev_file) = if cfq {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        write_setting(
            dir,
            weight_file,
            &w.to_string(),
            "linux.resources.blockIO.weight",
        )?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        write_setting(
            dir,
            "blkio.leaf_weight",
            &w.to_string(),
            "linux.resources.blockIO.leafWeight (needs the CFQ scheduler)",
        )?;
    }
    for wd in b.weight_device().iter().flatten() {
        const W: &str = "linux.resources.blockIO.weightDevice";
        let d = dev(wd.major(), wd.minor(), W)?;
        if let Some(w) = wd.weight() {
            write_setting(dir, weight_dev_file, &format!("{d} {w}"), W)?;
        }
        if let Some(w) = wd.leaf_weight() {
            write_setting(
                dir,
                "blkio.leaf_weight_device",
                &format!("{d} {w}"),
                "linux.resources.blockIO.weightDevice.leafWeight (needs the CFQ scheduler)",
            )?;
        }
    }
    for (file, _, list, what) in throttles(b) {
        for t in list.iter().flatten() {
            let line = format!("{} {}", dev(t.major(), t.minor(), what)?, t.rate());
            write_setting(dir, file, &line, what)?;
        }
    }
    Ok(())
}

fn apply_v2(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        const W: &str = "linux.resources.blockIO.weight";
        if bfq {
            // BFQ takes the v1 range directly.
            write_setting(dir, "io.bfq.weight", &w.to_string(), W)?;
        } else {
            let v = blkio_weight_to_io_weight(w)?;
            write_setting(dir, "io.weight", &v.to_string(), W)?;
        }
    }
    if b.leaf_weight().is_some_and(|w| w != 0) {
        return Err(CgroupError::Unsupported {
            what: "linux.resources.blockIO.leafWeight".into(),
            reason: "cgroup v2 has no leaf weights; remove it from the config".into(),
        });
    }
    for wd in b.weight_device().iter().flatten() {
        const W: &str = "linux.resources.blockIO.weightDevice";
        let d = dev(wd.major(), wd.minor(), W)?;
        if wd.leaf_weight().is_some() {
            return Err(CgroupError::Unsupported {
                what: format!("{W}.leafWeight"),
                reason: "cgroup v2 has no leaf weights; remove it from the config".into(),
            });
        }
        if let Some(w) = wd.weight() {
            if bfq {
                write_setting(dir, "io.bfq.weight", &format!("{d} {w}"), W)?;
            } else {
                let v = blkio_weight_to_io_weight(w)?;
                write_setting(dir, "io.weight", &format!("{d} {v}"), W)?;
            }
        }
    }
    for (_, key, list, what) in throttles(b) {
        for t in list.iter().flatten() {
            let line = format!("{} {key}={}", dev(t.major(), t.minor(), what)?, t.rate());
            write_setting(dir, "io.max", &line, what)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_weight_conversion_matches_runc() {
        assert_eq!(blkio_weight_to_io_weight(10).unwrap(), 1);
        assert_eq!(blkio_weight_to_io_weight(500).unwrap(), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000).unwrap(), 10_000);
        assert!(blkio_weight_to_io_weight(9).is_err());
        assert!(blkio_weight_to_io_weight(1001).is_err());
    }

    #[test]
    fn device_numbers() {
        assert_eq!(dev(8, 0, "x").unwrap(), "8:0");
        assert!(dev(-1, 0, "x").is_err());
    }
}
