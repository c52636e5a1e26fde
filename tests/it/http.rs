//! `probe::http` against real peers on loopback: hand-written HTTP/1.1 responders (plain and
//! over tokio-rustls) that answer exactly what a test needs, and Debian's nginx as an
//! independent implementation of redirects and HSTS.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::ServerName;
use tls_exporter::probe::http::{self, Hsts, HttpError, RedirectFacts, MAX_BODY};
use tls_exporter::verdict::FailureReason;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::support::exporter::free_port;
use crate::support::pki::{Ca, Cert, Spec};
use crate::support::WAIT;

const PRELOAD: &str = "max-age=63072000; includeSubDomains; preload";

// ---- HSTS over TLS -------------------------------------------------------------------------

#[tokio::test]
async fn hsts_header_over_tls_is_reported() {
    bounded(async {
        let pki = Pki::new();
        let srv =
            Responder::tls(&pki.leaf, |_| ok(&[("Strict-Transport-Security", PRELOAD)])).await;
        let facts = pki.get(srv.addr, "/").await.expect("GET");
        assert_eq!(facts.status, 200);
        assert_eq!(
            facts.hsts,
            Some(Hsts {
                max_age: 63_072_000,
                include_subdomains: true,
                preload: true
            })
        );
        assert_eq!(facts.hsts_header.as_deref(), Some(PRELOAD));
    })
    .await;
}

#[tokio::test]
async fn response_without_hsts_reports_none() {
    bounded(async {
        let pki = Pki::new();
        let srv = Responder::tls(&pki.leaf, |_| ok(&[])).await;
        let facts = pki.get(srv.addr, "/").await.expect("GET");
        assert_eq!(
            (facts.status, facts.hsts, facts.hsts_header),
            (200, None, None)
        );
    })
    .await;
}

#[tokio::test]
async fn only_the_first_hsts_header_counts() {
    bounded(async {
        let pki = Pki::new();
        let srv = Responder::tls(&pki.leaf, |_| {
            ok(&[
                ("Strict-Transport-Security", "max-age=100"),
                ("Strict-Transport-Security", PRELOAD),
            ])
        })
        .await;
        let facts = pki.get(srv.addr, "/").await.expect("GET");
        assert_eq!(
            facts.hsts,
            Some(Hsts {
                max_age: 100,
                include_subdomains: false,
                preload: false
            })
        );
    })
    .await;
}

#[tokio::test]
async fn invalid_first_hsts_header_hides_a_valid_second() {
    bounded(async {
        let pki = Pki::new();
        let srv = Responder::tls(&pki.leaf, |_| {
            ok(&[
                ("Strict-Transport-Security", "max-age=1; max-age=2"),
                ("Strict-Transport-Security", PRELOAD),
            ])
        })
        .await;
        let facts = pki.get(srv.addr, "/").await.expect("GET");
        assert_eq!(facts.hsts, None);
        assert_eq!(facts.hsts_header.as_deref(), Some("max-age=1; max-age=2"));
    })
    .await;
}

#[tokio::test]
async fn invalid_hsts_header_is_reported_absent() {
    bounded(async {
        let pki = Pki::new();
        let srv = Responder::tls(&pki.leaf, |_| {
            ok(&[("Strict-Transport-Security", "max-age=one-year")])
        })
        .await;
        let facts = pki.get(srv.addr, "/").await.expect("GET");
        assert_eq!(facts.status, 200);
        assert_eq!(facts.hsts, None);
        assert_eq!(facts.hsts_header.as_deref(), Some("max-age=one-year"));
    })
    .await;
}

#[tokio::test]
async fn get_reports_a_redirect_status_without_following_it() {
    bounded(async {
        let pki = Pki::new();
        let srv = Responder::tls(&pki.leaf, |_| {
            response(
                "301 Moved Permanently",
                &[
                    ("Location", "https://www.example.test/"),
                    ("Strict-Transport-Security", "max-age=5"),
                ],
                "",
            )
        })
        .await;
        let facts = pki.get(srv.addr, "/").await.expect("GET");
        assert_eq!(facts.status, 301);
        assert_eq!(facts.hsts.map(|h| h.max_age), Some(5));
        assert_eq!(srv.requests().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn get_sends_host_user_agent_and_connection_close() {
    bounded(async {
        let pki = Pki::new();
        let srv = Responder::tls(&pki.leaf, |_| ok(&[])).await;
        pki.get_as(srv.addr, "www.example.test", "/health?full=1")
            .await
            .expect("GET");
        let requests = srv.requests();
        let [head] = requests.as_slice() else {
            panic!("one request expected: {requests:?}");
        };
        let lines: Vec<String> = head.lines().map(str::to_ascii_lowercase).collect();
        let ua = format!("user-agent: tls_exporter/{}", env!("CARGO_PKG_VERSION"));
        for want in [
            "get /health?full=1 http/1.1",
            "host: www.example.test",
            ua.as_str(),
            "connection: close",
        ] {
            assert!(lines.iter().any(|l| l == want), "{want:?} in {head}");
        }
    })
    .await;
}

#[tokio::test]
async fn large_body_is_drained_only_up_to_the_bound() {
    bounded(async {
        const BODY: usize = 256 * 1024 * 1024;
        let pki = Pki::new();
        let written = Arc::new(AtomicUsize::new(0));
        let srv = Responder::tls_streaming(&pki.leaf, BODY, written.clone()).await;
        let start = Instant::now();
        let facts = pki.get(srv.addr, "/").await.expect("GET");
        assert_eq!(facts.status, 200);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        // The server's writes fail once we close; it never gets the whole body out.
        wait_until(|| srv.task.is_finished()).await;
        let sent = written.load(Ordering::SeqCst);
        assert!(
            (MAX_BODY..BODY).contains(&sent),
            "server wrote {sent} bytes of {BODY}"
        );
    })
    .await;
}

#[tokio::test]
async fn server_closing_before_answering_is_unexpected_eof() {
    bounded(async {
        let pki = Pki::new();
        let srv = Responder::tls(&pki.leaf, |_| String::new()).await;
        let e = pki.get(srv.addr, "/").await.expect_err("no response");
        assert_eq!(e.reason(), FailureReason::UnexpectedEof, "{e}");
    })
    .await;
}

#[tokio::test]
async fn non_http_answer_over_tls_is_other() {
    bounded(async {
        let pki = Pki::new();
        let srv = Responder::tls(&pki.leaf, |_| "SSH-2.0-OpenSSH_9.2\r\n".to_string()).await;
        let e = pki.get(srv.addr, "/").await.expect_err("not HTTP");
        assert!(matches!(e, HttpError::Exchange { .. }), "{e:?}");
        assert_eq!(e.reason(), FailureReason::Other, "{e}");
    })
    .await;
}

// ---- plain-HTTP redirects ------------------------------------------------------------------

#[tokio::test]
async fn moved_permanently_to_https_is_one_hop() {
    bounded(async {
        let srv =
            Responder::plain(|_| moved("301 Moved Permanently", "https://example.test/")).await;
        let facts = redirect(srv.addr, "example.test", "/")
            .await
            .expect("probe");
        assert_eq!(
            facts,
            RedirectFacts {
                status: 301,
                to_https: true,
                hops: 1,
                location: Some("https://example.test/".into()),
            }
        );
        assert_eq!(srv.requests().len(), 1, "the https URL is not requested");
    })
    .await;
}

#[tokio::test]
async fn http_chain_to_https_counts_every_hop() {
    bounded(async {
        let b = Responder::plain(|target| match target {
            "/step" => moved("307 Temporary Redirect", "/final"),
            "/final" => moved("308 Permanent Redirect", "https://b.test/done"),
            _ => not_found(),
        })
        .await;
        let to_b = format!("http://b.test:{}/step", b.addr.port());
        let a = Responder::plain(move |_| moved("302 Found", &to_b)).await;
        let resolved = Arc::new(Mutex::new(Vec::new()));
        let seen = resolved.clone();
        let facts = http::redirect(&[a.addr], "a.test", "/", deadline(), move |host, port| {
            seen.lock().expect("lock").push(format!("{host}:{port}"));
            async move { Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]) }
        })
        .await
        .expect("probe");
        assert_eq!(
            facts,
            RedirectFacts {
                status: 302,
                to_https: true,
                hops: 3,
                location: Some("https://b.test/done".into()),
            }
        );
        assert_eq!(a.requests().len(), 1);
        assert_eq!(b.requests().len(), 2);
        let b_host = format!("b.test:{}", b.addr.port());
        assert!(
            b.requests().iter().all(|r| r.contains(&b_host)),
            "Host of hop 2+"
        );
        assert!(resolved.lock().expect("lock").iter().all(|h| *h == b_host));
    })
    .await;
}

#[tokio::test]
async fn plain_200_is_not_a_redirect_to_https() {
    bounded(async {
        let srv = Responder::plain(|_| ok(&[])).await;
        let facts = redirect(srv.addr, "example.test", "/")
            .await
            .expect("probe");
        assert_eq!(
            facts,
            RedirectFacts {
                status: 200,
                to_https: false,
                hops: 0,
                location: None,
            }
        );
    })
    .await;
}

#[tokio::test]
async fn redirect_to_a_plain_http_page_is_not_to_https() {
    bounded(async {
        let srv = Responder::plain(|target| match target {
            "/" => moved("301 Moved Permanently", "/landing"),
            _ => ok(&[]),
        })
        .await;
        let facts = redirect(srv.addr, "example.test", "/")
            .await
            .expect("probe");
        assert_eq!((facts.status, facts.to_https, facts.hops), (301, false, 1));
        assert_eq!(srv.requests().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn redirect_without_location_ends_the_chain() {
    bounded(async {
        let srv = Responder::plain(|_| response("302 Found", &[], "")).await;
        let facts = redirect(srv.addr, "example.test", "/")
            .await
            .expect("probe");
        assert_eq!((facts.status, facts.to_https, facts.hops), (302, false, 0));
    })
    .await;
}

#[tokio::test]
async fn redirect_loop_is_an_error() {
    bounded(async {
        let srv = Responder::plain(|target| match target {
            "/" => moved("302 Found", "/a"),
            _ => moved("302 Found", "/"),
        })
        .await;
        let e = redirect(srv.addr, "example.test", "/")
            .await
            .expect_err("loop");
        assert!(matches!(e, HttpError::RedirectLoop { .. }), "{e:?}");
        assert_eq!(e.reason(), FailureReason::Other);
        assert_eq!(
            e.to_string(),
            "redirect loop: http://example.test/ -> http://example.test/a -> http://example.test/"
        );
        assert_eq!(srv.requests().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn five_redirects_ending_in_https_are_followed() {
    bounded(async {
        let srv = Responder::plain(|target| match target {
            "/4" => moved("301 Moved Permanently", "https://example.test/"),
            _ => moved("301 Moved Permanently", &next_step(target)),
        })
        .await;
        let facts = redirect(srv.addr, "example.test", "/0")
            .await
            .expect("probe");
        assert_eq!((facts.status, facts.to_https, facts.hops), (301, true, 5));
        assert_eq!(srv.requests().len(), 5);
    })
    .await;
}

#[tokio::test]
async fn more_than_five_redirects_is_an_error() {
    bounded(async {
        let srv =
            Responder::plain(|target| moved("301 Moved Permanently", &next_step(target))).await;
        let e = redirect(srv.addr, "example.test", "/0")
            .await
            .expect_err("too many");
        assert!(matches!(e, HttpError::TooManyRedirects { .. }), "{e:?}");
        assert!(e.to_string().starts_with("more than 5 redirects: "), "{e}");
        assert_eq!(srv.requests().len(), 5);
    })
    .await;
}

#[tokio::test]
async fn closed_port_is_connection_refused() {
    bounded(async {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let e = redirect(addr, "example.test", "/")
            .await
            .expect_err("refused");
        assert_eq!(e.reason(), FailureReason::ConnectionRefused, "{e}");
    })
    .await;
}

#[tokio::test]
async fn refused_address_falls_back_to_the_next() {
    bounded(async {
        let srv =
            Responder::plain(|_| moved("301 Moved Permanently", "https://example.test/")).await;
        let closed = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let facts = http::redirect(
            &[closed, srv.addr],
            "example.test",
            "/",
            deadline(),
            http::system_resolve,
        )
        .await
        .expect("probe");
        assert_eq!((facts.status, facts.to_https, facts.hops), (301, true, 1));
    })
    .await;
}

#[tokio::test]
async fn reset_before_answering_is_connection_reset() {
    bounded(async {
        let srv = Responder::start(None, Reply::Reset).await;
        let e = redirect(srv.addr, "example.test", "/")
            .await
            .expect_err("reset");
        assert_eq!(e.reason(), FailureReason::ConnectionReset, "{e}");
    })
    .await;
}

#[tokio::test]
async fn silent_server_times_out_at_the_deadline() {
    bounded(async {
        let srv = Responder::start(None, Reply::Silence).await;
        let start = Instant::now();
        let until = tokio::time::Instant::now() + Duration::from_millis(300);
        let e = http::redirect(
            &[srv.addr],
            "example.test",
            "/",
            until,
            http::system_resolve,
        )
        .await
        .expect_err("timeout");
        let took = start.elapsed();
        assert!(matches!(e, HttpError::Timeout { .. }), "{e:?}");
        assert!(
            (Duration::from_millis(250)..Duration::from_millis(1500)).contains(&took),
            "{took:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn unresolvable_redirect_host_is_dns_error() {
    bounded(async {
        let srv = Responder::plain(|_| moved("302 Found", "http://nowhere.test/")).await;
        let e = http::redirect(
            &[srv.addr],
            "example.test",
            "/",
            deadline(),
            |host, _| async move {
                Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host}: no such host"),
                ))
            },
        )
        .await
        .expect_err("dns");
        assert_eq!(e.reason(), FailureReason::DnsError, "{e}");
    })
    .await;
}

#[tokio::test]
async fn non_http_answer_on_port_80_is_other() {
    bounded(async {
        let srv = Responder::plain(|_| "220 smtp.example.test ESMTP\r\n".to_string()).await;
        let e = redirect(srv.addr, "example.test", "/")
            .await
            .expect_err("not HTTP");
        assert_eq!(e.reason(), FailureReason::Other, "{e}");
    })
    .await;
}

// ---- nginx ---------------------------------------------------------------------------------

#[tokio::test]
async fn nginx_redirect_to_https_is_one_hop() {
    bounded(async {
        let nginx = Nginx::start(&Pki::new().leaf);
        let facts = redirect(nginx.redirect, "localhost", "/some/page?x=1")
            .await
            .expect("probe");
        assert_eq!(
            facts,
            RedirectFacts {
                status: 301,
                to_https: true,
                hops: 1,
                location: Some("https://localhost/some/page?x=1".into()),
            }
        );
    })
    .await;
}

#[tokio::test]
async fn nginx_plain_site_is_not_a_redirect() {
    bounded(async {
        let nginx = Nginx::start(&Pki::new().leaf);
        let facts = redirect(nginx.plain, "localhost", "/")
            .await
            .expect("probe");
        assert_eq!((facts.status, facts.to_https, facts.hops), (200, false, 0));
    })
    .await;
}

#[tokio::test]
async fn nginx_hsts_is_read_over_tls() {
    bounded(async {
        let pki = Pki::new();
        let nginx = Nginx::start(&pki.leaf);
        let facts = pki.get(nginx.tls, "/").await.expect("GET");
        assert_eq!(facts.status, 200);
        assert_eq!(
            facts.hsts,
            Some(Hsts {
                max_age: 63_072_000,
                include_subdomains: true,
                preload: true
            })
        );
        let facts = pki.get(nginx.tls, "/nohsts").await.expect("GET");
        assert_eq!((facts.status, facts.hsts), (200, None));
    })
    .await;
}

// ---- helpers -------------------------------------------------------------------------------

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(WAIT, test)
        .await
        .expect("test finished in time");
}

async fn wait_until(cond: impl Fn() -> bool) {
    while !cond() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(5)
}

async fn redirect(addr: SocketAddr, host: &str, path: &str) -> Result<RedirectFacts, HttpError> {
    http::redirect(&[addr], host, path, deadline(), http::system_resolve).await
}

/// `/3` -> `/4`.
fn next_step(target: &str) -> String {
    let n: u32 = target.trim_start_matches('/').parse().unwrap_or(0);
    format!("/{}", n + 1)
}

fn response(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut r = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        r.push_str(&format!("{name}: {value}\r\n"));
    }
    r.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    r
}

fn ok(headers: &[(&str, &str)]) -> String {
    response("200 OK", headers, "hello\n")
}

fn moved(status: &str, location: &str) -> String {
    response(status, &[("Location", location)], "moved\n")
}

fn not_found() -> String {
    response("404 Not Found", &[], "")
}

/// A CA, a `localhost` leaf, and a client trusting the CA (no ALPN, like the probe).
struct Pki {
    leaf: Cert,
    client: TlsConnector,
}

impl Pki {
    fn new() -> Pki {
        let ca = Ca::root("http test CA");
        let leaf = ca.leaf(&Spec::leaf("localhost"));
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert.der.clone()).expect("CA");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Pki {
            leaf,
            client: TlsConnector::from(Arc::new(config)),
        }
    }

    async fn get(&self, addr: SocketAddr, path: &str) -> Result<http::HttpFacts, HttpError> {
        self.get_as(addr, "localhost", path).await
    }

    async fn get_as(
        &self,
        addr: SocketAddr,
        host: &str,
        path: &str,
    ) -> Result<http::HttpFacts, HttpError> {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let tls = self.client.connect(name, tcp).await.expect("handshake");
        http::get(tls, host, path).await
    }
}

/// How a responder answers a request.
#[derive(Clone)]
enum Reply {
    /// The bytes `f(request target)` returns, then close.
    Bytes(Arc<dyn Fn(&str) -> String + Send + Sync>),
    /// `200 OK` with a body of this many bytes, counting what was written.
    Stream(usize, Arc<AtomicUsize>),
    /// Read the request, then reset the connection (plain TCP only).
    Reset,
    /// Accept and say nothing.
    Silence,
}

/// A hand-written HTTP/1.1 server: one request per connection; records every request head.
struct Responder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Responder {
    async fn plain(f: impl Fn(&str) -> String + Send + Sync + 'static) -> Responder {
        Responder::start(None, Reply::Bytes(Arc::new(f))).await
    }

    async fn tls(leaf: &Cert, f: impl Fn(&str) -> String + Send + Sync + 'static) -> Responder {
        Responder::start(Some(acceptor(leaf)), Reply::Bytes(Arc::new(f))).await
    }

    /// Serves one connection, then stops (so the test can wait for it to finish).
    async fn tls_streaming(leaf: &Cert, body: usize, written: Arc<AtomicUsize>) -> Responder {
        let (listener, addr) = bind().await;
        let acceptor = acceptor(leaf);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            if let Ok((tcp, _)) = listener.accept().await {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls, Reply::Stream(body, written), log).await;
                }
            }
        });
        Responder { addr, seen, task }
    }

    async fn start(tls: Option<TlsAcceptor>, reply: Reply) -> Responder {
        let (listener, addr) = bind().await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (tls, reply, log) = (tls.clone(), reply.clone(), log.clone());
                tokio::spawn(async move {
                    match tls {
                        None if matches!(reply, Reply::Reset) => {
                            let mut tcp = tcp;
                            let _ = read_head(&mut tcp).await;
                            let _ = tcp.set_zero_linger();
                        }
                        None => serve(tcp, reply, log).await,
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                serve(tls, reply, log).await;
                            }
                        }
                    }
                });
            }
        });
        Responder { addr, seen, task }
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

fn acceptor(leaf: &Cert) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der.clone()], leaf.key_der())
        .expect("server cert");
    TlsAcceptor::from(Arc::new(config))
}

async fn serve<S>(mut s: S, reply: Reply, seen: Arc<Mutex<Vec<String>>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Reply::Silence = reply {
        tokio::time::sleep(WAIT).await;
        return;
    }
    let Some(head) = read_head(&mut s).await else {
        return;
    };
    let target = head.split(' ').nth(1).unwrap_or("/").to_string();
    seen.lock().expect("lock").push(head);
    match reply {
        Reply::Bytes(f) => {
            let _ = s.write_all(f(&target).as_bytes()).await;
            let _ = s.shutdown().await;
        }
        Reply::Stream(len, written) => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 16 * 1024];
            let mut sent = 0;
            while sent < len {
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
                sent += chunk.len();
                written.store(sent, Ordering::SeqCst);
            }
        }
        Reply::Reset | Reply::Silence => {}
    }
}

/// The request head, up to the blank line (bounded).
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 16 * 1024 {
        if s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// Debian's nginx on three free loopback ports: `redirect` answers every plain-HTTP request
/// with `301 https://$host$request_uri`, `plain` serves a page, `tls` serves pages over TLS
/// with an HSTS header (except under `/nohsts`). Killed when dropped.
struct Nginx {
    redirect: SocketAddr,
    plain: SocketAddr,
    tls: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn start(leaf: &Cert) -> Nginx {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        std::fs::write(dir.path().join("cert.pem"), &leaf.pem).expect("write");
        std::fs::write(dir.path().join("key.pem"), &leaf.key_pem).expect("write");
        let [redirect, plain, tls] =
            [0; 3].map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())));
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {redirect};
        return 301 https://$host$request_uri;
    }}
    server {{
        listen {plain};
        location / {{ return 200 "plain\n"; }}
    }}
    server {{
        listen {tls} ssl;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        add_header Strict-Transport-Security "{PRELOAD}" always;
        location / {{ return 200 "secure\n"; }}
        location /nohsts {{ add_header X-Hsts none; return 200 "secure\n"; }}
    }}
}}
"#
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write");
        let bin = if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        };
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (scripts/install-test-deps)");
        let mut nginx = Nginx {
            redirect,
            plain,
            tls,
            child,
            _dir: dir,
        };
        let start = Instant::now();
        for addr in [redirect, plain, tls] {
            while std::net::TcpStream::connect(addr).is_err() {
                let log = || std::fs::read_to_string(nginx._dir.path().join("error.log"));
                if let Ok(Some(status)) = nginx.child.try_wait() {
                    panic!("nginx exited with {status}: {:?}", log());
                }
                assert!(
                    start.elapsed() < WAIT,
                    "nginx did not listen on {addr}: {:?}",
                    log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        nginx
    }
}
