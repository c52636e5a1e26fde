//! Serving the router under a web config: basic auth and the configured response headers
//! wrapped around every route, then the listener (`crate::listener`, plain or with the rustls
//! config built from the file). What the config says is decided elsewhere; routes, the
//! listener's bounds and when to shut down are the caller's.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::basic_auth::BasicAuth;
use super::WebConfig;
use crate::listener::{self, Limits};

/// The realm in `WWW-Authenticate`.
const REALM: &str = "Basic realm=\"tls_exporter\"";

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then stops accepting
/// and lets in-flight requests finish (the caller bounds how long it waits for this future).
///
/// With a web config, basic auth and response headers wrap every route, and with TLS each
/// connection is handshaken first (failures are logged at debug and never stop the listener).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    web: Option<Arc<WebConfig>>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(web) = web else {
        return listener::serve(listener, app, None, limits, shutdown).await;
    };
    let app = web.apply(app);
    let tls = web.tls.as_ref().map(|t| t.config.clone());
    listener::serve(listener, app, tls, limits, shutdown).await
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
