//! `linux.devices`, the default devices and /dev symbolic links.

use super::{expect_eq, mismatch, Check, Checker, Miss};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// Devices every Linux container MUST have (config-linux.md, Default Devices).
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Symlinks runtime-linux.md requires when their source exists.
const DEV_LINKS: &[(&str, &str)] = &[
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

pub(super) fn run(c: &mut Checker) {
    for (path, maj, min) in DEFAULT_DEVICES {
        c.check(&format!("devices.default.{path}"), |_| {
            device(path, 'c', *maj, *min, None, None, None)
        });
    }
    for (link, target) in DEV_LINKS {
        c.check(&format!("devices.link.{link}"), |_| symlink(link, target));
    }
    c.check("devices.link./dev/ptmx", |_| ptmx());
    c.check("devices.link./dev/core", |_| {
        match std::fs::read_link("/dev/core") {
            Ok(t) => expect_eq("/proc/kcore".to_string(), t.to_string_lossy().into_owned()),
            Err(_) => Err(Miss::Skip("no /dev/core (optional)".into())),
        }
    });
    c.check("devices.console", console);
    let devs: Vec<serde_json::Value> = c
        .at("/linux/devices")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    let rules: Vec<serde_json::Value> = c
        .at("/linux/resources/devices")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    for d in &devs {
        let path = d["path"].as_str().unwrap_or("").to_string();
        let ty = d["type"].as_str().unwrap_or("");
        if ty != "c" && ty != "b" && ty != "u" {
            continue;
        }
        let (maj, min) = (
            d["major"].as_i64().unwrap_or(-1),
            d["minor"].as_i64().unwrap_or(-1),
        );
        c.check(&format!("devices.access.{path}"), |_| {
            if rules.is_empty() {
                return Err(Miss::Skip("no linux.resources.devices rules".into()));
            }
            let allowed = read_allowed(&rules, if ty == "b" { 'b' } else { 'c' }, maj, min);
            access(&path, allowed)
        });
    }
    for d in devs {
        let path = d["path"].as_str().unwrap_or("").to_string();
        c.check(&format!("devices.config.{path}"), |_| {
            let ty = d["type"]
                .as_str()
                .and_then(|t| t.chars().next())
                .unwrap_or('?');
            device(
                &path,
                ty,
                d["major"].as_u64().unwrap_or(0),
                d["minor"].as_u64().unwrap_or(0),
                d["fileMode"].as_u64(),
                d["uid"].as_u64(),
                d["gid"].as_u64(),
            )
        });
    }
}

fn device(
    path: &str,
    ty: char,
    major: u64,
    minor: u64,
    mode: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
) -> Check {
    let md = std::fs::metadata(path).map_err(|e| mismatch(format!("{path} present"), e))?;
    let ft = md.file_type();
    let got_ty = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else if ft.is_fifo() {
        'p'
    } else {
        '-'
    };
    let want_ty = if ty == 'u' { 'c' } else { ty };
    let mut errs = Vec::new();
    if got_ty != want_ty {
        errs.push(format!("type: expected {want_ty} got {got_ty}"));
    }
    if want_ty != 'p' {
        let (gmaj, gmin) = (libc::major(md.rdev()), libc::minor(md.rdev()));
        if (gmaj as u64, gmin as u64) != (major, minor) {
            errs.push(format!("expected {major}:{minor} got {gmaj}:{gmin}"));
        }
    }
    if let Some(m) = mode {
        let got = md.mode() as u64 & 0o7777;
        if got != m & 0o7777 {
            errs.push(format!("mode: expected {:04o} got {got:04o}", m & 0o7777));
        }
    }
    if let Some(u) = uid {
        if md.uid() as u64 != u {
            errs.push(format!("uid: expected {u} got {}", md.uid()));
        }
    }
    if let Some(g) = gid {
        if md.gid() as u64 != g {
            errs.push(format!("gid: expected {g} got {}", md.gid()));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Miss::Fail(errs.join("; ")))
    }
}

fn symlink(link: &str, target: &str) -> Check {
    let src = target;
    if std::fs::symlink_metadata(src).is_err() {
        return Err(Miss::Skip(format!("{src} does not exist")));
    }
    let t = std::fs::read_link(link).map_err(|e| mismatch(format!("{link} -> {target}"), e))?;
    expect_eq(target.to_string(), t.to_string_lossy().into_owned())
}

fn ptmx() -> Check {
    match std::fs::read_link("/dev/ptmx") {
        Ok(t) => {
            let t = t.to_string_lossy().into_owned();
            if t == "pts/ptmx" || t == "/dev/pts/ptmx" {
                Ok(())
            } else {
                Err(mismatch("pts/ptmx", t))
            }
        }
        Err(_) => {
            // A bind mount of /dev/pts/ptmx is also allowed.
            let a = std::fs::metadata("/dev/ptmx").map_err(|e| mismatch("/dev/ptmx", e))?;
            let b = std::fs::metadata("/dev/pts/ptmx")
                .map_err(|e| Miss::Skip(format!("/dev/pts/ptmx: {e}")))?;
            if a.rdev() == b.rdev() && a.dev() == b.dev() && a.ino() == b.ino() {
                Ok(())
            } else {
                Err(mismatch("bind mount of /dev/pts/ptmx", "another file"))
            }
        }
    }
}

fn console(c: &Checker) -> Check {
    let terminal = c
        .at("/process/terminal")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if !terminal {
        return Err(Miss::Skip("process.terminal is false".into()));
    }
    let md = std::fs::metadata("/dev/console").map_err(|e| mismatch("/dev/console", e))?;
    if !md.file_type().is_char_device() {
        return Err(mismatch("character device", "other file type"));
    }
    let maj = libc::major(md.rdev());
    // Unix98 pty slaves use majors 136-143.
    if (136..=143).contains(&maj) {
        Ok(())
    } else {
        Err(mismatch("pty slave (major 136-143)", maj))
    }
}

/// Whether the rules (applied in order, later rules overriding earlier ones,
/// as config-linux.md "The runtime MUST apply entries in the listed order")
/// allow reading the device. The default devices the runtime MUST supply are
/// treated as allowed.
fn read_allowed(rules: &[serde_json::Value], ty: char, major: i64, minor: i64) -> bool {
    let default = ty == 'c'
        && matches!(
            (major, minor),
            (1, 3 | 5 | 7 | 8 | 9) | (5, 0..=2) | (136, _)
        );
    let mut allowed = true;
    for r in rules {
        let rt = r["type"].as_str().unwrap_or("a");
        let type_ok = rt == "a" || rt.starts_with(ty);
        let maj_ok = r["major"].as_i64().is_none_or(|m| m == -1 || m == major);
        let min_ok = r["minor"].as_i64().is_none_or(|m| m == -1 || m == minor);
        let acc_ok = r["access"].as_str().is_none_or(|a| a.contains('r'));
        if type_ok && maj_ok && min_ok && acc_ok {
            allowed = r["allow"].as_bool().unwrap_or(false);
        }
    }
    allowed || default
}

fn access(path: &str, allowed: bool) -> Check {
    use std::os::unix::fs::OpenOptionsExt;
    let r = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    let eperm = matches!(&r, Err(e) if e.raw_os_error() == Some(libc::EPERM));
    match (allowed, eperm) {
        (true, false) | (false, true) => Ok(()),
        (true, true) => Err(mismatch("open allowed by the device rules", "EPERM")),
        (false, false) => Err(mismatch(
            "EPERM (denied by the device rules)",
            match r {
                Ok(_) => "open succeeded".to_string(),
                Err(e) => e.to_string(),
            },
        )),
    }
}
