//! Certificates at rest: `files:` entries read by the running exporter (PEM bundle, PKCS#12
//! with a password file, kubeconfig), their series following the files on disk (replaced,
//! broken, deleted), and `expect_cert_file` telling a renewed-but-not-deployed certificate.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;

use crate::support::exporter::{write, Exporter};
use crate::support::pki::{pem_chain, Ca, Cert, Spec};
use crate::support::servers::{self, Opts};

/// A PKCS#12 of `cert` and its key in `dir`, made by `openssl pkcs12 -export`.
fn pkcs12(dir: &Path, name: &str, cert: &Cert, password: &str) {
    let (c, k) = (dir.join("p12-cert.pem"), dir.join("p12-key.pem"));
    std::fs::write(&c, &cert.pem).expect("write cert");
    std::fs::write(&k, &cert.key_pem).expect("write key");
    let status = Command::new("openssl")
        .args(["pkcs12", "-export", "-in"])
        .arg(&c)
        .arg("-inkey")
        .arg(&k)
        .arg("-out")
        .arg(dir.join(name))
        .arg("-passout")
        .arg(format!("pass:{password}"))
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl pkcs12 -export");
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn file_series_carry_the_certificates_and_follow_the_files_on_disk() {
    let dir = Exporter::dir();
    let d = dir.path().canonicalize().expect("canonical temp dir");
    std::fs::create_dir(d.join("certs")).expect("mkdir");
    let ca = Ca::root("Files Root");
    let leaf = ca.leaf(&Spec::leaf("web.example").sans(&["web.example"]));
    write(&d.join("certs"), "web.pem", &pem_chain(&[&leaf, &ca.cert]));
    let client = ca.leaf(&Spec::leaf("client.example"));
    pkcs12(&d, "client.p12", &client, "s3cret");
    write(&d, "p12.pass", "s3cret\n");
    let kube_user = ca.leaf(&Spec::leaf("kube-admin"));
    write(
        &d,
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&ca.cert.pem),
            b64(&kube_user.pem),
            b64(&kube_user.key_pem)
        ),
    );
    let yaml = "global: {interval: 1s, timeout: 500ms}\nfiles:\n  - path: certs/*.pem\n    interval: 200ms\n    labels: {team: web}\n  - {path: client.p12, format: pkcs12, password_file: p12.pass, interval: 200ms}\n  - {path: kubeconfig, format: kubeconfig, interval: 200ms}\n";
    let e = Exporter::start(dir, yaml);
    let web = format!(
        "path=\"{}\",team=\"web\"",
        d.join("certs/web.pem").display()
    );
    let p12 = format!("path=\"{}\"", d.join("client.p12").display());
    let kube = format!("path=\"{}\"", d.join("kubeconfig").display());
    let m = e.wait_for("file series", |m| {
        m.value(&format!("tls_file_read_success{{{kube}}}"))
            .is_some()
    });
    m.assert_lines(&[
        format!("tls_file_read_success{{{web}}} 1"),
        format!("tls_file_certificates{{{web}}} 2"),
        format!(
            "tls_file_cert_not_after_timestamp_seconds{{{web},index=\"0\"}} {}",
            leaf.not_after
        ),
        format!(
            "tls_file_cert_not_before_timestamp_seconds{{{web},index=\"0\"}} {}",
            leaf.not_before
        ),
        format!(
            "tls_file_cert_not_after_timestamp_seconds{{{web},index=\"1\"}} {}",
            ca.cert.not_after
        ),
        format!("tls_file_read_success{{{p12}}} 1"),
        format!("tls_file_certificates{{{p12}}} 1"),
        format!(
            "tls_file_cert_not_after_timestamp_seconds{{{p12},index=\"0\"}} {}",
            client.not_after
        ),
        format!("tls_file_read_success{{{kube}}} 1"),
        format!("tls_file_certificates{{{kube}}} 2"),
        format!(
            "tls_file_cert_not_after_timestamp_seconds{{{kube},index=\"1\"}} {}",
            kube_user.not_after
        ),
    ]);
    let info =
        m.0.lines()
            .find(|l| l.starts_with(&format!("tls_file_cert_info{{{web},index=\"0\"")))
            .unwrap_or_else(|| panic!("info of web.pem's leaf\n{}", m.0));
    assert!(info.contains(",cn=\"web.example\","), "{info}");
    assert!(
        info.contains(&format!("fingerprint_sha256=\"{}\"", leaf.fingerprint())),
        "{info}"
    );
    assert!(info.contains("dns_names=\"web.example\""), "{info}");
    assert!(info.contains("issuer=\"CN=Files Root\""), "{info}");
    let days = m
        .value(&format!(
            "tls_file_cert_days_to_expiry{{{web},index=\"0\"}}"
        ))
        .expect("days to expiry");
    assert!((days - 89.0).abs() < 1.01, "{days}");
    let (status, page) = e.get("/").expect("status page");
    assert_eq!(status, 200);
    assert!(page.contains("<h2>Certificate files</h2>"), "{page}");
    assert!(
        page.contains(&format!(
            "{} holds 2 certificates; the first to expire, CN web.example, expires <time",
            d.join("certs/web.pem").display()
        )),
        "{page}"
    );

    // Renewed on disk: the new certificate shows within a few re-read intervals.
    let renewed =
        ca.leaf(&Spec::leaf("web.example").valid(leaf.not_before + 10, leaf.not_after + 86_400));
    write(&d.join("certs"), "web.pem", &renewed.pem);
    e.wait_for("the renewed certificate", |m| {
        m.value(&format!(
            "tls_file_cert_not_after_timestamp_seconds{{{web},index=\"0\"}}"
        )) == Some(renewed.not_after as f64)
            && m.value(&format!("tls_file_certificates{{{web}}}")) == Some(1.0)
    });

    // A wrong password: read success 0, the reason in the log, no certificate series.
    write(&d, "p12.pass", "wrong\n");
    let m = e.wait_for("the wrong password", |m| {
        m.value(&format!("tls_file_read_success{{{p12}}}")) == Some(0.0)
    });
    m.assert_absent(&[format!("tls_file_cert_not_after_timestamp_seconds{{{p12}")]);
    assert!(
        e.log().contains(
            "cannot be opened with its password (wrong password, or the file is corrupt)"
        ),
        "{}",
        e.log()
    );

    // Deleted: every series of the file vanishes.
    std::fs::remove_file(d.join("certs/web.pem")).expect("remove");
    let m = e.wait_for("the deleted file's series to vanish", |m| {
        !m.0.contains(&format!("{{{web}"))
    });
    m.assert_lines(&[format!("tls_file_read_success{{{kube}}} 1")]);
}

#[test]
fn a_malformed_file_reads_zero_with_its_reason_logged() {
    let dir = Exporter::dir();
    let d = dir.path().canonicalize().expect("canonical temp dir");
    write(
        &d,
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    let e = Exporter::start(dir, "files:\n  - path: broken.pem\n");
    let p = format!("path=\"{}\"", d.join("broken.pem").display());
    let m = e.wait_for("the broken file", |m| {
        m.value(&format!("tls_file_read_success{{{p}}}")).is_some()
    });
    m.assert_lines(&[format!("tls_file_read_success{{{p}}} 0")]);
    m.assert_absent(&[format!("tls_file_cert_info{{{p}")]);
    let log = e.log();
    assert!(
        log.contains("certificate 0 of ") && log.contains("broken.pem is malformed"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_file_the_server_does_not_serve_yet_stops_matching() {
    let dir = Exporter::dir();
    let d = dir.path().canonicalize().expect("canonical temp dir");
    let ca = Ca::root("Deploy Root");
    let now = crate::support::now();
    let served = ca.leaf(&Spec::leaf("localhost").valid(now - 10 * 86_400, now + 80 * 86_400));
    let server = servers::rustls(Opts::new(vec![served.der.clone()], served.key_der())).await;
    write(&d, "root.pem", &ca.cert.pem);
    write(&d, "live.pem", &pem_chain(&[&served, &ca.cert]));
    let yaml = format!(
        "global: {{interval: 1s, timeout: 500ms}}\nfiles:\n  - {{path: live.pem, interval: 200ms}}\ntargets:\n  - name: t\n    address: 127.0.0.1:{}\n    server_name: localhost\n    ca_file: root.pem\n    expect_cert_file: live.pem\n",
        server.addr.port()
    );
    let e = tokio::task::spawn_blocking(move || Exporter::start(dir, &yaml))
        .await
        .expect("start");
    let e = std::sync::Arc::new(e);
    let m = {
        let e = e.clone();
        tokio::task::spawn_blocking(move || {
            e.wait_for("the match", |m| {
                m.value("tls_cert_matches_expected{target=\"t\"}").is_some()
            })
        })
        .await
        .expect("wait")
    };
    m.assert_lines(&[
        "tls_probe_success{target=\"t\"} 1".to_string(),
        "tls_cert_matches_expected{target=\"t\"} 1".to_string(),
        "tls_cert_expected_file_read_success{target=\"t\"} 1".to_string(),
        format!(
            "tls_cert_expected_not_before_timestamp_seconds{{target=\"t\"}} {}",
            served.not_before
        ),
    ]);

    // Renewed on disk (the CA after the leaf, as some tools write it); the server still
    // serves the old leaf.
    let renewed = ca.leaf(
        &Spec::leaf("localhost")
            .valid(now - 3600, now + 90 * 86_400)
            .serial(0x7777),
    );
    write(&d, "live.pem", &pem_chain(&[&ca.cert, &renewed]));
    let m = tokio::task::spawn_blocking({
        let e = e.clone();
        move || {
            e.wait_for("the renewed file to stop matching", |m| {
                m.value("tls_cert_matches_expected{target=\"t\"}") == Some(0.0)
            })
        }
    })
    .await
    .expect("wait");
    m.assert_lines(&[
        format!(
            "tls_cert_expected_not_before_timestamp_seconds{{target=\"t\"}} {}",
            renewed.not_before
        ),
        format!(
            "tls_cert_not_before_timestamp_seconds{{target=\"t\",depth=\"0\"}} {}",
            served.not_before
        ),
        "tls_probe_success{target=\"t\"} 1".to_string(),
    ]);
    drop(server);
}

#[test]
fn a_reload_reads_new_file_entries_at_once() {
    let dir = Exporter::dir();
    let d = dir.path().canonicalize().expect("canonical temp dir");
    let ca = Ca::root("Reload Root");
    write(&d, "ca.pem", &ca.cert.pem);
    let e = Exporter::start_with(
        dir,
        "targets: []\n",
        &["--web.enable-lifecycle", "--config.watch-interval=0s"],
    );
    let p = format!("path=\"{}\"", d.join("ca.pem").display());
    e.scrape()
        .assert_absent(&[format!("tls_file_read_success{{{p}")]);
    // An hour's interval: only the reload can explain a read now.
    write(
        &d,
        "config.yml",
        "files:\n  - {path: ca.pem, interval: 1h}\ntargets: []\n",
    );
    let (status, body) = e.post("/-/reload").expect("reload");
    assert_eq!(status, 200, "{body}");
    let m = e.wait_for("the new entry's file", |m| {
        m.value(&format!("tls_file_read_success{{{p}}}")).is_some()
    });
    m.assert_lines(&[
        format!("tls_file_read_success{{{p}}} 1"),
        format!(
            "tls_file_cert_not_after_timestamp_seconds{{{p},index=\"0\"}} {}",
            ca.cert.not_after
        ),
    ]);
    // Removed from the config: its series go with the next reload.
    write(&d, "config.yml", "targets: []\n");
    let (status, body) = e.post("/-/reload").expect("reload");
    assert_eq!(status, 200, "{body}");
    e.wait_for("the removed entry's series to vanish", |m| {
        !m.0.contains(&format!("{{{p}"))
    });
}
