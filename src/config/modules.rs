//! Modules: named probe profiles (`modules:`) holding any per-target setting, merged under a
//! target's own fields (`module: NAME`), and the form `/probe?module=` uses them in.
//!
//! This file owns the merge (one function, field by field, so a module-derived value keeps the
//! position it is written at), the checking of each module on its own (once, as a target of a
//! placeholder address over the global settings, its problems named `modules.NAME.field`) and
//! the `output:` setting. Converting the merged target is `convert`'s; building a `/probe`
//! target from a module is `adhoc.rs`'.
//!
//! Adding a per-target setting to modules: add the field to `RawModule` (raw.rs) beside the
//! one in `RawTarget`, one `fill` line in `merge` below, and one line in `salvage`'s
//! `Shift for RawModule`; `merge` and `Shift` destructure exhaustively, so the build fails
//! until the field is handled, and `module_fields_are_the_target_fields` fails until the two
//! structs list the same fields.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::convert::{field, Converter, Defaults, Names};
use super::raw::{At, RawHttp, RawModule, RawTarget};
use super::Target;

/// The index the targets built from modules alone are converted under; their problems are
/// renamed from `targets[MODULE_SLOT].` to `modules.NAME.`.
const MODULE_SLOT: usize = usize::MAX;

/// The placeholder address a module is checked with: its settings need a host for defaults
/// (server name, HTTP `Host`); `/probe` replaces it with the endpoint's.
const PLACEHOLDER: &str = "module.invalid:443";

/// A `/probe` output format, as a module's `output:` names it (rendered by `metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    TlsExporter,
    Blackbox,
    SslExporter,
}

impl Output {
    pub const ALL: [Output; 3] = [Output::TlsExporter, Output::Blackbox, Output::SslExporter];

    /// The `output:` (and `&format=`) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Output::TlsExporter => "tls_exporter",
            Output::Blackbox => "blackbox",
            Output::SslExporter => "ssl_exporter",
        }
    }
}

/// A valid module as `/probe?module=` uses it: its settings over the global ones, built once
/// per config load (trust anchors and client identity included).
#[derive(Debug)]
pub struct Module {
    pub name: String,
    /// The `/probe` format when the request names none.
    pub output: Option<Output>,
    /// A target of a placeholder address with the module's settings; `adhoc.rs` puts the
    /// endpoint in.
    pub(super) template: Target,
    /// `server_name` as the module writes it (else the endpoint's host is sent).
    pub(super) server_name: Option<String>,
    /// `http.host` as the module writes it (else derived from the endpoint).
    pub(super) http_host: Option<String>,
}

/// A module as targets merge it: its settings with file paths made absolute (a target file's
/// paths are relative to that file, the module's to the config file).
pub(super) struct Prepared {
    raw: RawModule,
    output: Option<Output>,
}

/// The modules of a load by name; `None` for one with problems (reported once, on the module;
/// the targets naming it are left out without more reports).
pub(super) type PreparedModules = BTreeMap<String, Option<Prepared>>;

/// Where a target's module-derived values are written, to tag the problems found at them.
pub(super) struct FromModule {
    name: String,
    positions: Vec<(u64, u64)>,
}

impl Converter {
    /// Checks every module on its own and keeps it for the targets: the valid ones, built for
    /// `/probe`. `skipped` names modules that did not parse (already reported).
    pub(super) fn modules(
        &mut self,
        raw: BTreeMap<String, RawModule>,
        skipped: &[String],
        defaults: &Defaults,
    ) -> BTreeMap<String, Arc<Module>> {
        let mut built = BTreeMap::new();
        for name in skipped {
            self.prepared.insert(name.clone(), None);
        }
        for (name, m) in raw {
            let before = self.problems.len();
            let output = m.output.as_ref().and_then(|span| {
                let found = Output::ALL.into_iter().find(|o| o.as_str() == span.value);
                if found.is_none() {
                    let names: Vec<&str> = Output::ALL.iter().map(|o| o.as_str()).collect();
                    let msg = format!("{:?}: expected one of {}", span.value, names.join(", "));
                    self.problem(span, &format!("modules.{name}.output"), msg);
                }
                found
            });
            let mut alone = RawTarget {
                name: None,
                address: At {
                    value: PLACEHOLDER.to_string(),
                    line: 0,
                    column: 0,
                },
                module: None,
                server_name: None,
                ca_file: None,
                client_cert_file: None,
                client_key_file: None,
                interval: None,
                timeout: None,
                ip_protocol: None,
                resolve: None,
                probe: None,
                starttls: None,
                http: None,
                scan_interval: None,
                scan: None,
                proxy_url: None,
                revocation: None,
                expect_cert_file: None,
                aia_fetch: None,
                labels: BTreeMap::new(),
            };
            merge(&m, &mut alone, None);
            let template = self.target(MODULE_SLOT, alone, defaults, &mut Names::new());
            let prefix = field(MODULE_SLOT, "");
            for p in self.problems.iter_mut().skip(before) {
                if let Some(rest) = p.field.strip_prefix(&prefix) {
                    p.field = format!("modules.{name}.{rest}");
                }
            }
            let (Some(template), true) = (template, self.problems.len() == before) else {
                self.prepared.insert(name, None);
                continue;
            };
            let module = Module {
                name: name.clone(),
                output,
                server_name: m.server_name.as_ref().map(|s| s.value.clone()),
                http_host: m
                    .http
                    .as_ref()
                    .and_then(|h| h.host.as_ref())
                    .map(|h| h.value.clone()),
                template,
            };
            built.insert(name.clone(), Arc::new(module));
            let raw = self.absolute_paths(m);
            self.prepared.insert(name, Some(Prepared { raw, output }));
        }
        built
    }

    /// Target `i` with its module's settings under its own, and where those are written; `None`
    /// when its module is unknown (reported) or has problems (reported on the module).
    pub(super) fn with_module(
        &mut self,
        i: usize,
        mut t: RawTarget,
    ) -> Option<(RawTarget, Option<FromModule>)> {
        let Some(span) = t.module.clone() else {
            return Some((t, None));
        };
        let prepared = match self.prepared.get(&span.value) {
            Some(Some(p)) => p,
            Some(None) => return None,
            None => {
                let msg = if self.prepared.is_empty() {
                    format!(
                        "unknown module {:?} (the config defines no modules)",
                        span.value
                    )
                } else {
                    let names: Vec<&str> = self.prepared.keys().map(String::as_str).collect();
                    format!(
                        "unknown module {:?}; expected one of {}",
                        span.value,
                        names.join(", ")
                    )
                };
                self.problem(&span, &field(i, "module"), msg);
                return None;
            }
        };
        // In a target file the module's lines are in another file: its values are reported at
        // the target's `module:` instead.
        let relocate = self.in_target_file.then_some((span.line, span.column));
        let positions = merge(&prepared.raw, &mut t, relocate);
        Some((
            t,
            Some(FromModule {
                name: span.value,
                positions,
            }),
        ))
    }

    /// Says which module set the values the problems since `before` are about.
    pub(super) fn tag_module_problems(&mut self, before: usize, from: Option<&FromModule>) {
        let Some(from) = from else { return };
        for p in self.problems.iter_mut().skip(before) {
            if from.positions.contains(&(p.line, p.column)) {
                p.message
                    .push_str(&format!(" (from module {:?})", from.name));
            }
        }
    }

    /// The `/probe` output of target settings merged from module `name`.
    pub(super) fn module_output(&self, from: Option<&FromModule>) -> Option<Output> {
        let name = &from?.name;
        self.prepared.get(name)?.as_ref()?.output
    }

    /// `m` with its file paths resolved against the config file's directory.
    fn absolute_paths(&self, mut m: RawModule) -> RawModule {
        for file in [
            &mut m.ca_file,
            &mut m.client_cert_file,
            &mut m.client_key_file,
        ]
        .into_iter()
        .flatten()
        {
            file.value = self.resolve(&file.value).to_string_lossy().into_owned();
        }
        m
    }
}

/// Fills every setting `t` leaves out with the module's (`http` field by field), at the module's
/// positions or at `relocate`; returns the positions of the values taken.
fn merge(m: &RawModule, t: &mut RawTarget, relocate: Option<(u64, u64)>) -> Vec<(u64, u64)> {
    // Exhaustive on both sides (no `..`): a new field of either struct does not compile until
    // it is merged here (or, for identity fields, named as not a module's).
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
        output: _,
    } = m;
    let RawTarget {
        name: _,
        address: _,
        module: _,
        labels: _,
        server_name: own_server_name,
        ca_file: own_ca_file,
        client_cert_file: own_client_cert_file,
        client_key_file: own_client_key_file,
        interval: own_interval,
        timeout: own_timeout,
        ip_protocol: own_ip_protocol,
        resolve: own_resolve,
        probe: own_probe,
        starttls: own_starttls,
        http: own_http,
        scan_interval: own_scan_interval,
        scan: own_scan,
        proxy_url: own_proxy_url,
        revocation: own_revocation,
        // The certificate this one target should serve: not a profile's.
        expect_cert_file: _,
        aia_fetch: own_aia_fetch,
    } = t;
    let mut taken = Vec::new();
    let mut f = Filler {
        relocate,
        taken: &mut taken,
    };
    f.fill(own_server_name, server_name);
    f.fill(own_ca_file, ca_file);
    f.fill(own_client_cert_file, client_cert_file);
    f.fill(own_client_key_file, client_key_file);
    f.fill(own_interval, interval);
    f.fill(own_timeout, timeout);
    f.fill(own_ip_protocol, ip_protocol);
    f.fill(own_resolve, resolve);
    f.fill(own_probe, probe);
    f.fill(own_starttls, starttls);
    f.fill(own_scan_interval, scan_interval);
    f.fill(own_scan, scan);
    f.fill(own_proxy_url, proxy_url);
    f.fill(own_revocation, revocation);
    f.fill(own_aia_fetch, aia_fetch);
    if let Some(module_http) = http {
        let RawHttp { path, host } = module_http;
        let own = own_http.get_or_insert_with(RawHttp::default);
        f.fill(&mut own.path, path);
        f.fill(&mut own.host, host);
    }
    taken
}

/// Copies module values into unset target fields, recording where they are written.
struct Filler<'a> {
    relocate: Option<(u64, u64)>,
    taken: &'a mut Vec<(u64, u64)>,
}

impl Filler<'_> {
    fn fill<T: Clone>(&mut self, own: &mut Option<At<T>>, module: &Option<At<T>>) {
        let (None, Some(value)) = (&own, module) else {
            return;
        };
        let mut value = value.clone();
        if let Some((line, column)) = self.relocate {
            (value.line, value.column) = (line, column);
        }
        self.taken.push((value.line, value.column));
        *own = Some(value);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::super::{parse, problems_of, IpProtocol, StartTls};
    use super::*;

    fn config(yaml: &str) -> super::super::Config {
        parse(yaml, Path::new("t.yml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn targets_take_module_settings_under_their_own() {
        let c = config(
            "global: {interval: 2m}\nmodules:\n  mail:\n    starttls: smtp\n    timeout: 7s\n    ip_protocol: ip6\n    interval: 90s\ntargets:\n  - {address: \"mx.example:25\", module: mail}\n  - {address: \"mx2.example:25\", module: mail, timeout: 3s}\n  - {address: \"web.example:443\"}\n",
        );
        let [a, b, plain] = c.targets.as_slice() else {
            panic!("three targets");
        };
        assert_eq!(a.starttls, Some(StartTls::Smtp));
        assert_eq!(a.ip_protocol, IpProtocol::Ip6);
        assert_eq!(
            (a.interval, a.timeout),
            (Duration::from_secs(90), Duration::from_secs(7))
        );
        assert_eq!(
            b.timeout,
            Duration::from_secs(3),
            "the target's own field wins"
        );
        assert_eq!(b.starttls, Some(StartTls::Smtp));
        assert_eq!(plain.starttls, None);
        assert_eq!(
            plain.interval,
            Duration::from_secs(120),
            "global stays the default"
        );
    }

    #[test]
    fn http_settings_merge_field_by_field() {
        let c = config(
            "modules:\n  web:\n    http: {path: /health, host: h.example}\ntargets:\n  - {address: \"a.example:443\", module: web, http: {path: /other}}\n",
        );
        let http = c.targets[0].http.as_ref().expect("http check");
        assert_eq!(
            (http.host.as_str(), http.path.as_str()),
            ("h.example", "/other")
        );
    }

    #[test]
    fn unknown_module_is_reported_at_the_target() {
        assert_eq!(
            problems_of(
                "modules:\n  web: {timeout: 5s}\n  mail: {starttls: smtp}\ntargets:\n  - address: a:443\n    module: wbe\n"
            ),
            vec!["t.yml:6:13: targets[0].module: unknown module \"wbe\"; expected one of mail, web"]
        );
        assert_eq!(
            problems_of("targets:\n  - {address: \"a:443\", module: web}\n"),
            vec!["t.yml:2:32: targets[0].module: unknown module \"web\" (the config defines no modules)"]
        );
    }

    #[test]
    fn module_problems_are_reported_once_at_the_module() {
        // Two targets name the broken module: one report, none for the targets.
        assert_eq!(
            problems_of(
                "modules:\n  web:\n    timeout: 5x\n    starttls: smtpp\n    output: json\ntargets:\n  - {address: \"a:443\", module: web}\n  - {address: \"b:443\", module: web}\n"
            ),
            vec![
                "t.yml:3:14: modules.web.timeout: invalid duration \"5x\" (use e.g. 30s, 5m, 1h30m, 500ms)",
                "t.yml:4:15: modules.web.starttls: \"smtpp\": expected one of smtp, imap, pop3, ftp, postgres, ldap, xmpp, mysql, nntp, sieve",
                "t.yml:5:13: modules.web.output: \"json\": expected one of tls_exporter, blackbox, ssl_exporter",
            ]
        );
    }

    #[test]
    fn module_field_that_does_not_apply_is_reported() {
        assert_eq!(
            problems_of(
                "modules:\n  redirect:\n    probe: http_redirect\n    starttls: smtp\ntargets: []\n"
            ),
            vec!["t.yml:4:15: modules.redirect.starttls: does not apply to probe: http_redirect"]
        );
        // Applying only in combination with a target: reported at the module's line, tagged.
        assert_eq!(
            problems_of(
                "modules:\n  mail: {starttls: smtp}\ntargets:\n  - {address: \"a:80\", module: mail, probe: http_redirect}\n"
            ),
            vec!["t.yml:2:20: targets[0].starttls: does not apply to probe: http_redirect (from module \"mail\")"]
        );
    }

    #[test]
    fn unknown_module_field_names_path_and_line() {
        let problems = problems_of(
            "modules:\n  web:\n    timeout: 5s\n    tmeout: 5s\ntargets:\n  - {address: \"a:443\", module: web}\n",
        );
        let first = problems.first().expect("a problem");
        assert!(
            first.starts_with("t.yml:4:5: modules.web.tmeout: unknown field `tmeout`, expected one of server_name, "),
            "{problems:?}"
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn module_fields_are_the_target_fields() {
        // The lists serde names for an unknown field: a module has every target field but the
        // identity ones (`expect_cert_file` is one: each target serves its own certificate),
        // and `output`.
        let listed = |yaml: &str| -> Vec<String> {
            let problems = problems_of(yaml);
            let line = problems.first().cloned().unwrap_or_default();
            let list = line.split("expected one of ").nth(1).unwrap_or_default();
            list.split(", ").map(str::to_string).collect()
        };
        let mut target = listed("targets:\n  - {address: \"a:443\", nope: 1}\n");
        target.retain(|f| {
            !["name", "address", "module", "labels", "expect_cert_file"].contains(&f.as_str())
        });
        target.push("output".to_string());
        let module = listed("modules:\n  m: {nope: 1}\n");
        assert_eq!(module, target);
    }

    #[test]
    fn changed_module_changes_only_its_targets() {
        let load = |timeout: &str| {
            config(&format!(
                "modules:\n  m: {{timeout: {timeout}}}\ntargets:\n  - {{address: \"a:443\", module: m}}\n  - {{address: \"b:443\"}}\n"
            ))
        };
        let (old, new, same) = (load("5s"), load("6s"), load("5s"));
        assert!(!old.targets[0].same_as(&new.targets[0]));
        assert!(old.targets[1].same_as(&new.targets[1]));
        assert!(old.targets[0].same_as(&same.targets[0]));
    }

    #[test]
    fn changing_only_the_output_leaves_targets_unchanged() {
        let load = |output: &str| {
            config(&format!(
                "modules:\n  m: {{output: {output}}}\ntargets:\n  - {{address: \"a:443\", module: m}}\n"
            ))
        };
        let (old, new) = (load("blackbox"), load("ssl_exporter"));
        assert!(old.targets[0].same_as(&new.targets[0]));
        assert_eq!(new.targets[0].output, Some(Output::SslExporter));
    }

    #[test]
    fn target_file_problems_from_a_module_point_at_the_targets_module_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            "modules:\n  mail: {starttls: smtp}\ntarget_files: [t.yml]\n",
        )
        .expect("write config");
        let file = dir.path().join("t.yml");
        std::fs::write(
            &file,
            "- address: a.example:80\n  probe: http_redirect\n  module: mail\n",
        )
        .expect("write target file");
        let c = super::super::load(&config).expect("target files do not fail the config");
        let [problem] = c.target_file_problems.as_slice() else {
            panic!("one problem: {:?}", c.target_file_problems);
        };
        assert_eq!(
            problem.to_string(),
            format!(
                "{}:3:11: targets[0].starttls: does not apply to probe: http_redirect (from module \"mail\") (skipping it)",
                file.display()
            )
        );
    }

    #[test]
    fn modules_are_built_for_probe_with_their_output() {
        let c =
            config("modules:\n  bb: {output: blackbox, timeout: 4s}\n  plain: {}\ntargets: []\n");
        let bb = c.module("bb").expect("module bb");
        assert_eq!(bb.output, Some(Output::Blackbox));
        assert_eq!(bb.template.timeout, Duration::from_secs(4));
        assert_eq!(c.module("plain").and_then(|m| m.output), None);
        assert!(c.module("nope").is_none());
        assert_eq!(c.module_names(), ["bb", "plain"]);
    }

    #[test]
    fn broken_module_section_does_not_hide_target_problems() {
        // The strict parse fails on the module; the targets are still checked, and the target
        // naming the broken module is not reported again.
        assert_eq!(
            problems_of(
                "modules:\n  m: {tmeout: 5s}\ntargets:\n  - {address: \"a:443\", module: m}\n  - {address: nope}\n"
            ),
            vec![
                "t.yml:2:7: modules.m.tmeout: unknown field `tmeout`, expected one of server_name, ca_file, client_cert_file, client_key_file, interval, timeout, ip_protocol, resolve, probe, starttls, http, scan_interval, scan, proxy_url, revocation, aia_fetch, output".to_string(),
                "t.yml:5:15: targets[1].address: \"nope\": expected host:port".to_string(),
            ]
        );
    }
}
