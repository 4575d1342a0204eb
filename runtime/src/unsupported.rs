//! Fields of config.json that boxrun does not apply, refused at create with an error
//! naming each, so that no field is accepted and then silently dropped
//! (runtime.md: "If the runtime cannot apply a property as specified in the
//! configuration, it MUST generate an error and a new container MUST NOT be created").

use crate::error::{Error, Result};
use oci_spec::runtime::Spec;

fn refuse(field: &str, why: &str) -> Error {
    Error::Config(format!("{field} is not supported by boxrun: {why}"))
}

/// Refuse the first field boxrun would otherwise accept and ignore.
pub fn check(spec: &Spec) -> Result<()> {
    for (set, field) in [
        (spec.solaris().is_some(), "solaris"),
        (spec.windows().is_some(), "windows"),
        (spec.vm().is_some(), "vm"),
        (spec.zos().is_some(), "zos"),
    ] {
        if set {
            return Err(refuse(
                field,
                "boxrun runs Linux containers; remove the section",
            ));
        }
    }
    if let Some(p) = spec.process() {
        if p.command_line().is_some() {
            return Err(refuse(
                "process.commandLine",
                "it is Windows-only; use process.args",
            ));
        }
        if p.user().username().is_some() {
            return Err(refuse(
                "process.user.username",
                "it is Windows-only; use uid and gid",
            ));
        }
    }
    if let Some(l) = spec.linux() {
        if l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
            return Err(refuse(
                "linux.netDevices",
                "move the device into the container's network namespace after create",
            ));
        }
        if l.intel_rdt().is_some() {
            let why = if std::path::Path::new("/sys/fs/resctrl/tasks").exists() {
                "resctrl groups are not made; remove linux.intelRdt"
            } else {
                "no resctrl filesystem is mounted at /sys/fs/resctrl, and boxrun makes no resctrl groups"
            };
            return Err(refuse("linux.intelRdt", why));
        }
        if l.mount_label().as_deref().is_some_and(|m| !m.is_empty()) {
            return Err(refuse(
                "linux.mountLabel",
                "SELinux mount labels are not applied; leave it empty",
            ));
        }
    }
    for m in spec.mounts().iter().flatten() {
        let idmap_opt = m
            .options()
            .iter()
            .flatten()
            .any(|o| o == "idmap" || o == "ridmap");
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() || idmap_opt {
            return Err(refuse(
                &format!(
                    "mounts[{}].uidMappings/gidMappings (idmapped mount)",
                    m.destination().display()
                ),
                "features reports mountExtensions.idmap disabled",
            ));
        }
    }
    Ok(())
}
