//! Serving the router under a web config: plain `axum::serve` without TLS, a rustls accept loop
//! with it (bounded handshakes and header reads, graceful shutdown), and the middleware that
//! applies basic auth and the configured response headers to every route. What the config
//! says is decided elsewhere; routes and when to shut down are the caller's.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rustls::ServerConfig;

use super::basic_auth::BasicAuth;
use super::WebConfig;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers (slow-loris bound).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The realm in `WWW-Authenticate`.
const REALM: &str = "Basic realm=\"tls_exporter\"";

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and lets
/// in-flight connections finish (the caller bounds how long it waits for this future).
///
/// Without a web config this is `axum::serve`. With one, basic auth and response headers wrap
/// every route, and with TLS each connection is handshaken (bounded by a timeout; failures are
/// logged at debug and never stop the listener) and then served over HTTP/1.1.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    web: Option<Arc<WebConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(web) = web else {
        return axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    };
    let app = web.apply(app);
    match &web.tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => serve_tls(listener, app, tls.config.clone(), shutdown).await,
    }
}

impl WebConfig {
    /// The router with basic auth and the configured response headers applied to every route.
    pub(crate) fn apply(&self, app: Router) -> Router {
        let app = match &self.auth {
            Some(auth) => app.layer(middleware::from_fn_with_state(
                auth.clone(),
                require_basic_auth,
            )),
            None => app,
        };
        if self.headers.is_empty() {
            app
        } else {
            // Outermost, so that 401 answers carry the headers too.
            app.layer(middleware::map_response_with_state(
                self.headers.clone(),
                add_headers,
            ))
        }
    }
}

/// The rustls accept loop: one task per connection, each watched for graceful shutdown.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    config: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let service = hyper_util::service::TowerToHyperService::new(app);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Tells connections still handshaking to give up: they hold no request yet.
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: transient; don't spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Taken before the handshake, so that shutdown waits for this connection too.
        let watcher = graceful.watcher();
        tokio::spawn(serve_connection(
            tcp,
            peer,
            acceptor.clone(),
            service.clone(),
            watcher,
            stopping.clone(),
        ));
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    graceful.shutdown().await;
    Ok(())
}

/// One TLS connection: a bounded handshake, then HTTP/1.1 until the peer or shutdown ends it.
/// Failures are the peer's business: logged at debug, never propagated.
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    service: hyper_util::service::TowerToHyperService<Router>,
    watcher: hyper_util::server::graceful::Watcher,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};

    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(peer = %peer, error = %e, "tls handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(peer = %peer, timeout = ?HANDSHAKE_TIMEOUT, "tls handshake timed out");
                return;
            }
        },
        _ = stopping.wait_for(|s| *s) => return,
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}

/// Passes requests with a configured user's credentials; answers 401 with a `Basic` challenge
/// otherwise.
async fn require_basic_auth(
    State(auth): State<Arc<BasicAuth>>,
    req: Request,
    next: Next,
) -> Response {
    if auth.check(req.headers().get(AUTHORIZATION)).await {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(WWW_AUTHENTICATE, HeaderValue::from_static(REALM))],
        "Unauthorized\n",
    )
        .into_response()
}

/// Sets `http_server_config.headers` on every response.
async fn add_headers(
    State(headers): State<Arc<Vec<(HeaderName, HeaderValue)>>>,
    mut resp: Response,
) -> Response {
    for (name, value) in headers.iter() {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use base64::Engine as _;
    use tower::ServiceExt;

    use super::super::test_support::{dir_with_pki, ok};
    use super::*;

    async fn status_of(
        app: Router,
        auth: Option<&str>,
    ) -> (StatusCode, Option<String>, Option<String>) {
        let mut req = axum::http::Request::builder().uri("/metrics");
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a);
        }
        let resp = app
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        (
            resp.status(),
            header("www-authenticate"),
            header("x-frame-options"),
        )
    }

    #[tokio::test]
    async fn basic_auth_guards_every_route_and_caches_success() {
        let dir = dir_with_pki();
        let hash = bcrypt::hash("right", 4).expect("hash");
        let w = ok(
            &dir,
            &format!("basic_auth_users:\n  alice: '{hash}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"),
        );
        let app = w.apply(Router::new().route("/metrics", get(|| async { "ok" })));
        let basic = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        let (status, challenge, frame) = status_of(app.clone(), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some(REALM));
        assert_eq!(frame.as_deref(), Some("deny"));
        let wrong = status_of(app.clone(), Some(&basic("alice", "wrong"))).await;
        assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
        let stranger = status_of(app.clone(), Some(&basic("bob", "right"))).await;
        assert_eq!(stranger.0, StatusCode::UNAUTHORIZED);
        let right = status_of(app.clone(), Some(&basic("alice", "right"))).await;
        assert_eq!(right.0, StatusCode::OK);
        let auth = w.auth.as_ref().expect("auth");
        assert_eq!(auth.verified.lock().expect("lock").len(), 1);
        let again = status_of(app, Some(&basic("alice", "right"))).await;
        assert_eq!(again.0, StatusCode::OK);
    }
}
