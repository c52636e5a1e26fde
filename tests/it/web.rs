//! `--web.config.file` end to end: the real binary behind rustls and basic auth, and refusing to
//! start on an invalid web config. A small client of our own speaks HTTP/1.1 over TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::exporter::{free_port, write};
use crate::support::pki::{Ca, Cert, Spec};
use crate::support::WAIT;

/// The exporter started with a web config; killed when dropped.
struct Secured {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Secured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Secured {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

/// How the test client talks to the exporter.
#[derive(Clone)]
struct Client {
    tls: Option<Arc<ClientConfig>>,
    auth: Option<(String, String)>,
}

impl Client {
    fn plain() -> Client {
        Client {
            tls: None,
            auth: None,
        }
    }

    /// TLS trusting only `ca`, verifying the name `localhost`.
    fn tls(ca: &Ca) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca.cert.der.clone())
            .expect("test CA is a valid anchor");
        let config = ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Client {
            tls: Some(Arc::new(config)),
            auth: None,
        }
    }

    fn auth(mut self, user: &str, password: &str) -> Client {
        self.auth = Some((user.to_string(), password.to_string()));
        self
    }

    /// `GET path` with `Connection: close`: (status, response head, body).
    async fn get(&self, addr: SocketAddr, path: &str) -> std::io::Result<(u16, String, String)> {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some((user, password)) = &self.auth {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            req.push_str(&format!("Authorization: Basic {token}\r\n"));
        }
        req.push_str("\r\n");
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let mut raw = Vec::new();
        match &self.tls {
            None => {
                let mut s = tcp;
                s.write_all(req.as_bytes()).await?;
                s.read_to_end(&mut raw).await?;
            }
            Some(config) => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let name = ServerName::try_from("localhost").expect("valid name");
                let mut s = connector.connect(name, tcp).await?;
                s.write_all(req.as_bytes()).await?;
                // A peer closing without close_notify after a complete response is fine here.
                if let Err(e) = s.read_to_end(&mut raw).await {
                    if e.kind() != std::io::ErrorKind::UnexpectedEof || raw.is_empty() {
                        return Err(e);
                    }
                }
            }
        }
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad response: {raw:?}")))?;
        Ok((status, head.to_string(), body.to_string()))
    }
}

/// Files for a TLS listener: the CA that signed the exporter's certificate, in `dir`.
fn pki(dir: &std::path::Path) -> (Ca, Cert) {
    let ca = Ca::root("Web Test Root");
    let leaf = ca.leaf(&Spec::leaf("localhost"));
    write(dir, "server.pem", &leaf.pem);
    write(dir, "server.key", &leaf.key_pem);
    (ca, leaf)
}

fn spawn(dir: &std::path::Path, web: &std::path::Path, addr: SocketAddr) -> Child {
    let config = write(dir, "config.yml", "targets: []\n");
    Command::new(env!("CARGO_BIN_EXE_tls_exporter"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg(format!("--web.config.file={}", web.display()))
        .arg("--log.level=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).expect("log file"))
        .spawn()
        .expect("spawn tls_exporter")
}

/// Starts the exporter with `web_yaml` as web.yml in `dir`; waits until `client` gets any HTTP
/// answer from `/-/healthy`.
async fn start(dir: tempfile::TempDir, web_yaml: &str, client: &Client) -> Secured {
    let web = write(dir.path(), "web.yml", web_yaml);
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let child = spawn(dir.path(), &web, addr);
    let mut e = Secured { addr, dir, child };
    let start = Instant::now();
    while client.get(e.addr, "/-/healthy").await.is_err() {
        if let Ok(Some(status)) = e.child.try_wait() {
            panic!("exporter exited with {status}: {}", e.log());
        }
        assert!(
            start.elapsed() < WAIT,
            "exporter did not start: {}",
            e.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    e
}

fn tls_yaml() -> String {
    "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n".to_string()
}

/// TLS plus one user, `scraper`, whose password is `right horse`; the hash at cost 4 for speed.
fn tls_auth_yaml() -> (String, String) {
    let hash = bcrypt::hash("right horse", 4).expect("bcrypt");
    (
        format!("{}basic_auth_users:\n  scraper: '{hash}'\n", tls_yaml()),
        hash,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_serves_a_scrape_over_rustls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, _) = pki(dir.path());
    let client = Client::tls(&ca);
    let e = start(dir, &tls_yaml(), &client).await;
    // Plain HTTP on the TLS port gets no HTTP answer, and does not hurt the listener.
    let plain = tokio::time::timeout(WAIT, Client::plain().get(e.addr, "/metrics"))
        .await
        .expect("plain attempt within the wait");
    assert!(
        plain.as_ref().map_or(true, |(s, _, _)| *s != 200),
        "plain HTTP was served on the TLS listener: {plain:?}"
    );
    let (status, _, body) = tokio::time::timeout(WAIT, client.get(e.addr, "/metrics"))
        .await
        .expect("scrape within the wait")
        .expect("scrape over TLS");
    assert_eq!(status, 200, "{body}\n--- log ---\n{}", e.log());
    assert!(body.contains("\ntls_exporter_targets 0\n"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_tls_exits_zero_despite_idle_and_stalled_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, _) = pki(dir.path());
    let client = Client::tls(&ca);
    let mut e = start(dir, &tls_yaml(), &client).await;
    // One connection that never starts its handshake, one handshaken and idle.
    let _stalled = tokio::net::TcpStream::connect(e.addr)
        .await
        .expect("connect");
    let tcp = tokio::net::TcpStream::connect(e.addr)
        .await
        .expect("connect");
    let config = client.tls.clone().expect("tls client");
    let _idle = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    let started = Instant::now();
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(e.child.id().to_string())
        .status()
        .expect("kill");
    assert!(ok.success());
    let code = loop {
        if let Some(status) = e.child.try_wait().expect("wait") {
            break status.code();
        }
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "still running 4s after SIGTERM: {}",
            e.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(code, Some(0), "{}", e.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_gets_401_with_a_basic_challenge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, _) = pki(dir.path());
    let (yaml, _) = tls_auth_yaml();
    let e = start(dir, &yaml, &Client::tls(&ca)).await;
    let client = Client::tls(&ca).auth("scraper", "wrong horse");
    let (status, head, _) = tokio::time::timeout(WAIT, client.get(e.addr, "/metrics"))
        .await
        .expect("answer within the wait")
        .expect("request");
    assert_eq!(status, 401, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("\r\nwww-authenticate: basic realm=\"tls_exporter\""),
        "{head}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_get_401_on_every_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, _) = pki(dir.path());
    let (yaml, _) = tls_auth_yaml();
    let client = Client::tls(&ca);
    let e = start(dir, &yaml, &client).await;
    for path in ["/metrics", "/", "/-/healthy", "/-/ready"] {
        let (status, head, _) = tokio::time::timeout(WAIT, client.get(e.addr, path))
            .await
            .expect("answer within the wait")
            .expect("request");
        assert_eq!(status, 401, "{path}: {head}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_password_gets_the_scrape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, _) = pki(dir.path());
    let (yaml, _) = tls_auth_yaml();
    let e = start(dir, &yaml, &Client::tls(&ca)).await;
    let client = Client::tls(&ca).auth("scraper", "right horse");
    // Twice: the second is answered from the verification cache.
    for _ in 0..2 {
        let (status, _, body) = tokio::time::timeout(WAIT, client.get(e.addr, "/metrics"))
            .await
            .expect("answer within the wait")
            .expect("request");
        assert_eq!(status, 200, "{body}\n--- log ---\n{}", e.log());
        assert!(body.contains("\ntls_exporter_targets 0\n"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_works_without_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = bcrypt::hash("pw", 4).expect("bcrypt");
    // bcrypt reads 72 bytes of a password: a longer one must not pass on its first 72.
    let long = "x".repeat(72);
    let long_hash = bcrypt::hash(&long, 4).expect("bcrypt");
    let yaml = format!("basic_auth_users:\n  scraper: '{hash}'\n  long: '{long_hash}'\n");
    let e = start(dir, &yaml, &Client::plain()).await;
    let denied = Client::plain()
        .get(e.addr, "/metrics")
        .await
        .expect("request");
    assert_eq!(denied.0, 401, "{}", denied.1);
    let allowed = Client::plain()
        .auth("scraper", "pw")
        .get(e.addr, "/metrics")
        .await
        .expect("request");
    assert_eq!(allowed.0, 200, "{}", allowed.2);
    let full = Client::plain()
        .auth("long", &long)
        .get(e.addr, "/metrics")
        .await
        .expect("request");
    assert_eq!(full.0, 200, "{}", full.2);
    let longer = Client::plain()
        .auth("long", &format!("{long}suffix"))
        .get(e.addr, "/metrics")
        .await
        .expect("request");
    assert_eq!(longer.0, 401, "{}", longer.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_logs_metrics_and_status_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, leaf) = pki(dir.path());
    let (yaml, hash) = tls_auth_yaml();
    let e = start(dir, &yaml, &Client::tls(&ca)).await;
    let client = Client::tls(&ca).auth("scraper", "right horse");
    let mut seen = e.log();
    for path in ["/metrics", "/"] {
        let (status, head, body) = client.get(e.addr, path).await.expect("request");
        assert_eq!(status, 200, "{path}: {head}");
        seen.push_str(&head);
        seen.push_str(&body);
    }
    let wrong = Client::tls(&ca).auth("scraper", "guess");
    let _ = wrong.get(e.addr, "/metrics").await.expect("request");
    seen.push_str(&e.log());
    let key_line = leaf.key_pem.lines().nth(1).expect("key body");
    for secret in [hash.as_str(), &hash[7..], key_line, "right horse", "guess"] {
        assert!(!seen.contains(secret), "secret {secret:?} leaked:\n{seen}");
    }
}

#[test]
fn invalid_web_config_refuses_to_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let web: PathBuf = write(
        dir.path(),
        "web.yml",
        "basic_auth_users:\n  scraper: plaintext-password\n",
    );
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let mut child = spawn(dir.path(), &web, addr);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > WAIT {
            let _ = child.kill();
            panic!("exporter kept running with an invalid web config");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    assert_eq!(status.code(), Some(1), "{log}");
    let expected = format!(
        "{}:2:12: basic_auth_users.scraper: not a bcrypt hash",
        web.display()
    );
    assert!(log.contains(&expected), "expected {expected:?} in:\n{log}");
    assert!(!log.contains("plaintext-password"), "{log}");
}

/// One fixture per web config mistake: `tests/fixtures/web/invalid/<area>-<what>.yml` must fail
/// to load with exactly the lines of its sibling `.expected` (file paths shown relative to the
/// fixture directory).
#[test]
fn every_invalid_web_fixture_reports_its_exact_message() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/web/invalid");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no fixtures in {}", dir.display());
    let prefix = format!("{}/", dir.display());
    let mut mismatches = Vec::new();
    for name in &names {
        let expected_path = dir.join(name.replace(".yml", ".expected"));
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        let got = match tls_exporter::web_config::load(&dir.join(name)) {
            Ok(w) => format!("loaded: {w:?}"),
            Err(e) => format!("{}\n", e.to_string().replace(&prefix, "")),
        };
        if got != expected {
            mismatches.push(format!("{name}: want\n{expected}got\n{got}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
