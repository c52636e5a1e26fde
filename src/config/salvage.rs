//! Parsing the YAML into `raw` structs, salvaging what it can when the file does not fit.
//!
//! A strict parse stops at the first structural problem (unknown field, wrong type, missing
//! `address`). When that happens, each section (`global`, every target) is parsed on its own,
//! so one bad target does not hide the problems of the others. A section is parsed alone, not
//! padded with the lines above it (which made salvage quadratic in the file's length), and its
//! positions are then moved to where it is in the file (`Shift`). Judging values is left to
//! `convert`; this file only knows YAML, the shape of the raw structs and the parse budget.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;

use super::raw::{
    self, At, RawAdhocRules, RawCertFile, RawConfig, RawGlobal, RawHttp, RawModule, RawTarget,
};
use super::Problem;

/// Parses the file into raw structs. When it does not fit the schema, each section (`global`,
/// every target) is parsed on its own as well, so that one bad target does not hide the
/// problems of the others: the sections that parse are returned with every problem found.
/// Linear in the size of the file: each section is parsed alone and moved to its place.
pub(super) fn deserialize(text: &str) -> (RawConfig, Vec<Problem>) {
    if is_blank(text) {
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
    let lines = LineStarts::of(text);
    if let Some(g) = &loose.global {
        match parse_section::<RawGlobal>(text, &lines, g, "global") {
            Ok(global) => raw.global = global,
            Err(p) => problems.push(p),
        }
    }
    for (name, m) in loose.modules.iter().flatten() {
        match parse_section::<RawModule>(text, &lines, m, &format!("modules.{name}")) {
            Ok(module) => {
                raw.modules.insert(name.clone(), module);
            }
            Err(p) => {
                problems.push(p);
                raw.skipped_modules.push(name.clone());
            }
        }
    }
    if let Some(a) = &loose.adhoc_probes {
        match parse_section::<RawAdhocRules>(text, &lines, a, "adhoc_probes") {
            Ok(rules) => raw.adhoc_probes = Some(rules),
            Err(p) => problems.push(p),
        }
    }
    if let Some(f) = &loose.files {
        match parse_section::<Vec<RawCertFile>>(text, &lines, f, "files") {
            Ok(files) => raw.files = files,
            Err(p) => problems.push(p),
        }
    }
    for (i, t) in loose.targets.iter().flatten().enumerate() {
        match parse_section::<RawTarget>(text, &lines, t, &format!("targets[{i}]")) {
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

/// Where a streaming parse hands what it reads (see `stream`).
pub(super) trait TargetSink {
    /// The sections targets depend on, once: before the first target, or at the end of a
    /// file without `targets`.
    fn begin(&mut self, global: RawGlobal, modules: BTreeMap<String, RawModule>);
    /// The target at position `i` of `targets`, as soon as it is read.
    fn target(&mut self, i: usize, target: RawTarget);
}

/// The sections of the file that `stream` returns rather than hands over.
#[derive(Default)]
pub(super) struct Rest {
    pub(super) target_files: Vec<At<String>>,
    pub(super) adhoc_probes: Option<RawAdhocRules>,
    pub(super) files: Vec<RawCertFile>,
}

/// Parses a valid file in one pass, handing `sink` the sections targets depend on and then
/// each target as it is read, so the raw targets are never all held at once. Accepts only what
/// the strict parse of `deserialize` accepts, with the same values (a top-level sequence, which
/// that parse reads as the fields in order, is left to it). `None` when the file does not fit,
/// or when it writes `global` or `modules` after `targets` (the targets handed over were
/// converted without them): what `sink` got must then be dropped and the file parsed with
/// `deserialize`.
pub(super) fn stream(text: &str, sink: &mut dyn TargetSink) -> Option<Rest> {
    if is_blank(text) {
        return None;
    }
    let options = serde_saphyr::options! { with_snippet: false, budget: Some(budget(text.len())) };
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde::de::DeserializeSeed::deserialize(TopLevel { sink }, de)
    })
    .ok()
    .flatten()
}

/// `RawConfig`'s fields (as its derived `Deserialize` names them).
#[derive(Clone, Copy, serde::Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    Global,
    Targets,
    TargetFiles,
    Modules,
    AdhocProbes,
    Files,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Global => "global",
            Key::Targets => "targets",
            Key::TargetFiles => "target_files",
            Key::Modules => "modules",
            Key::AdhocProbes => "adhoc_probes",
            Key::Files => "files",
        }
    }
}

const KEYS: &[&str] = &[
    "global",
    "targets",
    "target_files",
    "modules",
    "adhoc_probes",
    "files",
];

/// The whole file, as `RawConfig` would read it; `None` inside when it is out of order.
struct TopLevel<'s> {
    sink: &'s mut dyn TargetSink,
}

impl<'de> serde::de::DeserializeSeed<'de> for TopLevel<'_> {
    type Value = Option<Rest>;

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_struct("RawConfig", KEYS, self)
    }
}

impl<'de> serde::de::Visitor<'de> for TopLevel<'_> {
    type Value = Option<Rest>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("struct RawConfig")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        let mut global: Option<RawGlobal> = None;
        let mut modules: Option<BTreeMap<String, RawModule>> = None;
        let mut rest = Rest::default();
        let mut seen = 0u8;
        let mut begun = false;
        let mut in_order = true;
        while let Some(key) = map.next_key::<Key>()? {
            let bit = 1u8 << (key as u8);
            if seen & bit != 0 {
                return Err(A::Error::duplicate_field(key.name()));
            }
            seen |= bit;
            match key {
                Key::Global => {
                    global = Some(map.next_value()?);
                    in_order &= !begun;
                }
                Key::Modules => {
                    modules = Some(map.next_value()?);
                    in_order &= !begun;
                }
                Key::Targets => {
                    begun = true;
                    self.sink.begin(
                        global.take().unwrap_or_default(),
                        modules.take().unwrap_or_default(),
                    );
                    map.next_value_seed(Targets {
                        sink: &mut *self.sink,
                    })?;
                }
                Key::TargetFiles => rest.target_files = map.next_value()?,
                Key::AdhocProbes => rest.adhoc_probes = map.next_value()?,
                Key::Files => rest.files = map.next_value()?,
            }
        }
        if !begun {
            self.sink
                .begin(global.unwrap_or_default(), modules.unwrap_or_default());
        }
        Ok(in_order.then_some(rest))
    }
}

/// `targets`, as `Vec<RawTarget>` would read it, each element handed to the sink.
struct Targets<'s> {
    sink: &'s mut dyn TargetSink,
}

impl<'de> serde::de::DeserializeSeed<'de> for Targets<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Targets<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while let Some(target) = seq.next_element::<RawTarget>()? {
            self.sink.target(i, target);
            i += 1;
        }
        Ok(())
    }
}

/// Only blank lines and comments: `deserialize` says the file is empty.
fn is_blank(text: &str) -> bool {
    text.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

/// Where each line of a text starts, to find a section's first line without scanning the
/// lines before it.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn of(text: &str) -> Self {
        let breaks = text.match_indices('\n').map(|(at, _)| at + 1);
        LineStarts(std::iter::once(0).chain(breaks).collect())
    }

    /// The text from the start of 1-based line `line` on (empty past the end).
    fn from<'t>(&self, text: &'t str, line: u64) -> &'t str {
        let start = usize::try_from(line.saturating_sub(1))
            .ok()
            .and_then(|i| self.0.get(i).copied());
        start.and_then(|at| text.get(at..)).unwrap_or("")
    }
}

/// The section at `at` parsed on its own, with positions (of its values and of its problem)
/// as in the whole file.
fn parse_section<T: serde::de::DeserializeOwned + Shift>(
    text: &str,
    lines: &LineStarts,
    at: &At<IgnoredAny>,
    prefix: &str,
) -> Result<T, Problem> {
    let above = at.line.saturating_sub(1);
    let shifted = |p: Problem| Problem {
        line: p.line + above,
        ..p
    };
    let mut parsed =
        parse_as::<T>(&section(lines.from(text, at.line), at.column), prefix).map_err(shifted)?;
    parsed.shift(above);
    Ok(parsed)
}

/// The YAML node starting at column `col` of the first line of `text`, alone, padded with
/// spaces so that its columns are the same as in the whole file (its lines count from 1). A
/// block node ends at the first line indented less than it.
fn section(text: &str, col: u64) -> String {
    let col = usize::try_from(col).unwrap_or(usize::MAX);
    let mut lines = text.lines();
    let Some(first) = lines.next() else {
        return String::new();
    };
    let rest: String = first.chars().skip(col.saturating_sub(1)).collect();
    let mut out = " ".repeat(col.saturating_sub(1));
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

/// serde-saphyr's parse budget, grown with the text: its fixed defaults (250,000 nodes) stop a
/// file of some 30,000 targets at the first node past them, with one problem for the whole file.
/// Two events, nodes and scalar bytes per byte of text are more than YAML can spell without
/// aliases (at most about one and a half), so any file is parsed whole; aliases stay bounded by
/// serde-saphyr's alias limits, which do not grow.
fn budget(len: usize) -> serde_saphyr::Budget {
    let per_byte = len.saturating_mul(2);
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = budget.max_events.max(per_byte);
    budget.max_nodes = budget.max_nodes.max(per_byte);
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(per_byte);
    budget
}

/// Moving the positions of a section parsed on its own down to its place in the file.
trait Shift {
    fn shift(&mut self, lines: u64);
}

impl<T> Shift for At<T> {
    fn shift(&mut self, lines: u64) {
        self.line += lines;
    }
}

impl<T: Shift> Shift for Option<T> {
    fn shift(&mut self, lines: u64) {
        if let Some(v) = self {
            v.shift(lines);
        }
    }
}

impl<T: Shift> Shift for Vec<T> {
    fn shift(&mut self, lines: u64) {
        self.iter_mut().for_each(|v| v.shift(lines));
    }
}

impl<T: Shift> Shift for BTreeMap<String, T> {
    fn shift(&mut self, lines: u64) {
        self.values_mut().for_each(|v| v.shift(lines));
    }
}

// Destructured without `..`, so that a new field does not compile until it is shifted too.
impl Shift for RawGlobal {
    fn shift(&mut self, lines: u64) {
        let RawGlobal {
            interval,
            timeout,
            concurrency,
            ca_file,
            scan_interval,
            scan,
            proxy_url,
            revocation,
            revocation_max_crl_size,
            ct_log_list_file,
            aia_fetch,
        } = self;
        ct_log_list_file.shift(lines);
        aia_fetch.shift(lines);
        interval.shift(lines);
        timeout.shift(lines);
        concurrency.shift(lines);
        ca_file.shift(lines);
        scan_interval.shift(lines);
        scan.shift(lines);
        proxy_url.shift(lines);
        revocation.shift(lines);
        revocation_max_crl_size.shift(lines);
    }
}

impl Shift for RawHttp {
    fn shift(&mut self, lines: u64) {
        let RawHttp { path, host } = self;
        path.shift(lines);
        host.shift(lines);
    }
}

impl Shift for RawTarget {
    fn shift(&mut self, lines: u64) {
        let RawTarget {
            name,
            address,
            module,
            server_name,
            ca_file,
            client_cert_file,
            client_key_file,
            interval,
            timeout,
            ip_protocol,
            resolve,
            probe,
            starttls,
            http,
            scan_interval,
            scan,
            proxy_url,
            revocation,
            expect_cert_file,
            aia_fetch,
            labels,
        } = self;
        aia_fetch.shift(lines);
        name.shift(lines);
        address.shift(lines);
        module.shift(lines);
        server_name.shift(lines);
        ca_file.shift(lines);
        client_cert_file.shift(lines);
        client_key_file.shift(lines);
        interval.shift(lines);
        timeout.shift(lines);
        ip_protocol.shift(lines);
        resolve.shift(lines);
        probe.shift(lines);
        starttls.shift(lines);
        http.shift(lines);
        scan_interval.shift(lines);
        scan.shift(lines);
        proxy_url.shift(lines);
        revocation.shift(lines);
        expect_cert_file.shift(lines);
        labels.shift(lines);
    }
}

impl Shift for RawModule {
    fn shift(&mut self, lines: u64) {
        let RawModule {
            server_name,
            ca_file,
            client_cert_file,
            client_key_file,
            interval,
            timeout,
            ip_protocol,
            resolve,
            probe,
            starttls,
            http,
            scan_interval,
            scan,
            proxy_url,
            revocation,
            aia_fetch,
            output,
        } = self;
        proxy_url.shift(lines);
        revocation.shift(lines);
        aia_fetch.shift(lines);
        server_name.shift(lines);
        ca_file.shift(lines);
        client_cert_file.shift(lines);
        client_key_file.shift(lines);
        interval.shift(lines);
        timeout.shift(lines);
        ip_protocol.shift(lines);
        resolve.shift(lines);
        probe.shift(lines);
        starttls.shift(lines);
        http.shift(lines);
        scan_interval.shift(lines);
        scan.shift(lines);
        output.shift(lines);
    }
}

impl Shift for RawAdhocRules {
    fn shift(&mut self, lines: u64) {
        let RawAdhocRules {
            modules,
            hosts,
            cidrs,
            ports,
        } = self;
        modules.shift(lines);
        hosts.shift(lines);
        cidrs.shift(lines);
        ports.shift(lines);
    }
}

impl Shift for RawCertFile {
    fn shift(&mut self, lines: u64) {
        let RawCertFile {
            path,
            format,
            password_file,
            interval,
            labels,
        } = self;
        path.shift(lines);
        format.shift(lines);
        password_file.shift(lines);
        interval.shift(lines);
        labels.shift(lines);
    }
}

/// serde-saphyr parse with the field path (under `prefix`) of the first structural error.
pub(crate) fn parse_as<T: serde::de::DeserializeOwned>(
    text: &str,
    prefix: &str,
) -> Result<T, Problem> {
    let mut field = String::new();
    let options = serde_saphyr::options! { with_snippet: false, budget: Some(budget(text.len())) };
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
    use super::*;

    /// What a streaming parse handed over, in order.
    #[derive(Default)]
    struct Recorder(Vec<String>);

    impl TargetSink for Recorder {
        fn begin(&mut self, global: RawGlobal, modules: BTreeMap<String, RawModule>) {
            let interval = global.interval.map(|i| i.value);
            let modules: Vec<String> = modules.into_keys().collect();
            self.0
                .push(format!("begin interval={interval:?} modules={modules:?}"));
        }

        fn target(&mut self, i: usize, target: RawTarget) {
            self.0.push(format!(
                "target {i} {} line {}",
                target.address.value, target.address.line
            ));
        }
    }

    fn streamed(yaml: &str) -> (Option<Rest>, Vec<String>) {
        let mut sink = Recorder::default();
        let rest = stream(yaml, &mut sink);
        (rest, sink.0)
    }

    #[test]
    fn stream_hands_over_the_head_then_each_target_in_order() {
        let yaml = "global: {interval: 30s}\nmodules: {m: {}}\ntargets:\n  - address: a:443\n  - address: b:443\ntarget_files: [more.yml]\n";
        let (rest, seen) = streamed(yaml);
        assert_eq!(
            seen,
            [
                "begin interval=Some(\"30s\") modules=[\"m\"]",
                "target 0 a:443 line 4",
                "target 1 b:443 line 5",
            ]
        );
        let rest = rest.expect("a valid file in order");
        assert_eq!(rest.target_files.len(), 1);
    }

    #[test]
    fn stream_begins_at_the_end_of_a_file_without_targets() {
        let (rest, seen) = streamed("global: {interval: 30s}\n");
        assert!(rest.is_some());
        assert_eq!(seen, ["begin interval=Some(\"30s\") modules=[]"]);
    }

    #[test]
    fn stream_gives_up_on_global_or_modules_below_targets() {
        for yaml in [
            "targets:\n  - address: a:443\nglobal: {interval: 30s}\n",
            "targets: []\nmodules: {m: {}}\n",
        ] {
            assert!(streamed(yaml).0.is_none(), "{yaml}");
        }
    }

    #[test]
    fn stream_gives_up_on_what_the_strict_parse_refuses() {
        for yaml in [
            "",
            "# only a comment\n",
            "targets:\n  - address: a:443\n    tmeout: 5s\n",
            "targets:\n  - name: x\n",
            "global: {}\nglobal: {}\ntargets: []\n",
            "targets: []\nunknown: 1\n",
            "targets: {a: 1}\n",
            "- address: a:443\n",
            "targets: [] [\n",
        ] {
            assert!(streamed(yaml).0.is_none(), "{yaml:?}");
            assert!(
                parse_as::<RawConfig>(yaml, "").is_err() || is_blank(yaml),
                "{yaml:?}"
            );
        }
    }

    const EXPECTED_FIELDS: &str = "expected one of name, address, module, server_name, ca_file, client_cert_file, client_key_file, interval, timeout, ip_protocol, resolve, probe, starttls, http, scan_interval, scan, proxy_url, revocation, expect_cert_file, labels, aia_fetch";

    #[test]
    fn unknown_field_names_path_and_line() {
        assert_eq!(
            problems_of("targets:\n  - address: a:443\n    tmeout: 5s\n"),
            vec![format!(
                "t.yml:3:5: targets[0].tmeout: unknown field `tmeout`, {EXPECTED_FIELDS}"
            )]
        );
    }

    #[test]
    fn salvaged_targets_keep_their_positions_in_the_file() {
        let yaml = "targets:\n  - address: a:443\n    tmeout: 5s\n  - name: x\n    address: b:443\n    timeout: 2m\n  - name: x\n    address: c:443\n    labels: {job: y}\n";
        assert_eq!(
            problems_of(yaml),
            vec![
                format!("t.yml:3:5: targets[0].tmeout: unknown field `tmeout`, {EXPECTED_FIELDS}"),
                "t.yml:6:14: targets[1].timeout: must be shorter than interval (1m)".to_string(),
                "t.yml:7:11: targets[2].name: duplicate target name \"x\", first used by targets[1] on line 4".to_string(),
                "t.yml:9:19: targets[2].labels.job: label \"job\" is reserved (set by the exporter or Prometheus); choose another name".to_string(),
            ]
        );
    }

    #[test]
    fn every_problem_of_twenty_thousand_bad_targets_is_reported() {
        // Even targets do not fit the schema (salvaged section by section), odd ones break a
        // rule; with their labels the file has more nodes (300,000) than serde-saphyr's default
        // budget of 250,000.
        let n = 20_000;
        let mut yaml = String::from("targets:\n");
        for i in 0..n {
            let setting = if i % 2 == 0 {
                "tmeout: 5s"
            } else {
                "timeout: 90s"
            };
            yaml.push_str(&format!(
                "  - name: t{i}\n    address: h{i}.example:443\n    {setting}\n    labels: {{a: x, b: y, c: z}}\n"
            ));
        }
        let problems = problems_of(&yaml);
        assert_eq!(problems.len(), n);
        assert_eq!(
            problems.first(),
            Some(&format!(
                "t.yml:4:5: targets[0].tmeout: unknown field `tmeout`, {EXPECTED_FIELDS}"
            ))
        );
        assert_eq!(
            problems.last().map(String::as_str),
            Some("t.yml:80000:14: targets[19999].timeout: must be shorter than interval (1m)")
        );
        let unknown = problems
            .iter()
            .filter(|p| p.contains("unknown field"))
            .count();
        assert_eq!(unknown, n / 2);
    }
}
