//! Output that scripts read, as runc prints it (issue 16, "Output that scripts read"):
//! `events` and `list --format json` key order, `--debug` without `--log`, the
//! `--help`/`--version` layout, and the error wording where runc and boxrun both
//! refuse. Where `/usr/sbin/runc` is installed, the same phrase is checked in its output.

mod common;

use common::{stderr, stdout, Fixture};
use std::path::Path;

const RUNC: &str = "/usr/sbin/runc";

/// Start `sleep 600` as `id` in the fixture.
fn start_sleeper(f: &mut Fixture, id: &str) {
    f.args(&["/bin/sleep", "600"]);
    let o = f.create(id);
    assert!(o.status.success(), "create: {}", stderr(&o));
    let o = f.run(&["start", id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
}

/// The top-level keys of a JSON object in the order they are written.
fn key_order(object: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut depth = 0;
    let mut chars = object.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            '"' => {
                let start = i + 1;
                let mut end = start;
                while let Some((j, c)) = chars.next() {
                    if c == '\\' {
                        chars.next();
                    } else if c == '"' {
                        end = j;
                        break;
                    }
                }
                let is_key = object[end + 1..].trim_start().starts_with(':');
                if depth == 1 && is_key {
                    keys.push(object[start..end].to_string());
                }
            }
            _ => {}
        }
    }
    keys
}

#[test]
fn events_keys_are_type_id_data() {
    let mut f = Fixture::new();
    start_sleeper(&mut f, "ev");
    let o = f.run(&["events", "--stats", "ev"]);
    assert!(o.status.success(), "events: {}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(key_order(out.trim()), ["type", "id", "data"], "{out}");
    assert!(
        out.starts_with(r#"{"type":"stats","id":"ev","data":{"#),
        "{out}"
    );
}

#[test]
fn list_json_has_runcs_fields_in_runcs_order() {
    let mut f = Fixture::new();
    start_sleeper(&mut f, "ls");
    let o = f.run(&["list", "--format", "json"]);
    assert!(o.status.success(), "list: {}", stderr(&o));
    let out = stdout(&o);
    let entry = out.trim().trim_start_matches('[').trim_end_matches(']');
    let want = [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ];
    assert_eq!(key_order(entry), want, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("list json");
    assert_eq!(v[0]["owner"], "root");
}

#[test]
fn debug_without_log_writes_runcs_text_form_to_stderr() {
    let f = Fixture::new();
    let o = f.run(&["--debug", "state", "nosuch"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("time=\"") && l.contains(" level=debug msg=\"boxrun ")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(" level=error msg=\"container nosuch does not exist\"")),
        "{err}"
    );
}

#[test]
fn version_and_help_in_runcs_layout() {
    let f = Fixture::new();
    let o = f.run(&["--version"]);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 3, "{out}");
    assert!(lines[0].starts_with("boxrun version "), "{out}");
    assert!(lines[1].starts_with("commit: "), "{out}");
    assert!(lines[2].starts_with("spec: "), "{out}");
    let o = f.run(&["--help"]);
    let out = stdout(&o);
    let sections = ["NAME:", "USAGE:", "VERSION:", "COMMANDS:", "GLOBAL OPTIONS"];
    let at: Vec<usize> = sections
        .iter()
        .map(|s| out.find(s).unwrap_or_else(|| panic!("no {s} in {out}")))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{out}");
    assert!(out.contains("\n   boxrun [global options] command [command options] [arguments...]\n"));
    let o = f.run(&["kill", "--help"]);
    let out = stdout(&o);
    assert!(out.starts_with("NAME:\n   boxrun kill - "), "{out}");
    assert!(out.contains("OPTIONS:\n   --all, -a "), "{out}");
}

/// `run` of a fixture changed by `edit`, with boxrun and (when installed) runc: each
/// must fail and say `phrase` on stderr.
fn both_refuse_with(tag: &str, phrase: &str, edit: impl Fn(&mut Fixture)) {
    let mut runtimes = vec![Fixture::new()];
    if Path::new(RUNC).exists() {
        runtimes.push(Fixture::with_runtime(RUNC));
    }
    for mut f in runtimes {
        edit(&mut f);
        f.save();
        let o = f.run(&["run", "--bundle", f.bundle.to_str().expect("utf8"), tag]);
        let err = stderr(&o);
        let who = f.runtime.display().to_string();
        assert!(!o.status.success(), "{who}: {tag} succeeded");
        assert!(err.contains(phrase), "{who}: {tag}: {err}");
    }
}

#[test]
fn unified_resources_on_a_v1_host_are_refused_in_runcs_words() {
    if !Path::new("/sys/fs/cgroup/memory/tasks").exists() {
        return; // memory is not a v1 controller here: unified memory.max is valid
    }
    both_refuse_with("unified", "cannot use unified on cgroup v1", |f| {
        f.config["linux"]["resources"]["unified"] = serde_json::json!({"memory.max": "1000000"});
    });
}

#[test]
fn a_bind_into_proc_through_a_symlink_is_refused_in_runcs_words() {
    both_refuse_with(
        "procbind",
        "cannot be mounted because it is inside /proc",
        |f| {
            std::os::unix::fs::symlink("/proc", f.bundle.join("rootfs/lnk")).expect("symlink");
            f.config["mounts"].as_array_mut().expect("mounts").push(serde_json::json!({
            "destination": "/lnk/sys", "type": "bind", "source": "/tmp", "options": ["rbind"],
        }));
        },
    );
}

#[test]
fn a_missing_seccomp_agent_is_refused_in_runcs_words() {
    let phrase =
        "failed to connect with seccomp agent specified in the seccomp profile: dial unix ";
    both_refuse_with("agent", phrase, |f| {
        f.config["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": f.dir.join("nosuch.sock"),
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
        });
    });
}

#[test]
fn a_hook_killed_by_a_signal_is_reported_in_runcs_words() {
    both_refuse_with("hooksig", "signal: killed", |f| {
        f.config["hooks"] = serde_json::json!({
            "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $$"]}],
        });
    });
}
