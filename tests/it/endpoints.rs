//! Unreachable, slow and hostile endpoints: bounded, classified failures that never delay others.

use crate::support::exporter::{write, Exporter};
use crate::support::hostile::{self, Behaviour};
use crate::support::pki::{Ca, Spec};
use crate::support::servers::{self, Opts};

fn one_target(port: u16, timing: &str) -> (Exporter, crate::support::exporter::Exposition) {
    let yaml =
        format!("global: {{{timing}}}\ntargets:\n  - name: t\n    address: 127.0.0.1:{port}\n");
    let e = Exporter::start(Exporter::dir(), &yaml);
    let m = e.wait_probes("t", 1);
    (e, m)
}

fn failure(reason: &str) -> Vec<String> {
    vec![
        "tls_probe_success{target=\"t\"} 0".to_string(),
        "tls_handshake_success{target=\"t\"} 0".to_string(),
        format!("tls_probe_failure_info{{target=\"t\",reason=\"{reason}\"}} 1"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_reports_connection_refused() {
    let port = crate::support::exporter::free_port();
    let (_e, m) = one_target(port, "interval: 2s, timeout: 1s");
    m.assert_lines(&failure("connection_refused"));
    m.assert_absent(&[
        "tls_chain_valid{target=\"t\"}".to_string(),
        "tls_version_info{target=\"t\"".to_string(),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tarpit_reports_handshake_timeout_within_the_timeout() {
    let peer = hostile::start(Behaviour::Tarpit).await;
    let (_e, m) = one_target(peer.addr.port(), "interval: 3s, timeout: 700ms");
    m.assert_lines(&failure("handshake_timeout"));
    let d = m
        .value("tls_probe_duration_seconds{target=\"t\"}")
        .expect("duration");
    assert!(
        (0.6..1.3).contains(&d),
        "probe bounded by its 700ms timeout, took {d}s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_reply_reports_not_tls() {
    let peer = hostile::start(Behaviour::Garbage).await;
    let (_e, m) = one_target(peer.addr.port(), "interval: 2s, timeout: 1s");
    m.assert_lines(&failure("not_tls"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_reply_reports_not_tls() {
    let peer = hostile::start(Behaviour::PlainHttp).await;
    let (_e, m) = one_target(peer.addr.port(), "interval: 2s, timeout: 1s");
    m.assert_lines(&failure("not_tls"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_reports_connection_reset() {
    let peer = hostile::start(Behaviour::Reset).await;
    let (_e, m) = one_target(peer.addr.port(), "interval: 2s, timeout: 1s");
    m.assert_lines(&failure("connection_reset"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_name_reports_dns_error() {
    let yaml = "global: {interval: 2s, timeout: 1s}\ntargets:\n  - name: t\n    address: no-such-host.invalid:443\n";
    let e = Exporter::start(Exporter::dir(), yaml);
    let m = e.wait_probes("t", 1);
    m.assert_lines(&failure("dns_error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handshake_under_the_timeout_succeeds() {
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let mut opts = Opts::new(vec![leaf.der.clone()], leaf.key_der());
    opts.delay = std::time::Duration::from_millis(400);
    let server = servers::rustls(opts).await;
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    let yaml = format!(
        "global: {{interval: 4s, timeout: 2s, ca_file: ca.pem}}\ntargets:\n  - name: t\n    address: 127.0.0.1:{}\n    server_name: localhost\n",
        server.addr.port()
    );
    let e = Exporter::start(dir, &yaml);
    let m = e.wait_probes("t", 1);
    m.assert_lines(&["tls_probe_success{target=\"t\"} 1".to_string()]);
    let hs = m
        .value("tls_probe_phase_duration_seconds{target=\"t\",phase=\"handshake\"}")
        .expect("handshake phase");
    assert!(
        hs >= 0.4,
        "handshake phase includes the server's 400ms delay: {hs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tarpit_never_delays_other_targets() {
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let tarpits = [
        hostile::start(Behaviour::Tarpit).await,
        hostile::start(Behaviour::Tarpit).await,
        hostile::start(Behaviour::Tarpit).await,
    ];
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    let mut yaml = format!(
        "global: {{interval: 1s, timeout: 900ms, concurrency: 4, ca_file: ca.pem}}\ntargets:\n  - name: good\n    address: 127.0.0.1:{}\n    server_name: localhost\n",
        server.addr.port()
    );
    for (i, t) in tarpits.iter().enumerate() {
        yaml.push_str(&format!(
            "  - name: pit{i}\n    address: 127.0.0.1:{}\n",
            t.addr.port()
        ));
    }
    let e = Exporter::start(dir, &yaml);
    // While three tarpits each hold a slot for their whole timeout, the good target keeps its
    // one-second schedule: five probes, all successful.
    let m = e.wait_probes("good", 5);
    m.assert_lines(&["tls_probe_success{target=\"good\"} 1".to_string()]);
    m.assert_absent(&["tls_probe_failures_total{target=\"good\"".to_string()]);
    assert!(
        m.value("tls_probes_total{target=\"pit0\"}").unwrap_or(0.0) >= 1.0,
        "{}",
        m.0
    );
}
