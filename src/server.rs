//! HTTP endpoints: `/metrics`, the status pages `/` and `/target/NAME` (rendered by `status`),
//! `/-/healthy`, `/-/ready`, `POST /-/reload`, and `/probe` (on-demand probes in our format or
//! blackbox_exporter's or ssl_exporter's).

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State as AxumState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use crate::config::{endpoint, AdhocRules, Config, Module, ProbeKind, Target};
use crate::metrics::{Format, OnDemand};
use crate::probe::outcome::{AddressOutcome, Phases, ProbeOutcome};
use crate::probe::Check;
use crate::reload::Reloader;
use crate::scrape::ScrapeSlots;
use crate::state::State;
use crate::status;
use crate::verdict::{Failure, FailureReason};

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
        .route("/target/{name}", get(target_page))
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

/// `?target=T[&module=M][&format=F][&server_name=S]`.
#[derive(Debug, Deserialize)]
struct ProbeQuery {
    target: Option<String>,
    module: Option<String>,
    format: Option<String>,
    server_name: Option<String>,
}

/// On-demand probe of one endpoint, answered in `format` (else the module's `output:`, else
/// ours). The target is a configured target's name or address, or an endpoint form
/// (`host:port`, a URL; see `config::endpoint`) probed with a configured target's settings when
/// one matches, else — only with `--web.enable-adhoc-probes`, and within the config's
/// `adhoc_probes:` rules — as an ad-hoc target. `&module=M` probes with M's settings over the
/// global ones (a configured target keeps only its name, labels, address, server name,
/// STARTTLS protocol and HTTP path). Bounded by the same concurrency limit and timeout as
/// scheduled probes.
async fn probe(AxumState(app): AxumState<Arc<App>>, Query(q): Query<ProbeQuery>) -> Response {
    let format = match format_param(q.format.as_deref()) {
        Ok(f) => f,
        Err(msg) => return refuse(StatusCode::BAD_REQUEST, &msg),
    };
    let config = app.reloader.config();
    let module = match module_param(&config, q.module.as_deref()) {
        Ok(m) => m,
        Err(msg) => return refuse(StatusCode::BAD_REQUEST, &msg),
    };
    let Some(text) = q.target.filter(|t| !t.is_empty()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "missing ?target= (host:port, a URL such as https://host/path, or a configured target's name)",
        );
    };
    let asked = Asked {
        text: &text,
        server_name: q.server_name.as_deref(),
        module: module.as_deref(),
    };
    let (target, adhoc) = match probe_target(&config, &asked, app.adhoc_probes) {
        Ok(found) => found,
        Err((status, msg)) => return refuse(status, &msg),
    };
    let format = format
        .or_else(|| target.output.and_then(|o| Format::from_name(o.as_str())))
        .unwrap_or(Format::TlsExporter);
    // Waiting for a slot is bounded by the target's timeout as well.
    let Ok(Some(_permit)) = tokio::time::timeout(target.timeout, app.reloader.permit()).await
    else {
        let msg = format!(
            "no probe slot free within {} (concurrency limit)",
            crate::config::format_duration(target.timeout)
        );
        return refuse(StatusCode::SERVICE_UNAVAILABLE, &msg);
    };
    let start = tokio::time::Instant::now();
    let rules = config
        .adhoc_rules()
        .filter(|r| adhoc && r.checks_addresses());
    let resolved = match rules {
        None => None,
        Some(rules) => match checked_addresses(rules, &target, start).await {
            Ok(resolved) => Some(resolved),
            Err(msg) => return refuse(StatusCode::FORBIDDEN, &msg),
        },
    };
    let body = match format {
        Format::TlsExporter => {
            // The same contract as scheduled probes: every address for `resolve: all`.
            let outcomes = match resolved {
                None => crate::probe::run(&target, Check::Probe).await,
                Some(resolved) => run_resolved(&target, resolved).await,
            };
            let one = State::default();
            one.set_targets(std::slice::from_ref(&target));
            one.record(&target, Check::Probe, outcomes);
            crate::metrics::render_targets(&one, SystemTime::now())
        }
        Format::Blackbox | Format::SslExporter => on_demand(format, target, resolved, start).await,
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

/// `&format=`: `None` when absent or empty.
fn format_param(name: Option<&str>) -> Result<Option<Format>, String> {
    let Some(name) = name.filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    Format::from_name(name).map(Some).ok_or_else(|| {
        let known: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        format!("unknown format {name:?}; expected {}", known.join(", "))
    })
}

/// `&module=`, looked up in the current config: `None` when absent or empty.
fn module_param(config: &Config, name: Option<&str>) -> Result<Option<Arc<Module>>, String> {
    let Some(name) = name.filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    config.module(name).map(Some).ok_or_else(|| {
        let names = config.module_names();
        if names.is_empty() {
            format!("unknown module {name:?} (the config defines no modules)")
        } else {
            format!(
                "unknown module {name:?}; expected one of {}",
                names.join(", ")
            )
        }
    })
}

/// What `/probe` was asked for: the target text, and the server name and module given.
struct Asked<'a> {
    text: &'a str,
    server_name: Option<&'a str>,
    module: Option<&'a Module>,
}

/// The target `/probe?target=text` means, and whether it is ad-hoc: a configured target by
/// name or address; else the endpoint form it parses as, probed with the configured target for
/// that endpoint or as an ad-hoc target (within the `adhoc_probes:` rules). With a module, the
/// module's settings apply. Refusals carry their status and a one-line reason.
fn probe_target(
    config: &Config,
    asked: &Asked<'_>,
    adhoc: bool,
) -> Result<(Arc<Target>, bool), (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let configured = |t: Arc<Target>| match asked.module {
        None => Ok((t, false)),
        Some(m) => m
            .apply_to(&t, asked.server_name)
            .map(|t| (Arc::new(t), false))
            .map_err(bad),
    };
    let text = asked.text;
    if let Some(t) = config.find(text, asked.server_name) {
        return configured(t);
    }
    let endpoint = endpoint::parse(text).map_err(bad)?;
    if text.contains("://") {
        if let Some(t) = config.find_endpoint(&endpoint, asked.server_name) {
            return configured(t);
        }
    }
    if !adhoc {
        return Err((
            StatusCode::FORBIDDEN,
            format!("{text:?} is not a configured target; ad-hoc probes are off (--web.enable-adhoc-probes)"),
        ));
    }
    if let Some(rules) = config.adhoc_rules() {
        rules
            .check(
                asked.module.map(|m| m.name.as_str()),
                &endpoint.host,
                endpoint.port,
            )
            .map_err(|m| (StatusCode::FORBIDDEN, m))?;
    }
    let target = match asked.module {
        None => config.adhoc_endpoint(text, &endpoint, asked.server_name),
        Some(m) => m.adhoc(text, &endpoint, asked.server_name),
    }
    .map_err(bad)?;
    // The redirect check follows redirects to hosts the rules never saw.
    if config.adhoc_rules().is_some() && target.kind == ProbeKind::HttpRedirect {
        return Err((
            StatusCode::FORBIDDEN,
            "ad-hoc probes with probe: http_redirect are not allowed when adhoc_probes: restricts them (redirects may lead to any host)".to_string(),
        ));
    }
    let mut target = target;
    if config.adhoc_rules().is_some() {
        // AIA and revocation fetches go to URLs the server's certificate names, hosts the
        // rules never saw: off for ad-hoc probes the rules restrict.
        target.aia_fetch = false;
        target.revocation.mode = crate::revocation::Mode::Off;
    }
    Ok((Arc::new(target), true))
}

/// An ad-hoc target's name resolved by the handler (how long it took, and the addresses in the
/// target's preferred order, or why there are none), so that the probe connects only to
/// addresses the `adhoc_probes.cidrs` rule allowed.
type Resolved = (Result<Vec<IpAddr>, Failure>, Duration);

/// Resolves `target`'s host within its timeout (counted from `start`) and checks every address
/// against `rules`; the refusal names the first address not allowed.
async fn checked_addresses(
    rules: &AdhocRules,
    target: &Target,
    start: tokio::time::Instant,
) -> Result<Resolved, String> {
    let resolved = crate::probe::resolve(target, start + target.timeout).await;
    let took = start.elapsed();
    let ips: Vec<IpAddr> = match resolved {
        Ok(addrs) => addrs.iter().map(|a| a.ip()).collect(),
        Err(f) => return Ok((Err(f), took)),
    };
    for ip in &ips {
        rules.check_address(&target.host, *ip)?;
    }
    match ips.is_empty() {
        true => {
            let f = Failure::new(FailureReason::DnsError, "the name resolved to no address");
            Ok((Err(f), took))
        }
        false => Ok((Ok(ips), took)),
    }
}

/// Probes the checked addresses only: each (with an `ip` label) for `resolve: all`, else the
/// first.
async fn run_resolved(target: &Arc<Target>, resolved: Resolved) -> Vec<AddressOutcome> {
    let (ips, took) = match resolved {
        (Ok(ips), took) => (ips, took),
        (Err(f), took) => {
            return vec![AddressOutcome {
                ip: None,
                outcome: unresolved(f, took),
            }]
        }
    };
    let left = target.timeout.saturating_sub(took);
    if !target.resolve_all {
        let first_ip = ips.into_iter().take(1);
        let mut all = Vec::new();
        for ip in first_ip {
            let pinned = Arc::new(target.pinned(ip, left));
            let outcome = first(crate::probe::run(&pinned, Check::Probe).await);
            all.push(AddressOutcome { ip: None, outcome });
        }
        return all;
    }
    let mut set = tokio::task::JoinSet::new();
    for ip in ips {
        let pinned = Arc::new(target.pinned(ip, left));
        set.spawn(async move {
            let outcome = first(crate::probe::run(&pinned, Check::Probe).await);
            AddressOutcome {
                ip: Some(ip),
                outcome,
            }
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(one) = joined {
            all.push(one);
        }
    }
    all.sort_by_key(|a| a.ip);
    all
}

/// One probe in a compatible format. Like blackbox_exporter, the blackbox format probes one
/// address: the handler resolves the name (timed, as `probe_dns_lookup_time_seconds`) and
/// pins the probe to the first address in the target's preferred order. Other targets probe
/// as scheduled ones do; a `resolve: all` target reports its first address. `resolved`: the
/// name was resolved (and its addresses checked) already; only those addresses are probed.
/// `start`: when the probe (the handler's resolution included) began.
async fn on_demand(
    format: Format,
    target: Arc<Target>,
    resolved: Option<Resolved>,
    start: tokio::time::Instant,
) -> String {
    let resolved = match (resolved, format) {
        (Some(r), _) => Some(r),
        (None, Format::Blackbox) => {
            let r = crate::probe::resolve(&target, start + target.timeout).await;
            let ips = r.map(|addrs| addrs.iter().map(|a| a.ip()).collect());
            Some((ips, start.elapsed()))
        }
        (None, _) => None,
    };
    let (outcome, ip, resolve) = match resolved {
        Some((Ok(ips), resolve)) => match ips.first() {
            Some(&ip) => {
                let pinned = Arc::new(target.pinned(ip, target.timeout.saturating_sub(resolve)));
                (
                    first(crate::probe::run(&pinned, Check::Probe).await),
                    Some(ip),
                    resolve,
                )
            }
            None => {
                let f = Failure::new(FailureReason::DnsError, "the name resolved to no address");
                (unresolved(f, resolve), None, resolve)
            }
        },
        Some((Err(f), resolve)) => (unresolved(f, resolve), None, resolve),
        None => {
            let outcome = first(crate::probe::run(&target, Check::Probe).await);
            let resolve = outcome.phases.resolve.unwrap_or_default();
            (outcome, None, resolve)
        }
    };
    // Only the blackbox format reports the address it probed.
    let ip = ip.filter(|_| format == Format::Blackbox);
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
        app_with(false, 4).await
    }

    async fn app_with(lifecycle: bool, scrapes: usize) -> Router {
        app_from("targets: []\n", false, lifecycle, scrapes).await
    }

    async fn app_from(yaml: &str, adhoc_probes: bool, lifecycle: bool, scrapes: usize) -> Router {
        let path = std::path::Path::new("t.yml");
        let config = crate::config::parse(yaml, path).expect("valid config");
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
            adhoc_probes,
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

    #[tokio::test]
    async fn unknown_module_names_the_modules_there_are() {
        let app = app_from("modules:\n  web: {}\n  mail: {}\n", false, false, 4).await;
        let (status, _, body) = call(app, "GET", "/probe?target=a:1&module=wbe").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body, "unknown module \"wbe\"; expected one of mail, web\n");
    }

    #[tokio::test]
    async fn adhoc_rules_refuse_with_403_and_one_line_before_any_connection() {
        // No connection is made for any of these: the rules refuse first (the CIDR rule after
        // "resolving" an IP literal).
        let yaml = "modules:\n  web: {}\n  mail: {}\n  redirect: {probe: http_redirect}\nadhoc_probes:\n  modules: [web, redirect]\n  hosts: [\"*.example.com\", \"127.0.0.*\"]\n  ports: [443, 1]\n  cidrs: [203.0.113.0/24]\n";
        for (uri, says) in [
            ("/probe?target=a.example.com:443", "must name a module"),
            (
                "/probe?target=a.example.com:443&module=mail",
                "module \"mail\" is not allowed",
            ),
            (
                "/probe?target=a.example.com:22&module=web",
                "port 22 is not allowed",
            ),
            (
                "/probe?target=https://intranet.local/&module=web",
                "host \"intranet.local\" is not allowed",
            ),
            (
                "/probe?target=a.example.com:443&module=redirect",
                "probe: http_redirect are not allowed",
            ),
            (
                "/probe?target=127.0.0.1:1&module=web",
                "127.0.0.1, which is not allowed for ad-hoc probes (it is in none of adhoc_probes.cidrs)",
            ),
        ] {
            let (status, _, body) = call(app_from(yaml, true, false, 4).await, "GET", uri).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {body}");
            assert!(body.contains(says), "{uri}: {body}");
            assert_eq!(body.lines().count(), 1, "{uri}: {body}");
        }
    }
}
