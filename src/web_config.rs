//! `--web.config.file`: TLS and basic auth for the exporter's own listener, in the Prometheus
//! exporter-toolkit format (`tls_server_config`, `http_server_config`, `basic_auth_users`).
//!
//! `load` parses the YAML, reads every file it names and builds the rustls server config once,
//! collecting every problem with file, line, column and field like `config` does. `serve` runs
//! the router on a listener: plain `axum::serve` without a web config, a rustls accept loop with
//! one. Secrets (private keys, bcrypt hashes, passwords) never reach a log line, an error or a
//! `Debug` rendering. Routes, and when to shut down, are left to the caller.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedCipherSuite,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::{render_problems as render, Problem};

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers (slow-loris bound).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Successful basic-auth verifications remembered at most; the cache is emptied beyond.
const VERIFIED_CACHE_MAX: usize = 1024;
/// The realm in `WWW-Authenticate`.
const REALM: &str = "Basic realm=\"tls_exporter\"";
/// Headers `http_server_config.headers` may set, with their allowed values (any when empty);
/// the exporter toolkit's list.
const ALLOWED_HEADERS: [(&str, &[&str]); 5] = [
    ("Content-Security-Policy", &[]),
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
];

/// A loaded, validated web config: what the listener needs, built once.
pub struct WebConfig {
    pub path: PathBuf,
    tls: Option<Tls>,
    auth: Option<Arc<BasicAuth>>,
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
}

struct Tls {
    config: Arc<ServerConfig>,
    /// For `Debug` and the startup log: versions and client auth, never key material.
    summary: String,
}

impl WebConfig {
    /// True when the listener speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// True when every request needs basic-auth credentials.
    pub fn basic_auth(&self) -> bool {
        self.auth.is_some()
    }

    /// The router with basic auth and the configured response headers applied to every route.
    pub(crate) fn apply(&self, app: Router) -> Router {
        let app = match &self.auth {
            Some(auth) => app.layer(middleware::from_fn_with_state(
                auth.clone(),
                require_basic_auth,
            )),
            None => app,
        };
        if self.headers.is_empty() {
            app
        } else {
            // Outermost, so that 401 answers carry the headers too.
            app.layer(middleware::map_response_with_state(
                self.headers.clone(),
                add_headers,
            ))
        }
    }
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("tls", &self.tls.as_ref().map(|t| t.summary.as_str()))
            .field("basic_auth", &self.auth)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why a web config file could not be loaded. Messages name files and fields, never secrets.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("read web config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found in the file, in file order.
    #[error("{}", render(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// Reads and validates the web config file at `path`; relative file names in it are relative to
/// its directory.
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Validates web config text; `path` names the file in errors and anchors relative file names.
pub fn parse(text: &str, path: &Path) -> Result<WebConfig, WebConfigError> {
    let invalid = |problems| WebConfigError::Invalid {
        path: path.to_path_buf(),
        problems,
    };
    // An empty file is valid in the toolkit: no TLS, no auth.
    let raw = if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        RawWeb::default()
    } else {
        parse_yaml(text).map_err(|p| invalid(vec![p]))?
    };
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
        Err(invalid(conv.problems))
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and lets
/// in-flight connections finish (the caller bounds how long it waits for this future).
///
/// Without a web config this is `axum::serve`. With one, basic auth and response headers wrap
/// every route, and with TLS each connection is handshaken (bounded by a timeout; failures are
/// logged at debug and never stop the listener) and then served over HTTP/1.1.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    web: Option<Arc<WebConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(web) = web else {
        return axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    };
    let app = web.apply(app);
    match &web.tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => serve_tls(listener, app, tls.config.clone(), shutdown).await,
    }
}

/// The rustls accept loop: one task per connection, each watched for graceful shutdown.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    config: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let service = hyper_util::service::TowerToHyperService::new(app);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Tells connections still handshaking to give up: they hold no request yet.
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: transient; don't spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Taken before the handshake, so that shutdown waits for this connection too.
        let watcher = graceful.watcher();
        tokio::spawn(serve_connection(
            tcp,
            peer,
            acceptor.clone(),
            service.clone(),
            watcher,
            stopping.clone(),
        ));
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    graceful.shutdown().await;
    Ok(())
}

/// One TLS connection: a bounded handshake, then HTTP/1.1 until the peer or shutdown ends it.
/// Failures are the peer's business: logged at debug, never propagated.
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    service: hyper_util::service::TowerToHyperService<Router>,
    watcher: hyper_util::server::graceful::Watcher,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};

    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(peer = %peer, error = %e, "tls handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(peer = %peer, timeout = ?HANDSHAKE_TIMEOUT, "tls handshake timed out");
                return;
            }
        },
        _ = stopping.wait_for(|s| *s) => return,
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}

// ---------------------------------------------------------------------------------------------
// Basic auth

/// Users and their bcrypt hashes, plus the verifications that succeeded.
struct BasicAuth {
    users: HashMap<String, Secret>,
    /// SHA-256 of `user:password` for credentials that verified: bcrypt costs ~70 ms at cost
    /// 10, too much to pay on every scrape.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut users: Vec<&str> = self.users.keys().map(String::as_str).collect();
        users.sort_unstable();
        f.debug_struct("BasicAuth")
            .field("users", &users)
            .finish_non_exhaustive()
    }
}

/// A secret string (bcrypt hash): `Debug` shows nothing of it.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl BasicAuth {
    /// True when `header` carries the credentials of a configured user.
    async fn check(&self, header: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = header.and_then(decode_basic) else {
            return false;
        };
        let key = cache_key(&user, &password);
        if self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&key)
        {
            return true;
        }
        // An unknown user costs the same as a wrong password: verify against some configured
        // hash and discard the answer, so that timing does not reveal which users exist.
        let (hash, known) = match self.users.get(&user) {
            Some(h) => (h.clone(), true),
            None => match self.users.values().next() {
                Some(h) => (h.clone(), false),
                None => return false,
            },
        };
        let verified = tokio::task::spawn_blocking(move || {
            bcrypt::verify(&password, &hash.0).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if verified && known {
            let mut cache = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= VERIFIED_CACHE_MAX {
                cache.clear();
            }
            cache.insert(key);
        }
        verified && known
    }
}

async fn require_basic_auth(
    State(auth): State<Arc<BasicAuth>>,
    req: Request,
    next: Next,
) -> Response {
    if auth.check(req.headers().get(AUTHORIZATION)).await {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(WWW_AUTHENTICATE, HeaderValue::from_static(REALM))],
        "Unauthorized\n",
    )
        .into_response()
}

async fn add_headers(
    State(headers): State<Arc<Vec<(HeaderName, HeaderValue)>>>,
    mut resp: Response,
) -> Response {
    for (name, value) in headers.iter() {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// `Basic base64(user:password)` → (user, password); `None` when malformed.
fn decode_basic(value: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let value = value.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(decoded.get(..colon)?).ok()?.to_string();
    let password = decoded.get(colon + 1..)?.to_vec();
    Some((user, password))
}

/// User names contain no `:`, so `user:password` is unambiguous.
fn cache_key(user: &str, password: &[u8]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(user.as_bytes());
    ctx.update(b":");
    ctx.update(password);
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

// ---------------------------------------------------------------------------------------------
// The file as written

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    tls_server_config: Option<Spanned<RawTls>>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, Spanned<String>>>,
    /// Valid in the toolkit, not implemented here: rejected with a clear message.
    rate_limit: Option<Spanned<serde::de::IgnoredAny>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    client_ca: Option<Spanned<String>>,
    cert_file: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    client_auth_type: Option<Spanned<String>>,
    client_ca_file: Option<Spanned<String>>,
    client_allowed_sans: Option<Spanned<Vec<String>>>,
    min_version: Option<Spanned<String>>,
    max_version: Option<Spanned<String>>,
    cipher_suites: Option<Vec<Spanned<String>>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<Spanned<bool>>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
}

/// serde-saphyr parse; a structural error becomes one problem with its field path (the same
/// rendering as the main config's).
fn parse_yaml(text: &str) -> Result<RawWeb, Problem> {
    crate::config::parse_as(text, "")
}

// ---------------------------------------------------------------------------------------------
// Conversion

struct Converter<'a> {
    base: &'a Path,
    problems: Vec<Problem>,
}

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
        (!users.is_empty()).then(|| BasicAuth {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    fn http(&mut self, raw: RawHttp) -> Vec<(HeaderName, HeaderValue)> {
        if let Some(h2) = raw.http2.as_ref().filter(|h| h.value) {
            self.problem(
                h2,
                "http_server_config.http2",
                "HTTP/2 is not supported by tls_exporter; remove the setting or set it to false",
            );
        }
        let mut out = Vec::new();
        for (name, value) in raw.headers.unwrap_or_default() {
            let field = format!("http_server_config.headers.{name}");
            let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
                self.problem(
                    &value,
                    &field,
                    format!(
                        "header {name:?} can not be configured; allowed: {}",
                        names.join(", ")
                    ),
                );
                continue;
            };
            // Blank means unset, as in the toolkit.
            if value.value.is_empty() {
                continue;
            }
            if !allowed.is_empty() && !allowed.contains(&value.value.as_str()) {
                self.problem(
                    &value,
                    &field,
                    format!(
                        "invalid value {:?}; expected one of: {}",
                        value.value,
                        allowed.join(", ")
                    ),
                );
                continue;
            }
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value.value),
            ) {
                (Ok(n), Ok(v)) => out.push((n, v)),
                _ => self.problem(&value, &field, "not a valid HTTP header value"),
            }
        }
        out
    }

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
        let chain = cert.and_then(|c| {
            let bytes = self.bytes(&c)?;
            self.certs(&bytes, &c)
        });
        let private = key.as_ref().and_then(|k| {
            let bytes = self.bytes(k)?;
            match PrivateKeyDer::from_pem_slice(&bytes) {
                Ok(key) => Some(key),
                Err(_) => {
                    // The parser's detail may quote key material: say only what was expected.
                    self.problem(
                        k.span,
                        &field_path(k.field),
                        format!(
                            "{}: no usable private key (expected an unencrypted PKCS#8, PKCS#1 or SEC1 PEM key)",
                            k.name()
                        ),
                    );
                    None
                }
            }
        });
        let auth = self.client_auth(&t, client_ca.as_ref(), at);
        let versions = self.versions(&t);
        let provider = self.provider(&t);
        if self.problems.len() > before {
            return None;
        }
        let (chain, private, (auth_kind, verifier), versions, provider) =
            (chain?, private?, auth?, versions?, provider?);
        let key = key?;
        let builder = ServerConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&versions.list())
            .map_err(|e| {
                self.problem(
                    &t.min_version.clone().unwrap_or_else(|| span_at(at)),
                    "tls_server_config",
                    format!("no usable cipher suite for these TLS versions: {e}"),
                )
            })
            .ok()?;
        let mut config = match builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, private)
        {
            Ok(c) => c,
            Err(rustls::Error::InconsistentKeys(_)) => {
                let cert_name = match (&t.cert_file, &t.cert) {
                    (Some(f), _) => f.value.clone(),
                    _ => "inline cert".to_string(),
                };
                let msg = format!(
                    "{} is not the private key of the certificate in {cert_name}",
                    key.name()
                );
                self.problem(key.span, &field_path(key.field), msg);
                return None;
            }
            Err(e) => {
                self.problem(
                    key.span,
                    &field_path(key.field),
                    format!("{}: unusable private key: {e}", key.name()),
                );
                return None;
            }
        };
        config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
        // Prometheus speaks HTTP/1.1 to us; hyper here is built without HTTP/2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some(Tls {
            config: Arc::new(config),
            summary: format!("{}, client_auth_type={auth_kind}", versions.describe()),
        })
    }

    /// The one of `inline` and `file` that is set; both or (when `required`) neither is a
    /// problem.
    fn either<'s>(
        &mut self,
        inline: &'s Option<Spanned<String>>,
        file: &'s Option<Spanned<String>>,
        inline_name: &'static str,
        file_name: &'static str,
        required: bool,
        at: serde_saphyr::Location,
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

    fn bytes(&mut self, pem: &Pem<'_>) -> Option<Vec<u8>> {
        if pem.inline {
            return Some(pem.span.value.as_bytes().to_vec());
        }
        let path = resolve(self.base, &pem.span.value);
        std::fs::read(&path)
            .map_err(|e| {
                self.problem(
                    pem.span,
                    &field_path(pem.field),
                    format!("cannot read {}: {e}", path.display()),
                )
            })
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

    /// The client-certificate policy and its verifier; `None` when a problem was reported.
    fn client_auth(
        &mut self,
        t: &RawTls,
        ca: Option<&Pem<'_>>,
        at: serde_saphyr::Location,
    ) -> Option<(&'static str, Arc<dyn ClientCertVerifier>)> {
        let kind = match &t.client_auth_type {
            None => ClientAuth::NoClientCert,
            Some(s) => match ClientAuth::parse(&s.value) {
                Some(k) => k,
                None => {
                    self.problem(
                        s,
                        "tls_server_config.client_auth_type",
                        format!(
                            "unknown client auth type {:?}; expected one of: NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert",
                            s.value
                        ),
                    );
                    return None;
                }
            },
        };
        let type_span = t.client_auth_type.clone().unwrap_or_else(|| span_at(at));
        let roots = match (ca, kind) {
            (Some(ca), ClientAuth::NoClientCert) => {
                self.problem(
                    ca.span,
                    &field_path(ca.field),
                    "a client CA is set but client_auth_type is NoClientCert; set client_auth_type (RequireAndVerifyClientCert to verify client certificates)",
                );
                return None;
            }
            (None, ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify) => {
                self.problem(
                    &type_span,
                    "tls_server_config.client_auth_type",
                    format!(
                        "{} verifies client certificates and needs client_ca_file (or client_ca)",
                        kind.name()
                    ),
                );
                return None;
            }
            (Some(ca), _) => {
                let bytes = self.bytes(ca)?;
                let certs = self.certs(&bytes, ca)?;
                let mut store = RootCertStore::empty();
                for c in certs {
                    if let Err(e) = store.add(c) {
                        self.problem(
                            ca.span,
                            &field_path(ca.field),
                            format!("{}: unusable CA certificate: {e}", ca.name()),
                        );
                        return None;
                    }
                }
                Some(Arc::new(store))
            }
            (None, _) => None,
        };
        let sans = match &t.client_allowed_sans {
            Some(s) if !matches!(kind, ClientAuth::RequireAny | ClientAuth::RequireAndVerify) => {
                self.problem(
                    s,
                    "tls_server_config.client_allowed_sans",
                    "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert",
                );
                return None;
            }
            Some(s) => Some(s.value.clone()),
            None => None,
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let algs = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ClientCertVerifier> = match (kind, roots) {
            (ClientAuth::NoClientCert, _) => WebPkiClientVerifier::no_client_auth(),
            (ClientAuth::Request, _) => Arc::new(AnyClientCert {
                mandatory: false,
                algs,
            }),
            (ClientAuth::RequireAny, _) => Arc::new(AnyClientCert {
                mandatory: true,
                algs,
            }),
            (ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify, Some(roots)) => {
                let mut builder = WebPkiClientVerifier::builder_with_provider(roots, provider);
                if matches!(kind, ClientAuth::VerifyIfGiven) {
                    builder = builder.allow_unauthenticated();
                }
                match builder.build() {
                    Ok(v) => v,
                    Err(e) => {
                        let ca = ca?;
                        self.problem(
                            ca.span,
                            &field_path(ca.field),
                            format!("{}: {e}", ca.name()),
                        );
                        return None;
                    }
                }
            }
            (ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify, None) => return None,
        };
        let verifier = match sans {
            Some(allowed) => Arc::new(AllowedSans {
                inner: verifier,
                allowed,
            }),
            None => verifier,
        };
        Some((kind.name(), verifier))
    }

    fn versions(&mut self, t: &RawTls) -> Option<Versions> {
        let min = match &t.min_version {
            None => Some(Version::Tls12),
            Some(s) => self.version(s, "tls_server_config.min_version"),
        };
        let max = match &t.max_version {
            None => Some(Version::Tls13),
            Some(s) => self.version(s, "tls_server_config.max_version"),
        };
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

    fn version(&mut self, s: &Spanned<String>, field: &str) -> Option<Version> {
        match s.value.as_str() {
            "TLS12" => Some(Version::Tls12),
            "TLS13" => Some(Version::Tls13),
            "TLS10" | "TLS11" => {
                self.problem(
                    s,
                    field,
                    format!(
                        "{} is not supported by tls_exporter (rustls implements TLS12 and TLS13)",
                        s.value
                    ),
                );
                None
            }
            other => {
                self.problem(
                    s,
                    field,
                    format!("unknown TLS version {other:?}; expected TLS12 or TLS13"),
                );
                None
            }
        }
    }

    /// The aws-lc-rs provider narrowed to the configured TLS 1.2 suites and curves.
    fn provider(&mut self, t: &RawTls) -> Option<CryptoProvider> {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        let before = self.problems.len();
        if let Some(names) = t.cipher_suites.as_ref().filter(|n| !n.is_empty()) {
            let tls12: Vec<SupportedCipherSuite> = rustls::crypto::aws_lc_rs::ALL_CIPHER_SUITES
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS12)
                .copied()
                .collect();
            let mut chosen: Vec<SupportedCipherSuite> = provider
                .cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13)
                .copied()
                .collect();
            for name in names {
                let field = "tls_server_config.cipher_suites";
                if let Some(s) = tls12
                    .iter()
                    .find(|s| format!("{:?}", s.suite()) == name.value)
                {
                    chosen.push(*s);
                } else if name.value.starts_with("TLS_AES_")
                    || name.value.starts_with("TLS_CHACHA20_")
                {
                    self.problem(
                        name,
                        field,
                        format!(
                            "{} is a TLS 1.3 suite; TLS 1.3 suites are not configurable",
                            name.value
                        ),
                    );
                } else {
                    let known: Vec<String> =
                        tls12.iter().map(|s| format!("{:?}", s.suite())).collect();
                    self.problem(
                        name,
                        field,
                        format!(
                            "cipher suite {:?} is not supported by tls_exporter; supported: {}",
                            name.value,
                            known.join(", ")
                        ),
                    );
                }
            }
            provider.cipher_suites = chosen;
        }
        if let Some(names) = t.curve_preferences.as_ref().filter(|n| !n.is_empty()) {
            let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
            for name in names {
                use rustls::crypto::aws_lc_rs::kx_group;
                let group: &'static dyn SupportedKxGroup = match name.value.as_str() {
                    "X25519" => kx_group::X25519,
                    "CurveP256" => kx_group::SECP256R1,
                    "CurveP384" => kx_group::SECP384R1,
                    "X25519MLKEM768" => kx_group::X25519MLKEM768,
                    "CurveP521" => {
                        self.problem(
                            name,
                            "tls_server_config.curve_preferences",
                            "CurveP521 is not supported by tls_exporter (rustls has no P-521 key exchange)",
                        );
                        continue;
                    }
                    other => {
                        self.problem(
                            name,
                            "tls_server_config.curve_preferences",
                            format!("unknown curve {other:?}; expected one of: X25519, CurveP256, CurveP384, X25519MLKEM768"),
                        );
                        continue;
                    }
                };
                groups.push(group);
            }
            provider.kx_groups = groups;
        }
        (self.problems.len() == before).then_some(provider)
    }

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
fn span_at(at: serde_saphyr::Location) -> Spanned<String> {
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

/// Why `hash` is not a usable bcrypt hash. The reason never quotes the hash.
fn check_bcrypt(hash: &str) -> Result<(), String> {
    let parts: bcrypt::HashParts = hash.parse().map_err(|e| match e {
        bcrypt::BcryptError::InvalidHash(why) => why.to_string(),
        _ => "malformed".to_string(),
    })?;
    let cost = parts.get_cost();
    if !(4..=31).contains(&cost) {
        return Err(format!("cost {cost} is outside 4..31"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// TLS policy

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Version {
    Tls12,
    Tls13,
}

impl Version {
    fn name(self) -> &'static str {
        match self {
            Version::Tls12 => "TLS12",
            Version::Tls13 => "TLS13",
        }
    }
}

struct Versions {
    min: Version,
    max: Version,
}

impl Versions {
    fn list(&self) -> Vec<&'static rustls::SupportedProtocolVersion> {
        let mut out = Vec::new();
        if self.max == Version::Tls13 {
            out.push(&rustls::version::TLS13);
        }
        if self.min == Version::Tls12 {
            out.push(&rustls::version::TLS12);
        }
        out
    }

    fn describe(&self) -> String {
        format!("{}..{}", self.min.name(), self.max.name())
    }
}

#[derive(Debug, Clone, Copy)]
enum ClientAuth {
    NoClientCert,
    Request,
    RequireAny,
    VerifyIfGiven,
    RequireAndVerify,
}

impl ClientAuth {
    fn parse(s: &str) -> Option<ClientAuth> {
        Some(match s {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::Request,
            // The toolkit keeps the old name for compatibility.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAny,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            ClientAuth::NoClientCert => "NoClientCert",
            ClientAuth::Request => "RequestClientCert",
            ClientAuth::RequireAny => "RequireAnyClientCert",
            ClientAuth::VerifyIfGiven => "VerifyClientCertIfGiven",
            ClientAuth::RequireAndVerify => "RequireAndVerifyClientCert",
        }
    }
}

/// `RequestClientCert` / `RequireAnyClientCert`: asks for a certificate and checks the client
/// holds its key, but does not validate the chain (as in Go).
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// `client_allowed_sans`: the client certificate must carry one of these SANs (DNS, e-mail, IP
/// or URI), exactly.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let sans = client_sans(end_entity.as_ref()).ok_or(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding,
        ))?;
        if sans.iter().any(|s| self.allowed.contains(s)) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The SANs of a DER certificate as strings (IP addresses in their usual notation).
fn client_sans(der: &[u8]) -> Option<Vec<String>> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let Some(san) = cert.subject_alternative_name().ok()? else {
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                out.push((*s).to_string());
            }
            GeneralName::IPAddress(bytes) => {
                if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                    out.push(std::net::Ipv4Addr::from(v4).to_string());
                } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                    out.push(std::net::Ipv6Addr::from(v6).to_string());
                }
            }
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    /// A self-signed P-256 certificate and its key, in PEM.
    fn cert_and_key(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("keygen");
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("self-sign");
        (cert.pem(), key.serialize_pem())
    }

    fn dir_with_pki() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = cert_and_key("localhost");
        std::fs::write(dir.path().join("cert.pem"), cert).expect("write");
        std::fs::write(dir.path().join("key.pem"), key).expect("write");
        dir
    }

    /// Parses `yaml` as `web.yml` in `dir`, returning the rendered error lines.
    fn errors(dir: &tempfile::TempDir, yaml: &str) -> Vec<String> {
        let path = dir.path().join("web.yml");
        match parse(yaml, &path) {
            Ok(w) => panic!("expected an error, got {w:?}"),
            Err(e) => e
                .to_string()
                .lines()
                .map(|l| l.replace(&dir.path().display().to_string(), "DIR"))
                .collect(),
        }
    }

    fn ok(dir: &tempfile::TempDir, yaml: &str) -> WebConfig {
        parse(yaml, &dir.path().join("web.yml")).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn relative_files_load_tls_and_users() {
        let dir = dir_with_pki();
        let hash = bcrypt::hash("secret", 4).expect("hash");
        let w = ok(
            &dir,
            &format!("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: '{hash}'\n"),
        );
        assert!(w.tls() && w.basic_auth());
    }

    #[test]
    fn empty_file_means_no_tls_and_no_auth() {
        let dir = dir_with_pki();
        let w = ok(&dir, "# nothing\n");
        assert!(!w.tls() && !w.basic_auth());
    }

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

    #[test]
    fn bad_bcrypt_hash_is_refused_without_echoing_it() {
        let dir = dir_with_pki();
        let e = errors(&dir, "basic_auth_users:\n  alice: not-a-hash-s3cr3t\n");
        assert_eq!(
            e,
            vec![
                "DIR/web.yml:2:10: basic_auth_users.alice: not a bcrypt hash (the hash format is malformed; expected 60 ASCII bytes); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
            ]
        );
        assert!(!e[0].contains("s3cr3t"));
    }

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

    #[test]
    fn debug_output_redacts_hashes_and_keys() {
        let dir = dir_with_pki();
        let key = std::fs::read_to_string(dir.path().join("key.pem")).expect("read");
        let hash = bcrypt::hash("pw", 4).expect("hash");
        let w = ok(
            &dir,
            &format!("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: '{hash}'\n"),
        );
        let debug = format!("{w:?} {:?}", Secret(hash.clone()));
        assert!(debug.contains("users: [\"alice\"]"), "{debug}");
        assert!(!debug.contains("$2b$"), "{debug}");
        let key_body = key.lines().nth(1).expect("key body");
        assert!(!debug.contains(key_body), "{debug}");
    }

    #[test]
    fn basic_header_decodes_user_and_password() {
        let v = HeaderValue::from_static("Basic YWxpY2U6cGE6c3M=");
        assert_eq!(
            decode_basic(&v),
            Some(("alice".to_string(), b"pa:ss".to_vec()))
        );
        assert_eq!(decode_basic(&HeaderValue::from_static("Bearer x")), None);
        assert_eq!(decode_basic(&HeaderValue::from_static("Basic !!")), None);
    }

    /// A CA, and leaves it signed: (CA PEM, [(leaf PEM, key PEM)]) for the given SAN lists.
    fn ca_with_leaves(leaves: &[&[&str]]) -> (String, Vec<(String, String)>) {
        let ca_key = rcgen::KeyPair::generate().expect("keygen");
        let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).expect("self-sign");
        let issuer = rcgen::Issuer::new(params, ca_key);
        let leaves = leaves
            .iter()
            .map(|sans| {
                let key = rcgen::KeyPair::generate().expect("keygen");
                let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
                let cert = rcgen::CertificateParams::new(sans)
                    .expect("params")
                    .signed_by(&key, &issuer)
                    .expect("sign");
                (cert.pem(), key.serialize_pem())
            })
            .collect();
        (ca.pem(), leaves)
    }

    /// Connects to `addr` over TLS trusting `ca`, optionally with a client identity, and
    /// returns the HTTP status of `GET /` (an error when the handshake or request fails).
    async fn mtls_get(
        addr: std::net::SocketAddr,
        ca: &str,
        identity: Option<&(String, String)>,
    ) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(c.expect("CA PEM")).expect("anchor");
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(cert.as_bytes())
                        .collect::<Result<Vec<_>, _>>()
                        .expect("cert PEM"),
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key PEM"),
                )
                .expect("client identity"),
        };
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut raw = Vec::new();
        if let Err(e) = tls.read_to_end(&mut raw).await {
            if raw.is_empty() {
                return Err(e);
            }
        }
        let raw = String::from_utf8_lossy(&raw).into_owned();
        Ok(raw
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string())
    }

    #[tokio::test]
    async fn client_certificates_are_verified_and_their_sans_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, leaves) =
            ca_with_leaves(&[&["localhost"], &["scraper.example"], &["intruder.example"]]);
        let (server, allowed, other) = (&leaves[0], &leaves[1], &leaves[2]);
        std::fs::write(dir.path().join("ca.pem"), &ca).expect("write");
        std::fs::write(dir.path().join("cert.pem"), &server.0).expect("write");
        std::fs::write(dir.path().join("key.pem"), &server.1).expect("write");
        let web = ok(
            &dir,
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  client_allowed_sans: [scraper.example]\n",
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new().route("/", get(|| async { "ok" }));
        let server_task = tokio::spawn(serve(listener, app, Some(Arc::new(web)), async {
            let _ = stop_rx.await;
        }));
        let status = mtls_get(addr, &ca, Some(allowed))
            .await
            .expect("allowed client");
        assert_eq!(status, "200");
        assert!(
            mtls_get(addr, &ca, Some(other)).await.is_err(),
            "a certificate without an allowed SAN was accepted"
        );
        assert!(
            mtls_get(addr, &ca, None).await.is_err(),
            "a client without a certificate was accepted"
        );
        // The listener survived the failed handshakes, and stops when told to.
        assert_eq!(
            mtls_get(addr, &ca, Some(allowed)).await.expect("again"),
            "200"
        );
        let _ = stop_tx.send(());
        tokio::time::timeout(Duration::from_secs(5), server_task)
            .await
            .expect("serve returns after shutdown")
            .expect("task")
            .expect("serve");
    }

    async fn status_of(
        app: Router,
        auth: Option<&str>,
    ) -> (StatusCode, Option<String>, Option<String>) {
        let mut req = axum::http::Request::builder().uri("/metrics");
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a);
        }
        let resp = app
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        (
            resp.status(),
            header("www-authenticate"),
            header("x-frame-options"),
        )
    }

    #[tokio::test]
    async fn basic_auth_guards_every_route_and_caches_success() {
        let dir = dir_with_pki();
        let hash = bcrypt::hash("right", 4).expect("hash");
        let w = ok(
            &dir,
            &format!("basic_auth_users:\n  alice: '{hash}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"),
        );
        let app = w.apply(Router::new().route("/metrics", get(|| async { "ok" })));
        let basic = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        let (status, challenge, frame) = status_of(app.clone(), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some(REALM));
        assert_eq!(frame.as_deref(), Some("deny"));
        let wrong = status_of(app.clone(), Some(&basic("alice", "wrong"))).await;
        assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
        let stranger = status_of(app.clone(), Some(&basic("bob", "right"))).await;
        assert_eq!(stranger.0, StatusCode::UNAUTHORIZED);
        let right = status_of(app.clone(), Some(&basic("alice", "right"))).await;
        assert_eq!(right.0, StatusCode::OK);
        let auth = w.auth.as_ref().expect("auth");
        assert_eq!(auth.verified.lock().expect("lock").len(), 1);
        let again = status_of(app, Some(&basic("alice", "right"))).await;
        assert_eq!(again.0, StatusCode::OK);
    }
}
