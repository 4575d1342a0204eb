//! `ps --format`: the Go-template-like fields docker users write
//! (`{{.ID}}\t{{.Names}}`, a `table ` prefix for a header, `{{json .}}`),
//! by plain substitution: no Go template engine.

use boxctl_core::instance_file::Instance;
use boxctl_core::lifecycle;
use serde_json::{Map, Value};

use crate::output::{self, print_table};

/// The fields `{{.NAME}}` takes, with their `table` headers.
const FIELDS: [(&str, &str); 10] = [
    ("ID", "CONTAINER ID"),
    ("Names", "NAMES"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Ports", "PORTS"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
    ("Networks", "NETWORKS"),
];

/// docker's default `table` columns.
const DEFAULT_TABLE: &str =
    "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedAt}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field(&'static str),
    Label(String),
    Json,
}

/// A checked `--format`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    table: bool,
    parts: Vec<Part>,
}

impl Template {
    /// Check `format`: an unknown field is refused with a message naming the
    /// known ones.
    pub fn parse(format: &str) -> Result<Template, String> {
        let (table, body) = match format.strip_prefix("table") {
            Some("") => (true, DEFAULT_TABLE),
            Some(rest) if rest.starts_with([' ', '\t']) => (true, &rest[1..]),
            _ => (false, format),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find("}}") else {
                return Err(format!("invalid --format {format:?}: unclosed {{{{"));
            };
            let inner = rest[open + 2..open + close].trim();
            parts.push(field(format, inner)?);
            rest = &rest[open + close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template { table, parts })
    }

    /// Print `shown` through the template (a header and aligned columns with `table`).
    pub fn print(&self, shown: &[&Instance], now: i64) {
        let mut lines: Vec<String> = Vec::new();
        if self.table {
            lines.push(self.render(|p| {
                match p {
                    Part::Field(f) => FIELDS
                        .iter()
                        .find(|(n, _)| n == f)
                        .map_or(String::new(), |(_, h)| h.to_string()),
                    Part::Label(k) => k.to_uppercase(),
                    _ => String::new(),
                }
            }));
        }
        for i in shown {
            let values = values(i, now);
            lines.push(self.render(|p| {
                match p {
                    Part::Field(f) => values[*f].as_str().unwrap_or_default().to_string(),
                    Part::Label(k) => boxctl_core::labels::get(&i.labels, k)
                        .unwrap_or_default()
                        .to_string(),
                    _ => Value::Object(values.clone()).to_string(),
                }
            }));
        }
        if self.table {
            let rows: Vec<Vec<String>> = lines
                .iter()
                .map(|l| l.split('\t').map(str::to_string).collect())
                .collect();
            print_table(&rows);
        } else {
            for l in lines {
                println!("{l}");
            }
        }
    }

    fn render(&self, value: impl Fn(&Part) -> String) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                other => value(other),
            })
            .collect()
    }
}

fn field(format: &str, inner: &str) -> Result<Part, String> {
    if inner == "json ." {
        return Ok(Part::Json);
    }
    if let Some(key) = inner.strip_prefix(".Label ") {
        let key = key.trim().trim_matches('"');
        if !key.is_empty() {
            return Ok(Part::Label(key.to_string()));
        }
    }
    if let Some((name, _)) = inner
        .strip_prefix('.')
        .and_then(|n| FIELDS.iter().find(|(f, _)| *f == n))
    {
        return Ok(Part::Field(name));
    }
    Err(format!(
        "invalid --format {format:?}: unknown field {{{{{inner}}}}}; boxctl knows {}, \
         {{{{.Label \"KEY\"}}}} and {{{{json .}}}}",
        FIELDS
            .iter()
            .map(|(f, _)| format!("{{{{.{f}}}}}"))
            .collect::<Vec<_>>()
            .join(" ")
    ))
}

/// An instance's fields as docker names them.
fn values(i: &Instance, now: i64) -> Map<String, Value> {
    let state = serde_json::to_value(i.status).unwrap_or_default();
    let networks: Vec<String> = i.attachments().into_iter().map(|a| a.network).collect();
    let created = i.created.replace('T', " ").replace('Z', "") + " +0000 UTC";
    let s = |v: String| Value::String(v);
    [
        ("ID", s(i.id.clone())),
        ("Names", s(i.name.clone())),
        ("Image", s(i.image.clone())),
        ("Command", s(format!("\"{}\"", i.command.join(" ")))),
        ("Status", s(lifecycle::status_text(i, now))),
        ("State", state),
        ("Ports", s(output::ports(i))),
        ("Labels", s(i.labels.join(","))),
        ("CreatedAt", s(created)),
        ("Networks", s(networks.join(","))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_as_docker_users_write_them() {
        let t = Template::parse("table {{.ID}}\\t{{ .Names }}").unwrap();
        assert!(t.table);
        assert_eq!(
            t.parts,
            [
                Part::Field("ID"),
                Part::Text("\t".into()),
                Part::Field("Names")
            ]
        );
        let t = Template::parse("{{json .}}").unwrap();
        assert_eq!(t.parts, [Part::Json]);
        let t = Template::parse("{{.Label \"tier\"}}!").unwrap();
        assert_eq!(
            t.parts,
            [Part::Label("tier".into()), Part::Text("!".into())]
        );
        let e = Template::parse("{{.Foo}}").unwrap_err().to_string();
        assert!(e.contains("unknown field {{.Foo}}"), "{e}");
        assert!(Template::parse("{{.ID").is_err());
    }
}
