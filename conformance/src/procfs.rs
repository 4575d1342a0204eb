//! Parsers for /proc files and the name tables the checker and runner share;
//! mountinfo is parsed by `boxrun-common`, re-exported here.

pub use boxrun_common::mountinfo::{parse_mountinfo, MountInfo};

/// Value of a `Key:\tvalue` line of /proc/<pid>/status.
pub fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// Capability names in bit order (CAP_CHOWN = 0 ...).
pub const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Bit number of a capability name (`CAP_` prefix optional, any case).
pub fn cap_bit(name: &str) -> Option<u32> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    CAPS.iter().position(|c| *c == full).map(|p| p as u32)
}

/// Render a capability mask as sorted names (unknown bits as `cap_N`).
pub fn cap_names(mask: u64) -> String {
    let names: Vec<String> = (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(|b| {
            CAPS.get(b as usize)
                .map(|s| s.to_string())
                .unwrap_or_else(|| format!("cap_{b}"))
        })
        .collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(",")
    }
}

/// Resource number of an `RLIMIT_*` name.
pub fn rlimit_resource(name: &str) -> Option<u32> {
    const NAMES: &[&str] = &[
        "RLIMIT_CPU",
        "RLIMIT_FSIZE",
        "RLIMIT_DATA",
        "RLIMIT_STACK",
        "RLIMIT_CORE",
        "RLIMIT_RSS",
        "RLIMIT_NPROC",
        "RLIMIT_NOFILE",
        "RLIMIT_MEMLOCK",
        "RLIMIT_AS",
        "RLIMIT_LOCKS",
        "RLIMIT_SIGPENDING",
        "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE",
        "RLIMIT_RTPRIO",
        "RLIMIT_RTTIME",
    ];
    NAMES.iter().position(|n| *n == name).map(|p| p as u32)
}

/// Map an OCI namespace type to its /proc/<pid>/ns entry name.
pub fn ns_proc_name(oci: &str) -> Option<&'static str> {
    Some(match oci {
        "pid" => "pid",
        "network" => "net",
        "mount" => "mnt",
        "ipc" => "ipc",
        "uts" => "uts",
        "user" => "user",
        "cgroup" => "cgroup",
        "time" => "time",
        _ => return None,
    })
}

/// All OCI namespace types Linux runtimes know.
pub const NS_TYPES: &[&str] = &[
    "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
];

/// Parse a tmpfs-style size (`65536k`, `1m`, `4096`) to bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1u64 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_rlimits_map_names() {
        assert_eq!(cap_bit("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(cap_bit("kill"), Some(5));
        assert_eq!(cap_bit("CAP_NOPE"), None);
        assert_eq!(cap_names(0b100001), "CAP_CHOWN,CAP_KILL");
        assert_eq!(rlimit_resource("RLIMIT_NOFILE"), Some(7));
        assert_eq!(parse_size("65536k"), Some(64 << 20));
        assert_eq!(
            status_field("Uid:\t0\t0\t0\t0\nGid:\t1\n", "Gid"),
            Some("1")
        );
    }
}
