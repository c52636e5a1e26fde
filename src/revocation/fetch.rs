//! The HTTP client of revocation checks: one plain HTTP/1.1 exchange (hyper) per fetch, bounded
//! in time and in the size of the answer.
//!
//! OCSP (RFC 6960 Appendix A) and CRL distribution points (RFC 5280 §4.2.1.13) are served over
//! plain `http://`: the answers are signed, so transport security adds nothing, and an
//! `https://` URL would need a TLS check of its own to be trusted. Only `http://` URLs are
//! fetched; redirects are not followed. What the bytes mean is `responder`'s and `crl`'s.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::text;

/// Why a fetch brought nothing back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("{url} is not an http:// URL with a host")]
    Url { url: String },
    #[error("{url} did not answer within {}", text::duration(*.after))]
    Timeout { url: String, after: Duration },
    #[error("cannot resolve the host of {url}: {source}")]
    Resolve { url: String, source: std::io::Error },
    #[error("cannot connect to {url}: {source}")]
    Connect { url: String, source: std::io::Error },
    #[error("HTTP exchange with {url} failed: {detail}")]
    Http { url: String, detail: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered more than {limit} bytes, the bound")]
    TooLarge { url: String, limit: u64 },
}

/// What to send: a GET, or a POST of a body with its content type.
pub(crate) enum Body {
    Get,
    Post {
        content_type: &'static str,
        bytes: Vec<u8>,
    },
}

/// Fetches `url` (`http://` only), reading at most `limit` bytes of the answer's body, all of
/// it within `timeout`; only a 200 answer counts.
pub(crate) async fn fetch(
    url: &str,
    body: Body,
    limit: u64,
    timeout: Duration,
) -> Result<Vec<u8>, FetchError> {
    match tokio::time::timeout(timeout, exchange(url, body, limit)).await {
        Ok(got) => got,
        Err(_) => Err(FetchError::Timeout {
            url: url.to_string(),
            after: timeout,
        }),
    }
}

async fn exchange(url: &str, body: Body, limit: u64) -> Result<Vec<u8>, FetchError> {
    let (addrs, host_header, path) = target(url).await?;
    let tcp = connect(&addrs, url).await?;
    let http = |e: hyper::Error| FetchError::Http {
        url: url.to_string(),
        detail: e.to_string(),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(http)?;
    // The connection is driven beside the request; dropping the guard (done, failed or timed
    // out) ends it.
    let _driver = AbortOnDrop(tokio::spawn(conn));
    let (method, content_type, bytes) = match body {
        Body::Get => (Method::GET, None, Vec::new()),
        Body::Post {
            content_type,
            bytes,
        } => (Method::POST, Some(content_type), bytes),
    };
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, host_header)
        .header(
            USER_AGENT,
            concat!("tls_exporter/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(ct) = content_type {
        request = request.header(CONTENT_TYPE, ct);
    }
    let request = request
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| FetchError::Http {
            url: url.to_string(),
            detail: e.to_string(),
        })?;
    let response = sender.send_request(request).await.map_err(http)?;
    if response.status() != StatusCode::OK {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: response.status().as_u16(),
        });
    }
    let too_large = || FetchError::TooLarge {
        url: url.to_string(),
        limit,
    };
    let announced = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    let collected = Limited::new(response.into_body(), cap)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                FetchError::Http {
                    url: url.to_string(),
                    detail: e.to_string(),
                }
            }
        })?;
    Ok(collected.to_bytes().to_vec())
}

/// The addresses to connect to, the `Host` header and the request target of `url`.
async fn target(url: &str) -> Result<(Vec<SocketAddr>, String, String), FetchError> {
    let bad = || FetchError::Url {
        url: url.to_string(),
    };
    let parsed = url::Url::parse(url).map_err(|_| bad())?;
    if parsed.scheme() != "http" {
        return Err(bad());
    }
    let host = parsed.host().ok_or_else(bad)?;
    let port = parsed.port().unwrap_or(80);
    let host_header = match parsed.port() {
        Some(p) => format!("{}:{p}", parsed.host_str().unwrap_or_default()),
        None => parsed.host_str().unwrap_or_default().to_string(),
    };
    let mut path = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        path.push('?');
        path.push_str(q);
    }
    let addrs = match host {
        url::Host::Ipv4(ip) => vec![SocketAddr::from((ip, port))],
        url::Host::Ipv6(ip) => vec![SocketAddr::from((ip, port))],
        url::Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|source| FetchError::Resolve {
                url: url.to_string(),
                source,
            })?
            .collect(),
    };
    Ok((addrs, host_header, path))
}

/// The first address that accepts, or the last error.
async fn connect(addrs: &[SocketAddr], url: &str) -> Result<TcpStream, FetchError> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = e,
        }
    }
    Err(FetchError::Connect {
        url: url.to_string(),
        source: last,
    })
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server answering one connection with `reply`, returning what it read.
    async fn serve_once(reply: Vec<u8>) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/ca.crl", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut got = vec![0u8; 4096];
            let n = s.read(&mut got).await.expect("read");
            got.truncate(n);
            let _ = s.write_all(&reply).await;
            let _ = s.shutdown().await;
            got
        });
        (url, task)
    }

    fn reply(status: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    #[tokio::test]
    async fn post_sends_content_type_and_reads_the_body() {
        let (url, server) = serve_once(reply("200 OK", b"answer")).await;
        let body = Body::Post {
            content_type: "application/ocsp-request",
            bytes: b"question".to_vec(),
        };
        let got = fetch(&url, body, 100, Duration::from_secs(5)).await;
        assert_eq!(got.expect("fetched"), b"answer");
        let request = String::from_utf8(server.await.expect("server")).expect("utf-8");
        assert!(
            request.starts_with("POST /ca.crl HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("content-type: application/ocsp-request"),
            "{request}"
        );
        assert!(request.ends_with("question"), "{request}");
    }

    #[tokio::test]
    async fn body_over_the_bound_is_too_large() {
        let (url, _server) = serve_once(reply("200 OK", &[7u8; 101])).await;
        let got = fetch(&url, Body::Get, 100, Duration::from_secs(5)).await;
        assert!(
            matches!(got, Err(FetchError::TooLarge { limit: 100, .. })),
            "{got:?}"
        );
        // Exactly at the bound is fine.
        let (url, _server) = serve_once(reply("200 OK", &[7u8; 100])).await;
        let got = fetch(&url, Body::Get, 100, Duration::from_secs(5)).await;
        assert_eq!(got.expect("fetched").len(), 100);
    }

    #[tokio::test]
    async fn chunked_body_over_the_bound_is_too_large() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                        40\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\
                        40\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n0\r\n\r\n";
        let (url, _server) = serve_once(chunked.to_vec()).await;
        let got = fetch(&url, Body::Get, 100, Duration::from_secs(5)).await;
        assert!(matches!(got, Err(FetchError::TooLarge { .. })), "{got:?}");
    }

    #[tokio::test]
    async fn non_200_answer_is_an_error_in_words() {
        let (url, _server) = serve_once(reply("404 Not Found", b"")).await;
        let got = fetch(&url, Body::Get, 100, Duration::from_secs(5)).await;
        let e = got.expect_err("404");
        assert_eq!(e.to_string(), format!("{url} answered HTTP 404"));
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        let got = fetch(&url, Body::Get, 100, Duration::from_millis(200)).await;
        let e = got.expect_err("timeout");
        assert_eq!(e.to_string(), format!("{url} did not answer within 200 ms"));
        drop(listener);
    }

    #[tokio::test]
    async fn https_urls_are_refused() {
        let got = fetch("https://127.0.0.1/", Body::Get, 100, Duration::from_secs(1)).await;
        assert!(matches!(got, Err(FetchError::Url { .. })), "{got:?}");
    }
}
