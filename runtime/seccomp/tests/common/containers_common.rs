//! Podman's default seccomp profile: the containers-common *source* format (moby's: `archMap`,
//! `name`/`names`, `includes`/`excludes`, `errno` names, `comment`) turned into the OCI
//! `linux.seccomp` object podman writes into `config.json`.
//!
//! The rules are those of containers/common `pkg/seccomp/seccomp_linux.go` (`setupSeccomp`,
//! v0.50.1, the version Debian 12's podman 4.3.1 is built with), which podman calls through
//! `LoadProfile(profile, spec)` with the spec's bounding capabilities:
//!
//! * `architectures` and `archMap` together are an error; `architectures` is copied; from
//!   `archMap` only the entry of the native arch (libseccomp's name, e.g. `amd64` →
//!   `SCMP_ARCH_X86_64`) is used: that arch followed by its `subArchitectures`;
//! * `flags`, `listenerPath`, `listenerMetadata` and `defaultAction` are copied; `defaultErrno`
//!   (a number or an errno name) wins over `defaultErrnoRet`, and `errno` over `errnoRet`;
//! * a rule is dropped when `excludes.arches` names the native arch, when the container has
//!   *any* capability of `excludes.caps`, when `includes.arches` is set and does not name the
//!   native arch, or when the container lacks *any* capability of `includes.caps`;
//! * `name` and `names` together are an error; either becomes `names`; `args` are copied
//!   (`valueTwo` defaults to 0), empty `args` are left out, and so is a missing errno;
//! * anything else (`comment`, and moby's `includes.minKernel`) is not part of containers/common's
//!   types and is ignored: podman keeps a `minKernel`-gated rule whatever the running kernel.

use serde_json::{json, Map, Value};

/// Where Debian's golang-github-containers-common installs podman's default profile.
pub const PODMAN_SECCOMP_JSON: &str = "/usr/share/containers/seccomp.json";

/// What the tests print when [`PODMAN_SECCOMP_JSON`] is not installed.
pub const PODMAN_MISSING: &str = "skipping podman profile: /usr/share/containers/seccomp.json \
                                  not found (install golang-github-containers-common)";

/// `default_capabilities` of the containers.conf containers-common 0.50.1 installs in
/// /usr/share/containers: the bounding set of a podman container run without
/// `--cap-add`/`--cap-drop`/`--privileged`. (The built-in default, used without any
/// containers.conf, also has CAP_AUDIT_WRITE, CAP_MKNOD and CAP_NET_RAW.)
pub const PODMAN_DEFAULT_CAPS: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Where that containers.conf is installed.
pub const CONTAINERS_CONF: &str = "/usr/share/containers/containers.conf";

/// The `default_capabilities` array of a containers.conf (TOML, read plainly), with the `CAP_`
/// prefix podman adds; `None` when the file does not set it.
pub fn conf_default_caps(conf: &str) -> Option<Vec<String>> {
    let start = conf
        .lines()
        .position(|l| l.trim_start().starts_with("default_capabilities"))?;
    let mut caps = Vec::new();
    for line in conf.lines().skip(start) {
        let body = line.split('#').next().unwrap_or("");
        let body = body.split_once('[').map_or(body, |(_, b)| b);
        caps.extend(
            body.split(',')
                .map(|c| c.trim().trim_end_matches(']').trim().trim_matches('"'))
                .filter(|c| !c.is_empty())
                .map(|c| format!("CAP_{}", c.trim_start_matches("CAP_"))),
        );
        if body.contains(']') {
            return Some(caps);
        }
    }
    None
}

/// libseccomp's name for the host architecture (`seccomp_arch_native()` as libseccomp-golang
/// prints it), which containers/common matches `arches` and `archMap` against.
pub const NATIVE_AMD64: &str = "amd64";

/// Podman's profile for a default container on an amd64 host, in OCI form; `None` when the
/// file is not installed.
pub fn podman_default_profile() -> Option<Value> {
    let text = std::fs::read_to_string(PODMAN_SECCOMP_JSON).ok()?;
    let src: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{PODMAN_SECCOMP_JSON} is not JSON: {e}"));
    Some(
        to_oci(&src, NATIVE_AMD64, &PODMAN_DEFAULT_CAPS)
            .unwrap_or_else(|e| panic!("{PODMAN_SECCOMP_JSON}: {e}")),
    )
}

/// containers/common's `setupSeccomp`: `src` in containers-common format, `native` the
/// libseccomp arch name of the host, `caps` the container's bounding set (`CAP_` names).
pub fn to_oci(src: &Value, native: &str, caps: &[&str]) -> Result<Value, String> {
    let has = |v: &Value, s: &str| strs(v).any(|x| x == s);
    let mut out = Map::new();
    let archs = &src["architectures"];
    let arch_map = &src["archMap"];
    if nonempty(archs) && nonempty(arch_map) {
        return Err("both 'architectures' and 'archMap' are set".into());
    }
    let mut architectures: Vec<Value> = strs(archs).map(|a| json!(a)).collect();
    if let Some(seccomp_arch) = native_to_seccomp(native) {
        if let Some(entry) = list(arch_map).find(|e| e["architecture"] == seccomp_arch) {
            architectures.push(entry["architecture"].clone());
            architectures.extend(strs(&entry["subArchitectures"]).map(|a| json!(a)));
        }
    }
    if !architectures.is_empty() {
        out.insert("architectures".into(), Value::Array(architectures));
    }
    if nonempty(&src["flags"]) {
        out.insert("flags".into(), src["flags"].clone());
    }
    for key in ["listenerPath", "listenerMetadata"] {
        if let Some(v) = src[key].as_str().filter(|v| !v.is_empty()) {
            out.insert(key.into(), json!(v));
        }
    }
    out.insert("defaultAction".into(), src["defaultAction"].clone());
    if let Some(e) = errno(&src["defaultErrno"], &src["defaultErrnoRet"])? {
        out.insert("defaultErrnoRet".into(), json!(e));
    }
    let mut syscalls = Vec::new();
    for call in list(&src["syscalls"]) {
        let (inc, exc) = (&call["includes"], &call["excludes"]);
        if has(&exc["arches"], native)
            || caps.iter().any(|c| has(&exc["caps"], c))
            || (nonempty(&inc["arches"]) && !has(&inc["arches"], native))
            || strs(&inc["caps"]).any(|c| !caps.contains(&c))
        {
            continue;
        }
        let name = call["name"].as_str().filter(|n| !n.is_empty());
        if name.is_some() && nonempty(&call["names"]) {
            return Err("both 'name' and 'names' are set in one rule".into());
        }
        let names: Vec<Value> = match name {
            Some(n) => vec![json!(n)],
            None => strs(&call["names"]).map(|n| json!(n)).collect(),
        };
        if names.is_empty() {
            continue;
        }
        let mut rule = Map::new();
        rule.insert("names".into(), Value::Array(names));
        rule.insert("action".into(), call["action"].clone());
        if let Some(e) = errno(&call["errno"], &call["errnoRet"])? {
            rule.insert("errnoRet".into(), json!(e));
        }
        let args: Vec<Value> = list(&call["args"])
            .map(|a| {
                json!({"index": a["index"], "value": a["value"],
                       "valueTwo": a["valueTwo"].as_u64().unwrap_or(0), "op": a["op"]})
            })
            .collect();
        if !args.is_empty() {
            rule.insert("args".into(), Value::Array(args));
        }
        syscalls.push(Value::Object(rule));
    }
    out.insert("syscalls".into(), Value::Array(syscalls));
    Ok(Value::Object(out))
}

/// containers/common's `nativeToSeccomp`.
fn native_to_seccomp(native: &str) -> Option<&'static str> {
    Some(match native {
        "amd64" => "SCMP_ARCH_X86_64",
        "arm64" => "SCMP_ARCH_AARCH64",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64n32" => "SCMP_ARCH_MIPS64N32",
        "mipsel64" => "SCMP_ARCH_MIPSEL64",
        "mipsel64n32" => "SCMP_ARCH_MIPSEL64N32",
        "s390x" => "SCMP_ARCH_S390X",
        _ => return None,
    })
}

/// `getErrno`: the `errno` string (decimal or a name of containers/common's `errnoArch` table)
/// if set, else the numeric `errnoRet`.
fn errno(name: &Value, ret: &Value) -> Result<Option<u64>, String> {
    let name = name.as_str().unwrap_or("");
    if name.is_empty() {
        return Ok(ret.as_u64());
    }
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Some(n.into()));
    }
    errno_by_name(name)
        .map(|n| Some(n as u64))
        .ok_or_else(|| format!("unknown errno {name}"))
}

macro_rules! errno_table {
    ($($e:ident)*) => {
        fn errno_by_name(name: &str) -> Option<i32> {
            match name {
                $(stringify!($e) => Some(libc::$e),)*
                _ => None,
            }
        }
    };
}

// containers/common pkg/seccomp/errno_list.go, in its order.
errno_table!(
    EPERM ENOENT ESRCH EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EDEADLK ENOMEM EACCES EFAULT ENOTBLK
    EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY EFBIG ENOSPC
    ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EAGAIN EINPROGRESS EALREADY ENOTSOCK EDESTADDRREQ
    EMSGSIZE EPROTOTYPE ENOPROTOOPT EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT
    EAFNOSUPPORT EADDRINUSE EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET ECONNABORTED ECONNRESET
    ENOBUFS EISCONN ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT ECONNREFUSED ELOOP ENAMETOOLONG
    EHOSTDOWN EHOSTUNREACH ENOTEMPTY EUSERS EDQUOT ESTALE EREMOTE ENOLCK ENOSYS EILSEQ ENOMEDIUM
    EMEDIUMTYPE EOVERFLOW ECANCELED EIDRM ENOMSG ENOTSUP EBADMSG ENOTRECOVERABLE EOWNERDEAD
);

fn list(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn strs(v: &Value) -> impl Iterator<Item = &str> {
    list(v).filter_map(Value::as_str)
}

fn nonempty(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty())
}
