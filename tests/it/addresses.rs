//! Names with several addresses: `resolve: all` probes each, with an `ip` label.
//!
//! Needs `tls-exporter-multi.test` to resolve to 127.0.0.2 and 127.0.0.3 (scripts/install-test-deps
//! adds the two lines to /etc/hosts).

use std::net::SocketAddr;

use crate::support::exporter::{write, Exporter};
use crate::support::pki::{Ca, Spec};
use crate::support::servers::{self, Opts};

const MULTI: &str = "tls-exporter-multi.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_all_probes_every_address_with_an_ip_label() {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((MULTI, 1))
        .await
        .map(|a| a.collect())
        .unwrap_or_default();
    assert!(
        addrs.len() >= 2,
        "{MULTI} must resolve to 127.0.0.2 and 127.0.0.3 (run scripts/install-test-deps): {addrs:?}"
    );
    let root = Ca::root("Test Root");
    let good = root.leaf(&Spec::leaf(MULTI).sans(&[MULTI]));
    let wrong = root.leaf(&Spec::leaf("other.example").sans(&["other.example"]));
    // The same port on both addresses: one backend healthy, one serving the wrong certificate.
    let mut a = Opts::new(vec![good.der.clone()], good.key_der());
    a.bind = "127.0.0.2:0".parse().expect("addr");
    let a = servers::rustls(a).await;
    let mut b = Opts::new(vec![wrong.der.clone()], wrong.key_der());
    b.bind = SocketAddr::from(([127, 0, 0, 3], a.addr.port()));
    let _b = servers::rustls(b).await;

    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    let yaml = format!(
        "global: {{interval: 1s, timeout: 800ms, ca_file: ca.pem}}\ntargets:\n  - name: multi\n    address: {MULTI}:{}\n    resolve: all\n    ip_protocol: ip4\n",
        a.addr.port()
    );
    let e = Exporter::start(dir, &yaml);
    let m = e.wait_probes("multi", 1);
    m.assert_lines(&[
        "tls_probe_success{target=\"multi\",ip=\"127.0.0.2\"} 1".to_string(),
        "tls_probe_success{target=\"multi\",ip=\"127.0.0.3\"} 0".to_string(),
        "tls_probe_failure_info{target=\"multi\",ip=\"127.0.0.3\",reason=\"hostname_mismatch\"} 1"
            .to_string(),
        "tls_chain_valid{target=\"multi\",ip=\"127.0.0.2\"} 1".to_string(),
        "tls_probe_failures_total{target=\"multi\",reason=\"hostname_mismatch\"} 1".to_string(),
    ]);
    assert!(
        m.0.contains(
            "tls_probe_phase_duration_seconds{target=\"multi\",ip=\"127.0.0.3\",phase=\"resolve\"}"
        ),
        "{}",
        m.0
    );
    let (_, page) = e.get("/").expect("status page");
    assert!(
        page.contains(&format!("{MULTI}:{} (127.0.0.3)", a.addr.port())),
        "{page}"
    );
    // The status page reads certificate subjects from the facts, per address.
    assert!(page.contains(&format!("CN={MULTI}")), "{page}");
    assert!(page.contains("CN=other.example"), "{page}");

    // `/probe` runs the same contract: every address, each with its `ip` label.
    let (status, body) = e.get("/probe?target=multi").expect("/probe");
    assert_eq!(status, 200, "{body}");
    for line in [
        "tls_probe_success{target=\"multi\",ip=\"127.0.0.2\"} 1",
        "tls_probe_success{target=\"multi\",ip=\"127.0.0.3\"} 0",
        "tls_probe_failure_info{target=\"multi\",ip=\"127.0.0.3\",reason=\"hostname_mismatch\"} 1",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line} in:\n{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_literal_addresses_are_probed() {
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let mut opts = Opts::new(vec![leaf.der.clone()], leaf.key_der());
    opts.bind = "[::1]:0".parse().expect("addr");
    let server = servers::rustls(opts).await;
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    let yaml = format!(
        "global: {{interval: 1s, timeout: 800ms, ca_file: ca.pem}}\ntargets:\n  - name: v6\n    address: \"[::1]:{}\"\n    server_name: localhost\n",
        server.addr.port()
    );
    let e = Exporter::start(dir, &yaml);
    e.wait_probes("v6", 1)
        .assert_lines(&["tls_probe_success{target=\"v6\"} 1".to_string()]);
}
