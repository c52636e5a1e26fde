//! One HTTP connection: the TLS handshake when the listener has TLS, then HTTP/1.1 under a
//! deadline that follows what the connection is doing:
//!
//! - reading a request head: `read_header_timeout` from its first byte (from accept for the
//!   first request, so the TLS handshake counts too): slow-loris clients are dropped;
//! - running a handler: no deadline here (handlers bound their own work, `/probe` by the
//!   target's timeout; `/metrics` answers at once and streams);
//! - sending a response: `write_timeout` from the handler's answer until its last byte is
//!   flushed: a scraper that stops reading is dropped, and with it the chunks rendered for it;
//! - idle between requests: `idle_timeout`.
//!
//! A connection past its deadline is dropped without an answer, and so is an idle one the
//! accept loop evicts to make room. Shutdown lets a request in flight finish and closes idle
//! connections. What is served is the router's; how many
//! connections are accepted is `mod.rs`'s.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::Limits;

/// Serves one accepted connection until the peer, a deadline, eviction or shutdown ends it.
/// `_slot` is its place among `--web.max-connections`, given back when it ends.
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    service: TowerToHyperService<Router>,
    activity: Arc<Activity>,
    watcher: Watcher,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let Some(acceptor) = tls else {
        return serve_http(tcp, peer, service, activity, watcher).await;
    };
    let stream = tokio::select! {
        done = acceptor.accept(tcp) => match done {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "tls handshake failed");
                return;
            }
        },
        closing = activity.expired() => {
            tracing::debug!(peer = %peer, "closing a connection before its tls handshake ended: {}", closing.describe(&activity.limits));
            return;
        }
        _ = stopping.wait_for(|s| *s) => return,
    };
    serve_http(stream, peer, service, activity, watcher).await;
}

/// HTTP/1.1 on an established stream, dropped when `activity`'s deadline passes.
async fn serve_http<S>(
    stream: S,
    peer: SocketAddr,
    service: TowerToHyperService<Router>,
    activity: Arc<Activity>,
    watcher: Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let service = Service {
        inner: service,
        activity: activity.clone(),
    };
    // hyper's own header timer would also run while a keep-alive connection is idle; ours
    // tells the two apart.
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    let conn = watcher.watch(conn);
    tokio::select! {
        done = conn => if let Err(e) = done {
            tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
        },
        closing = activity.expired() => {
            tracing::debug!(peer = %peer, "closing a connection: {}", closing.describe(&activity.limits));
        }
    }
}

/// What a connection is doing, each with its own deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head (or, before the first, the TLS handshake).
    Head,
    /// A handler is working on a request.
    Handling,
    /// The response is being sent.
    Sending,
    /// Between requests.
    Idle,
}

/// Why we close a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// The deadline of this phase passed.
    Overdue(Phase),
    /// Idle, and its slot was needed for a new connection.
    Evicted,
}

impl Closing {
    /// What happened, in words: "no complete request head within 10s".
    fn describe(self, limits: &Limits) -> String {
        match self {
            Closing::Overdue(Phase::Head) => format!(
                "no complete request head within {}",
                secs(limits.read_header_timeout)
            ),
            Closing::Overdue(Phase::Sending) => format!(
                "the client did not take the response within {}",
                secs(limits.write_timeout)
            ),
            Closing::Overdue(Phase::Idle) => {
                format!("idle for longer than {}", secs(limits.idle_timeout))
            }
            // Never: handlers have no deadline here.
            Closing::Overdue(Phase::Handling) => "the handler did not answer".to_string(),
            Closing::Evicted => {
                "idle, and its slot among --web.max-connections went to a new connection"
                    .to_string()
            }
        }
    }
}

/// `10s`, `1.5s`.
fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// The phase a connection is in and since when; the IO, service and body wrappers move it on,
/// the accept loop may evict it while idle.
pub(super) struct Activity {
    limits: Arc<Limits>,
    now: Mutex<Now>,
    changed: Notify,
}

struct Now {
    phase: Phase,
    since: Instant,
    /// While sending: the body has ended (its last bytes may still sit in buffers).
    body_done: bool,
    /// Evicted while idle: to be closed now.
    evicted: bool,
}

impl Activity {
    /// A connection accepted now, waiting for its first request head.
    pub(super) fn new(limits: Arc<Limits>) -> Self {
        Activity {
            limits,
            now: Mutex::new(Now {
                phase: Phase::Head,
                since: Instant::now(),
                body_done: false,
                evicted: false,
            }),
            changed: Notify::new(),
        }
    }

    /// Since when the connection has been idle between requests, if it is.
    pub(super) fn idle_since(&self) -> Option<Instant> {
        let now = self.lock();
        (now.phase == Phase::Idle && !now.evicted).then_some(now.since)
    }

    /// Closes the connection if it is (still) idle; true when it was.
    pub(super) fn evict_if_idle(&self) -> bool {
        let mut now = self.lock();
        if now.phase != Phase::Idle || now.evicted {
            return false;
        }
        now.evicted = true;
        drop(now);
        self.changed.notify_one();
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Now> {
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enter(&self, phase: Phase) {
        let mut now = self.lock();
        *now = Now {
            phase,
            since: Instant::now(),
            body_done: false,
            evicted: now.evicted,
        };
        drop(now);
        self.changed.notify_one();
    }

    /// Bytes arrived: an idle connection starts reading a request head.
    fn bytes_read(&self) {
        if self.lock().phase == Phase::Idle {
            self.enter(Phase::Head);
        }
    }

    /// The response body has ended (or was dropped unsent); the write deadline still runs
    /// until its bytes are flushed.
    fn body_done(&self) {
        let mut now = self.lock();
        if now.phase == Phase::Sending {
            now.body_done = true;
        }
    }

    /// Everything written so far has left for the client: a sent response makes the
    /// connection idle.
    fn flushed(&self) {
        let sent = {
            let now = self.lock();
            now.phase == Phase::Sending && now.body_done
        };
        if sent {
            self.enter(Phase::Idle);
        }
    }

    /// The current phase and when it runs out (none while a handler works).
    fn deadline(&self) -> (Phase, Option<Instant>) {
        let (phase, since) = {
            let now = self.lock();
            (now.phase, now.since)
        };
        let timeout = match phase {
            Phase::Head => Some(self.limits.read_header_timeout),
            Phase::Handling => None,
            Phase::Sending => Some(self.limits.write_timeout),
            Phase::Idle => Some(self.limits.idle_timeout),
        };
        (phase, timeout.map(|t| since + t))
    }

    /// Completes when the connection is to be closed: a deadline passed, or it was evicted.
    async fn expired(&self) -> Closing {
        loop {
            let changed = self.changed.notified();
            if self.lock().evicted {
                return Closing::Evicted;
            }
            match self.deadline() {
                (_, None) => changed.await,
                (phase, Some(at)) if at <= Instant::now() => return Closing::Overdue(phase),
                (_, Some(at)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }
}

/// The connection's stream, telling `Activity` when request bytes arrive.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(polled, Poll::Ready(Ok(()))) {
            self.activity.flushed();
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router, telling `Activity` when a request is handled and its response sent.
#[derive(Clone)]
struct Service {
    inner: TowerToHyperService<Router>,
    activity: Arc<Activity>,
}

type Answer = Result<axum::http::Response<Body>, Infallible>;

impl hyper::service::Service<axum::http::Request<Incoming>> for Service {
    type Response = axum::http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn call(&self, req: axum::http::Request<Incoming>) -> Self::Future {
        self.activity.enter(Phase::Handling);
        let answer = self.inner.call(req);
        let activity = self.activity.clone();
        Box::pin(async move {
            let resp = answer.await?;
            activity.enter(Phase::Sending);
            Ok(resp.map(|inner| Body {
                inner,
                activity: Some(activity),
            }))
        })
    }
}

/// A response body that tells `Activity` when it has ended (or was dropped unsent: HEAD, 304,
/// a broken connection); the connection is idle once that is flushed.
struct Body {
    inner: axum::body::Body,
    activity: Option<Arc<Activity>>,
}

impl Body {
    fn ended(&mut self) {
        if let Some(a) = self.activity.take() {
            a.body_done();
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        self.ended();
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.ended();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Arc<Limits> {
        Arc::new(Limits {
            read_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            ..Limits::default()
        })
    }

    #[tokio::test]
    async fn each_phase_has_its_own_deadline() {
        let start = Instant::now();
        let a = Activity::new(limits());
        let (phase, at) = a.deadline();
        assert_eq!(phase, Phase::Head);
        assert!(at.expect("head deadline") >= start + Duration::from_secs(10));
        a.enter(Phase::Handling);
        assert_eq!(a.deadline(), (Phase::Handling, None));
        a.enter(Phase::Sending);
        let (phase, at) = a.deadline();
        assert_eq!(phase, Phase::Sending);
        assert!(at.expect("write deadline") < start + Duration::from_secs(31));
        a.enter(Phase::Idle);
        assert_eq!(a.deadline().0, Phase::Idle);
    }

    #[tokio::test]
    async fn bytes_on_an_idle_connection_start_the_header_deadline_only_then() {
        let a = Activity::new(limits());
        a.enter(Phase::Sending);
        a.bytes_read();
        assert_eq!(
            a.deadline().0,
            Phase::Sending,
            "a response is still going out"
        );
        a.enter(Phase::Idle);
        a.bytes_read();
        assert_eq!(a.deadline().0, Phase::Head);
    }

    #[tokio::test]
    async fn a_response_is_sent_once_its_body_ended_and_was_flushed() {
        let a = Activity::new(limits());
        a.enter(Phase::Sending);
        a.flushed();
        assert_eq!(a.deadline().0, Phase::Sending, "the body has not ended");
        a.body_done();
        assert_eq!(a.deadline().0, Phase::Sending, "its bytes are not flushed");
        a.flushed();
        assert_eq!(a.deadline().0, Phase::Idle);
    }

    #[tokio::test]
    async fn expiry_names_the_phase_that_ran_out() {
        let a = Activity::new(Arc::new(Limits {
            idle_timeout: Duration::from_millis(20),
            ..Limits::default()
        }));
        a.enter(Phase::Idle);
        let closing = tokio::time::timeout(Duration::from_secs(5), a.expired())
            .await
            .expect("the idle deadline passes");
        assert_eq!(closing, Closing::Overdue(Phase::Idle));
        assert_eq!(closing.describe(&a.limits), "idle for longer than 0.02s");
    }

    #[tokio::test]
    async fn only_an_idle_connection_can_be_evicted() {
        let a = Activity::new(limits());
        assert!(!a.evict_if_idle(), "reading a head");
        a.enter(Phase::Sending);
        assert!(!a.evict_if_idle(), "sending");
        assert_eq!(a.idle_since(), None);
        a.enter(Phase::Idle);
        assert!(a.idle_since().is_some());
        assert!(a.evict_if_idle());
        assert!(!a.evict_if_idle(), "evicted once");
        let closing = tokio::time::timeout(Duration::from_secs(5), a.expired())
            .await
            .expect("an evicted connection closes at once");
        assert_eq!(closing, Closing::Evicted);
    }
}
