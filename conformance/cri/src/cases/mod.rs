//! The lane's cases, one table row each, in the order they run. Each case makes its own
//! pod(s); the runner removes them after the case whatever its outcome.

mod lifecycle;
mod node;
mod security;
mod streaming;

use std::future::Future;
use std::pin::Pin;

use anyhow::Result;

use crate::lane::Lane;

/// A case's future, borrowing the lane for its run.
pub type CaseFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

/// One row of the table: its name and what it runs.
pub struct Case {
    /// The row's name (the same for every runtime).
    pub name: &'static str,
    /// The case itself.
    pub run: for<'a> fn(&'a mut Lane) -> CaseFuture<'a>,
}

macro_rules! case {
    ($name:expr, $f:path) => {
        Case {
            name: $name,
            run: |l| Box::pin($f(l)),
        }
    };
}

/// Every case, in order.
pub const ALL: &[Case] = &[
    case!("version: containerd answers CRI v1", lifecycle::version),
    case!(
        "image: the imported image is known to the CRI",
        lifecycle::image
    ),
    case!(
        "pod: run sandbox (ready, IP from the CNI subnet)",
        lifecycle::pod_run
    ),
    case!(
        "pod: its pause process is in the handler's runtime",
        lifecycle::pod_runtime
    ),
    case!(
        "pod: default handler runs the BinaryName runtime",
        lifecycle::pod_default_handler
    ),
    case!(
        "pod: reaches the bridge gateway (CNI bridge)",
        lifecycle::pod_gateway
    ),
    case!(
        "pod: stop (not ready, containers exited), remove",
        lifecycle::pod_stop_remove
    ),
    case!(
        "container: create (CREATED), start (RUNNING)",
        lifecycle::container_create_start
    ),
    case!(
        "container: stop (TERM trapped, exit code kept), remove",
        lifecycle::container_stop_remove
    ),
    case!(
        "container: stop escalates to KILL after the timeout",
        lifecycle::container_stop_kill
    ),
    case!("exec sync: stdout, stderr, exit code", lifecycle::exec_sync),
    case!("exec sync: timeout", lifecycle::exec_sync_timeout),
    case!(
        "exec stream: no tty (stdout, stderr, exit code)",
        streaming::exec_plain
    ),
    case!("exec stream: tty and stdin", streaming::exec_tty),
    case!(
        "attach stream: no tty, stdin to stdout",
        streaming::attach_plain
    ),
    case!("attach stream: tty, stdin to stdout", streaming::attach_tty),
    case!("port forward: HTTP to a pod port", streaming::port_forward),
    case!("logs: CRI log format, stdout and stderr", streaming::logs),
    case!("stats: container cpu and memory", node::container_stats),
    case!(
        "stats: pod sandbox (cpu, memory, containers)",
        node::pod_stats
    ),
    case!(
        "update resources: memory, cpu shares and quota",
        node::update_resources
    ),
    case!("security: run as user and group", security::run_as),
    case!(
        "security: read-only root filesystem",
        security::readonly_root
    ),
    case!(
        "security: privileged (caps, devices, no seccomp)",
        security::privileged
    ),
    case!(
        "security: capabilities drop ALL, add NET_ADMIN",
        security::capabilities
    ),
    case!(
        "security: seccomp RuntimeDefault",
        security::seccomp_default
    ),
    case!(
        "security: seccomp Localhost profile",
        security::seccomp_localhost
    ),
    case!("security: no_new_privs", security::no_new_privs),
    case!("security: sysctls (net and ipc)", security::sysctls),
    case!(
        "security: masked and read-only paths",
        security::masked_readonly
    ),
    case!("namespaces: host network", node::host_network),
    case!("namespaces: host PID", node::host_pid),
    case!("namespaces: host IPC", node::host_ipc),
    case!("namespaces: pod-shared PID namespace", node::pod_pid),
    case!("dns: resolv.conf from the pod's DNS config", node::dns),
    case!("oom: OOMKilled reason, exit code 137", node::oom),
    case!("restart: killed container, attempt 1 runs", node::restart),
    case!(
        "mount propagation: rshared, host to container and back",
        node::propagation_rshared
    ),
    case!(
        "mount propagation: rslave, host to container only",
        node::propagation_rslave
    ),
];
