//! `ps --filter` as docker takes it: `label=KEY[=VALUE]`, `status=STATE`,
//! `name=PART`, `id=PREFIX`. Values of one key are alternatives; different
//! keys must all match (labels: every one given).

use crate::error::Result;
use crate::instance_file::{Instance, Status};
use crate::invalid;
use crate::labels;

/// States `status=` takes: boxctl's, and docker's words for them.
const STATES: [&str; 8] = [
    "created",
    "creating",
    "restarting",
    "running",
    "removing",
    "exited",
    "paused",
    "dead",
];

/// A checked set of filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    labels: Vec<(String, Option<String>)>,
    statuses: Vec<String>,
    names: Vec<String>,
    ids: Vec<String>,
}

impl Filter {
    /// Check `--filter` values.
    pub fn parse(filters: &[String]) -> Result<Filter> {
        let mut f = Filter::default();
        for s in filters {
            let Some((key, value)) = s.split_once('=') else {
                invalid!("invalid --filter {s:?}: expected KEY=VALUE with KEY one of label, status, name, id");
            };
            if value.is_empty() {
                invalid!("invalid --filter {s:?}: {key} needs a value");
            }
            match key {
                "label" => {
                    let (k, v) = value
                        .split_once('=')
                        .map_or((value, None), |(k, v)| (k, Some(v.to_string())));
                    f.labels.push((k.to_string(), v));
                }
                "status" if STATES.contains(&value) => f.statuses.push(value.to_string()),
                "status" => invalid!(
                    "invalid --filter {s:?}: status is one of {}",
                    STATES.join(", ")
                ),
                "name" => f.names.push(value.to_string()),
                "id" => f.ids.push(value.to_string()),
                _ => invalid!(
                    "invalid --filter {s:?}: unknown key {key:?}; boxctl filters on label, status, name and id"
                ),
            }
        }
        Ok(f)
    }

    /// Whether a status filter is given (then `ps` looks at every instance,
    /// as docker does, without `-a`).
    pub fn has_status(&self) -> bool {
        !self.statuses.is_empty()
    }

    /// Whether `inst` passes.
    pub fn matches(&self, inst: &Instance) -> bool {
        let status = match inst.status {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Removing => "removing",
        };
        self.labels.iter().all(|(k, v)| {
            labels::get(&inst.labels, k).is_some_and(|have| v.as_deref().is_none_or(|v| v == have))
        }) && (self.statuses.is_empty() || self.statuses.iter().any(|s| s == status))
            && (self.names.is_empty() || self.names.iter().any(|n| inst.name.contains(n.as_str())))
            && (self.ids.is_empty() || self.ids.iter().any(|p| inst.id.starts_with(p.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_combine_as_docker_does() {
        let mut i = crate::instance_file::tests::sample();
        i.labels = vec!["tier=web".into(), "x=".into()];
        let f = |v: &[&str]| Filter::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(f(&["label=tier"]).unwrap().matches(&i));
        assert!(f(&["label=tier=web", "label=x"]).unwrap().matches(&i));
        assert!(!f(&["label=tier=db"]).unwrap().matches(&i));
        assert!(f(&["status=exited", "status=running"]).unwrap().matches(&i));
        assert!(!f(&["status=running", "name=zz"]).unwrap().matches(&i));
        assert!(f(&["name=eb", "id=0123"]).unwrap().matches(&i));
        for bad in ["status=up", "color=red", "label", "name="] {
            assert!(f(&[bad]).is_err(), "{bad}");
        }
    }
}
