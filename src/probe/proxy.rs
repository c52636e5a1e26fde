//! Proxy tunnels: asking an HTTP proxy (CONNECT, RFC 9110 §9.3.6) or a SOCKS5 proxy (RFC 1928,
//! username/password RFC 1929) for a byte stream to the peer, on a connection to the proxy that
//! the caller opened.
//!
//! Every reply is bounded: an HTTP reply head at most `MAX_REPLY` bytes, SOCKS5 replies by their
//! fixed shape, all within the caller's deadline. Nothing past the proxy's reply is read, so the
//! peer's first bytes (an SMTP greeting) stay on the socket for the caller. Whatever the proxy
//! says no with, or a reply that is not its protocol, is a `ProxyError` (failure reason
//! `proxy_error`); credentials never appear in its text. Opening the connection to the proxy,
//! and which destination to ask for, is `connect`'s; the proxy URL is `config::Proxy`.
//!
//! Written here rather than taken from a crate: CONNECT is a dozen lines over the socket, and
//! the SOCKS5 client crates (tokio-socks) neither bound the time of a reply nor tell a refusal
//! from a malformed reply in a way we could put in a sentence.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::config::{Proxy, ProxyKind};

/// Largest HTTP reply head (status line and headers) accepted from a proxy.
pub const MAX_REPLY: usize = 16 * 1024;

/// What the proxy is asked to connect to: an address resolved here, or a name it resolves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    Addr(SocketAddr),
    Name { host: String, port: u16 },
}

impl Destination {
    /// `host` (an IP literal, bracketed or not, is an address) with `port`.
    pub fn new(host: &str, port: u16) -> Destination {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match bare.parse() {
            Ok(ip) => Destination::Addr(SocketAddr::new(ip, port)),
            Err(_) => Destination::Name {
                host: host.to_string(),
                port,
            },
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Addr(a) => write!(f, "{a}"),
            Destination::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Why the proxy gave us no tunnel. None of these texts holds a credential.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("talking to the proxy failed: {0}")]
    Io(#[from] io::Error),
    #[error("the proxy did not answer in time")]
    Timeout,
    #[error("the proxy closed the connection before answering")]
    Closed,
    #[error("the proxy answered CONNECT to {to} with {status}")]
    Refused { to: String, status: String },
    #[error("the proxy asks for credentials and none are configured ({0})")]
    AuthRequired(String),
    #[error("the proxy rejected the configured credentials ({0})")]
    AuthRejected(String),
    #[error("the SOCKS5 proxy refused to connect to {to}: {why}")]
    SocksRefused { to: String, why: &'static str },
    #[error("the proxy's reply is not {protocol}: {detail}")]
    Malformed {
        protocol: &'static str,
        detail: String,
    },
    #[error("the proxy's reply head is longer than {MAX_REPLY} bytes")]
    TooLong,
    #[error("the SOCKS5 proxy cannot be sent a host name longer than 255 bytes")]
    NameTooLong,
}

/// Asks `proxy`, on `stream` (connected to it), for a tunnel to `to`, by `deadline`. On `Ok` the
/// next bytes on `stream` are the peer's.
pub async fn negotiate(
    stream: &mut TcpStream,
    proxy: &Proxy,
    to: &Destination,
    deadline: Instant,
) -> Result<(), ProxyError> {
    let work = async {
        match proxy.kind {
            ProxyKind::HttpConnect => http_connect(stream, proxy, to).await,
            ProxyKind::Socks5 | ProxyKind::Socks5h => socks5(stream, proxy, to).await,
        }
    };
    timeout_at(deadline, work)
        .await
        .unwrap_or(Err(ProxyError::Timeout))
}

/// HTTP CONNECT: the request, then the reply head up to its blank line (read so that nothing
/// after it is consumed); any 2xx is the tunnel.
async fn http_connect(
    stream: &mut TcpStream,
    proxy: &Proxy,
    to: &Destination,
) -> Result<(), ProxyError> {
    let authority = match to {
        Destination::Addr(a) => a.to_string(),
        Destination::Name { host, port } => format!("{host}:{port}"),
    };
    let mut req = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: tls_exporter/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(c) = &proxy.credentials {
        let basic = base64(format!("{}:{}", c.username, c.password).as_bytes());
        req.push_str(&format!("Proxy-Authorization: Basic {basic}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;
    let head = read_head(stream).await?;
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let reason = parts.next().unwrap_or("").trim();
    let code: u16 = match (version.starts_with("HTTP/1."), code.parse()) {
        (true, Ok(c)) if (100..1000).contains(&c) => c,
        _ => {
            return Err(ProxyError::Malformed {
                protocol: "HTTP",
                detail: format!("status line {:?}", clip(status_line)),
            })
        }
    };
    let status = if reason.is_empty() {
        format!("HTTP {code}")
    } else {
        format!("HTTP {code} {}", clip(reason))
    };
    match code {
        200..=299 => Ok(()),
        407 if proxy.credentials.is_none() => Err(ProxyError::AuthRequired(status)),
        407 => Err(ProxyError::AuthRejected(status)),
        _ => Err(ProxyError::Refused {
            to: authority,
            status,
        }),
    }
}

/// The reply head through its blank line, at most `MAX_REPLY` bytes. Peeks, then consumes only
/// up to the end of the head, so the tunnel's first bytes stay unread.
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, ProxyError> {
    let mut head = Vec::new();
    let mut buf = vec![0u8; 2048];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Err(ProxyError::Closed);
        }
        let seen = buf.get(..n).unwrap_or_default();
        // The blank line may straddle what was consumed before and what is peeked now.
        let from = head.len().saturating_sub(3);
        let mut joined = head.get(from..).unwrap_or_default().to_vec();
        joined.extend_from_slice(seen);
        let take = match joined.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(at) => at + 4 - (head.len() - from),
            None => n,
        };
        if head.len() + take > MAX_REPLY {
            return Err(ProxyError::TooLong);
        }
        let start = head.len();
        head.resize(start + take, 0);
        if let Some(dst) = head.get_mut(start..) {
            stream.read_exact(dst).await?;
        }
        if head.ends_with(b"\r\n\r\n") {
            return Ok(head);
        }
    }
}

/// SOCKS5: greeting (no authentication, and username/password when configured), the
/// RFC 1929 sub-negotiation when the proxy picks it, then CONNECT and its reply.
async fn socks5(stream: &mut TcpStream, proxy: &Proxy, to: &Destination) -> Result<(), ProxyError> {
    let malformed = |detail: String| ProxyError::Malformed {
        protocol: "SOCKS5",
        detail,
    };
    let greeting: &[u8] = if proxy.credentials.is_some() {
        &[5, 2, 0, 2]
    } else {
        &[5, 1, 0]
    };
    stream.write_all(greeting).await?;
    let mut choice = [0u8; 2];
    read_exact(stream, &mut choice).await?;
    match (choice, &proxy.credentials) {
        ([5, 0], _) => {}
        ([5, 2], Some(c)) => {
            let mut auth = vec![1u8];
            for v in [&c.username, &c.password] {
                // 1 to 255 bytes each: checked when the config was read.
                auth.push(u8::try_from(v.len()).unwrap_or(u8::MAX));
                auth.extend(v.bytes().take(255));
            }
            stream.write_all(&auth).await?;
            let mut status = [0u8; 2];
            read_exact(stream, &mut status).await?;
            match status {
                [_, 0] => {}
                [_, s] => {
                    return Err(ProxyError::AuthRejected(format!(
                        "username/password status {s}"
                    )))
                }
            }
        }
        ([5, 0xff], None) => {
            return Err(ProxyError::AuthRequired(
                "it accepts no method without authentication".to_string(),
            ))
        }
        ([5, 0xff], Some(_)) => {
            return Err(ProxyError::AuthRejected(
                "it accepts neither no authentication nor username/password".to_string(),
            ))
        }
        ([v, m], _) => return Err(malformed(format!("version {v} with method {m}"))),
    }

    let mut req = vec![5u8, 1, 0];
    match to {
        Destination::Addr(SocketAddr::V4(a)) => {
            req.push(1);
            req.extend(a.ip().octets());
        }
        Destination::Addr(SocketAddr::V6(a)) => {
            req.push(4);
            req.extend(a.ip().octets());
        }
        Destination::Name { host, .. } => {
            let len = u8::try_from(host.len()).map_err(|_| ProxyError::NameTooLong)?;
            req.push(3);
            req.push(len);
            req.extend(host.bytes());
        }
    }
    let port = match to {
        Destination::Addr(a) => a.port(),
        Destination::Name { port, .. } => *port,
    };
    req.extend(port.to_be_bytes());
    stream.write_all(&req).await?;

    let mut reply = [0u8; 4];
    read_exact(stream, &mut reply).await?;
    let [version, rep, _, atyp] = reply;
    if version != 5 {
        return Err(malformed(format!("reply version {version}")));
    }
    let bound = match atyp {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            read_exact(stream, &mut len).await?;
            usize::from(len[0]) + 2
        }
        other => return Err(malformed(format!("address type {other}"))),
    };
    // The bound address, which we do not need: read so the tunnel starts after it.
    let mut rest = vec![0u8; bound];
    read_exact(stream, &mut rest).await?;
    let why = match rep {
        0 => return Ok(()),
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    };
    Err(ProxyError::SocksRefused {
        to: to.to_string(),
        why,
    })
}

/// `read_exact` with an early close reported as the proxy closing.
async fn read_exact(stream: &mut TcpStream, buf: &mut [u8]) -> Result<(), ProxyError> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ProxyError::Closed),
        Err(e) => Err(ProxyError::Io(e)),
    }
}

/// At most 100 characters of what a proxy sent, for an error text.
fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

/// Standard base64 with padding (RFC 4648 §4), for `Proxy-Authorization: Basic`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = ((n >> (18 - 6 * i)) & 0x3f) as usize;
                out.push(char::from(ALPHABET.get(idx).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::net::TcpListener;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, want) in cases {
            assert_eq!(base64(plain.as_bytes()), want, "{plain}");
        }
    }

    #[test]
    fn ip_literal_destinations_are_addresses() {
        assert_eq!(
            Destination::new("[::1]", 25).to_string(),
            "[::1]:25".to_string()
        );
        assert!(matches!(
            Destination::new("127.0.0.1", 25),
            Destination::Addr(_)
        ));
        assert!(matches!(
            Destination::new("mx.test", 25),
            Destination::Name { .. }
        ));
    }

    /// A proxy at a loopback port that answers each request it reads with the next of
    /// `replies`, then sends `after` (the peer's first bytes) and holds the connection.
    async fn scripted(replies: Vec<Vec<u8>>, after: &'static [u8]) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let last = replies.len();
                for (i, mut reply) in replies.into_iter().enumerate() {
                    let _ = s.read(&mut buf).await;
                    if i + 1 == last {
                        reply.extend_from_slice(after);
                    }
                    let _ = s.write_all(&reply).await;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        addr
    }

    fn http_proxy(addr: SocketAddr, creds: &str) -> Proxy {
        Proxy::parse(&format!("http://{creds}{addr}")).expect("proxy url")
    }

    async fn ask(proxy: &Proxy, addr: SocketAddr) -> (Result<(), ProxyError>, TcpStream) {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let to = Destination::new("mx.test", 25);
        let deadline = Instant::now() + Duration::from_secs(1);
        (negotiate(&mut s, proxy, &to, deadline).await, s)
    }

    #[tokio::test]
    async fn connect_reply_leaves_the_peers_first_bytes_unread() {
        let addr = scripted(
            vec![b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\n".to_vec()],
            b"220 mx ready\r\n",
        )
        .await;
        let (got, mut s) = ask(&http_proxy(addr, ""), addr).await;
        got.expect("tunnel");
        let mut greeting = [0u8; 14];
        s.read_exact(&mut greeting).await.expect("greeting");
        assert_eq!(&greeting, b"220 mx ready\r\n");
    }

    #[tokio::test]
    async fn refusals_and_407_are_sentences_without_the_password() {
        let addr = scripted(vec![b"HTTP/1.1 403 Forbidden\r\n\r\n".to_vec()], b"").await;
        let (got, _) = ask(&http_proxy(addr, "u:secret@"), addr).await;
        let e = got.expect_err("refused").to_string();
        assert_eq!(
            e,
            "the proxy answered CONNECT to mx.test:25 with HTTP 403 Forbidden"
        );
        let addr = scripted(
            vec![b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n".to_vec()],
            b"",
        )
        .await;
        let (got, _) = ask(&http_proxy(addr, "u:secret@"), addr).await;
        let e = got.expect_err("407").to_string();
        assert_eq!(
            e,
            "the proxy rejected the configured credentials (HTTP 407 Proxy Authentication Required)"
        );
        assert!(!e.contains("secret"));
    }

    #[tokio::test]
    async fn reply_head_of_exactly_max_reply_bytes_is_read_and_one_more_is_too_long() {
        let head = |len: usize| {
            let start = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
            let pad = len - start.len() - 4;
            let mut h = start;
            h.extend(std::iter::repeat_n(b'p', pad));
            h.extend_from_slice(b"\r\n\r\n");
            h
        };
        let addr = scripted(vec![head(MAX_REPLY)], b"").await;
        let (got, _) = ask(&http_proxy(addr, ""), addr).await;
        got.expect("a head of exactly the limit");
        let addr = scripted(vec![head(MAX_REPLY + 1)], b"").await;
        let (got, _) = ask(&http_proxy(addr, ""), addr).await;
        assert!(matches!(got, Err(ProxyError::TooLong)), "{got:?}");
    }

    #[tokio::test]
    async fn endless_or_garbage_replies_are_bounded_errors() {
        let addr = scripted(vec![vec![b'x'; MAX_REPLY + 10]], b"").await;
        let (got, _) = ask(&http_proxy(addr, ""), addr).await;
        assert!(matches!(got, Err(ProxyError::TooLong)), "{got:?}");
        let addr = scripted(vec![b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()], b"").await;
        let (got, _) = ask(&http_proxy(addr, ""), addr).await;
        assert!(matches!(got, Err(ProxyError::Malformed { .. })), "{got:?}");
        // Silence: the deadline ends it.
        let addr = scripted(Vec::new(), b"").await;
        let (got, _) = ask(&http_proxy(addr, ""), addr).await;
        assert!(matches!(got, Err(ProxyError::Timeout)), "{got:?}");
    }

    #[tokio::test]
    async fn socks5_answers_are_read_to_the_end_and_refusals_named() {
        let proxy = Proxy::parse("socks5h://u:secret@127.0.0.1:1").expect("proxy");
        let at = |addr: SocketAddr| Proxy {
            port: addr.port(),
            ..proxy.clone()
        };
        // Username/password accepted, CONNECT granted with a domain-name bound address.
        let granted = vec![5, 0, 0, 3, 4, b'h', b'o', b's', b't', 0, 25];
        let addr = scripted(vec![vec![5, 2], vec![1, 0], granted], b"220 hi\r\n").await;
        let (got, mut s) = ask(&at(addr), addr).await;
        got.expect("tunnel");
        let mut greeting = [0u8; 8];
        s.read_exact(&mut greeting).await.expect("greeting");
        assert_eq!(&greeting, b"220 hi\r\n");
        // Refused by the ruleset.
        let refused = vec![5, 2, 0, 1, 0, 0, 0, 0, 0, 0];
        let addr = scripted(vec![vec![5, 0], refused], b"").await;
        let (got, _) = ask(&at(addr), addr).await;
        let e = got.expect_err("refused").to_string();
        assert_eq!(
            e,
            "the SOCKS5 proxy refused to connect to mx.test:25: connection not allowed by ruleset"
        );
        // Bad credentials.
        let addr = scripted(vec![vec![5, 2], vec![1, 1]], b"").await;
        let (got, _) = ask(&at(addr), addr).await;
        let e = got.expect_err("rejected").to_string();
        assert_eq!(
            e,
            "the proxy rejected the configured credentials (username/password status 1)"
        );
        assert!(!e.contains("secret"));
        // No acceptable method, without credentials.
        let addr = scripted(vec![vec![5, 0xff]], b"").await;
        let bare = Proxy {
            credentials: None,
            ..at(addr)
        };
        let (got, _) = ask(&bare, addr).await;
        let e = got.expect_err("no method").to_string();
        assert_eq!(
            e,
            "the proxy asks for credentials and none are configured (it accepts no method without authentication)"
        );
    }
}
