//! OCSP stapling end to end: a tokio-rustls server staples a response minted by `openssl ocsp`,
//! a tokio-rustls client captures what its certificate verifier receives, and
//! `tls::ocsp::check_chain` must parse and verify exactly those bytes.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{
    ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme, SupportedProtocolVersion,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, TrustAnchor, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use tls_exporter::tls::ocsp::{self, CertStatus, OcspError};

use crate::support::pki::{Ca, Cert, Spec};
use crate::support::{now, WAIT};

/// The leaf's serial, and how `openssl ca`'s index writes it.
pub(crate) const SERIAL: u64 = 0x1122_3344_5566_7788;
pub(crate) const SERIAL_HEX: &str = "1122334455667788";
/// Revocation time written into the index: 2024-01-02T03:04:05Z.
pub(crate) const REVOKED_AT: i64 = 1_704_164_645;

/// Root → intermediate → leaf; the intermediate answers OCSP for the leaf.
struct Pki {
    root: Ca,
    inter: Ca,
    leaf: Cert,
}

fn pki() -> Pki {
    let root = Ca::root("OCSP Test Root");
    let inter = root.intermediate(&Spec::leaf("OCSP Test Intermediate").sans(&[]).serial(2));
    let leaf = inter.leaf(&Spec::leaf("localhost").serial(SERIAL));
    Pki { root, inter, leaf }
}

fn anchors(root: &Ca) -> Vec<TrustAnchor<'static>> {
    let anchor = webpki::anchor_from_trusted_cert(&root.cert.der).expect("root is an anchor");
    vec![anchor.to_owned()]
}

/// `openssl ocsp` as `signer` (a CA's certificate and key) answering for `leaf` of `issuer`,
/// from an index with one line (`V` or `R`) for the leaf's serial; next update in a day.
pub(crate) fn respond(
    dir: &Path,
    index_line: &str,
    signer: &Ca,
    issuer: &Ca,
    leaf: &Cert,
) -> Vec<u8> {
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write");
    write("signer.pem", &signer.cert.pem);
    write("signer.key", &signer.cert.key_pem);
    write("issuer.pem", &issuer.cert.pem);
    write("leaf.pem", &leaf.pem);
    write("index.txt", index_line);
    let out = Command::new("openssl")
        .arg("ocsp")
        .current_dir(dir)
        .args([
            "-index",
            "index.txt",
            "-rsigner",
            "signer.pem",
            "-rkey",
            "signer.key",
        ])
        .args([
            "-CA",
            "issuer.pem",
            "-issuer",
            "issuer.pem",
            "-cert",
            "leaf.pem",
        ])
        .args(["-respout", "resp.der", "-ndays", "1"])
        .output()
        .expect("openssl is installed (scripts/install-test-deps)");
    assert!(
        out.status.success(),
        "openssl ocsp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join("resp.der")).expect("read response")
}

pub(crate) fn good() -> String {
    format!("V\t351231000000Z\t\t{SERIAL_HEX}\tunknown\t/CN=localhost\n")
}

pub(crate) fn revoked() -> String {
    format!("R\t351231000000Z\t240102030405Z,keyCompromise\t{SERIAL_HEX}\tunknown\t/CN=localhost\n")
}

/// What the client's verifier was handed by rustls.
#[derive(Debug, Default, Clone)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    ocsp: Vec<u8>,
}

/// Accepts any chain, keeping the chain and the stapled OCSP response it was given.
#[derive(Debug)]
struct Capture {
    seen: Arc<Mutex<Option<Seen>>>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        let seen = Seen {
            chain,
            ocsp: ocsp_response.to_vec(),
        };
        *self.seen.lock().expect("capture lock") = Some(seen);
        Ok(ServerCertVerified::assertion())
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

/// One handshake over loopback with a server stapling `ocsp` (nothing when empty), speaking
/// only `version`. Returns what the client's verifier saw.
async fn handshake(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    ocsp: Vec<u8>,
    version: &'static SupportedProtocolVersion,
) -> Seen {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .expect("version supported")
        .with_no_client_auth()
        .with_single_cert_with_ocsp(chain, key, ocsp)
        .expect("server certificate and key match");
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut tls = acceptor.accept(tcp).await.expect("server handshake");
        // Hold the session until the client closes.
        let mut buf = [0u8; 64];
        let _ = tls.read(&mut buf).await;
    });

    let seen = Arc::new(Mutex::new(None));
    let capture = Capture {
        seen: seen.clone(),
        algs: provider.signature_verification_algorithms,
    };
    let client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .expect("version supported")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(capture))
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from("localhost").expect("server name");
    let session = async {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let mut tls = connector
            .connect(name, tcp)
            .await
            .expect("client handshake");
        let (_, conn) = tls.get_ref();
        assert_eq!(conn.protocol_version(), Some(version.version));
        tls.shutdown().await.expect("close_notify");
        server.await.expect("server task");
    };
    timeout(WAIT, session)
        .await
        .expect("handshake within the bound");
    let seen = seen.lock().expect("capture lock").clone();
    seen.expect("the verifier was called")
}

#[tokio::test]
async fn stapled_good_response_verifies_over_tls13_and_tls12() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("temp dir");
    let resp = respond(dir.path(), &good(), &pki.inter, &pki.inter, &pki.leaf);
    let anchors = anchors(&pki.root);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let chain = vec![pki.leaf.der.clone(), pki.inter.cert.der.clone()];
        let seen = handshake(chain, pki.leaf.key_der(), resp.clone(), version).await;
        assert_eq!(
            seen.ocsp, resp,
            "{:?}: stapled bytes arrive intact",
            version.version
        );
        let stapled =
            ocsp::check_chain(&seen.ocsp, &seen.chain, &anchors, now()).expect("verifies");
        assert_eq!(stapled.status, CertStatus::Good);
        assert_eq!(stapled.next_update, Some(stapled.this_update + 86_400));
        assert!(stapled.is_current(now()));
    }
}

#[tokio::test]
async fn stapled_revoked_response_reports_revocation_time() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("temp dir");
    let resp = respond(dir.path(), &revoked(), &pki.inter, &pki.inter, &pki.leaf);
    let chain = vec![pki.leaf.der.clone(), pki.inter.cert.der.clone()];
    let seen = handshake(chain, pki.leaf.key_der(), resp, &rustls::version::TLS13).await;
    let stapled =
        ocsp::check_chain(&seen.ocsp, &seen.chain, &anchors(&pki.root), now()).expect("verifies");
    assert_eq!(stapled.status, CertStatus::Revoked { at: REVOKED_AT });
    assert_eq!(stapled.status.as_label(), "revoked");
}

#[tokio::test]
async fn leaf_issued_by_a_trust_anchor_verifies_with_the_anchor_key() {
    let root = Ca::root("OCSP Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost").serial(SERIAL));
    let dir = tempfile::tempdir().expect("temp dir");
    let resp = respond(dir.path(), &good(), &root, &root, &leaf);
    let chain = vec![leaf.der.clone()];
    let seen = handshake(chain, leaf.key_der(), resp, &rustls::version::TLS12).await;
    assert_eq!(seen.chain.len(), 1);
    let stapled =
        ocsp::check_chain(&seen.ocsp, &seen.chain, &anchors(&root), now()).expect("verifies");
    assert_eq!(stapled.status, CertStatus::Good);
}

#[tokio::test]
async fn stapled_response_signed_by_another_ca_is_unverifiable() {
    let pki = pki();
    let stranger = Ca::root("Someone Else");
    let dir = tempfile::tempdir().expect("temp dir");
    let resp = respond(dir.path(), &good(), &stranger, &pki.inter, &pki.leaf);
    let chain = vec![pki.leaf.der.clone(), pki.inter.cert.der.clone()];
    let seen = handshake(chain, pki.leaf.key_der(), resp, &rustls::version::TLS13).await;
    let err = ocsp::check_chain(&seen.ocsp, &seen.chain, &anchors(&pki.root), now())
        .expect_err("a stranger's signature");
    assert!(matches!(err, OcspError::Unverifiable(_)), "{err}");
}

#[tokio::test]
async fn server_without_staple_hands_the_verifier_an_empty_response() {
    let pki = pki();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let chain = vec![pki.leaf.der.clone(), pki.inter.cert.der.clone()];
        let seen = handshake(chain, pki.leaf.key_der(), Vec::new(), version).await;
        assert!(seen.ocsp.is_empty(), "{:?}", version.version);
    }
}
