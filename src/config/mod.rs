//! The validated configuration: every default applied, every file loaded, every rule checked.
//!
//! `load` parses the YAML into `raw` structs, then `convert` turns them into `Config`, collecting
//! every problem of the file with its line, column and field path. Nothing downstream re-checks.
//! TLS objects (trust anchors, client keys, rustls configs) are built here, once per config.

mod adhoc;
mod duration;
pub mod endpoint;
mod error;
mod raw;
mod starttls;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_saphyr::Spanned;

pub(crate) use duration::format as format_duration;
pub use duration::parse as parse_duration;
pub(crate) use error::render as render_problems;
pub use error::{ConfigError, Problem};
use raw::{RawConfig, RawGlobal, RawTarget};
pub use starttls::StartTls;

use crate::tls::verifier::{self, Roots};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONCURRENCY: u32 = 64;
const DEFAULT_SCAN_INTERVAL: Duration = Duration::from_secs(6 * 3600);

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

/// A loaded, validated configuration.
#[derive(Debug)]
pub struct Config {
    pub path: PathBuf,
    /// Probes in flight at most, across all targets.
    pub concurrency: usize,
    /// In file order; names are unique.
    pub targets: Vec<Arc<Target>>,
    /// Global settings, for ad-hoc probes of endpoints that are not configured.
    adhoc: Adhoc,
    /// Problems of target files, one line each (`file:line:col: field: message`). Such a file
    /// is skipped, or its last good content used; the rest of the config applies.
    pub target_file_problems: Vec<String>,
    /// Target files read, for the watcher.
    pub target_files: Vec<PathBuf>,
    /// The `target_files` glob patterns, resolved against the config file's directory.
    pub target_file_patterns: Vec<String>,
}

/// The last good content of each target file, kept across reloads so a broken edit of one file
/// does not drop its targets.
pub type TargetFileCache = HashMap<PathBuf, String>;

/// What an ad-hoc probe (`/probe` of an unconfigured endpoint) inherits: the global settings.
#[derive(Debug, Clone)]
struct Adhoc {
    interval: Duration,
    timeout: Duration,
    roots: Arc<Roots>,
    client_config: Arc<ClientConfig>,
}

impl Config {
    /// The configured target probing `address` (and `server_name`, when given), or named so.
    pub fn find(&self, address: &str, server_name: Option<&str>) -> Option<Arc<Target>> {
        self.targets
            .iter()
            .find(|t| {
                (t.address == address || t.name == address)
                    && server_name.is_none_or(|s| t.server_name.to_str() == s)
            })
            .cloned()
    }

    /// A target for an endpoint that is not configured (`host:port` or a URL, see
    /// `endpoint`), with the global settings.
    pub fn adhoc_target(&self, address: &str, server_name: Option<&str>) -> Result<Target, String> {
        self.adhoc_endpoint(address, &endpoint::parse(address)?, server_name)
    }
}

/// Which address family a target's name is connected over first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpProtocol {
    /// Resolver order.
    Any,
    /// IPv4 addresses first, IPv6 as fallback.
    Ip4,
    /// IPv6 addresses first, IPv4 as fallback.
    Ip6,
}

/// How a target is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// TCP connect (a STARTTLS upgrade where configured) and a full TLS handshake.
    Tls,
    /// Plain HTTP GET on the port-80 side, checking for a redirect to `https://`.
    HttpRedirect,
}

/// The HTTP request a target makes: over the TLS session (HSTS) or for the redirect check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// `Host` header value.
    pub host: String,
    /// Request target, starting with `/`.
    pub path: String,
}

/// One endpoint, with everything a probe needs already built.
#[derive(Debug)]
pub struct Target {
    pub name: String,
    /// As written in the config (`host:port`).
    pub address: String,
    /// Host name or IP literal (without brackets).
    pub host: String,
    pub port: u16,
    pub server_name: ServerName<'static>,
    pub interval: Duration,
    pub timeout: Duration,
    /// User labels, sorted by name; valid and not clashing with ours.
    pub labels: Vec<(String, String)>,
    pub kind: ProbeKind,
    pub ip_protocol: IpProtocol,
    /// Probe every address the name resolves to (series get an `ip` label).
    pub resolve_all: bool,
    /// Upgrade the connection with this protocol's STARTTLS before the handshake.
    pub starttls: Option<StartTls>,
    /// One HTTP GET over the session (`Tls`), or the redirect check's request (`HttpRedirect`).
    pub http: Option<HttpCheck>,
    /// How often to scan for legacy protocols and weak ciphers; `None`: never (`scan: false`,
    /// STARTTLS and redirect targets).
    pub scan_interval: Option<Duration>,
    pub roots: Arc<Roots>,
    pub client_config: Arc<ClientConfig>,
    /// Expiry of the client certificate presented for mTLS (unix seconds).
    pub client_cert_not_after: Option<i64>,
    /// Everything the target was built from, file contents included: equal specs mean an
    /// unchanged target across a reload.
    spec: Spec,
}

impl Target {
    /// True when `other` was built from the same settings and file contents.
    pub fn same_as(&self, other: &Target) -> bool {
        self.spec == other.spec
    }

    /// A digest of what `same_as` compares (settings and file contents), as lower-case hex
    /// SHA-256: equal specs give equal fingerprints in this and later builds that keep the
    /// spec's fields, so `storage` can tell across a restart whether a saved outcome still
    /// belongs to the target. Costs one pass over the target's files: callers cache it.
    pub(crate) fn fingerprint(&self) -> String {
        // Exhaustive, so a new field of `Spec` cannot be left out of the digest.
        let Spec {
            name,
            address,
            server_name,
            interval,
            timeout,
            labels,
            ip_protocol,
            resolve_all,
            kind,
            starttls,
            http,
            scan_interval,
            ca,
            client_cert,
            client_key,
        } = &self.spec;
        let settings = format!(
            "{:?}",
            (
                name,
                address,
                server_name,
                interval,
                timeout,
                labels,
                ip_protocol,
                resolve_all,
                kind,
                starttls,
                http,
                scan_interval
            )
        );
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        // Files as raw bytes (a CA bundle is not worth formatting); every part tagged and
        // length-prefixed, so two different specs never feed the same bytes.
        for part in [
            Some(settings.as_bytes()),
            ca.as_deref(),
            client_cert.as_deref(),
            client_key.as_deref(),
        ] {
            match part {
                None => digest.update(&[0]),
                Some(bytes) => {
                    digest.update(&[1]);
                    digest.update(&(bytes.len() as u64).to_be_bytes());
                    digest.update(bytes);
                }
            }
        }
        crate::tls::cert::hex(digest.finish().as_ref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    name: String,
    address: String,
    server_name: String,
    interval: Duration,
    timeout: Duration,
    labels: Vec<(String, String)>,
    ip_protocol: IpProtocol,
    resolve_all: bool,
    kind: ProbeKind,
    starttls: Option<StartTls>,
    http: Option<HttpCheck>,
    scan_interval: Option<Duration>,
    ca: Option<Vec<u8>>,
    client_cert: Option<Vec<u8>>,
    client_key: Option<Vec<u8>>,
}

/// Reads and validates the config file at `path` (and its target files, with no history).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, &mut TargetFileCache::new())
}

/// Reads and validates the config file at `path`; target files that are invalid now fall back
/// to their content in `cache`, which is updated with every valid target file.
pub fn load_with(path: &Path, cache: &mut TargetFileCache) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_with(&text, path, cache)
}

/// Validates config text; `path` names the file in errors and anchors relative file paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with(text, path, &mut TargetFileCache::new())
}

fn parse_with(text: &str, path: &Path, cache: &mut TargetFileCache) -> Result<Config, ConfigError> {
    let (raw, problems) = deserialize(text);
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut conv = Converter {
        base,
        problems,
        files: HashMap::new(),
        roots: HashMap::new(),
        configs: HashMap::new(),
    };
    let config = conv.config(raw, path, cache);
    if conv.problems.is_empty() {
        Ok(config)
    } else {
        conv.problems.sort_by_key(|p| (p.line, p.column));
        conv.problems.dedup();
        Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems: conv.problems,
        })
    }
}

/// Parses the file into raw structs. When it does not fit the schema, each section (`global`,
/// every target) is parsed on its own as well, so that one bad target does not hide the
/// problems of the others: the sections that parse are returned with every problem found.
fn deserialize(text: &str) -> (RawConfig, Vec<Problem>) {
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

/// Builds a `Config` from raw structs, collecting problems instead of stopping at the first.
struct Converter {
    /// Directory relative paths are resolved against (the config's, or a target file's).
    base: PathBuf,
    problems: Vec<Problem>,
    /// File contents by resolved path, each read once per load.
    files: HashMap<PathBuf, Result<Vec<u8>, String>>,
    /// Trust anchors by `ca_file` path (`None`: webpki-roots), or the problem loading them.
    roots: HashMap<Option<PathBuf>, Result<Arc<Roots>, String>>,
    /// One rustls config per client identity (none, or cert+key paths).
    configs: HashMap<Option<(PathBuf, PathBuf)>, Arc<ClientConfig>>,
}

/// Settings a target inherits from `global`.
struct Defaults {
    /// `None` when the global value did not parse (already reported).
    interval: Option<Duration>,
    timeout: Option<Duration>,
    ca_file: Option<Spanned<String>>,
    scan_interval: Option<Duration>,
    scan: bool,
}

impl Converter {
    fn config(&mut self, raw: RawConfig, path: &Path, cache: &mut TargetFileCache) -> Config {
        let global = raw.global;
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
        let concurrency = match &global.concurrency {
            Some(c) if c.value == 0 => {
                self.problem(c, "global.concurrency", "must be at least 1");
                1
            }
            Some(c) => c.value,
            None => DEFAULT_CONCURRENCY,
        };
        let global_roots = self.roots_for(global.ca_file.as_ref(), "global.ca_file");
        let scan_interval = self.duration(
            global.scan_interval.as_ref(),
            "global.scan_interval",
            DEFAULT_SCAN_INTERVAL,
        );
        let defaults = Defaults {
            interval,
            timeout,
            scan_interval,
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
        let mut names = HashMap::new();
        let mut targets = Vec::with_capacity(raw.targets.len());
        // Positions in the file: targets that did not parse are absent from `raw.targets`.
        let positions = (0..).filter(|i| !raw.skipped.contains(i));
        for (i, t) in positions.zip(raw.targets) {
            if let Some(target) = self.target(i, t, &defaults, &mut names) {
                targets.push(Arc::new(target));
            }
        }
        let mut target_file_problems = Vec::new();
        let mut target_files = Vec::new();
        let mut target_file_patterns = Vec::new();
        for (i, pattern) in raw.target_files.iter().enumerate() {
            let field = format!("target_files[{i}]");
            let full = self.resolve(&pattern.value).to_string_lossy().into_owned();
            target_file_patterns.push(full.clone());
            let paths = match glob::glob(&full) {
                Ok(paths) => paths,
                Err(e) => {
                    self.problem(pattern, &field, format!("invalid glob pattern: {e}"));
                    continue;
                }
            };
            let mut paths: Vec<PathBuf> = paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            paths.sort();
            for file in paths {
                let (found, problems) = self.target_file(&file, &defaults, &mut names, cache);
                targets.extend(found.into_iter().map(Arc::new));
                target_file_problems.extend(problems);
                target_files.push(file);
            }
        }
        let adhoc = Adhoc {
            interval: interval.unwrap_or(DEFAULT_INTERVAL),
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
            roots: global_roots.unwrap_or_else(|| Arc::new(Roots::webpki())),
            client_config: self
                .configs
                .entry(None)
                .or_insert_with(|| verifier::client_config(None))
                .clone(),
        };
        Config {
            path: path.to_path_buf(),
            concurrency: concurrency as usize,
            targets,
            adhoc,
            target_file_problems,
            target_files,
            target_file_patterns,
        }
    }

    /// The targets of one target file: its current content if valid (remembered in `cache`),
    /// else its last good content, else none; with the current content's problems.
    fn target_file(
        &mut self,
        file: &Path,
        defaults: &Defaults,
        names: &mut HashMap<String, (usize, u64)>,
        cache: &mut TargetFileCache,
    ) -> (Vec<Target>, Vec<String>) {
        let current = std::fs::read_to_string(file);
        let problems = match &current {
            Ok(text) => match self.file_targets(file, text, defaults, names) {
                Ok(targets) => {
                    cache.insert(file.to_path_buf(), text.clone());
                    return (targets, Vec::new());
                }
                Err(problems) => ConfigError::Invalid {
                    path: file.to_path_buf(),
                    problems,
                }
                .lines(),
            },
            Err(e) => vec![format!("{}: cannot read: {e}", file.display())],
        };
        let fallback = cache.get(file).cloned();
        let kept = fallback.and_then(|text| self.file_targets(file, &text, defaults, names).ok());
        let note = match &kept {
            Some(_) => "keeping its last good content",
            None => "skipping it",
        };
        let problems = problems
            .into_iter()
            .map(|p| format!("{p} ({note})"))
            .collect();
        (kept.unwrap_or_default(), problems)
    }

    /// Converts a target file's text, with paths relative to the file and names unique across
    /// the whole config. On any problem nothing of the file is kept (names included).
    fn file_targets(
        &mut self,
        file: &Path,
        text: &str,
        defaults: &Defaults,
        names: &mut HashMap<String, (usize, u64)>,
    ) -> Result<Vec<Target>, Vec<Problem>> {
        let list_form = text
            .lines()
            .map(str::trim_start)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .is_some_and(|l| l.starts_with('-'));
        let raw = if list_form {
            parse_as::<Vec<RawTarget>>(text, "targets")
        } else {
            parse_as::<raw::RawTargetFile>(text, "").map(|f| f.targets)
        }
        .map_err(|p| vec![p])?;
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let saved_base = std::mem::replace(&mut self.base, dir);
        let saved_problems = std::mem::take(&mut self.problems);
        let mut file_names = names.clone();
        let targets: Vec<Target> = raw
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| self.target(i, t, defaults, &mut file_names))
            .collect();
        self.base = saved_base;
        let mut problems = std::mem::replace(&mut self.problems, saved_problems);
        if problems.is_empty() {
            *names = file_names;
            Ok(targets)
        } else {
            problems.sort_by_key(|p| (p.line, p.column));
            problems.dedup();
            Err(problems)
        }
    }

    fn target(
        &mut self,
        i: usize,
        t: RawTarget,
        defaults: &Defaults,
        names: &mut HashMap<String, (usize, u64)>,
    ) -> Option<Target> {
        let at = |field: &str| format!("targets[{i}].{field}");
        let before = self.problems.len();

        let address = parse_address(&t.address.value)
            .map_err(|m| self.problem(&t.address, &at("address"), m))
            .ok();
        let name_span = t.name.as_ref().unwrap_or(&t.address);
        let name = name_span.value.clone();
        if name.is_empty() {
            self.problem(name_span, &at("name"), "must not be empty");
        } else if let Some((first, line)) = names.get(&name).copied() {
            let hint = match t.name {
                None => " (names default to the address; set a distinct name)",
                Some(_) => "",
            };
            let msg = format!("duplicate target name {name:?}, first used by targets[{first}] on line {line}{hint}");
            self.problem(name_span, &at("name"), msg);
        } else {
            names.insert(name.clone(), (i, name_span.referenced.line()));
        }

        let server_name_text = match (&t.server_name, &address) {
            (Some(s), _) => Some((s.value.clone(), s)),
            (None, Some((host, _))) => Some((host.clone(), &t.address)),
            (None, None) => None,
        };
        let server_name = server_name_text.and_then(|(text, span)| {
            ServerName::try_from(text.clone())
                .map_err(|_| {
                    self.problem(
                        span,
                        &at("server_name"),
                        format!("{text:?} is not a valid DNS name or IP address"),
                    )
                })
                .ok()
        });

        let interval = match &t.interval {
            Some(span) => self.duration(Some(span), &at("interval"), DEFAULT_INTERVAL),
            None => defaults.interval,
        };
        let timeout = match &t.timeout {
            Some(span) => self.duration(Some(span), &at("timeout"), DEFAULT_TIMEOUT),
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
                (Some(span), _) => self.problem(span, &at("timeout"), msg),
                (None, Some(span)) => self.problem(
                    span,
                    &at("interval"),
                    format!("must be longer than timeout ({})", format_duration(timeout)),
                ),
                // Both inherited: reported on global already.
                (None, None) => {}
            }
        }

        let labels = self.labels(i, &t.labels);
        let ip_protocol = match t.ip_protocol.as_ref().map(|s| (s, s.value.as_str())) {
            None | Some((_, "any")) => IpProtocol::Any,
            Some((_, "ip4")) => IpProtocol::Ip4,
            Some((_, "ip6")) => IpProtocol::Ip6,
            Some((span, other)) => {
                self.problem(
                    span,
                    &at("ip_protocol"),
                    format!("{other:?}: expected ip4, ip6 or any"),
                );
                IpProtocol::Any
            }
        };
        let resolve_all = match t.resolve.as_ref().map(|s| (s, s.value.as_str())) {
            None | Some((_, "first")) => false,
            Some((_, "all")) => true,
            Some((span, other)) => {
                self.problem(
                    span,
                    &at("resolve"),
                    format!("{other:?}: expected first or all"),
                );
                false
            }
        };
        let kind = match t.probe.as_ref().map(|s| (s, s.value.as_str())) {
            None | Some((_, "tls")) => ProbeKind::Tls,
            Some((_, "http_redirect")) => ProbeKind::HttpRedirect,
            Some((span, other)) => {
                self.problem(
                    span,
                    &at("probe"),
                    format!("{other:?}: expected tls or http_redirect"),
                );
                ProbeKind::Tls
            }
        };
        let starttls = t.starttls.as_ref().and_then(|span| {
            let found = StartTls::ALL.into_iter().find(|p| p.as_str() == span.value);
            if found.is_none() {
                let names: Vec<&str> = StartTls::ALL.iter().map(|p| p.as_str()).collect();
                self.problem(
                    span,
                    &at("starttls"),
                    format!("{:?}: expected one of {}", span.value, names.join(", ")),
                );
            }
            found
        });
        if let (Some(span), ProbeKind::HttpRedirect) = (&t.starttls, kind) {
            self.problem(
                span,
                &at("starttls"),
                "does not apply to probe: http_redirect",
            );
        }
        let http = self.http_check(i, &t, kind, address.as_ref());
        let scan_interval = match &t.scan_interval {
            Some(span) => self.duration(Some(span), &at("scan_interval"), DEFAULT_SCAN_INTERVAL),
            None => defaults.scan_interval,
        };
        // Hand-built ClientHellos go straight to the port: no scan behind STARTTLS or on the
        // plain-HTTP side.
        let scans = t.scan.as_ref().map_or(defaults.scan, |s| s.value)
            && starttls.is_none()
            && kind == ProbeKind::Tls;
        let scan_interval = if scans { scan_interval } else { None };
        let ca_file = t.ca_file.as_ref().or(defaults.ca_file.as_ref());
        let ca_field = if t.ca_file.is_some() {
            at("ca_file")
        } else {
            "global.ca_file".to_string()
        };
        let roots = self.roots_for(ca_file, &ca_field);
        let client = self.client_identity(i, &t);

        if self.problems.len() > before {
            return None;
        }
        let (host, port) = address?;
        let (interval, timeout) = both?;
        let server_name = server_name?;
        let (client_config, client_cert, client_key) = client?;
        let client_cert_not_after = client_cert
            .as_deref()
            .and_then(|pem| CertificateDer::pem_slice_iter(pem).next()?.ok())
            .and_then(|der| crate::tls::cert::parse(der.as_ref()).ok())
            .map(|f| f.not_after);

        let ca = ca_file.and_then(|c| self.files.get(&self.resolve(&c.value)).cloned()?.ok());
        let spec = Spec {
            name: name.clone(),
            address: t.address.value.clone(),
            server_name: server_name.to_str().into_owned(),
            interval,
            timeout,
            labels: labels.clone(),
            ip_protocol,
            resolve_all,
            kind,
            starttls,
            http: http.clone(),
            scan_interval,
            ca,
            client_cert,
            client_key,
        };
        Some(Target {
            client_cert_not_after,
            name,
            address: t.address.value,
            host,
            port,
            server_name,
            interval,
            timeout,
            labels,
            kind,
            ip_protocol,
            resolve_all,
            starttls,
            http,
            scan_interval,
            roots: roots?,
            client_config,
            spec,
        })
    }

    /// The HTTP request of a target: `http:` as written, with defaults for `host` (the address's
    /// host, with the port unless it is the scheme's default) and `path` (`/`). Redirect checks
    /// always have one.
    fn http_check(
        &mut self,
        i: usize,
        t: &RawTarget,
        kind: ProbeKind,
        address: Option<&(String, u16)>,
    ) -> Option<HttpCheck> {
        if t.http.is_none() && kind == ProbeKind::Tls {
            return None;
        }
        let raw = t.http.as_ref();
        let default_port = if kind == ProbeKind::HttpRedirect {
            80
        } else {
            443
        };
        let host = match (raw.and_then(|h| h.host.as_ref()), address) {
            (Some(h), _) if h.value.is_empty() || h.value.contains(['/', ' ']) => {
                let msg = format!("{:?} is not a host[:port]", h.value);
                self.problem(h, &format!("targets[{i}].http.host"), msg);
                return None;
            }
            (Some(h), _) => h.value.clone(),
            (None, Some((host, port))) => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                if *port == default_port {
                    host
                } else {
                    format!("{host}:{port}")
                }
            }
            (None, None) => return None,
        };
        let path = match raw.and_then(|h| h.path.as_ref()) {
            Some(p) if !p.value.starts_with('/') => {
                let msg = format!("{:?} must start with /", p.value);
                self.problem(p, &format!("targets[{i}].http.path"), msg);
                return None;
            }
            Some(p) => p.value.clone(),
            None => "/".to_string(),
        };
        Some(HttpCheck { host, path })
    }

    fn labels(
        &mut self,
        i: usize,
        raw: &BTreeMap<String, Spanned<String>>,
    ) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(raw.len());
        for (name, value) in raw {
            let field = format!("targets[{i}].labels.{name}");
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

    /// The rustls config for a target's client identity, plus the identity's file contents.
    #[allow(clippy::type_complexity)]
    fn client_identity(
        &mut self,
        i: usize,
        t: &RawTarget,
    ) -> Option<(Arc<ClientConfig>, Option<Vec<u8>>, Option<Vec<u8>>)> {
        let (cert, key) = match (&t.client_cert_file, &t.client_key_file) {
            (None, None) => {
                let config = self
                    .configs
                    .entry(None)
                    .or_insert_with(|| verifier::client_config(None));
                return Some((config.clone(), None, None));
            }
            (Some(c), Some(k)) => (c, k),
            (Some(c), None) => {
                self.problem(
                    c,
                    &format!("targets[{i}].client_cert_file"),
                    "needs client_key_file too",
                );
                return None;
            }
            (None, Some(k)) => {
                self.problem(
                    k,
                    &format!("targets[{i}].client_key_file"),
                    "needs client_cert_file too",
                );
                return None;
            }
        };
        let cert_field = format!("targets[{i}].client_cert_file");
        let key_field = format!("targets[{i}].client_key_file");
        let cert_bytes = self.read(cert, &cert_field)?;
        let key_bytes = self.read(key, &key_field)?;
        let chain = self.certs(&cert_bytes, cert, &cert_field)?;
        let private = match PrivateKeyDer::from_pem_slice(&key_bytes) {
            Ok(k) => k,
            Err(e) => {
                self.problem(
                    key,
                    &key_field,
                    format!("no usable private key in {}: {e}", key.value),
                );
                return None;
            }
        };
        let identity = (self.resolve(&cert.value), self.resolve(&key.value));
        if let Some(config) = self.configs.get(&Some(identity.clone())) {
            return Some((config.clone(), Some(cert_bytes), Some(key_bytes)));
        }
        let certified = match verifier::certified_key(chain, private) {
            Ok(k) => k,
            Err(rustls::Error::InconsistentKeys(_)) => {
                let msg = format!(
                    "{} is not the private key of the certificate in {}",
                    key.value, cert.value
                );
                self.problem(key, &key_field, msg);
                return None;
            }
            Err(e) => {
                self.problem(
                    key,
                    &key_field,
                    format!("{}: unusable private key: {e}", key.value),
                );
                return None;
            }
        };
        let config = verifier::client_config(Some(certified));
        self.configs.insert(Some(identity), config.clone());
        Some((config, Some(cert_bytes), Some(key_bytes)))
    }

    /// Trust anchors for a `ca_file` (or webpki-roots without one), loaded once per path.
    fn roots_for(&mut self, ca_file: Option<&Spanned<String>>, field: &str) -> Option<Arc<Roots>> {
        let key = ca_file.map(|c| self.resolve(&c.value));
        match (self.roots.get(&key).cloned(), ca_file) {
            (Some(Ok(roots)), _) => return Some(roots),
            // Reported again at this use; identical reports (inherited globals) are merged.
            (Some(Err(message)), Some(span)) => {
                self.problem(span, field, message);
                return None;
            }
            _ => {}
        }
        let before = self.problems.len();
        let roots = match ca_file {
            None => Some(Roots::webpki()),
            Some(span) => self.read(span, field).and_then(|bytes| {
                let certs = self.certs(&bytes, span, field)?;
                Roots::from_certs(&certs)
                    .map_err(|m| self.problem(span, field, format!("{}: {m}", span.value)))
                    .ok()
            }),
        };
        let cached = match roots {
            Some(r) => Ok(Arc::new(r)),
            None => Err(self
                .problems
                .get(before)
                .map(|p| p.message.clone())
                .unwrap_or_default()),
        };
        self.roots.insert(key, cached.clone());
        cached.ok()
    }

    fn certs(
        &mut self,
        bytes: &[u8],
        span: &Spanned<String>,
        field: &str,
    ) -> Option<Vec<CertificateDer<'static>>> {
        let parsed: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(bytes).collect();
        match parsed {
            Ok(certs) if certs.is_empty() => {
                self.problem(
                    span,
                    field,
                    format!("{}: no PEM certificates found", span.value),
                );
                None
            }
            Ok(certs) => Some(certs),
            Err(e) => {
                self.problem(span, field, format!("{}: invalid PEM: {e}", span.value));
                None
            }
        }
    }

    /// Reads a file named in the config, once per load; unreadable files are problems at every
    /// place that names them.
    fn read(&mut self, span: &Spanned<String>, field: &str) -> Option<Vec<u8>> {
        let path = self.resolve(&span.value);
        let result = match self.files.get(&path) {
            Some(cached) => cached.clone(),
            None => {
                let read =
                    std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", span.value));
                self.files.insert(path, read.clone());
                read
            }
        };
        result.map_err(|m| self.problem(span, field, m)).ok()
    }

    /// Absolute path of a file named in the config (relative to the config or target file).
    fn resolve(&self, file: &str) -> PathBuf {
        let p = self.base.join(file);
        std::path::absolute(&p).unwrap_or(p)
    }

    /// The duration written at `span`, `default` when absent, `None` (reported) when invalid.
    fn duration(
        &mut self,
        span: Option<&Spanned<String>>,
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

    fn problem<T>(&mut self, span: &Spanned<T>, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            line: span.referenced.line(),
            column: span.referenced.column(),
            field: field.to_string(),
            message: message.into(),
        });
    }
}

/// Splits `host:port`, `[v6]:port` or `IP:port`.
fn parse_address(text: &str) -> Result<(String, u16), String> {
    if text.contains("://") {
        return Err(format!(
            "{text:?}: expected host:port, not a URL (e.g. example.com:443)"
        ));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: missing ']' after IPv6 address"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("{text:?}: expected [ipv6]:port"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{text:?}: {host:?} is not an IPv6 address"));
        }
        (host, port)
    } else {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?}: expected host:port"))?;
        if host.contains(':') {
            return Err(format!(
                "{text:?}: write IPv6 addresses in brackets, e.g. [::1]:443"
            ));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(format!("{text:?}: empty host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host.to_string(), p)),
        _ => Err(format!("{text:?}: port must be a number from 1 to 65535")),
    }
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.starts_with("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<String> {
        match parse(yaml, Path::new("t.yml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.lines(),
        }
    }

    #[test]
    fn minimal_target_gets_defaults() {
        let c = parse(
            "targets:\n  - address: example.com:443\n",
            Path::new("t.yml"),
        )
        .expect("valid config");
        let t = &c.targets[0];
        assert_eq!(t.name, "example.com:443");
        assert_eq!(t.server_name.to_str(), "example.com");
        assert_eq!((t.interval, t.timeout), (DEFAULT_INTERVAL, DEFAULT_TIMEOUT));
        assert_eq!(c.concurrency, 64);
    }

    #[test]
    fn addresses_accept_hosts_ipv4_and_bracketed_ipv6() {
        assert_eq!(
            parse_address("a.example:443"),
            Ok(("a.example".into(), 443))
        );
        assert_eq!(
            parse_address("10.0.0.1:8443"),
            Ok(("10.0.0.1".into(), 8443))
        );
        assert_eq!(parse_address("[::1]:443"), Ok(("::1".into(), 443)));
        for bad in [
            "a.example",
            "::1:443",
            "[::1]443",
            ":443",
            "a:0",
            "a:99999",
            "[zz]:1",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_problem_of_a_file_is_reported_at_once() {
        let yaml = "targets:\n  - address: a:443\n    timeout: 2m\n  - address: nope\n    labels: {job: x}\n";
        assert_eq!(
            problems(yaml),
            vec![
                "t.yml:3:14: targets[0].timeout: must be shorter than interval (1m)",
                "t.yml:4:14: targets[1].address: \"nope\": expected host:port",
                "t.yml:5:19: targets[1].labels.job: label \"job\" is reserved (set by the exporter or Prometheus); choose another name",
            ]
        );
    }

    #[test]
    fn unknown_field_names_path_and_line() {
        assert_eq!(
            problems("targets:\n  - address: a:443\n    tmeout: 5s\n"),
            vec!["t.yml:3:5: targets[0].tmeout: unknown field `tmeout`, expected one of name, address, server_name, ca_file, client_cert_file, client_key_file, interval, timeout, ip_protocol, resolve, probe, starttls, http, scan_interval, scan, labels"]
        );
    }

    #[test]
    fn same_spec_means_unchanged_target() {
        let a = parse("targets:\n  - address: a:443\n", Path::new("t.yml")).expect("valid");
        let b = parse(
            "global: {interval: 60s}\ntargets:\n  - address: a:443\n",
            Path::new("t.yml"),
        )
        .expect("valid");
        let c = parse(
            "targets:\n  - address: a:443\n    interval: 30s\n",
            Path::new("t.yml"),
        )
        .expect("valid");
        assert!(a.targets[0].same_as(&b.targets[0]));
        assert!(!a.targets[0].same_as(&c.targets[0]));
    }

    #[test]
    fn fingerprint_follows_the_spec() {
        let load = |yaml: &str| parse(yaml, Path::new("t.yml")).expect("valid");
        let a = load("targets:\n  - address: a:443\n");
        let b = load("global: {interval: 60s}\ntargets:\n  - address: a:443\n");
        let c = load("targets:\n  - address: a:443\n    interval: 30s\n");
        let fp = a.targets[0].fingerprint();
        assert_eq!(fp.len(), 64, "{fp}");
        assert_eq!(fp, b.targets[0].fingerprint());
        assert_ne!(fp, c.targets[0].fingerprint());
    }
}
