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
    /// Named probe profiles targets (and `/probe?module=`) take their settings from.
    #[serde(default)]
    pub(crate) modules: BTreeMap<String, RawModule>,
    /// What ad-hoc `/probe` targets (not in the config) may be, when they are enabled.
    pub(crate) adhoc_probes: Option<RawAdhocRules>,
    /// Certificate files at rest to watch (`files:`).
    #[serde(default)]
    pub(crate) files: Vec<RawCertFile>,
    /// Positions of targets that did not parse (filled when salvaging a broken file).
    #[serde(skip)]
    pub(crate) skipped: Vec<usize>,
    /// Names of modules that did not parse (filled when salvaging a broken file).
    #[serde(skip)]
    pub(crate) skipped_modules: Vec<String>,
}

/// `http: {path, host}`: one GET over the TLS session (or the redirect check's request).
#[derive(Debug, Default, Clone, Deserialize)]
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
    pub(crate) modules: Option<BTreeMap<String, At<serde::de::IgnoredAny>>>,
    pub(crate) adhoc_probes: Option<At<serde::de::IgnoredAny>>,
    pub(crate) files: Option<At<serde::de::IgnoredAny>>,
}

/// One `files:` entry: a glob of certificate files at rest, how to read them, their labels.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertFile {
    pub(crate) path: At<String>,
    /// `pem` (default), `der`, `pkcs12` or `kubeconfig`.
    pub(crate) format: Option<At<String>>,
    pub(crate) password_file: Option<At<String>>,
    /// How often the files are re-read (default: `global.interval`).
    pub(crate) interval: Option<At<String>>,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, At<String>>,
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
    /// `http://`, `socks5://` or `socks5h://` proxy for every target without its own.
    pub(crate) proxy_url: Option<At<String>>,
    /// `off` (default), `ocsp`, `crl` or `all`: what targets without their own ask.
    pub(crate) revocation: Option<At<String>>,
    /// Bytes of one CRL download at most (the cache is shared, so the bound is too).
    pub(crate) revocation_max_crl_size: Option<At<u64>>,
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
    /// The module (in `modules:`) whose settings this target's own fields override.
    pub(crate) module: Option<At<String>>,
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
    /// The proxy this target's connections go through (overrides `global.proxy_url`).
    pub(crate) proxy_url: Option<At<String>>,
    /// `off`, `ocsp`, `crl` or `all` (see `revocation::Mode`).
    pub(crate) revocation: Option<At<String>>,
    /// A certificate file holding the leaf this target should serve ("renewed but never
    /// deployed").
    pub(crate) expect_cert_file: Option<At<String>>,
    /// Label values carry the position used for errors about their names too.
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, At<String>>,
    /// `true` fetches a missing issuer from the AIA caIssuers URL (`tls_chain_valid_with_aia`).
    pub(crate) aia_fetch: Option<At<bool>>,
}

/// One entry of `modules:`: every per-target setting, all optional, merged field by field under
/// a target's own (see `modules.rs`). A new per-target setting is added here as well as to
/// `RawTarget`; the compiler then points at the rest (`modules::merge`, `salvage`'s `Shift`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModule {
    pub(crate) server_name: Option<At<String>>,
    pub(crate) ca_file: Option<At<String>>,
    pub(crate) client_cert_file: Option<At<String>>,
    pub(crate) client_key_file: Option<At<String>>,
    pub(crate) interval: Option<At<String>>,
    pub(crate) timeout: Option<At<String>>,
    pub(crate) ip_protocol: Option<At<String>>,
    pub(crate) resolve: Option<At<String>>,
    pub(crate) probe: Option<At<String>>,
    pub(crate) starttls: Option<At<String>>,
    pub(crate) http: Option<RawHttp>,
    pub(crate) scan_interval: Option<At<String>>,
    pub(crate) scan: Option<At<bool>>,
    pub(crate) proxy_url: Option<At<String>>,
    pub(crate) revocation: Option<At<String>>,
    pub(crate) aia_fetch: Option<At<bool>>,
    // Not a target setting: the `/probe` output format when `&format=` is absent.
    pub(crate) output: Option<At<String>>,
}

/// `adhoc_probes:`: what an ad-hoc `/probe` target may be; each list, when given, must allow it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdhocRules {
    pub(crate) modules: Option<Vec<At<String>>>,
    pub(crate) hosts: Option<Vec<At<String>>>,
    pub(crate) cidrs: Option<Vec<At<String>>>,
    pub(crate) ports: Option<Vec<At<u16>>>,
}
