//! Conversion of the raw structs into a `Config`: defaults applied, every rule checked, every
//! problem collected instead of stopping at the first.
//!
//! This file owns the `Converter` (its caches and the problem list), the global settings and
//! the order of a target's phases; the phases live beside it: `identity` (name, address,
//! server name), timing (here), `labels`, `probe_settings` (kind, HTTP, STARTTLS, scan) and
//! `tls_material` (trust anchors, client identity, PEM files). Target files are `target_files`';
//! modules (merged into a target before its phases) are `modules`', `adhoc_probes:` is
//! `adhoc_rules`'.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::raw::At;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use super::identity::Identity;
use super::modules::{Module, PreparedModules};
use super::probe_settings::ProbeSettings;
use super::raw::{RawConfig, RawGlobal, RawModule, RawTarget};
use super::salvage::{self, Rest, TargetSink};
use super::tls_material::{not_after, TlsMaterial};
use super::{
    duration, format_duration, Adhoc, Config, Files, FilesIdentity, Material, Output, Problem,
    Target, TargetFileCache, DEFAULT_CONCURRENCY, DEFAULT_INTERVAL, DEFAULT_SCAN_INTERVAL,
    DEFAULT_TIMEOUT,
};
use crate::revocation::Settings as RevocationSettings;
use crate::tls::ct::LogList;
use crate::tls::verifier::{self, Roots};

/// Target names taken so far: the position of the target that took each, and its line.
pub(super) type Names = HashMap<String, (usize, u64)>;

/// Builds a `Config` from raw structs, collecting problems instead of stopping at the first.
pub(super) struct Converter {
    /// Directory relative paths are resolved against (the config's, or a target file's).
    pub(super) base: PathBuf,
    pub(super) problems: Vec<Problem>,
    /// File contents by resolved path, each read once per load.
    pub(super) files: HashMap<PathBuf, Result<Arc<[u8]>, String>>,
    /// Trust anchors by `ca_file` path (`None`: webpki-roots), or the problem loading them.
    pub(super) roots: HashMap<Option<PathBuf>, Result<Arc<Roots>, String>>,
    /// One rustls config per client identity (none, or cert+key paths).
    pub(super) configs: HashMap<Option<(PathBuf, PathBuf)>, Arc<ClientConfig>>,
    /// Certificate Transparency log lists by path, with their digest, or the problem.
    pub(super) log_lists: HashMap<PathBuf, Result<LogListRead, String>>,
    /// The modules targets may name, as they merge them (see `modules`).
    pub(super) prepared: PreparedModules,
    /// Converting a target file's targets (whose positions are in that file, not the config).
    pub(super) in_target_file: bool,
    /// One record of TLS material per set of files targets were built from, which every such
    /// target shares (see `Files::identity`).
    pub(super) file_records: HashMap<FilesIdentity, Arc<Material>>,
}

/// A log list and the SHA-256 of its file.
pub(super) type LogListRead = (Arc<LogList>, [u8; 32]);

/// Settings a target inherits from `global`.
pub(super) struct Defaults {
    /// `None` when the global value did not parse (already reported).
    pub(super) interval: Option<Duration>,
    pub(super) timeout: Option<Duration>,
    pub(super) ca_file: Option<At<String>>,
    pub(super) scan_interval: Option<Duration>,
    pub(super) scan: bool,
    /// `global.proxy_url`, when valid.
    pub(super) proxy: Option<Arc<super::Proxy>>,
    pub(super) revocation: RevocationSettings,
    /// The global log list and the digest of its file.
    pub(super) ct_logs: Option<(Arc<LogList>, [u8; 32])>,
    pub(super) aia_fetch: bool,
}

/// A config being built: what its targets depend on, and the targets so far.
struct Build {
    defaults: Defaults,
    concurrency: u32,
    global_roots: Option<Arc<Roots>>,
    modules: BTreeMap<String, Arc<Module>>,
    names: Names,
    targets: Vec<Arc<Target>>,
}

/// The converter as a streaming parse's sink.
struct Streaming<'c> {
    conv: &'c mut Converter,
    /// Set by `begin`, which the parse calls before the first target.
    build: Option<Build>,
}

impl TargetSink for Streaming<'_> {
    fn begin(&mut self, global: RawGlobal, modules: BTreeMap<String, RawModule>) {
        self.build = Some(self.conv.begin(global, modules, &[]));
    }

    fn target(&mut self, i: usize, target: RawTarget) {
        if let Some(build) = self.build.as_mut() {
            self.conv.add(build, i, target);
        }
    }
}

/// The field path `targets[i].name`.
pub(super) fn field(i: usize, name: &str) -> String {
    format!("targets[{i}].{name}")
}

impl Converter {
    /// A converter resolving relative paths against `base`, starting with `problems` (those of
    /// the parse).
    pub(super) fn new(base: PathBuf, problems: Vec<Problem>) -> Self {
        Converter {
            base,
            problems,
            files: HashMap::new(),
            roots: HashMap::new(),
            configs: HashMap::new(),
            log_lists: HashMap::new(),
            prepared: PreparedModules::new(),
            in_target_file: false,
            file_records: HashMap::new(),
        }
    }

    /// The converter for a second conversion of the same load, starting with `problems`: what
    /// it read from files (contents, trust anchors, client configs, log lists, and the
    /// `Material` records built from them) is kept, since a load reads each file once; the
    /// targets and modules it converted are dropped.
    pub(super) fn restart(self, problems: Vec<Problem>) -> Self {
        Converter {
            problems,
            prepared: PreparedModules::new(),
            in_target_file: false,
            ..self
        }
    }

    /// Every problem found, in file order without repeats; none when the config is valid.
    pub(super) fn finish(mut self) -> Result<(), Vec<Problem>> {
        if self.problems.is_empty() {
            return Ok(());
        }
        self.problems.sort_by_key(|p| (p.line, p.column));
        self.problems.dedup();
        Err(self.problems)
    }

    /// The whole config: global settings, the targets of the file, then those of target files.
    pub(super) fn config(
        &mut self,
        raw: RawConfig,
        path: &Path,
        cache: &mut TargetFileCache,
    ) -> Config {
        let mut build = self.begin(raw.global, raw.modules, &raw.skipped_modules);
        // Positions in the file: targets that did not parse are absent from `raw.targets`.
        let skipped: HashSet<usize> = raw.skipped.iter().copied().collect();
        let positions = (0..).filter(|i| !skipped.contains(i));
        for (i, t) in positions.zip(raw.targets) {
            self.add(&mut build, i, t);
        }
        let rest = Rest {
            target_files: raw.target_files,
            adhoc_probes: raw.adhoc_probes,
            files: raw.files,
        };
        self.end(build, rest, path, cache)
    }

    /// A valid config converted as it is parsed: each target is converted as soon as it is
    /// read, so the raw targets (some 800 bytes each, most of a big file's parse) never exist
    /// all at once. `None` when the file has a problem or writes `global` or `modules` after
    /// `targets`: then `config` (with the parse that salvages) is the way, on a new converter.
    pub(super) fn stream(
        &mut self,
        text: &str,
        path: &Path,
        cache: &mut TargetFileCache,
    ) -> Option<Config> {
        let mut sink = Streaming {
            conv: self,
            build: None,
        };
        let rest = salvage::stream(text, &mut sink)?;
        let build = sink.build?;
        Some(self.end(build, rest, path, cache))
    }

    /// What targets depend on: the global settings and the modules.
    fn begin(
        &mut self,
        global: RawGlobal,
        modules: BTreeMap<String, RawModule>,
        skipped_modules: &[String],
    ) -> Build {
        let (defaults, concurrency, global_roots) = self.global(global);
        let modules = self.modules(modules, skipped_modules, &defaults);
        Build {
            defaults,
            concurrency,
            global_roots,
            modules,
            names: Names::new(),
            targets: Vec::new(),
        }
    }

    /// The target at position `i` of the file, when it is valid.
    fn add(&mut self, build: &mut Build, i: usize, t: RawTarget) {
        if let Some(target) = self.target(i, t, &build.defaults, &mut build.names) {
            build.targets.push(Arc::new(target));
        }
    }

    /// The sections after the targets (in the order they are converted, not written), then
    /// the config.
    fn end(
        &mut self,
        build: Build,
        rest: Rest,
        path: &Path,
        cache: &mut TargetFileCache,
    ) -> Config {
        let Build {
            defaults,
            concurrency,
            global_roots,
            modules,
            mut names,
            mut targets,
        } = build;
        let adhoc_rules = rest.adhoc_probes.map(|rules| self.adhoc_rules(rules));
        let cert_files = self.cert_files(rest.files, &defaults);
        let files = self.target_files(&rest.target_files, &defaults, &mut names, cache);
        targets.extend(files.targets);
        targets.shrink_to_fit();
        let adhoc = Adhoc {
            interval: defaults.interval.unwrap_or(DEFAULT_INTERVAL),
            timeout: defaults.timeout.unwrap_or(DEFAULT_TIMEOUT),
            material: Arc::new(Material {
                roots: global_roots.unwrap_or_else(|| Arc::new(Roots::webpki())),
                client_config: self
                    .configs
                    .entry(None)
                    .or_insert_with(|| verifier::client_config(None))
                    .clone(),
                client_cert_not_after: None,
                ct_logs: defaults.ct_logs.as_ref().map(|(l, _)| l.clone()),
                files: Files {
                    ca: None,
                    client_cert: None,
                    client_key: None,
                    ct_logs: defaults.ct_logs.as_ref().map(|(_, d)| *d),
                },
            }),
            proxy: defaults.proxy.clone(),
            aia_fetch: defaults.aia_fetch,
        };
        Config {
            path: path.to_path_buf(),
            concurrency: concurrency as usize,
            targets,
            adhoc,
            target_file_problems: files.problems,
            target_files: files.files,
            target_file_patterns: files.patterns,
            modules,
            adhoc_rules,
            cert_files,
        }
    }

    /// The `global` section: what targets inherit, the probe concurrency and the global trust
    /// anchors (`None` when its `ca_file` has a problem).
    fn global(&mut self, global: RawGlobal) -> (Defaults, u32, Option<Arc<Roots>>) {
        let (interval, timeout) = self.global_timing(&global);
        let concurrency = match &global.concurrency {
            Some(c) if c.value == 0 => {
                self.problem(c, "global.concurrency", "must be at least 1");
                1
            }
            Some(c) => c.value,
            None => DEFAULT_CONCURRENCY,
        };
        let roots = self.roots_for(global.ca_file.as_ref(), "global.ca_file");
        let scan_interval = self.duration(
            global.scan_interval.as_ref(),
            "global.scan_interval",
            DEFAULT_SCAN_INTERVAL,
        );
        let proxy = global
            .proxy_url
            .as_ref()
            .and_then(|span| self.proxy_url(span, "global.proxy_url"));
        let revocation = self.global_revocation(&global);
        let ct_logs = global
            .ct_log_list_file
            .as_ref()
            .and_then(|span| self.ct_log_list(span));
        let defaults = Defaults {
            proxy,
            interval,
            timeout,
            scan_interval,
            revocation,
            ct_logs,
            aia_fetch: global.aia_fetch.as_ref().is_some_and(|a| a.value),
            scan: global.scan.as_ref().is_none_or(|s| s.value),
            // Absolute, so targets of target files (whose paths are relative to their own
            // file) inherit the same file.
            ca_file: global.ca_file.map(|mut s| {
                let p = self.resolve(&s.value);
                s.value = std::path::absolute(&p)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned();
                s
            }),
        };
        (defaults, concurrency, roots)
    }

    /// The global interval and timeout (each `None` when invalid).
    fn global_timing(&mut self, global: &RawGlobal) -> (Option<Duration>, Option<Duration>) {
        let interval = self.duration(
            global.interval.as_ref(),
            "global.interval",
            DEFAULT_INTERVAL,
        );
        let timeout = self.duration(global.timeout.as_ref(), "global.timeout", DEFAULT_TIMEOUT);
        // Checked when either is written: a short global interval against the default timeout
        // is as wrong as a long timeout against the default interval.
        if let (Some(timeout), Some(interval)) = (timeout, interval) {
            if timeout >= interval {
                match (&global.timeout, &global.interval) {
                    (Some(t), _) => self.problem(
                        t,
                        "global.timeout",
                        format!(
                            "must be shorter than interval ({})",
                            format_duration(interval)
                        ),
                    ),
                    (None, Some(i)) => self.problem(
                        i,
                        "global.interval",
                        format!("must be longer than timeout ({})", format_duration(timeout)),
                    ),
                    (None, None) => {}
                }
            }
        }
        (interval, timeout)
    }

    /// One target, phase by phase; `None` when any phase found a problem (every phase runs, so
    /// all of the target's problems are reported).
    pub(super) fn target(
        &mut self,
        i: usize,
        t: RawTarget,
        defaults: &Defaults,
        names: &mut Names,
    ) -> Option<Target> {
        let before = self.problems.len();
        let (t, from_module) = self.with_module(i, t)?;
        let identity = self.identity(i, &t, names);
        let timing = self.timing(i, &t, defaults);
        let labels = self.labels(i, &t.labels);
        let probe = self.probe_settings(i, &t, defaults, identity.address.as_ref());
        let tls = self.tls_material(i, &t, defaults);
        self.tag_module_problems(before, from_module.as_ref());
        let expect_cert_file = self.expect_cert_file(i, &t);
        if self.problems.len() > before {
            return None;
        }
        let Identity {
            name,
            address,
            server_name,
        } = identity;
        let (host, port) = address?;
        let checked = Checked {
            name,
            address: t.address.value,
            host,
            port,
            server_name: server_name?,
            timing: timing?,
            labels,
            probe,
            tls: tls?,
            output: self.module_output(from_module.as_ref()),
            expect_cert_file,
            ct_logs: defaults.ct_logs.clone(),
            aia_fetch: t.aia_fetch.as_ref().map_or(defaults.aia_fetch, |a| a.value),
        };
        Some(checked.into_target(&mut self.file_records))
    }

    /// The interval and timeout of a target (its own, else the global ones); `None` when either
    /// is invalid. A timeout not shorter than the interval is reported where it was written.
    fn timing(
        &mut self,
        i: usize,
        t: &RawTarget,
        defaults: &Defaults,
    ) -> Option<(Duration, Duration)> {
        let interval = match &t.interval {
            Some(span) => self.duration(Some(span), &field(i, "interval"), DEFAULT_INTERVAL),
            None => defaults.interval,
        };
        let timeout = match &t.timeout {
            Some(span) => self.duration(Some(span), &field(i, "timeout"), DEFAULT_TIMEOUT),
            None => defaults.timeout,
        };
        // Compared only when both parsed: a bad duration is one problem, not two.
        let both = interval.zip(timeout);
        if let Some((interval, timeout)) = both.filter(|(i, t)| t >= i) {
            let msg = format!(
                "must be shorter than interval ({})",
                format_duration(interval)
            );
            match (&t.timeout, &t.interval) {
                (Some(span), _) => self.problem(span, &field(i, "timeout"), msg),
                (None, Some(span)) => self.problem(
                    span,
                    &field(i, "interval"),
                    format!("must be longer than timeout ({})", format_duration(timeout)),
                ),
                // Both inherited: reported on global already.
                (None, None) => {}
            }
        }
        both
    }

    /// Absolute path of a file named in the config (relative to the config or target file).
    pub(super) fn resolve(&self, file: &str) -> PathBuf {
        let p = self.base.join(file);
        std::path::absolute(&p).unwrap_or(p)
    }

    /// The duration written at `span`, `default` when absent, `None` (reported) when invalid.
    pub(super) fn duration(
        &mut self,
        span: Option<&At<String>>,
        field: &str,
        default: Duration,
    ) -> Option<Duration> {
        let Some(span) = span else {
            return Some(default);
        };
        match duration::parse(&span.value) {
            Ok(d) if d.is_zero() => {
                self.problem(span, field, "must be greater than 0");
                None
            }
            Ok(d) => Some(d),
            Err(m) => {
                self.problem(span, field, m);
                None
            }
        }
    }

    /// Records a problem at the position of `span`.
    pub(super) fn problem<T>(&mut self, span: &At<T>, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            line: span.line,
            column: span.column,
            field: field.to_string(),
            message: message.into(),
        });
    }
}

/// A target's settings once every phase passed.
struct Checked {
    name: String,
    address: String,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    timing: (Duration, Duration),
    labels: Vec<(String, String)>,
    probe: ProbeSettings,
    tls: TlsMaterial,
    output: Option<Output>,
    expect_cert_file: Option<PathBuf>,
    ct_logs: Option<(Arc<LogList>, [u8; 32])>,
    aia_fetch: bool,
}

impl Checked {
    /// The target, with its TLS material: the record in `records` of the same files, added
    /// when there is none yet (so each client certificate is parsed once per load).
    fn into_target(self, records: &mut HashMap<FilesIdentity, Arc<Material>>) -> Target {
        let (interval, timeout) = self.timing;
        let probe = self.probe;
        let tls = self.tls;
        let files = Files {
            ca: tls.ca,
            client_cert: tls.client_cert,
            client_key: tls.client_key,
            ct_logs: self.ct_logs.as_ref().map(|(_, d)| *d),
        };
        let material = records
            .entry(files.identity())
            .or_insert_with(|| {
                Arc::new(Material {
                    roots: tls.roots,
                    client_config: tls.client_config,
                    client_cert_not_after: files.client_cert.as_deref().and_then(not_after),
                    ct_logs: self.ct_logs.map(|(l, _)| l),
                    files,
                })
            })
            .clone();
        Target {
            expect_cert_file: self.expect_cert_file.map(PathBuf::into_boxed_path),
            name: self.name,
            address: self.address,
            host: self.host,
            port: self.port,
            server_name: self.server_name,
            interval,
            timeout,
            labels: self.labels,
            kind: probe.kind,
            ip_protocol: probe.ip_protocol,
            resolve_all: probe.resolve_all,
            starttls: probe.starttls,
            http: probe.http,
            scan_interval: probe.scan_interval,
            proxy: probe.proxy,
            revocation: probe.revocation,
            material,
            aia_fetch: self.aia_fetch,
            output: self.output,
        }
    }
}
