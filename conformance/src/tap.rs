//! Test Anything Protocol: the checker's output format and its parser.

use std::fmt::Write as _;

/// Outcome of one TAP test point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Point {
    /// `ok N - desc`
    Ok,
    /// `not ok N - desc # reason`
    NotOk(String),
    /// `ok N - desc # SKIP reason`
    Skip(String),
}

/// One parsed or produced test point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestPoint {
    /// Description, e.g. `process.user.uid`.
    pub desc: String,
    /// Result.
    pub point: Point,
}

/// A TAP document: a plan and its points.
#[derive(Debug, Default, Clone)]
pub struct Tap {
    /// Number announced by `1..N`, if any.
    pub plan: Option<usize>,
    /// Points in order.
    pub points: Vec<TestPoint>,
}

impl Tap {
    /// Append a point.
    pub fn push(&mut self, desc: impl Into<String>, point: Point) {
        self.points.push(TestPoint {
            desc: desc.into(),
            point,
        });
    }

    /// Render as TAP text with the plan first.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "1..{}", self.points.len());
        for (i, p) in self.points.iter().enumerate() {
            let n = i + 1;
            let desc = p.desc.replace(['\n', '#'], " ");
            let _ = match &p.point {
                Point::Ok => writeln!(out, "ok {n} - {desc}"),
                Point::NotOk(r) => writeln!(out, "not ok {n} - {desc} # {}", one_line(r)),
                Point::Skip(r) => writeln!(out, "ok {n} - {desc} # SKIP {}", one_line(r)),
            };
        }
        out
    }

    /// Parse TAP text; lines that are not TAP are ignored.
    pub fn parse(text: &str) -> Tap {
        let mut tap = Tap::default();
        for line in text.lines() {
            let line = line.trim_end();
            if let Some(rest) = line.strip_prefix("1..") {
                tap.plan = rest.trim().parse().ok();
                continue;
            }
            let (ok, rest) = if let Some(r) = line.strip_prefix("not ok ") {
                (false, r)
            } else if let Some(r) = line.strip_prefix("ok ") {
                (true, r)
            } else {
                continue;
            };
            let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            let rest = rest.trim_start().trim_start_matches('-').trim_start();
            let (desc, directive) = match rest.split_once(" # ") {
                Some((d, x)) => (d.trim().to_string(), Some(x.trim().to_string())),
                None => (rest.trim().to_string(), None),
            };
            let point = match (ok, directive) {
                (true, Some(d)) if d.to_ascii_uppercase().starts_with("SKIP") => {
                    Point::Skip(d[4..].trim().to_string())
                }
                (true, _) => Point::Ok,
                (false, d) => Point::NotOk(d.unwrap_or_default()),
            };
            tap.points.push(TestPoint { desc, point });
        }
        tap
    }

    /// Points that failed.
    pub fn failures(&self) -> impl Iterator<Item = &TestPoint> {
        self.points
            .iter()
            .filter(|p| matches!(p.point, Point::NotOk(_)))
    }

    /// True when the plan is present and matches the number of points.
    pub fn complete(&self) -> bool {
        self.plan == Some(self.points.len())
    }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_round_trips() {
        let mut t = Tap::default();
        t.push("a.b", Point::Ok);
        t.push("c", Point::NotOk("expected 1 got 2".into()));
        t.push("d", Point::Skip("no such thing".into()));
        let text = t.render();
        assert!(text.starts_with("1..3\n"));
        assert!(text.contains("not ok 2 - c # expected 1 got 2"));
        assert!(text.contains("ok 3 - d # SKIP no such thing"));
        let back = Tap::parse(&text);
        assert!(back.complete());
        assert_eq!(back.points, t.points);
        assert_eq!(back.failures().count(), 1);
    }

    #[test]
    fn parse_ignores_noise_and_detects_truncation() {
        let t = Tap::parse("hello\n1..3\nok 1 - x\n# comment\n");
        assert_eq!(t.points.len(), 1);
        assert!(!t.complete());
    }
}
