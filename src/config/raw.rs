//! The YAML file as written: serde structs that mirror it field for field.
//!
//! Nothing here applies defaults or judges values; `convert` does that, so every value a rule
//! may reject keeps its source position in an `At` (read through serde-saphyr's `Spanned`).
//! Parsing is `salvage`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

/// A value with the line and column it is written at (for a value reached through a YAML
/// alias, the alias's). Plain numbers rather than a `Spanned`, so that `salvage` can move the
/// positions of a section parsed on its own to where the section is in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct At<T> {
    pub(crate) value: T,
    pub(crate) line: u64,
    pub(crate) column: u64,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<T>::deserialize(deserializer)?;
        Ok(At {
            value: spanned.value,
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        })
    }
}

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
    pub(crate) target_files: Vec<At<String>>,
    /// Positions of targets that did not parse (filled when salvaging a broken file).
    #[serde(skip)]
    pub(crate) skipped: Vec<usize>,
}

/// `http: {path, host}`: one GET over the TLS session (or the redirect check's request).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    pub(crate) path: Option<At<String>>,
    pub(crate) host: Option<At<String>>,
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
    pub(crate) global: Option<At<serde::de::IgnoredAny>>,
    pub(crate) targets: Option<Vec<At<serde::de::IgnoredAny>>>,
    pub(crate) target_files: Option<Vec<At<String>>>,
}

/// Defaults for every target; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobal {
    pub(crate) interval: Option<At<String>>,
    pub(crate) timeout: Option<At<String>>,
    pub(crate) concurrency: Option<At<u32>>,
    pub(crate) ca_file: Option<At<String>>,
    pub(crate) scan_interval: Option<At<String>>,
    pub(crate) scan: Option<At<bool>>,
    /// A Certificate Transparency log list (`log_list.json` v3) to verify SCTs against.
    pub(crate) ct_log_list_file: Option<At<String>>,
    /// Fetch a missing issuer from the AIA caIssuers URL (every target's default).
    pub(crate) aia_fetch: Option<At<bool>>,
}

/// One endpoint to probe.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub(crate) name: Option<At<String>>,
    pub(crate) address: At<String>,
    pub(crate) server_name: Option<At<String>>,
    pub(crate) ca_file: Option<At<String>>,
    pub(crate) client_cert_file: Option<At<String>>,
    pub(crate) client_key_file: Option<At<String>>,
    pub(crate) interval: Option<At<String>>,
    pub(crate) timeout: Option<At<String>>,
    pub(crate) ip_protocol: Option<At<String>>,
    pub(crate) resolve: Option<At<String>>,
    /// `tls` (default) or `http_redirect`.
    pub(crate) probe: Option<At<String>>,
    pub(crate) starttls: Option<At<String>>,
    pub(crate) http: Option<RawHttp>,
    pub(crate) scan_interval: Option<At<String>>,
    /// `false` turns the legacy protocol and weak cipher scan off.
    pub(crate) scan: Option<At<bool>>,
    /// Label values carry the position used for errors about their names too.
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, At<String>>,
    /// `true` fetches a missing issuer from the AIA caIssuers URL (`tls_chain_valid_with_aia`).
    pub(crate) aia_fetch: Option<At<bool>>,
}
