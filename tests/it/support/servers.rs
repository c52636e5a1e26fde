//! Real TLS servers on 127.0.0.1:0: tokio-rustls with chosen chain, versions and client auth,
//! and openssl s_server for what rustls cannot serve (legacy protocols, weak keys).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Whether and how the server asks for a client certificate.
#[derive(Clone)]
pub enum ClientAuth {
    None,
    /// Require a certificate issued by one of these roots.
    Required(Vec<CertificateDer<'static>>),
    /// Ask for one, but accept connections without.
    Optional(Vec<CertificateDer<'static>>),
}

/// How a rustls test server behaves.
pub struct Opts {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub versions: Vec<&'static SupportedProtocolVersion>,
    pub client_auth: ClientAuth,
    /// Wait this long after accepting TCP before starting the handshake.
    pub delay: Duration,
    /// Where to listen.
    pub bind: SocketAddr,
    /// Staple this OCSP response.
    pub ocsp: Option<Vec<u8>>,
    /// Answer the first request on each session with these bytes (a whole HTTP response).
    pub http_response: Option<&'static str>,
}

impl Opts {
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Opts {
        Opts {
            chain,
            key,
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            client_auth: ClientAuth::None,
            delay: Duration::ZERO,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ocsp: None,
            http_response: None,
        }
    }
}

/// A running server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves whatever chain it is given, parsed or not (so malformed chains can be sent).
#[derive(Debug)]
struct AnyChain(Arc<CertifiedKey>);

impl ResolvesServerCert for AnyChain {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Starts a tokio-rustls server.
pub async fn rustls(opts: Opts) -> Server {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let signing = provider
        .key_provider
        .load_private_key(opts.key)
        .expect("test key loads");
    let mut certified = CertifiedKey::new(opts.chain, signing);
    certified.ocsp = opts.ocsp;
    let certified = Arc::new(certified);
    let http_response = opts.http_response;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&opts.versions)
        .expect("versions supported");
    let builder = match &opts.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Required(roots) | ClientAuth::Optional(roots) => {
            let mut store = RootCertStore::empty();
            for r in roots {
                store.add(r.clone()).expect("client CA");
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider.clone());
            let v = if matches!(opts.client_auth, ClientAuth::Optional(_)) {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(v.build().expect("client verifier"))
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(AnyChain(certified)));
    config.send_tls13_tickets = 0;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(opts.bind).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let delay = opts.delay;
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    // Hold the session until the client closes (bounded), answering one
                    // HTTP request if asked to.
                    let mut buf = [0u8; 2048];
                    let read =
                        tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await;
                    if let (Some(reply), Ok(Ok(n))) = (http_response, read) {
                        if n > 0 {
                            use tokio::io::AsyncWriteExt;
                            let _ = tls.write_all(reply.as_bytes()).await;
                            let _ = tls.shutdown().await;
                        }
                    }
                }
            });
        }
    });
    Server { addr, task }
}

/// A running `openssl s_server`; killed when dropped.
pub struct OpensslServer {
    pub addr: SocketAddr,
    child: Child,
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `openssl s_server` with `cert`/`key` files and extra arguments, waiting until it
/// accepts connections.
pub fn openssl(cert: &std::path::Path, key: &std::path::Path, extra: &[&str]) -> OpensslServer {
    let port = super::exporter::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", &addr.to_string()])
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is installed (scripts/install-test-deps)");
    let server = OpensslServer { addr, child };
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < super::WAIT,
            "openssl s_server did not start on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}
