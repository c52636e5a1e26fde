//! Chain verdicts and negotiated parameters against real rustls and openssl servers.

use rustls_pki_types::CertificateDer;

use crate::support::exporter::{write, Exporter, Exposition};
use crate::support::now;
use crate::support::pki::{pem_chain, Ca, Cert, Spec};
use crate::support::servers::{self, ClientAuth, Opts};

/// Root → intermediate → leaf, the usual shape of a public chain.
struct Pki {
    root: Ca,
    inter: Ca,
    leaf: Cert,
}

fn pki() -> Pki {
    let root = Ca::root("Test Root");
    let inter = root.intermediate(&Spec::leaf("Test Intermediate").sans(&[]).serial(2));
    let leaf = inter.leaf(&Spec::leaf("localhost").serial(0x1122_3344_5566_7788));
    Pki { root, inter, leaf }
}

fn chain(certs: &[&Cert]) -> Vec<CertificateDer<'static>> {
    certs.iter().map(|c| c.der.clone()).collect()
}

/// Probes `server` once as target `t` with `ca` as trust anchors (plus `extra` YAML lines).
fn probe(dir: tempfile::TempDir, port: u16, ca: &str, extra: &str) -> (Exporter, Exposition) {
    write(dir.path(), "ca.pem", ca);
    let yaml = format!(
        "global: {{interval: 2s, timeout: 1500ms}}\ntargets:\n  - name: t\n    address: 127.0.0.1:{port}\n    server_name: localhost\n    ca_file: ca.pem\n{extra}"
    );
    let exporter = Exporter::start(dir, &yaml);
    let exposition = exporter.wait_probes("t", 1);
    (exporter, exposition)
}

fn failing(reason: &str) -> Vec<String> {
    vec![
        "tls_probe_success{target=\"t\"} 0".to_string(),
        format!("tls_probe_failure_info{{target=\"t\",reason=\"{reason}\"}} 1"),
        format!("tls_probe_failures_total{{target=\"t\",reason=\"{reason}\"}} 1"),
    ]
}

/// A chain problem: the handshake completed, the chain was received and judged invalid.
fn invalid_chain(reason: &str) -> Vec<String> {
    let mut v = failing(reason);
    v.push("tls_handshake_success{target=\"t\"} 1".to_string());
    v.push("tls_chain_valid{target=\"t\"} 0".to_string());
    v
}

fn absent_chain_expiry() -> Vec<String> {
    vec!["tls_chain_expiry_timestamp_seconds{target=\"t\"}".to_string()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_chain_reports_every_certificate_and_parameter() {
    let p = pki();
    let server = servers::rustls(Opts::new(
        chain(&[&p.leaf, &p.inter.cert]),
        p.leaf.key_der(),
    ))
    .await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &p.root.cert.pem, "");
    let expiry = p
        .leaf
        .not_after
        .min(p.inter.cert.not_after)
        .min(p.root.cert.not_after);
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 1".to_string(),
        "tls_handshake_success{target=\"t\"} 1".to_string(),
        "tls_chain_valid{target=\"t\"} 1".to_string(),
        "tls_chain_certificates{target=\"t\"} 2".to_string(),
        "tls_chain_order_valid{target=\"t\"} 1".to_string(),
        "tls_chain_incomplete{target=\"t\"} 0".to_string(),
        "tls_version_info{target=\"t\",version=\"TLS 1.3\"} 1".to_string(),
        "tls_key_exchange_info{target=\"t\",group=\"X25519MLKEM768\"} 1".to_string(),
        "tls_client_auth_requested{target=\"t\"} 0".to_string(),
        format!("tls_cert_not_after_timestamp_seconds{{target=\"t\",depth=\"0\"}} {}", p.leaf.not_after),
        format!("tls_cert_not_after_timestamp_seconds{{target=\"t\",depth=\"1\"}} {}", p.inter.cert.not_after),
        format!("tls_cert_not_before_timestamp_seconds{{target=\"t\",depth=\"0\"}} {}", p.leaf.not_before),
        format!("tls_cert_not_before_timestamp_seconds{{target=\"t\",depth=\"1\"}} {}", p.inter.cert.not_before),
        format!("tls_chain_expiry_timestamp_seconds{{target=\"t\"}} {expiry}"),
        format!(
            "tls_cert_info{{target=\"t\",depth=\"0\",cn=\"localhost\",subject=\"CN=localhost\",issuer=\"CN=Test Intermediate\",\
             serial=\"11:22:33:44:55:66:77:88\",fingerprint_sha256=\"{}\",dns_names=\"localhost,127.0.0.1\",\
             key=\"ECDSA P-256\",signature_algorithm=\"ecdsa-with-SHA256\"}} 1",
            p.leaf.fingerprint()
        ),
        "tls_probes_total{target=\"t\"} 1".to_string(),
    ]);
    // rustls picks among the AEAD suites we offer; any TLS 1.3 suite name is IANA-spelled.
    let cipher = m
        .lines_of("t")
        .into_iter()
        .find(|l| l.starts_with("tls_cipher_info"))
        .expect("cipher line")
        .to_string();
    assert!(
        cipher.starts_with("tls_cipher_info{target=\"t\",cipher=\"TLS_AES_")
            || cipher.contains("TLS_CHACHA20"),
        "{cipher}"
    );
    for phase in ["resolve", "connect", "handshake"] {
        let series = format!("tls_probe_phase_duration_seconds{{target=\"t\",phase=\"{phase}\"}}");
        let v = m
            .value(&series)
            .unwrap_or_else(|| panic!("{series} missing:\n{}", m.0));
        assert!((0.0..1.5).contains(&v), "{series} = {v}");
    }
    let days = m
        .value("tls_cert_days_to_expiry{target=\"t\",depth=\"0\"}")
        .expect("days to expiry");
    assert!((89.9..=90.0).contains(&days), "{days}");
    m.assert_absent(&[
        "tls_probe_failure_info{target=\"t\"".to_string(),
        "tls_probe_failures_total{target=\"t\"".to_string(),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_leaf_reports_expired_reason() {
    let p = pki();
    let t = now();
    let leaf = p
        .inter
        .leaf(&Spec::leaf("localhost").valid(t - 10 * 86_400, t - 86_400));
    let server = servers::rustls(Opts::new(chain(&[&leaf, &p.inter.cert]), leaf.key_der())).await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &p.root.cert.pem, "");
    let mut want = invalid_chain("expired");
    want.push(format!(
        "tls_cert_not_after_timestamp_seconds{{target=\"t\",depth=\"0\"}} {}",
        leaf.not_after
    ));
    m.assert_lines(&want);
    m.assert_absent(&absent_chain_expiry());
    let days = m
        .value("tls_cert_days_to_expiry{target=\"t\",depth=\"0\"}")
        .expect("days");
    assert!(
        (-1.01..=-0.99).contains(&days),
        "negative once expired: {days}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_yet_valid_leaf_reports_not_yet_valid() {
    let p = pki();
    let t = now();
    let leaf = p
        .inter
        .leaf(&Spec::leaf("localhost").valid(t + 86_400, t + 90 * 86_400));
    let server = servers::rustls(Opts::new(chain(&[&leaf, &p.inter.cert]), leaf.key_der())).await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &p.root.cert.pem, "");
    m.assert_lines(&invalid_chain("not_yet_valid"));
    m.assert_absent(&absent_chain_expiry());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_intermediate_reports_expired() {
    let root = Ca::root("Test Root");
    let t = now();
    let inter = root.intermediate(
        &Spec::leaf("Old Intermediate")
            .sans(&[])
            .valid(t - 400 * 86_400, t - 3_600),
    );
    let leaf = inter.leaf(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(chain(&[&leaf, &inter.cert]), leaf.key_der())).await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &root.cert.pem, "");
    let mut want = invalid_chain("expired");
    want.push(format!(
        "tls_cert_not_after_timestamp_seconds{{target=\"t\",depth=\"1\"}} {}",
        inter.cert.not_after
    ));
    m.assert_lines(&want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_from_another_ca_reports_unknown_issuer() {
    let p = pki();
    let other = Ca::root("Someone Else");
    let server = servers::rustls(Opts::new(
        chain(&[&p.leaf, &p.inter.cert]),
        p.leaf.key_der(),
    ))
    .await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &other.cert.pem, "");
    m.assert_lines(&invalid_chain("unknown_issuer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_intermediate_reports_unknown_issuer() {
    let p = pki();
    let server = servers::rustls(Opts::new(chain(&[&p.leaf]), p.leaf.key_der())).await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &p.root.cert.pem, "");
    let mut want = invalid_chain("unknown_issuer");
    want.push("tls_chain_certificates{target=\"t\"} 1".to_string());
    want.push("tls_chain_incomplete{target=\"t\"} 1".to_string());
    want.push("tls_chain_order_valid{target=\"t\"} 1".to_string());
    m.assert_lines(&want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misordered_chain_is_reported_but_still_verifies() {
    let p = pki();
    // leaf, root, intermediate: complete, verifiable, but not in issuing order.
    let server = servers::rustls(Opts::new(
        chain(&[&p.leaf, &p.root.cert, &p.inter.cert]),
        p.leaf.key_der(),
    ))
    .await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &p.root.cert.pem, "");
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 1".to_string(),
        "tls_chain_order_valid{target=\"t\"} 0".to_string(),
        "tls_chain_incomplete{target=\"t\"} 0".to_string(),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_leaf_reports_self_signed() {
    let p = pki();
    let selfie = Ca::self_signed(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(chain(&[&selfie.cert]), selfie.cert.key_der())).await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &p.root.cert.pem, "");
    m.assert_lines(&invalid_chain("self_signed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_leaf_pinned_as_ca_file_is_valid() {
    // `openssl req -x509` style: self-signed, CA:TRUE, trusted by naming it in ca_file.
    let selfie = Ca::self_signed(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(chain(&[&selfie.cert]), selfie.cert.key_der())).await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &selfie.cert.pem, "");
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 1".to_string(),
        "tls_chain_valid{target=\"t\"} 1".to_string(),
        format!(
            "tls_chain_expiry_timestamp_seconds{{target=\"t\"}} {}",
            selfie.cert.not_after
        ),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_for_another_name_reports_hostname_mismatch() {
    let p = pki();
    let leaf = p
        .inter
        .leaf(&Spec::leaf("other.example").sans(&["other.example"]));
    let server = servers::rustls(Opts::new(chain(&[&leaf, &p.inter.cert]), leaf.key_der())).await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &p.root.cert.pem, "");
    let mut want = invalid_chain("hostname_mismatch");
    want.push(format!(
        "tls_cert_not_after_timestamp_seconds{{target=\"t\",depth=\"0\"}} {}",
        leaf.not_after
    ));
    m.assert_lines(&want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_1024_leaf_reports_weak_key() {
    let root = Ca::root("Test Root");
    let dir = Exporter::dir();
    let leaf = root.openssl_leaf(dir.path(), "weak", "rsa:1024", "-sha256");
    let server = servers::openssl(
        &dir.path().join("weak.pem"),
        &dir.path().join("weak.key"),
        &["-cipher", "DEFAULT:@SECLEVEL=0"],
    );
    let (_e, m) = probe(dir, server.addr.port(), &root.cert.pem, "");
    let mut want = invalid_chain("weak_key");
    want.push(format!(
        "tls_cert_not_after_timestamp_seconds{{target=\"t\",depth=\"0\"}} {}",
        leaf.not_after
    ));
    m.assert_lines(&want);
    assert!(m.0.contains("key=\"RSA 1024\""), "{}", m.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha1_signed_leaf_reports_bad_signature_algorithm() {
    let root = Ca::root("Test Root");
    let dir = Exporter::dir();
    let leaf = root.openssl_leaf(dir.path(), "sha1", "ec:ec_paramgen_curve:P-256", "-sha1");
    let server = servers::rustls(Opts::new(chain(&[&leaf]), leaf.key_der())).await;
    let (_e, m) = probe(dir, server.addr.port(), &root.cert.pem, "");
    m.assert_lines(&invalid_chain("bad_signature_algorithm"));
    assert!(
        m.0.contains("signature_algorithm=\"ecdsa-with-SHA1\""),
        "{}",
        m.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_only_server_negotiates_tls12() {
    let p = pki();
    let mut opts = Opts::new(chain(&[&p.leaf, &p.inter.cert]), p.leaf.key_der());
    opts.versions = vec![&rustls::version::TLS12];
    let server = servers::rustls(opts).await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &p.root.cert.pem, "");
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 1".to_string(),
        "tls_version_info{target=\"t\",version=\"TLS 1.2\"} 1".to_string(),
        "tls_cipher_info{target=\"t\",cipher=\"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\"} 1"
            .to_string(),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_only_server_negotiates_tls13() {
    let p = pki();
    let mut opts = Opts::new(chain(&[&p.leaf, &p.inter.cert]), p.leaf.key_der());
    opts.versions = vec![&rustls::version::TLS13];
    let server = servers::rustls(opts).await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &p.root.cert.pem, "");
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 1".to_string(),
        "tls_version_info{target=\"t\",version=\"TLS 1.3\"} 1".to_string(),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls10_only_server_reports_protocol_version() {
    let root = Ca::root("Test Root");
    let dir = Exporter::dir();
    root.openssl_leaf(dir.path(), "old", "ec:ec_paramgen_curve:P-256", "-sha256");
    let server = servers::openssl(
        &dir.path().join("old.pem"),
        &dir.path().join("old.key"),
        &["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"],
    );
    let (_e, m) = probe(dir, server.addr.port(), &root.cert.pem, "");
    m.assert_lines(&failing("protocol_version"));
    m.assert_lines(&["tls_handshake_success{target=\"t\"} 0".to_string()]);
}

/// mTLS: the server requires a certificate from `client_ca`.
async fn mtls(
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    client: Option<&Cert>,
    required: bool,
) -> Exposition {
    let p = pki();
    let client_ca = Ca::root("Client CA");
    let mut opts = Opts::new(chain(&[&p.leaf, &p.inter.cert]), p.leaf.key_der());
    opts.versions = versions;
    opts.client_auth = if required {
        ClientAuth::Required(vec![client_ca.cert.der.clone()])
    } else {
        ClientAuth::Optional(vec![client_ca.cert.der.clone()])
    };
    let server = servers::rustls(opts).await;
    let dir = Exporter::dir();
    let extra = match client {
        Some(c) => {
            write(dir.path(), "client.pem", &pem_chain(&[c]));
            write(dir.path(), "client.key", &c.key_pem);
            "    client_cert_file: client.pem\n    client_key_file: client.key\n"
        }
        None => "",
    };
    let (_e, m) = probe(dir, server.addr.port(), &p.root.cert.pem, extra);
    let _ = client_ca;
    m
}

fn client_cert(ca: &Ca) -> Cert {
    ca.leaf(&Spec::leaf("probe-client").sans(&["probe-client.example"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_without_client_certificate_is_rejected() {
    for versions in [vec![&rustls::version::TLS13], vec![&rustls::version::TLS12]] {
        let m = mtls(versions, None, true).await;
        m.assert_lines(&failing("client_certificate_rejected"));
        m.assert_lines(&[
            "tls_handshake_success{target=\"t\"} 0".to_string(),
            "tls_client_auth_requested{target=\"t\"} 1".to_string(),
        ]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_with_untrusted_client_certificate_is_rejected() {
    let stranger = Ca::root("Stranger CA");
    for versions in [vec![&rustls::version::TLS13], vec![&rustls::version::TLS12]] {
        let m = mtls(versions, Some(&client_cert(&stranger)), true).await;
        m.assert_lines(&failing("client_certificate_rejected"));
        m.assert_lines(&[
            "tls_handshake_success{target=\"t\"} 0".to_string(),
            "tls_client_auth_requested{target=\"t\"} 1".to_string(),
        ]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_with_trusted_client_certificate_succeeds() {
    // The server trusts "Client CA"; mint the client certificate from the same CA object.
    let p = pki();
    let client_ca = Ca::root("Client CA");
    let client = client_cert(&client_ca);
    for versions in [vec![&rustls::version::TLS13], vec![&rustls::version::TLS12]] {
        let mut opts = Opts::new(chain(&[&p.leaf, &p.inter.cert]), p.leaf.key_der());
        opts.versions = versions;
        opts.client_auth = ClientAuth::Required(vec![client_ca.cert.der.clone()]);
        let server = servers::rustls(opts).await;
        let dir = Exporter::dir();
        write(dir.path(), "client.pem", &client.pem);
        write(dir.path(), "client.key", &client.key_pem);
        let extra = "    client_cert_file: client.pem\n    client_key_file: client.key\n";
        let (_e, m) = probe(dir, server.addr.port(), &p.root.cert.pem, extra);
        m.assert_lines(&[
            "tls_probe_success{target=\"t\"} 1".to_string(),
            "tls_client_auth_requested{target=\"t\"} 1".to_string(),
            format!(
                "tls_client_cert_not_after_timestamp_seconds{{target=\"t\"}} {}",
                client.not_after
            ),
        ]);
        let days = m
            .value("tls_client_cert_days_to_expiry{target=\"t\"}")
            .expect("client cert days");
        assert!((89.9..=90.0).contains(&days), "{days}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_requested_but_optional_succeeds_without_certificate() {
    let m = mtls(vec![&rustls::version::TLS13], None, false).await;
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 1".to_string(),
        "tls_client_auth_requested{target=\"t\"} 1".to_string(),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_certificate_is_a_classified_failure() {
    let p = pki();
    let mut junk = p.leaf.der.as_ref().to_vec();
    junk.truncate(junk.len() / 2);
    let server = servers::rustls(Opts::new(
        vec![CertificateDer::from(junk)],
        p.leaf.key_der(),
    ))
    .await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &p.root.cert.pem, "");
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 0".to_string(),
        "tls_chain_valid{target=\"t\"} 0".to_string(),
        "tls_chain_certificates{target=\"t\"} 1".to_string(),
        "tls_probe_failure_info{target=\"t\",reason=\"other\"} 1".to_string(),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_chain_within_limits_is_reported_whole() {
    let p = pki();
    // 40 copies of the intermediate (~15 KiB): odd but valid; every certificate is reported.
    let mut certs = vec![p.leaf.der.clone()];
    certs.extend(std::iter::repeat_n(p.inter.cert.der.clone(), 40));
    let server = servers::rustls(Opts::new(certs, p.leaf.key_der())).await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &p.root.cert.pem, "");
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 1".to_string(),
        "tls_chain_certificates{target=\"t\"} 41".to_string(),
        format!(
            "tls_cert_not_after_timestamp_seconds{{target=\"t\",depth=\"40\"}} {}",
            p.inter.cert.not_after
        ),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_chain_is_a_bounded_handshake_failure() {
    let p = pki();
    // ~90 KiB of certificates: more than a TLS handshake message may carry (64 KiB).
    let mut certs = vec![p.leaf.der.clone()];
    certs.extend(std::iter::repeat_n(p.inter.cert.der.clone(), 250));
    let server = servers::rustls(Opts::new(certs, p.leaf.key_der())).await;
    let (_e, m) = probe(Exporter::dir(), server.addr.port(), &p.root.cert.pem, "");
    m.assert_lines(&failing("handshake_failure"));
    m.assert_absent(&["tls_chain_certificates{target=\"t\"}".to_string()]);
}
