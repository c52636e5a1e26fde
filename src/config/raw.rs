//! The YAML file as written: serde structs that mirror it field for field.
//!
//! Nothing here applies defaults or judges values; `convert` does that, so every value a rule
//! may reject keeps its source position through `Spanned`. Parsing is `salvage`'s.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) global: RawGlobal,
    #[serde(default)]
    pub(crate) targets: Vec<RawTarget>,
    /// Glob patterns of target files (relative to the config file).
    #[serde(default)]
    pub(crate) target_files: Vec<Spanned<String>>,
    /// Positions of targets that did not parse (filled when salvaging a broken file).
    #[serde(skip)]
    pub(crate) skipped: Vec<usize>,
}

/// `http: {path, host}`: one GET over the TLS session (or the redirect check's request).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    pub(crate) path: Option<Spanned<String>>,
    pub(crate) host: Option<Spanned<String>>,
}

/// A target file in mapping form (`targets: [...]`); the list form is a bare `Vec<RawTarget>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTargetFile {
    #[serde(default)]
    pub(crate) targets: Vec<RawTarget>,
}

/// Just the shape of the file, to find each section's position when the strict parse fails.
#[derive(Debug, Deserialize)]
pub(crate) struct LooseConfig {
    pub(crate) global: Option<Spanned<serde::de::IgnoredAny>>,
    pub(crate) targets: Option<Vec<Spanned<serde::de::IgnoredAny>>>,
    pub(crate) target_files: Option<Vec<Spanned<String>>>,
}

/// Defaults for every target; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobal {
    pub(crate) interval: Option<Spanned<String>>,
    pub(crate) timeout: Option<Spanned<String>>,
    pub(crate) concurrency: Option<Spanned<u32>>,
    pub(crate) ca_file: Option<Spanned<String>>,
    pub(crate) scan_interval: Option<Spanned<String>>,
    pub(crate) scan: Option<Spanned<bool>>,
}

/// One endpoint to probe.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) address: Spanned<String>,
    pub(crate) server_name: Option<Spanned<String>>,
    pub(crate) ca_file: Option<Spanned<String>>,
    pub(crate) client_cert_file: Option<Spanned<String>>,
    pub(crate) client_key_file: Option<Spanned<String>>,
    pub(crate) interval: Option<Spanned<String>>,
    pub(crate) timeout: Option<Spanned<String>>,
    pub(crate) ip_protocol: Option<Spanned<String>>,
    pub(crate) resolve: Option<Spanned<String>>,
    /// `tls` (default) or `http_redirect`.
    pub(crate) probe: Option<Spanned<String>>,
    pub(crate) starttls: Option<Spanned<String>>,
    pub(crate) http: Option<RawHttp>,
    pub(crate) scan_interval: Option<Spanned<String>>,
    /// `false` turns the legacy protocol and weak cipher scan off.
    pub(crate) scan: Option<Spanned<bool>>,
    /// Label values carry the position used for errors about their names too.
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, Spanned<String>>,
}
