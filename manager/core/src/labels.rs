//! Instance labels (`--label KEY=VALUE`): free-form metadata shown by
//! `inspect` and matched by `ps --filter label=…`.

use crate::error::Result;
use crate::invalid;

/// Check `--label` values (`KEY=VALUE`, or `KEY` for an empty value); a
/// key given twice keeps its last value. Returns them as `KEY=VALUE`.
pub fn parse(labels: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for l in labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        if k.is_empty() || k.chars().any(|c| c.is_whitespace() || c.is_control()) {
            invalid!("invalid --label {l:?}: expected KEY=VALUE with a key of no spaces");
        }
        if v.chars().any(|c| c.is_control()) {
            invalid!("invalid --label {l:?}: the value holds a control character");
        }
        out.retain(|x| x.split_once('=').map(|(xk, _)| xk) != Some(k));
        out.push(format!("{k}={v}"));
    }
    Ok(out)
}

/// The value of label `key` in `labels` (`KEY=VALUE` each).
pub fn get<'a>(labels: &'a [String], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find_map(|l| l.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_and_found() {
        let l = parse(&["a=1".into(), "b".into(), "a=2".into()]).unwrap();
        assert_eq!(l, ["b=", "a=2"]);
        assert_eq!(get(&l, "a"), Some("2"));
        assert_eq!(get(&l, "b"), Some(""));
        assert_eq!(get(&l, "c"), None);
        for bad in ["=x", "a b=1", ""] {
            assert!(parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
