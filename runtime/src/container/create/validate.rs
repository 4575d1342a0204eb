//! Create, phase 1: parse and check everything before the host is touched. A bad
//! bundle, id, namespace list, capability set, seccomp profile, device rule or
//! cgroups path is refused here, so nothing has to be undone. (The one write: a
//! compiled seccomp filter goes to the runtime root's content-keyed cache.)

use super::CreateOpts;
use crate::config::{self, Bundle};
use crate::error::{Error, Result};
use crate::namespaces;
use oci_spec::runtime::{LinuxResources, Spec};
use std::path::{Path, PathBuf};

/// Everything `create` needs, checked.
pub struct Validated {
    /// Absolute bundle directory.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// The parsed spec.
    pub spec: Spec,
    /// `config.json` as read (saved verbatim in the state directory).
    pub raw: Vec<u8>,
    /// The namespaces to create and join.
    pub ns: namespaces::Plan,
    /// The compiled seccomp filter.
    pub seccomp: Option<boxrun_seccomp::Filter>,
    /// `process.terminal`.
    pub terminal: bool,
    /// Whether the init waits on the exec fifo for `start` (not for a foreground `run`).
    pub wait_fifo: bool,
    /// `linux.resources` with the device rules the container needs.
    pub resources: LinuxResources,
    /// Whether prestart or createRuntime hooks exist (the init stops for them).
    pub runtime_hooks: bool,
    /// Socket-activation fds passed in (`LISTEN_FDS`), handed on to the container.
    pub listen_fds: u32,
}

/// Check `opts` and the bundle; nothing on the host is made or changed. Returns the
/// checked inputs and the container's cgroups, planned (the host phase makes them); none
/// for a rootless container that may not use any.
pub fn validate(
    opts: &CreateOpts,
    wait_fifo: bool,
    proxy_tty: bool,
) -> Result<(Validated, Option<boxrun_cgroups::Cgroup>)> {
    crate::util::validate_id(&opts.id)?;
    let Bundle {
        dir: bundle,
        rootfs,
        spec,
        raw,
    } = config::load_bundle(&opts.bundle)?;
    let process = spec.process().as_ref();
    let terminal = process.and_then(|p| p.terminal()).unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !proxy_tty {
        return Err(Error::Other(
            "process.terminal is true: pass --console-socket (or set terminal to false)".into(),
        ));
    }
    let linux = spec.linux().as_ref();
    let ns_list = linux
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let mut ns = namespaces::plan(&ns_list)?;
    ns.runtime_in_userns = opts.rootless && crate::rootless::in_user_namespace();
    if let Some(p) = process {
        crate::capabilities::Sets::from_spec(p.capabilities().as_ref())?;
    } else if !wait_fifo {
        return Err(Error::Config(
            "process is required to run a container".into(),
        ));
    }
    let seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(compile_seccomp(&opts.root, s)?),
        None => None,
    };
    let cg_path = linux.and_then(|l| l.cgroups_path().clone());
    let mut resources = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    resources.set_devices(Some(crate::devices::cgroup_rules(&spec)?));
    let cgroup = if opts.rootless {
        crate::rootless::plan_cgroup(cg_path.as_deref(), &opts.id, &mut resources)?
    } else {
        Some(boxrun_cgroups::Cgroup::plan(cg_path.as_deref(), &opts.id)?)
    };
    let runtime_hooks = spec.hooks().as_ref().is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    let valid = Validated {
        bundle,
        rootfs,
        spec,
        raw,
        ns,
        seccomp,
        terminal,
        wait_fifo,
        resources,
        runtime_hooks,
        listen_fds: listen_fds(),
    };
    Ok((valid, cgroup))
}

/// The socket-activation fds the caller passed (`LISTEN_FDS`), 0 without.
pub fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0)
}

fn compile_seccomp(
    root: &Path,
    s: &oci_spec::runtime::LinuxSeccomp,
) -> Result<boxrun_seccomp::Filter> {
    if std::env::var_os("BOXRUN_SECCOMP_CACHE").is_some_and(|v| v == "0") {
        return Ok(boxrun_seccomp::compile(s)?);
    }
    Ok(boxrun_seccomp::compile_cached(
        s,
        &root.join("seccomp-cache"),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle and a runtime root under the temp dir, removed on drop.
    struct Scratch {
        base: PathBuf,
    }

    impl Scratch {
        fn new(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Scratch {
            let base =
                std::env::temp_dir().join(format!("boxrun-validate-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&base);
            std::fs::create_dir_all(base.join("bundle/rootfs")).expect("mkdir bundle");
            let mut spec = crate::spec::default_spec(false);
            spec["process"]["terminal"] = false.into();
            edit(&mut spec);
            std::fs::write(base.join("bundle/config.json"), spec.to_string()).expect("write");
            Scratch { base }
        }

        fn opts(&self, id: &str) -> CreateOpts {
            CreateOpts {
                root: self.base.join("root"),
                id: id.into(),
                bundle: self.base.join("bundle"),
                ..Default::default()
            }
        }

        /// Validation must leave the runtime root as it was: absent.
        fn host_untouched(&self) -> bool {
            !self.base.join("root").exists()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }

    fn refused(s: &Scratch, opts: &CreateOpts, wait_fifo: bool, want: &str) {
        let e = match validate(opts, wait_fifo, false) {
            Ok(_) => panic!("validate accepted a bad create ({want})"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(want), "error {e:?} does not name {want:?}");
        assert!(s.host_untouched(), "validate touched the runtime root");
    }

    #[test]
    fn a_bad_id_is_refused_before_the_host_is_touched() {
        let s = Scratch::new("id", |_| {});
        refused(&s, &s.opts("../escape"), true, "escape");
    }

    #[test]
    fn a_terminal_without_console_socket_is_refused() {
        let s = Scratch::new("tty", |v| v["process"]["terminal"] = true.into());
        refused(&s, &s.opts("c1"), true, "--console-socket");
    }

    #[test]
    fn run_without_process_is_refused() {
        let s = Scratch::new("noproc", |v| {
            v.as_object_mut().expect("object").remove("process");
        });
        refused(&s, &s.opts("c1"), false, "process is required");
    }

    #[test]
    fn a_repeated_namespace_is_refused() {
        let s = Scratch::new("ns", |v| {
            v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        });
        refused(&s, &s.opts("c1"), true, "listed twice");
    }

    #[test]
    fn a_namespace_path_that_does_not_exist_is_refused() {
        let s = Scratch::new("nspath", |v| {
            v["linux"]["namespaces"] = serde_json::json!([{"type": "uts"}, {"type": "network", "path": "/nonexistent/boxrun-netns"}]);
        });
        refused(&s, &s.opts("c1"), true, "boxrun-netns");
    }

    #[test]
    fn an_unknown_capability_is_refused() {
        let s = Scratch::new("cap", |v| {
            v["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_NOT_A_CAP"]);
        });
        refused(&s, &s.opts("c1"), true, "CAP_NOT_A_CAP");
    }

    #[test]
    fn a_missing_bundle_is_refused() {
        let s = Scratch::new("nobundle", |_| {});
        let mut opts = s.opts("c1");
        opts.bundle = s.base.join("elsewhere");
        refused(&s, &opts, true, "elsewhere");
    }

    #[test]
    fn a_good_bundle_validates_without_touching_the_host() {
        let s = Scratch::new("good", |v| {
            v["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/true"}]});
        });
        let (v, _) = validate(&s.opts("c1"), true, false).expect("validate");
        assert!(v.wait_fifo);
        assert!(!v.terminal);
        assert!(v.runtime_hooks);
        assert!(v.ns.new_pid);
        assert!(v.seccomp.is_none());
        assert!(v.rootfs.ends_with("bundle/rootfs"));
        assert!(
            v.resources
                .devices()
                .as_ref()
                .is_some_and(|d| !d.is_empty()),
            "device rules are planned"
        );
        assert!(s.host_untouched());
    }
}
