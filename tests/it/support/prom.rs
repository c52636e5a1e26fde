//! Debian's Prometheus and Alertmanager on free loopback ports, a webhook receiver inside the
//! test, and a small HTTP client for their APIs. Alertmanager runs the shipped
//! `examples/compose/alertmanager.yml` (routes, grouping, inhibit rules) pointed at the webhook.
//! Installing the programs is left to `scripts/install-test-deps`; what to assert about alerts
//! and queries is left to the tests.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::exporter::{free_port, write};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
/// Upper bound for one HTTP exchange with Prometheus, Alertmanager or the webhook's peers.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request body the webhook accepts.
const MAX_BODY: usize = 1 << 20;

/// A running Prometheus scraping exporters every second; killed when dropped.
pub struct Prometheus(Daemon);

impl Prometheus {
    /// Starts Prometheus with `rules` as its only rule file, a scrape job `tls_exporter` for
    /// `exporter` and, if given, `alertmanager` as where alerts go; waits until it is ready.
    pub async fn start(
        exporter: SocketAddr,
        rules: &str,
        alertmanager: Option<SocketAddr>,
    ) -> Prometheus {
        Prometheus::start_jobs(&[("tls_exporter", exporter)], rules, alertmanager).await
    }

    /// Like `start`, with one scrape job per `(job name, address)`; none at all for an empty
    /// list.
    pub async fn start_jobs(
        jobs: &[(&str, SocketAddr)],
        rules: &str,
        alertmanager: Option<SocketAddr>,
    ) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "rules.yml", rules);
        let alerting = alertmanager.map_or(String::new(), |am| {
            format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{am}']\n"
            )
        });
        let scrape: String = if jobs.is_empty() {
            "scrape_configs: []\n".to_string()
        } else {
            std::iter::once("scrape_configs:\n".to_string())
                .chain(jobs.iter().map(|(job, addr)| {
                    format!(
                        "  - job_name: '{job}'\n    static_configs:\n      - targets: ['{addr}']\n"
                    )
                }))
                .collect()
        };
        let config = write(
            dir.path(),
            "prometheus.yml",
            &format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files: [rules.yml]\n{alerting}{scrape}"
            ),
        );
        let addr = loopback();
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={addr}"),
            "--log.level=warn".to_string(),
        ];
        Prometheus(Daemon::spawn("prometheus", PROMETHEUS, dir, addr, args).await)
    }

    /// Starts Prometheus on `config` (the text of its prometheus.yml), written into `dir`
    /// beside whatever the caller put there (target files, rule files); waits until it is ready.
    pub async fn start_config(dir: tempfile::TempDir, config: &str) -> Prometheus {
        let config = write(dir.path(), "prometheus.yml", config);
        let addr = loopback();
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={addr}"),
            "--log.level=warn".to_string(),
        ];
        Prometheus(Daemon::spawn("prometheus", PROMETHEUS, dir, addr, args).await)
    }

    pub fn log(&self) -> String {
        self.0.log()
    }

    /// The result of an instant query: the samples of a vector, or the one value of a scalar.
    /// Errors carry Prometheus's error type and message.
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self
            .0
            .api(&format!("/api/v1/query?query={}", urlencode(expr)))
            .await?;
        match &data["result"] {
            Value::Array(samples) => Ok(samples.clone()),
            Value::Null => Err(format!("no result in {data}")),
            scalar => Ok(vec![scalar.clone()]),
        }
    }

    /// Every active alert (pending or firing) as `/api/v1/alerts` reports it.
    pub async fn alerts(&self) -> Result<Vec<Value>, String> {
        let data = self.0.api("/api/v1/alerts").await?;
        match &data["alerts"] {
            Value::Array(alerts) => Ok(alerts.clone()),
            _ => Err(format!("no alerts array in {data}")),
        }
    }
}

/// A running Alertmanager (no clustering); killed when dropped.
pub struct Alertmanager(Daemon);

/// Group timings of the shipped Alertmanager config, cut for tests.
const GROUP_TIMING: &str = "1s";

impl Alertmanager {
    /// Starts Alertmanager with the shipped `examples/compose/alertmanager.yml`: its routes,
    /// grouping and inhibit rules as they are, every receiver's webhook URL replaced by
    /// `http://{webhook}/hook` and every `group_wait` and `group_interval` cut to 1s.
    pub async fn shipped(webhook: SocketAddr) -> Alertmanager {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/compose/alertmanager.yml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mut config: Value = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        shorten_groups(&mut config["route"]);
        let receivers = config["receivers"].as_array_mut().into_iter().flatten();
        let hooks =
            receivers.flat_map(|r| r["webhook_configs"].as_array_mut().into_iter().flatten());
        let mut pointed = 0;
        for hook in hooks {
            hook["url"] = Value::String(format!("http://{webhook}/hook"));
            pointed += 1;
        }
        assert!(pointed > 0, "{} has no webhook receiver", path.display());
        // JSON is YAML: Alertmanager reads it as it is.
        Alertmanager::start_with(&serde_json::to_string_pretty(&config).expect("json")).await
    }

    /// Starts Alertmanager with `config` as its configuration file.
    pub async fn start_with(config: &str) -> Alertmanager {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write(dir.path(), "alertmanager.yml", config);
        let addr = loopback();
        let args = vec![
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={addr}"),
            "--cluster.listen-address=".to_string(),
            "--log.level=warn".to_string(),
        ];
        Alertmanager(Daemon::spawn("alertmanager", ALERTMANAGER, dir, addr, args).await)
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    pub fn log(&self) -> String {
        self.0.log()
    }

    /// Every alert Alertmanager holds (`/api/v2/alerts`: active, silenced and inhibited), with
    /// `status.state` and `status.inhibitedBy`.
    pub async fn alerts(&self) -> Result<Vec<Value>, String> {
        match self.0.get_json("/api/v2/alerts").await? {
            Value::Array(alerts) => Ok(alerts),
            other => Err(format!(
                "alertmanager /api/v2/alerts: not an array: {other}"
            )),
        }
    }
}

/// Cuts `group_wait` and `group_interval` of a route and its child routes to `GROUP_TIMING`.
fn shorten_groups(route: &mut Value) {
    for key in ["group_wait", "group_interval"] {
        if route.get(key).is_some() {
            route[key] = Value::String(GROUP_TIMING.to_string());
        }
    }
    for child in route["routes"].as_array_mut().into_iter().flatten() {
        shorten_groups(child);
    }
}

/// An HTTP server on 127.0.0.1:0 that answers every request 200 and keeps the bodies of the
/// POSTs it received; stops when dropped.
pub struct Webhook {
    pub addr: SocketAddr,
    bodies: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Webhook {
    pub async fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let sink = bodies.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let sink = sink.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(Some(body))) =
                        tokio::time::timeout(HTTP_TIMEOUT, answer_post(tcp)).await
                    {
                        sink.lock().unwrap_or_else(|e| e.into_inner()).push(body);
                    }
                });
            }
        });
        Webhook { addr, bodies, task }
    }

    /// Bodies of the POSTs received so far, oldest first.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every Alertmanager notification received so far, oldest first (bodies that are not
    /// JSON notifications are skipped).
    pub fn notifications(&self) -> Vec<Value> {
        self.bodies()
            .iter()
            .filter_map(|b| serde_json::from_str::<Value>(b).ok())
            .filter(|n| n.get("alerts").is_some_and(Value::is_array))
            .collect()
    }

    /// Every alert of every notification received so far.
    pub fn alerts(&self) -> Vec<Value> {
        self.notifications()
            .iter()
            .filter_map(|n| n["alerts"].as_array().cloned())
            .flatten()
            .collect()
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for query parameters.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET path` over HTTP/1.0 (so the body is neither chunked nor kept alive), bounded by
/// `HTTP_TIMEOUT`; returns the status and body.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .map_err(|_| std::io::Error::other(format!("GET {path} from {addr} timed out")))??;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {head}")))?;
    Ok((status, body.to_string()))
}

/// A child process with its own temp dir and log file, killed when dropped.
struct Daemon {
    addr: SocketAddr,
    name: &'static str,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Spawns `program` with `args`, logging to `dir/log`, and waits until `/-/ready` answers
    /// 200 on `addr`.
    async fn spawn(
        name: &'static str,
        program: &str,
        dir: tempfile::TempDir,
        addr: SocketAddr,
        args: Vec<String>,
    ) -> Daemon {
        assert!(
            std::path::Path::new(program).exists(),
            "{program} is missing: run scripts/install-test-deps"
        );
        let log = std::fs::File::create(dir.path().join("log")).expect("log file");
        let child = Command::new(program)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let mut daemon = Daemon {
            addr,
            name,
            dir,
            child,
        };
        let start = Instant::now();
        loop {
            if let Ok((200, _)) = get(addr, "/-/ready").await {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("{name} exited with {status}:\n{}", daemon.log());
            }
            assert!(
                start.elapsed() < super::WAIT,
                "{name} not ready on {addr} after {:?}:\n{}",
                super::WAIT,
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// `GET path`: the JSON body of a 200 answer.
    async fn get_json(&self, path: &str) -> Result<Value, String> {
        let (status, body) = get(self.addr, path)
            .await
            .map_err(|e| format!("{} {path}: {e}", self.name))?;
        if status != 200 {
            return Err(format!("{} {path}: HTTP {status}: {body}", self.name));
        }
        serde_json::from_str(&body).map_err(|e| format!("{} {path}: {e}: {body}", self.name))
    }

    /// `GET path` on a Prometheus-style JSON API; the `data` member of a `success` answer.
    async fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = get(self.addr, path)
            .await
            .map_err(|e| format!("{} {path}: {e}", self.name))?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| format!("{} {path}: HTTP {status}, {e}: {body}", self.name))?;
        if v["status"] != "success" {
            return Err(format!(
                "{} {path}: HTTP {status}, {}: {}",
                self.name, v["errorType"], v["error"]
            ));
        }
        Ok(v["data"].clone())
    }
}

/// A loopback address with a port that was free a moment ago.
fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Reads one request, answers 200 and closes; the body if it was a POST.
async fn answer_post(mut tcp: TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let body_start = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tcp.read(&mut chunk).await?;
        if n == 0 || buf.len() > MAX_BODY {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..body_start]).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0)
        .min(MAX_BODY);
    while buf.len() < body_start + length {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await?;
    let end = buf.len().min(body_start + length);
    let body = String::from_utf8_lossy(buf.get(body_start..end).unwrap_or_default()).into_owned();
    Ok(head.starts_with("POST ").then_some(body))
}
