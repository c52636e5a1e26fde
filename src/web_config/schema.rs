//! The web config file as written: serde structs mirroring the exporter-toolkit YAML, with
//! `deny_unknown_fields` and serde-saphyr `Spanned` wherever a later rule may reject a value.
//! Nothing here judges a value; `convert` does, and reports where.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::Problem;

/// The whole file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) tls_server_config: Option<Spanned<RawTls>>,
    pub(super) http_server_config: Option<RawHttp>,
    pub(super) basic_auth_users: Option<BTreeMap<String, Spanned<String>>>,
    /// Valid in the toolkit, not implemented here: rejected with a clear message.
    pub(super) rate_limit: Option<Spanned<serde::de::IgnoredAny>>,
}

/// `tls_server_config`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) cert: Option<Spanned<String>>,
    pub(super) key: Option<Spanned<String>>,
    pub(super) client_ca: Option<Spanned<String>>,
    pub(super) cert_file: Option<Spanned<String>>,
    pub(super) key_file: Option<Spanned<String>>,
    pub(super) client_auth_type: Option<Spanned<String>>,
    pub(super) client_ca_file: Option<Spanned<String>>,
    pub(super) client_allowed_sans: Option<Spanned<Vec<String>>>,
    pub(super) min_version: Option<Spanned<String>>,
    pub(super) max_version: Option<Spanned<String>>,
    pub(super) cipher_suites: Option<Vec<Spanned<String>>>,
    pub(super) prefer_server_cipher_suites: Option<bool>,
    pub(super) curve_preferences: Option<Vec<Spanned<String>>>,
}

/// `http_server_config`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub(super) http2: Option<Spanned<bool>>,
    pub(super) headers: Option<BTreeMap<String, Spanned<String>>>,
}

/// serde-saphyr parse; a structural error becomes one problem with its field path (the same
/// rendering as the main config's).
pub(super) fn parse_yaml(text: &str) -> Result<RawWeb, Problem> {
    crate::config::parse_as(text, "")
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{dir_with_pki, errors};

    #[test]
    fn unknown_field_names_its_line_and_path() {
        let dir = dir_with_pki();
        let e = errors(
            &dir,
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  kye: x\n",
        );
        assert_eq!(
            e,
            vec!["DIR/web.yml:4:3: tls_server_config.kye: unknown field `kye`, expected one of cert, key, client_ca, cert_file, key_file, client_auth_type, client_ca_file, client_allowed_sans, min_version, max_version, cipher_suites, prefer_server_cipher_suites, curve_preferences"]
        );
    }
}
