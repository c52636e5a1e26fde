//! From the file as written (`schema`) to a [`WebConfig`]: every rule of the web config
//! checked, every problem collected with its line, column and field path, and every file the
//! config names read (relative to the config's directory). What TLS names mean to rustls is
//! `tls_policy`'s, the client-certificate verifiers are `client_auth`'s and what makes a hash
//! acceptable is `basic_auth`'s; this file says where in the file a problem is.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_saphyr::{Location, Spanned};

use super::basic_auth::{check_bcrypt, BasicAuth, Secret};
use super::client_auth::{self, ClientAuth};
use super::schema::{RawHttp, RawTls, RawWeb};
use super::tls_policy::{self, BuildError, Identity, Version, Versions};
use super::{Tls, WebConfig};
use crate::config::Problem;

/// Headers `http_server_config.headers` may set, with their allowed values (any when empty);
/// the exporter toolkit's list.
const ALLOWED_HEADERS: [(&str, &[&str]); 5] = [
    ("Content-Security-Policy", &[]),
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
];

/// The web config of `raw`, read from `path`; otherwise every problem, in file order.
pub(super) fn convert(raw: RawWeb, path: &Path) -> Result<WebConfig, Vec<Problem>> {
    let mut conv = Converter {
        base: path.parent().unwrap_or(Path::new(".")),
        problems: Vec::new(),
    };
    let web = conv.web(raw, path);
    if conv.problems.is_empty() {
        Ok(web)
    } else {
        conv.problems.sort_by_key(|p| (p.line, p.column));
        conv.problems.dedup();
        Err(conv.problems)
    }
}

/// The conversion's state: where relative files are, and the problems found so far.
struct Converter<'a> {
    base: &'a Path,
    problems: Vec<Problem>,
}

/// A problem was recorded in `Converter::problems`; the caller gives up on the value.
struct Reported;

/// A PEM source: a file (`*_file`) or inline text, with how to name it in messages.
struct Pem<'s> {
    span: &'s Spanned<String>,
    field: &'static str,
    /// Inline PEM text is never echoed; files are named.
    inline: bool,
}

impl Pem<'_> {
    fn name(&self) -> String {
        if self.inline {
            format!("inline {}", self.field)
        } else {
            self.span.value.clone()
        }
    }
}

/// The sections.
impl Converter<'_> {
    fn web(&mut self, raw: RawWeb, path: &Path) -> WebConfig {
        if let Some(r) = &raw.rate_limit {
            self.problem(r, "rate_limit", "not supported by tls_exporter");
        }
        let tls = raw.tls_server_config.and_then(|t| self.tls(t));
        let headers = raw
            .http_server_config
            .map(|h| self.http(h))
            .unwrap_or_default();
        let auth = raw.basic_auth_users.and_then(|u| self.users(u));
        WebConfig {
            path: path.to_path_buf(),
            tls,
            auth: auth.map(Arc::new),
            headers: Arc::new(headers),
        }
    }

    fn users(&mut self, raw: BTreeMap<String, Spanned<String>>) -> Option<BasicAuth> {
        let mut users = HashMap::new();
        for (user, hash) in raw {
            let field = format!("basic_auth_users.{user}");
            if user.is_empty() {
                self.problem(&hash, "basic_auth_users", "user names must not be empty");
            } else if user.contains(':') {
                self.problem(&hash, &field, "user names cannot contain ':' in basic auth");
            } else if let Err(why) = check_bcrypt(&hash.value) {
                self.problem(
                    &hash,
                    &field,
                    format!(
                        "not a bcrypt hash ({why}); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
                    ),
                );
            } else {
                users.insert(user, Secret(hash.value));
            }
        }
        BasicAuth::new(users)
    }

    fn http(&mut self, raw: RawHttp) -> Vec<(HeaderName, HeaderValue)> {
        if let Some(h2) = raw.http2.as_ref().filter(|h| h.value) {
            self.problem(
                h2,
                "http_server_config.http2",
                "HTTP/2 is not supported by tls_exporter; remove the setting or set it to false",
            );
        }
        raw.headers
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, value)| self.header(&name, &value))
            .collect()
    }

    /// One of `http_server_config.headers`; `None` when refused or blank (unset, as in the
    /// toolkit).
    fn header(&mut self, name: &str, value: &Spanned<String>) -> Option<(HeaderName, HeaderValue)> {
        let field = format!("http_server_config.headers.{name}");
        let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
            self.problem(
                value,
                &field,
                format!(
                    "header {name:?} can not be configured; allowed: {}",
                    names.join(", ")
                ),
            );
            return None;
        };
        if value.value.is_empty() {
            return None;
        }
        if !allowed.is_empty() && !allowed.contains(&value.value.as_str()) {
            self.problem(
                value,
                &field,
                format!(
                    "invalid value {:?}; expected one of: {}",
                    value.value,
                    allowed.join(", ")
                ),
            );
            return None;
        }
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value.value),
        ) {
            (Ok(n), Ok(v)) => Some((n, v)),
            _ => {
                self.problem(value, &field, "not a valid HTTP header value");
                None
            }
        }
    }

    /// `tls_server_config`: every part checked (so that all problems are reported at once),
    /// then the rustls config built from them.
    fn tls(&mut self, raw: Spanned<RawTls>) -> Option<Tls> {
        let at = raw.referenced;
        let t = raw.value;
        let before = self.problems.len();
        let cert = self.either(&t.cert, &t.cert_file, "cert", "cert_file", true, at);
        let key = self.either(&t.key, &t.key_file, "key", "key_file", true, at);
        let client_ca = self.either(
            &t.client_ca,
            &t.client_ca_file,
            "client_ca",
            "client_ca_file",
            false,
            at,
        );
        let chain = cert.and_then(|c| self.chain(&c));
        let private = key.as_ref().and_then(|k| self.private_key(k));
        let auth = self.client_auth(&t, client_ca.as_ref(), at);
        let versions = self.versions(&t);
        let provider = self.provider(&t);
        if self.problems.len() > before {
            return None;
        }
        let (chain, private, (auth_kind, verifier), versions, provider, key) =
            (chain?, private?, auth?, versions?, provider?, key?);
        let identity = Identity {
            chain,
            key: private,
        };
        let prefer_server_order = t.prefer_server_cipher_suites.unwrap_or(true);
        let config =
            tls_policy::server_config(provider, &versions, verifier, identity, prefer_server_order)
                .map_err(|e| self.build_problem(&t, at, &key, e))
                .ok()?;
        Some(Tls {
            config: Arc::new(config),
            summary: format!("{}, client_auth_type={auth_kind}", versions.describe()),
        })
    }

    /// Reports why rustls refused parts that each looked fine.
    fn build_problem(&mut self, t: &RawTls, at: Location, key: &Pem<'_>, e: BuildError) {
        match e {
            BuildError::Versions(e) => self.problem(
                &t.min_version.clone().unwrap_or_else(|| span_at(at)),
                "tls_server_config",
                format!("no usable cipher suite for these TLS versions: {e}"),
            ),
            BuildError::KeyMismatch => {
                let cert_name = match (&t.cert_file, &t.cert) {
                    (Some(f), _) => f.value.clone(),
                    _ => "inline cert".to_string(),
                };
                let msg = format!(
                    "{} is not the private key of the certificate in {cert_name}",
                    key.name()
                );
                self.problem(key.span, &field_path(key.field), msg);
            }
            BuildError::Key(e) => self.problem(
                key.span,
                &field_path(key.field),
                format!("{}: unusable private key: {e}", key.name()),
            ),
        }
    }
}

/// PEM sources: certificates and keys.
impl Converter<'_> {
    /// The one of `inline` and `file` that is set; both or (when `required`) neither is a
    /// problem.
    fn either<'s>(
        &mut self,
        inline: &'s Option<Spanned<String>>,
        file: &'s Option<Spanned<String>>,
        inline_name: &'static str,
        file_name: &'static str,
        required: bool,
        at: Location,
    ) -> Option<Pem<'s>> {
        match (inline, file) {
            (Some(_), Some(f)) => {
                self.problem(
                    f,
                    &field_path(file_name),
                    format!("set either {inline_name} or {file_name}, not both"),
                );
                None
            }
            (Some(s), None) => Some(Pem {
                span: s,
                field: inline_name,
                inline: true,
            }),
            (None, Some(s)) => Some(Pem {
                span: s,
                field: file_name,
                inline: false,
            }),
            (None, None) => {
                if required {
                    self.problem(
                        &span_at(at),
                        "tls_server_config",
                        format!("{file_name} (or {inline_name}) is required"),
                    );
                }
                None
            }
        }
    }

    /// The server's certificate chain from `pem`.
    fn chain(&mut self, pem: &Pem<'_>) -> Option<Vec<CertificateDer<'static>>> {
        let bytes = self.bytes(pem)?;
        self.certs(&bytes, pem)
    }

    fn private_key(&mut self, pem: &Pem<'_>) -> Option<PrivateKeyDer<'static>> {
        let bytes = self.bytes(pem)?;
        match PrivateKeyDer::from_pem_slice(&bytes) {
            Ok(key) => Some(key),
            Err(_) => {
                // The parser's detail may quote key material: say only what was expected.
                self.problem(
                    pem.span,
                    &field_path(pem.field),
                    format!(
                        "{}: no usable private key (expected an unencrypted PKCS#8, PKCS#1 or SEC1 PEM key)",
                        pem.name()
                    ),
                );
                None
            }
        }
    }

    fn bytes(&mut self, pem: &Pem<'_>) -> Option<Vec<u8>> {
        if pem.inline {
            return Some(pem.span.value.as_bytes().to_vec());
        }
        let path = resolve(self.base, &pem.span.value);
        crate::config::read::read_bounded(&path, crate::config::read::PEM_LIMIT)
            .map_err(|e| self.problem(pem.span, &field_path(pem.field), e.to_string()))
            .ok()
    }

    fn certs(&mut self, bytes: &[u8], pem: &Pem<'_>) -> Option<Vec<CertificateDer<'static>>> {
        let parsed: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(bytes).collect();
        let message = match parsed {
            Ok(certs) if !certs.is_empty() => return Some(certs),
            Ok(_) => format!("{}: no PEM certificates found", pem.name()),
            Err(e) => format!("{}: invalid PEM: {e}", pem.name()),
        };
        self.problem(pem.span, &field_path(pem.field), message);
        None
    }
}

/// Client certificates: `client_auth_type`, the client CA and `client_allowed_sans`.
impl Converter<'_> {
    /// The client-certificate policy and its verifier; `None` when a problem was reported.
    fn client_auth(
        &mut self,
        t: &RawTls,
        ca: Option<&Pem<'_>>,
        at: Location,
    ) -> Option<(&'static str, Arc<dyn ClientCertVerifier>)> {
        let kind = self.client_auth_kind(t)?;
        let type_span = t.client_auth_type.clone().unwrap_or_else(|| span_at(at));
        let roots = self.client_roots(kind, ca, &type_span).ok()?;
        let sans = self.allowed_sans(t, kind).ok()?;
        match client_auth::verifier(kind, roots, sans) {
            Ok(v) => Some((kind.name(), v)),
            Err(e) => {
                match ca {
                    Some(ca) => self.problem(
                        ca.span,
                        &field_path(ca.field),
                        format!("{}: {e}", ca.name()),
                    ),
                    None => self.problem(
                        &type_span,
                        "tls_server_config.client_auth_type",
                        format!("{}: {e}", kind.name()),
                    ),
                }
                None
            }
        }
    }

    fn client_auth_kind(&mut self, t: &RawTls) -> Option<ClientAuth> {
        let Some(s) = &t.client_auth_type else {
            return Some(ClientAuth::NoClientCert);
        };
        let kind = ClientAuth::parse(&s.value);
        if kind.is_none() {
            self.problem(
                s,
                "tls_server_config.client_auth_type",
                format!(
                    "unknown client auth type {:?}; expected one of: NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert",
                    s.value
                ),
            );
        }
        kind
    }

    /// The client CA's certificates as trust anchors, when `kind` goes with a CA.
    fn client_roots(
        &mut self,
        kind: ClientAuth,
        ca: Option<&Pem<'_>>,
        type_span: &Spanned<String>,
    ) -> Result<Option<Arc<RootCertStore>>, Reported> {
        match (ca, kind) {
            (Some(ca), ClientAuth::NoClientCert) => {
                self.problem(
                    ca.span,
                    &field_path(ca.field),
                    "a client CA is set but client_auth_type is NoClientCert; set client_auth_type (RequireAndVerifyClientCert to verify client certificates)",
                );
                Err(Reported)
            }
            (None, kind) if kind.verifies() => {
                self.problem(
                    type_span,
                    "tls_server_config.client_auth_type",
                    format!(
                        "{} verifies client certificates and needs client_ca_file (or client_ca)",
                        kind.name()
                    ),
                );
                Err(Reported)
            }
            (Some(ca), _) => self.anchors(ca).map(Some),
            (None, _) => Ok(None),
        }
    }

    fn anchors(&mut self, ca: &Pem<'_>) -> Result<Arc<RootCertStore>, Reported> {
        let bytes = self.bytes(ca).ok_or(Reported)?;
        let certs = self.certs(&bytes, ca).ok_or(Reported)?;
        let mut store = RootCertStore::empty();
        for c in certs {
            if let Err(e) = store.add(c) {
                self.problem(
                    ca.span,
                    &field_path(ca.field),
                    format!("{}: unusable CA certificate: {e}", ca.name()),
                );
                return Err(Reported);
            }
        }
        Ok(Arc::new(store))
    }

    fn allowed_sans(
        &mut self,
        t: &RawTls,
        kind: ClientAuth,
    ) -> Result<Option<Vec<String>>, Reported> {
        match &t.client_allowed_sans {
            Some(s) if !kind.requires_cert() => {
                self.problem(
                    s,
                    "tls_server_config.client_allowed_sans",
                    "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert",
                );
                Err(Reported)
            }
            Some(s) => Ok(Some(s.value.clone())),
            None => Ok(None),
        }
    }
}

/// TLS policy: versions, cipher suites and curves.
impl Converter<'_> {
    fn versions(&mut self, t: &RawTls) -> Option<Versions> {
        let min = self.version(
            t.min_version.as_ref(),
            Version::Tls12,
            "tls_server_config.min_version",
        );
        let max = self.version(
            t.max_version.as_ref(),
            Version::Tls13,
            "tls_server_config.max_version",
        );
        let (min, max) = (min?, max?);
        if min > max {
            let span = t.min_version.as_ref().or(t.max_version.as_ref())?;
            self.problem(
                span,
                "tls_server_config.min_version",
                format!("{} is higher than max_version {}", min.name(), max.name()),
            );
            return None;
        }
        Some(Versions { min, max })
    }

    /// The version written at `s`, `default` when unset.
    fn version(
        &mut self,
        s: Option<&Spanned<String>>,
        default: Version,
        field: &str,
    ) -> Option<Version> {
        let Some(s) = s else {
            return Some(default);
        };
        Version::parse(&s.value)
            .map_err(|why| self.problem(s, field, why))
            .ok()
    }

    /// The aws-lc-rs provider narrowed to the configured TLS 1.2 suites and curves.
    fn provider(&mut self, t: &RawTls) -> Option<CryptoProvider> {
        let before = self.problems.len();
        let suites = t
            .cipher_suites
            .as_deref()
            .filter(|n| !n.is_empty())
            .map(|names| {
                self.lookup(
                    names,
                    "tls_server_config.cipher_suites",
                    tls_policy::tls12_suite,
                )
            });
        let groups = t
            .curve_preferences
            .as_deref()
            .filter(|n| !n.is_empty())
            .map(|names| {
                self.lookup(
                    names,
                    "tls_server_config.curve_preferences",
                    tls_policy::kx_group,
                )
            });
        (self.problems.len() == before).then(|| tls_policy::provider(suites, groups))
    }

    /// What each of `names` stands for; a name `find` does not know is a problem at it.
    fn lookup<T>(
        &mut self,
        names: &[Spanned<String>],
        field: &str,
        find: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<T> {
        let mut found = Vec::new();
        for name in names {
            match find(&name.value) {
                Ok(v) => found.push(v),
                Err(why) => self.problem(name, field, why),
            }
        }
        found
    }
}

/// Recording problems.
impl Converter<'_> {
    fn problem<T>(&mut self, at: &Spanned<T>, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            line: at.referenced.line(),
            column: at.referenced.column(),
            field: field.to_string(),
            message: message.into(),
        });
    }
}

fn field_path(field: &str) -> String {
    format!("tls_server_config.{field}")
}

/// A span to report a problem of a whole section at.
fn span_at(at: Location) -> Spanned<String> {
    Spanned::new(String::new(), at, at)
}

fn resolve(base: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{cert_and_key, dir_with_pki, errors, ok};

    #[test]
    fn missing_key_file_is_reported_at_the_tls_section() {
        let dir = dir_with_pki();
        let e = errors(&dir, "tls_server_config:\n  cert_file: cert.pem\n");
        assert_eq!(
            e,
            vec!["DIR/web.yml:2:3: tls_server_config: key_file (or key) is required"]
        );
    }

    #[test]
    fn mismatched_key_is_refused() {
        let dir = dir_with_pki();
        let (_, other_key) = cert_and_key("other");
        std::fs::write(dir.path().join("other.key"), other_key).expect("write");
        let e = errors(
            &dir,
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: other.key\n",
        );
        assert_eq!(
            e,
            vec!["DIR/web.yml:3:13: tls_server_config.key_file: other.key is not the private key of the certificate in cert.pem"]
        );
    }

    #[test]
    fn broken_pem_and_unreadable_files_are_refused() {
        let dir = dir_with_pki();
        std::fs::write(dir.path().join("garbage.pem"), "hello\n").expect("write");
        let e = errors(
            &dir,
            "tls_server_config:\n  cert_file: garbage.pem\n  key_file: missing.key\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(
            e[0],
            "DIR/web.yml:2:14: tls_server_config.cert_file: garbage.pem: no PEM certificates found"
        );
        assert!(
            e[1].starts_with(
                "DIR/web.yml:3:13: tls_server_config.key_file: cannot read DIR/missing.key: "
            ),
            "{e:?}"
        );
    }

    #[test]
    fn verifying_client_auth_needs_a_ca() {
        let dir = dir_with_pki();
        let e = errors(
            &dir,
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
        );
        assert_eq!(
            e,
            vec!["DIR/web.yml:4:21: tls_server_config.client_auth_type: RequireAndVerifyClientCert verifies client certificates and needs client_ca_file (or client_ca)"]
        );
    }

    #[test]
    fn client_ca_without_policy_is_refused() {
        let dir = dir_with_pki();
        let e = errors(
            &dir,
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_ca_file: cert.pem\n",
        );
        assert_eq!(
            e,
            vec!["DIR/web.yml:4:19: tls_server_config.client_ca_file: a client CA is set but client_auth_type is NoClientCert; set client_auth_type (RequireAndVerifyClientCert to verify client certificates)"]
        );
    }

    #[test]
    fn verified_client_auth_with_a_ca_loads() {
        let dir = dir_with_pki();
        let w = ok(
            &dir,
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: cert.pem\n  client_allowed_sans: [scraper]\n  min_version: TLS13\n",
        );
        assert_eq!(
            format!("{w:?}"),
            format!(
                "WebConfig {{ path: {:?}, tls: Some(\"TLS13..TLS13, client_auth_type=RequireAndVerifyClientCert\"), basic_auth: None, headers: [] }}",
                dir.path().join("web.yml")
            )
        );
    }

    #[test]
    fn unsupported_toolkit_settings_say_so() {
        let dir = dir_with_pki();
        let e = errors(
            &dir,
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version: TLS11\n  curve_preferences: [CurveP521]\n  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\nhttp_server_config:\n  http2: true\nrate_limit:\n  interval: 1s\n",
        );
        assert_eq!(e.len(), 5, "{e:?}");
        assert_eq!(e[0], "DIR/web.yml:4:16: tls_server_config.min_version: TLS11 is not supported by tls_exporter (rustls implements TLS12 and TLS13)");
        assert_eq!(e[1], "DIR/web.yml:5:23: tls_server_config.curve_preferences: CurveP521 is not supported by tls_exporter (rustls has no P-521 key exchange)");
        assert!(e[2].starts_with("DIR/web.yml:6:19: tls_server_config.cipher_suites: cipher suite \"TLS_RSA_WITH_AES_128_CBC_SHA\" is not supported by tls_exporter; supported: TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "), "{e:?}");
        assert_eq!(e[3], "DIR/web.yml:8:10: http_server_config.http2: HTTP/2 is not supported by tls_exporter; remove the setting or set it to false");
        assert_eq!(
            e[4],
            "DIR/web.yml:10:3: rate_limit: not supported by tls_exporter"
        );
    }

    #[test]
    fn only_toolkit_headers_may_be_set() {
        let dir = dir_with_pki();
        let e = errors(
            &dir,
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n    Server: me\n",
        );
        assert_eq!(
            e,
            vec![
                "DIR/web.yml:3:22: http_server_config.headers.X-Frame-Options: invalid value \"allow\"; expected one of: deny, sameorigin",
                "DIR/web.yml:4:13: http_server_config.headers.Server: header \"Server\" can not be configured; allowed: Content-Security-Policy, Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, X-XSS-Protection",
            ]
        );
    }
}
