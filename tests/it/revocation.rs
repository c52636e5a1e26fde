//! Revocation checks end to end: certificates whose AIA names an `openssl ocsp` responder and
//! whose CRL Distribution Point names a tiny HTTP server on loopback, probed by the real
//! exporter with `revocation:` on.
//!
//! Answers arrive beside the probes (the first probe starts the fetch, a later one reports it),
//! so every test waits for the series it expects, then checks the rest.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::exporter::{free_port, write, Exporter, Exposition};
use crate::support::file_server::Files;
use crate::support::pki::{Ca, Cert, Spec};
use crate::support::servers::{self, Opts};
use crate::support::{now, WAIT};

const SERIAL: u64 = 0x1122_3344_5566_7788;
const SERIAL_HEX: &str = "1122334455667788";
const OTHER_SERIAL: u64 = 0x2233_4455_6677_8899;
/// Revocation time in the responder's index: 2024-01-02T03:04:05Z.
const REVOKED_AT: i64 = 1_704_164_645;

/// Root → intermediate → leaf, the leaf naming `ocsp` and/or `crl`.
struct Pki {
    root: Ca,
    inter: Ca,
    leaf: Cert,
}

fn pki(ocsp: Option<&str>, crl: Option<&str>) -> Pki {
    let root = Ca::root("Revocation Test Root");
    let inter = root.intermediate(
        &Spec::leaf("Revocation Test Intermediate")
            .sans(&[])
            .serial(2),
    );
    let leaf = inter.leaf(&leaf_spec(SERIAL, ocsp, crl));
    Pki { root, inter, leaf }
}

fn leaf_spec(serial: u64, ocsp: Option<&str>, crl: Option<&str>) -> Spec {
    let mut spec = Spec::leaf("localhost").serial(serial);
    if let Some(url) = ocsp {
        spec = spec.ocsp(url);
    }
    if let Some(url) = crl {
        spec = spec.crl(url);
    }
    spec
}

/// A TLS server sending `leaf` and the intermediate.
async fn serve(p: &Pki, leaf: &Cert) -> servers::Server {
    servers::rustls(Opts::new(
        vec![leaf.der.clone(), p.inter.cert.der.clone()],
        leaf.key_der(),
    ))
    .await
}

/// The exporter probing each `(name, port)` every second with `revocation` on.
fn exporter(dir: tempfile::TempDir, root: &Ca, targets: &[(&str, u16)], global: &str) -> Exporter {
    write(dir.path(), "ca.pem", &root.cert.pem);
    let mut yaml = format!(
        "global: {{interval: 1s, timeout: 800ms, ca_file: ca.pem, scan: false{global}}}\ntargets:\n"
    );
    for (name, port) in targets {
        yaml.push_str(&format!(
            "  - name: {name}\n    address: 127.0.0.1:{port}\n    server_name: localhost\n"
        ));
    }
    Exporter::start(dir, &yaml)
}

/// Waits until `target` reports a revocation status for `depth`/`method`, returning it.
fn wait_status(e: &Exporter, target: &str, depth: u32, method: &str) -> (String, Exposition) {
    let prefix =
        format!("tls_revocation_status_info{{target=\"{target}\",depth=\"{depth}\",method=\"{method}\",status=\"");
    let m = e.wait_for(&format!("{method} status of {target}"), |m| {
        m.0.lines().any(|l| l.starts_with(&prefix))
    });
    let status =
        m.0.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string();
    (status, m)
}

/// Waits until the latest probe of `target` shows `success` (0/1).
fn wait_success(e: &Exporter, target: &str, success: u8) -> Exposition {
    let series = format!("tls_probe_success{{target=\"{target}\"}}");
    e.wait_for(&format!("{series} {success}"), |m| {
        m.value(&series) == Some(f64::from(success))
    })
}

// ---------------------------------------------------------------------------------------------
// A real OCSP responder: `openssl ocsp -port`.

/// `openssl ocsp` serving `index` for certificates of `ca`, signed by `signer`; killed on drop.
struct Responder {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The URL the responder will listen on (chosen before the certificates that name it).
fn responder_url() -> (u16, String) {
    let port = free_port();
    (port, format!("http://127.0.0.1:{port}/"))
}

fn start_responder(port: u16, index: &str, ca: &Ca, signer: &Ca) -> Responder {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    w("index.txt", index);
    w("ca.pem", &ca.cert.pem);
    w("signer.pem", &signer.cert.pem);
    w("signer.key", &signer.cert.key_pem);
    let log = std::fs::File::create(dir.path().join("log")).expect("log");
    let child = Command::new("openssl")
        .current_dir(dir.path())
        .args(["ocsp", "-index", "index.txt", "-CA", "ca.pem"])
        .args(["-rsigner", "signer.pem", "-rkey", "signer.key"])
        .args(["-port", &port.to_string(), "-ndays", "1"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("openssl is installed");
    // Not by connecting: `openssl ocsp` serves one connection at a time and would wait on an
    // idle one for ever. It says when it listens.
    let start = Instant::now();
    while !std::fs::read_to_string(dir.path().join("log")).is_ok_and(|l| l.contains("ACCEPT")) {
        assert!(
            start.elapsed() < WAIT,
            "openssl ocsp does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Responder { child, _dir: dir }
}

fn valid(serial: &str) -> String {
    format!("V\t351231000000Z\t\t{serial}\tunknown\t/CN=localhost\n")
}

fn revoked(serial: &str) -> String {
    format!("R\t351231000000Z\t240102030405Z,keyCompromise\t{serial}\tunknown\t/CN=localhost\n")
}

// ---------------------------------------------------------------------------------------------
// CRLs over HTTP: a tiny file server that counts requests.

// ---------------------------------------------------------------------------------------------
// OCSP

/// One target `t` whose leaf names a responder answering `index` (signed by `signer`, the
/// intermediate when `None`); returns the exporter once `t` reports an OCSP status.
async fn ocsp_case(index: &str, other_signer: bool) -> (Exporter, String, Exposition, Pki) {
    let (port, url) = responder_url();
    let p = pki(Some(&url), None);
    let stranger = Ca::root("Revocation Test Intermediate");
    let signer = if other_signer { &stranger } else { &p.inter };
    let _responder = start_responder(port, index, &p.inter, signer);
    let server = serve(&p, &p.leaf).await;
    let e = exporter(
        Exporter::dir(),
        &p.root,
        &[("t", server.addr.port())],
        ", revocation: ocsp",
    );
    let (status, m) = wait_status(&e, "t", 0, "ocsp");
    // The responder and the server only need to live until the status is known.
    let m = if status == "revoked" {
        wait_success(&e, "t", 0)
    } else {
        m
    };
    drop(server);
    (e, status, m, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_ocsp_answer_reports_good_with_its_times() {
    let (e, status, m, _p) = ocsp_case(&valid(SERIAL_HEX), false).await;
    assert_eq!(status, "good", "{}", e.get("/target/t").expect("page").1);
    m.assert_lines(&["tls_probe_success{target=\"t\"} 1".to_string()]);
    let checked = m
        .value("tls_revocation_checked_timestamp_seconds{target=\"t\",depth=\"0\",method=\"ocsp\"}")
        .expect("checked timestamp");
    assert!((checked - now() as f64).abs() < 60.0, "{}", m.0);
    let next = m
        .value(
            "tls_revocation_next_update_timestamp_seconds{target=\"t\",depth=\"0\",method=\"ocsp\"}",
        )
        .expect("next update");
    assert!((next - checked - 86_400.0).abs() < 120.0, "{}", m.0);
    m.assert_absent(&[
        "tls_revocation_revoked_timestamp_seconds{".to_string(),
        "tls_revocation_status_info{target=\"t\",depth=\"1\"".to_string(),
        "tls_revocation_status_info{target=\"t\",depth=\"0\",method=\"crl\"".to_string(),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_ocsp_answer_fails_the_probe_with_reason_revoked() {
    let (e, status, m, _p) = ocsp_case(&revoked(SERIAL_HEX), false).await;
    assert_eq!(status, "revoked", "{}", m.0);
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 0".to_string(),
        "tls_probe_failure_info{target=\"t\",reason=\"revoked\"} 1".to_string(),
        "tls_chain_valid{target=\"t\"} 1".to_string(),
        format!(
            "tls_revocation_revoked_timestamp_seconds{{target=\"t\",depth=\"0\",method=\"ocsp\"}} {REVOKED_AT}"
        ),
    ]);
    let (code, page) = e.get("/target/t").expect("status page");
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("the leaf certificate was revoked 2024-01-02T03:04:05Z"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_unknown_to_the_responder_is_unknown_and_the_probe_succeeds() {
    let (_e, status, m, _p) = ocsp_case(&valid("99"), false).await;
    assert_eq!(status, "unknown", "{}", m.0);
    m.assert_lines(&["tls_probe_success{target=\"t\"} 1".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_signed_by_a_stranger_is_an_error_not_a_status() {
    let (e, status, m, _p) = ocsp_case(&revoked(SERIAL_HEX), true).await;
    assert_eq!(status, "error", "{}", m.0);
    let (_, page) = e.get("/target/t").expect("status page");
    assert!(page.contains("ocsp response cannot be verified"), "{page}");
    m.assert_lines(&["tls_probe_success{target=\"t\"} 1".to_string()]);
    m.assert_absent(&["tls_revocation_revoked_timestamp_seconds{".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ocsp_request_serves_every_target_of_the_certificate() {
    let (port, url) = responder_url();
    let p = pki(Some(&url), None);
    let responder = start_responder(port, &valid(SERIAL_HEX), &p.inter, &p.inter);
    let (a, b) = (serve(&p, &p.leaf).await, serve(&p, &p.leaf).await);
    let e = exporter(
        Exporter::dir(),
        &p.root,
        &[("a", a.addr.port()), ("b", b.addr.port())],
        ", revocation: ocsp",
    );
    assert_eq!(wait_status(&e, "a", 0, "ocsp").0, "good");
    assert_eq!(wait_status(&e, "b", 0, "ocsp").0, "good");
    e.wait_probes("a", 4);
    e.wait_probes("b", 4);
    let log = std::fs::read_to_string(responder._dir.path().join("log")).expect("log");
    assert_eq!(log.matches("Received request").count(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_responder_is_an_error_and_the_probe_still_succeeds() {
    // Nothing listens on the port the AIA names.
    let (_port, url) = responder_url();
    let p = pki(Some(&url), None);
    let server = serve(&p, &p.leaf).await;
    let e = exporter(
        Exporter::dir(),
        &p.root,
        &[("t", server.addr.port())],
        ", revocation: ocsp",
    );
    let (status, m) = wait_status(&e, "t", 0, "ocsp");
    assert_eq!(status, "error", "{}", m.0);
    m.assert_lines(&["tls_probe_success{target=\"t\"} 1".to_string()]);
    m.assert_absent(&["tls_revocation_next_update_timestamp_seconds{".to_string()]);
    let (_, page) = e.get("/target/t").expect("status page");
    assert!(page.contains("not checked: cannot connect to"), "{page}");
}

// ---------------------------------------------------------------------------------------------
// CRLs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_crl_fetch_serves_every_target_of_the_issuer() {
    let files = Files::start().await;
    let url = files.url("/inter.crl");
    let p = pki(None, Some(&url));
    let good_leaf = p.inter.leaf(&leaf_spec(OTHER_SERIAL, None, Some(&url)));
    let t = now();
    files.put("/inter.crl", p.inter.crl(&[SERIAL], t - 60, t + 86_400));
    let revoked_server = serve(&p, &p.leaf).await;
    let good_server = serve(&p, &good_leaf).await;
    let e = exporter(
        Exporter::dir(),
        &p.root,
        &[
            ("revoked", revoked_server.addr.port()),
            ("good", good_server.addr.port()),
        ],
        ", revocation: crl",
    );
    let (good, _) = wait_status(&e, "good", 0, "crl");
    let (revoked, _) = wait_status(&e, "revoked", 0, "crl");
    let m = wait_success(&e, "revoked", 0);
    assert_eq!(
        (good.as_str(), revoked.as_str()),
        ("good", "revoked"),
        "{}",
        m.0
    );
    m.assert_lines(&[
        "tls_probe_success{target=\"good\"} 1".to_string(),
        "tls_probe_failure_info{target=\"revoked\",reason=\"revoked\"} 1".to_string(),
        format!(
            "tls_revocation_revoked_timestamp_seconds{{target=\"revoked\",depth=\"0\",method=\"crl\"}} {}",
            t - 60 - 3600
        ),
        format!(
            "tls_revocation_next_update_timestamp_seconds{{target=\"good\",depth=\"0\",method=\"crl\"}} {}",
            t + 86_400
        ),
    ]);
    // More probes of both targets, still one download for the fleet.
    e.wait_probes("good", 4);
    e.wait_probes("revoked", 4);
    assert_eq!(files.hits("/inter.crl"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_checks_every_certificate_below_the_anchor() {
    let files = Files::start().await;
    let leaf_crl = files.url("/inter.crl");
    let inter_crl = files.url("/root.crl");
    let root = Ca::root("Revocation Test Root");
    let inter = root.intermediate(
        &Spec::leaf("Revocation Test Intermediate")
            .sans(&[])
            .serial(2)
            .crl(&inter_crl),
    );
    let leaf = inter.leaf(&leaf_spec(SERIAL, None, Some(&leaf_crl)));
    let t = now();
    files.put("/inter.crl", inter.crl(&[], t - 60, t + 86_400));
    files.put("/root.crl", root.crl(&[2], t - 60, t + 86_400));
    let p = Pki { root, inter, leaf };
    let server = serve(&p, &p.leaf).await;
    let e = exporter(
        Exporter::dir(),
        &p.root,
        &[("t", server.addr.port())],
        ", revocation: all",
    );
    let (leaf_status, _) = wait_status(&e, "t", 0, "crl");
    let (inter_status, _) = wait_status(&e, "t", 1, "crl");
    let m = wait_success(&e, "t", 0);
    assert_eq!(
        (leaf_status.as_str(), inter_status.as_str()),
        ("good", "revoked"),
        "{}",
        m.0
    );
    m.assert_lines(&["tls_probe_failure_info{target=\"t\",reason=\"revoked\"} 1".to_string()]);
    // Neither names an OCSP responder: no OCSP series at all.
    m.assert_absent(&[
        "tls_revocation_status_info{target=\"t\",depth=\"0\",method=\"ocsp\"".to_string(),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_stops_at_an_intermediate_trusted_as_anchor() {
    let files = Files::start().await;
    let root = Ca::root("Revocation Test Root");
    let inter = root.intermediate(
        &Spec::leaf("Revocation Test Intermediate")
            .sans(&[])
            .serial(2)
            .crl(&files.url("/root.crl")),
    );
    let leaf = inter.leaf(&leaf_spec(SERIAL, None, Some(&files.url("/inter.crl"))));
    let t = now();
    files.put("/inter.crl", inter.crl(&[], t - 60, t + 86_400));
    files.put("/root.crl", root.crl(&[2], t - 60, t + 86_400));
    let p = Pki { root, inter, leaf };
    let server = serve(&p, &p.leaf).await;
    // The intermediate is the trust anchor: the path ends there, its revocation is not asked.
    let e = exporter(
        Exporter::dir(),
        &p.inter,
        &[("t", server.addr.port())],
        ", revocation: all",
    );
    assert_eq!(wait_status(&e, "t", 0, "crl").0, "good");
    let m = e.wait_probes("t", 4);
    m.assert_lines(&["tls_probe_success{target=\"t\"} 1".to_string()]);
    m.assert_absent(&["tls_revocation_status_info{target=\"t\",depth=\"1\"".to_string()]);
    assert_eq!(files.hits("/root.crl"), 0);
}

/// One target whose leaf's CRL is `crl` (as served), with `global` YAML added.
async fn crl_case(
    crl: impl FnOnce(&Pki) -> Vec<u8>,
    global: &str,
) -> (Exporter, String, Exposition) {
    let files = Files::start().await;
    let url = files.url("/inter.crl");
    let p = pki(None, Some(&url));
    files.put("/inter.crl", crl(&p));
    let server = serve(&p, &p.leaf).await;
    let e = exporter(
        Exporter::dir(),
        &p.root,
        &[("t", server.addr.port())],
        &format!(", revocation: crl{global}"),
    );
    let (status, m) = wait_status(&e, "t", 0, "crl");
    (e, status, m)
}

async fn assert_crl_error(crl: impl FnOnce(&Pki) -> Vec<u8>, global: &str, why: &str) {
    let (e, status, m) = crl_case(crl, global).await;
    assert_eq!(status, "error", "{}", m.0);
    m.assert_lines(&["tls_probe_success{target=\"t\"} 1".to_string()]);
    let (_, page) = e.get("/target/t").expect("status page");
    assert!(page.contains(why), "missing {why:?} in {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crl_over_the_size_bound_is_an_error() {
    // 200 revoked serials: several KiB, over a bound of 2 KiB.
    let serials: Vec<u64> = (1..=200).map(|i| 0x5000_0000 + i).collect();
    let t = now();
    assert_crl_error(
        |p| p.inter.crl(&serials, t - 60, t + 86_400),
        ", revocation_max_crl_size: 2048",
        "answered more than 2048 bytes, the bound",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_crl_is_an_error() {
    let t = now();
    assert_crl_error(
        |p| p.inter.crl(&[SERIAL], t - 7200, t - 3600),
        "",
        "the CRL expired: its nextUpdate was",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crl_with_a_bad_signature_is_an_error_even_when_it_lists_the_leaf() {
    let t = now();
    // Same Name as the intermediate, another key.
    let impostor = Ca::root("Revocation Test Intermediate");
    assert_crl_error(
        |_| impostor.crl(&[SERIAL], t - 60, t + 86_400),
        "",
        "signature does not verify",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_off_asks_nothing() {
    let files = Files::start().await;
    let url = files.url("/inter.crl");
    let p = pki(None, Some(&url));
    let server = serve(&p, &p.leaf).await;
    let e = exporter(Exporter::dir(), &p.root, &[("t", server.addr.port())], "");
    let m = e.wait_probes("t", 3);
    m.assert_absent(&["tls_revocation_".to_string()]);
    assert_eq!(files.hits("/inter.crl"), 0);
}
