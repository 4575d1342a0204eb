//! Conformance cases, one module per area. Each case owns a [`Ctx`]: a
//! private `--root`, a bundle with a hard-linked busybox rootfs and the base
//! `runc spec` config, which it modifies before driving the runtime.
//!
//! [`Ctx`]: crate::runner::Ctx

mod cgroups;
mod cli;
mod devices;
mod errors;
mod hooks;
mod kernel;
mod lifecycle;
mod mounts;
mod namespaces;
mod process;
mod selftest;

use crate::runner::Case;

/// Cases that neither reference runtime (runc 1.1.5, crun 1.8.1) passes on
/// the reference host. Each rests on a quoted spec sentence (README), but a
/// failure here is not a regression against runc behaviour.
pub const UNCONFIRMED: &[&str] = &[
    "lifecycle.delete-created",
    "hooks.order-timing-namespace-state",
    "hooks.fail-startContainer",
    "hooks.fail-poststart",
    "errors.rlimits-duplicate",
    "errors.device-path-conflict",
    "errors.intelRdt-without-resctrl",
    "cli.exec-cpu-affinity",
    "process.ioPriority",
    "process.scheduler",
    "mounts.rootfsPropagation-slave",
    "mounts.rootfsPropagation-slave-receives",
    "errors.memoryPolicy-offline-node",
    "process.ioPriority-rt",
    "namespaces.time-user",
    "kernel.memoryPolicy-bind",
    "kernel.memoryPolicy-interleave",
];

/// A note for the report when `name` is a case no reference runtime passes.
pub fn note(name: &str) -> Option<&'static str> {
    UNCONFIRMED
        .contains(&name)
        .then_some("[no reference runtime passes this case]")
}

/// Every case, in report order.
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend_from_slice(lifecycle::CASES);
    v.extend_from_slice(hooks::CASES);
    v.extend_from_slice(errors::CASES);
    v.extend_from_slice(cli::CASES);
    v.extend_from_slice(process::CASES);
    v.extend_from_slice(namespaces::CASES);
    v.extend_from_slice(mounts::CASES);
    v.extend_from_slice(devices::CASES);
    v.extend_from_slice(cgroups::CASES);
    v.extend_from_slice(kernel::CASES);
    v.extend_from_slice(selftest::CASES);
    v
}

/// The v1 controllers among `ctrls` whose hierarchy under /sys/fs/cgroup still has
/// the cgroup `cg` (a failed create must leave none).
fn cgroup_left<'a>(cg: &str, ctrls: &[&'a str]) -> Vec<&'a str> {
    ctrls
        .iter()
        .copied()
        .filter(|ctrl| {
            std::path::Path::new("/sys/fs/cgroup")
                .join(ctrl)
                .join(cg.trim_start_matches('/'))
                .exists()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn case_names_are_unique_and_area_prefixed() {
        let all = super::all();
        let mut names: Vec<&str> = all.iter().map(|c| c.name).collect();
        assert!(names.iter().all(|n| n.contains('.')), "{names:?}");
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate case names");
        for u in super::UNCONFIRMED {
            assert!(names.contains(u), "UNCONFIRMED lists unknown case {u}");
        }
    }
}
