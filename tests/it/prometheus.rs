//! The shipped alert rules, Alertmanager config and dashboards against real Prometheus and
//! Alertmanager, scraping the real exporter probing loopback endpoints in every state the alerts
//! and panels care about (expired, imminent, overdue, short-lived, wrong host, closed, legacy
//! protocols, an expired extra certificate, HSTS, a plain-HTTP redirect, OCSP stapling, mTLS and
//! two addresses behind one name). Unit tests of each rule's thresholds live in alerts/tests/
//! (promtool); these tests prove the pieces fit: metric names, labels, recording rules,
//! annotations, routing, grouping and inhibition, the exporter-down alerts under the job names
//! of the shipped deployments, and every dashboard query.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::exporter::{write, Exporter};
use crate::support::file_server::Files;
use crate::support::now;
use crate::support::pki::{Ca, Spec};
use crate::support::prom::{Alertmanager, Prometheus, Webhook};
use crate::support::servers::{self, ClientAuth, OpensslServer, Opts, Server};

const HEALTHY: &str = "healthy";
const EXPIRED: &str = "expired";
const IMMINENT: &str = "imminent";
const OVERDUE: &str = "overdue";
const SHORT_LIVED: &str = "short-lived";
const WRONG_HOST: &str = "wrong-host";
const CLOSED: &str = "closed";
const EXTRA_EXPIRED: &str = "extra-expired";
const LEGACY: &str = "legacy";
const HSTS: &str = "hsts";
const REDIRECT: &str = "redirect";
const STAPLED: &str = "stapled";
const MTLS: &str = "mtls";
const MULTI: &str = "multi";
/// The name with two loopback addresses (scripts/install-test-deps puts it in /etc/hosts).
const MULTI_HOST: &str = "tls-exporter-multi.test";

/// Every target of the fleet.
const ALL: [&str; 14] = [
    HEALTHY,
    EXPIRED,
    IMMINENT,
    OVERDUE,
    SHORT_LIVED,
    WRONG_HOST,
    CLOSED,
    EXTRA_EXPIRED,
    LEGACY,
    HSTS,
    REDIRECT,
    STAPLED,
    MTLS,
    MULTI,
];
/// Targets whose probe completes a TLS handshake, so every drill-down panel has data for them.
const HANDSHAKEN: [&str; 11] = [
    HEALTHY,
    EXPIRED,
    IMMINENT,
    OVERDUE,
    SHORT_LIVED,
    WRONG_HOST,
    EXTRA_EXPIRED,
    HSTS,
    STAPLED,
    MTLS,
    MULTI,
];
/// Targets with a valid chain (verified-path panels), on at least one address.
const VALID_PATH: [&str; 9] = [
    HEALTHY,
    IMMINENT,
    OVERDUE,
    SHORT_LIVED,
    EXTRA_EXPIRED,
    HSTS,
    STAPLED,
    MTLS,
    MULTI,
];
/// Targets with a successful legacy scan.
const SCANNED: [&str; 12] = [
    HEALTHY,
    EXPIRED,
    IMMINENT,
    OVERDUE,
    SHORT_LIVED,
    WRONG_HOST,
    EXTRA_EXPIRED,
    LEGACY,
    HSTS,
    STAPLED,
    MTLS,
    MULTI,
];
/// Targets with a firing alert.
const ALERTING: [&str; 7] = [
    EXPIRED,
    IMMINENT,
    OVERDUE,
    WRONG_HOST,
    CLOSED,
    EXTRA_EXPIRED,
    LEGACY,
];

/// What the fleet dashboard's count panels must show for this fleet (their `or vector(0)`
/// would hide a broken query from a mere "has data" check).
const FLEET_COUNTS: [(&str, f64); 30] = [
    ("Targets", 14.0),
    ("Healthy", 9.0),
    ("Failing", 5.0),
    ("Invalid chain", 3.0),
    ("Critical alerts", 6.0),
    ("Warning alerts", 4.0),
    ("Expired", 1.0),
    ("Expires within 7 days", 2.0),
    ("Expires in 7 to 21 days", 1.0),
    ("Renewal due, beyond 21 days", 0.0),
    ("Later", 7.0),
    ("Renewal overdue (alerting)", 2.0),
    ("Chains out of order", 0.0),
    ("Incomplete chains", 0.0),
    ("Expired extras sent", 1.0),
    ("Servers asking for a client certificate", 1.0),
    ("Client certificates rejected", 0.0),
    ("Addresses probed", 2.0),
    ("Targets failing on some addresses only", 1.0),
    ("HSTS under 180 days", 0.0),
    ("Not redirecting to HTTPS", 0.0),
    ("Exporters up", 1.0),
    ("Exporters down", 0.0),
    ("Configured targets", 14.0),
    ("Invalid target files", 0.0),
    ("Unreadable certificate files", 0.0),
    ("File certificates past renewal", 0.0),
    ("Renewed, not deployed", 0.0),
    ("Endpoints serving the expected certificate", 1.0),
    ("Certificate files watched", 2.0),
];

/// Ports nothing listens on: below the ephemeral range that `:0` binds (of this and every
/// other test on the machine) draw from, and of no service a test machine runs. (A port that
/// was free a moment ago may be taken by the time the exporter probes it.)
const CLOSED_PORTS: [u16; 6] = [1, 2, 3, 4, 5, 6];

/// Bound on a whole test: starting everything plus every wait.
const TEST_LIMIT: Duration = Duration::from_secs(90);
/// Bound on waiting for alerts, notifications or dashboard data to appear.
const SETTLE: Duration = Duration::from_secs(30);
/// Where every runbook_url points (README, "Alerts").
const RUNBOOK: &str = "https://github.com/tls-exporter/tls_exporter/blob/main/docs/runbooks.md#";

/// An alert the fleet must raise.
struct Expected {
    alertname: &'static str,
    target: &'static str,
    severity: &'static str,
    /// Labels besides job, instance, team, target and severity (reason, ip, version, class).
    labels: &'static [(&'static str, &'static str)],
    /// How the summary starts (durations in it move with the clock).
    summary: &'static str,
    /// A fragment of the description naming the problem.
    detail: &'static str,
}

const EXPECTED: [Expected; 12] = [
    Expected {
        alertname: "TLSRevocationCheckFailing",
        target: OVERDUE,
        severity: "warning",
        labels: &[("depth", "0"), ("method", "crl")],
        summary: "Revocation check (crl) of overdue failing",
        detail: "no trustworthy crl answer for the certificate at depth 0 of overdue",
    },
    Expected {
        alertname: "TLSCertificateExpired",
        target: EXPIRED,
        severity: "critical",
        labels: &[],
        summary: "TLS certificate of expired has expired",
        detail: "most recently expired certificate it sends expired 1d 0h",
    },
    Expected {
        alertname: "TLSCertificateExpiryImminent",
        target: IMMINENT,
        severity: "critical",
        labels: &[],
        summary: "TLS certificate of imminent expires in 1d 12h",
        detail: "after which clients reject the endpoint",
    },
    Expected {
        alertname: "TLSCertificateRenewalOverdue",
        target: OVERDUE,
        severity: "warning",
        labels: &[],
        summary: "Renewal of the TLS certificate of overdue is overdue: it expires in 10d 0h",
        detail: "renewal was due 30d 0h 0m 0s before expiry",
    },
    Expected {
        alertname: "TLSChainInvalid",
        target: WRONG_HOST,
        severity: "critical",
        labels: &[("reason", "hostname_mismatch")],
        summary: "TLS chain of wrong-host is invalid: hostname_mismatch",
        detail: "fails verification with reason hostname_mismatch",
    },
    Expected {
        alertname: "TLSChainInvalid",
        target: MULTI,
        severity: "critical",
        labels: &[("reason", "hostname_mismatch"), ("ip", "127.0.0.3")],
        summary: "TLS chain of multi is invalid: hostname_mismatch",
        detail: "fails verification with reason hostname_mismatch",
    },
    Expected {
        alertname: "TLSEndpointFailing",
        target: CLOSED,
        severity: "critical",
        labels: &[("reason", "connection_refused")],
        summary: "TLS endpoint closed is failing: connection_refused",
        detail: "with reason connection_refused",
    },
    Expected {
        alertname: "TLSEndpointFailing",
        target: LEGACY,
        severity: "critical",
        labels: &[("reason", "protocol_version")],
        summary: "TLS endpoint legacy is failing: protocol_version",
        detail: "with reason protocol_version",
    },
    Expected {
        alertname: "TLSLegacyProtocolAccepted",
        target: LEGACY,
        severity: "warning",
        labels: &[("version", "TLS 1.0")],
        summary: "legacy accepts deprecated protocol TLS 1.0",
        detail: "still accepts TLS 1.0",
    },
    Expected {
        alertname: "TLSLegacyProtocolAccepted",
        target: LEGACY,
        severity: "warning",
        labels: &[("version", "TLS 1.1")],
        summary: "legacy accepts deprecated protocol TLS 1.1",
        detail: "still accepts TLS 1.1",
    },
    Expected {
        alertname: "TLSCBCSHA1CipherAccepted",
        target: LEGACY,
        severity: "info",
        labels: &[("class", "CBC-SHA1")],
        summary: "legacy accepts CBC-SHA1 cipher suites",
        detail: "CBC cipher suites with HMAC-SHA1",
    },
    Expected {
        alertname: "TLSChainExtraCertificateExpired",
        target: EXTRA_EXPIRED,
        severity: "info",
        labels: &[],
        summary: "extra-expired sends an expired certificate its chain does not need",
        detail: "sends 1 expired certificate(s) besides a valid path",
    },
];

/// Alerts that must not fire, named for what they would mean (any alert not in `EXPECTED` fails
/// the test too): an expired path is TLSCertificateExpired only; the healthy chain with an
/// expired extra certificate raises no expiry or chain alert; a 6-day certificate with half its
/// lifetime left is not overdue.
const FORBIDDEN: [(&str, &str); 5] = [
    ("TLSChainInvalid", EXPIRED),
    ("TLSCertificateExpired", EXTRA_EXPIRED),
    ("TLSChainIncomplete", EXTRA_EXPIRED),
    ("TLSChainMisordered", EXTRA_EXPIRED),
    ("TLSCertificateRenewalOverdue", SHORT_LIVED),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_alerts_fire_for_broken_endpoints_and_reach_the_webhook() {
    tokio::time::timeout(TEST_LIMIT, async {
        let fleet = Fleet::start().await;
        let webhook = Webhook::start().await;
        let am = Alertmanager::shipped(webhook.addr).await;
        let prom = Prometheus::start(
            fleet.exporter.addr,
            &shipped_rules(|_| "0s".to_string()),
            Some(am.addr()),
        )
        .await;
        let instance = fleet.exporter.addr.to_string();

        // Exactly the expected alerts, once the fleet settled (with `for: 0s`, an alert true for
        // one evaluation, e.g. TLSExporterAbsent before the first scrape, fires too).
        let firing = wait_for_exact(&prom, |firing| fleet_problems(firing, &instance)).await;

        // Annotations are rendered at every evaluation (durations move): the notification must
        // carry the same labels and pass the same checks.
        let delivered = wait_for_delivery(&webhook, &am, &EXPECTED).await;
        for want in &EXPECTED {
            let sent = firing.iter().find(|a| matches(a, want));
            let got = delivered.iter().find(|a| matches(a, want));
            let (Some(sent), Some(got)) = (sent, got) else {
                unreachable!("both waited for above");
            };
            assert_eq!(got["status"], "firing", "{}", pretty(&delivered));
            assert_eq!(got["labels"], sent["labels"], "{}", pretty(&delivered));
            let problems = check_alert(got, want, &instance);
            assert!(problems.is_empty(), "{}\n{}", problems.join("\n"), pretty(&delivered));
        }
        let quiet = [HEALTHY, SHORT_LIVED, HSTS, REDIRECT, STAPLED, MTLS];
        assert!(
            !delivered
                .iter()
                .any(|a| quiet.contains(&label(a, "target"))),
            "notification for a healthy target:\n{}",
            pretty(&delivered)
        );
        // Grouped per alert and exporter: both legacy protocol alerts arrive in one notification.
        let legacy: Vec<Value> = webhook
            .notifications()
            .into_iter()
            .filter(|n| n["groupLabels"]["alertname"] == "TLSLegacyProtocolAccepted")
            .collect();
        assert!(
            legacy
                .iter()
                .any(|n| n["alerts"].as_array().is_some_and(|a| a.len() == 2)),
            "the two TLSLegacyProtocolAccepted alerts of one exporter are not one notification:\n{}",
            pretty(&legacy)
        );
    })
    .await
    .expect("test finished within its limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_real_prometheus() {
    tokio::time::timeout(TEST_LIMIT, async {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
        let fleet = Fleet::start().await;
        let instance = fleet.exporter.addr.to_string();
        let queries = dashboard_queries(&dir, &instance);
        assert!(queries.len() > 100, "too few dashboard queries found: {}", queries.len());
        for (title, _) in FLEET_COUNTS {
            assert!(
                queries.iter().any(|q| q.panel == title && q.expect.is_some()),
                "tls-fleet.json has no panel {title:?}"
            );
        }
        let prom = Prometheus::start(
            fleet.exporter.addr,
            &shipped_rules(|_| "0s".to_string()),
            None,
        )
        .await;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_down_fires_under_every_shipped_job_name_and_absent_when_nothing_is_scraped() {
    tokio::time::timeout(TEST_LIMIT, async {
        let jobs = shipped_job_names();
        for name in ["tls_exporter", "tls-exporter", "tls-exporter-sharded"] {
            assert!(jobs.contains(name), "job name {name} not found in the shipped deployments: {jobs:?}");
        }
        let root = Ca::root("Down Root");
        let leaf = root.leaf(&Spec::leaf("localhost"));
        let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
        let dir = Exporter::dir();
        write(dir.path(), "ca.pem", &root.cert.pem);
        let exporter = Exporter::start(
            dir,
            &format!(
                "global: {{interval: 1s, timeout: 800ms, ca_file: ca.pem, scan: false}}\ntargets:\n  - name: t\n    address: {}\n    server_name: localhost\n",
                server.addr
            ),
        );
        let rules = shipped_rules(|_| "0s".to_string());
        let scraped: Vec<(&str, SocketAddr)> =
            jobs.iter().map(|j| (j.as_str(), exporter.addr)).collect();
        let prom = Prometheus::start_jobs(&scraped, &rules, None).await;
        wait_for_query(&prom, "up == 1", |s| s.len() == jobs.len()).await;

        let instance = exporter.addr.to_string();
        drop(exporter);
        let want: BTreeSet<(String, String)> = jobs
            .iter()
            .map(|j| ("TLSExporterDown".to_string(), j.clone()))
            .collect();
        let firing = wait_for_firing_by(&prom, want, |a| {
            (label(a, "alertname").to_string(), label(a, "job").to_string())
        })
        .await;
        assert!(
            !firing.iter().any(|a| label(a, "alertname") == "TLSExporterAbsent"),
            "TLSExporterAbsent fires while the exporter's jobs are scraped:\n{}",
            pretty(&firing)
        );
        for alert in firing.iter().filter(|a| label(a, "alertname") == "TLSExporterDown") {
            assert_eq!(label(alert, "severity"), "critical", "{}", pretty(&firing));
            assert_eq!(label(alert, "instance"), instance, "{}", pretty(&firing));
            check_runbook(alert).unwrap_or_else(|p| panic!("{p}"));
        }

        // No exporter job at all: the series are absent altogether.
        let empty = Prometheus::start_jobs(&[], &rules, None).await;
        let want = BTreeSet::from([("TLSExporterAbsent".to_string(), String::new())]);
        let firing = wait_for_firing_by(&empty, want, |a| {
            (label(a, "alertname").to_string(), label(a, "job").to_string())
        })
        .await;
        let absent: Vec<&Value> = firing
            .iter()
            .filter(|a| label(a, "alertname") == "TLSExporterAbsent")
            .collect();
        assert_eq!(absent.len(), 1, "{}", pretty(&firing));
        assert_eq!(label(absent[0], "severity"), "critical");
        check_runbook(absent[0]).unwrap_or_else(|p| panic!("{p}"));
    })
    .await
    .expect("test finished within its limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exporter_side_outage_is_one_page_with_the_per_target_alerts_inhibited() {
    tokio::time::timeout(TEST_LIMIT, async {
        const DOWN: usize = 6;
        let root = Ca::root("Outage Root");
        let leaf = root.leaf(&Spec::leaf("localhost"));
        let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
        let dir = Exporter::dir();
        write(dir.path(), "ca.pem", &root.cert.pem);
        let mut yaml = format!(
            "global: {{interval: 1s, timeout: 800ms, ca_file: ca.pem, scan: false}}\ntargets:\n  - name: up\n    address: {}\n    server_name: localhost\n",
            server.addr
        );
        // Endpoints the exporter cannot reach, as in an outage on its side: closed ports.
        let down: Vec<String> = (0..DOWN).map(|i| format!("down-{i}")).collect();
        for (name, port) in down.iter().zip(CLOSED_PORTS) {
            yaml.push_str(&format!("  - name: {name}\n    address: 127.0.0.1:{port}\n"));
        }
        let exporter = Exporter::start(dir, &yaml);
        let webhook = Webhook::start().await;
        let am = Alertmanager::shipped(webhook.addr).await;
        // The shipped `for:` in seconds instead of minutes: TLSManyEndpointsFailing (3m) is
        // there before TLSEndpointFailing (5m), as in production.
        let prom = Prometheus::start(
            exporter.addr,
            &shipped_rules(|d| d.replace('m', "s")),
            Some(am.addr()),
        )
        .await;
        let instance = exporter.addr.to_string();

        let mut want: BTreeSet<(String, String)> = down
            .iter()
            .map(|t| ("TLSEndpointFailing".to_string(), t.clone()))
            .collect();
        want.insert(("TLSManyEndpointsFailing".to_string(), String::new()));
        let firing = wait_for_firing(&prom, want).await;
        let group = firing
            .iter()
            .find(|a| label(a, "alertname") == "TLSManyEndpointsFailing")
            .expect("waited for");
        assert_eq!(label(group, "instance"), instance);
        assert_eq!(label(group, "severity"), "critical");
        let summary = group["annotations"]["summary"].as_str().unwrap_or("");
        assert_eq!(
            summary,
            format!("85.71% of the endpoints probed by tls_exporter {instance} are failing"),
            "{}",
            pretty(&firing)
        );
        let description = group["annotations"]["description"].as_str().unwrap_or("");
        assert!(
            description.starts_with(&format!("{DOWN} of the 7 endpoints"))
                && description.contains(&format!("by reason: connection_refused {DOWN})")),
            "{description}"
        );

        // Alertmanager holds every per-target alert, inhibited by the exporter's one.
        let start = Instant::now();
        loop {
            let held = am.alerts().await.unwrap_or_else(|e| panic!("{e}"));
            let inhibited = held
                .iter()
                .filter(|a| {
                    label(a, "alertname") == "TLSEndpointFailing"
                        && a["status"]["state"] == "suppressed"
                        && a["status"]["inhibitedBy"]
                            .as_array()
                            .is_some_and(|by| !by.is_empty())
                })
                .count();
            let paged = webhook
                .alerts()
                .iter()
                .any(|a| label(a, "alertname") == "TLSManyEndpointsFailing");
            if inhibited == DOWN && paged {
                break;
            }
            assert!(
                start.elapsed() < SETTLE,
                "after {SETTLE:?}: {inhibited} of {DOWN} TLSEndpointFailing inhibited, grouped page sent: {paged}\n--- alertmanager /api/v2/alerts ---\n{}\n--- webhook ---\n{}\n--- alertmanager log ---\n{}",
                pretty(&held),
                webhook.bodies().join("\n"),
                am.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // A group flushes every second (group_wait, group_interval of the test): three
        // intervals give a wrongly uninhibited group every chance to be sent.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let notifications = webhook.notifications();
        let pages: Vec<&Value> = notifications
            .iter()
            .filter(|n| n["groupLabels"]["alertname"] == "TLSManyEndpointsFailing")
            .collect();
        assert!(
            pages.iter().all(|n| n["alerts"].as_array().is_some_and(|a| a.len() == 1))
                && pages.first().is_some_and(|n| n["groupLabels"]["instance"] == instance.as_str()),
            "the outage is not one alert for the exporter:\n{}",
            pretty(&notifications)
        );
        assert!(
            !webhook
                .alerts()
                .iter()
                .any(|a| label(a, "alertname") == "TLSEndpointFailing"),
            "per-target alerts were sent although inhibited:\n{}",
            pretty(&notifications)
        );
    })
    .await
    .expect("test finished within its limit");
}

/// Loopback endpoints in every state the alerts and dashboards care about, probed every second
/// (and scanned every 5 seconds) by the real exporter.
struct Fleet {
    _servers: Vec<Server>,
    _legacy: OpensslServer,
    _crls: Files,
    redirect: JoinHandle<()>,
    exporter: Exporter,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.redirect.abort();
    }
}

impl Fleet {
    async fn start() -> Fleet {
        let day = 86_400;
        let t = now();
        let root = Ca::root("E2E Root");
        let inter = root.intermediate(&Spec::leaf("E2E Intermediate").sans(&[]).serial(2));
        // The root's name cross-signed by an old, expired root nobody trusts (the 2021 "DST Root
        // CA X3" case): sent, but not needed by the path.
        let old = Ca::root("E2E Old Root");
        let cross = old.intermediate(
            &Spec::leaf("E2E Root")
                .sans(&[])
                .valid(t - 400 * day, t - 30 * day)
                .serial(3),
        );
        let dir = Exporter::dir();
        write(dir.path(), "ca.pem", &root.cert.pem);
        // The root's CRL, listing no certificate of the fleet.
        let crls = Files::start().await;
        crls.put("/e2e.crl", root.crl(&[0x99], t - day, t + 7 * day));
        let mut yaml =
            "global: {interval: 1s, timeout: 800ms, ca_file: ca.pem, scan_interval: 5s}\nfiles:\n  - {path: ca.pem, labels: {team: e2e}}\n  - {path: healthy.pem, labels: {team: e2e}}\ntargets:\n"
                .to_string();
        let mut running = Vec::new();
        let mut target = |name: &str, address: &str, extra: &str| {
            yaml.push_str(&format!(
                "  - name: {name}\n    address: \"{address}\"\n    labels: {{team: e2e}}\n{extra}"
            ));
        };
        let localhost = "    server_name: localhost\n";

        let leaves = [
            // Its CRL (served below) does not list it: revocation status good.
            (
                HEALTHY,
                Spec::leaf("localhost")
                    .serial(0x10)
                    .crl(&crls.url("/e2e.crl")),
            ),
            (
                EXPIRED,
                Spec::leaf("localhost")
                    .valid(t - 30 * day, t - day)
                    .serial(0x11),
            ),
            // 89.5-day lifetime, 1.5 days (and a half hour) left: below 2 days, critical.
            (
                IMMINENT,
                Spec::leaf("localhost")
                    .valid(t - 88 * day, t + 3 * day / 2 + 1800)
                    .serial(0x12),
            ),
            // 90-day lifetime, 10 days left: below a third (30 days), warning. Its CRL
            // distribution point refuses connections: revocation status error (warning).
            (
                OVERDUE,
                Spec::leaf("localhost")
                    .valid(t - 80 * day, t + 10 * day + 1800)
                    .serial(0x13)
                    .crl(&format!("http://127.0.0.1:{}/e2e.crl", CLOSED_PORTS[0])),
            ),
            // 6-day lifetime, 3 days left: renewal not due yet (2 days), silent.
            (
                SHORT_LIVED,
                Spec::leaf("localhost")
                    .valid(t - 3 * day, t + 3 * day)
                    .serial(0x14),
            ),
            (
                WRONG_HOST,
                Spec::leaf("other.example")
                    .sans(&["other.example"])
                    .serial(0x15),
            ),
        ];
        for (name, spec) in leaves {
            let leaf = root.leaf(&spec);
            let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
            if name == HEALTHY {
                // The certificate at rest it should serve, and does (certificates at rest).
                write(dir.path(), "healthy.pem", &leaf.pem);
                let extra =
                    format!("{localhost}    expect_cert_file: healthy.pem\n    revocation: crl\n");
                target(name, &server.addr.to_string(), &extra);
            } else if name == OVERDUE {
                let extra = format!("{localhost}    revocation: crl\n");
                target(name, &server.addr.to_string(), &extra);
            } else {
                target(name, &server.addr.to_string(), localhost);
            }
            running.push(server);
        }
        target(CLOSED, &format!("127.0.0.1:{}", CLOSED_PORTS[0]), localhost);

        let leaf = inter.leaf(&Spec::leaf("localhost").serial(0x16));
        let chain = vec![
            leaf.der.clone(),
            inter.cert.der.clone(),
            cross.cert.der.clone(),
        ];
        let server = servers::rustls(Opts::new(chain, leaf.key_der())).await;
        target(EXTRA_EXPIRED, &server.addr.to_string(), localhost);
        running.push(server);

        // TLS 1.0 and 1.1 only, OpenSSL's default (CBC-SHA1) suites at security level 0.
        root.openssl_leaf(
            dir.path(),
            "legacy",
            "ec:ec_paramgen_curve:P-256",
            "-sha256",
        );
        let legacy = legacy_server(dir.path());
        target(LEGACY, &legacy.addr.to_string(), localhost);

        let leaf = root.leaf(&Spec::leaf("localhost").serial(0x17));
        let mut opts = Opts::new(vec![leaf.der.clone()], leaf.key_der());
        opts.http_response = Some(
            "HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=31536000; includeSubDomains\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        );
        let server = servers::rustls(opts).await;
        target(
            HSTS,
            &server.addr.to_string(),
            "    server_name: localhost\n    http: {path: /}\n",
        );
        running.push(server);

        let (redirect_addr, redirect) = redirecting_to_https().await;
        target(
            REDIRECT,
            &redirect_addr.to_string(),
            "    probe: http_redirect\n",
        );

        let leaf = inter.leaf(&Spec::leaf("localhost").serial(crate::ocsp::SERIAL));
        let staple = crate::ocsp::respond(dir.path(), &crate::ocsp::good(), &inter, &inter, &leaf);
        let mut opts = Opts::new(
            vec![leaf.der.clone(), inter.cert.der.clone()],
            leaf.key_der(),
        );
        opts.ocsp = Some(staple);
        let server = servers::rustls(opts).await;
        target(STAPLED, &server.addr.to_string(), localhost);
        running.push(server);

        let leaf = root.leaf(&Spec::leaf("localhost").serial(0x18));
        let client = root.leaf(&Spec::leaf("e2e-client").sans(&[]).serial(0x19));
        write(dir.path(), "client.pem", &client.pem);
        write(dir.path(), "client.key", &client.key_pem);
        let mut opts = Opts::new(vec![leaf.der.clone()], leaf.key_der());
        opts.client_auth = ClientAuth::Required(vec![root.cert.der.clone()]);
        let server = servers::rustls(opts).await;
        target(
            MTLS,
            &server.addr.to_string(),
            "    server_name: localhost\n    client_cert_file: client.pem\n    client_key_file: client.key\n",
        );
        running.push(server);

        // Two backends behind one name, on the same port: one serves a certificate for another
        // name.
        let good = root.leaf(&Spec::leaf(MULTI_HOST).sans(&[MULTI_HOST]).serial(0x1a));
        let wrong = root.leaf(
            &Spec::leaf("other.example")
                .sans(&["other.example"])
                .serial(0x1b),
        );
        let (a, b) = same_port_on_two_addresses(
            || Opts::new(vec![good.der.clone()], good.key_der()),
            Opts::new(vec![wrong.der.clone()], wrong.key_der()),
        )
        .await;
        target(
            MULTI,
            &format!("{MULTI_HOST}:{}", a.addr.port()),
            "    resolve: all\n    ip_protocol: ip4\n",
        );
        running.extend([a, b]);

        let exporter = Exporter::start(dir, &yaml);
        exporter.wait_for(
            "a probe of every target and the legacy one's scan finding TLS 1.0",
            |m| {
                ALL.iter().all(|name| {
                    m.lines_of(name)
                        .iter()
                        .any(|l| l.starts_with("tls_probes_total{"))
                }) && m.lines_of(LEGACY).iter().any(|l| {
                    l.starts_with("tls_protocol_accepted{")
                        && l.contains("version=\"TLS 1.0\"")
                        && l.ends_with(" 1")
                })
            },
        );
        Fleet {
            _servers: running,
            _legacy: legacy,
            _crls: crls,
            redirect,
            exporter,
        }
    }
}

/// `openssl s_server` speaking TLS 1.0 and 1.1 only, with the certificate `legacy.pem` in
/// `dir`, checked with a TLS 1.1 handshake: the port it was given may have been taken by another
/// test in between (then it exits, and whatever holds the port is not it), so it is retried.
fn legacy_server(dir: &Path) -> OpensslServer {
    for _ in 0..5 {
        let server = servers::openssl(
            &dir.join("legacy.pem"),
            &dir.join("legacy.key"),
            &["-no_tls1_2", "-no_tls1_3", "-cipher", "DEFAULT:@SECLEVEL=0"],
        );
        let handshake = std::process::Command::new("timeout")
            .args([
                "5",
                "openssl",
                "s_client",
                "-tls1_1",
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
            ])
            .arg("-connect")
            .arg(server.addr.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl and timeout are installed");
        if handshake.success() {
            return server;
        }
    }
    panic!("openssl s_server with TLS 1.0/1.1 did not answer a TLS 1.1 handshake in 5 tries");
}

/// Two rustls servers on one port, on 127.0.0.2 (`a()`) and 127.0.0.3 (`b`); retried when the
/// port is taken on 127.0.0.3 (other tests bind there too).
async fn same_port_on_two_addresses(a: impl Fn() -> Opts, mut b: Opts) -> (Server, Server) {
    for _ in 0..10 {
        let mut opts = a();
        opts.bind = "127.0.0.2:0".parse().expect("addr");
        let first = servers::rustls(opts).await;
        let second = SocketAddr::from(([127, 0, 0, 3], first.addr.port()));
        // Free now, so the server below binds it (barring a race within microseconds).
        if std::net::TcpListener::bind(second).is_ok() {
            b.bind = second;
            return (first, servers::rustls(b).await);
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3 in 10 tries");
}

/// A plain-HTTP server answering every request with a redirect to https://.
async fn redirecting_to_https() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://example.test/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// The shipped rules with every `for:` duration replaced by `rewrite(duration)`.
fn shipped_rules(rewrite: impl Fn(&str) -> String) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts/tls_exporter.rules.yml");
    let shipped = std::fs::read_to_string(&path).expect("read alerts/tls_exporter.rules.yml");
    let mut rewritten = 0;
    let rules: Vec<String> = shipped
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(d) => {
                rewritten += 1;
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}for: {}", rewrite(d.trim()))
            }
            None => l.to_string(),
        })
        .collect();
    assert!(
        rewritten >= 20,
        "only {rewritten} `for:` found in {}",
        path.display()
    );
    rules.join("\n") + "\n"
}

/// The job names the shipped deployments give the exporter's scrape job: every `job_name` of
/// examples/compose/prometheus.yml; for deploy/kubernetes, the value of the ServiceMonitor's
/// `jobLabel` on each Service it selects, and each such Service's name (Prometheus Operator's
/// job without `jobLabel`).
fn shipped_job_names() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read =
        |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("read {p}: {e}"));
    let mut names = BTreeSet::new();
    let compose: Value = serde_saphyr::from_str(&read("examples/compose/prometheus.yml"))
        .expect("parse examples/compose/prometheus.yml");
    for job in compose["scrape_configs"].as_array().into_iter().flatten() {
        if let Some(name) = job["job_name"].as_str() {
            names.insert(name.to_string());
        }
    }
    let mut objects: Vec<Value> = Vec::new();
    for entry in std::fs::read_dir(root.join("deploy/kubernetes")).expect("read deploy/kubernetes")
    {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|x| x == "yaml") {
            let text = std::fs::read_to_string(&path).expect("read manifest");
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
                .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
            objects.extend(docs);
        }
    }
    let services: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "Service").collect();
    for monitor in objects.iter().filter(|o| o["kind"] == "ServiceMonitor") {
        let selector = monitor["spec"]["selector"]["matchLabels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let job_label = monitor["spec"]["jobLabel"].as_str();
        for service in &services {
            let labels = &service["metadata"]["labels"];
            if !selector.iter().all(|(k, v)| &labels[k] == v) {
                continue;
            }
            if let Some(name) = service["metadata"]["name"].as_str() {
                names.insert(name.to_string());
            }
            if let Some(value) = job_label.and_then(|l| labels[l].as_str()) {
                names.insert(value.to_string());
            }
        }
    }
    names
}

type Key = (String, String);

/// Everything wrong with the fleet's firing alerts: an expected one missing or wrong, one not
/// expected, a forbidden one.
fn fleet_problems(firing: &[Value], instance: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for want in &EXPECTED {
        match firing.iter().find(|a| matches(a, want)) {
            Some(alert) => problems.extend(check_alert(alert, want, instance)),
            None => problems.push(format!("{} for {} not firing", want.alertname, want.target)),
        }
    }
    for alert in firing {
        if !EXPECTED.iter().any(|want| matches(alert, want)) {
            problems.push(format!(
                "unexpected alert {} for {:?} {}",
                label(alert, "alertname"),
                label(alert, "target"),
                alert["labels"]
            ));
        }
    }
    for (alertname, target) in FORBIDDEN {
        if firing.iter().any(|a| is(a, alertname, target)) {
            problems.push(format!("{alertname} fires for {target}"));
        }
    }
    problems
}

/// Polls `/api/v1/alerts` until `problems` finds nothing wrong with the firing alerts; returns
/// them.
async fn wait_for_exact(
    prom: &Prometheus,
    problems: impl Fn(&[Value]) -> Vec<String>,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let alerts = prom.alerts().await.unwrap_or_else(|e| panic!("{e}"));
        let firing: Vec<Value> = alerts
            .iter()
            .filter(|a| a["state"] == "firing")
            .cloned()
            .collect();
        let found = problems(&firing);
        if found.is_empty() {
            return firing;
        }
        assert!(
            start.elapsed() < SETTLE,
            "after {SETTLE:?}:\n{}\n--- /api/v1/alerts ---\n{}\n--- prometheus log ---\n{}",
            found.join("\n"),
            pretty(&alerts),
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls `/api/v1/alerts` until an alert of each `(alertname, target)` is firing; returns the
/// firing alerts.
async fn wait_for_firing(prom: &Prometheus, want: BTreeSet<Key>) -> Vec<Value> {
    wait_for_firing_by(prom, want, |a| {
        (
            label(a, "alertname").to_string(),
            label(a, "target").to_string(),
        )
    })
    .await
}

/// Polls `/api/v1/alerts` until every key in `want` is the `key_of` of a firing alert.
async fn wait_for_firing_by(
    prom: &Prometheus,
    want: BTreeSet<Key>,
    key_of: impl Fn(&Value) -> Key,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let alerts = prom.alerts().await.unwrap_or_else(|e| panic!("{e}"));
        let firing: Vec<Value> = alerts
            .iter()
            .filter(|a| a["state"] == "firing")
            .cloned()
            .collect();
        let have: BTreeSet<Key> = firing.iter().map(&key_of).collect();
        if want.is_subset(&have) {
            return firing;
        }
        assert!(
            start.elapsed() < SETTLE,
            "not firing after {SETTLE:?}: {:?}\n--- /api/v1/alerts ---\n{}\n--- prometheus log ---\n{}",
            want.difference(&have).collect::<Vec<_>>(),
            pretty(&alerts),
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls an instant query until `done` holds for its result.
async fn wait_for_query(prom: &Prometheus, expr: &str, done: impl Fn(&[Value]) -> bool) {
    let start = Instant::now();
    loop {
        let result = prom.query(expr).await.unwrap_or_else(|e| panic!("{e}"));
        if done(&result) {
            return;
        }
        assert!(
            start.elapsed() < SETTLE,
            "{expr} after {SETTLE:?}: {}\n--- prometheus log ---\n{}",
            pretty(&result),
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the webhook has received every alert of `want`; returns all alerts received.
async fn wait_for_delivery(webhook: &Webhook, am: &Alertmanager, want: &[Expected]) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let delivered = webhook.alerts();
        if want.iter().all(|e| delivered.iter().any(|a| matches(a, e))) {
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
    for name in ["reason", "ip", "version", "class"] {
        let value = want
            .labels
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v);
        expect_label(name, value);
    }
    let summary = alert["annotations"]["summary"].as_str().unwrap_or("");
    if !summary.starts_with(want.summary) {
        problems.push(format!(
            "{} for {}: summary {summary:?} does not start with {:?}",
            want.alertname, want.target, want.summary
        ));
    }
    let description = alert["annotations"]["description"].as_str().unwrap_or("");
    let at = match label(alert, "ip") {
        "" => String::new(),
        ip => format!(" at {ip}"),
    };
    let names_it = format!("{}{at} (exporter {instance})", want.target);
    for fragment in [names_it.as_str(), want.detail] {
        if !description.contains(fragment) {
            problems.push(format!(
                "{} for {}: description {description:?} lacks {fragment:?}",
                want.alertname, want.target
            ));
        }
    }
    if let Err(p) = check_runbook(alert) {
        problems.push(p);
    }
    problems
}

/// The alert's runbook_url is the section of docs/runbooks.md named after it.
fn check_runbook(alert: &Value) -> Result<(), String> {
    let name = label(alert, "alertname");
    let url = alert["annotations"]["runbook_url"].as_str().unwrap_or("");
    let want = format!("{RUNBOOK}{}", name.to_lowercase());
    (url == want)
        .then_some(())
        .ok_or_else(|| format!("{name}: runbook_url {url:?}, expected {want:?}"))
}

fn matches(alert: &Value, want: &Expected) -> bool {
    is(alert, want.alertname, want.target) && want.labels.iter().all(|(k, v)| label(alert, k) == *v)
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
    /// Which target `$target` stands for on the target dashboard.
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

/// The targets of the fleet a query of the target dashboard must return data for: those that
/// have the series it reads.
fn targets_for(expr: &str) -> &'static [&'static str] {
    let has = |s: &str| expr.contains(s);
    if has("ALERTS") {
        &ALERTING
    } else if has("ip!=\"\"") {
        &[MULTI]
    } else if has("tls_ocsp_cert_status")
        || has("tls_ocsp_response_verified")
        || has("tls_ocsp_next_update")
        || has("tls_ocsp_this_update")
    {
        &[STAPLED]
    } else if has("tls_hsts_") {
        &[HSTS]
    } else if has("tls_http_redirect") {
        &[REDIRECT]
    } else if has("tls_http_status_code") {
        &[HSTS, REDIRECT]
    } else if has("tls_client_cert_") {
        &[MTLS]
    } else if has("tls_revocation_next_update") {
        &[HEALTHY]
    } else if has("tls_revocation_") {
        &[HEALTHY, OVERDUE]
    } else if has("tls_cert_matches_expected") || has("tls_cert_expected_") {
        &[HEALTHY]
    } else if has("tls_scan_") || has("tls_protocol_accepted") || has("tls_weak_cipher_accepted") {
        &SCANNED
    } else if has("failure") {
        &ALL
    } else if has("tls_chain_expiry")
        || has("tls_chain_lifetime_left")
        || has(":threshold")
        || has("tls_cert_leaf_lifetime")
    {
        &VALID_PATH
    } else {
        &HANDSHAKEN
    }
}

/// Every query of every panel (rows included) of `dashboards/*.json`, its variables substituted
/// the way Grafana would for this fleet's exporter `instance`. Queries of the target dashboard
/// are run for every target that has the series they read (`targets_for`); the fleet's count
/// panels must also count right.
fn dashboard_queries(dir: &Path, instance: &str) -> Vec<Query> {
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
        // The target board picks one target; the fleet board filters with a regex.
        let per_target = dash["templating"]["list"].as_array().is_some_and(|vars| {
            vars.iter()
                .any(|v| v["name"] == "target" && v["type"] == "query")
        });
        let mut panels = Vec::new();
        collect_panels(&dash["panels"], &mut panels);
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or("<untitled>");
            for t in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = t["expr"].as_str() else {
                    continue;
                };
                let targets: Vec<Option<&'static str>> = if per_target {
                    targets_for(expr).iter().copied().map(Some).collect()
                } else {
                    vec![None]
                };
                for target in targets {
                    let vars = [
                        ("__rate_interval", "1m"),
                        ("__interval_ms", "15000"),
                        ("__interval", "15s"),
                        ("__range", "5m"),
                        ("target", target.unwrap_or(".*")),
                        ("job", "tls_exporter"),
                        ("instance", instance),
                        ("team", "e2e"),
                    ];
                    queries.push(Query {
                        dashboard: name.clone(),
                        panel: title.to_string(),
                        ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                        target,
                        expr: substitute(expr, &vars),
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

/// Replaces Grafana variables (`$name`, `${name}`, `[[name]]`) with `vars`, in order (longest
/// names first, so `$__interval` does not eat the start of `$__interval_ms`); unknown variables
/// are left for Prometheus to reject.
fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
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
