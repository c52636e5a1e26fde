//! A target's own labels: valid Prometheus names that do not clash with the labels the
//! exporter sets or that Prometheus and our conventions reserve.
//!
//! Where labels end up on series is `metrics`' business.

use std::collections::BTreeMap;

use super::raw::At;

use super::convert::{field, Converter};

/// Labels the exporter sets itself, or that Prometheus and our conventions reserve.
const RESERVED_LABELS: [&str; 27] = [
    "target",
    "ip",
    "status",
    "class",
    "depth",
    "reason",
    "phase",
    "version",
    "cipher",
    "group",
    "cn",
    "subject",
    "issuer",
    "serial",
    "fingerprint_sha256",
    "dns_names",
    "key",
    "signature_algorithm",
    "job",
    "instance",
    "type",
    "service",
    "env",
    "cluster",
    "le",
    "quantile",
    "revision",
];

impl Converter {
    /// The valid labels of target `i`, sorted by name; every other one is reported.
    pub(super) fn labels(
        &mut self,
        i: usize,
        raw: &BTreeMap<String, At<String>>,
    ) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(raw.len());
        for (name, value) in raw {
            let field = field(i, &format!("labels.{name}"));
            if !valid_label_name(name) {
                self.problem(value, &field, format!("{name:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"));
            } else if RESERVED_LABELS.contains(&name.as_str()) {
                self.problem(
                    value,
                    &field,
                    format!("label {name:?} is reserved (set by the exporter or Prometheus); choose another name"),
                );
            } else {
                out.push((name.clone(), value.value.clone()));
            }
        }
        out
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved for Prometheus).
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with("__")
}
