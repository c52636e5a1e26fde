//! The two phases of one scan and their bounds: first one ClientHello per version, then, for
//! each weak class, ClientHellos offering only that class over the accepted versions below
//! TLS 1.3. One TCP connection per ClientHello (straight, or through the route's proxy, and
//! after the route's STARTTLS upgrade: then one at a time, `STARTTLS_SPACING` apart), at most
//! `parallel` in flight and `MAX_HANDSHAKES` in all, each bounded by `HANDSHAKE_TIMEOUT` and all
//! by the caller's deadline; the first ClientHello that cannot be asked fails the scan. What
//! goes into a hello is left to `hello` and `suites`, reading the answer to `flight`, and the
//! public result to `scan` in `mod.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};

use super::flight::{Flight, Reply};
use super::hello::{client_hello, random_bytes};
use super::suites::{class_offer, offer};
use super::{LegacyVersion, Route, ScanError, WeakClass, MAX_HANDSHAKES};
use crate::probe::connect;
use crate::probe::proxy::Destination;
use crate::probe::starttls::{self, UpgradeError};

/// How long one ClientHello may wait for its TCP connection, and then for the answer.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Behind STARTTLS, ClientHellos go one at a time, each connection opened at least this long
/// after the previous one: mail servers count connections whose session process has not
/// exited yet (exim4 refuses the 21st with 421, and its processes linger ~0.4 s after we hang
/// up), so a burst of 30 would be refused half way.
pub(super) const STARTTLS_SPACING: Duration = Duration::from_millis(100);

/// Where, how and until when one scan talks, how many ClientHellos it sent, and the first
/// reason it could not ask one (after which no more are attempted: a down host costs one round).
pub(super) struct Peer {
    to: Destination,
    route: Route,
    sni: Option<String>,
    deadline: Instant,
    sent: AtomicU32,
    broken: OnceLock<ScanError>,
    /// When the next connection may open (`STARTTLS_SPACING`, STARTTLS routes only).
    next_open: std::sync::Mutex<Option<Instant>>,
}

impl Peer {
    /// A peer at `addr`, greeted with `sni` (a DNS name), until `deadline`; nothing sent yet.
    #[cfg(test)]
    pub(super) fn new(addr: std::net::SocketAddr, sni: Option<String>, deadline: Instant) -> Peer {
        Peer::reached(Destination::Addr(addr), Route::default(), sni, deadline)
    }

    /// A peer at `to`, reached by `route`, greeted with `sni`, until `deadline`.
    pub(super) fn reached(
        to: Destination,
        route: Route,
        sni: Option<String>,
        deadline: Instant,
    ) -> Peer {
        Peer {
            to,
            route,
            sni,
            deadline,
            sent: AtomicU32::new(0),
            broken: OnceLock::new(),
            next_open: std::sync::Mutex::new(None),
        }
    }

    /// Waits until this peer's next connection may open, and books the slot after it.
    async fn pace(&self) {
        if self.route.starttls.is_none() {
            return;
        }
        let at = {
            let mut next = self.next_open.lock().unwrap_or_else(|p| p.into_inner());
            let at = next.map_or_else(Instant::now, |t| t.max(Instant::now()));
            *next = Some(at + STARTTLS_SPACING);
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// ClientHellos sent so far, or attempted when the connection failed.
    pub(super) fn handshakes(&self) -> u32 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// What both phases learnt; see `ScanResult` for the meaning of each field.
pub(super) struct Found {
    pub(super) protocols: Vec<(LegacyVersion, bool)>,
    pub(super) weak: Vec<(WeakClass, bool)>,
    pub(super) legacy_chain: Option<Vec<CertificateDer<'static>>>,
}

/// Both phases, `parallel` (at least 1) ClientHellos at a time, by the peer's deadline; `Err`
/// when any ClientHello could not be asked (then no answer is trusted).
pub(super) async fn run(peer: &Arc<Peer>, parallel: usize) -> Result<Found, ScanError> {
    let phases = async {
        let (protocols, mut chains) = versions(peer, parallel).await?;
        let weak = weak_classes(peer, parallel, &protocols).await?;
        // The chain of the highest accepted version below TLS 1.3.
        let legacy_chain = chains.pop_last().map(|(_, chain)| chain);
        Ok(Found {
            protocols,
            weak,
            legacy_chain,
        })
    };
    match timeout_at(peer.deadline, phases).await {
        Ok(found) => found,
        Err(_) => Err(ScanError::TimedOut {
            addr: peer.to.clone(),
        }),
    }
}

/// Phase 1: which versions the server accepts (sorted as `LegacyVersion::ALL`), and the chain
/// each accepted version below TLS 1.3 showed.
async fn versions(
    peer: &Arc<Peer>,
    parallel: usize,
) -> Result<(Vec<(LegacyVersion, bool)>, BTreeMap<LegacyVersion, Chain>), ScanError> {
    let jobs = LegacyVersion::ALL.map(|v| {
        let peer = peer.clone();
        async move { (v, ask(&peer, v, &offer(v)).await) }
    });
    let mut protocols = Vec::new();
    let mut chains = BTreeMap::new();
    for (v, reply) in bounded(jobs.into(), parallel).await {
        let accepted = match reply {
            Reply::Failed(e) => return Err(e),
            Reply::Refused(_) => false,
            Reply::Hello(h) => {
                let accepted = h.version == v.wire() && offer(v).contains(&h.suite);
                if let (true, Some(chain)) = (accepted, h.chain) {
                    chains.insert(v, chain);
                }
                accepted
            }
        };
        protocols.push((v, accepted));
    }
    if protocols.len() != LegacyVersion::ALL.len() {
        return Err(ScanError::Incomplete {
            addr: peer.to.clone(),
            check: "version",
        });
    }
    protocols.sort();
    Ok((protocols, chains))
}

/// The certificates one handshake showed, leaf first.
type Chain = Vec<CertificateDer<'static>>;

/// Phase 2: which weak classes the server accepts (sorted as `WeakClass::ALL`), over the
/// accepted `protocols` below TLS 1.3, highest first.
async fn weak_classes(
    peer: &Arc<Peer>,
    parallel: usize,
    protocols: &[(LegacyVersion, bool)],
) -> Result<Vec<(WeakClass, bool)>, ScanError> {
    let mut legacy: Vec<LegacyVersion> = protocols
        .iter()
        .filter(|(v, a)| *a && *v < LegacyVersion::Tls13)
        .map(|(v, _)| *v)
        .collect();
    legacy.reverse();
    let jobs = WeakClass::ALL.map(|c| {
        let peer = peer.clone();
        let legacy = legacy.clone();
        async move { (c, weak_class_accepted(&peer, c, &legacy).await) }
    });
    let mut weak = Vec::new();
    for (c, accepted) in bounded(jobs.into(), parallel).await {
        weak.push((c, accepted?));
    }
    if weak.len() != WeakClass::ALL.len() {
        return Err(ScanError::Incomplete {
            addr: peer.to.clone(),
            check: "cipher class",
        });
    }
    weak.sort();
    Ok(weak)
}

/// Offers only `class`'s suites at each of `versions` in turn until a server picks one.
async fn weak_class_accepted(
    peer: &Peer,
    class: WeakClass,
    versions: &[LegacyVersion],
) -> Result<bool, ScanError> {
    for &v in versions {
        let suites = class_offer(class, v);
        if suites.is_empty() {
            continue;
        }
        match ask(peer, v, &suites).await {
            Reply::Failed(e) => return Err(e),
            Reply::Refused(_) => {}
            Reply::Hello(h) => {
                if (0x0300..=v.wire()).contains(&h.version) && suites.contains(&h.suite) {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// Runs `jobs` with at most `parallel` at a time; results in completion order. Dropping the
/// returned future aborts what still runs.
async fn bounded<F, T>(jobs: Vec<F>, parallel: usize) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut pending = jobs.into_iter();
    let mut running = JoinSet::new();
    let mut done = Vec::new();
    for job in pending.by_ref().take(parallel) {
        running.spawn(job);
    }
    while let Some(finished) = running.join_next().await {
        // Our jobs do not panic; a job that did (or was cancelled) simply has no result, which
        // the caller reports as an incomplete scan.
        if let Ok(out) = finished {
            done.push(out);
        }
        if let Some(job) = pending.next() {
            running.spawn(job);
        }
    }
    done
}

/// One ClientHello for `version` offering `suites`, and what the server answered.
async fn ask(peer: &Peer, version: LegacyVersion, suites: &[u16]) -> Reply {
    if let Some(why) = peer.broken.get() {
        return Reply::Failed(why.clone());
    }
    let reply = exchange(peer, version, suites).await;
    if let Reply::Failed(why) = &reply {
        let _ = peer.broken.set(why.clone());
    }
    if let Reply::Refused(why) = &reply {
        tracing::debug!(
            address = %peer.to,
            version = version.as_label(),
            suites = suites.len(),
            "scan: hello not accepted: {why}"
        );
    }
    reply
}

/// Asks one ClientHello over a fresh connection: connect, send, read the first flight.
async fn exchange(peer: &Peer, version: LegacyVersion, suites: &[u16]) -> Reply {
    let reserved = peer
        .sent
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < MAX_HANDSHAKES).then_some(n + 1)
        });
    if reserved.is_err() {
        return Reply::Failed(ScanError::TooManyHandshakes {
            addr: peer.to.clone(),
        });
    }
    let limit = peer.deadline.min(Instant::now() + HANDSHAKE_TIMEOUT);
    let late = |doing: &'static str| {
        if limit >= peer.deadline {
            Reply::Failed(ScanError::OutOfTime {
                addr: peer.to.clone(),
                doing,
            })
        } else {
            Reply::Refused(format!("no answer within {HANDSHAKE_TIMEOUT:?}"))
        }
    };
    if timeout_at(limit, peer.pace()).await.is_err() {
        return late("waiting to connect");
    }
    let mut tcp = match timeout_at(limit, open(peer, limit)).await {
        Err(_) if limit >= peer.deadline => return late("connecting"),
        Err(_) => {
            return Reply::Failed(ScanError::ConnectTimedOut {
                addr: peer.to.clone(),
                after: HANDSHAKE_TIMEOUT,
            })
        }
        Ok(Err(e)) => return Reply::Failed(e),
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    if let Some(proto) = peer.route.starttls {
        let name = peer.route.server_name.as_str();
        match timeout_at(limit, starttls::upgrade(&mut tcp, proto, name)).await {
            // Silence in the upgrade says nothing about the hello: the scan cannot ask it.
            Err(_) if limit >= peer.deadline => return late("upgrading with STARTTLS"),
            Err(_) => {
                return Reply::Failed(ScanError::Starttls {
                    addr: peer.to.clone(),
                    refused: false,
                    detail: format!("{proto}: no answer within {HANDSHAKE_TIMEOUT:?}"),
                })
            }
            Ok(Err(e)) => {
                return Reply::Failed(ScanError::Starttls {
                    addr: peer.to.clone(),
                    refused: matches!(e, UpgradeError::Refused(_)),
                    detail: format!("{proto}: {e}"),
                })
            }
            Ok(Ok(())) => {}
        }
    }
    let hello = client_hello(version, suites, peer.sni.as_deref(), &random_bytes());
    match timeout_at(limit, tcp.write_all(&hello)).await {
        Err(_) => return late("sending a ClientHello"),
        Ok(Err(e)) => return Reply::Refused(format!("connection closed: {e}")),
        Ok(Ok(())) => {}
    }
    let capture = (version < LegacyVersion::Tls13).then(|| version.wire());
    let mut flight = Flight::new(capture);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match timeout_at(limit, tcp.read(&mut buf)).await {
            Err(_) => return flight.cut_short().unwrap_or_else(|| late("reading")),
            Ok(Err(e)) => return flight.closed(&e.to_string()),
            Ok(Ok(0)) => return flight.closed("connection closed"),
            Ok(Ok(n)) => n,
        };
        if let Some(reply) = buf.get(..n).and_then(|bytes| flight.feed(bytes)) {
            // Dropping the connection closes it: we never go past the server's first flight.
            return reply;
        }
    }
}

/// A fresh connection to the peer: straight to its address, or through the route's proxy
/// (`connect`'s rules: the proxy is asked for `to` as it is).
async fn open(peer: &Peer, limit: Instant) -> Result<TcpStream, ScanError> {
    let lookup = connect::System(peer.route.ip_protocol);
    match (&peer.route.proxy, &peer.to) {
        (None, Destination::Addr(addr)) => {
            TcpStream::connect(addr)
                .await
                .map_err(|e| ScanError::Connect {
                    addr: peer.to.clone(),
                    cause: Arc::new(e),
                })
        }
        (None, Destination::Name { host, port }) => {
            let (_, got) = connect::dial(&lookup, host, *port, None, None, limit).await;
            got.map(|c| c.stream)
                .map_err(|e| ScanError::Unreachable(e.to_string()))
        }
        (Some(proxy), to) => {
            let (_, got) = connect::through(&lookup, proxy, to, limit).await;
            got.map(|c| c.stream)
                .map_err(|e| ScanError::Proxy(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::scan;
    use super::*;

    #[tokio::test]
    async fn unreachable_address_is_an_error_with_nothing_known() {
        // Bind, learn the port, close: connecting is refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let deadline = Instant::now() + Duration::from_secs(10);
        // An error is all there is: no protocols, no classes.
        let r = scan(addr, Some("localhost"), deadline, 4).await;
        assert!(r.is_err(), "{r:?}");
        let peer = Arc::new(Peer::new(addr, Some("localhost".into()), deadline));
        let r = run(&peer, 4).await;
        assert!(r.is_err());
        assert!(peer.handshakes() <= 4, "{}", peer.handshakes());
        // One at a time, the first failure stops the scan.
        let peer = Arc::new(Peer::new(addr, Some("localhost".into()), deadline));
        let e = run(&peer, 1).await.err();
        assert_eq!(peer.handshakes(), 1, "{e:?}");
        assert!(matches!(e, Some(ScanError::Connect { .. })), "{e:?}");
        assert!(e.is_some_and(|e| e.to_string().contains("connect to")));
    }

    #[tokio::test]
    async fn silent_server_is_bounded_by_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        let started = Instant::now();
        let r = scan(addr, None, started + Duration::from_millis(500), 2).await;
        assert!(started.elapsed() < Duration::from_secs(3), "{r:?}");
        assert!(r.is_err(), "{r:?}");
        hold.abort();
    }
}
