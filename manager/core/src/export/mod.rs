//! A farm's path to a cluster: `boxctl farm export` writes a farm (TOML or
//! compose) as a compose file for `docker stack deploy` ([`compose`]) or as
//! Kubernetes manifests, a Deployment and a Service per service and the
//! `boxrun` RuntimeClass ([`kube`]).

pub mod compose;
pub mod kube;

use serde_yaml_ng::{Mapping, Value};

use crate::error::{Error, Result};

/// A YAML mapping from `(key, value)` pairs, in order.
pub(crate) fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Value::from(k), v);
    }
    Value::Mapping(m)
}

/// Insert `key: value` into mapping `m` (which it is, by construction).
pub(crate) fn put(m: &mut Value, key: &str, value: Value) {
    if let Value::Mapping(m) = m {
        m.insert(Value::from(key), value);
    }
}

/// A list of strings.
pub(crate) fn strings(items: &[String]) -> Value {
    Value::Sequence(items.iter().map(|s| Value::from(s.as_str())).collect())
}

/// One YAML document's text.
pub(crate) fn to_yaml(v: &Value) -> Result<String> {
    serde_yaml_ng::to_string(v).map_err(yaml_err)
}

/// A YAML writer's error as the library's.
pub(crate) fn yaml_err(e: serde_yaml_ng::Error) -> Error {
    Error::Invalid(format!("cannot write YAML: {e}"))
}
