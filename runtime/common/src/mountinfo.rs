//! `/proc/PID/mountinfo` (proc(5)): one mount a line,
//! `ID PARENT MAJ:MIN ROOT MOUNT_POINT MOUNT_OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTS`,
//! with space, tab, newline and backslash in paths written as octal escapes
//! (`\040`, `\011`, `\012`, `\134`).

/// One line of mountinfo, paths unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Mount ID.
    pub id: u32,
    /// Parent mount ID.
    pub parent: u32,
    /// Major number of the device the file system is on.
    pub major: u64,
    /// Minor number of that device.
    pub minor: u64,
    /// Root of the mount within its file system.
    pub root: String,
    /// Mount point relative to the reader's root.
    pub mount_point: String,
    /// Per-mount options (ro, nosuid, relatime, ...).
    pub mount_opts: Vec<String>,
    /// Optional fields (shared:N, master:N, propagate_from:N, unbindable).
    pub optional: Vec<String>,
    /// File system type (`ext4`, `cgroup2`, `fuse.sshfs`, ...).
    pub fstype: String,
    /// Mount source.
    pub source: String,
    /// Super block options.
    pub super_opts: Vec<String>,
}

impl MountInfo {
    /// Propagation as one of `shared`, `slave`, `private`, `unbindable`
    /// (a mount both shared and slave reports `shared+slave`).
    pub fn propagation(&self) -> String {
        let shared = self.optional.iter().any(|o| o.starts_with("shared:"));
        let slave = self.optional.iter().any(|o| o.starts_with("master:"));
        let unbindable = self.optional.iter().any(|o| o == "unbindable");
        match (shared, slave, unbindable) {
            (_, _, true) => "unbindable".into(),
            (true, true, _) => "shared+slave".into(),
            (true, false, _) => "shared".into(),
            (false, true, _) => "slave".into(),
            _ => "private".into(),
        }
    }

    /// True if the per-mount options contain `opt`.
    pub fn has_opt(&self, opt: &str) -> bool {
        self.mount_opts.iter().any(|o| o == opt)
    }
}

/// Undo the octal escapes (`\040` for a space, `\134` for a backslash) of a
/// mountinfo field. A backslash not followed by three octal digits of a byte
/// value stays as it is.
pub fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_string();
    }
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = u32::from(oct[0] - b'0') * 64
                    + u32::from(oct[1] - b'0') * 8
                    + u32::from(oct[2] - b'0');
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse the text of a mountinfo file; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

/// Parse one mountinfo line; `None` if it is malformed.
pub fn parse_line(line: &str) -> Option<MountInfo> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let id = l.next()?.parse().ok()?;
    let parent = l.next()?.parse().ok()?;
    let (major, minor) = l.next()?.split_once(':')?;
    let (major, minor) = (major.parse().ok()?, minor.parse().ok()?);
    let root = unescape(l.next()?);
    let mount_point = unescape(l.next()?);
    let mount_opts = l.next()?.split(',').map(str::to_string).collect();
    let optional = l.filter(|s| !s.is_empty()).map(str::to_string).collect();
    let mut r = right.splitn(3, ' ');
    let fstype = r.next()?.to_string();
    let source = unescape(r.next()?);
    let super_opts = r
        .next()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Some(MountInfo {
        id,
        parent,
        major,
        minor,
        root,
        mount_point,
        mount_opts,
        optional,
        fstype,
        source,
        super_opts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_parses_all_fields() {
        let t = "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n";
        let m = &parse_mountinfo(t)[0];
        assert_eq!((m.id, m.parent, m.major, m.minor), (36, 35, 98, 0));
        assert_eq!(m.root, "/mnt1");
        assert_eq!(m.mount_point, "/mnt x");
        assert_eq!(m.mount_opts, vec!["rw", "noatime"]);
        assert!(m.has_opt("noatime"));
        assert_eq!(m.optional, vec!["master:1", "shared:2"]);
        assert_eq!(m.propagation(), "shared+slave");
        assert_eq!(m.fstype, "ext3");
        assert_eq!(m.source, "/dev/root");
        assert_eq!(m.super_opts, vec!["rw", "errors=continue"]);
    }

    #[test]
    fn no_optional_fields_is_private() {
        let m = &parse_mountinfo("1 0 0:1 / / ro - tmpfs tmpfs rw\n")[0];
        assert!(m.optional.is_empty());
        assert_eq!(m.propagation(), "private");
        assert_eq!(m.super_opts, vec!["rw"]);
    }

    #[test]
    fn unbindable_wins_and_propagate_from_is_kept() {
        let m = parse_line("5 1 0:3 / /a rw master:2 propagate_from:1 unbindable - tmpfs none rw")
            .unwrap();
        assert_eq!(m.optional.len(), 3);
        assert_eq!(m.propagation(), "unbindable");
        assert_eq!(
            parse_line("6 1 0:3 / /b rw master:2 - tmpfs none rw")
                .unwrap()
                .propagation(),
            "slave"
        );
    }

    #[test]
    fn octal_escapes_in_paths_and_source() {
        let m = parse_line(
            "7 1 8:1 /a\\011b /mnt/sp\\040ace/nl\\012/back\\134slash rw - ext4 /dev/disk\\040x rw",
        )
        .unwrap();
        assert_eq!(m.root, "/a\tb");
        assert_eq!(m.mount_point, "/mnt/sp ace/nl\n/back\\slash");
        assert_eq!(m.source, "/dev/disk x");
    }

    #[test]
    fn unescape_edges() {
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\040"), "/end ");
        assert_eq!(unescape("/trail\\04"), "/trail\\04");
        assert_eq!(unescape("/not\\08x"), "/not\\08x");
        // \777 is no byte: left alone
        assert_eq!(unescape("/big\\777"), "/big\\777");
    }

    #[test]
    fn separator_splits_at_the_dash_field_only() {
        // a mount point with an escaped " - " stays one field
        let m = parse_line("8 1 0:4 / /x\\040-\\040y rw shared:3 - proc proc rw,nosuid").unwrap();
        assert_eq!(m.mount_point, "/x - y");
        assert_eq!(m.optional, vec!["shared:3"]);
        assert_eq!(m.fstype, "proc");
        assert_eq!(m.super_opts, vec!["rw", "nosuid"]);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = "garbage\n9 1 0:5 / /ok rw - tmpfs t rw\n10 1 / /no-dev rw - tmpfs t rw\n11 1 0:5 / /no-sep rw tmpfs t rw\n";
        let all = parse_mountinfo(text);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].mount_point, "/ok");
    }

    #[test]
    fn cgroup_super_options_list_controllers() {
        let m = parse_line(
            "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct",
        )
        .unwrap();
        assert_eq!(m.mount_point, "/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(m.super_opts, vec!["rw", "cpu", "cpuacct"]);
    }
}
