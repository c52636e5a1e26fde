//! Reaching a peer: resolving a host and connecting to one of its addresses, for the TLS probe
//! and for every HTTP request (the redirect check and its hops to other hosts) alike.
//!
//! Resolution takes an IP literal as it is and looks a name up through a `Lookup` (`System`:
//! getaddrinfo on the resolver's own bounded threads, see `dns`), bounded by the probe's
//! deadline; the system lookup drops duplicates and puts the target's `ip_protocol` family first.
//! Connecting tries the addresses in order, each with an equal share of the time left, so one
//! blackholed address does not use up the whole probe. Failures are `ConnectError`s, classified
//! onto `FailureReason` by `ConnectError::reason` (I/O errors through `probe::classify`).
//!
//! Through a proxy (`proxy_url:`), the connect loop opens the connection to the proxy (its name
//! resolved like a target's) and `proxy::negotiate` asks it for the tunnel; the stream is then
//! used as a direct one, so every kind (TLS, STARTTLS, HTTP, the legacy scan) goes through it.
//! The proxy is sent the address resolved here, except for `socks5h` and HTTP CONNECT when the
//! probe is not pinned to an address (`resolve: all`): those get the name. Any failure to reach
//! the proxy or to get the tunnel is `proxy_error`, with the proxy named redacted.
//!
//! What is spoken over the connection (STARTTLS, TLS, HTTP) and how the timings become an
//! outcome is the callers' business.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};

use super::classify;
use super::proxy::{self, Destination, ProxyError};
use crate::config::{IpProtocol, Proxy};
use crate::verdict::{Failure, FailureReason};

/// Turns a host name into addresses, in the order to try them: `System` in the probes, a
/// stand-in in tests. Any function `(host, port) -> Future<io::Result<Vec<SocketAddr>>>` is one.
pub trait Lookup {
    /// The addresses of `host` (a name; IP literals never get here) with `port`.
    fn lookup(
        &self,
        host: String,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send;
}

impl<F, Fut> Lookup for F
where
    F: Fn(String, u16) -> Fut,
    Fut: Future<Output = io::Result<Vec<SocketAddr>>> + Send,
{
    fn lookup(
        &self,
        host: String,
        port: u16,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send {
        self(host, port)
    }
}

/// The system resolver (getaddrinfo on the resolver's own bounded threads, see `dns`):
/// duplicates dropped, the preferred address family first, resolver order kept within each
/// family.
#[derive(Debug, Clone, Copy)]
pub struct System(pub IpProtocol);

impl Lookup for System {
    async fn lookup(&self, host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
        let mut addrs = super::dns::lookup(host, port).await?;
        order(&mut addrs, self.0);
        Ok(addrs)
    }
}

/// Why no connection was made. `reason()` classifies it for the probe.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("resolve {host} timed out")]
    ResolveTimeout { host: String },
    #[error("resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("resolve {host}: no addresses")]
    NoAddresses { host: String },
    #[error("no address to connect to")]
    NoAddress,
    #[error("connect to {addr} timed out")]
    Timeout { addr: SocketAddr },
    #[error("connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    /// The proxy (shown redacted) could not be reached.
    #[error("proxy {proxy} unreachable: {source}")]
    ProxyUnreachable {
        proxy: String,
        source: Box<ConnectError>,
    },
    /// The proxy (shown redacted) gave no tunnel.
    #[error("proxy {proxy}: {source}")]
    Proxy { proxy: String, source: ProxyError },
}

impl ConnectError {
    /// The probe's failure reason: resolution problems are `dns_error`, connect errors are
    /// classified like every other I/O error.
    pub fn reason(&self) -> FailureReason {
        match self {
            ConnectError::ResolveTimeout { .. }
            | ConnectError::Resolve { .. }
            | ConnectError::NoAddresses { .. } => FailureReason::DnsError,
            ConnectError::NoAddress => FailureReason::Other,
            ConnectError::Timeout { .. } => FailureReason::ConnectTimeout,
            ConnectError::Connect { source, .. } => classify(source, false),
            ConnectError::ProxyUnreachable { .. } | ConnectError::Proxy { .. } => {
                FailureReason::ProxyError
            }
        }
    }
}

impl From<ConnectError> for Failure {
    fn from(e: ConnectError) -> Failure {
        Failure::new(e.reason(), e.to_string())
    }
}

/// An open TCP connection (`TCP_NODELAY` set) and the address that accepted it (through a
/// proxy: the proxy's).
#[derive(Debug)]
pub(crate) struct Connected {
    pub(crate) stream: TcpStream,
    pub(crate) addr: SocketAddr,
}

/// How long the phases `dial` reached took; a phase not reached is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Timings {
    pub(crate) resolve: Option<Duration>,
    pub(crate) connect: Option<Duration>,
    /// Asking the proxy for the tunnel (`connect` is then the connection to the proxy).
    pub(crate) proxy: Option<Duration>,
}

/// Resolves `host` (unless `pinned`: that address, resolved elsewhere in the given time) and
/// connects to `port` there, through `via` when set, all by `deadline`. The timings are there
/// even when it failed.
pub(crate) async fn dial(
    lookup: &impl Lookup,
    host: &str,
    port: u16,
    pinned: Option<(SocketAddr, Duration)>,
    via: Option<&Proxy>,
    deadline: Instant,
) -> (Timings, Result<Connected, ConnectError>) {
    let mut timings = Timings::default();
    if let Some(proxy) = via {
        let to = match pinned {
            Some((addr, resolved_in)) => {
                timings.resolve = Some(resolved_in);
                Destination::Addr(addr)
            }
            None if proxy.resolves_names() => Destination::new(host, port),
            None => {
                let t = Instant::now();
                let addrs = resolve(lookup, host, port, deadline).await;
                timings.resolve = Some(t.elapsed());
                match addrs.map(|a| a.first().copied()) {
                    Ok(Some(addr)) => Destination::Addr(addr),
                    Ok(None) => return (timings, Err(ConnectError::NoAddress)),
                    Err(e) => return (timings, Err(e)),
                }
            }
        };
        let (t, connected) = through(lookup, proxy, &to, deadline).await;
        timings.connect = t.connect;
        timings.proxy = t.proxy;
        return (timings, connected);
    }
    let addrs = match pinned {
        Some((addr, resolved_in)) => {
            timings.resolve = Some(resolved_in);
            vec![addr]
        }
        None => {
            let t = Instant::now();
            let addrs = resolve(lookup, host, port, deadline).await;
            timings.resolve = Some(t.elapsed());
            match addrs {
                Ok(addrs) => addrs,
                Err(e) => return (timings, Err(e)),
            }
        }
    };
    let t = Instant::now();
    let connected = connect(&addrs, deadline).await;
    timings.connect = Some(t.elapsed());
    (timings, connected)
}

/// The addresses of `host` (an IP literal, bracketed or not, as it is) with `port`, never
/// empty, looked up by `deadline`.
pub(crate) async fn resolve(
    lookup: &impl Lookup,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, ConnectError> {
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    if let Ok(ip) = literal.unwrap_or(host).parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let host = host.to_string();
    match timeout_at(deadline, lookup.lookup(host.clone(), port)).await {
        Err(_) => Err(ConnectError::ResolveTimeout { host }),
        Ok(Err(source)) => Err(ConnectError::Resolve { host, source }),
        Ok(Ok(addrs)) if addrs.is_empty() => Err(ConnectError::NoAddresses { host }),
        Ok(Ok(addrs)) => Ok(addrs),
    }
}

/// Connects to the first of `addrs` that accepts, in order. Each address gets an equal share
/// of the time left until `deadline`, so one blackholed address does not use up the whole
/// probe. The error is that of the last address tried.
pub(crate) async fn connect(
    addrs: &[SocketAddr],
    deadline: Instant,
) -> Result<Connected, ConnectError> {
    let mut last = ConnectError::NoAddress;
    for (i, addr) in addrs.iter().enumerate() {
        let left = addrs.len() - i;
        let share = deadline.saturating_duration_since(Instant::now()) / left as u32;
        match timeout(share, TcpStream::connect(addr)).await {
            Err(_) => last = ConnectError::Timeout { addr: *addr },
            Ok(Err(source)) => {
                last = ConnectError::Connect {
                    addr: *addr,
                    source,
                }
            }
            Ok(Ok(stream)) => {
                // Small writes (a ClientHello, a request head) go out at once.
                let _ = stream.set_nodelay(true);
                return Ok(Connected {
                    stream,
                    addr: *addr,
                });
            }
        }
    }
    Err(last)
}

/// Connects to the first of `addrs` that accepts (see `connect`), or through `via` to the
/// first of them, by `deadline`.
pub(crate) async fn connect_via(
    lookup: &impl Lookup,
    addrs: &[SocketAddr],
    via: Option<&Proxy>,
    deadline: Instant,
) -> Result<Connected, ConnectError> {
    match (via, addrs.first()) {
        (None, _) => connect(addrs, deadline).await,
        (Some(_), None) => Err(ConnectError::NoAddress),
        (Some(proxy), Some(addr)) => {
            through(lookup, proxy, &Destination::Addr(*addr), deadline)
                .await
                .1
        }
    }
}

/// Opens a connection to `proxy` (its name resolved with `lookup`) and asks it for a tunnel to
/// `to`, by `deadline`: `connect` times the first, `proxy` the second.
pub(crate) async fn through(
    lookup: &impl Lookup,
    proxy: &Proxy,
    to: &Destination,
    deadline: Instant,
) -> (Timings, Result<Connected, ConnectError>) {
    let mut timings = Timings::default();
    let unreachable = |e: ConnectError| ConnectError::ProxyUnreachable {
        proxy: proxy.to_string(),
        source: Box::new(e),
    };
    let t = Instant::now();
    let connected = match resolve(lookup, &proxy.host, proxy.port, deadline).await {
        Ok(addrs) => connect(&addrs, deadline).await,
        Err(e) => Err(e),
    };
    timings.connect = Some(t.elapsed());
    let mut connected = match connected {
        Ok(c) => c,
        Err(e) => return (timings, Err(unreachable(e))),
    };
    let t = Instant::now();
    let tunnel = proxy::negotiate(&mut connected.stream, proxy, to, deadline).await;
    timings.proxy = Some(t.elapsed());
    match tunnel {
        Ok(()) => (timings, Ok(connected)),
        Err(source) => (
            timings,
            Err(ConnectError::Proxy {
                proxy: proxy.to_string(),
                source,
            }),
        ),
    }
}

/// Drops duplicate addresses and puts the preferred family first, keeping resolver order
/// within each family.
fn order(addrs: &mut Vec<SocketAddr>, preference: IpProtocol) {
    let mut seen = std::collections::HashSet::new();
    addrs.retain(|a| seen.insert(*a));
    match preference {
        IpProtocol::Any => {}
        IpProtocol::Ip4 => addrs.sort_by_key(|a| !a.is_ipv4()),
        IpProtocol::Ip6 => addrs.sort_by_key(|a| !a.is_ipv6()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse::<SocketAddr>().expect("test address")
    }

    #[test]
    fn preferred_family_comes_first_in_resolver_order() {
        let resolved = vec![
            a("[::1]:1"),
            a("127.0.0.2:1"),
            a("[::2]:1"),
            a("127.0.0.3:1"),
            a("[::1]:1"),
        ];
        let mut v = resolved.clone();
        order(&mut v, IpProtocol::Ip4);
        assert_eq!(
            v,
            vec![
                a("127.0.0.2:1"),
                a("127.0.0.3:1"),
                a("[::1]:1"),
                a("[::2]:1")
            ]
        );
        let mut v = resolved.clone();
        order(&mut v, IpProtocol::Ip6);
        assert_eq!(
            v,
            vec![
                a("[::1]:1"),
                a("[::2]:1"),
                a("127.0.0.2:1"),
                a("127.0.0.3:1")
            ]
        );
        let mut v = resolved;
        order(&mut v, IpProtocol::Any);
        assert_eq!(
            v,
            vec![
                a("[::1]:1"),
                a("127.0.0.2:1"),
                a("[::2]:1"),
                a("127.0.0.3:1")
            ]
        );
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    async fn never(_: String, _: u16) -> io::Result<Vec<SocketAddr>> {
        panic!("an IP literal is not looked up")
    }

    #[tokio::test]
    async fn ip_literals_are_not_looked_up() {
        let got = resolve(&never, "127.0.0.1", 8443, soon())
            .await
            .expect("v4");
        assert_eq!(got, vec![a("127.0.0.1:8443")]);
        let got = resolve(&never, "[::1]", 80, soon()).await.expect("v6");
        assert_eq!(got, vec![a("[::1]:80")]);
        let got = resolve(&never, "::1", 80, soon()).await.expect("bare v6");
        assert_eq!(got, vec![a("[::1]:80")]);
    }

    #[tokio::test]
    async fn empty_lookup_is_a_dns_error() {
        let nothing = |_: String, _: u16| async { Ok(Vec::new()) };
        let e = resolve(&nothing, "none.test", 443, soon())
            .await
            .expect_err("no addresses");
        assert_eq!(e.reason(), FailureReason::DnsError);
        assert_eq!(e.to_string(), "resolve none.test: no addresses");
    }

    #[tokio::test]
    async fn slow_lookup_times_out_at_the_deadline() {
        let stuck = |_: String, _: u16| std::future::pending::<io::Result<Vec<SocketAddr>>>();
        let until = Instant::now() + Duration::from_millis(50);
        let e = resolve(&stuck, "slow.test", 443, until)
            .await
            .expect_err("timeout");
        assert_eq!(e.reason(), FailureReason::DnsError);
        assert_eq!(e.to_string(), "resolve slow.test timed out");
    }

    #[tokio::test]
    async fn refused_address_falls_back_to_the_next() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let open = listener.local_addr().expect("addr");
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let got = connect(&[closed, open], soon()).await.expect("connects");
        assert_eq!(got.addr, open);
        let e = connect(&[closed], soon()).await.expect_err("refused");
        assert_eq!(e.reason(), FailureReason::ConnectionRefused, "{e}");
        assert!(e.to_string().starts_with(&format!("connect to {closed}: ")));
    }

    #[tokio::test]
    async fn nothing_to_connect_to_is_other() {
        let e = connect(&[], soon()).await.expect_err("no address");
        assert_eq!(e.reason(), FailureReason::Other);
        assert_eq!(e.to_string(), "no address to connect to");
    }

    #[tokio::test]
    async fn dial_times_each_phase_it_reaches() {
        let failing =
            |h: String, _: u16| async move { Err(io::Error::new(io::ErrorKind::NotFound, h)) };
        let (t, got) = dial(&failing, "gone.test", 443, None, None, soon()).await;
        assert!(got.is_err());
        assert!(t.resolve.is_some() && t.connect.is_none(), "{t:?}");
        let pinned = Some((a("127.0.0.1:1"), Duration::from_millis(7)));
        let (t, _) = dial(&never, "pinned.test", 1, pinned, None, soon()).await;
        assert_eq!(t.resolve, Some(Duration::from_millis(7)));
        assert!(t.connect.is_some(), "{t:?}");
    }

    #[tokio::test]
    async fn unreachable_proxy_is_proxy_error_named_without_its_password() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let proxy = Proxy::parse(&format!("http://user:hunter2@{closed}")).expect("proxy");
        let (t, got) = dial(&never, "example.test", 443, None, Some(&proxy), soon()).await;
        let e = got.expect_err("refused");
        assert_eq!(e.reason(), FailureReason::ProxyError, "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "proxy http://user:***@{closed} unreachable: connect to {closed}: "
            )),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        // HTTP CONNECT sends the name: nothing was resolved here.
        assert!(
            t.resolve.is_none() && t.connect.is_some() && t.proxy.is_none(),
            "{t:?}"
        );
    }

    #[tokio::test]
    async fn socks5_resolves_here_and_times_the_proxy_phase() {
        // A proxy that accepts the connection and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let proxy = Proxy::parse(&format!("socks5://{addr}")).expect("proxy");
        let local = |_: String, port: u16| async move { Ok(vec![a(&format!("127.0.0.9:{port}"))]) };
        let until = Instant::now() + Duration::from_millis(200);
        let (t, got) = dial(&local, "mx.test", 25, None, Some(&proxy), until).await;
        let e = got.expect_err("silent proxy");
        assert_eq!(e.reason(), FailureReason::ProxyError);
        assert_eq!(
            e.to_string(),
            format!("proxy socks5://{addr}: the proxy did not answer in time")
        );
        assert!(t.resolve.is_some() && t.proxy.is_some(), "{t:?}");
        hold.abort();
    }
}
