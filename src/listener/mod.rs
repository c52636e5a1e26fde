//! The exporter's HTTP listener, plain or TLS, bounded like a hardened HTTP server: at most
//! `max_connections` connections at once (at the limit, the connection idle the longest is
//! closed to make room; with none idle, the new one is closed as soon as it is accepted), none
//! that would take a file descriptor from the reserve kept for probes, and every connection
//! under the deadlines of `connection.rs`. One serving path for plain HTTP and TLS alike.
//!
//! What is served (routes, basic auth, headers) and the TLS config are the caller's
//! (`web_config`); raising the open-file limit and the size of the reserve are `fds.rs`'s.

mod connection;
mod fds;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use rustls::ServerConfig;
use tokio::sync::Semaphore;

pub use fds::{fd_reserve_for, open_file_limit, raise_open_file_limit};

/// The listener's bounds; the `--web.*` flags of the same names set them.
#[derive(Clone)]
pub struct Limits {
    /// How long a client may take to send a request's head (TLS handshake included for the
    /// first request), from its first byte (from accept for the first request).
    pub read_header_timeout: Duration,
    /// How long a keep-alive connection may sit between requests.
    pub idle_timeout: Duration,
    /// How long a response may take to reach the client, from the handler's answer to the
    /// body's last byte; a scraper that stops reading is dropped then.
    pub write_timeout: Duration,
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// File descriptors to leave free for everything but HTTP connections (probes, name
    /// resolution, config files), asked at each accept so that a reloaded `concurrency`
    /// applies.
    pub fd_reserve: Arc<dyn Fn() -> usize + Send + Sync>,
}

impl Default for Limits {
    /// The flags' defaults (see the README's flag table).
    fn default() -> Self {
        Limits {
            read_header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(30),
            max_connections: 512,
            fd_reserve: Arc::new(|| fd_reserve_for(64)),
        }
    }
}

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown` completes, then stops
/// accepting and lets in-flight requests finish (the caller bounds how long it waits for this
/// future). Failures of single connections are logged at debug and never stop the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<Arc<ServerConfig>>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let service = hyper_util::service::TowerToHyperService::new(app);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let mut served = Served::default();
    let nofile = open_file_limit();
    let mut refusals = Refusals::default();
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
        let reserve = (limits.fd_reserve)();
        if fds::takes_from_reserve(&tcp, nofile, reserve) {
            refusals.note(peer, || {
                format!(
                    "it would leave fewer than {reserve} of the {nofile} file descriptors \
                     (open-file limit) for probes"
                )
            });
            continue;
        }
        let slot = match connections.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            // The evicted connection gives its slot back as soon as its task sees it.
            Err(_) if served.evict_idlest() => {
                tokio::time::timeout(EVICTION_WAIT, connections.clone().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            Err(_) => None,
        };
        let Some(slot) = slot else {
            refusals.note(peer, || {
                format!(
                    "{} connections are open and none is idle (--web.max-connections)",
                    limits.max_connections
                )
            });
            continue;
        };
        let activity = Arc::new(connection::Activity::new(limits.clone()));
        served.add(&activity, limits.max_connections);
        let _ = tcp.set_nodelay(true);
        // Taken before the handshake, so that shutdown waits for this connection too.
        let watcher = graceful.watcher();
        tokio::spawn(connection::serve(
            tcp,
            peer,
            acceptor.clone(),
            service.clone(),
            activity,
            watcher,
            stopping.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    graceful.shutdown().await;
    Ok(())
}

/// How long the accept loop waits for an evicted connection's slot.
const EVICTION_WAIT: Duration = Duration::from_millis(250);

/// The connections being served, to find the one idle the longest when the limit is reached.
#[derive(Default)]
struct Served(Vec<Weak<connection::Activity>>);

impl Served {
    fn add(&mut self, activity: &Arc<connection::Activity>, max: usize) {
        if self.0.len() >= max.saturating_mul(2) {
            self.0.retain(|w| w.strong_count() > 0);
        }
        self.0.push(Arc::downgrade(activity));
    }

    /// Evicts the connection idle the longest; false when none is idle.
    fn evict_idlest(&mut self) -> bool {
        self.0.retain(|w| w.strong_count() > 0);
        let mut idle: Vec<(Instant, Arc<connection::Activity>)> = self
            .0
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|a| a.idle_since().map(|t| (t.into_std(), a)))
            .collect();
        idle.sort_by_key(|(since, _)| *since);
        // One may have become busy since: the next idlest then.
        idle.into_iter().any(|(_, a)| a.evict_if_idle())
    }
}

/// Refused connections: each logged at debug, a summary at warn at most once a minute.
#[derive(Default)]
struct Refusals {
    last_warning: Option<Instant>,
    since_warning: u64,
}

/// How often a burst of refused connections is summarised at warn.
const REFUSAL_WARNING_EVERY: Duration = Duration::from_secs(60);

impl Refusals {
    /// Records a refused connection (already accepted: dropping it closes it).
    fn note(&mut self, peer: SocketAddr, why: impl FnOnce() -> String) {
        self.since_warning += 1;
        let due = self
            .last_warning
            .is_none_or(|t| t.elapsed() >= REFUSAL_WARNING_EVERY);
        if due {
            tracing::warn!(
                refused = self.since_warning,
                "refusing HTTP connections because {}",
                why()
            );
            self.last_warning = Some(Instant::now());
            self.since_warning = 0;
        } else {
            tracing::debug!(peer = %peer, "refused an HTTP connection");
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use rustls_pki_types::PrivateKeyDer;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    fn tls_config() -> Arc<ServerConfig> {
        let key = rcgen::KeyPair::generate().expect("keygen");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("self-sign");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("a valid certificate and key");
        Arc::new(config)
    }

    /// Serves a router with `/` ("ok") and `/big` (32 MiB) on a loopback port.
    async fn start(tls: Option<Arc<ServerConfig>>, limits: Limits) -> SocketAddr {
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .route("/big", get(|| async { vec![b'x'; 32 << 20] }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(serve(listener, app, tls, limits, std::future::pending()));
        addr
    }

    /// Reads until the server closes the connection (bounded); returns the bytes read.
    async fn read_until_closed(c: &mut TcpStream) -> usize {
        let mut total = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
                .await
                .expect("the server closes the connection within 5s");
            match read {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_connections_are_dropped_at_the_header_timeout_with_tls_and_without() {
        for tls in [None, Some(tls_config())] {
            let with_tls = tls.is_some();
            let addr = start(
                tls,
                Limits {
                    read_header_timeout: Duration::from_millis(300),
                    ..Limits::default()
                },
            )
            .await;
            let mut c = TcpStream::connect(addr).await.expect("connect");
            assert_eq!(read_until_closed(&mut c).await, 0, "tls: {with_tls}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_stops_reading_is_dropped_at_the_write_timeout() {
        let write_timeout = Duration::from_millis(300);
        let addr = start(
            None,
            Limits {
                write_timeout,
                ..Limits::default()
            },
        )
        .await;
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("request");
        // Not reading for longer than the write timeout is what is tested.
        tokio::time::sleep(write_timeout * 3).await;
        let read = read_until_closed(&mut c).await;
        assert!(read < 32 << 20, "the whole response arrived ({read} bytes)");
    }
}
