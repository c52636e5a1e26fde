//! Deep checks through the exporter: STARTTLS targets, stapled OCSP, HSTS over the session, and
//! the plain-HTTP redirect probe. (The protocol modules have their own tests; these prove the
//! wiring: config fields, phases, reasons and metric lines.)

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::exporter::{write, Exporter, Exposition};
use crate::support::pki::{Ca, Spec};
use crate::support::servers::{self, Opts};
use crate::support::starttls_servers;

/// One target `t` with `extra` YAML lines, probed once; the CA in ca.pem.
fn probe_once(
    dir: tempfile::TempDir,
    root: &Ca,
    address: &str,
    extra: &str,
) -> (Exporter, Exposition) {
    write(dir.path(), "ca.pem", &root.cert.pem);
    let yaml = format!(
        "global: {{interval: 2s, timeout: 1500ms, ca_file: ca.pem}}\ntargets:\n  - name: t\n    address: \"{address}\"\n{extra}"
    );
    let e = Exporter::start(dir, &yaml);
    let m = e.wait_probes("t", 1);
    (e, m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_target_upgrades_then_probes_with_a_starttls_phase() {
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = starttls_servers::nntp(Some(starttls_servers::rustls_config(&leaf))).await;
    let extra = "    server_name: localhost\n    starttls: nntp\n";
    let (_e, m) = probe_once(Exporter::dir(), &root, &server.addr.to_string(), extra);
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 1".to_string(),
        "tls_chain_valid{target=\"t\"} 1".to_string(),
    ]);
    assert!(
        m.value("tls_probe_phase_duration_seconds{target=\"t\",phase=\"starttls\"}")
            .is_some(),
        "{}",
        m.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_starttls_is_starttls_refused() {
    let root = Ca::root("Test Root");
    let server = starttls_servers::nntp(None).await;
    let extra = "    server_name: localhost\n    starttls: nntp\n";
    let (_e, m) = probe_once(Exporter::dir(), &root, &server.addr.to_string(), extra);
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 0".to_string(),
        "tls_probe_failure_info{target=\"t\",reason=\"starttls_refused\"} 1".to_string(),
    ]);
    m.assert_absent(&[
        "tls_probe_phase_duration_seconds{target=\"t\",phase=\"handshake\"}".to_string(),
    ]);
}

/// Root → intermediate → leaf (the serial the OCSP fixtures answer for), stapling `index`'s
/// verdict signed by the intermediate.
async fn stapling(index: &str) -> (Ca, servers::Server, tempfile::TempDir) {
    let root = Ca::root("OCSP Root");
    let inter = root.intermediate(&Spec::leaf("OCSP Intermediate").sans(&[]).serial(2));
    let leaf = inter.leaf(&Spec::leaf("localhost").serial(crate::ocsp::SERIAL));
    let dir = Exporter::dir();
    let response = crate::ocsp::respond(dir.path(), index, &inter, &inter, &leaf);
    let mut opts = Opts::new(
        vec![leaf.der.clone(), inter.cert.der.clone()],
        leaf.key_der(),
    );
    opts.ocsp = Some(response);
    (root, servers::rustls(opts).await, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stapled_good_response_is_reported() {
    let (root, server, dir) = stapling(&crate::ocsp::good()).await;
    let (_e, m) = probe_once(
        dir,
        &root,
        &server.addr.to_string(),
        "    server_name: localhost\n",
    );
    m.assert_lines(&[
        "tls_ocsp_stapled{target=\"t\"} 1".to_string(),
        "tls_ocsp_response_verified{target=\"t\"} 1".to_string(),
        "tls_ocsp_cert_status_info{target=\"t\",status=\"good\"} 1".to_string(),
    ]);
    let this = m
        .value("tls_ocsp_this_update_timestamp_seconds{target=\"t\"}")
        .expect("thisUpdate");
    let next = m
        .value("tls_ocsp_next_update_timestamp_seconds{target=\"t\"}")
        .expect("nextUpdate");
    assert!(
        (next - this - 86_400.0).abs() < 5.0,
        "-ndays 1: {this} {next}"
    );
    m.assert_absent(&["tls_ocsp_revocation_timestamp_seconds{target=\"t\"}".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stapled_revoked_response_reports_revocation_time() {
    let (root, server, dir) = stapling(&crate::ocsp::revoked()).await;
    let (_e, m) = probe_once(
        dir,
        &root,
        &server.addr.to_string(),
        "    server_name: localhost\n",
    );
    m.assert_lines(&[
        "tls_ocsp_cert_status_info{target=\"t\",status=\"revoked\"} 1".to_string(),
        format!(
            "tls_ocsp_revocation_timestamp_seconds{{target=\"t\"}} {}",
            crate::ocsp::REVOKED_AT
        ),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_staple_is_reported_as_not_stapled() {
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let (_e, m) = probe_once(
        Exporter::dir(),
        &root,
        &server.addr.to_string(),
        "    server_name: localhost\n",
    );
    m.assert_lines(&["tls_ocsp_stapled{target=\"t\"} 0".to_string()]);
    m.assert_absent(&["tls_ocsp_cert_status_info{target=\"t\"".to_string()]);
}

async fn https_answering(reply: &'static str) -> (Ca, servers::Server) {
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let mut opts = Opts::new(vec![leaf.der.clone()], leaf.key_der());
    opts.http_response = Some(reply);
    (root, servers::rustls(opts).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_header_is_reported_over_the_probed_session() {
    let (root, server) = https_answering(
        "HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=31536000; includeSubDomains; preload\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    )
    .await;
    let extra = "    server_name: localhost\n    http: {path: /health}\n";
    let (_e, m) = probe_once(Exporter::dir(), &root, &server.addr.to_string(), extra);
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 1".to_string(),
        "tls_http_status_code{target=\"t\"} 200".to_string(),
        "tls_hsts_max_age_seconds{target=\"t\"} 31536000".to_string(),
        "tls_hsts_include_subdomains{target=\"t\"} 1".to_string(),
        "tls_hsts_preload{target=\"t\"} 1".to_string(),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_hsts_header_reports_zero() {
    let (root, server) =
        https_answering("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
    let extra = "    server_name: localhost\n    http: {}\n";
    let (_e, m) = probe_once(Exporter::dir(), &root, &server.addr.to_string(), extra);
    m.assert_lines(&[
        "tls_http_status_code{target=\"t\"} 404".to_string(),
        "tls_hsts_max_age_seconds{target=\"t\"} 0".to_string(),
        "tls_hsts_include_subdomains{target=\"t\"} 0".to_string(),
        "tls_hsts_preload{target=\"t\"} 0".to_string(),
    ]);
}

/// A plain-HTTP server answering every request with `reply`.
async fn plain_http(reply: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp.write_all(reply.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_redirect_probe_reports_the_redirect_to_https() {
    let (addr, task) = plain_http(
        "HTTP/1.1 301 Moved Permanently\r\nLocation: https://example.test/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    let root = Ca::root("unused");
    let (_e, m) = probe_once(
        Exporter::dir(),
        &root,
        &addr.to_string(),
        "    probe: http_redirect\n",
    );
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 1".to_string(),
        "tls_http_redirect_to_https{target=\"t\"} 1".to_string(),
        "tls_http_redirect_hops{target=\"t\"} 1".to_string(),
        "tls_http_status_code{target=\"t\"} 301".to_string(),
    ]);
    m.assert_absent(&[
        "tls_handshake_success{target=\"t\"}".to_string(),
        "tls_chain_valid{target=\"t\"}".to_string(),
    ]);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_serving_plain_http_fails_the_redirect_probe() {
    let (addr, task) =
        plain_http("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi").await;
    let root = Ca::root("unused");
    let (_e, m) = probe_once(
        Exporter::dir(),
        &root,
        &addr.to_string(),
        "    probe: http_redirect\n",
    );
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 0".to_string(),
        "tls_probe_failure_info{target=\"t\",reason=\"other\"} 1".to_string(),
        "tls_http_redirect_to_https{target=\"t\"} 0".to_string(),
        "tls_http_redirect_hops{target=\"t\"} 0".to_string(),
        "tls_http_status_code{target=\"t\"} 200".to_string(),
    ]);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_only_server_is_scanned_and_its_certificate_still_reported() {
    let root = Ca::root("Test Root");
    let dir = Exporter::dir();
    let leaf = root.openssl_leaf(dir.path(), "old", "ec:ec_paramgen_curve:P-256", "-sha256");
    let server = servers::openssl(
        &dir.path().join("old.pem"),
        &dir.path().join("old.key"),
        &["-no_tls1_2", "-no_tls1_3", "-cipher", "DEFAULT:@SECLEVEL=0"],
    );
    write(dir.path(), "ca.pem", &root.cert.pem);
    let yaml = format!(
        "global: {{interval: 2s, timeout: 1500ms, ca_file: ca.pem, scan_interval: 3s}}\ntargets:\n  - name: t\n    address: {}\n    server_name: localhost\n",
        server.addr
    );
    let e = Exporter::start(dir, &yaml);
    let m = e.wait_for("a scan", |m| {
        m.value("tls_scan_handshakes{target=\"t\"}").is_some()
            && m.value("tls_probe_success{target=\"t\"}").is_some()
    });
    m.assert_lines(&[
        "tls_probe_failure_info{target=\"t\",reason=\"protocol_version\"} 1".to_string(),
        "tls_protocol_accepted{target=\"t\",version=\"SSL 3.0\"} 0".to_string(),
        "tls_protocol_accepted{target=\"t\",version=\"TLS 1.0\"} 1".to_string(),
        "tls_protocol_accepted{target=\"t\",version=\"TLS 1.1\"} 1".to_string(),
        "tls_protocol_accepted{target=\"t\",version=\"TLS 1.2\"} 0".to_string(),
        "tls_protocol_accepted{target=\"t\",version=\"TLS 1.3\"} 0".to_string(),
        "tls_weak_cipher_accepted{target=\"t\",class=\"CBC-SHA1\"} 1".to_string(),
        "tls_weak_cipher_accepted{target=\"t\",class=\"RC4\"} 0".to_string(),
        // The certificate, captured from the TLS 1.1 handshake.
        "tls_chain_valid{target=\"t\"} 1".to_string(),
        "tls_chain_certificates{target=\"t\"} 1".to_string(),
        format!(
            "tls_cert_not_after_timestamp_seconds{{target=\"t\",depth=\"0\"}} {}",
            leaf.not_after
        ),
    ]);
    let hellos = m
        .value("tls_scan_handshakes{target=\"t\"}")
        .expect("handshakes");
    assert!((5.0..=30.0).contains(&hellos), "{hellos}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_server_scan_finds_no_legacy_protocol_and_scan_false_disables_it() {
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    let yaml = format!(
        "global: {{interval: 2s, timeout: 1500ms, ca_file: ca.pem, scan_interval: 3s}}\ntargets:\n  - name: t\n    address: {0}\n    server_name: localhost\n  - name: off\n    address: {0}\n    server_name: localhost\n    scan: false\n",
        server.addr
    );
    let e = Exporter::start(dir, &yaml);
    let m = e.wait_for("a scan", |m| {
        m.value("tls_scan_handshakes{target=\"t\"}").is_some()
    });
    m.assert_lines(&[
        "tls_protocol_accepted{target=\"t\",version=\"TLS 1.0\"} 0".to_string(),
        "tls_protocol_accepted{target=\"t\",version=\"TLS 1.2\"} 1".to_string(),
        "tls_protocol_accepted{target=\"t\",version=\"TLS 1.3\"} 1".to_string(),
        "tls_weak_cipher_accepted{target=\"t\",class=\"3DES\"} 0".to_string(),
        "tls_weak_cipher_accepted{target=\"t\",class=\"CBC-SHA1\"} 0".to_string(),
    ]);
    assert!(
        m.lines_of("off")
            .iter()
            .all(|l| !l.starts_with("tls_scan_") && !l.starts_with("tls_protocol_accepted")),
        "{}",
        m.0
    );
}
