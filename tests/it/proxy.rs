//! Probes through real proxies on loopback: squid (HTTP CONNECT, with and without Basic
//! authentication), dante (SOCKS5 and socks5h without authentication) and an in-test SOCKS5
//! server for RFC 1929 username/password (dante's username method checks system accounts).
//! The exporter binary probes TLS and STARTTLS (exim4) targets through them; each case checks
//! the contract on `/metrics` (success, the `proxy` phase, `proxy_error`), that the proxy was
//! really used (its log), and that no credential shows on `/metrics`, the status pages or the
//! exporter's log.

use tls_exporter::config::StartTls;
use tls_exporter::probe::legacy::{scan_via, LegacyVersion, Route};
use tls_exporter::probe::proxy::Destination;
use tokio::time::Instant;

use crate::support::exporter::{free_port, write, Exporter, Exposition};
use crate::support::pki::{Ca, Cert, Spec};
use crate::support::proxies::{self, BLOCKED_PORT};
use crate::support::servers::{self, Opts};
use crate::support::starttls_servers::{self as mail, Tls};
use crate::support::WAIT;

const PASSWORD: &str = "s3cr%t-pw";
/// `PASSWORD` percent-encoded, as written in `proxy_url`.
const PASSWORD_IN_URL: &str = "s3cr%25t-pw";

fn pki() -> (Ca, Cert) {
    let root = Ca::root("Proxy Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    (root, leaf)
}

/// An exporter probing `targets` (YAML list items, two-space indented) every 2 s, trusting
/// `root`.
fn exporter(root: &Ca, targets: &str) -> Exporter {
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    let yaml =
        format!("global: {{interval: 2s, timeout: 1500ms, ca_file: ca.pem}}\ntargets:\n{targets}");
    Exporter::start(dir, &yaml)
}

/// Waits until every one of `names` has a `tls_probe_success` series (any `ip`).
fn probed(e: &Exporter, names: &[&str]) -> Exposition {
    e.wait_for("every target probed", |m| {
        names.iter().all(|n| {
            let series = format!("tls_probe_success{{target=\"{n}\"");
            m.0.lines().any(|l| l.starts_with(&series))
        })
    })
}

/// The target succeeded with a `proxy` phase (and a `connect` phase: to the proxy).
fn assert_through(m: &Exposition, name: &str, log: &str) {
    let ok = m.value(&format!("tls_probe_success{{target=\"{name}\"}}"));
    assert_eq!(ok, Some(1.0), "{name} through the proxy\n{}\n{log}", m.0);
    for phase in ["connect", "proxy", "handshake"] {
        let series =
            format!("tls_probe_phase_duration_seconds{{target=\"{name}\",phase=\"{phase}\"}}");
        assert!(m.value(&series).is_some(), "{series} missing\n{}", m.0);
    }
}

/// The target failed with reason `proxy_error`.
fn assert_proxy_error(m: &Exposition, name: &str, log: &str) {
    let failed = m.value(&format!("tls_probe_success{{target=\"{name}\"}}"));
    let reason = m.value(&format!(
        "tls_probe_failure_info{{target=\"{name}\",reason=\"proxy_error\"}}"
    ));
    assert_eq!(
        (failed, reason),
        (Some(0.0), Some(1.0)),
        "{name}: want proxy_error\n{}\n{log}",
        m.0
    );
}

/// No credential anywhere a person or Prometheus reads: `/metrics`, the status page, every
/// target page, the exporter's log.
fn assert_no_password(e: &Exporter, names: &[&str]) {
    let (_, metrics) = e.get("/metrics").expect("metrics");
    let (_, page) = e.get("/").expect("status page");
    let mut seen = vec![
        ("metrics", metrics),
        ("status page", page),
        ("log", e.log()),
    ];
    for n in names {
        let (_, p) = e.get(&format!("/target/{n}")).expect("target page");
        seen.push(("target page", p));
    }
    for (what, text) in seen {
        for secret in [PASSWORD, PASSWORD_IN_URL, "wrong-pw"] {
            assert!(!text.contains(secret), "{what} shows a password:\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squid_connect_carries_tls_and_refusals_are_proxy_errors() {
    let (root, leaf) = pki();
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let squid = proxies::squid(None);
    let p = squid.addr;
    let port = server.addr.port();
    let closed = free_port();
    let targets = format!(
        "  - {{name: by_name, address: 'localhost:{port}', proxy_url: 'http://{p}'}}\n\
         \x20 - {{name: by_ip, address: '127.0.0.1:{port}', server_name: localhost, proxy_url: 'http://{p}', resolve: all}}\n\
         \x20 - {{name: denied, address: '127.0.0.1:{BLOCKED_PORT}', server_name: localhost, proxy_url: 'http://{p}'}}\n\
         \x20 - {{name: proxy_down, address: 'localhost:{port}', proxy_url: 'http://127.0.0.1:{closed}'}}\n"
    );
    let e = exporter(&root, &targets);
    let names = ["by_name", "by_ip", "denied", "proxy_down"];
    let m = probed(&e, &names);
    let log = squid.log();
    assert_through(&m, "by_name", &log);
    let by_ip = m.value("tls_probe_success{target=\"by_ip\",ip=\"127.0.0.1\"}");
    assert_eq!(by_ip, Some(1.0), "{}\n{log}", m.0);
    assert_proxy_error(&m, "denied", &log);
    assert_proxy_error(&m, "proxy_down", &log);
    // squid really carried them: CONNECT by name, and to the resolved address.
    assert!(log.contains(&format!("CONNECT localhost:{port}")), "{log}");
    assert!(log.contains(&format!("CONNECT 127.0.0.1:{port}")), "{log}");
    let (_, page) = e.get("/target/denied").expect("target page");
    assert!(page.contains("HTTP 403 Forbidden"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squid_basic_auth_accepts_our_credentials_and_never_shows_them() {
    let (root, leaf) = pki();
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let squid = proxies::squid(Some(("probe", PASSWORD)));
    let (p, port) = (squid.addr, server.addr.port());
    let targets = format!(
        "  - {{name: authed, address: 'localhost:{port}', proxy_url: 'http://probe:{PASSWORD_IN_URL}@{p}'}}\n\
         \x20 - {{name: wrong, address: 'localhost:{port}', proxy_url: 'http://probe:wrong-pw@{p}'}}\n\
         \x20 - {{name: anonymous, address: 'localhost:{port}', proxy_url: 'http://{p}'}}\n"
    );
    let e = exporter(&root, &targets);
    let names = ["authed", "wrong", "anonymous"];
    let m = probed(&e, &names);
    let log = squid.log();
    assert_through(&m, "authed", &log);
    assert_proxy_error(&m, "wrong", &log);
    assert_proxy_error(&m, "anonymous", &log);
    let (_, page) = e.get("/target/wrong").expect("target page");
    assert!(
        page.contains("rejected the configured credentials"),
        "{page}"
    );
    assert!(page.contains(&format!("http://probe:***@{p}")), "{page}");
    let (_, page) = e.get("/target/authed").expect("target page");
    assert!(
        page.contains(&format!("<dt>proxy</dt><dd>http://probe:***@{p}</dd>")),
        "{page}"
    );
    assert_no_password(&e, &names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dante_socks5_and_socks5h_carry_tls_and_its_ruleset_refusal_is_a_proxy_error() {
    let (root, leaf) = pki();
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let dante = proxies::dante();
    let (p, port) = (dante.addr, server.addr.port());
    let targets = format!(
        "  - {{name: socks5, address: '127.0.0.1:{port}', server_name: localhost, proxy_url: 'socks5://{p}'}}\n\
         \x20 - {{name: socks5h, address: 'localhost:{port}', proxy_url: 'socks5h://{p}'}}\n\
         \x20 - {{name: blocked, address: 'localhost:{BLOCKED_PORT}', proxy_url: 'socks5h://{p}'}}\n"
    );
    let e = exporter(&root, &targets);
    let m = probed(&e, &["socks5", "socks5h", "blocked"]);
    let log = dante.log();
    assert_through(&m, "socks5", &log);
    assert_through(&m, "socks5h", &log);
    // socks5h: the proxy resolved the name, nothing was resolved here.
    m.assert_absent(&[
        "tls_probe_phase_duration_seconds{target=\"socks5h\",phase=\"resolve\"}".to_string(),
    ]);
    assert_proxy_error(&m, "blocked", &log);
    let (_, page) = e.get("/target/blocked").expect("target page");
    assert!(page.contains("connection not allowed by ruleset"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_username_password_is_sent_and_a_wrong_one_is_a_proxy_error() {
    let (root, leaf) = pki();
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let socks = proxies::socks5_auth("probe", PASSWORD).await;
    let (p, port) = (socks.addr, server.addr.port());
    let targets = format!(
        "  - {{name: authed, address: 'localhost:{port}', proxy_url: 'socks5h://probe:{PASSWORD_IN_URL}@{p}'}}\n\
         \x20 - {{name: wrong, address: 'localhost:{port}', proxy_url: 'socks5://probe:wrong-pw@{p}'}}\n\
         \x20 - {{name: none, address: 'localhost:{port}', proxy_url: 'socks5h://{p}'}}\n"
    );
    let e = exporter(&root, &targets);
    let names = ["authed", "wrong", "none"];
    let m = probed(&e, &names);
    assert_through(&m, "authed", "in-test SOCKS5");
    assert_proxy_error(&m, "wrong", "in-test SOCKS5");
    assert_proxy_error(&m, "none", "in-test SOCKS5");
    assert_no_password(&e, &names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_smtp_goes_through_squid_and_dante() {
    let (root, leaf) = pki();
    let exim = mail::exim(&leaf, Tls::On);
    let squid = proxies::squid(None);
    let dante = proxies::dante();
    let port = exim.addr.port();
    let targets = format!(
        "  - {{name: smtp_connect, address: 'localhost:{port}', starttls: smtp, scan: false, proxy_url: 'http://{}'}}\n\
         \x20 - {{name: smtp_socks5h, address: 'localhost:{port}', starttls: smtp, scan: false, proxy_url: 'socks5h://{}'}}\n",
        squid.addr, dante.addr
    );
    let e = exporter(&root, &targets);
    let m = probed(&e, &["smtp_connect", "smtp_socks5h"]);
    let log = format!("{}\n{}\n{}", exim.log(), squid.log(), dante.log());
    assert_through(&m, "smtp_connect", &log);
    assert_through(&m, "smtp_socks5h", &log);
    let starttls =
        m.value("tls_probe_phase_duration_seconds{target=\"smtp_connect\",phase=\"starttls\"}");
    assert!(starttls.is_some(), "{}", m.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_scan_goes_through_the_proxy_and_agrees_with_a_direct_one() {
    let (_root, leaf) = pki();
    let exim = mail::exim(&leaf, Tls::On);
    let dante = proxies::dante();
    let proxy = tls_exporter::config::Proxy::parse(&format!("socks5h://{}", dante.addr))
        .expect("proxy url");
    let smtp = |proxy: Option<tls_exporter::config::Proxy>| Route {
        proxy: proxy.map(std::sync::Arc::new),
        starttls: Some(StartTls::Smtp),
        server_name: "localhost".to_string(),
        ..Route::default()
    };
    let deadline = Instant::now() + WAIT;
    let direct = scan_via(
        Destination::Addr(exim.addr),
        smtp(None),
        Some("localhost"),
        deadline,
        2,
    )
    .await
    .unwrap_or_else(|e| panic!("direct scan: {e}\n{}", exim.log()));
    let via = scan_via(
        Destination::new("localhost", exim.addr.port()),
        smtp(Some(proxy)),
        Some("localhost"),
        deadline,
        2,
    )
    .await
    .unwrap_or_else(|e| panic!("scan through dante: {e}\n{}", dante.log()));
    assert_eq!(
        (&via.protocols, &via.weak),
        (&direct.protocols, &direct.weak)
    );
    assert_eq!(via.accepts(LegacyVersion::Tls12), Some(true), "{via:#?}");
    // Every ClientHello of the scan went through dante.
    let log = dante.log();
    let passed = log.matches("tcp/connect").count();
    assert!(
        passed >= via.handshakes as usize,
        "{passed} < {}\n{log}",
        via.handshakes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_redirect_check_goes_through_squid() {
    // A plain-HTTP side that redirects to https://.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let site = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let reply = "HTTP/1.1 301 Moved Permanently\r\nLocation: https://localhost/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    let squid = proxies::squid(None);
    let (root, _) = pki();
    let targets = format!(
        "  - {{name: plain, address: 'localhost:{port}', probe: http_redirect, proxy_url: 'http://{}'}}\n",
        squid.addr
    );
    let e = exporter(&root, &targets);
    let m = probed(&e, &["plain"]);
    let log = squid.log();
    let ok = m.value("tls_probe_success{target=\"plain\"}");
    assert_eq!(ok, Some(1.0), "{}\n{log}\n{}", m.0, e.log());
    assert!(log.contains(&format!("CONNECT localhost:{port}")), "{log}");
    site.abort();
}
