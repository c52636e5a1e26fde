//! HTTP endpoints: `/metrics`, the status page `/`, `/-/healthy`, `/-/ready`, `POST /-/reload`,
//! and `/probe` (on-demand probes in our format or blackbox_exporter's or ssl_exporter's).

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State as AxumState};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::config::{endpoint, Config, Target};
use crate::metrics::{Format, OnDemand};
use crate::probe::outcome::{AddressOutcome, Phases, ProbeOutcome};
use crate::probe::Check;
use crate::reload::Reloader;
use crate::state::{Probed, State};
use crate::verdict::{Failure, FailureReason};

/// What the handlers share.
pub struct App {
    pub state: Arc<State>,
    pub reloader: Arc<Reloader>,
    /// `/probe` may probe endpoints that are not configured.
    pub adhoc_probes: bool,
}

/// The exporter's routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(status_page))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "OK\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .route("/probe", get(probe))
        .with_state(app)
}

/// How long a scraper may stop reading before its scrape is abandoned.
const SCRAPE_STALL: std::time::Duration = std::time::Duration::from_secs(30);

/// Streams the exposition as it is rendered (on a blocking thread), so a large fleet's
/// `/metrics` is never held in memory whole.
async fn metrics(AxumState(app): AxumState<Arc<App>>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
    let state = app.state.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        // A scraper that went away or stopped reading: the rest of the render is discarded
        // rather than holding this thread (which probes' name resolution shares).
        let mut stalled = false;
        let sink = Box::new(move |chunk: String| {
            if !stalled {
                let sent = runtime.block_on(tokio::time::timeout(SCRAPE_STALL, tx.send(chunk)));
                stalled = !matches!(sent, Ok(Ok(())));
            }
        });
        crate::metrics::render_to(&state, SystemTime::now(), sink);
        crate::state::release_free_memory();
    });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        axum::body::Body::new(Chunks(rx)),
    )
        .into_response()
}

/// An HTTP body of the chunks a renderer sends.
struct Chunks(tokio::sync::mpsc::Receiver<String>);

impl http_body::Body for Chunks {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(http_body::Frame::data(axum::body::Bytes::from(c)))))
    }
}

/// `?target=T[&module=M][&format=F][&server_name=S]`.
#[derive(Debug, Deserialize)]
struct ProbeQuery {
    target: Option<String>,
    module: Option<String>,
    format: Option<String>,
    server_name: Option<String>,
}

/// On-demand probe of one endpoint, answered in `format` (ours by default). The target is a
/// configured target's name or address, or an endpoint form (`host:port`, a URL; see
/// `config::endpoint`) probed with a configured target's settings when one matches, else —
/// only with `--web.enable-adhoc-probes` — with the global settings. Bounded by the same
/// concurrency limit and timeout as scheduled probes.
async fn probe(AxumState(app): AxumState<Arc<App>>, Query(q): Query<ProbeQuery>) -> Response {
    let format = match q.format.as_deref().filter(|f| !f.is_empty()) {
        None => Format::TlsExporter,
        Some(name) => match Format::from_name(name) {
            Some(f) => f,
            None => {
                let known: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                let msg = format!("unknown format {name:?}; expected {}", known.join(", "));
                return refuse(StatusCode::BAD_REQUEST, &msg);
            }
        },
    };
    if let Some(module) = q.module.as_deref().filter(|m| !m.is_empty()) {
        // Modules (named probe settings in the config) are looked up here once the config has
        // them; until then every module name is unknown.
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("unknown module {module:?}"),
        );
    }
    let Some(text) = q.target.filter(|t| !t.is_empty()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "missing ?target= (host:port, a URL such as https://host/path, or a configured target's name)",
        );
    };
    let config = app.reloader.config();
    let target = match probe_target(&config, &text, q.server_name.as_deref(), app.adhoc_probes) {
        Ok(t) => t,
        Err((status, msg)) => return refuse(status, &msg),
    };
    // Waiting for a slot is bounded by the target's timeout as well.
    let Ok(Some(_permit)) = tokio::time::timeout(target.timeout, app.reloader.permit()).await
    else {
        let msg = format!(
            "no probe slot free within {} (concurrency limit)",
            crate::config::format_duration(target.timeout)
        );
        return refuse(StatusCode::SERVICE_UNAVAILABLE, &msg);
    };
    let body = match format {
        Format::TlsExporter => {
            // The same contract as scheduled probes: every address for `resolve: all`.
            let outcomes = crate::probe::run(&target, Check::Probe).await;
            let one = State::default();
            one.set_targets(std::slice::from_ref(&target));
            one.record(&target, Check::Probe, outcomes);
            crate::metrics::render_targets(&one, SystemTime::now())
        }
        Format::Blackbox | Format::SslExporter => on_demand(format, target).await,
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The target `/probe?target=text` means: a configured target by name or address; else the
/// endpoint form it parses as, probed with the configured target for that endpoint or as an
/// ad-hoc target. Refusals carry their status and a one-line reason.
fn probe_target(
    config: &Config,
    text: &str,
    server_name: Option<&str>,
    adhoc: bool,
) -> Result<Arc<Target>, (StatusCode, String)> {
    if let Some(t) = config.find(text, server_name) {
        return Ok(t);
    }
    let endpoint = endpoint::parse(text).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
    if text.contains("://") {
        if let Some(t) = config.find_endpoint(&endpoint, server_name) {
            return Ok(t);
        }
    }
    if !adhoc {
        return Err((
            StatusCode::FORBIDDEN,
            format!("{text:?} is not a configured target; ad-hoc probes are off (--web.enable-adhoc-probes)"),
        ));
    }
    config
        .adhoc_endpoint(text, &endpoint, server_name)
        .map(Arc::new)
        .map_err(|m| (StatusCode::BAD_REQUEST, m))
}

/// One probe in a compatible format. Like blackbox_exporter, the blackbox format probes one
/// address: the handler resolves the name (timed, as `probe_dns_lookup_time_seconds`) and
/// pins the probe to the first address in the target's preferred order. Other targets probe
/// as scheduled ones do; a `resolve: all` target reports its first address.
async fn on_demand(format: Format, target: Arc<Target>) -> String {
    let start = tokio::time::Instant::now();
    let (outcome, ip, resolve) = if format == Format::Blackbox {
        let resolved = crate::probe::resolve(&target, start + target.timeout).await;
        let resolve = start.elapsed();
        match resolved.map(|addrs| addrs.first().map(|a| a.ip())) {
            Ok(Some(ip)) => {
                let pinned = Arc::new(target.pinned(ip, target.timeout.saturating_sub(resolve)));
                (
                    first(crate::probe::run(&pinned, Check::Probe).await),
                    Some(ip),
                    resolve,
                )
            }
            Ok(None) => {
                let f = Failure::new(FailureReason::DnsError, "the name resolved to no address");
                (unresolved(f, resolve), None, resolve)
            }
            Err(f) => (unresolved(f, resolve), None, resolve),
        }
    } else {
        let outcome = first(crate::probe::run(&target, Check::Probe).await);
        let resolve = outcome.phases.resolve.unwrap_or_default();
        (outcome, None, resolve)
    };
    let probe = OnDemand {
        target: &target,
        outcome: &outcome,
        ip,
        resolve,
        duration: start.elapsed(),
    };
    crate::metrics::render_on_demand(format, &probe)
}

/// The first address's outcome (`probe::run` always returns at least one).
fn first(outcomes: Vec<AddressOutcome>) -> Arc<ProbeOutcome> {
    outcomes.into_iter().next().map_or_else(
        || {
            let f = Failure::new(FailureReason::Other, "the probe reported no outcome");
            Arc::new(ProbeOutcome::failed(f, Phases::default(), Duration::ZERO))
        },
        |a| a.outcome,
    )
}

/// The outcome of a probe whose name did not resolve.
fn unresolved(failure: Failure, took: Duration) -> Arc<ProbeOutcome> {
    let phases = Phases {
        resolve: Some(took),
        ..Phases::default()
    };
    Arc::new(ProbeOutcome::failed(failure, phases, took))
}

/// A refusal: `status` with a one-line reason.
fn refuse(status: StatusCode, reason: &str) -> Response {
    (status, format!("{reason}\n")).into_response()
}

async fn ready(AxumState(app): AxumState<Arc<App>>) -> Response {
    if app.state.stats.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "OK\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no config loaded\n").into_response()
    }
}

async fn reload(AxumState(app): AxumState<Arc<App>>) -> Response {
    match app.reloader.reload().await {
        Ok(n) => (StatusCode::OK, format!("config reloaded: {n} targets\n")).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("config reload failed; keeping the last good config:\n{e}\n"),
        )
            .into_response(),
    }
}

async fn status_page(AxumState(app): AxumState<Arc<App>>) -> Html<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut rows = String::new();
    for en in app.state.snapshot() {
        if en.latest.is_empty() {
            status_row(&mut rows, &en.target, None, now);
        }
        for p in &en.latest {
            status_row(&mut rows, &en.target, Some(p), now);
        }
    }
    Html(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>tls_exporter</title>\n<style>\
         body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         tr.ok td:nth-child(3){{color:#070}}tr.failing td:nth-child(3){{color:#b00;font-weight:bold}}</style></head>\n\
         <body><h1>tls_exporter</h1><p>{} &middot; <a href=\"/metrics\">metrics</a></p>\n\
         <table><tr><th>target</th><th>address</th><th>result</th><th>reason</th><th>protocol</th><th>cipher</th><th>certificate</th><th>leaf expiry</th><th>last probe</th></tr>\n{rows}</table></body></html>\n",
        html(&crate::metrics::version_string()),
    ))
}

/// One row of the status page: a target's latest outcome (for one address), or "pending".
fn status_row(rows: &mut String, t: &Target, probed: Option<&Probed>, now: i64) {
    let address = match probed.and_then(|p| p.ip) {
        Some(ip) => format!("{} ({ip})", t.address),
        None => t.address.clone(),
    };
    let cells: [String; 7] = match probed {
        None => [
            "pending".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            "never".into(),
        ],
        Some(p) => {
            let o = &*p.outcome;
            // The chain the endpoint's series show (the scan's for legacy-only servers).
            let leaf = p
                .chain
                .as_ref()
                .and_then(|c| c.certs.iter().find(|(d, _)| *d == 0));
            let finished = o
                .finished_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            [
                if o.success() { "ok" } else { "failing" }.to_string(),
                o.reason()
                    .map(|r| r.as_label().to_string())
                    .unwrap_or_default(),
                o.negotiated
                    .as_ref()
                    .map(|n| n.version.to_string())
                    .unwrap_or_default(),
                o.negotiated
                    .as_ref()
                    .map(|n| n.cipher.clone())
                    .unwrap_or_default(),
                leaf.map(|(_, f)| f.subject.clone()).unwrap_or_default(),
                leaf.map(|(_, f)| {
                    format!(
                        "{} ({:.1} days)",
                        utc(f.not_after),
                        (f.not_after - now) as f64 / 86_400.0
                    )
                })
                .unwrap_or_default(),
                format!("{} ({}s ago)", utc(finished), now - finished),
            ]
        }
    };
    let detail = probed
        .and_then(|p| p.outcome.failure.as_ref())
        .map(|f| f.detail.as_str())
        .unwrap_or("");
    let [result, reason, proto, cipher, subject, expiry, when] = &cells;
    let _ = writeln!(
        rows,
        "<tr class=\"{result}\"><td>{}</td><td>{}</td><td>{result}</td><td title=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        html(&t.name),
        html(&address),
        html(detail),
        html(reason),
        html(proto),
        html(cipher),
        html(subject),
        html(expiry),
        html(when),
    );
}

fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a unix time (civil-from-days, proleptic Gregorian).
fn utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn app() -> Router {
        let path = std::path::Path::new("t.yml");
        let config = crate::config::parse("targets: []\n", path).expect("valid config");
        let state = Arc::new(State::default());
        let reloader = Arc::new(Reloader::start(
            path.to_path_buf(),
            None,
            state.clone(),
            Arc::new(config),
            Default::default(),
        ));
        router(Arc::new(App {
            state,
            reloader,
            adhoc_probes: false,
        }))
    }

    async fn call(router: Router, method: &str, uri: &str) -> (StatusCode, String, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .expect("request");
        let resp = router.oneshot(req).await.expect("infallible");
        let status = resp.status();
        let ctype = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, ctype, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn health_and_readiness_answer_ok_once_a_config_is_loaded() {
        assert_eq!(
            call(app().await, "GET", "/-/healthy").await.0,
            StatusCode::OK
        );
        assert_eq!(call(app().await, "GET", "/-/ready").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn reload_only_accepts_post() {
        let (status, _, _) = call(app().await, "GET", "/-/reload").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn metrics_are_prometheus_text_with_self_metrics() {
        let (status, ctype, body) = call(app().await, "GET", "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
        assert!(body.contains("\ntls_exporter_targets 0\n"), "{body}");
        assert!(
            body.contains("\ntls_exporter_config_last_reload_successful 1\n"),
            "{body}"
        );
        assert!(
            body.contains("# TYPE tls_exporter_probes_skipped_total counter\n"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn status_page_is_html() {
        let (status, ctype, body) = call(app().await, "GET", "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.starts_with("text/html"), "{ctype}");
        assert!(body.contains("<table>"), "{body}");
    }

    #[tokio::test]
    async fn probe_refusals_are_one_line_reasons() {
        for (uri, status, says) in [
            (
                "/probe?target=a:1&format=json",
                StatusCode::BAD_REQUEST,
                "unknown format \"json\"; expected tls_exporter, blackbox, ssl_exporter",
            ),
            (
                "/probe?target=a:1&module=tcp_tls",
                StatusCode::BAD_REQUEST,
                "unknown module \"tcp_tls\"",
            ),
            (
                "/probe?target=http://a/",
                StatusCode::BAD_REQUEST,
                "unsupported scheme \"http\"",
            ),
            (
                "/probe?target=a",
                StatusCode::BAD_REQUEST,
                "expected host:port",
            ),
            ("/probe", StatusCode::BAD_REQUEST, "missing ?target="),
            (
                "/probe?target=smtps://127.0.0.1:1",
                StatusCode::FORBIDDEN,
                "ad-hoc probes are off",
            ),
        ] {
            let (got, _, body) = call(app().await, "GET", uri).await;
            assert_eq!(got, status, "{uri}: {body}");
            assert!(body.contains(says), "{uri}: {body}");
            assert_eq!(body.lines().count(), 1, "{uri}: {body}");
        }
    }

    #[tokio::test]
    async fn empty_module_and_format_mean_the_defaults() {
        let (status, _, body) = call(
            app().await,
            "GET",
            "/probe?target=127.0.0.1:1&module=&format=",
        )
        .await;
        // Past the module and format checks: refused only as an unconfigured target.
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
