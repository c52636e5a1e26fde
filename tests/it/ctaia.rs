//! Certificate Transparency and AIA chasing against real servers on loopback: a leaf carrying
//! SCTs signed by test logs (one listed, one not, one tampered) with a log list file, a
//! stapled OCSP response carrying an SCT, and leaves whose intermediates the server leaves out,
//! fetched from an HTTP server at their AIA caIssuers URL (served, unreachable, oversize, and
//! the three-fetch bound).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber, SigningKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::exporter::{write, Exporter};
use crate::support::servers::{self, Opts};

/// A CA that signs with rcgen: its certificate, and the issuer handle.
struct Ca {
    der: CertificateDer<'static>,
    pem: String,
    spki: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

fn root(cn: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let params = ca_params(cn);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().clone(),
        pem: cert.pem(),
        spki: key.subject_public_key_info(),
        issuer: Issuer::new(params, key),
    }
}

fn intermediate(by: &Ca, cn: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let params = ca_params(cn);
    let cert = params.signed_by(&key, &by.issuer).unwrap();
    Ca {
        der: cert.der().clone(),
        pem: cert.pem(),
        spki: key.subject_public_key_info(),
        issuer: Issuer::new(params, key),
    }
}

fn leaf_params(serial: u8) -> CertificateParams {
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "localhost");
    p.serial_number = Some(SerialNumber::from_slice(&[0x51, serial]));
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p
}

fn der_element(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend(contents);
    out
}

/// A test CT log.
struct Log {
    key: KeyPair,
    id: [u8; 32],
}

impl Log {
    fn new() -> Log {
        let key = KeyPair::generate().unwrap();
        let id =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &key.subject_public_key_info())
                .as_ref()
                .try_into()
                .unwrap();
        Log { key, id }
    }

    /// An SCT over a precertificate entry (RFC 6962 §3.2), ECDSA P-256 SHA-256.
    fn precert_sct(&self, timestamp: u64, entry: &[u8]) -> Vec<u8> {
        let mut signed = vec![0, 0];
        signed.extend(timestamp.to_be_bytes());
        signed.extend([0, 1]);
        signed.extend(entry);
        signed.extend([0, 0]);
        let sig = self.key.sign(&signed).unwrap();
        let mut sct = vec![0];
        sct.extend(self.id);
        sct.extend(timestamp.to_be_bytes());
        sct.extend([0, 0, 4, 3]);
        sct.extend((sig.len() as u16).to_be_bytes());
        sct.extend(sig);
        sct
    }

    fn json(&self, operator: &str, description: &str) -> serde_json::Value {
        let b64 = base64::engine::general_purpose::STANDARD;
        serde_json::json!({"name": operator, "email": ["ct@example.test"], "logs": [{
            "description": description,
            "log_id": b64.encode(self.id),
            "key": b64.encode(self.key.subject_public_key_info()),
            "url": "https://ct.example.test/", "mmd": 86400,
            "state": {"usable": {"timestamp": "2024-01-01T00:00:00Z"}},
        }]})
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_scts_are_counted_and_verified_against_the_log_list() {
    let root = root("CT Test Root");
    let (listed, other, unlisted) = (Log::new(), Log::new(), Log::new());
    let leaf_key = KeyPair::generate().unwrap();
    let mut params = leaf_params(1);
    // The CA's precertificate: the same TBS without the SCT extension (RFC 6962 §3.1).
    let precert = params.signed_by(&leaf_key, &root.issuer).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(precert.der()).unwrap();
    let tbs = parsed.tbs_certificate.as_ref();
    let mut entry = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &root.spki)
        .as_ref()
        .to_vec();
    entry.extend(&(tbs.len() as u32).to_be_bytes()[1..]);
    entry.extend(tbs);
    let ts = 1_760_000_000_000;
    let mut tampered = other.precert_sct(ts, &entry);
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let mut body = Vec::new();
    for sct in [
        listed.precert_sct(ts, &entry),
        unlisted.precert_sct(ts, &entry),
        tampered,
    ] {
        body.extend((sct.len() as u16).to_be_bytes());
        body.extend(sct);
    }
    let mut list = (body.len() as u16).to_be_bytes().to_vec();
    list.extend(body);
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
            der_element(0x04, &list),
        ));
    let leaf = params.signed_by(&leaf_key, &root.issuer).unwrap();
    let server = servers::rustls(Opts::new(
        vec![leaf.der().clone()],
        PrivateKeyDer::from(rustls_pki_types::PrivatePkcs8KeyDer::from(
            leaf_key.serialize_der(),
        )),
    ))
    .await;

    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.pem);
    let log_list = serde_json::json!({
        "version": "45.1", "log_list_timestamp": "2026-12-01T00:00:00Z",
        "operators": [listed.json("Test Operator", "Test Log 2026"), other.json("Other Operator", "Other Log")],
    });
    write(dir.path(), "log_list.json", &log_list.to_string());
    let yaml = format!(
        "global: {{interval: 2s, timeout: 1500ms, ct_log_list_file: log_list.json}}\ntargets:\n  - name: t\n    address: 127.0.0.1:{}\n    server_name: localhost\n    ca_file: ca.pem\n",
        server.addr.port()
    );
    let exporter = Exporter::start(dir, &yaml);
    let m = exporter.wait_probes("t", 1);
    let b64 = base64::engine::general_purpose::STANDARD;
    let (l, o, u) = (
        b64.encode(listed.id),
        b64.encode(other.id),
        b64.encode(unlisted.id),
    );
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 1".to_string(),
        "tls_cert_scts{target=\"t\",depth=\"0\",source=\"x509\"} 3".to_string(),
        "tls_cert_scts_verified{target=\"t\",depth=\"0\"} 1".to_string(),
        format!("tls_cert_sct_info{{target=\"t\",depth=\"0\",source=\"x509\",log_id=\"{l}\",operator=\"Test Operator\",log=\"Test Log 2026\",status=\"verified\"}} 1"),
        format!("tls_cert_sct_info{{target=\"t\",depth=\"0\",source=\"x509\",log_id=\"{u}\",operator=\"\",log=\"\",status=\"unknown_log\"}} 1"),
        format!("tls_cert_sct_info{{target=\"t\",depth=\"0\",source=\"x509\",log_id=\"{o}\",operator=\"Other Operator\",log=\"Other Log\",status=\"invalid\"}} 1"),
    ]);
    // No staple, and rustls cannot ask for the TLS extension: neither source has a series.
    m.assert_absent(&[
        "tls_cert_scts{target=\"t\",depth=\"0\",source=\"ocsp\"}".to_string(),
        "tls_cert_scts{target=\"t\",depth=\"0\",source=\"tls\"}".to_string(),
    ]);
}

/// An HTTP server on loopback answering every request with `body` (200), counting requests.
async fn http_server(body: Vec<u8>) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
                    .await;
                let head = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: application/pkix-cert\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = tcp.write_all(head.as_bytes()).await;
                let _ = tcp.write_all(&body).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    (port, hits)
}

/// A leaf signed by `inter` whose AIA caIssuers URL is `url`, served alone (no intermediate).
async fn leaf_only_server(inter: &Ca, serial: u8, url: &str) -> servers::Server {
    let key = KeyPair::generate().unwrap();
    let mut params = leaf_params(serial);
    params.custom_extensions.push(aia_extension(url));
    let leaf = params.signed_by(&key, &inter.issuer).unwrap();
    servers::rustls(Opts::new(
        vec![leaf.der().clone()],
        PrivateKeyDer::from(rustls_pki_types::PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )),
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_intermediate_is_fetched_from_aia_and_only_the_aia_verdict_changes() {
    let root = root("AIA Test Root");
    let inter = intermediate(&root, "AIA Test Intermediate");
    let (served, hits) = http_server(inter.der.to_vec()).await;
    let (oversize, _) = http_server(vec![0x30; 70 << 10]).await;
    let closed = crate::support::exporter::free_port();
    let ok = leaf_only_server(&inter, 1, &format!("http://127.0.0.1:{served}/inter.der")).await;
    let gone = leaf_only_server(&inter, 2, &format!("http://127.0.0.1:{closed}/inter.der")).await;
    let big = leaf_only_server(&inter, 3, &format!("http://127.0.0.1:{oversize}/inter.der")).await;
    let off = leaf_only_server(&inter, 4, &format!("http://127.0.0.1:{served}/inter.der")).await;

    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.pem);
    let target = |name: &str, port: u16, aia: bool| {
        format!("  - name: {name}\n    address: 127.0.0.1:{port}\n    server_name: localhost\n    ca_file: ca.pem\n    aia_fetch: {aia}\n")
    };
    let yaml = format!(
        "global: {{interval: 2s, timeout: 1500ms}}\ntargets:\n{}{}{}{}",
        target("served", ok.addr.port(), true),
        target("unreachable", gone.addr.port(), true),
        target("oversize", big.addr.port(), true),
        target("off", off.addr.port(), false),
    );
    let exporter = Exporter::start(dir, &yaml);
    let m = exporter.wait_for("two probes of every target", |e| {
        ["served", "unreachable", "oversize", "off"]
            .iter()
            .all(|t| {
                e.value(&format!("tls_probes_total{{target=\"{t}\"}}"))
                    .is_some_and(|v| v >= 2.0)
            })
    });
    let mut want = Vec::new();
    for (t, with_aia) in [("served", 1), ("unreachable", 0), ("oversize", 0)] {
        want.extend([
            format!("tls_probe_success{{target=\"{t}\"}} 0"),
            format!("tls_probe_failure_info{{target=\"{t}\",reason=\"unknown_issuer\"}} 1"),
            format!("tls_chain_valid{{target=\"{t}\"}} 0"),
            format!("tls_chain_incomplete{{target=\"{t}\"}} 1"),
            format!("tls_chain_valid_with_aia{{target=\"{t}\"}} {with_aia}"),
        ]);
    }
    m.assert_lines(&want);
    m.assert_absent(&["tls_chain_valid_with_aia{target=\"off\"}".to_string()]);
    // Two probes of "served" and one URL: the second used the cache.
    assert_eq!(hits.load(Ordering::SeqCst), 1, "{}", exporter.log());
    let log = exporter.log();
    assert!(log.contains("the answer is larger than 64 KiB"), "{log}");
    assert!(
        log.contains(&format!("connect to 127.0.0.1:{closed}")),
        "{log}"
    );
}

/// The AIA extension with one caIssuers URL.
fn aia_extension(url: &str) -> CustomExtension {
    let method = der_element(0x06, &[0x2b, 6, 1, 5, 5, 7, 48, 2]);
    let location = der_element(0x86, url.as_bytes());
    let desc = der_element(0x30, &[method, location].concat());
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], der_element(0x30, &desc))
}

/// Serves `files` by request path on `listener` (404 for any other path).
fn serve_paths(listener: TcpListener, files: std::collections::HashMap<String, Vec<u8>>) {
    let files = Arc::new(files);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let files = files.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split(' ').nth(1).unwrap_or("");
                let answer = match files.get(path) {
                    Some(body) => {
                        let mut a =
                            format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                                .into_bytes();
                        a.extend(body);
                        a
                    }
                    None => b"HTTP/1.0 404 Not Found\r\n\r\n".to_vec(),
                };
                let _ = tcp.write_all(&answer).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aia_chasing_fetches_three_issuers_at_most() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let root = root("Depth Root");
    // root → i1 → i2 → i3 → i4; each intermediate names its issuer's URL, i1 none (the root
    // is trusted).
    let mut chain = vec![root];
    let mut files = std::collections::HashMap::new();
    for i in 1..=4 {
        let key = KeyPair::generate().unwrap();
        let mut params = ca_params(&format!("Depth Intermediate {i}"));
        if i > 1 {
            params
                .custom_extensions
                .push(aia_extension(&format!("{base}/i{}.der", i - 1)));
        }
        let by = chain.last().unwrap();
        let cert = params.signed_by(&key, &by.issuer).unwrap();
        files.insert(format!("/i{i}.der"), cert.der().to_vec());
        chain.push(Ca {
            der: cert.der().clone(),
            pem: cert.pem(),
            spki: key.subject_public_key_info(),
            issuer: Issuer::new(params, key),
        });
    }
    serve_paths(listener, files);
    // Three fetches complete a leaf of i3 (i3, i2, i1); a leaf of i4 needs four.
    let mut servers = Vec::new();
    for (serial, by) in [(1, 3), (2, 4)] {
        let key = KeyPair::generate().unwrap();
        let mut params = leaf_params(serial);
        params
            .custom_extensions
            .push(aia_extension(&format!("{base}/i{by}.der")));
        let leaf = params.signed_by(&key, &chain[by].issuer).unwrap();
        servers.push(
            servers::rustls(Opts::new(
                vec![leaf.der().clone()],
                PrivateKeyDer::from(rustls_pki_types::PrivatePkcs8KeyDer::from(
                    key.serialize_der(),
                )),
            ))
            .await,
        );
    }
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &chain[0].pem);
    let yaml = format!(
        "global: {{interval: 2s, timeout: 1500ms, ca_file: ca.pem, aia_fetch: true}}\ntargets:\n  - name: three\n    address: 127.0.0.1:{}\n    server_name: localhost\n  - name: four\n    address: 127.0.0.1:{}\n    server_name: localhost\n",
        servers[0].addr.port(),
        servers[1].addr.port()
    );
    let exporter = Exporter::start(dir, &yaml);
    let m = exporter.wait_for("a probe of both", |e| {
        ["three", "four"].iter().all(|t| {
            e.value(&format!("tls_probes_total{{target=\"{t}\"}}"))
                .is_some_and(|v| v >= 1.0)
        })
    });
    m.assert_lines(&[
        "tls_chain_valid{target=\"three\"} 0".to_string(),
        "tls_chain_valid_with_aia{target=\"three\"} 1".to_string(),
        "tls_chain_valid{target=\"four\"} 0".to_string(),
        "tls_chain_valid_with_aia{target=\"four\"} 0".to_string(),
    ]);
    let log = exporter.log();
    assert!(
        log.contains("the chain could not be completed from AIA")
            && log.contains(&format!("with the issuer from {base}/i2.der")),
        "{log}"
    );
}

impl Log {
    /// An SCT over an X.509 entry (the final certificate), as delivered by OCSP or TLS.
    fn x509_sct(&self, timestamp: u64, leaf: &[u8]) -> Vec<u8> {
        let mut entry = (leaf.len() as u32).to_be_bytes()[1..].to_vec();
        entry.extend(leaf);
        let mut signed = vec![0, 0];
        signed.extend(timestamp.to_be_bytes());
        signed.extend([0, 0]);
        signed.extend(&entry);
        signed.extend([0, 0]);
        let sig = self.key.sign(&signed).unwrap();
        let mut sct = vec![0];
        sct.extend(self.id);
        sct.extend(timestamp.to_be_bytes());
        sct.extend([0, 0, 4, 3]);
        sct.extend((sig.len() as u16).to_be_bytes());
        sct.extend(sig);
        sct
    }
}

/// A good OCSP response for `leaf` signed by its issuer `ca` (ECDSA P-256 SHA-256), whose
/// SingleResponse carries `sct_list` in the SCT extension (RFC 6962 §3.3).
fn ocsp_response_with_scts(
    ca: &Ca,
    ca_key_sign: &KeyPair,
    leaf: &[u8],
    sct_list: &[u8],
) -> Vec<u8> {
    let sha1 = |b: &[u8]| {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, b)
            .as_ref()
            .to_vec()
    };
    let (_, ca_cert) = x509_parser::parse_x509_certificate(ca.der.as_ref()).unwrap();
    let (_, leaf_cert) = x509_parser::parse_x509_certificate(leaf).unwrap();
    let seq = |parts: &[Vec<u8>]| der_element(0x30, &parts.concat());
    let time = |t: &str| der_element(0x18, t.as_bytes());
    let cert_id = seq(&[
        seq(&[
            der_element(0x06, &[0x2b, 0x0e, 0x03, 0x02, 0x1a]),
            vec![0x05, 0x00],
        ]),
        der_element(0x04, &sha1(ca_cert.subject().as_raw())),
        der_element(0x04, &sha1(&ca_cert.public_key().subject_public_key.data)),
        der_element(0x02, leaf_cert.raw_serial()),
    ]);
    let sct_ext = seq(&[
        der_element(0x06, &[0x2b, 6, 1, 4, 1, 0xd6, 0x79, 2, 4, 5]),
        der_element(0x04, &der_element(0x04, sct_list)),
    ]);
    let single = seq(&[
        cert_id,
        vec![0x80, 0x00],
        time("20250101000000Z"),
        der_element(0xa0, &time("20990101000000Z")),
        der_element(0xa1, &seq(&[sct_ext])),
    ]);
    let responder = der_element(
        0xa2,
        &der_element(0x04, &sha1(&ca_cert.public_key().subject_public_key.data)),
    );
    let tbs = seq(&[responder, time("20250101000000Z"), seq(&[single])]);
    let signature = ca_key_sign.sign(&tbs).unwrap();
    let mut bits = vec![0];
    bits.extend(signature);
    let basic = seq(&[
        tbs,
        seq(&[der_element(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 4, 3, 2])]),
        der_element(0x03, &bits),
    ]);
    let bytes = seq(&[
        der_element(0x06, &[0x2b, 6, 1, 5, 5, 7, 48, 1, 1]),
        der_element(0x04, &basic),
    ]);
    seq(&[vec![0x0a, 0x01, 0x00], der_element(0xa0, &bytes)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sct_in_the_stapled_ocsp_response_is_counted_and_verified() {
    let ca_key = KeyPair::generate().unwrap();
    let params = ca_params("OCSP SCT Root");
    let cert = params.self_signed(&ca_key).unwrap();
    let signer = KeyPair::from_pem(&ca_key.serialize_pem()).unwrap();
    let root = Ca {
        der: cert.der().clone(),
        pem: cert.pem(),
        spki: ca_key.subject_public_key_info(),
        issuer: Issuer::new(params, ca_key),
    };
    let log = Log::new();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params(9).signed_by(&leaf_key, &root.issuer).unwrap();
    let sct = log.x509_sct(1_760_000_000_000, leaf.der());
    let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
    list.extend((sct.len() as u16).to_be_bytes());
    list.extend(sct);
    let mut opts = Opts::new(
        vec![leaf.der().clone()],
        PrivateKeyDer::from(rustls_pki_types::PrivatePkcs8KeyDer::from(
            leaf_key.serialize_der(),
        )),
    );
    opts.ocsp = Some(ocsp_response_with_scts(&root, &signer, leaf.der(), &list));
    let server = servers::rustls(opts).await;

    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.pem);
    let log_list = serde_json::json!({"operators": [log.json("Staple Operator", "Staple Log")]});
    write(dir.path(), "log_list.json", &log_list.to_string());
    let yaml = format!(
        "global: {{interval: 2s, timeout: 1500ms, ct_log_list_file: log_list.json}}\ntargets:\n  - name: t\n    address: 127.0.0.1:{}\n    server_name: localhost\n    ca_file: ca.pem\n",
        server.addr.port()
    );
    let exporter = Exporter::start(dir, &yaml);
    let m = exporter.wait_probes("t", 1);
    let id = base64::engine::general_purpose::STANDARD.encode(log.id);
    m.assert_lines(&[
        "tls_ocsp_response_verified{target=\"t\"} 1".to_string(),
        "tls_cert_scts{target=\"t\",depth=\"0\",source=\"x509\"} 0".to_string(),
        "tls_cert_scts{target=\"t\",depth=\"0\",source=\"ocsp\"} 1".to_string(),
        "tls_cert_scts_verified{target=\"t\",depth=\"0\"} 1".to_string(),
        format!("tls_cert_sct_info{{target=\"t\",depth=\"0\",source=\"ocsp\",log_id=\"{id}\",operator=\"Staple Operator\",log=\"Staple Log\",status=\"verified\"}} 1"),
    ]);
}
