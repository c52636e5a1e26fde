//! The shipped alert rules and dashboards against real Prometheus and Alertmanager, scraping the
//! real exporter probing a fleet of loopback endpoints: healthy, expired, expiring in 3 days,
//! wrong hostname and a closed port. Unit tests of each rule's thresholds live in alerts/tests/
//! (promtool); these tests prove the pieces fit: metric names, labels, recording rules,
//! annotations, routing, and every dashboard query.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::exporter::{free_port, write, Exporter};
use crate::support::now;
use crate::support::pki::{Ca, Spec};
use crate::support::prom::{Alertmanager, Prometheus, Webhook};
use crate::support::servers::{self, Opts, Server};

const HEALTHY: &str = "healthy";
const EXPIRED: &str = "expired";
const EXPIRING: &str = "expiring";
const WRONG_HOST: &str = "wrong-host";
const CLOSED: &str = "closed";
/// Every target of the fleet that is not healthy.
const BROKEN: [&str; 4] = [EXPIRED, EXPIRING, WRONG_HOST, CLOSED];
/// Targets that complete a handshake, so every drill-down panel has data for them (for the
/// closed port only the panels about failures do).
const HANDSHAKEN: [&str; 4] = [HEALTHY, EXPIRED, EXPIRING, WRONG_HOST];

/// What the fleet dashboard's count panels must show for this fleet (their `or vector(0)`
/// would hide a broken query from a mere "has data" check).
const FLEET_COUNTS: [(&str, f64); 8] = [
    ("Targets", 5.0),
    ("Healthy", 2.0),
    ("Failing", 3.0),
    ("Invalid chain", 2.0),
    ("Expiring within 21 days", 2.0),
    ("Stale results", 0.0),
    ("Configured targets", 5.0),
    ("Exporters up", 1.0),
];

/// Bound on a whole test: starting everything plus every wait.
const TEST_LIMIT: Duration = Duration::from_secs(90);
/// Bound on waiting for alerts, notifications or dashboard data to appear.
const SETTLE: Duration = Duration::from_secs(30);

/// An alert the fleet must raise.
struct Expected {
    alertname: &'static str,
    target: &'static str,
    severity: &'static str,
    reason: Option<&'static str>,
    summary: &'static str,
    /// A fragment of the description naming the problem.
    detail: &'static str,
}

const EXPECTED: [Expected; 4] = [
    Expected {
        alertname: "TLSCertificateExpired",
        target: EXPIRED,
        severity: "critical",
        reason: None,
        summary: "TLS certificate of expired has expired",
        detail: "expired 1d 0h",
    },
    Expected {
        alertname: "TLSCertificateExpiringCritical",
        target: EXPIRING,
        severity: "critical",
        reason: None,
        summary: "TLS certificate of expiring expires in 3.0 days",
        detail: "expires in 3.0 days (threshold 7 days)",
    },
    Expected {
        alertname: "TLSChainInvalid",
        target: WRONG_HOST,
        severity: "critical",
        reason: Some("hostname_mismatch"),
        summary: "TLS chain of wrong-host is invalid: hostname_mismatch",
        detail: "fails verification with reason hostname_mismatch",
    },
    Expected {
        alertname: "TLSEndpointFailing",
        target: CLOSED,
        severity: "critical",
        reason: Some("connection_refused"),
        summary: "TLS endpoint closed is failing: connection_refused",
        detail: "with reason connection_refused",
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_alerts_fire_for_broken_endpoints_and_reach_the_webhook() {
    tokio::time::timeout(TEST_LIMIT, async {
        let fleet = Fleet::start().await;
        let webhook = Webhook::start().await;
        let am = Alertmanager::start(webhook.addr).await;
        let prom = Prometheus::start(
            fleet.exporter.addr,
            &rules_firing_at_once(),
            Some(am.addr()),
        )
        .await;
        let instance = fleet.exporter.addr.to_string();

        let firing = wait_for_alerts(&prom).await;
        let mut problems = Vec::new();
        for want in &EXPECTED {
            match firing.iter().find(|a| is(a, want.alertname, want.target)) {
                Some(alert) => problems.extend(check_alert(alert, want, &instance)),
                None => problems.push(format!("{} for {} not firing", want.alertname, want.target)),
            }
        }
        let expected: BTreeSet<(&str, &str)> =
            EXPECTED.iter().map(|e| (e.alertname, e.target)).collect();
        for alert in &firing {
            let key = (label(alert, "alertname"), label(alert, "target"));
            if !expected.contains(&key) {
                problems.push(format!("unexpected alert {} for {:?}", key.0, key.1));
            }
        }
        assert!(
            problems.is_empty(),
            "{}\n--- /api/v1/alerts ---\n{}",
            problems.join("\n"),
            pretty(&firing)
        );

        let delivered = wait_for_notifications(&webhook, &am).await;
        for want in &EXPECTED {
            let sent = firing.iter().find(|a| is(a, want.alertname, want.target));
            let got = delivered
                .iter()
                .find(|a| is(a, want.alertname, want.target));
            let (Some(sent), Some(got)) = (sent, got) else {
                unreachable!("both waited for above");
            };
            assert_eq!(got["status"], "firing", "{}", pretty(&delivered));
            assert_eq!(got["labels"], sent["labels"], "{}", pretty(&delivered));
            assert_eq!(
                got["annotations"],
                sent["annotations"],
                "{}",
                pretty(&delivered)
            );
        }
        assert!(
            !delivered.iter().any(|a| label(a, "target") == HEALTHY),
            "notification for the healthy target:\n{}",
            pretty(&delivered)
        );
    })
    .await
    .expect("test finished within its limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_real_prometheus() {
    tokio::time::timeout(TEST_LIMIT, async {
        let queries = dashboard_queries(&Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards"));
        assert!(queries.len() > 20, "too few dashboard queries found: {}", queries.len());
        for (title, _) in FLEET_COUNTS {
            assert!(
                queries.iter().any(|q| q.panel == title && q.expect.is_some()),
                "tls-fleet.json has no panel {title:?}"
            );
        }
        let fleet = Fleet::start().await;
        let prom = Prometheus::start(fleet.exporter.addr, &rules_firing_at_once(), None).await;

        let start = Instant::now();
        loop {
            let mut missing = Vec::new();
            let mut errors = Vec::new();
            for q in &queries {
                match prom.query(&q.expr).await {
                    Ok(series) if series.is_empty() => missing.push(q.describe("no series")),
                    Ok(series) => {
                        if let Some(problem) = q.wrong_value(&series) {
                            missing.push(q.describe(&problem));
                        }
                    }
                    Err(e) => errors.push(q.describe(&e)),
                }
            }
            if missing.is_empty() && errors.is_empty() {
                return;
            }
            // Errors (bad syntax, unknown function) do not go away by waiting.
            if !errors.is_empty() || start.elapsed() > SETTLE {
                panic!(
                    "{} of {} dashboard queries failed after {:?}:\n\n{}\n\n--- exporter /metrics ---\n{}",
                    errors.len() + missing.len(),
                    queries.len(),
                    start.elapsed(),
                    errors.into_iter().chain(missing).collect::<Vec<_>>().join("\n\n"),
                    fleet.exporter.scrape().0
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("test finished within its limit");
}

/// Loopback TLS endpoints in every state the alerts care about, probed every second by the
/// real exporter.
struct Fleet {
    _servers: Vec<Server>,
    exporter: Exporter,
}

impl Fleet {
    async fn start() -> Fleet {
        let root = Ca::root("E2E Root");
        let t = now();
        let day = 86_400;
        let leaves = [
            (HEALTHY, Spec::leaf("localhost").serial(0x10)),
            (
                EXPIRED,
                Spec::leaf("localhost")
                    .valid(t - 30 * day, t - day)
                    .serial(0x11),
            ),
            (
                EXPIRING,
                Spec::leaf("localhost")
                    .valid(t - day, t + 3 * day)
                    .serial(0x12),
            ),
            (
                WRONG_HOST,
                Spec::leaf("other.example")
                    .sans(&["other.example"])
                    .serial(0x13),
            ),
        ];
        let dir = Exporter::dir();
        write(dir.path(), "ca.pem", &root.cert.pem);
        let mut yaml =
            "global: {interval: 1s, timeout: 800ms, ca_file: ca.pem}\ntargets:\n".to_string();
        let mut target = |name: &str, port: u16| {
            yaml.push_str(&format!(
                "  - name: {name}\n    address: 127.0.0.1:{port}\n    server_name: localhost\n    labels: {{team: e2e}}\n"
            ));
        };
        let mut running = Vec::new();
        for (name, spec) in leaves {
            let leaf = root.leaf(&spec);
            let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
            target(name, server.addr.port());
            running.push(server);
        }
        target(CLOSED, free_port());
        let exporter = Exporter::start(dir, &yaml);
        exporter.wait_for("a probe of every target", |m| {
            std::iter::once(HEALTHY).chain(BROKEN).all(|name| {
                m.lines_of(name)
                    .iter()
                    .any(|l| l.starts_with("tls_probes_total{"))
            })
        });
        Fleet {
            _servers: running,
            exporter,
        }
    }
}

/// The shipped rules with every `for:` set to 0s, so alerts fire on the first evaluation.
fn rules_firing_at_once() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/tls_exporter.rules.yml");
    let shipped = std::fs::read_to_string(&path).expect("read alerts/tls_exporter.rules.yml");
    let mut rewritten = 0;
    let rules: Vec<String> = shipped
        .lines()
        .map(|l| {
            let indent = l.len() - l.trim_start().len();
            if l.trim_start().starts_with("for:") {
                rewritten += 1;
                format!("{}for: 0s", &l[..indent])
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(
        rewritten >= EXPECTED.len(),
        "only {rewritten} `for:` found in {}",
        path.display()
    );
    rules.join("\n") + "\n"
}

/// Polls `/api/v1/alerts` until every expected alert is firing; returns the firing alerts.
async fn wait_for_alerts(prom: &Prometheus) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let alerts = prom.alerts().await.unwrap_or_else(|e| panic!("{e}"));
        let firing: Vec<Value> = alerts
            .iter()
            .filter(|a| a["state"] == "firing")
            .cloned()
            .collect();
        if EXPECTED
            .iter()
            .all(|e| firing.iter().any(|a| is(a, e.alertname, e.target)))
        {
            return firing;
        }
        assert!(
            start.elapsed() < SETTLE,
            "expected alerts not all firing after {SETTLE:?}\n--- /api/v1/alerts ---\n{}\n--- prometheus log ---\n{}",
            pretty(&alerts),
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the webhook has received every expected alert; returns all alerts received.
async fn wait_for_notifications(webhook: &Webhook, am: &Alertmanager) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let delivered = webhook.alerts();
        if EXPECTED
            .iter()
            .all(|e| delivered.iter().any(|a| is(a, e.alertname, e.target)))
        {
            return delivered;
        }
        assert!(
            start.elapsed() < SETTLE,
            "webhook did not receive every alert after {SETTLE:?}\n--- bodies ---\n{}\n--- alertmanager log ---\n{}",
            webhook.bodies().join("\n"),
            am.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Everything wrong with one firing alert, compared with what the fleet should raise.
fn check_alert(alert: &Value, want: &Expected, instance: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect_label = |name: &str, value: &str| {
        if label(alert, name) != value {
            problems.push(format!(
                "{} for {}: label {name} is {:?}, expected {value:?}",
                want.alertname,
                want.target,
                label(alert, name)
            ));
        }
    };
    expect_label("severity", want.severity);
    expect_label("job", "tls_exporter");
    expect_label("instance", instance);
    expect_label("team", "e2e");
    expect_label("reason", want.reason.unwrap_or(""));
    let summary = alert["annotations"]["summary"].as_str().unwrap_or("");
    if summary != want.summary {
        problems.push(format!(
            "{} for {}: summary {summary:?}, expected {:?}",
            want.alertname, want.target, want.summary
        ));
    }
    let description = alert["annotations"]["description"].as_str().unwrap_or("");
    let names_it = format!("{} (exporter {instance})", want.target);
    for fragment in [names_it.as_str(), want.detail] {
        if !description.contains(fragment) {
            problems.push(format!(
                "{} for {}: description {description:?} lacks {fragment:?}",
                want.alertname, want.target
            ));
        }
    }
    problems
}

fn is(alert: &Value, alertname: &str, target: &str) -> bool {
    label(alert, "alertname") == alertname && label(alert, "target") == target
}

fn label<'a>(alert: &'a Value, name: &str) -> &'a str {
    alert["labels"][name].as_str().unwrap_or("")
}

fn pretty(values: &[Value]) -> String {
    serde_json::to_string_pretty(values).unwrap_or_default()
}

/// One panel query with its variables substituted for one situation.
struct Query {
    dashboard: String,
    panel: String,
    ref_id: String,
    /// Which target `$target` stands for, if the dashboard has that variable.
    target: Option<&'static str>,
    expr: String,
    /// The one value the query must return, if known (see `FLEET_COUNTS`).
    expect: Option<f64>,
}

impl Query {
    fn describe(&self, problem: &str) -> String {
        let target = self
            .target
            .map_or(String::new(), |t| format!(" [target={t}]"));
        format!(
            "{} / {:?} {}{target}: {problem}\n    {}",
            self.dashboard, self.panel, self.ref_id, self.expr
        )
    }

    /// Why `series` is not the expected single value, if a value is expected.
    fn wrong_value(&self, series: &[Value]) -> Option<String> {
        let want = self.expect?;
        let got: Vec<f64> = series
            .iter()
            .filter_map(|s| s["value"][1].as_str()?.parse().ok())
            .collect();
        (got != [want]).then(|| format!("values {got:?}, expected [{want}] for this fleet"))
    }
}

/// Every query of every panel (rows included) of `dashboards/*.json`. Dashboards with a
/// `target` variable are queried for every target that completes a handshake, and their
/// queries about failures also for the closed port. The fleet's count panels must also count right.
fn dashboard_queries(dir: &Path) -> Vec<Query> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("read dashboards/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut queries = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        let dash: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let per_target = dash["templating"]["list"]
            .as_array()
            .is_some_and(|vars| vars.iter().any(|v| v["name"] == "target"));
        let mut panels = Vec::new();
        collect_panels(&dash["panels"], &mut panels);
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or("<untitled>");
            for t in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = t["expr"].as_str() else {
                    continue;
                };
                let targets: Vec<Option<&'static str>> = if !per_target {
                    vec![None]
                } else if expr.contains("failure") {
                    std::iter::once(HEALTHY).chain(BROKEN).map(Some).collect()
                } else {
                    HANDSHAKEN.into_iter().map(Some).collect()
                };
                for target in targets {
                    queries.push(Query {
                        dashboard: name.clone(),
                        panel: title.to_string(),
                        ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                        target,
                        expr: substitute(expr, target.unwrap_or(HEALTHY)),
                        expect: FLEET_COUNTS
                            .iter()
                            .find(|(t, _)| name == "tls-fleet.json" && *t == title)
                            .map(|(_, v)| *v),
                    });
                }
            }
        }
    }
    queries
}

fn collect_panels<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
    for p in panels.as_array().into_iter().flatten() {
        out.push(p);
        collect_panels(&p["panels"], out);
    }
}

/// Replaces Grafana variables (`$name`, `${name}`, `[[name]]`) the way Grafana would for the
/// `tls_exporter` job and `target`; unknown variables are left for Prometheus to reject.
fn substitute(expr: &str, target: &str) -> String {
    // Longest names first, so `$__interval` does not eat the start of `$__interval_ms`.
    let vars = [
        ("__rate_interval", "1m"),
        ("__interval_ms", "15000"),
        ("__interval", "15s"),
        ("__range", "5m"),
        ("target", target),
        ("job", "tls_exporter"),
    ];
    let mut out = expr.to_string();
    for (name, value) in vars {
        for form in [
            format!("${{{name}}}"),
            format!("[[{name}]]"),
            format!("${name}"),
        ] {
            out = out.replace(&form, value);
        }
    }
    out
}
