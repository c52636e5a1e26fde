//! The legacy protocol and weak cipher scan against real servers on loopback: openssl s_server
//! (TLS 1.0/1.1, NULL and anonymous suites), tlslite-ng (SSL 3.0, RC4, 3DES, NULL, anon;
//! tests/support-py), rustls (modern), and scripted peers for what no library still serves
//! (EXPORT) or that misbehave.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tls_exporter::probe::legacy::{
    scan, LegacyVersion, ScanError, ScanResult, WeakClass, MAX_HANDSHAKES,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::{timeout, Instant};

use crate::support::pki::{Ca, Cert, Spec};
use crate::support::servers::{self, Opts};
use crate::support::WAIT;

use LegacyVersion::{Ssl30, Tls10, Tls11, Tls12, Tls13};
use WeakClass::{Anon, CbcSha1, Export, Null, Rc4, TripleDes};

/// Scans `addr` within `WAIT`, four ClientHellos in flight, and checks what every scan must.
async fn scan_ok(addr: SocketAddr) -> ScanResult {
    let deadline = Instant::now() + WAIT;
    let r = timeout(
        WAIT + Duration::from_secs(1),
        scan(addr, Some("localhost"), deadline, 4),
    )
    .await
    .expect("scan returns by its deadline")
    .unwrap_or_else(|e| panic!("scan failed: {e} ({e:?})"));
    assert!(r.handshakes <= MAX_HANDSHAKES, "{r:#?}");
    assert!(r.handshakes >= 5, "{r:#?}");
    r
}

/// Asserts exactly the versions and classes accepted (all others rejected).
fn assert_accepts(r: &ScanResult, versions: &[LegacyVersion], classes: &[WeakClass]) {
    let want_p: Vec<_> = LegacyVersion::ALL
        .iter()
        .map(|v| (*v, versions.contains(v)))
        .collect();
    let want_w: Vec<_> = WeakClass::ALL
        .iter()
        .map(|c| (*c, classes.contains(c)))
        .collect();
    assert_eq!((&r.protocols, &r.weak), (&want_p, &want_w), "{r:#?}");
}

fn chain_of(r: &ScanResult) -> Vec<CertificateDer<'static>> {
    r.legacy_chain
        .clone()
        .unwrap_or_else(|| panic!("legacy chain captured: {r:#?}"))
}

/// An RSA leaf (RSA key exchange needs one) in `dir` as `name.pem` / `name.key`.
fn rsa_leaf(dir: &Path, name: &str) -> (Cert, PathBuf, PathBuf) {
    let root = Ca::root("Legacy Test Root");
    let leaf = root.openssl_leaf(dir, name, "rsa:2048", "-sha256");
    (
        leaf,
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls10_and_tls11_only_server_accepts_exactly_those_and_its_chain_is_captured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Ca::root("Legacy Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let (cert, key) = (dir.path().join("leaf.pem"), dir.path().join("leaf.key"));
    std::fs::write(&cert, &leaf.pem).expect("write");
    std::fs::write(&key, &leaf.key_pem).expect("write");
    let server = servers::openssl(
        &cert,
        &key,
        &["-no_tls1_2", "-no_tls1_3", "-cipher", "DEFAULT:@SECLEVEL=0"],
    );
    let r = scan_ok(server.addr).await;
    // ECDHE-ECDSA-AES*-SHA: CBC with HMAC-SHA1 is all such a server can do.
    assert_accepts(&r, &[Tls10, Tls11], &[CbcSha1]);
    assert_eq!(chain_of(&r), vec![leaf.der.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_rustls_server_accepts_only_tls12_and_tls13_and_no_weak_class() {
    let root = Ca::root("Legacy Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let r = scan_ok(server.addr).await;
    assert_accepts(&r, &[Tls12, Tls13], &[]);
    // Five version hellos, then each class offered over TLS 1.2 only.
    assert_eq!(r.handshakes, 11, "{r:#?}");
    // TLS 1.2 sends the chain in clear too.
    assert_eq!(chain_of(&r), vec![leaf.der.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_only_server_has_no_legacy_chain() {
    let root = Ca::root("Legacy Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let mut opts = Opts::new(vec![leaf.der.clone()], leaf.key_der());
    opts.versions = vec![&rustls::version::TLS13];
    let server = servers::rustls(opts).await;
    let r = scan_ok(server.addr).await;
    assert_accepts(&r, &[Tls13], &[]);
    assert_eq!(
        r.handshakes, 5,
        "no weak class check without a pre-1.3 version: {r:#?}"
    );
    assert!(r.legacy_chain.is_none(), "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_server_with_null_and_anonymous_suites_reports_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_leaf, cert, key) = rsa_leaf(dir.path(), "null");
    let server = servers::openssl(
        &cert,
        &key,
        &["-cipher", "NULL-SHA:ADH-AES128-SHA:@SECLEVEL=0"],
    );
    let r = scan_ok(server.addr).await;
    // ADH-AES128-SHA is also CBC with HMAC-SHA1; TLS 1.3 keeps its own suites.
    assert_accepts(&r, &[Tls10, Tls11, Tls12, Tls13], &[CbcSha1, Null, Anon]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_server_asking_for_another_key_share_still_accepts_tls13() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Ca::root("Legacy Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let (cert, key) = (dir.path().join("leaf.pem"), dir.path().join("leaf.key"));
    std::fs::write(&cert, &leaf.pem).expect("write");
    std::fs::write(&key, &leaf.key_pem).expect("write");
    // Our hello carries an x25519 share only: P-256 needs a HelloRetryRequest.
    let server = servers::openssl(&cert, &key, &["-tls1_3", "-groups", "P-256"]);
    let r = scan_ok(server.addr).await;
    assert_accepts(&r, &[Tls13], &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslv3_server_with_rc4_and_3des_reports_them_and_its_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (leaf, cert, key) = rsa_leaf(dir.path(), "rc4");
    let server = Tlslite::start(
        &cert,
        &key,
        &[
            "--min",
            "3.0",
            "--max",
            "3.1",
            "--ciphers",
            "rc4,3des",
            "--macs",
            "sha,md5",
            "--kx",
            "rsa",
        ],
    );
    let r = scan_ok(server.addr).await;
    // 3DES-EDE-CBC-SHA is CBC with HMAC-SHA1 too.
    assert_accepts(&r, &[Ssl30, Tls10], &[Rc4, TripleDes, CbcSha1]);
    assert_eq!(chain_of(&r), vec![leaf.der.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tlslite_server_with_null_suites_only_reports_null() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_leaf, cert, key) = rsa_leaf(dir.path(), "nullonly");
    let server = Tlslite::start(
        &cert,
        &key,
        &[
            "--min",
            "3.1",
            "--max",
            "3.3",
            "--ciphers",
            "null",
            "--macs",
            "sha,sha256",
            "--kx",
            "rsa",
        ],
    );
    let r = scan_ok(server.addr).await;
    assert_accepts(&r, &[Tls10, Tls11, Tls12], &[Null]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_only_server_reports_anon_and_sends_no_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_leaf, cert, key) = rsa_leaf(dir.path(), "anon");
    let server = Tlslite::start(
        &cert,
        &key,
        &[
            "--min",
            "3.1",
            "--max",
            "3.3",
            "--ciphers",
            "aes128gcm",
            "--macs",
            "aead",
            "--kx",
            "dh_anon,ecdh_anon",
            "--anon",
        ],
    );
    let r = scan_ok(server.addr).await;
    assert_accepts(&r, &[Tls12], &[Anon]);
    assert!(r.legacy_chain.is_none(), "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_suite_chosen_by_a_scripted_tls10_server_is_reported() {
    let root = Ca::root("Legacy Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    // TLS_RSA_EXPORT_WITH_RC4_40_MD5 first, then TLS_RSA_WITH_AES_128_CBC_SHA.
    let peer = Scripted::start(ScriptedTls10 {
        preference: vec![0x0003, 0x002f],
        chain: vec![leaf.der.to_vec()],
    })
    .await;
    let r = scan_ok(peer.addr).await;
    assert_accepts(&r, &[Tls10], &[Rc4, CbcSha1, Export]);
    assert_eq!(chain_of(&r), vec![leaf.der.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_close_or_talk_garbage_accept_nothing() {
    for garbage in [
        &b""[..],
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        &[22, 3, 3, 0xff, 0xff, 2, 0xff],
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(garbage).await;
            }
        });
        let r = scan_ok(addr).await;
        assert_accepts(&r, &[], &[]);
        assert_eq!(r.handshakes, 5, "{r:#?}");
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_an_error() {
    let addr: SocketAddr = format!("127.0.0.1:{}", crate::support::exporter::free_port())
        .parse()
        .expect("addr");
    // An error is all there is: no protocols, no classes.
    let r = scan(addr, None, Instant::now() + WAIT, 4).await;
    assert!(matches!(&r, Err(ScanError::Connect { .. })), "{r:#?}");
    assert!(
        r.as_ref()
            .is_err_and(|e| e.to_string().contains("connect to")),
        "{r:#?}"
    );
}

/// A tlslite-ng server (tests/support-py/tlslite_server.py); killed when dropped. It also exits
/// by itself when its stdin (held here) closes.
struct Tlslite {
    addr: SocketAddr,
    child: Child,
    _stdin: ChildStdin,
}

impl Tlslite {
    fn start(cert: &Path, key: &Path, args: &[&str]) -> Tlslite {
        use std::io::BufRead;
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support-py/tlslite_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is installed");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        // The script prints its port once it listens (or dies, closing stdout).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(WAIT).unwrap_or_default();
        let port: u16 = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "tlslite_server.py did not start (got {line:?}); \
                     pip install -r tests/support-py/requirements.txt"
                )
            });
        Tlslite {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            _stdin: stdin,
        }
    }
}

impl Drop for Tlslite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS 1.0-only server scripted by hand, for suites no library serves any more: it answers
/// a ClientHello with a ServerHello choosing the first suite of `preference` the client
/// offers (TLS 1.0, whatever higher version was asked), then Certificate and
/// ServerHelloDone; an SSL 3.0 hello or one offering none of them gets a fatal alert.
struct ScriptedTls10 {
    preference: Vec<u16>,
    chain: Vec<Vec<u8>>,
}

impl ScriptedTls10 {
    fn answer(&self, hello: &[u8]) -> Vec<u8> {
        let Some((client_version, offered)) = parse_client_hello(hello) else {
            return alert(50); // decode_error
        };
        if client_version < 0x0301 {
            return alert(70); // protocol_version
        }
        let Some(suite) = self.preference.iter().find(|s| offered.contains(s)) else {
            return alert(40); // handshake_failure
        };
        let mut sh = vec![0x03, 0x01];
        sh.extend_from_slice(&[0x42; 32]);
        sh.push(0);
        sh.extend_from_slice(&suite.to_be_bytes());
        sh.push(0);
        let mut certs = Vec::new();
        for c in &self.chain {
            certs.extend_from_slice(&u24(c.len()));
            certs.extend_from_slice(c);
        }
        let mut cert_msg = u24(certs.len()).to_vec();
        cert_msg.extend_from_slice(&certs);
        let mut flight = handshake(2, &sh);
        flight.extend(handshake(11, &cert_msg));
        flight.extend(handshake(14, &[]));
        // Split across records at an awkward place, as real servers may.
        let (a, b) = flight.split_at(flight.len() / 3);
        let mut out = record(22, a);
        out.extend(record(22, b));
        out
    }
}

/// A scripted peer: reads one ClientHello record per connection and writes the answer.
struct Scripted {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Scripted {
    async fn start(script: ScriptedTls10) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let script = std::sync::Arc::new(script);
        let task = tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let script = script.clone();
                tokio::spawn(async move {
                    let mut header = [0u8; 5];
                    if tcp.read_exact(&mut header).await.is_err() {
                        return;
                    }
                    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
                    let mut body = vec![0u8; len];
                    if tcp.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let _ = tcp.write_all(&script.answer(&body)).await;
                    let mut rest = [0u8; 256];
                    let _ = timeout(Duration::from_secs(5), tcp.read(&mut rest)).await;
                });
            }
        });
        Scripted { addr, task }
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// (client_version, offered suites) of a ClientHello handshake message.
fn parse_client_hello(msg: &[u8]) -> Option<(u16, Vec<u16>)> {
    let body = msg.get(4..)?;
    let version = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    let sid_len = usize::from(*body.get(34)?);
    let at = 35 + sid_len;
    let n = usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
    let suites = body.get(at + 2..at + 2 + n)?;
    let suites = suites
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    Some((version, suites))
}

fn u24(n: usize) -> [u8; 3] {
    let b = (n as u32).to_be_bytes();
    [b[1], b[2], b[3]]
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&u24(body.len()));
    m.extend_from_slice(body);
    m
}

fn record(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![kind, 3, 1];
    r.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    r.extend_from_slice(payload);
    r
}

fn alert(description: u8) -> Vec<u8> {
    record(21, &[2, description])
}
