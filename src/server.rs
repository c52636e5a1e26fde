//! HTTP endpoints: `/metrics`, the status pages `/` and `/target/NAME` (rendered by `status`),
//! `/-/healthy`, `/-/ready`, `POST /-/reload`, `/probe`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, Query, State as AxumState};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::probe::Check;
use crate::reload::Reloader;
use crate::state::State;
use crate::status;

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
        .route("/target/{name}", get(target_page))
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
    match app.reloader.reload().await {
        Ok(n) => (StatusCode::OK, format!("config reloaded: {n} targets\n")).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("config reload failed; keeping the last good config:\n{e}\n"),
        )
            .into_response(),
    }
}

/// `/`: the fleet page, rendered on a blocking thread (a large fleet takes milliseconds).
async fn status_page(
    AxumState(app): AxumState<Arc<App>>,
    Query(q): Query<status::FleetQuery>,
) -> Response {
    let state = app.state.clone();
    let page =
        tokio::task::spawn_blocking(move || status::fleet_page(&state, &q, SystemTime::now()));
    match page.await {
        Ok(page) => Html(page).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("status page failed: {e}\n"),
        )
            .into_response(),
    }
}

/// `/target/NAME` (NAME percent-encoded): one target's page, 404 for an unknown name.
async fn target_page(
    AxumState(app): AxumState<Arc<App>>,
    Path(name): Path<String>,
    Query(q): Query<TargetQuery>,
) -> Response {
    match status::target_page(&app.state, &name, SystemTime::now(), q.debug.is_some()) {
        Ok(page) => Html(page).into_response(),
        Err(page) => (StatusCode::NOT_FOUND, Html(page)).into_response(),
    }
}

/// `?debug`: the page reports its own width (for the browser test).
#[derive(Debug, Deserialize)]
struct TargetQuery {
    debug: Option<String>,
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
    async fn target_page_of_an_unknown_name_is_404_with_the_name_escaped() {
        let (status, ctype, body) = call(app().await, "GET", "/target/%3Cb%3E%2Fx").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(ctype.starts_with("text/html"), "{ctype}");
        assert!(
            body.contains("No target named <span class=\"mono\">&lt;b&gt;/x</span>"),
            "{body}"
        );
    }
}
