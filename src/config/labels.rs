//! A target's own labels: valid Prometheus names that do not clash with the labels the
//! exporter sets or that Prometheus and our conventions reserve, within bounds of size and
//! number (every series of the target carries them).
//!
//! Where labels end up on series is `metrics`' business.

use std::collections::BTreeMap;

use super::raw::At;

use super::convert::Converter;

/// Longest label name a target may set, in bytes.
pub(super) const MAX_LABEL_NAME_BYTES: usize = 128;
/// Longest label value a target may set, in bytes.
pub(super) const MAX_LABEL_VALUE_BYTES: usize = 1024;
/// Most labels one target may set.
pub(super) const MAX_LABELS: usize = 32;
/// How much of an overlong label name a problem quotes, in characters.
const QUOTED_NAME_CHARS: usize = 32;

/// Labels the exporter sets itself, or that Prometheus and our conventions reserve.
const RESERVED_LABELS: [&str; 32] = [
    "target",
    "ip",
    // Labels of the revocation and Certificate Transparency series.
    "method",
    "source",
    "log_id",
    "operator",
    "log",
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
        self.labels_of(&format!("targets[{i}]"), raw, &[])
    }

    /// The valid labels written under `owner` (`targets[3]`, `files[0]`), sorted by name;
    /// names in `reserved` are refused as well as the exporter's own.
    pub(super) fn labels_of(
        &mut self,
        owner: &str,
        raw: &BTreeMap<String, At<String>>,
        reserved: &[&str],
    ) -> Vec<(String, String)> {
        let field = |name: &str| format!("{owner}.{name}");
        let mut out = Vec::with_capacity(raw.len());
        for (name, value) in raw {
            if name.len() > MAX_LABEL_NAME_BYTES {
                let quoted: String = name.chars().take(QUOTED_NAME_CHARS).collect();
                let msg = format!(
                    "label name {quoted:?}… is {} bytes long; at most {MAX_LABEL_NAME_BYTES} bytes are allowed",
                    name.len()
                );
                self.problem(value, &field("labels"), msg);
                continue;
            }
            let field = field(&format!("labels.{name}"));
            if !valid_label_name(name) {
                self.problem(value, &field, format!("{name:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"));
            } else if RESERVED_LABELS.contains(&name.as_str()) || reserved.contains(&name.as_str())
            {
                self.problem(
                    value,
                    &field,
                    format!("label {name:?} is reserved (set by the exporter or Prometheus); choose another name"),
                );
            } else if value.value.len() > MAX_LABEL_VALUE_BYTES {
                let msg = format!(
                    "label value is {} bytes long; at most {MAX_LABEL_VALUE_BYTES} bytes are allowed",
                    value.value.len()
                );
                self.problem(value, &field, msg);
            } else {
                out.push((name.clone(), value.value.clone()));
            }
        }
        if raw.len() > MAX_LABELS {
            // Reported at the first label past the bound, in file order.
            let mut written: Vec<&At<String>> = raw.values().collect();
            written.sort_by_key(|v| (v.line, v.column));
            if let Some(first_extra) = written.get(MAX_LABELS) {
                let per = if owner.starts_with("files") {
                    "file entry"
                } else {
                    "target"
                };
                let msg = format!(
                    "{} labels; at most {MAX_LABELS} are allowed per {per}",
                    raw.len()
                );
                self.problem(first_extra, &field("labels"), msg);
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

#[cfg(test)]
mod tests {
    use super::super::problems_of;
    use super::*;

    /// A target with `labels`, a flow mapping on line 3.
    fn with_labels(labels: &str) -> String {
        format!("targets:\n  - address: a.example:443\n    labels: {{{labels}}}\n")
    }

    #[test]
    fn label_name_at_the_bound_is_accepted_and_one_byte_more_is_not() {
        let name = "n".repeat(MAX_LABEL_NAME_BYTES);
        assert_eq!(
            problems_of(&with_labels(&format!("{name}: x"))),
            Vec::<String>::new()
        );
        let long = "n".repeat(MAX_LABEL_NAME_BYTES + 1);
        let col = 14 + long.len() + 2;
        assert_eq!(
            problems_of(&with_labels(&format!("{long}: x"))),
            vec![format!(
                "t.yml:3:{col}: targets[0].labels: label name \"{}\"… is 129 bytes long; at most 128 bytes are allowed",
                "n".repeat(QUOTED_NAME_CHARS)
            )]
        );
    }

    #[test]
    fn label_value_at_the_bound_is_accepted_and_one_byte_more_is_not() {
        let value = "v".repeat(MAX_LABEL_VALUE_BYTES);
        assert_eq!(
            problems_of(&with_labels(&format!("team: {value}"))),
            Vec::<String>::new()
        );
        let long = "v".repeat(MAX_LABEL_VALUE_BYTES + 1);
        assert_eq!(
            problems_of(&with_labels(&format!("team: {long}"))),
            vec!["t.yml:3:20: targets[0].labels.team: label value is 1025 bytes long; at most 1024 bytes are allowed"]
        );
    }

    #[test]
    fn labels_at_the_bound_are_accepted_and_one_more_is_not() {
        let labels = |n: usize| {
            (0..n)
                .map(|k| format!("l{k:02}: x"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert_eq!(
            problems_of(&with_labels(&labels(MAX_LABELS))),
            Vec::<String>::new()
        );
        // The 33rd label, `l32: x`, is where the bound is crossed: 14 + 32 * 8 + 5.
        assert_eq!(
            problems_of(&with_labels(&labels(MAX_LABELS + 1))),
            vec!["t.yml:3:275: targets[0].labels: 33 labels; at most 32 are allowed per target"]
        );
    }

    #[test]
    fn overlong_names_are_quoted_by_characters_not_bytes() {
        let long = "é".repeat(MAX_LABEL_NAME_BYTES);
        let problems = problems_of(&with_labels(&format!("{long}: x")));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains(&format!(
                "\"{}\"… is 256 bytes long",
                "é".repeat(QUOTED_NAME_CHARS)
            )),
            "{problems:?}"
        );
    }
}
