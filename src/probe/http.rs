//! HTTP on top of a probe: one GET over an established TLS session (status code and HSTS), and
//! the plain-HTTP redirect check of `http_redirect` targets.
//!
//! Both speak HTTP/1.1 through hyper's client connection API, send `Host`, `User-Agent:
//! tls_exporter/<version>` and `Connection: close`, read at most `MAX_HEAD` bytes of response
//! head and drain (and discard) at most `MAX_BODY` bytes of body, then close.
//!
//! What the values mean (the contract for the metrics):
//! - `get`: `status` is the status of the one response; no redirect is followed. `hsts` is the
//!   policy of the first `Strict-Transport-Security` header (RFC 6797 §8.1: a UA processes only
//!   the first), or `None` when it is absent or invalid: a UA ignores an invalid header (§6.1),
//!   so for the browser it is as if there were none. `max-age=0` is a valid policy that tells
//!   UAs to forget the host; it is reported as such (`max_age` 0, like an absent header).
//! - `redirect`: `status` is the status of the *first* response, the one the port-80 side
//!   itself sends (what `curl -I http://host/` shows: 301, not the 200 at the end of the chain).
//!   `hops` counts the redirects followed, including the one to `https://`; 0 when the first
//!   answer is not a redirect. `to_https` is true when a redirect to an `https://` URL was
//!   reached within `MAX_HOPS` redirects; that URL is not requested. A final non-redirect
//!   answer, or a redirect elsewhere (another scheme, an unusable `Location`), is `to_https`
//!   false. A redirect loop and a chain longer than `MAX_HOPS` are errors, like a browser's.
//!   A `Location` is resolved against the request's URL by the `url` crate (RFC 3986 §5:
//!   relative paths, `../`, `?query`, `//host`; fragments are never sent); `https:host`, which
//!   RFC 3986 reads as a URI without an authority, is not followed.
//!
//! Time: `get` is bounded by its caller (wrap it in `timeout_at(ctx.deadline, ..)`);
//! `redirect` takes the probe's deadline, so it can say which step ran out of time. Dropping
//! either future closes its connections. Failures map onto the probe's `FailureReason` through
//! `HttpError::reason`; turning them into metrics is the caller's business.

use std::collections::HashSet;
use std::error::Error as _;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1;
use hyper::header::{
    HeaderValue, ACCEPT, CONNECTION, HOST, LOCATION, STRICT_TRANSPORT_SECURITY, USER_AGENT,
};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{timeout, timeout_at, Instant};

use super::classify;
use super::connect::{self, ConnectError, Lookup, System};
use crate::config::IpProtocol;
use crate::verdict::FailureReason;

/// At most this much response body is read (and discarded) before closing.
pub const MAX_BODY: usize = 64 * 1024;
/// At most this many redirects are followed by `redirect`.
pub const MAX_HOPS: u32 = 5;
/// Largest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields accepted in one response (hyper's default of 100 is tight for big sites).
const MAX_HEADERS: usize = 256;
/// How long, after the exchange, we let the connection close in an orderly way (TLS
/// close_notify, FIN) before simply dropping it.
const CLOSE_GRACE: Duration = Duration::from_millis(100);
const UA: &str = concat!("tls_exporter/", env!("CARGO_PKG_VERSION"));

/// What one GET over an established TLS session found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpFacts {
    pub status: u16,
    /// The valid HSTS policy of the first `Strict-Transport-Security` header, if any.
    pub hsts: Option<Hsts>,
    /// The first `Strict-Transport-Security` header as sent (lossy UTF-8), valid or not, for
    /// logs and the status page: it explains an `hsts` of `None` despite a header.
    pub hsts_header: Option<String>,
}

/// A valid `Strict-Transport-Security` policy (RFC 6797 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hsts {
    /// Seconds; a value beyond `u64` saturates.
    pub max_age: u64,
    pub include_subdomains: bool,
    /// The bare `preload` directive of the browsers' preload lists (not part of RFC 6797).
    pub preload: bool,
}

/// What the plain-HTTP redirect check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RedirectFacts {
    /// Status of the first response.
    pub status: u16,
    /// A redirect to an `https://` URL was reached.
    pub to_https: bool,
    /// Redirects followed, including the one to `https://`.
    pub hops: u32,
    /// The `Location` of the last redirect seen (resolved to an absolute URL where it could
    /// be), for logs.
    pub location: Option<String>,
}

/// Why an HTTP exchange gave no answer. `reason()` classifies it for the probe.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot build the request for {url}: {detail}")]
    Request { url: String, detail: String },
    /// No connection: resolving a redirect's host or connecting failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The peer did not answer with an HTTP/1.x response: reset, closed early, not HTTP.
    #[error("GET {url}: {detail}")]
    Exchange {
        url: String,
        reason: FailureReason,
        detail: String,
    },
    #[error("GET {url}: no response before the probe's deadline")]
    Timeout { url: String },
    #[error("redirect loop: {}", .trail.join(" -> "))]
    RedirectLoop { trail: Vec<String> },
    #[error("more than {MAX_HOPS} redirects: {}", .trail.join(" -> "))]
    TooManyRedirects { trail: Vec<String> },
}

impl HttpError {
    /// The probe's failure reason for this error. Answers that are not HTTP, time-outs waiting
    /// for a response and broken redirect chains are `other` (the detail says which): `not_tls`
    /// would mislead on a plain-HTTP port.
    pub fn reason(&self) -> FailureReason {
        match self {
            HttpError::Connect(e) => e.reason(),
            HttpError::Exchange { reason, .. } => *reason,
            HttpError::Request { .. }
            | HttpError::Timeout { .. }
            | HttpError::RedirectLoop { .. }
            | HttpError::TooManyRedirects { .. } => FailureReason::Other,
        }
    }
}

/// Sends one GET `path` with Host `host` over `stream` (an established TLS session, HTTP/1.1 —
/// the probe does not offer ALPN h2), reads the response head and at most `MAX_BODY` bytes of
/// body, and closes. `host` is sent verbatim (include `:port` when it is not 443); `path` is an
/// origin-form request target (`/`, `/health?full=1`). Not bounded in time: the caller is.
///
/// Pass `&mut stream` to keep the session (e.g. to send close_notify yourself).
pub async fn get<S>(stream: S, host: &str, path: &str) -> Result<HttpFacts, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let url = format!("https://{host}{path}");
    let head = exchange(stream, host, path, &url).await?;
    let first = head.headers.get(STRICT_TRANSPORT_SECURITY);
    Ok(HttpFacts {
        status: head.status.as_u16(),
        hsts: first.and_then(|v| parse_hsts(v.as_bytes())),
        hsts_header: first.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    })
}

/// GETs `http://host/path` from `addrs` (the port-80 side: the target's resolved addresses,
/// tried in order, or the one pinned address) and follows plain-HTTP redirects until one
/// points to `https://`, an answer is not a redirect, or `MAX_HOPS` redirects were followed.
/// Each request uses a new connection (`probe::connect`). A redirect to the same host and port
/// as the first request goes to `addrs` again; any other host is looked up with `lookup` (the
/// probe passes `connect::System` with the target's `ip_protocol`; tests pass a stand-in).
///
/// `host` is sent verbatim as the first request's `Host` (include `:port` when it is not 80);
/// `deadline` bounds the whole check (the probe's deadline).
pub async fn redirect(
    addrs: &[SocketAddr],
    host: &str,
    path: &str,
    deadline: Instant,
    lookup: impl Lookup,
) -> Result<RedirectFacts, HttpError> {
    let port = addrs.first().map_or(80, SocketAddr::port);
    redirect_via(addrs, port, host, path, None, deadline, lookup).await
}

/// `redirect` with every connection through `via` (`connect::dial`'s rules for what the proxy
/// is sent). Empty `addrs` reach the first request's host (`port` there) by name too: through a
/// proxy that resolves names, nothing is resolved here.
pub(crate) async fn redirect_via(
    addrs: &[SocketAddr],
    port: u16,
    host: &str,
    path: &str,
    via: Option<&crate::config::Proxy>,
    deadline: Instant,
    lookup: impl Lookup,
) -> Result<RedirectFacts, HttpError> {
    let mut url = Url::first(host, path, port)?;
    let origin = url.origin();
    let mut visited = HashSet::from([url.key()]);
    let mut trail = vec![url.to_string()];
    let mut first_status = None;
    let mut hops = 0;
    loop {
        let tcp = if url.origin() == origin && !addrs.is_empty() {
            connect::connect_via(&lookup, addrs, via, deadline).await?
        } else {
            let (_, connected) =
                connect::dial(&lookup, &url.host(), url.port, None, via, deadline).await;
            connected?
        }
        .stream;
        let text = url.to_string();
        let head = timeout_at(deadline, exchange(tcp, &url.authority, url.target(), &text))
            .await
            .map_err(|_| HttpError::Timeout { url: text })??;
        let status = *first_status.get_or_insert(head.status.as_u16());
        let Some(location) = redirect_location(&head) else {
            return Ok(RedirectFacts {
                status,
                to_https: false,
                hops,
                location: None,
            });
        };
        let Some(next) = url.join(&location) else {
            // A redirect nowhere we can follow (ftp:, garbage): the chain ends here.
            return Ok(RedirectFacts {
                status,
                to_https: false,
                hops,
                location: Some(location),
            });
        };
        hops += 1;
        trail.push(next.to_string());
        if next.https() {
            return Ok(RedirectFacts {
                status,
                to_https: true,
                hops,
                location: Some(next.to_string()),
            });
        }
        if !visited.insert(next.key()) {
            return Err(HttpError::RedirectLoop { trail });
        }
        if hops >= MAX_HOPS {
            return Err(HttpError::TooManyRedirects { trail });
        }
        url = next;
    }
}

/// Looks `host` up with the system resolver (getaddrinfo on tokio's blocking pool), in
/// resolver order: `connect::System` without an address-family preference.
pub async fn system_resolve(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    System(IpProtocol::Any).lookup(host, port).await
}

/// The response head, after the body was drained (bounded) and dropped.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
}

/// One request/response over `io`, driving hyper's connection in this task (nothing is
/// spawned, so dropping the future drops the connection).
async fn exchange<S>(io: S, host: &str, target: &str, url: &str) -> Result<Head, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let request_error = |detail: String| HttpError::Request {
        url: url.to_string(),
        detail,
    };
    let host = HeaderValue::from_str(host).map_err(|e| request_error(format!("host: {e}")))?;
    let req = Request::get(target)
        .header(HOST, host)
        .header(USER_AGENT, UA)
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| request_error(e.to_string()))?;

    let (mut sender, conn) = http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .max_header_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| exchange_error(url, &e))?;
    let mut conn = pin!(conn);
    let mut talk = pin!(async move {
        let resp = sender.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        drain(body).await;
        Ok::<_, hyper::Error>(Head {
            status: parts.status,
            headers: parts.headers,
        })
    });
    // hyper's connection future does the I/O; the request future only talks to it.
    let mut conn_done = false;
    let head = poll_fn(|cx| {
        if !conn_done {
            conn_done = conn.as_mut().poll(cx).is_ready();
        }
        talk.as_mut().poll(cx)
    })
    .await
    .map_err(|e| exchange_error(url, &e))?;
    if !conn_done {
        // `Connection: close`: hyper shuts the connection down once the exchange is over.
        let _ = timeout(CLOSE_GRACE, conn).await;
    }
    Ok(head)
}

/// Reads and discards at most `MAX_BODY` bytes of body. A body error is not the probe's
/// concern: the head is what we measure.
async fn drain(mut body: Incoming) {
    let mut read = 0;
    while read < MAX_BODY {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
            Some(Err(_)) | None => return,
        }
    }
}

fn exchange_error(url: &str, e: &hyper::Error) -> HttpError {
    // The innermost I/O error (reset, refused, a TLS alert) says most; hyper's own kinds
    // cover a peer that closed early or did not speak HTTP.
    let mut detail = e.to_string();
    let mut io_reason = None;
    let mut cause = e.source();
    while let Some(c) = cause {
        detail = format!("{detail}: {c}");
        if let Some(io) = c.downcast_ref::<io::Error>() {
            io_reason.get_or_insert(classify(io, false));
        }
        cause = c.source();
    }
    if e.is_parse() {
        detail = format!("not an HTTP/1.x response: {detail}");
    }
    let reason = io_reason.unwrap_or(if e.is_incomplete_message() {
        FailureReason::UnexpectedEof
    } else {
        FailureReason::Other
    });
    HttpError::Exchange {
        url: url.to_string(),
        reason,
        detail,
    }
}

/// The `Location` of a redirect status (301, 302, 303, 307, 308), if the response is one.
fn redirect_location(head: &Head) -> Option<String> {
    let redirects = [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ];
    if !redirects.contains(&head.status) {
        return None;
    }
    let v = head.headers.get(LOCATION)?;
    Some(String::from_utf8_lossy(v.as_bytes()).trim().to_string())
}

/// One request of the redirect check: an absolute `http(s)` URL, resolved and normalized by
/// the `url` crate (RFC 3986 §5 reference resolution: dot segments, percent-encoding, host
/// case and IDNA), plus what the URL alone does not say.
#[derive(Debug, Clone)]
struct Url {
    url: url::Url,
    /// As sent in `Host`: the configured host verbatim for the first request and for redirects
    /// to the same scheme, host and port; else the URL's `host[:port]` (userinfo dropped).
    authority: String,
    /// Where connections go: the URL's port, or the first request's address's port when the
    /// configured host names none (a loopback test port; 80 in practice).
    port: u16,
}

impl Url {
    /// The first request: `host` verbatim, its port if it names one, else the address's.
    fn first(host: &str, path: &str, addr_port: u16) -> Result<Url, HttpError> {
        let text = format!("http://{host}{path}");
        let url = url::Url::parse(&text).map_err(|e| HttpError::Request {
            url: text.clone(),
            detail: e.to_string(),
        })?;
        let port = url.port().unwrap_or(addr_port);
        Ok(Url {
            url,
            authority: host.to_string(),
            port,
        })
    }

    fn https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The host to look up: a name, or an IP literal without brackets.
    fn host(&self) -> String {
        match self.url.host() {
            Some(url::Host::Domain(name)) => name.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => String::new(),
        }
    }

    /// The origin-form request target: path and query, never the fragment.
    fn target(&self) -> &str {
        &self.url[url::Position::BeforePath..url::Position::AfterQuery]
    }

    /// Where connections go: a redirect to the same origin reuses the probe's address.
    fn origin(&self) -> (String, u16) {
        (
            self.url.host_str().unwrap_or_default().to_string(),
            self.port,
        )
    }

    /// What a loop revisits.
    fn key(&self) -> (String, u16, String) {
        let (host, port) = self.origin();
        (host, port, self.target().to_string())
    }

    /// Resolves a `Location` against this URL; `None` when it is not an `http(s)` URL we
    /// could follow.
    fn join(&self, location: &str) -> Option<Url> {
        // RFC 3986 reads `https:host` as a scheme and a path, and an `http(s)` URI without an
        // authority is invalid (RFC 9110 §4.2); the WHATWG parser would take `host` for one.
        if split_scheme(location).is_some_and(|(_, rest)| !rest.starts_with("//")) {
            return None;
        }
        let url = self.url.join(location).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let same_authority = url.scheme() == self.url.scheme()
            && url.host() == self.url.host()
            && url.port() == self.url.port();
        if same_authority {
            return Some(Url {
                url,
                authority: self.authority.clone(),
                port: self.port,
            });
        }
        let host = url.host_str()?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let port = url.port_or_known_default()?;
        Some(Url {
            url,
            authority,
            port,
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.url.scheme(),
            self.authority,
            self.target()
        )
    }
}

/// `scheme:rest` when `reference` starts with a scheme (RFC 3986 §3.1).
fn split_scheme(reference: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = reference.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// Parses a `Strict-Transport-Security` value per RFC 6797 §6.1: directive names are
/// case-insensitive, `max-age` is required (token or quoted-string of digits), every directive
/// appears at most once, `includeSubDomains` has no value, and any value not matching the
/// grammar makes the whole header invalid (`None`: a UA ignores it). Unknown directives are
/// ignored; `preload` counts only without a value.
pub(crate) fn parse_hsts(value: &[u8]) -> Option<Hsts> {
    let mut p = Cursor { s: value, i: 0 };
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut max_age = None;
    let mut include_subdomains = false;
    let mut preload = false;
    loop {
        p.skip_ws();
        if p.peek().is_some_and(|b| b != b';') {
            let name = p.token()?.to_ascii_lowercase();
            p.skip_ws();
            let value = if p.eat(b'=') {
                p.skip_ws();
                Some(p.value()?)
            } else {
                None
            };
            if seen.contains(&name) {
                return None;
            }
            match name.as_slice() {
                b"max-age" => max_age = Some(delta_seconds(&value?)?),
                b"includesubdomains" if value.is_some() => return None,
                b"includesubdomains" => include_subdomains = true,
                b"preload" => preload = value.is_none(),
                _ => {}
            }
            seen.push(name);
            p.skip_ws();
        }
        match p.next() {
            None => break,
            Some(b';') => {}
            Some(_) => return None,
        }
    }
    Some(Hsts {
        max_age: max_age?,
        include_subdomains,
        preload,
    })
}

/// `1*DIGIT`, saturating.
fn delta_seconds(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// A byte cursor for the header grammar (RFC 9110 tokens and quoted-strings).
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// `1*tchar`.
    fn token(&mut self) -> Option<Vec<u8>> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        let t = self.s.get(start..self.i)?;
        (!t.is_empty()).then(|| t.to_vec())
    }

    /// `token / quoted-string`, unquoted.
    fn value(&mut self) -> Option<Vec<u8>> {
        if !self.eat(b'"') {
            return self.token();
        }
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b'"' => return Some(out),
                b'\\' => match self.next()? {
                    b @ (b'\t' | b' ' | 0x21..=0x7e | 0x80..) => out.push(b),
                    _ => return None,
                },
                b @ (b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..) => out.push(b),
                _ => return None,
            }
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hsts(v: &str) -> Option<Hsts> {
        parse_hsts(v.as_bytes())
    }

    fn policy(max_age: u64, include_subdomains: bool, preload: bool) -> Option<Hsts> {
        Some(Hsts {
            max_age,
            include_subdomains,
            preload,
        })
    }

    #[test]
    fn rfc_6797_examples_parse() {
        // RFC 6797 §6.2.
        assert_eq!(hsts("max-age=31536000"), policy(31_536_000, false, false));
        assert_eq!(
            hsts("max-age=15768000 ; includeSubDomains"),
            policy(15_768_000, true, false)
        );
        assert_eq!(
            hsts("max-age=\"31536000\""),
            policy(31_536_000, false, false)
        );
        assert_eq!(hsts("max-age=0"), policy(0, false, false));
        assert_eq!(hsts("max-age=0; includeSubDomains"), policy(0, true, false));
    }

    #[test]
    fn preload_list_header_parses() {
        assert_eq!(
            hsts("max-age=63072000; includeSubDomains; preload"),
            policy(63_072_000, true, true)
        );
    }

    #[test]
    fn directive_names_are_case_insensitive() {
        assert_eq!(
            hsts("MAX-AGE=10; INCLUDESUBDOMAINS; Preload"),
            policy(10, true, true)
        );
    }

    #[test]
    fn directive_order_and_whitespace_do_not_matter() {
        assert_eq!(
            hsts(" preload ;\tincludeSubDomains;max-age = 7 "),
            policy(7, true, true)
        );
    }

    #[test]
    fn empty_directives_are_allowed() {
        assert_eq!(hsts(";;max-age=5;; ;"), policy(5, false, false));
    }

    #[test]
    fn unknown_directives_are_ignored() {
        assert_eq!(
            hsts("max-age=5; report-uri=\"https://r.example/a;b\"; x-foo; y=z"),
            policy(5, false, false)
        );
    }

    #[test]
    fn quoted_max_age_may_use_quoted_pairs() {
        assert_eq!(hsts("max-age=\"1\\0\""), policy(10, false, false));
    }

    #[test]
    fn huge_max_age_saturates() {
        assert_eq!(
            hsts("max-age=999999999999999999999999"),
            policy(u64::MAX, false, false)
        );
    }

    #[test]
    fn preload_with_a_value_is_an_unknown_directive() {
        assert_eq!(hsts("max-age=5; preload=yes"), policy(5, false, false));
    }

    #[test]
    fn missing_max_age_is_invalid() {
        assert_eq!(hsts("includeSubDomains; preload"), None);
        assert_eq!(hsts(""), None);
        assert_eq!(hsts("max-age"), None);
    }

    #[test]
    fn malformed_max_age_is_invalid() {
        for v in [
            "max-age=",
            "max-age=abc",
            "max-age=-1",
            "max-age=+1",
            "max-age=1.5",
            "max-age=\"\"",
            "max-age=\"12",
            "max-age=\"1 2\"",
            "max-age=1 2",
        ] {
            assert_eq!(hsts(v), None, "{v}");
        }
    }

    #[test]
    fn repeated_directive_is_invalid() {
        assert_eq!(hsts("max-age=10; max-age=20"), None);
        assert_eq!(
            hsts("max-age=10; includeSubDomains; includesubdomains"),
            None
        );
        assert_eq!(hsts("max-age=10; foo; FOO"), None);
    }

    #[test]
    fn include_subdomains_with_a_value_is_invalid() {
        assert_eq!(hsts("max-age=10; includeSubDomains=true"), None);
    }

    #[test]
    fn non_conforming_syntax_is_invalid() {
        for v in [
            "max-age=10, includeSubDomains",
            "max-age=10 includeSubDomains",
            "max-age=10; foo=",
            "max-age=10; =x",
            "max-age=10; f\u{e9}e",
            "max-age=10; x=\"a\u{1}\"",
        ] {
            assert_eq!(hsts(v), None, "{v}");
        }
    }

    #[test]
    fn obs_text_is_allowed_in_quoted_values() {
        assert_eq!(
            parse_hsts(b"max-age=3; x=\"caf\xe9\""),
            policy(3, false, false)
        );
    }

    fn base() -> Url {
        Url::first("example.com", "/a/b?q=1", 80).expect("valid first request")
    }

    fn joined(location: &str) -> Option<String> {
        base().join(location).map(|u| u.to_string())
    }

    #[test]
    fn absolute_locations_resolve() {
        assert_eq!(
            joined("https://example.com/").as_deref(),
            Some("https://example.com/")
        );
        // The host is normalized (lower case) where the request did not name it verbatim.
        assert_eq!(
            joined("HTTPS://Example.com").as_deref(),
            Some("https://example.com/")
        );
        assert_eq!(
            joined("http://other:8080?x").as_deref(),
            Some("http://other:8080/?x")
        );
        assert_eq!(
            joined("http://user:pw@[::1]:81/p#frag").as_deref(),
            Some("http://[::1]:81/p")
        );
        assert_eq!(
            joined("http://b\u{fc}cher.example/").as_deref(),
            Some("http://xn--bcher-kva.example/")
        );
    }

    #[test]
    fn relative_locations_resolve_against_the_request() {
        assert_eq!(joined("/x").as_deref(), Some("http://example.com/x"));
        assert_eq!(joined("c").as_deref(), Some("http://example.com/a/c"));
        assert_eq!(joined("../c").as_deref(), Some("http://example.com/c"));
        assert_eq!(joined("./").as_deref(), Some("http://example.com/a/"));
        assert_eq!(joined("?z").as_deref(), Some("http://example.com/a/b?z"));
        assert_eq!(joined("").as_deref(), Some("http://example.com/a/b?q=1"));
        assert_eq!(
            joined("//cdn.example.com/x").as_deref(),
            Some("http://cdn.example.com/x")
        );
        assert_eq!(
            joined("/a b/\u{e9}").as_deref(),
            Some("http://example.com/a%20b/%C3%A9")
        );
    }

    #[test]
    fn dot_segments_never_climb_above_the_root() {
        assert_eq!(
            joined("../../../c/./d/../e").as_deref(),
            Some("http://example.com/c/e")
        );
        assert_eq!(joined("..").as_deref(), Some("http://example.com/"));
        assert_eq!(joined("/x/y/..").as_deref(), Some("http://example.com/x/"));
    }

    #[test]
    fn fragments_are_never_sent() {
        assert_eq!(joined("/x?y#z").as_deref(), Some("http://example.com/x?y"));
        assert_eq!(
            joined("#top").as_deref(),
            Some("http://example.com/a/b?q=1")
        );
        let again = base().join("#top").expect("joins");
        assert_eq!(again.key(), base().key(), "a fragment-only redirect loops");
    }

    #[test]
    fn unfollowable_locations_are_none() {
        for l in [
            "ftp://example.com/",
            "https:example.com",
            "http:/example.com",
            "http://",
            "http://host:port/",
            "http://[::1/",
            "mailto:x@y",
            "data:text/plain,hi",
        ] {
            assert!(joined(l).is_none(), "{l}");
        }
    }

    #[test]
    fn same_origin_is_host_and_effective_port() {
        let first = Url::first("Example.com", "/", 80).expect("valid");
        let again = first.join("http://example.com:80/x").expect("joins");
        assert_eq!(first.origin(), again.origin());
        let elsewhere = first.join("http://example.com:8080/").expect("joins");
        assert_ne!(first.origin(), elsewhere.origin());
        let on_test_port = Url::first("127.0.0.1", "/", 4321).expect("valid");
        assert_eq!(on_test_port.origin(), ("127.0.0.1".to_string(), 4321));
        let relative = on_test_port.join("/next").expect("joins");
        assert_eq!(relative.origin(), on_test_port.origin());
    }

    #[test]
    fn same_authority_redirects_keep_the_configured_host_verbatim() {
        let first = Url::first("Example.com:8080", "/", 80).expect("valid");
        assert_eq!(first.to_string(), "http://Example.com:8080/");
        assert_eq!(first.origin(), ("example.com".to_string(), 8080));
        let next = first.join("/x").expect("joins");
        assert_eq!(next.authority, "Example.com:8080");
        let other = first.join("http://Other.example:8080/y").expect("joins");
        assert_eq!(other.authority, "other.example:8080");
    }

    #[test]
    fn ipv6_hosts_split_into_host_and_port() {
        let v6 = Url::first("[::1]:8080", "/", 80).expect("valid");
        assert_eq!(v6.origin(), ("[::1]".to_string(), 8080));
        assert_eq!(v6.host(), "::1");
        let v6 = Url::first("[::1]", "/", 81).expect("valid");
        assert_eq!(v6.origin(), ("[::1]".to_string(), 81));
        let name = Url::first("h:1", "/", 80).expect("valid");
        assert_eq!((name.host(), name.port), ("h".to_string(), 1));
        let name = Url::first("h", "/", 80).expect("valid");
        assert_eq!((name.host(), name.port), ("h".to_string(), 80));
    }

    #[test]
    fn unusable_configured_host_is_a_request_error() {
        let e = Url::first("exa mple", "/", 80).expect_err("invalid host");
        assert!(matches!(e, HttpError::Request { .. }), "{e:?}");
        assert_eq!(e.reason(), FailureReason::Other);
    }
}
