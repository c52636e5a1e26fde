//! One probe contract for every kind: `run(&Target, Check) -> Vec<AddressOutcome>`.
//!
//! The scheduler and `/probe` call `run` alike: it bounds the whole check by the target's
//! timeout (or the scan budget), fans out over every address for `resolve: all`, and picks the
//! prober by an exhaustive `match`. Probers reach their peers through `connect` (one resolver and
//! connect loop for every kind), return plain facts and classify what went wrong into
//! `FailureReason` through `classify`; when to check and what to keep is the scheduler's.

pub mod aia;
pub mod connect;
pub mod dns;
pub mod http;
pub mod legacy;
pub mod outcome;
pub mod proxy;
pub mod starttls;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::AlertDescription;
use tokio::time::{timeout_at, Instant};

use crate::config::{ProbeKind, Target};
use crate::tls::cache;
use crate::verdict::{Failure, FailureReason};
use outcome::{AddressOutcome, Phases, ProbeOutcome};

/// What to check on a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// The target's probe (`probe:` kind: a TLS handshake, or the plain-HTTP redirect check),
    /// every `interval`, bounded by `timeout`.
    Probe,
    /// The legacy protocol and weak cipher scan, every `scan_interval`, bounded by
    /// `SCAN_BUDGET`.
    Scan,
}

/// Time a legacy scan (at most ~30 ClientHellos per address) may take.
pub const SCAN_BUDGET: Duration = Duration::from_secs(60);
/// ClientHellos of one scan in flight at once: a scan never floods a server.
const SCAN_PARALLEL: usize = 2;
/// Extra time past a check's own deadline before `run` gives up on it (the probers are
/// deadline-bounded themselves; this only guards against a bug).
const SAFETY_MARGIN: Duration = Duration::from_millis(500);

/// What a prober gets: when it must be done, and the address to use when `run` resolved
/// already (`resolve: all`).
#[derive(Debug, Clone)]
pub struct ProbeCtx {
    /// The check must have finished by then.
    pub deadline: Instant,
    /// Probe this address instead of resolving, with the time the shared resolution took.
    pub pinned: Option<(SocketAddr, Duration)>,
}

impl Check {
    /// How long one run of this check on `target` may take.
    pub fn budget(self, target: &Target) -> Duration {
        match self {
            Check::Probe => target.timeout,
            Check::Scan => SCAN_BUDGET,
        }
    }
}

/// Runs `check` on `target` once, never panicking and never outliving its budget by more than
/// a safety margin: one outcome, or one per address the name resolves to for `resolve: all`
/// (a failed resolution is then one outcome without an address), sorted by address.
pub async fn run(target: &Arc<Target>, check: Check) -> Vec<AddressOutcome> {
    let start = Instant::now();
    let budget = check.budget(target);
    let deadline = start + budget;
    if !target.resolve_all {
        let ctx = ProbeCtx {
            deadline,
            pinned: None,
        };
        let outcome = bounded(target, check, &ctx, start).await;
        return vec![AddressOutcome {
            ip: None,
            outcome: Arc::new(outcome),
        }];
    }
    let addrs = match resolve(target, deadline).await {
        Ok(addrs) => addrs,
        Err(f) => {
            let phases = Phases {
                resolve: Some(start.elapsed()),
                ..Phases::default()
            };
            let outcome = ProbeOutcome::failed(f, phases, start.elapsed());
            return vec![AddressOutcome {
                ip: None,
                outcome: Arc::new(outcome),
            }];
        }
    };
    let resolved_in = start.elapsed();
    let mut set = tokio::task::JoinSet::new();
    for addr in addrs {
        let target = target.clone();
        set.spawn(async move {
            let ctx = ProbeCtx {
                deadline,
                pinned: Some((addr, resolved_in)),
            };
            AddressOutcome {
                ip: Some(addr.ip()),
                outcome: Arc::new(bounded(&target, check, &ctx, start).await),
            }
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = set.join_next().await {
        // A panicking prober is a bug; its address is left out rather than taking the others.
        if let Ok(one) = joined {
            all.push(one);
        }
    }
    all.sort_by_key(|a| a.ip);
    all
}

/// One check of one address (or of the target's first reachable address), bounded.
async fn bounded(target: &Target, check: Check, ctx: &ProbeCtx, start: Instant) -> ProbeOutcome {
    // Boxed: the probe's state (rustls connection, buffers) lives only while a check runs, not
    // inline in every idle target task.
    let work = Box::pin(async {
        match (check, target.kind) {
            (Check::Probe, ProbeKind::Tls) => tls::probe(target, ctx).await,
            (Check::Probe, ProbeKind::HttpRedirect) => redirect(target, ctx).await,
            (Check::Scan, _) => scan(target, ctx).await,
        }
    });
    match timeout_at(ctx.deadline + SAFETY_MARGIN, work).await {
        Ok(outcome) => outcome,
        Err(_) => {
            let budget = check.budget(target);
            let failure = Failure::new(
                FailureReason::Other,
                format!(
                    "check did not finish within its budget of {}",
                    crate::config::format_duration(budget)
                ),
            );
            ProbeOutcome::failed(failure, Phases::default(), start.elapsed())
        }
    }
}

/// Resolves a target's host (an IP literal as it is) by 'deadline', its preferred address
/// family first (see `connect::resolve`).
pub async fn resolve(target: &Target, deadline: Instant) -> Result<Vec<SocketAddr>, Failure> {
    let lookup = connect::System(target.ip_protocol);
    Ok(connect::resolve(&lookup, &target.host, target.port, deadline).await?)
}

/// The plain-HTTP side of a site: does GET answer with a redirect (chain) to `https://`?
/// Succeeds when it does; a site that serves content (or redirects elsewhere) over plain HTTP
/// fails with reason `other`.
async fn redirect(target: &Target, ctx: &ProbeCtx) -> ProbeOutcome {
    let start = Instant::now();
    let mut phases = Phases::default();
    let proxy = target.proxy.as_deref();
    // Through a proxy that resolves names, the first request goes by name too.
    let by_name = proxy.is_some_and(|p| p.resolves_names()) && ctx.pinned.is_none();
    let addrs = match by_name {
        true => Vec::new(),
        false => match addresses(target, ctx, &mut phases, start).await {
            Ok(a) => a,
            Err(f) => return ProbeOutcome::failed(f, phases, start.elapsed()),
        },
    };
    let default = crate::config::HttpCheck {
        host: target.host.clone(),
        path: "/".to_string(),
    };
    let check = target.http.as_deref().unwrap_or(&default);
    let t = Instant::now();
    let result = http::redirect_via(
        &addrs,
        target.port,
        &check.host,
        &check.path,
        proxy,
        ctx.deadline,
        connect::System(target.ip_protocol),
    )
    .await;
    phases.connect = Some(t.elapsed());
    match result {
        Err(e) => ProbeOutcome::failed(
            Failure::new(e.reason(), e.to_string()),
            phases,
            start.elapsed(),
        ),
        Ok(facts) => {
            let failure = (!facts.to_https).then(|| {
                let to = facts
                    .location
                    .as_deref()
                    .map_or(String::new(), |l| format!(" (to {l})"));
                Failure::new(
                    FailureReason::Other,
                    format!("HTTP {} is not a redirect to https{to}", facts.status),
                )
            });
            ProbeOutcome {
                failure,
                redirect: Some(Box::new(facts)),
                ..ProbeOutcome::new(phases, start.elapsed())
            }
        }
    }
}

/// The legacy protocol and weak cipher scan of one address (the first the name resolves to,
/// or the pinned one; through a proxy that resolves names, the name), each ClientHello through
/// the target's proxy and after its STARTTLS upgrade. The chain of the highest accepted version
/// below TLS 1.3 is judged like a probe's: it is what the certificate series show for servers
/// rustls cannot talk to.
async fn scan(target: &Target, ctx: &ProbeCtx) -> ProbeOutcome {
    let start = Instant::now();
    let mut phases = Phases::default();
    let by_name = target.proxy.as_ref().is_some_and(|p| p.resolves_names()) && ctx.pinned.is_none();
    let to = if by_name {
        proxy::Destination::new(&target.host, target.port)
    } else {
        match addresses(target, ctx, &mut phases, start).await {
            Ok(addrs) => match addrs.first() {
                Some(a) => proxy::Destination::Addr(*a),
                None => {
                    let f = Failure::new(FailureReason::DnsError, "no address to scan");
                    return ProbeOutcome::failed(f, phases, start.elapsed());
                }
            },
            Err(f) => return ProbeOutcome::failed(f, phases, start.elapsed()),
        }
    };
    let name = target.server_name.to_str();
    let route = legacy::Route {
        proxy: target.proxy.clone(),
        starttls: target.starttls,
        server_name: name.to_string(),
        ip_protocol: target.ip_protocol,
    };
    let scanned = legacy::scan_via(to, route, Some(&name), ctx.deadline, SCAN_PARALLEL).await;
    let mut result = match scanned {
        Ok(result) => result,
        Err(e) => {
            let f = Failure::new(e.reason(), e.to_string());
            return ProbeOutcome::failed(f, phases, start.elapsed());
        }
    };
    // Judged like a probe's chain (reusing an assessment of the same bytes, `tls::cache`); the
    // DER is not kept past this.
    let chain = result.legacy_chain.take().map(|chain| {
        Arc::new(cache::judge(
            &chain,
            &target.material.roots,
            &target.server_name,
            rustls_pki_types::UnixTime::now(),
        ))
    });
    ProbeOutcome {
        chain,
        scan: Some(Box::new(result)),
        ..ProbeOutcome::new(phases, start.elapsed())
    }
}

/// The addresses a prober connects to: the pinned one, or the target's resolved ones (the
/// `resolve` phase is timed either way).
pub(crate) async fn addresses(
    target: &Target,
    ctx: &ProbeCtx,
    phases: &mut Phases,
    start: Instant,
) -> Result<Vec<SocketAddr>, Failure> {
    match ctx.pinned {
        Some((addr, took)) => {
            phases.resolve = Some(took);
            Ok(vec![addr])
        }
        None => {
            let got = resolve(target, ctx.deadline).await;
            phases.resolve = Some(start.elapsed());
            got
        }
    }
}

/// Maps an I/O error (possibly wrapping a rustls error) onto a failure reason.
pub(crate) fn classify(e: &io::Error, client_auth_requested: bool) -> FailureReason {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return classify_tls(tls, client_auth_requested);
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => FailureReason::ConnectionRefused,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => FailureReason::ConnectionReset,
        io::ErrorKind::UnexpectedEof => FailureReason::UnexpectedEof,
        io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::AddrNotAvailable => FailureReason::NetworkUnreachable,
        io::ErrorKind::TimedOut => FailureReason::ConnectTimeout,
        _ => FailureReason::Other,
    }
}

/// Maps a rustls error onto a failure reason. rustls enums are non-exhaustive: the catch-all
/// arms keep new variants classified.
pub(crate) fn classify_tls(e: &rustls::Error, client_auth_requested: bool) -> FailureReason {
    use rustls::{Error as E, InvalidMessage as M, PeerIncompatible as P};
    match e {
        // Record-layer nonsense: the peer is not speaking TLS at all.
        E::InvalidMessage(
            M::InvalidContentType
            | M::UnknownProtocolVersion
            | M::MessageTooLarge
            | M::InvalidEmptyPayload,
        ) => FailureReason::NotTls,
        E::AlertReceived(AlertDescription::ProtocolVersion) => FailureReason::ProtocolVersion,
        E::AlertReceived(a) if client_auth_requested && rejects_client_cert(*a) => {
            FailureReason::ClientCertificateRejected
        }
        E::PeerIncompatible(
            P::ServerDoesNotSupportTls12Or13
            | P::ServerTlsVersionIsDisabledByOurConfig
            | P::SupportedVersionsExtensionRequired
            | P::Tls12NotOffered
            | P::Tls12NotOfferedOrEnabled,
        ) => FailureReason::ProtocolVersion,
        E::AlertReceived(_)
        | E::PeerIncompatible(_)
        | E::PeerMisbehaved(_)
        | E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
        | E::NoCertificatesPresented
        | E::DecryptError => FailureReason::HandshakeFailure,
        _ => FailureReason::Other,
    }
}

/// Alerts a server sends when it refuses (or did not get) our client certificate.
fn rejects_client_cert(a: AlertDescription) -> bool {
    matches!(
        a,
        AlertDescription::HandshakeFailure
            | AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired
            | AlertDescription::DecryptError
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(e: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn plain_http_reply_is_not_tls() {
        let e = wrapped(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert_eq!(classify(&e, false), FailureReason::NotTls);
    }

    #[test]
    fn certificate_required_alert_is_client_certificate_rejected_only_when_asked() {
        let e = wrapped(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired,
        ));
        assert_eq!(classify(&e, true), FailureReason::ClientCertificateRejected);
        assert_eq!(classify(&e, false), FailureReason::HandshakeFailure);
    }

    #[test]
    fn protocol_version_alert_is_protocol_version() {
        let e = wrapped(rustls::Error::AlertReceived(
            AlertDescription::ProtocolVersion,
        ));
        assert_eq!(classify(&e, false), FailureReason::ProtocolVersion);
    }

    #[test]
    fn io_kinds_map_to_reasons() {
        let k = |kind| classify(&io::Error::from(kind), false);
        assert_eq!(
            k(io::ErrorKind::ConnectionRefused),
            FailureReason::ConnectionRefused
        );
        assert_eq!(
            k(io::ErrorKind::ConnectionReset),
            FailureReason::ConnectionReset
        );
        assert_eq!(
            k(io::ErrorKind::UnexpectedEof),
            FailureReason::UnexpectedEof
        );
        assert_eq!(k(io::ErrorKind::Other), FailureReason::Other);
    }
}
