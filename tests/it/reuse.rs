//! Reuse of chain verdicts (`tls::cache`) changes the work, never the verdict: an exporter with
//! the cache and one without (`--debug.no-chain-cache`) probe the same server while it renews
//! its certificate, sends a tampered one, lets one expire, or the CA file changes by reload.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::support::exporter::{write, Exporter, Exposition};
use crate::support::now;
use crate::support::pki::{Ca, Cert, Spec};

/// A rustls server whose chain can be swapped between handshakes (a renewal, a tampered
/// chain); stops when dropped.
struct Swappable {
    port: u16,
    current: Arc<Current>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Current(Mutex<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Arc<CertifiedKey> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .expect("test key loads");
    Arc::new(CertifiedKey::new(chain, signing))
}

impl Swappable {
    async fn start(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Swappable {
        let current = Arc::new(Current(Mutex::new(certified(chain, key))));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions supported")
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.send_tls13_tickets = 0;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut buf = [0u8; 256];
                        let _ =
                            tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await;
                    }
                });
            }
        });
        Swappable {
            port,
            current,
            task,
        }
    }

    /// Serves `chain` (with `key`) from the next handshake on.
    fn swap(&self, chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) {
        *self
            .current
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = certified(chain, key);
    }
}

impl Drop for Swappable {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config(port: u16) -> String {
    format!(
        "global: {{interval: 1s, timeout: 800ms, ca_file: ca.pem, scan: false}}\ntargets:\n  - name: t\n    address: 127.0.0.1:{port}\n    server_name: localhost\n"
    )
}

/// The same config in two exporters: with the chain cache, and without.
fn pair(port: u16, ca: &str) -> [Exporter; 2] {
    let start = |flags: &[&str]| {
        let dir = Exporter::dir();
        write(dir.path(), "ca.pem", ca);
        Exporter::start_with(dir, &config(port), flags)
    };
    // Lifecycle on: one test reloads through POST /-/reload.
    [
        start(&["--web.enable-lifecycle"]),
        start(&["--web.enable-lifecycle", "--debug.no-chain-cache"]),
    ]
}

/// The series that carry the verdict on target `t` and its certificates (no counters, no
/// timings: those differ between two exporters probing at different moments).
fn verdict(e: &Exposition) -> Vec<String> {
    const PREFIXES: [&str; 11] = [
        "tls_probe_success{",
        "tls_probe_failure_info{",
        "tls_handshake_success{",
        "tls_chain_valid{",
        "tls_chain_expiry_timestamp_seconds{",
        "tls_chain_certificates{",
        "tls_chain_order_valid{",
        "tls_chain_incomplete{",
        "tls_cert_info{",
        "tls_cert_not_after_timestamp_seconds{",
        "tls_cert_not_before_timestamp_seconds{",
    ];
    let mut lines: Vec<String> = e
        .lines_of("t")
        .into_iter()
        .filter(|l| PREFIXES.iter().any(|p| l.starts_with(p)))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// Waits until both exporters satisfy `pred` (after at least `probes` probes each), then
/// asserts they report the same verdict.
fn agree(
    pair: &[Exporter; 2],
    what: &str,
    probes: u64,
    pred: impl Fn(&Exposition) -> bool,
) -> Vec<String> {
    let [cached, fresh] = pair;
    let reached = |e: &Exposition| {
        pred(e)
            && e.value("tls_probes_total{target=\"t\"}")
                .is_some_and(|v| v >= probes as f64)
    };
    let a = verdict(&cached.wait_for(&format!("{what} (cached)"), reached));
    let b = verdict(&fresh.wait_for(&format!("{what} (no cache)"), reached));
    assert_eq!(a, b, "{what}: with and without the chain cache disagree");
    a
}

fn fingerprint_is(cert: &Cert) -> impl Fn(&Exposition) -> bool + '_ {
    move |e: &Exposition| {
        let needle = format!("fingerprint_sha256=\"{}\"", cert.fingerprint());
        e.lines_of("t")
            .iter()
            .any(|l| l.starts_with("tls_cert_info{") && l.contains(&needle))
    }
}

fn failed_with(reason: &str) -> impl Fn(&Exposition) -> bool + '_ {
    move |e: &Exposition| {
        e.value(&format!(
            "tls_probe_failure_info{{target=\"t\",reason=\"{reason}\"}}"
        )) == Some(1.0)
    }
}

fn succeeded(e: &Exposition) -> bool {
    e.value("tls_probe_success{target=\"t\"}") == Some(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_mid_run_reports_the_new_certificate() {
    let root = Ca::root("Reuse Root");
    let old = root.leaf(&Spec::leaf("localhost").serial(0x0101));
    let server = Swappable::start(vec![old.der.clone()], old.key_der()).await;
    let exporters = pair(server.port, &root.cert.pem);
    // Two probes each: the second reused the first's verdict in the cached exporter.
    agree(&exporters, "the first certificate", 2, |e| {
        succeeded(e) && fingerprint_is(&old)(e)
    });

    let t0 = now();
    let renewed = root.leaf(
        &Spec::leaf("localhost")
            .serial(0x0202)
            .valid(t0 - 60, t0 + 30 * 86_400),
    );
    server.swap(vec![renewed.der.clone()], renewed.key_der());
    let lines = agree(&exporters, "the renewed certificate", 3, |e| {
        succeeded(e) && fingerprint_is(&renewed)(e)
    });
    let expected = format!(
        "tls_cert_not_after_timestamp_seconds{{target=\"t\",depth=\"0\"}} {}",
        renewed.not_after
    );
    assert!(lines.contains(&expected), "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains(&old.fingerprint())),
        "{lines:#?}"
    );
    // The cached exporter did reuse verdicts; the other judged every chain from scratch.
    let [mut cached, mut fresh] = exporters;
    assert!(shutdown_hits(&mut cached) > 0, "{}", cached.log());
    assert_eq!(shutdown_hits(&mut fresh), 0, "{}", fresh.log());
}

/// Stops the exporter and reads the chain cache hits from its last debug line.
fn shutdown_hits(e: &mut Exporter) -> u64 {
    e.signal("TERM");
    assert_eq!(e.wait_exit(Duration::from_secs(15)), Some(0), "{}", e.log());
    let log = e.log();
    let line = log
        .lines()
        .find(|l| l.contains("chain cache at shutdown"))
        .unwrap_or_else(|| panic!("no chain cache line in the log:\n{log}"));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix("hits="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no hits in {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_changed_in_one_byte_is_judged_again() {
    let root = Ca::root("Reuse Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = Swappable::start(vec![leaf.der.clone()], leaf.key_der()).await;
    let exporters = pair(server.port, &root.cert.pem);
    agree(&exporters, "the genuine certificate", 2, succeeded);

    // One bit of the CA's signature flipped: same key (the handshake signature verifies), so
    // only a path validation of these bytes can tell.
    let mut bytes = leaf.der.as_ref().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last ^= 0x01;
    }
    server.swap(vec![CertificateDer::from(bytes)], leaf.key_der());
    let lines = agree(&exporters, "the tampered certificate", 3, |e| {
        e.value("tls_chain_valid{target=\"t\"}") == Some(0.0)
    });
    assert!(
        lines.contains(&"tls_probe_success{target=\"t\"} 0".to_string()),
        "{lines:#?}"
    );

    server.swap(vec![leaf.der.clone()], leaf.key_der());
    agree(&exporters, "the genuine certificate again", 4, succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_expiring_between_probes_reports_expired() {
    let root = Ca::root("Reuse Root");
    let t0 = now();
    // Long enough for two probes while valid on a loaded machine; short enough for a test.
    let not_after = t0 + 8;
    let leaf = root.leaf(&Spec::leaf("localhost").valid(t0 - 86_400, not_after));
    let server = Swappable::start(vec![leaf.der.clone()], leaf.key_der()).await;
    let exporters = pair(server.port, &root.cert.pem);
    for e in &exporters {
        // Scraped before the check below, so every probe it counts ran while the leaf was valid.
        let before = e.wait_probes("t", 2);
        assert!(
            now() <= not_after,
            "the machine was too slow to probe twice before the leaf expired"
        );
        assert!(succeeded(&before), "{}", before.0);
        assert!(
            !before.0.contains("tls_probe_failures_total{target=\"t\""),
            "{}",
            before.0
        );
    }
    let lines = agree(&exporters, "the expired leaf", 2, failed_with("expired"));
    assert!(
        lines.contains(&"tls_chain_valid{target=\"t\"} 0".to_string()),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("tls_chain_expiry_timestamp_seconds{")),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_with_a_changed_ca_file_judges_the_same_chain_against_it() {
    let root = Ca::root("Reuse Root");
    let other = Ca::root("Other Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = Swappable::start(vec![leaf.der.clone()], leaf.key_der()).await;
    let exporters = pair(server.port, &root.cert.pem);
    agree(&exporters, "the first CA file", 2, succeeded);

    let reload = |pem: &str| {
        for e in &exporters {
            write(e.dir.path(), "ca.pem", pem);
            let (status, body) = e.post("/-/reload").expect("reload");
            assert_eq!(status, 200, "{body}");
        }
    };
    // Same path, new contents: the same chain bytes now lead to an unknown anchor.
    reload(&other.cert.pem);
    agree(
        &exporters,
        "the other CA file",
        3,
        failed_with("unknown_issuer"),
    );
    // And back: valid again.
    reload(&root.cert.pem);
    agree(&exporters, "the first CA file again", 4, succeeded);
}
