//! The validated configuration: every default applied, every file loaded, every rule checked.
//!
//! This file owns the types the rest of the exporter sees (`Config`, `Target` and its settings)
//! and the `load`/`parse` entry points. The work is done by its parts: `salvage` parses the YAML
//! into `raw` structs (section by section when the file does not fit, so one bad target does not
//! hide the others), `convert` (with `identity`, `probe_settings`, `labels`, `tls_material`)
//! turns them into a `Config`, collecting every problem with its line, column and field path,
//! and `target_files` reads the files named by `target_files` globs. Nothing downstream
//! re-checks. TLS objects (trust anchors, client keys, rustls configs) are built here, once per
//! config.

mod adhoc;
mod adhoc_rules;
mod cert_files;
mod convert;
mod ct_logs;
mod duration;
pub mod endpoint;
mod error;
mod identity;
mod labels;
mod modules;
mod probe_settings;
mod proxy;
mod raw;
pub mod read;
mod salvage;
mod starttls;
mod target_files;
mod tls_material;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;

pub use adhoc_rules::AdhocRules;
pub use cert_files::{CertFileEntry, CertFormat};
pub(crate) use duration::format as format_duration;
pub use duration::parse as parse_duration;
pub(crate) use error::render as render_problems;
pub use error::{ConfigError, Fallback, FileFault, FileProblem, Problem};
use identity::parse_address;
pub use modules::{Module, Output};
pub use proxy::{Credentials, Proxy, ProxyKind};
pub(crate) use salvage::parse_as;
pub use starttls::StartTls;
pub use target_files::TargetFileCache;

use crate::revocation::Settings as RevocationSettings;
use crate::tls::ct::LogList;
use crate::tls::verifier::Roots;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONCURRENCY: u32 = 64;
const DEFAULT_SCAN_INTERVAL: Duration = Duration::from_secs(6 * 3600);

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
    /// Problems of target files, in file order. Such a file is skipped, or its last good
    /// content used; the rest of the config applies.
    pub target_file_problems: Vec<FileProblem>,
    /// Target files read, for the watcher.
    pub target_files: Vec<PathBuf>,
    /// The `target_files` glob patterns, resolved against the config file's directory.
    pub target_file_patterns: Vec<String>,
    /// The valid modules by name, for `/probe?module=`.
    modules: BTreeMap<String, Arc<Module>>,
    /// `adhoc_probes:`, when the config has it.
    adhoc_rules: Option<AdhocRules>,
    /// The `files:` entries: certificate files at rest, read by `files`.
    pub cert_files: Vec<Arc<CertFileEntry>>,
}

/// What an ad-hoc probe (`/probe` of an unconfigured endpoint) inherits: the global settings.
#[derive(Debug, Clone)]
struct Adhoc {
    interval: Duration,
    timeout: Duration,
    /// The global trust anchors, no client certificate, the global log list.
    material: Arc<Material>,
    proxy: Option<Arc<Proxy>>,
    aia_fetch: bool,
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

    /// The module named `name`, if the config has it (and it is valid).
    pub fn module(&self, name: &str) -> Option<Arc<Module>> {
        self.modules.get(name).cloned()
    }

    /// The names of the config's modules, sorted.
    pub fn module_names(&self) -> Vec<&str> {
        self.modules.keys().map(String::as_str).collect()
    }

    /// What ad-hoc probes may be (`adhoc_probes:`); without the section, any endpoint.
    pub fn adhoc_rules(&self) -> Option<&AdhocRules> {
        self.adhoc_rules.as_ref()
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
    /// Boxed: most targets have none, and a pointer is a sixth of the request's size.
    pub http: Option<Box<HttpCheck>>,
    /// How often to scan for legacy protocols and weak ciphers; `None`: never (`scan: false`
    /// and redirect targets).
    pub scan_interval: Option<Duration>,
    /// Connect through this proxy (`proxy_url:`).
    pub proxy: Option<Arc<Proxy>>,
    /// Revocation checks beyond the staple (`revocation:`, `revocation_max_crl_size`).
    pub revocation: RevocationSettings,
    /// What it verifies servers with and presents to them, with the file contents they were
    /// built from (one record shared by every target of a load built from the same files).
    pub material: Arc<Material>,
    /// When the chain is incomplete, fetch the missing issuer from the AIA caIssuers URL
    /// (`tls_chain_valid_with_aia`).
    pub aia_fetch: bool,
    /// The certificate file holding the leaf this target should serve (`expect_cert_file`).
    pub expect_cert_file: Option<Box<Path>>,
    /// The `/probe` format of its module's `output:`, when `&format=` names none. Not
    /// compared by `same_as`: it does not change how the target is probed.
    pub output: Option<Output>,
}

/// A target's TLS material: what it verifies servers with and presents to them, and the
/// contents of the files they were built from. A load builds one record per set of files and
/// shares it among every target naming those files, so a target costs one pointer for it.
#[derive(Debug)]
pub struct Material {
    pub roots: Arc<Roots>,
    pub client_config: Arc<ClientConfig>,
    /// Expiry of the client certificate presented for mTLS (unix seconds).
    pub client_cert_not_after: Option<i64>,
    /// The global `ct_log_list_file`, to verify SCTs against (`None`: SCTs are only counted).
    pub ct_logs: Option<Arc<LogList>>,
    /// The contents of the files: with the target's settings, what tells an unchanged target
    /// across a reload (everything above is derived from them).
    files: Files,
}

/// The settings `same_as` compares, as references into the target.
type Settings<'a> = (
    &'a String,
    &'a String,
    std::borrow::Cow<'a, str>,
    &'a Duration,
    &'a Duration,
    &'a Vec<(String, String)>,
    &'a IpProtocol,
    &'a bool,
    &'a ProbeKind,
    &'a Option<StartTls>,
    &'a Option<Box<HttpCheck>>,
    &'a Option<Duration>,
);

impl Target {
    /// True when `other` was built from the same settings and file contents.
    pub fn same_as(&self, other: &Target) -> bool {
        self.settings() == other.settings()
            && self.proxy == other.proxy
            && same_revocation(&self.revocation, &other.revocation)
            && self.expect_cert_file == other.expect_cert_file
            && self.aia_fetch == other.aia_fetch
            && self.material.files == other.material.files
    }

    /// Every setting the target was built from, except file contents. Exhaustive, so a new
    /// field of `Target` must be placed here or named as derived.
    fn settings(&self) -> Settings<'_> {
        let Target {
            name,
            address,
            // Derived from `address`.
            host: _,
            port: _,
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
            // Derived from the files (compared by `same_as` as their contents).
            material: _,
            // Not how it is probed: only how `/probe` answers.
            output: _,
            // Compared by `same_as` and appended by `fingerprint` on their own (a target
            // without a proxy keeps the fingerprint of earlier builds).
            proxy: _,
            revocation: _,
            // Compared by `same_as` and digested by `fingerprint` only when set.
            expect_cert_file: _,
            aia_fetch: _,
        } = self;
        (
            name,
            address,
            server_name.to_str(),
            interval,
            timeout,
            labels,
            ip_protocol,
            resolve_all,
            kind,
            starttls,
            http,
            scan_interval,
        )
    }

    /// A digest of what `same_as` compares (settings and file contents), as lower-case hex
    /// SHA-256: equal targets give equal fingerprints in this and later builds that keep the
    /// settings, so `storage` can tell across a restart whether a saved outcome still belongs
    /// to the target. Costs one pass over the target's files: callers cache it.
    pub(crate) fn fingerprint(&self) -> String {
        let settings = format!("{:?}", self.settings());
        // The proxy as shown (credentials redacted: a changed password alone does not make a
        // saved outcome someone else's), appended only when set so that the fingerprints of
        // targets without one stay those of earlier builds.
        let settings = match &self.proxy {
            Some(p) => format!("{settings} via {p}"),
            None => settings,
        };
        // Appended only when on, so targets without revocation checks keep the fingerprints
        // of builds before it (their saved outcomes stay theirs across the upgrade).
        let settings = if self.revocation.mode == crate::revocation::Mode::Off {
            settings
        } else {
            format!("{settings}{:?}", self.revocation)
        };
        let Files {
            ca,
            client_cert,
            client_key,
            ct_logs,
        } = &self.material.files;
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        // Files as raw bytes (a CA bundle is not worth formatting); every part tagged and
        // length-prefixed, so two different targets never feed the same bytes.
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
        // Only when set, so targets without it keep the digest of earlier builds.
        if let Some(path) = &self.expect_cert_file {
            let path = path.to_string_lossy();
            digest.update(&[2]);
            digest.update(&(path.len() as u64).to_be_bytes());
            digest.update(path.as_bytes());
        }
        // Added after the parts above, and only when set, so that targets without them keep
        // the fingerprints earlier builds gave them.
        if let Some(d) = ct_logs {
            digest.update(b"ct_log_list");
            digest.update(d);
        }
        if self.aia_fetch {
            digest.update(b"aia_fetch");
        }
        crate::tls::cert::hex(digest.finish().as_ref())
    }
}

/// Equal revocation settings as far as they change probing: the CRL size bound only matters
/// when checks are on.
fn same_revocation(a: &RevocationSettings, b: &RevocationSettings) -> bool {
    use crate::revocation::Mode;
    (a.mode == Mode::Off && b.mode == Mode::Off) || a == b
}

/// File contents a target was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Files {
    ca: Option<Arc<[u8]>>,
    client_cert: Option<Arc<[u8]>>,
    client_key: Option<Arc<[u8]>>,
    /// SHA-256 of the log list file's content (`global.ct_log_list_file`).
    ct_logs: Option<[u8; 32]>,
}

/// Which contents a `Files` holds, within one load: a load reads each file once, so the same
/// file is the same `Arc` (compared by address) for every target that names it. It also keys
/// the load's `Material` records, which holds because everything else in a record follows from
/// it within one load: trust anchors are cached by the same resolved path as the CA file's
/// contents, client configs by the same pair of paths as the certificate and key files, and
/// the log list is the global one, whose digest is part of the key.
type FilesIdentity = ([usize; 3], Option<[u8; 32]>);

impl Files {
    fn identity(&self) -> FilesIdentity {
        let at = |f: &Option<Arc<[u8]>>| f.as_ref().map_or(0, |b| b.as_ptr() as usize);
        (
            [at(&self.ca), at(&self.client_cert), at(&self.client_key)],
            self.ct_logs,
        )
    }
}

/// Reads and validates the config file at `path` (and its target files, with no history).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with(path, &mut TargetFileCache::new())
}

/// Reads and validates the config file at `path`; target files that are invalid now fall back
/// to their content in `cache`, which is updated with every valid target file.
pub fn load_with(path: &Path, cache: &mut TargetFileCache) -> Result<Config, ConfigError> {
    let text =
        read::read_text_bounded(path, read::CONFIG_LIMIT).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            source: e.into_io(),
        })?;
    parse_with(&text, path, cache)
}

/// Validates config text; `path` names the file in errors and anchors relative file paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_with(text, path, &mut TargetFileCache::new())
}

fn parse_with(text: &str, path: &Path, cache: &mut TargetFileCache) -> Result<Config, ConfigError> {
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    // A file that parses (the usual case) is converted as it is read. One that does not, or
    // that writes `global` or `modules` below `targets`, takes the parse that salvages.
    let mut conv = convert::Converter::new(base, Vec::new());
    let config = match conv.stream(text, path, cache) {
        Some(config) => config,
        None => {
            let (raw, problems) = salvage::deserialize(text);
            // The files the attempt read are not read again (a hung one would now read as
            // stuck).
            conv = conv.restart(problems);
            conv.config(raw, path, cache)
        }
    };
    finished(conv, config, path)
}

/// The config `conv` built from the file at `path`, or every problem it found.
fn finished(conv: convert::Converter, config: Config, path: &Path) -> Result<Config, ConfigError> {
    conv.finish()
        .map(|()| config)
        .map_err(|problems| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
}

/// The lines `parse` reports for `yaml` (as file `t.yml`); none when it is valid.
#[cfg(test)]
fn problems_of(yaml: &str) -> Vec<String> {
    match parse(yaml, Path::new("t.yml")) {
        Ok(_) => Vec::new(),
        Err(e) => e.lines(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_problem_of_a_file_is_reported_at_once() {
        let yaml = "targets:\n  - address: a:443\n    timeout: 2m\n  - address: nope\n    labels: {job: x}\n";
        assert_eq!(
            problems_of(yaml),
            vec![
                "t.yml:3:14: targets[0].timeout: must be shorter than interval (1m)",
                "t.yml:4:14: targets[1].address: \"nope\": expected host:port",
                "t.yml:5:19: targets[1].labels.job: label \"job\" is reserved (set by the exporter or Prometheus); choose another name",
            ]
        );
    }

    /// The config `yaml` gives through the parse that salvages (never streamed).
    fn salvaged(yaml: &str) -> Result<Config, Vec<String>> {
        let path = Path::new("t.yml");
        let (raw, problems) = salvage::deserialize(yaml);
        let mut conv = convert::Converter::new(PathBuf::from("."), problems);
        let config = conv.config(raw, path, &mut TargetFileCache::new());
        finished(conv, config, path).map_err(|e| e.lines())
    }

    /// Each target's name and fingerprint, in order.
    fn summary(c: &Config) -> Vec<(String, String)> {
        c.targets
            .iter()
            .map(|t| (t.name.clone(), t.fingerprint()))
            .collect()
    }

    #[test]
    fn streamed_and_salvaging_parses_build_the_same_config() {
        let files = [
            "targets:\n  - address: a:443\n",
            "global: {interval: 30s, timeout: 3s, scan: false}\ntargets:\n  - address: a:443\n  - name: b\n    address: b:443\n    labels: {team: x}\n",
            "global: {interval: 30s}\nmodules:\n  m: {timeout: 4s, probe: http_redirect}\ntargets:\n  - address: a:443\n    module: m\n  - address: c:443\n",
            "modules:\n  m: {scan_interval: 2h}\nglobal: {interval: 2m}\ntargets:\n  - address: a:443\n    module: m\nadhoc_probes: {modules: [m]}\n",
            // Below `targets`: streamed once, then parsed again with them.
            "targets:\n  - address: a:443\n    module: m\nglobal: {interval: 30s}\nmodules:\n  m: {timeout: 4s}\n",
            // Valid YAML, invalid config: the same problems either way.
            "global: {interval: 30s}\ntargets:\n  - address: a:443\n    timeout: 2m\n  - name: x\n    address: b:443\n  - name: x\n    address: c:443\n    module: nope\n",
            "targets: []\n",
            // A file problem found by the streamed attempt, then by the parse that follows.
            "targets:\n  - address: a:443\n    ca_file: missing.pem\n  - address: b:443\n    ca_file: missing.pem\nglobal: {interval: 30s}\n",
        ];
        for yaml in files {
            let streamed = parse(yaml, Path::new("t.yml")).map_err(|e| e.lines());
            let salvaged = salvaged(yaml);
            match (&streamed, &salvaged) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(summary(a), summary(b), "{yaml}");
                    assert_eq!(a.concurrency, b.concurrency, "{yaml}");
                    assert_eq!(a.adhoc.interval, b.adhoc.interval, "{yaml}");
                    assert_eq!(
                        a.modules.keys().collect::<Vec<_>>(),
                        b.modules.keys().collect::<Vec<_>>(),
                        "{yaml}"
                    );
                    assert_eq!(a.adhoc_rules.is_some(), b.adhoc_rules.is_some(), "{yaml}");
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{yaml}"),
                _ => panic!(
                    "{yaml}: streamed {:?}, salvaged {:?}",
                    streamed.is_ok(),
                    salvaged.is_ok()
                ),
            }
        }
    }

    #[test]
    fn global_and_modules_below_targets_still_apply_to_every_target() {
        let c = parse(
            "targets:\n  - address: a:443\n    module: m\n  - address: b:443\nglobal: {interval: 30s}\nmodules:\n  m: {timeout: 4s}\n",
            Path::new("t.yml"),
        )
        .expect("valid config");
        let timing: Vec<_> = c.targets.iter().map(|t| (t.interval, t.timeout)).collect();
        assert_eq!(
            timing,
            [
                (Duration::from_secs(30), Duration::from_secs(4)),
                (Duration::from_secs(30), DEFAULT_TIMEOUT),
            ]
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
    fn targets_built_from_the_same_files_share_one_record_of_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["a.pem", "b.pem"] {
            let ca = rcgen::generate_simple_self_signed(vec![name.to_string()]).expect("ca");
            std::fs::write(dir.path().join(name), ca.cert.pem()).expect("write");
        }
        let yaml = "global: {ca_file: a.pem}\ntargets:\n  - address: a:443\n  - address: b:443\n  - address: c:443\n    ca_file: b.pem\n  - address: d:443\n";
        let path = dir.path().join("t.yml");
        let c = parse(yaml, &path).expect("valid");
        let records: Vec<&Arc<Material>> = c.targets.iter().map(|t| &t.material).collect();
        let files: Vec<&Files> = records.iter().map(|m| &m.files).collect();
        assert!(Arc::ptr_eq(records[0], records[1]));
        assert_ne!(files[0], files[2], "another ca_file is other contents");
        assert!(!Arc::ptr_eq(records[0], records[2]));
        assert_eq!(files[0], files[3]);
        // Back to the global files after another target's: the same record again.
        assert!(Arc::ptr_eq(records[0], records[3]));
        assert!(files[0].ca.is_some());
        // A second load reads the files again: its targets are still the same as these.
        let again = parse(yaml, &path).expect("valid");
        assert!(c
            .targets
            .iter()
            .zip(&again.targets)
            .all(|(a, b)| a.same_as(b)));
    }

    /// A `Target` lives in an `Arc` (16 bytes more), allocated from jemalloc's 256-byte
    /// class: every byte beyond 240 would take it to the 320-byte class, 64 more bytes per
    /// target in every copy of the config (two while a reload builds the new one). Rare or
    /// shared settings go behind a pointer (`http`, `material`, `expect_cert_file`).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_target_fits_the_256_byte_allocation_class() {
        let size = std::mem::size_of::<Target>();
        assert!(size <= 240, "Target is {size} bytes");
    }

    /// The fingerprint of a target with every optional part set, pinned. `storage` matches saved
    /// outcomes to targets by it across upgrades, so a build that changed it (say, through the
    /// `Debug` text of a setting) would orphan every saved outcome: change the value only on
    /// purpose, and say so in the release notes.
    #[test]
    fn fingerprint_of_a_full_target_is_the_same_in_every_build() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid");
        for name in ["ca.pem", "client.pem", "client.key"] {
            std::fs::copy(fixtures.join(name), dir.path().join(name)).expect("copy fixture");
        }
        std::fs::write(dir.path().join("logs.json"), r#"{"operators": []}"#).expect("write");
        // Every path that is digested as a path is absolute, so the value does not depend on
        // where the test runs; the files themselves are digested by content.
        let yaml = "global: {ca_file: ca.pem, ct_log_list_file: logs.json, revocation: ocsp, proxy_url: 'http://proxy.test:3128', aia_fetch: true}\ntargets:\n  - name: web\n    address: web.test:8443\n    server_name: www.web.test\n    client_cert_file: client.pem\n    client_key_file: client.key\n    http: {path: /health, host: web.test}\n    expect_cert_file: /etc/tls/expected.pem\n    starttls: smtp\n    labels: {team: core}\n    interval: 30s\n    timeout: 5s\n    scan_interval: 1h\n    ip_protocol: ip6\n";
        let c = parse(yaml, &dir.path().join("t.yml")).expect("valid");
        assert_eq!(
            c.targets[0].fingerprint(),
            "f31911b25df14fc8a51818f45b85773fd32bcc4074afe614ca45fbffc732051b"
        );
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
