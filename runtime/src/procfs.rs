//! Reading process facts from /proc: liveness, start time, zombie state.

/// What /proc/PID/stat says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// State letter (R, S, D, Z, T, ...).
    pub state: u8,
    /// Start time in clock ticks since boot (field 22): identifies the process across pid reuse.
    pub start_time: u64,
}

/// Parse /proc/PID/stat, or None if the process does not exist.
pub fn stat(pid: i32) -> Option<ProcStat> {
    use std::io::Read;
    // One read(2): the line is a few hundred bytes (fs::read would stat the file, see
    // size 0, and read in growing steps).
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 1024];
    let n = f.read(&mut buf).ok()?;
    if n < buf.len() {
        return parse_stat(&buf[..n]);
    }
    let mut data = buf.to_vec();
    f.read_to_end(&mut data).ok()?;
    parse_stat(&data)
}

/// Parse the contents of a /proc/PID/stat file.
pub fn parse_stat(data: &[u8]) -> Option<ProcStat> {
    // The command name is in parentheses and may contain spaces or ')'.
    let close = data.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(data.get(close + 2..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    // After state come fields 4..; start time is field 22, i.e. the 20th after state.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// Whether `pid` is alive (not a zombie) and is the same process as recorded.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    match stat(pid) {
        Some(s) => {
            s.state != b'Z' && s.state != b'X' && (start_time == 0 || s.start_time == start_time)
        }
        None => false,
    }
}

/// The processes in `init`'s pid namespace, `init` first: a container's processes when
/// it has a pid namespace of its own but no cgroup to list them (rootless). Processes
/// whose namespace this user may not see are left out.
pub fn pidns_members(init: i32) -> Vec<i32> {
    let ns_of = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(ns) = ns_of(init) else {
        return Vec::new();
    };
    let mut out = vec![init];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    let mut rest: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != init && ns_of(pid).as_ref() == Some(&ns))
        .collect();
    rest.sort_unstable();
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line = b"1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 18446744073709551615";
        let s = parse_stat(line).expect("parse");
        assert_eq!(s.state, b'S');
        assert_eq!(s.start_time, 98765);
    }

    #[test]
    fn own_process_is_alive() {
        let me = std::process::id() as i32;
        let s = stat(me).expect("self stat");
        assert!(is_alive(me, s.start_time));
        assert!(!is_alive(me, s.start_time + 1));
    }
}
