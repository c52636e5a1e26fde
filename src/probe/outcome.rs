//! What one probe found: a closed set of failure reasons plus everything the handshake revealed.
//!
//! The scheduler stores the latest `ProbeOutcome` per target; the metrics collector and the status
//! page only read it.

use std::time::{Duration, SystemTime};

use crate::probe::http::{HttpFacts, RedirectFacts};
use crate::tls::cert::CertFacts;
use crate::tls::ocsp::{OcspError, Stapled};

/// Why a probe failed. Only these strings ever become `reason` label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureReason {
    DnsError,
    ConnectionRefused,
    ConnectTimeout,
    NetworkUnreachable,
    HandshakeTimeout,
    ConnectionReset,
    UnexpectedEof,
    NotTls,
    ProtocolVersion,
    HandshakeFailure,
    ClientCertificateRejected,
    Expired,
    NotYetValid,
    UnknownIssuer,
    SelfSigned,
    HostnameMismatch,
    WeakKey,
    BadSignatureAlgorithm,
    StarttlsRefused,
    Other,
}

impl FailureReason {
    /// Every reason, in label order; indexes `ALL` match `index()`.
    pub const ALL: [FailureReason; 20] = [
        FailureReason::DnsError,
        FailureReason::ConnectionRefused,
        FailureReason::ConnectTimeout,
        FailureReason::NetworkUnreachable,
        FailureReason::HandshakeTimeout,
        FailureReason::ConnectionReset,
        FailureReason::UnexpectedEof,
        FailureReason::NotTls,
        FailureReason::ProtocolVersion,
        FailureReason::HandshakeFailure,
        FailureReason::ClientCertificateRejected,
        FailureReason::Expired,
        FailureReason::NotYetValid,
        FailureReason::UnknownIssuer,
        FailureReason::SelfSigned,
        FailureReason::HostnameMismatch,
        FailureReason::WeakKey,
        FailureReason::BadSignatureAlgorithm,
        FailureReason::StarttlsRefused,
        FailureReason::Other,
    ];

    /// The `reason` label value.
    pub fn as_label(self) -> &'static str {
        match self {
            FailureReason::DnsError => "dns_error",
            FailureReason::ConnectionRefused => "connection_refused",
            FailureReason::ConnectTimeout => "connect_timeout",
            FailureReason::NetworkUnreachable => "network_unreachable",
            FailureReason::HandshakeTimeout => "handshake_timeout",
            FailureReason::ConnectionReset => "connection_reset",
            FailureReason::UnexpectedEof => "unexpected_eof",
            FailureReason::NotTls => "not_tls",
            FailureReason::ProtocolVersion => "protocol_version",
            FailureReason::HandshakeFailure => "handshake_failure",
            FailureReason::ClientCertificateRejected => "client_certificate_rejected",
            FailureReason::Expired => "expired",
            FailureReason::NotYetValid => "not_yet_valid",
            FailureReason::UnknownIssuer => "unknown_issuer",
            FailureReason::SelfSigned => "self_signed",
            FailureReason::HostnameMismatch => "hostname_mismatch",
            FailureReason::WeakKey => "weak_key",
            FailureReason::BadSignatureAlgorithm => "bad_signature_algorithm",
            FailureReason::StarttlsRefused => "starttls_refused",
            FailureReason::Other => "other",
        }
    }

    /// Position in `ALL`, for per-reason counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// True for reasons about the certificate chain rather than reaching or talking to the peer.
    pub fn is_chain_problem(self) -> bool {
        matches!(
            self,
            FailureReason::Expired
                | FailureReason::NotYetValid
                | FailureReason::UnknownIssuer
                | FailureReason::SelfSigned
                | FailureReason::HostnameMismatch
                | FailureReason::WeakKey
                | FailureReason::BadSignatureAlgorithm
        )
    }
}

/// A failure with the human-readable detail that goes to logs and the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: FailureReason,
    pub detail: String,
}

impl Failure {
    pub fn new(reason: FailureReason, detail: impl Into<String>) -> Self {
        Failure {
            reason,
            detail: detail.into(),
        }
    }
}

/// Durations of the phases of one probe; a phase not reached is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phases {
    pub resolve: Option<Duration>,
    pub connect: Option<Duration>,
    /// The protocol's STARTTLS dialogue, for `starttls:` targets.
    pub starttls: Option<Duration>,
    pub handshake: Option<Duration>,
}

/// Parameters negotiated by a completed handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// `TLS 1.2` or `TLS 1.3`.
    pub version: &'static str,
    /// IANA cipher suite name.
    pub cipher: String,
    /// IANA key-exchange group name, when the handshake used one.
    pub group: Option<String>,
}

/// The certificates the server sent and what we concluded about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// Every certificate the server sent that parsed, with its depth (0 is the leaf). A
    /// certificate that did not parse is absent here but counted in `sent`.
    pub certs: Vec<(usize, CertFacts)>,
    /// Number of certificates the server sent.
    pub sent: usize,
    /// `None` when the chain is valid for the server name, else why not.
    pub problem: Option<Failure>,
    /// Earliest not-after along the verified path (unix seconds), only for a valid chain.
    pub path_expiry: Option<i64>,
    /// Each certificate sent is issued by the one after it.
    pub order_valid: bool,
    /// The issuer of the last certificate sent is neither among those sent nor a trust anchor:
    /// the server forgot an intermediate.
    pub incomplete: bool,
}

/// Everything one probe found. Produced by a prober, stored by the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    /// `None` on success; otherwise the single reason the probe counts as failed.
    pub failure: Option<Failure>,
    /// A TLS session was established (chain problems not counted).
    pub handshake_ok: bool,
    pub phases: Phases,
    pub duration: Duration,
    pub finished_at: SystemTime,
    pub negotiated: Option<Negotiated>,
    pub chain: Option<Chain>,
    /// The server sent a CertificateRequest.
    pub client_auth_requested: bool,
    /// What the server stapled: `None` when it stapled nothing (or no handshake got that far),
    /// else the verified response or why it could not be used.
    pub ocsp: Option<Result<Stapled, OcspError>>,
    /// The server answered rustls's OCSP request at all (certificates received).
    pub ocsp_checked: bool,
    /// The HTTP GET over the session (`http:` targets): its facts, or why it failed.
    pub http: Option<Result<HttpFacts, String>>,
    /// The plain-HTTP redirect check (`probe: http_redirect` targets).
    pub redirect: Option<RedirectFacts>,
}

impl ProbeOutcome {
    /// A probe that failed before any handshake.
    pub fn failed(failure: Failure, phases: Phases, duration: Duration) -> Self {
        ProbeOutcome {
            failure: Some(failure),
            handshake_ok: false,
            phases,
            duration,
            finished_at: SystemTime::now(),
            negotiated: None,
            chain: None,
            client_auth_requested: false,
            ocsp: None,
            ocsp_checked: false,
            http: None,
            redirect: None,
        }
    }

    pub fn success(&self) -> bool {
        self.failure.is_none()
    }

    pub fn reason(&self) -> Option<FailureReason> {
        self.failure.as_ref().map(|f| f.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_position_in_all() {
        for (i, r) in FailureReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{}", r.as_label());
        }
    }

    #[test]
    fn labels_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in FailureReason::ALL {
            let l = r.as_label();
            assert!(
                l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{l}"
            );
            assert!(seen.insert(l), "duplicate {l}");
        }
    }
}
