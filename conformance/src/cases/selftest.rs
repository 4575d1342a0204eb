//! Negative controls: the checker is told something false about the config
//! and must report `not ok` for exactly that check. These prove the checks
//! can fail; they pass for any runtime that runs the checker at all.

use crate::runner::{Case, CaseResult, Ctx};
use crate::tap::Point;
use crate::{check, fail};
use serde_json::{json, Value};

/// Cases of this area.
pub const CASES: &[Case] = &[
    Case {
        name: "selftest.hostname",
        run: |c| lie(c, "hostname", |v| v["hostname"] = json!("oc-not-this")),
    },
    Case {
        name: "selftest.uid",
        run: |c| {
            lie(c, "process.user.uid", |v| {
                v["process"]["user"]["uid"] = json!(4242)
            })
        },
    },
    Case {
        name: "selftest.capabilities",
        run: |c| {
            lie(c, "process.capabilities.bounding", |v| {
                v["process"]["capabilities"]["bounding"] = json!(["CAP_SYS_ADMIN"])
            })
        },
    },
    Case {
        name: "selftest.mount-missing",
        run: |c| {
            lie(c, "mounts./oc-nowhere", |v| {
                if let Some(m) = v["mounts"].as_array_mut() {
                    m.push(
                        json!({"destination": "/oc-nowhere", "type": "tmpfs", "source": "tmpfs"}),
                    );
                }
            })
        },
    },
    Case {
        name: "selftest.namespace",
        run: |c| {
            lie(c, "ns.network", |v| {
                if let Some(a) = v["linux"]["namespaces"].as_array_mut() {
                    a.retain(|n| n["type"] != "network");
                }
            })
        },
    },
    Case {
        name: "selftest.masked-path",
        run: |c| {
            lie(c, "maskedPaths./proc/cpuinfo", |v| {
                if let Some(a) = v["linux"]["maskedPaths"].as_array_mut() {
                    a.push(json!("/proc/cpuinfo"));
                }
            })
        },
    },
    Case {
        name: "selftest.readonly-root",
        run: |c| lie(c, "root.readonly", |v| v["root"]["readonly"] = json!(false)),
    },
];

fn lie(c: &mut Ctx, check_name: &str, f: fn(&mut Value)) -> CaseResult {
    let (out, tap) = c.run_checker_with(&[check_name], f)?;
    let Some(p) = tap.points.iter().find(|p| p.desc == check_name) else {
        fail!("checker did not run {check_name}: {}", out.describe());
    };
    check!(
        matches!(p.point, Point::NotOk(_)),
        "checker accepted a false {check_name}: {:?}",
        p.point
    );
    check!(
        !out.success(),
        "runtime run exited 0 although the checker failed (exit status lost)"
    );
    Ok(())
}
