//! Scaling out: shards, target files, on-demand probes.

use std::collections::BTreeSet;

use crate::support::exporter::{free_port, Exporter, Exposition};

/// Target names that have a `tls_probes_total` series.
fn probed_names(m: &Exposition) -> BTreeSet<String> {
    m.0.lines()
        .filter_map(|l| l.strip_prefix("tls_probes_total{target=\""))
        .filter_map(|rest| rest.split_once('"').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn two_shards_cover_every_target_exactly_once() {
    // Closed ports: the split is about names, not results.
    let port = free_port();
    let names: Vec<String> = (0..24).map(|i| format!("svc-{i}")).collect();
    let mut yaml = "global: {interval: 5s, timeout: 1s}\ntargets:\n".to_string();
    for n in &names {
        yaml.push_str(&format!("  - name: {n}\n    address: 127.0.0.1:{port}\n"));
    }
    let a = Exporter::start_with(Exporter::dir(), &yaml, &["--shard=0/2"]);
    let b = Exporter::start_with(Exporter::dir(), &yaml, &["--shard=1/2"]);
    let (ma, mb) = (probed_names(&a.scrape()), probed_names(&b.scrape()));
    assert!(
        ma.is_disjoint(&mb),
        "both shards probe {:?}",
        ma.intersection(&mb).collect::<Vec<_>>()
    );
    let all: BTreeSet<String> = ma.union(&mb).cloned().collect();
    assert_eq!(all, names.iter().cloned().collect::<BTreeSet<_>>());
    assert!(
        !ma.is_empty() && !mb.is_empty(),
        "one shard got nothing: {ma:?} {mb:?}"
    );
    assert_eq!(
        a.scrape().value("tls_exporter_targets"),
        Some(ma.len() as f64)
    );
}

#[test]
fn invalid_shard_is_refused_at_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tls_exporter"))
        .args(["--shard=2/2", "--config.file=/nonexistent.yml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid shard \\\"2/2\\\""), "{err}");
}

/// A healthy rustls endpoint and a config that names it `t`.
async fn healthy() -> (crate::support::servers::Server, tempfile::TempDir, String) {
    use crate::support::exporter::write;
    use crate::support::pki::{Ca, Spec};
    use crate::support::servers::{self, Opts};
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    let yaml = format!(
        "global: {{interval: 1m, timeout: 2s, ca_file: ca.pem}}\ntargets:\n  - name: t\n    address: 127.0.0.1:{}\n    server_name: localhost\n    labels: {{team: core}}\n",
        server.addr.port()
    );
    (server, dir, yaml)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_endpoint_probes_a_configured_target_now() {
    let (server, dir, yaml) = healthy().await;
    let e = Exporter::start(dir, &yaml);
    let port = server.addr.port();
    let (status, body) = e
        .get(&format!(
            "/probe?target=127.0.0.1:{port}&server_name=localhost"
        ))
        .expect("probe");
    assert_eq!(status, 200, "{body}");
    let m = Exposition(body);
    m.assert_lines(&[
        "tls_probe_success{target=\"t\",team=\"core\"} 1".to_string(),
        "tls_chain_valid{target=\"t\",team=\"core\"} 1".to_string(),
        "tls_version_info{target=\"t\",team=\"core\",version=\"TLS 1.3\"} 1".to_string(),
    ]);
    assert!(
        !m.0.contains("tls_exporter_"),
        "only the target's families:\n{}",
        m.0
    );
    // By name too.
    assert_eq!(e.get("/probe?target=t").expect("probe by name").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_endpoint_refuses_unconfigured_targets_by_default() {
    let (_server, dir, yaml) = healthy().await;
    let e = Exporter::start(dir, &yaml);
    let (status, body) = e.get("/probe?target=127.0.0.1:1").expect("probe");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--web.enable-adhoc-probes"), "{body}");
    assert_eq!(e.get("/probe").expect("probe").0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adhoc_probes_use_global_settings_when_enabled() {
    let (server, dir, yaml) = healthy().await;
    let e = Exporter::start_with(dir, &yaml, &["--web.enable-adhoc-probes"]);
    let closed = free_port();
    let (status, body) = e
        .get(&format!("/probe?target=127.0.0.1:{closed}"))
        .expect("probe");
    assert_eq!(status, 200, "{body}");
    Exposition(body).assert_lines(&[
        format!("tls_probe_success{{target=\"127.0.0.1:{closed}\"}} 0"),
        format!("tls_probe_failure_info{{target=\"127.0.0.1:{closed}\",reason=\"connection_refused\"}} 1"),
    ]);
    // The global ca_file applies: the rustls endpoint verifies under another address form.
    let (status, body) = e
        .get(&format!(
            "/probe?target=localhost:{}&server_name=localhost",
            server.addr.port()
        ))
        .expect("probe");
    assert_eq!(status, 200, "{body}");
    Exposition(body).assert_lines(&[format!(
        "tls_probe_success{{target=\"localhost:{}\"}} 1",
        server.addr.port()
    )]);
    let (status, _) = e.get("/probe?target=not-an-address").expect("probe");
    assert_eq!(status, 400);
}

/// Writes `targets/<file>` with one target per name, all probing `port`.
fn target_file(dir: &std::path::Path, file: &str, port: u16, names: &[&str]) {
    let mut y = "# written by the test\n".to_string();
    for n in names {
        y.push_str(&format!(
            "- name: {n}\n  address: 127.0.0.1:{port}\n  server_name: localhost\n"
        ));
    }
    std::fs::create_dir_all(dir.join("targets")).expect("mkdir");
    // Write then rename, as config management tools do, so the watcher never sees half a file.
    let tmp = dir.join(format!("targets/.{file}.tmp"));
    std::fs::write(&tmp, y).expect("write");
    std::fs::rename(&tmp, dir.join("targets").join(file)).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_file_edits_add_and_remove_series() {
    let (server, dir, _) = healthy().await;
    let port = server.addr.port();
    target_file(dir.path(), "a.yml", port, &["x"]);
    let yaml = "global: {interval: 1s, timeout: 800ms, ca_file: ca.pem}\ntarget_files: [targets/*.yml]\ntargets: []\n";
    let root = dir.path().to_path_buf();
    let e = Exporter::start_with(dir, yaml, &["--config.watch-interval=200ms"]);
    e.wait_for("x from a.yml", |m| {
        m.value("tls_probe_success{target=\"x\"}") == Some(1.0)
    });

    target_file(&root, "a.yml", port, &["y"]);
    let m = e.wait_for("y replaces x", |m| {
        m.value("tls_probe_success{target=\"y\"}") == Some(1.0)
    });
    assert!(m.lines_of("x").is_empty(), "x should be gone:\n{}", m.0);

    target_file(&root, "b.yml", port, &["z"]);
    e.wait_for("z from a new file", |m| {
        m.value("tls_probe_success{target=\"z\"}") == Some(1.0)
    });
    assert_eq!(e.scrape().value("tls_exporter_targets"), Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_target_file_keeps_its_last_good_content() {
    let (server, dir, _) = healthy().await;
    let port = server.addr.port();
    target_file(dir.path(), "a.yml", port, &["x"]);
    target_file(dir.path(), "b.yml", port, &["w"]);
    let yaml = "global: {interval: 1s, timeout: 800ms, ca_file: ca.pem}\ntarget_files: [targets/*.yml]\ntargets: []\n";
    let root = dir.path().to_path_buf();
    let e = Exporter::start_with(dir, yaml, &["--config.watch-interval=200ms"]);
    e.wait_for("x probed", |m| {
        m.value("tls_probe_success{target=\"x\"}") == Some(1.0)
    });

    // Break a.yml; edit b.yml validly at the same time.
    std::fs::write(
        root.join("targets/a.yml"),
        "- name: x\n  adress: 127.0.0.1:1\n",
    )
    .expect("write");
    target_file(&root, "b.yml", port, &["w", "v"]);
    let m = e.wait_for("b.yml applied, a.yml reported", |m| {
        m.value("tls_probe_success{target=\"v\"}") == Some(1.0)
            && m.value("tls_exporter_target_files_invalid") == Some(1.0)
    });
    // x still probed from a.yml's last good content; the whole reload counts as successful.
    let n = m.value("tls_probes_total{target=\"x\"}").expect("x kept");
    e.wait_probes("x", n as u64 + 1);
    m.assert_lines(&["tls_exporter_config_last_reload_successful 1".to_string()]);
    let log = e.log();
    assert!(
        log.contains("a.yml:2:3: targets[0].adress: unknown field `adress`"),
        "{log}"
    );
    assert!(log.contains("keeping its last good content"), "{log}");

    // Fixing it clears the gauge.
    target_file(&root, "a.yml", port, &["x"]);
    e.wait_for("a.yml valid again", |m| {
        m.value("tls_exporter_target_files_invalid") == Some(0.0)
    });
}

#[test]
fn check_config_reports_invalid_target_files() {
    let dir = Exporter::dir();
    std::fs::create_dir_all(dir.path().join("targets")).expect("mkdir");
    crate::support::exporter::write(
        &dir.path().join("targets"),
        "bad.yml",
        "targets:\n  - address: nope\n",
    );
    let config = crate::support::exporter::write(
        dir.path(),
        "config.yml",
        "target_files: [targets/*.yml]\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tls_exporter"))
        .arg("--check-config")
        .arg(format!("--config.file={}", config.display()))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "bad.yml:2:14: targets[0].address: \"nope\": expected host:port (skipping it)"
        ),
        "{err}"
    );
}
