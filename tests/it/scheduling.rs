//! The schedule as Prometheus sees it: healthy targets stay on their interval while most
//! targets time out, and new loops probe within seconds of a start or reload.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::exporter::{write, Exporter, Exposition};
use crate::support::hostile::{self, Behaviour};
use crate::support::pki::{Ca, Spec};
use crate::support::servers::{self, Opts};

/// A healthy rustls server and a temp dir trusting its CA.
async fn healthy_server() -> (servers::Server, tempfile::TempDir) {
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    (server, dir)
}

fn target(name: &str, port: u16) -> String {
    format!("  - name: {name}\n    address: 127.0.0.1:{port}\n    server_name: localhost\n")
}

/// `tls_probe_timestamp_seconds` of each of `names`.
fn timestamps(m: &Exposition, names: &[String]) -> BTreeMap<String, Option<f64>> {
    names
        .iter()
        .map(|n| {
            let series = format!("tls_probe_timestamp_seconds{{target=\"{n}\"}}");
            (n.clone(), m.value(&series))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_targets_stay_on_their_interval_while_most_targets_time_out() {
    // 10 healthy targets and 30 tarpits (accept, never answer) on 4 slots: the tarpits alone
    // ask for 30 × 1.5 s per 2 s, eleven times what 4 slots give.
    let (server, dir) = healthy_server().await;
    let tarpit = hostile::start(Behaviour::Tarpit).await;
    let healthy: Vec<String> = (0..10).map(|i| format!("ok-{i}")).collect();
    let mut yaml =
        "global: {interval: 2s, timeout: 1500ms, concurrency: 4, ca_file: ca.pem, scan: false}\ntargets:\n"
            .to_string();
    for name in &healthy {
        yaml.push_str(&target(name, server.addr.port()));
    }
    for i in 0..30 {
        yaml.push_str(&target(&format!("pit-{i}"), tarpit.addr.port()));
    }
    let e = Exporter::start(dir, &yaml);

    // The first round has no history to go by: every target has its first probe in it.
    e.wait_for("every target's first probe", |m| {
        m.0.lines()
            .filter(|l| l.starts_with("tls_probes_total{"))
            .filter(|l| !l.ends_with(" 0"))
            .count()
            == 40
    });

    // From then on, watch every healthy target's probes for five intervals.
    let mut last = timestamps(&e.scrape(), &healthy);
    let mut seen: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let window = Instant::now();
    while window.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        let now = timestamps(&e.scrape(), &healthy);
        for (name, ts) in &now {
            if let (Some(ts), Some(before)) = (ts, last.get(name)) {
                if Some(*ts) != *before {
                    seen.entry(name.clone()).or_default().push(*ts);
                }
            }
        }
        last = now;
    }
    for name in &healthy {
        let probes = seen.get(name).cloned().unwrap_or_default();
        let gaps: Vec<f64> = probes.windows(2).map(|w| w[1] - w[0]).collect();
        // Five intervals in the window: at least four probes, none more than an interval late
        // (a queue behind the tarpits makes gaps of about 11 s).
        assert!(
            gaps.len() >= 3 && gaps.iter().all(|gap| *gap < 4.0),
            "{name}: probe gaps {gaps:?} (interval 2s)\n--- exposition ---\n{}",
            e.scrape().0
        );
    }
    // The tarpits still back off; no healthy target joined them.
    e.scrape()
        .assert_lines(&["tls_exporter_targets_backing_off 30".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_targets_are_probed_within_seconds_of_start_and_reload() {
    let (server, dir) = healthy_server().await;
    let port = server.addr.port();
    let head = "global: {interval: 1h, timeout: 5s, ca_file: ca.pem, scan: false}\ntargets:\n";
    let yaml = format!("{head}{}{}", target("a", port), target("b", port));
    let started = Instant::now();
    let e = Exporter::start_with(dir, &yaml, &["--web.enable-lifecycle"]);
    e.wait_probes("a", 1);
    e.wait_probes("b", 1);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "first probes of hourly targets took {:?}",
        started.elapsed()
    );

    // A reload adding c: c is probed within seconds, unchanged a and b are left alone.
    let yaml = format!("{yaml}{}", target("c", port));
    std::fs::write(&e.config, yaml).expect("rewrite config");
    let reloaded = Instant::now();
    let (status, body) = e.post("/-/reload").expect("reload");
    assert_eq!(status, 200, "{body}");
    let m = e.wait_probes("c", 1);
    assert!(
        reloaded.elapsed() < Duration::from_secs(6),
        "first probe of a new hourly target took {:?}",
        reloaded.elapsed()
    );
    m.assert_lines(&[
        "tls_probes_total{target=\"a\"} 1".to_string(),
        "tls_probes_total{target=\"b\"} 1".to_string(),
        "tls_probe_success{target=\"c\"} 1".to_string(),
    ]);
}
