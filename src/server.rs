//! HTTP endpoints: `/metrics`, the status page `/`, `/-/healthy`, `/-/ready`, `POST /-/reload`.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State as AxumState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::config::Target;
use crate::probe::Check;
use crate::reload::Reloader;
use crate::scrape::ScrapeSlots;
use crate::state::{Probed, State};

/// What the handlers share.
pub struct App {
    pub state: Arc<State>,
    pub reloader: Arc<Reloader>,
    /// `/probe` may probe endpoints that are not configured.
    pub adhoc_probes: bool,
    /// `POST /-/reload` is enabled (`--web.enable-lifecycle`).
    pub lifecycle: bool,
    /// How many `/metrics` renders may run at once.
    pub scrapes: ScrapeSlots,
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

/// Streams the exposition as it is rendered (see `scrape`), so a large fleet's `/metrics` is
/// never held in memory whole and a slow scraper holds no thread.
async fn metrics(AxumState(app): AxumState<Arc<App>>, headers: HeaderMap) -> Response {
    crate::scrape::respond(&app.scrapes, app.state.clone(), &headers).await
}

/// `?target=host:port[&server_name=name]`.
#[derive(Debug, Deserialize)]
struct ProbeQuery {
    target: Option<String>,
    server_name: Option<String>,
}

/// On-demand probe of one endpoint: the per-target families for it alone. Configured targets
/// are probed with their settings; others only with `--web.enable-adhoc-probes`, with the
/// global settings. Bounded by the same concurrency limit and timeout as scheduled probes.
async fn probe(AxumState(app): AxumState<Arc<App>>, Query(q): Query<ProbeQuery>) -> Response {
    let Some(address) = q.target.filter(|t| !t.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "missing ?target=host:port\n").into_response();
    };
    let config = app.reloader.config();
    let target = match config.find(&address, q.server_name.as_deref()) {
        Some(t) => t,
        None if app.adhoc_probes => match config.adhoc_target(&address, q.server_name.as_deref()) {
            Ok(t) => Arc::new(t),
            Err(m) => return (StatusCode::BAD_REQUEST, format!("{m}\n")).into_response(),
        },
        None => {
            let msg = format!(
                "{address} is not a configured target; ad-hoc probes are off (--web.enable-adhoc-probes)\n"
            );
            return (StatusCode::FORBIDDEN, msg).into_response();
        }
    };
    // Waiting for a slot is bounded by the target's timeout as well.
    let Ok(Some(_permit)) = tokio::time::timeout(target.timeout, app.reloader.permit()).await
    else {
        let msg = format!(
            "no probe slot free within {:?} (concurrency limit)\n",
            target.timeout
        );
        return (StatusCode::SERVICE_UNAVAILABLE, msg).into_response();
    };
    // The same contract as scheduled probes: every address for `resolve: all`.
    let outcomes = crate::probe::run(&target, Check::Probe).await;
    let one = State::default();
    one.set_targets(std::slice::from_ref(&target));
    one.record(&target, Check::Probe, outcomes);
    let body = crate::metrics::render_targets(&one, SystemTime::now());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn ready(AxumState(app): AxumState<Arc<App>>) -> Response {
    if app.state.stats.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "OK\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no config loaded\n").into_response()
    }
}

async fn reload(AxumState(app): AxumState<Arc<App>>) -> Response {
    if !app.lifecycle {
        let msg = "POST /-/reload is disabled; start tls_exporter with --web.enable-lifecycle \
                   to enable it (SIGHUP always reloads)\n";
        return (StatusCode::FORBIDDEN, msg).into_response();
    }
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
        app_with(false, 4).await
    }

    async fn app_with(lifecycle: bool, scrapes: usize) -> Router {
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
            lifecycle,
            scrapes: ScrapeSlots::new(scrapes),
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
    async fn metrics_are_gzipped_when_the_scraper_accepts_it() {
        use std::io::Read as _;
        let req = Request::builder()
            .uri("/metrics")
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(Body::empty())
            .expect("request");
        let resp = app().await.oneshot(req).await.expect("infallible");
        assert_eq!(resp.status(), StatusCode::OK);
        let h = |n: header::HeaderName| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(h(header::CONTENT_ENCODING).as_deref(), Some("gzip"));
        assert_eq!(h(header::VARY).as_deref(), Some("Accept-Encoding"));
        let gz = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        let mut body = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut body)
            .expect("valid gzip");
        assert!(body.contains("\ntls_exporter_targets 0\n"), "{body}");
    }

    #[tokio::test]
    async fn metrics_answer_503_while_every_scrape_slot_is_taken() {
        let router = app_with(false, 1).await;
        let req = || {
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .expect("request")
        };
        // Its body, unread, holds the only slot.
        let first = router.clone().oneshot(req()).await.expect("infallible");
        assert_eq!(first.status(), StatusCode::OK);
        let second = router.clone().oneshot(req()).await.expect("infallible");
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        drop(first);
        let third = router.oneshot(req()).await.expect("infallible");
        assert_eq!(third.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn reload_is_forbidden_without_the_lifecycle_flag() {
        let (status, _, body) = call(app().await, "POST", "/-/reload").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("--web.enable-lifecycle"), "{body}");
        let (status, _, body) = call(app_with(true, 4).await, "POST", "/-/reload").await;
        assert_ne!(status, StatusCode::FORBIDDEN, "{body}");
    }

    #[tokio::test]
    async fn status_page_is_html() {
        let (status, ctype, body) = call(app().await, "GET", "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.starts_with("text/html"), "{ctype}");
        assert!(body.contains("<table>"), "{body}");
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
