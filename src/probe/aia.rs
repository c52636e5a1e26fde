//! AIA chasing for `aia_fetch` targets: when the chain a server sent is incomplete, fetch the
//! missing issuer from the last certificate's AIA `caIssuers` URL and validate the completed
//! chain, so that "works in browsers, fails in curl" shows as `tls_chain_valid_with_aia 1`
//! beside `tls_chain_valid 0`. The probe's verdict stays on the chain as sent.
//!
//! Bounded: `http://` URLs only (caIssuers URLs are plain HTTP by RFC 5280's advice; no TLS,
//! no redirects followed), at most `MAX_FETCHES` issuers chased per chain, `MAX_BODY` bytes per
//! answer, every fetch within the probe's deadline, at most `MAX_IN_FLIGHT` fetches at once
//! across all targets, and answers cached by URL (`CACHE_OK` for certificates, `CACHE_FAILED`
//! for failures, at most `CACHE_ENTRIES` URLs), so a fleet behind one CA fetches its
//! intermediate once. What the URL serves is parsed by `tls::aia`; the path is validated by
//! `verifier::judge`, exactly as the chain sent is.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::time::{timeout_at, Instant};

use super::connect;
use crate::config::{IpProtocol, Target};
use crate::tls::chain::Chain;
use crate::tls::{aia, verifier};

/// Issuers fetched for one chain at most (a leaf, then up to two intermediates above it).
pub const MAX_FETCHES: usize = 3;
/// Largest answer body accepted: 64 KiB (an intermediate is about 1.5 KiB).
pub const MAX_BODY: usize = 64 << 10;
/// Largest answer header accepted.
const MAX_HEAD: usize = 8 << 10;
/// Fetches in flight at once, across all targets.
pub const MAX_IN_FLIGHT: usize = 4;
/// How long fetched certificates are reused.
pub const CACHE_OK: Duration = Duration::from_secs(3600);
/// How long a failed fetch is remembered (not retried).
pub const CACHE_FAILED: Duration = Duration::from_secs(300);
/// URLs cached at most.
pub const CACHE_ENTRIES: usize = 1024;

/// What chasing found: whether the chain is valid once completed, how many issuers were
/// fetched, and why it is not valid, as a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiaFacts {
    pub valid: bool,
    pub fetched: usize,
    pub problem: Option<String>,
}

type Answer = Result<Arc<Vec<CertificateDer<'static>>>, String>;

static CACHE: LazyLock<Mutex<HashMap<String, (Instant, Answer)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
static IN_FLIGHT: Semaphore = Semaphore::const_new(MAX_IN_FLIGHT);

/// The chain `sent` (judged as `chain`) completed from AIA, for a target with `aia_fetch`:
/// valid as sent needs no fetch; an incomplete chain is completed issuer by issuer until it
/// validates, an issuer cannot be fetched, or `MAX_FETCHES` is reached; any other problem is
/// not AIA's to fix.
pub(super) async fn assess(
    target: &Target,
    chain: &Chain,
    sent: &[CertificateDer<'static>],
    deadline: Instant,
) -> AiaFacts {
    let mut facts = AiaFacts {
        valid: chain.problem.is_none(),
        fetched: 0,
        problem: None,
    };
    if facts.valid {
        return facts;
    }
    if !chain.incomplete {
        facts.problem = Some("the chain sent is not missing an issuer".to_string());
        return facts;
    }
    let mut certs = sent.to_vec();
    while facts.fetched < MAX_FETCHES {
        let Some(last) = certs.last() else { break };
        let depth = certs.len() - 1;
        let urls = aia::ca_issuers(last.as_ref());
        let Some(url) = urls.iter().find(|u| u.starts_with("http://")) else {
            facts.problem = Some(match urls.first() {
                Some(u) => format!("the certificate at depth {depth} names only {u} for its issuer (only http:// is fetched)"),
                None => format!("the certificate at depth {depth} names no caIssuers URL"),
            });
            break;
        };
        let issuers = match fetch_cached(url, deadline).await {
            Ok(issuers) => issuers,
            Err(e) => {
                facts.problem = Some(format!("fetching the issuer from {url} failed: {e}"));
                break;
            }
        };
        facts.fetched += 1;
        certs.extend(issuers.iter().cloned());
        let completed = verifier::judge(
            &certs,
            &target.material.roots,
            &target.server_name,
            UnixTime::now(),
        );
        match completed.problem {
            None => {
                facts.valid = true;
                facts.problem = None;
                break;
            }
            Some(p) if !completed.incomplete => {
                facts.problem = Some(format!("with the issuer from {url}: {}", p.detail));
                break;
            }
            Some(p) => facts.problem = Some(format!("with the issuer from {url}: {}", p.detail)),
        }
    }
    if let (false, Some(problem)) = (facts.valid, &facts.problem) {
        tracing::info!(
            target = target.name.as_str(),
            "the chain could not be completed from AIA: {problem}"
        );
    }
    facts
}

/// The certificates at `url`, from the cache when fresh, else fetched (and cached).
async fn fetch_cached(url: &str, deadline: Instant) -> Answer {
    let now = Instant::now();
    if let Ok(cache) = CACHE.lock() {
        if let Some((_, answer)) = cache.get(url).filter(|(until, _)| *until > now) {
            return answer.clone();
        }
    }
    let answer: Answer = match timeout_at(deadline, IN_FLIGHT.acquire()).await {
        Err(_) => return Err("no fetch slot was free before the probe's deadline".to_string()),
        Ok(Err(_)) => return Err("the fetch slots are closed".to_string()),
        Ok(Ok(_permit)) => match timeout_at(deadline, get(url, deadline)).await {
            Err(_) => return Err("timed out at the probe's deadline".to_string()),
            Ok(body) => body.and_then(|b| aia::parse_issuers(&b)).map(Arc::new),
        },
    };
    let ttl = if answer.is_ok() {
        CACHE_OK
    } else {
        CACHE_FAILED
    };
    if let Ok(mut cache) = CACHE.lock() {
        if cache.len() >= CACHE_ENTRIES {
            let now = Instant::now();
            cache.retain(|_, (until, _)| *until > now);
        }
        if cache.len() < CACHE_ENTRIES {
            cache.insert(url.to_string(), (Instant::now() + ttl, answer.clone()));
        }
    }
    answer
}

/// One HTTP/1.0 GET of an `http://` URL: the body of a 200 answer of at most `MAX_BODY` bytes.
/// Resolves and connects through `probe::connect` by `deadline`; the caller bounds the rest.
async fn get(url: &str, deadline: Instant) -> Result<Vec<u8>, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("the URL does not parse: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or("the URL has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let lookup = connect::System(IpProtocol::Any);
    let (_, connected) = connect::dial(&lookup, &host, port, None, None, deadline).await;
    let mut tcp = connected.map_err(|e| e.to_string())?.stream;
    let host_header = parsed.authority();
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: tls_exporter\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut body_at = None;
    loop {
        let n = tcp
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if body_at.is_none() {
            body_at = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
            match body_at {
                None if buf.len() > MAX_HEAD => {
                    return Err(format!(
                        "the answer's header is larger than {} KiB",
                        MAX_HEAD >> 10
                    ))
                }
                None => continue,
                Some(at) => head(buf.get(..at).unwrap_or_default())?,
            }
        }
        if let Some(at) = body_at {
            if buf.len() - at > MAX_BODY {
                return Err(format!("the answer is larger than {} KiB", MAX_BODY >> 10));
            }
        }
    }
    let at = body_at.ok_or("the answer ended inside its header")?;
    Ok(buf.split_off(at))
}

/// Checks an answer's header: status 200, and a Content-Length (if any) within `MAX_BODY`.
fn head(head: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split(' ').nth(1).unwrap_or_default();
    if !status.starts_with("HTTP/1.") {
        return Err("the answer is not HTTP".to_string());
    }
    if code != "200" {
        return Err(format!("the server answered HTTP {code}"));
    }
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                let len: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| "the Content-Length is not a number")?;
                if len > MAX_BODY {
                    return Err(format!(
                        "the answer is larger than {} KiB (Content-Length {len})",
                        MAX_BODY >> 10
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An HTTP server on loopback answering one request with `answer`, without a
    /// Content-Length (the body ends with the connection).
    async fn serve(answer: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            if let Ok((mut tcp, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(&answer).await;
            }
        });
        format!("http://127.0.0.1:{port}/ca.der")
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_bound_is_read_and_one_byte_more_is_refused() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut answer = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        answer.extend(vec![7u8; MAX_BODY]);
        let url = serve(answer.clone()).await;
        assert_eq!(get(&url, deadline).await.map(|b| b.len()), Ok(MAX_BODY));
        answer.push(7);
        let url = serve(answer).await;
        assert_eq!(
            get(&url, deadline).await,
            Err("the answer is larger than 64 KiB".to_string())
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_cut_at_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ca.der", listener.local_addr().unwrap());
        let started = Instant::now();
        let got = fetch_cached(&url, started + Duration::from_millis(300)).await;
        assert_eq!(got, Err("timed out at the probe's deadline".to_string()));
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(listener);
    }

    #[test]
    fn an_answer_other_than_200_or_over_the_bound_is_refused_in_words() {
        assert_eq!(
            head(b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n"),
            Ok(())
        );
        let at_bound = format!("HTTP/1.0 200 OK\r\nContent-Length: {MAX_BODY}\r\n\r\n");
        assert_eq!(head(at_bound.as_bytes()), Ok(()));
        assert_eq!(
            head(b"HTTP/1.1 404 Not Found\r\n\r\n"),
            Err("the server answered HTTP 404".to_string())
        );
        assert_eq!(
            head(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
                    MAX_BODY + 1
                )
                .as_bytes()
            ),
            Err(format!(
                "the answer is larger than 64 KiB (Content-Length {})",
                MAX_BODY + 1
            ))
        );
        assert_eq!(
            head(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err("the answer is not HTTP".to_string())
        );
    }
}
