//! Walking a compose file's YAML tree: every key is looked up in the list
//! of keys boxctl maps, and every other key (or a value of the wrong shape)
//! becomes one problem line naming its path, so that a file is refused with
//! all its problems at once and nothing is started.

use serde_yaml_ng::Value;

/// The problems found so far, one line each (`services.web.cap_add: not supported by boxctl`).
#[derive(Debug, Default)]
pub struct Problems(pub Vec<String>);

impl Problems {
    /// `path` has a value boxctl cannot use: `msg` says what it expects.
    pub fn bad(&mut self, path: &str, msg: &str) {
        self.0.push(format!("{path}: {msg}"));
    }

    /// The entries of mapping `v` at `path` whose keys are in `known`; any
    /// other key is reported (extension keys `x-...` other than known ones
    /// are skipped, as compose does). A null is an empty mapping.
    pub fn fields<'v>(
        &mut self,
        path: &str,
        v: &'v Value,
        known: &[&str],
    ) -> Vec<(&'v str, &'v Value)> {
        let Some(map) = v.as_mapping() else {
            if !v.is_null() {
                self.bad(path, "expected a mapping");
            }
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, val) in map {
            let Some(k) = k.as_str() else {
                self.bad(path, "keys must be strings");
                continue;
            };
            if known.contains(&k) {
                out.push((k, val));
            } else if !k.starts_with("x-") {
                self.bad(&join(path, k), "not supported by boxctl");
            }
        }
        out
    }

    /// A scalar as text (strings, numbers, booleans).
    pub fn scalar(&mut self, path: &str, v: &Value) -> Option<String> {
        match v {
            Value::String(s) => {
                self.literal(path, s);
                Some(s.clone())
            }
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                self.bad(path, "expected a string or a number");
                None
            }
        }
    }

    /// Whether `s` has no `${VAR}` substitution (compose would fill it in
    /// from the environment; boxctl does not, so it refuses it).
    fn literal(&mut self, path: &str, s: &str) -> bool {
        if s.contains("${") {
            self.bad(
                path,
                "variable substitution (${...}) is not supported by boxctl: write the value",
            );
            return false;
        }
        true
    }

    /// A boolean.
    pub fn boolean(&mut self, path: &str, v: &Value) -> bool {
        v.as_bool().unwrap_or_else(|| {
            self.bad(path, "expected true or false");
            false
        })
    }

    /// A whole number.
    pub fn number<T: TryFrom<u64>>(&mut self, path: &str, v: &Value) -> Option<T> {
        let n = v.as_u64().and_then(|n| T::try_from(n).ok());
        if n.is_none() {
            self.bad(path, "expected a whole number");
        }
        n
    }

    /// A list of scalars.
    pub fn list(&mut self, path: &str, v: &Value) -> Vec<String> {
        let Some(seq) = v.as_sequence() else {
            self.bad(path, "expected a list");
            return Vec::new();
        };
        seq.iter()
            .enumerate()
            .filter_map(|(i, x)| self.scalar(&index(path, i), x))
            .collect()
    }

    /// A command: a list, or a string split into words as compose does.
    pub fn command(&mut self, path: &str, v: &Value) -> Vec<String> {
        match v {
            Value::String(s) if !self.literal(path, s) => Vec::new(),
            Value::String(s) => match split_words(s) {
                Some(words) => words,
                None => {
                    self.bad(path, "unbalanced quotes");
                    Vec::new()
                }
            },
            _ => self.list(path, v),
        }
    }

    /// `KEY=VALUE` pairs from a mapping or a list (environment, labels);
    /// a mapping's null value takes the variable from boxctl's own
    /// environment (left out when unset), as compose does.
    pub fn pairs(&mut self, path: &str, v: &Value) -> Vec<String> {
        match v.as_mapping() {
            Some(map) => {
                let mut out = Vec::new();
                for (k, val) in map {
                    let Some(k) = k.as_str() else {
                        self.bad(path, "keys must be strings");
                        continue;
                    };
                    if val.is_null() {
                        if let Ok(host) = std::env::var(k) {
                            out.push(format!("{k}={host}"));
                        }
                    } else if let Some(s) = self.scalar(&join(path, k), val) {
                        out.push(format!("{k}={s}"));
                    }
                }
                out
            }
            None => self.list(path, v),
        }
    }

    /// A string or a list of strings.
    pub fn one_or_many(&mut self, path: &str, v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            _ => self.list(path, v),
        }
    }
}

/// `path.key` (or `key` at the top).
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Split a command string into words: blanks separate, single and double
/// quotes group, a backslash escapes the next character (outside single
/// quotes). None when a quote is not closed.
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => cur.push(chars.next()?),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// Quote `words` for `sh -c` (the inverse of [`split_words`] for a shell).
pub fn shell_join(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            split_words(r#"sh -c 'echo "a b"' x\ y "q\"q""#).unwrap(),
            ["sh", "-c", "echo \"a b\"", "x y", "q\"q"]
        );
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert!(split_words("echo 'open").is_none());
        let w: Vec<String> = ["wget", "-q", "http://x/a b", "it's"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(split_words(&shell_join(&w)).unwrap(), w);
    }
}
