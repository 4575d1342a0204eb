//! `linux.devices`, default devices and /dev symlinks.

use crate::runner::{Case, CaseResult, Ctx};
use serde_json::json;

/// Cases of this area.
pub const CASES: &[Case] = &[
    Case {
        name: "devices.default",
        run: default,
    },
    Case {
        name: "devices.config",
        run: config,
    },
    Case {
        name: "devices.cgroup-access",
        run: cgroup_access,
    },
];

fn default(c: &mut Ctx) -> CaseResult {
    c.expect_checks(&["devices."])
}

fn config(c: &mut Ctx) -> CaseResult {
    c.config["linux"]["devices"] = json!([
        {"path": "/dev/oc-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 0, "gid": 5},
        {"path": "/dev/oc-zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o600, "uid": 1000, "gid": 1000},
        {"path": "/dev/oc-loop", "type": "b", "major": 7, "minor": 200, "fileMode": 0o660, "uid": 0, "gid": 0},
        {"path": "/dev/oc-fifo", "type": "p", "fileMode": 0o600}
    ]);
    c.expect_checks(&["devices.config"])
}

fn cgroup_access(c: &mut Ctx) -> CaseResult {
    c.config["linux"]["devices"] = json!([
        {"path": "/dev/oc-allowed", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666},
        {"path": "/dev/oc-denied-fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666},
        {"path": "/dev/oc-denied-loop", "type": "b", "major": 7, "minor": 201, "fileMode": 0o666},
        {"path": "/dev/oc-allowed-mem", "type": "c", "major": 1, "minor": 4, "fileMode": 0o600}
    ]);
    c.config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 4, "access": "r"}
    ]);
    c.expect_checks(&["devices.access"])
}
