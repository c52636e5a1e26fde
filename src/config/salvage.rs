//! Parsing the YAML into `raw` structs, salvaging what it can when the file does not fit.
//!
//! A strict parse stops at the first structural problem (unknown field, wrong type, missing
//! `address`). When that happens, each section (`global`, every target) is parsed on its own,
//! so one bad target does not hide the problems of the others. Judging values is left to
//! `convert`; this file only knows YAML and the shape of the raw structs.

use serde_saphyr::Spanned;

use super::raw::{self, RawConfig, RawGlobal, RawTarget};
use super::Problem;

/// Parses the file into raw structs. When it does not fit the schema, each section (`global`,
/// every target) is parsed on its own as well, so that one bad target does not hide the
/// problems of the others: the sections that parse are returned with every problem found.
pub(super) fn deserialize(text: &str) -> (RawConfig, Vec<Problem>) {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        let problem = Problem {
            line: 1,
            column: 1,
            field: String::new(),
            message:
                "the file is empty; expected a mapping with `targets` (and optionally `global`)"
                    .to_string(),
        };
        return (RawConfig::default(), vec![problem]);
    }
    let first = match parse_as::<RawConfig>(text, "") {
        Ok(raw) => return (raw, Vec::new()),
        Err(p) => p,
    };
    let Ok(loose) = parse_as::<raw::LooseConfig>(text, "") else {
        return (RawConfig::default(), vec![first]);
    };
    let mut raw = RawConfig {
        target_files: loose.target_files.clone().unwrap_or_default(),
        ..RawConfig::default()
    };
    let mut problems = vec![first];
    if let Some(g) = &loose.global {
        match parse_as::<RawGlobal>(&section(text, g), "global") {
            Ok(global) => raw.global = global,
            Err(p) => problems.push(p),
        }
    }
    for (i, t) in loose.targets.iter().flatten().enumerate() {
        match parse_as::<RawTarget>(&section(text, t), &format!("targets[{i}]")) {
            Ok(target) => raw.targets.push(target),
            Err(p) => {
                problems.push(p);
                raw.skipped.push(i);
            }
        }
    }
    problems.sort_by_key(|p| (p.line, p.column));
    problems.dedup_by_key(|p| (p.line, p.column));
    (raw, problems)
}

/// The YAML node at `at`, alone, padded with newlines and spaces so that its positions are the
/// same as in the whole file. A block node ends at the first line indented less than it.
fn section(text: &str, at: &Spanned<serde::de::IgnoredAny>) -> String {
    let line = at.referenced.line() as usize;
    let col = at.referenced.column() as usize;
    let mut lines = text.lines().skip(line.saturating_sub(1));
    let Some(first) = lines.next() else {
        return String::new();
    };
    let rest: String = first.chars().skip(col.saturating_sub(1)).collect();
    let mut out = "\n".repeat(line.saturating_sub(1));
    out.push_str(&" ".repeat(col.saturating_sub(1)));
    out.push_str(&rest);
    out.push('\n');
    for l in lines {
        let trimmed = l.trim_start();
        let indent = l.len() - trimmed.len();
        if !(trimmed.is_empty() || trimmed.starts_with('#') || indent + 1 >= col) {
            break;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// serde-saphyr parse with the field path (under `prefix`) of the first structural error.
pub(crate) fn parse_as<T: serde::de::DeserializeOwned>(
    text: &str,
    prefix: &str,
) -> Result<T, Problem> {
    let mut field = String::new();
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            field = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let message = e.to_string();
        // The location is rendered separately; drop serde-saphyr's own suffix and its advice
        // about parser options.
        let message = message
            .rfind(" at line ")
            .map_or(message.as_str(), |cut| &message[..cut]);
        let message = message
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(message)
            .to_string();
        // `Spanned` values add a `.value` step to serde's path; it is not a config field.
        let path = field.replace(".value", "");
        let path = path.trim_end_matches(".?").trim_matches('.');
        let field = match (prefix, path) {
            ("", p) => p.to_string(),
            (pre, "") => pre.to_string(),
            (pre, p) if p.starts_with('[') => format!("{pre}{p}"),
            (pre, p) => format!("{pre}.{p}"),
        };
        Problem {
            line,
            column,
            field,
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::problems_of;

    #[test]
    fn unknown_field_names_path_and_line() {
        assert_eq!(
            problems_of("targets:\n  - address: a:443\n    tmeout: 5s\n"),
            vec!["t.yml:3:5: targets[0].tmeout: unknown field `tmeout`, expected one of name, address, server_name, ca_file, client_cert_file, client_key_file, interval, timeout, ip_protocol, resolve, probe, starttls, http, scan_interval, scan, labels"]
        );
    }
}
