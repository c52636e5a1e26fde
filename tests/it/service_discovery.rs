//! The shipped scrape configs (`deploy/prometheus/`) against real Prometheus and the real
//! exporter's `/probe`: file_sd with the shipped relabelling, the kubernetes_sd relabelling fed
//! the same meta labels through file_sd (Debian's Prometheus has no Kubernetes discovery, and
//! the test has no cluster), and `promtool check config` on every file.
//!
//! What `/probe` answers is `probe_formats`'s business; these tests prove the relabelling
//! reaches it with the right `target`, `module` and `format`, and that the series land under
//! the right `instance`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::exporter::{write, Exporter};
use crate::support::pki::{Ca, Spec};
use crate::support::prom::Prometheus;
use crate::support::servers::{self, Opts, Server};

/// Whole test, Prometheus start and first scrapes included.
const TEST_LIMIT: Duration = Duration::from_secs(90);
/// How long the series may take to appear once Prometheus runs (1s scrapes).
const SETTLE: Duration = Duration::from_secs(30);
/// What the TLS servers answer to the one GET of a URL target.
const HTTP_200: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_with_the_shipped_relabelling_probes_through_the_exporter() {
    tokio::time::timeout(TEST_LIMIT, async {
        let lab = Lab::start().await;
        let p2 = lab.servers[1].addr.port();
        let adhoc = format!("127.0.0.1:{p2}");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("targets")).expect("mkdir");
        // A configured target by name, with blackbox's names; an ad-hoc one with ours.
        let groups = json!([
            {"targets": ["api"], "labels": {"format": "blackbox", "team": "web"}},
            {"targets": [adhoc], "labels": {"team": "mail"}},
        ]);
        write(&dir.path().join("targets"), "tls.yml", &groups.to_string());
        let mut config = shipped("file_sd.yml");
        let job = only_job(&mut config);
        job["file_sd_configs"] = json!([{"files": [dir.path().join("targets/*.yml")]}]);
        point_at(job, lab.exporter.addr.to_string());
        let prom = Prometheus::start_config(dir, &config.to_string()).await;

        let up = settle(&prom, "up{job=\"tls-probe-file-sd\"} == 1", 2).await;
        assert_eq!(instances(&up), [adhoc.clone(), "api".to_string()]);
        let bb = settle(&prom, "probe_success{job=\"tls-probe-file-sd\"} == 1", 1).await;
        assert_eq!(bb[0]["metric"]["instance"], "api", "{bb:?}");
        assert_eq!(bb[0]["metric"]["team"], "web", "{bb:?}");
        let expiry = settle(&prom, "probe_ssl_earliest_cert_expiry{instance=\"api\"}", 1).await;
        assert_eq!(
            expiry[0]["value"][1],
            lab.not_after.to_string(),
            "{expiry:?}"
        );
        let ours = settle(
            &prom,
            "tls_probe_success{job=\"tls-probe-file-sd\"} == 1",
            1,
        )
        .await;
        assert_eq!(ours[0]["metric"]["instance"], adhoc.as_str(), "{ours:?}");
        assert_eq!(ours[0]["metric"]["target"], adhoc.as_str(), "{ours:?}");
        assert_eq!(ours[0]["metric"]["team"], "mail", "{ours:?}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_relabelling_probes_annotated_tls_ingresses_and_service_ports() {
    tokio::time::timeout(TEST_LIMIT, async {
        let lab = Lab::start().await;
        let (p1, p2) = (lab.servers[0].addr.port(), lab.servers[1].addr.port());
        let dir = tempfile::tempdir().expect("tempdir");
        // What kubernetes_sd_configs would discover (an Ingress __address__ is its host; here
        // host:port, as the test cannot listen on 443), with decoys the relabelling must drop.
        let ingress = |address: String, scheme: &str, probe: &str| {
            json!({"targets": [address], "labels": {
                "__meta_kubernetes_namespace": "shop",
                "__meta_kubernetes_ingress_name": "web",
                "__meta_kubernetes_ingress_scheme": scheme,
                "__meta_kubernetes_ingress_path": "/healthz",
                "__meta_kubernetes_ingress_annotation_tls_exporter_io_probe": probe,
            }})
        };
        let service = |address: String, port_name: &str, probe: &str| {
            json!({"targets": [address], "labels": {
                "__meta_kubernetes_namespace": "mail",
                "__meta_kubernetes_service_name": "imap",
                "__meta_kubernetes_service_port_name": port_name,
                "__meta_kubernetes_service_annotation_tls_exporter_io_probe": probe,
            }})
        };
        write(
            dir.path(),
            "ingress.json",
            &json!([
                ingress(format!("localhost:{p1}"), "https", "true"),
                ingress("plain.example:80".into(), "http", "true"),
                ingress("other.example:443".into(), "https", ""),
            ])
            .to_string(),
        );
        write(
            dir.path(),
            "service.json",
            &json!([
                service(format!("127.0.0.1:{p2}"), "imaps-tls", "true"),
                service("127.0.0.1:9".into(), "metrics", "true"),
                service("127.0.0.1:10".into(), "https", "false"),
            ])
            .to_string(),
        );
        let mut config = shipped("kubernetes.yml");
        for (job, file) in jobs(&mut config).zip(["ingress.json", "service.json"]) {
            let sd = job
                .as_object_mut()
                .and_then(|j| j.remove("kubernetes_sd_configs"))
                .expect("a kubernetes_sd job");
            assert!(sd.is_array(), "{sd}");
            job["file_sd_configs"] = json!([{"files": [dir.path().join(file)]}]);
            point_at(job, lab.exporter.addr.to_string());
        }
        let prom = Prometheus::start_config(dir, &config.to_string()).await;

        let url = format!("https://localhost:{p1}/healthz");
        let service_target = format!("127.0.0.1:{p2}");
        let up = settle(&prom, "up == 1", 2).await;
        assert_eq!(instances(&up), [service_target.clone(), url.clone()]);
        let ok = settle(&prom, "tls_probe_success == 1", 2).await;
        let by_instance: BTreeMap<String, &Value> = ok
            .iter()
            .map(|s| {
                (
                    s["metric"]["instance"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    &s["metric"],
                )
            })
            .collect();
        let ingress = by_instance[&url];
        assert_eq!(
            (
                &ingress["job"],
                &ingress["namespace"],
                &ingress["ingress"],
                &ingress["target"]
            ),
            (
                &json!("tls-probe-ingress"),
                &json!("shop"),
                &json!("web"),
                &json!(url)
            ),
            "{ok:?}"
        );
        let service = by_instance[&service_target];
        assert_eq!(
            (&service["job"], &service["namespace"], &service["service"]),
            (&json!("tls-probe-service"), &json!("mail"), &json!("imap")),
            "{ok:?}"
        );
        // The Ingress target did the GET of its path.
        let status = settle(
            &prom,
            &format!("tls_http_status_code{{instance=\"{url}\"}}"),
            1,
        )
        .await;
        assert_eq!(status[0]["value"][1], "200", "{status:?}");
    })
    .await
    .expect("test timed out");
}

#[test]
fn shipped_scrape_configs_pass_promtool() {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in ["static.yml", "file_sd.yml", "kubernetes.yml"] {
        let mut config = shipped(file);
        // Debian's promtool is built without Kubernetes discovery: the same jobs with a static
        // target still check every relabelling (its regexes included).
        for job in jobs(&mut config) {
            if let Some(obj) = job.as_object_mut() {
                if obj.remove("kubernetes_sd_configs").is_some() {
                    obj.insert(
                        "static_configs".into(),
                        json!([{"targets": ["example.com"]}]),
                    );
                }
            }
        }
        let path = write(dir.path(), file, &config.to_string());
        let run = Command::new("promtool")
            .args(["check", "config"])
            .arg(&path)
            .output()
            .expect("run promtool (scripts/install-test-deps installs it)");
        assert!(
            run.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

#[test]
fn shipped_probe_manifests_point_at_the_exporter() {
    let path = deploy().join("kubernetes/probe.yaml");
    let text = std::fs::read_to_string(&path).expect("read probe.yaml");
    let docs: Vec<Value> = text
        .split("\n---\n")
        .map(|doc| {
            serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect();
    assert_eq!(docs.len(), 2);
    for doc in &docs {
        assert_eq!(
            (&doc["apiVersion"], &doc["kind"]),
            (&json!("monitoring.coreos.com/v1"), &json!("Probe"))
        );
        assert_eq!(
            doc["spec"]["prober"]["url"],
            "tls-exporter.monitoring.svc:19443"
        );
        assert_eq!(doc["spec"]["prober"]["path"], "/probe");
        let job = doc["spec"]["jobName"].as_str().unwrap_or_default();
        assert!(
            job.starts_with("tls-probe"),
            "{job} must stay clear of tls[-_]exporter.*"
        );
    }
}

// ---- helpers --------------------------------------------------------------------------------

/// Two TLS servers with one CA, and an exporter that trusts it, with `api` (the first server) as
/// a configured target and ad-hoc probes on.
struct Lab {
    servers: Vec<Server>,
    not_after: i64,
    exporter: Exporter,
}

impl Lab {
    async fn start() -> Lab {
        let ca = Ca::root("service discovery CA");
        let leaf = ca.leaf(&Spec::leaf("localhost"));
        let mut servers = Vec::new();
        for _ in 0..2 {
            let mut opts = Opts::new(vec![leaf.der.clone()], leaf.key_der());
            opts.http_response = Some(HTTP_200);
            servers.push(servers::rustls(opts).await);
        }
        let dir = Exporter::dir();
        let ca_file = write(dir.path(), "ca.pem", &ca.cert.pem);
        let config = format!(
            "global:\n  interval: 1h\n  ca_file: {}\ntargets:\n  - name: api\n    address: 127.0.0.1:{}\n",
            ca_file.display(),
            servers[0].addr.port()
        );
        let exporter = Exporter::start_with(dir, &config, &["--web.enable-adhoc-probes"]);
        Lab {
            servers,
            not_after: leaf.not_after,
            exporter,
        }
    }
}

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// A shipped Prometheus config under deploy/prometheus/, with 1s scrapes.
fn shipped(file: &str) -> Value {
    let path = deploy().join("prometheus").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut config: Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for job in jobs(&mut config) {
        job["scrape_interval"] = json!("1s");
        job["scrape_timeout"] = json!("1s");
    }
    config
}

fn jobs(config: &mut Value) -> impl Iterator<Item = &mut Value> {
    config["scrape_configs"]
        .as_array_mut()
        .into_iter()
        .flatten()
}

fn only_job(config: &mut Value) -> &mut Value {
    let mut jobs: Vec<&mut Value> = jobs(config).collect();
    assert_eq!(jobs.len(), 1);
    jobs.remove(0)
}

/// Replaces the exporter address the job's relabelling sets as `__address__`.
fn point_at(job: &mut Value, exporter: String) {
    let rules = job["relabel_configs"]
        .as_array_mut()
        .expect("relabel_configs");
    let rule = rules
        .iter_mut()
        .find(|r| r["target_label"] == "__address__")
        .expect("a rule that sets __address__ to the exporter");
    rule["replacement"] = json!(exporter);
}

/// The `instance` labels of a query result, sorted.
fn instances(samples: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = samples
        .iter()
        .map(|s| {
            s["metric"]["instance"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    out.sort();
    out
}

/// Polls `expr` until it has `n` samples; returns them.
async fn settle(prom: &Prometheus, expr: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let result = prom.query(expr).await.unwrap_or_else(|e| panic!("{e}"));
        if result.len() == n {
            return result;
        }
        assert!(
            start.elapsed() < SETTLE,
            "{expr}: want {n} samples after {SETTLE:?}, got {result:?}\n--- prometheus log ---\n{}",
            prom.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
