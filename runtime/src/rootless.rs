//! Running rootless, by runc's rules: whether this invocation is rootless (`--rootless`
//! or, on `auto`, not root or root only in a user namespace), the state root default
//! (`$XDG_RUNTIME_DIR/boxrun` for a non-root user) and the container's cgroups (only
//! where this user may use them; see [`boxrun_cgroups::Cgroup::plan_rootless`]).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The state root as root on the host.
pub const ROOT_STATE_DIR: &str = "/run/boxrun";

/// Whether this process is in a user namespace other than the initial one: its
/// `uid_map` is not the identity map of every uid.
pub fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"],
        Err(_) => false,
    }
}

/// Whether this invocation is rootless: `--rootless` true or false as given; on `auto`
/// (or without the flag), when the effective uid is not 0 or we are root only inside a
/// user namespace (rootless podman runs the runtime so), as runc.
pub fn active(flag: Option<&str>) -> Result<bool> {
    match flag {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        None | Some("auto") => Ok(!nix::unistd::geteuid().is_root() || in_user_namespace()),
        Some(other) => Err(Error::Other(format!(
            "--rootless {other:?}: use true, false or auto"
        ))),
    }
}

/// The default state root: `$XDG_RUNTIME_DIR/boxrun` when that is set and we are not
/// root (or root in a user namespace whose `$USER` is not root), else `/run/boxrun`;
/// runc's rule for `/run/runc`.
pub fn default_root() -> PathBuf {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty());
    let honour = xdg.is_some()
        && (!nix::unistd::geteuid().is_root()
            || (in_user_namespace() && std::env::var("USER").map_or(true, |u| u != "root")));
    match xdg {
        Some(dir) if honour => Path::new(&dir).join("boxrun"),
        _ => PathBuf::from(ROOT_STATE_DIR),
    }
}

/// The container's cgroups for a rootless create, planned: those this user may use, or
/// None (no limit asked, and no cgroup usable). Device rules are dropped from
/// `resources` either way: devices in a user namespace are bind mounts, and the device
/// controller is not this user's to program.
pub fn plan_cgroup(
    cgroups_path: Option<&Path>,
    id: &str,
    resources: &mut oci_spec::runtime::LinuxResources,
) -> Result<Option<boxrun_cgroups::Cgroup>> {
    resources.set_devices(None);
    Ok(boxrun_cgroups::Cgroup::plan_rootless(
        cgroups_path,
        id,
        resources,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_overrides_detection() {
        assert!(active(Some("true")).expect("true"));
        assert!(!active(Some("false")).expect("false"));
        let e = active(Some("maybe")).expect_err("maybe").to_string();
        assert!(e.contains("--rootless") && e.contains("maybe"), "{e}");
    }

    #[test]
    fn root_on_the_host_is_not_rootless() {
        if nix::unistd::geteuid().is_root() && !in_user_namespace() {
            assert!(!active(None).expect("auto"));
            assert_eq!(default_root(), PathBuf::from(ROOT_STATE_DIR));
        }
    }
}
