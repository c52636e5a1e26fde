//! One probe contract for every kind: `probe(&Target, &ProbeCtx) -> ProbeOutcome`.
//!
//! The scheduler decides when to probe and bounds the whole probe by the target's timeout; the
//! probers reach their peers through `connect` (one resolver and connect loop for every kind)
//! and classify what went wrong into `FailureReason` through `classify`.

pub mod connect;
pub mod http;
pub mod legacy;
pub mod outcome;
pub mod starttls;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustls::AlertDescription;
use tokio::time::Instant;

use crate::config::{ProbeKind, Target};
use outcome::{Failure, FailureReason, ProbeOutcome};

/// What a probe gets from the scheduler.
#[derive(Debug, Clone)]
pub struct ProbeCtx {
    /// The probe must have finished by then (start + target timeout).
    pub deadline: Instant,
    /// Probe this address instead of resolving (`resolve: all`), with the time the shared
    /// resolution took.
    pub pinned: Option<(SocketAddr, Duration)>,
}

impl ProbeCtx {
    /// A context whose deadline is `timeout` from now.
    pub fn with_timeout(timeout: Duration) -> Self {
        ProbeCtx {
            deadline: Instant::now() + timeout,
            pinned: None,
        }
    }
}

/// Resolves a target's host (an IP literal as it is) by 'deadline', its preferred address
/// family first (see `connect::resolve`).
pub async fn resolve(target: &Target, deadline: Instant) -> Result<Vec<SocketAddr>, Failure> {
    let lookup = connect::System(target.ip_protocol);
    Ok(connect::resolve(&lookup, &target.host, target.port, deadline).await?)
}

/// Probes `target` once, never panicking and never outliving `ctx.deadline` by more than the
/// time it takes to notice it.
pub async fn probe(target: &Target, ctx: &ProbeCtx) -> ProbeOutcome {
    match target.kind {
        ProbeKind::Tls => tls::probe(target, ctx).await,
        ProbeKind::HttpRedirect => redirect(target, ctx).await,
    }
}

/// The plain-HTTP side of a site: does GET answer with a redirect (chain) to `https://`?
/// Succeeds when it does; a site that serves content (or redirects elsewhere) over plain HTTP
/// fails with reason `other`.
async fn redirect(target: &Target, ctx: &ProbeCtx) -> ProbeOutcome {
    let start = Instant::now();
    let mut phases = outcome::Phases::default();
    let addrs = match ctx.pinned {
        Some((addr, took)) => {
            phases.resolve = Some(took);
            Ok(vec![addr])
        }
        None => {
            let got = resolve(target, ctx.deadline).await;
            phases.resolve = Some(start.elapsed());
            got
        }
    };
    let addrs = match addrs {
        Ok(a) => a,
        Err(f) => return ProbeOutcome::failed(f, phases, start.elapsed()),
    };
    let default = crate::config::HttpCheck {
        host: target.host.clone(),
        path: "/".to_string(),
    };
    let check = target.http.as_ref().unwrap_or(&default);
    let t = Instant::now();
    let result = http::redirect(
        &addrs,
        &check.host,
        &check.path,
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
            let mut out = ProbeOutcome::failed(
                Failure::new(FailureReason::Other, ""),
                phases,
                start.elapsed(),
            );
            out.failure = failure;
            out.redirect = Some(facts);
            out
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
