//! The verdict of a probe: a closed set of failure reasons and a failure with its detail.
//!
//! The lowest layer: `tls/` (chain verdicts), `probe/` (every prober) and `state`/`metrics`
//! (rendering) all use these types, and this module uses none of theirs. Only
//! `FailureReason::as_label` strings ever become `reason` label values.

/// Why a probe failed. Only these strings ever become `reason` label values. Stored (serde)
/// as the label value.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
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
    /// A certificate of the verified path is revoked (OCSP responder or CRL, `revocation:`).
    Revoked,
    StarttlsRefused,
    ProxyError,
    Other,
}

impl FailureReason {
    /// Every reason, in label order; indexes `ALL` match `index()`.
    pub const ALL: [FailureReason; 22] = [
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
        FailureReason::Revoked,
        FailureReason::StarttlsRefused,
        FailureReason::ProxyError,
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
            FailureReason::Revoked => "revoked",
            FailureReason::StarttlsRefused => "starttls_refused",
            FailureReason::ProxyError => "proxy_error",
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
                | FailureReason::Revoked
        )
    }
}

/// A failure with the human-readable detail that goes to logs and the status page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
