//! Sentences for the errors rustls and webpki report, for failure details a person reads.
//!
//! Both libraries' `Display` prints `Debug` of their enums (`CertExpired { time: UnixTime(…),
//! … }`, `received fatal alert: HandshakeFailure`); these functions say the same in words, with
//! RFC 3339 dates. Variants we do not know by name (both enums are non-exhaustive) fall back to
//! their identifier in words, never to a `Debug` dump.

use std::io;

use rustls::{AlertDescription, PeerIncompatible};
use rustls_pki_types::{ServerName, UnixTime};

use crate::text;

/// Why webpki rejected a chain, as a sentence. `now` is the validation time, for "… ago".
pub fn path_error(e: &webpki::Error, now: UnixTime) -> String {
    use webpki::Error as E;
    let now = now.as_secs() as i64;
    match e {
        E::CertExpired { not_after, .. } => format!(
            "certificate expired {}",
            text::when(not_after.as_secs() as i64, now)
        ),
        E::CertNotValidYet { not_before, .. } => format!(
            "certificate is not valid until {}",
            text::when(not_before.as_secs() as i64, now)
        ),
        E::CertNotValidForName(ctx) => {
            let presented: Vec<String> = ctx.presented.iter().map(|n| bare_name(n)).collect();
            name_mismatch(&ctx.expected, &presented)
        }
        E::UnknownIssuer => {
            "certificate is not issued by a trusted CA (no path to a trust anchor: an unknown issuer or a missing intermediate)".to_string()
        }
        E::CaUsedAsEndEntity => {
            "the server's certificate is a CA certificate, not a server certificate".to_string()
        }
        E::EndEntityUsedAsCa => {
            "a server certificate is used as a CA to issue another certificate".to_string()
        }
        E::CertRevoked => "certificate has been revoked".to_string(),
        E::RequiredEkuNotFoundContext(_) => {
            "certificate is not valid for TLS server authentication (extended key usage)"
                .to_string()
        }
        E::NameConstraintViolation => {
            "certificate violates its issuer's name constraints".to_string()
        }
        E::PathLenConstraintViolated => {
            "chain is longer than an issuer's path length constraint allows".to_string()
        }
        E::InvalidSignatureForPublicKey => {
            "a certificate's signature does not verify with its issuer's key".to_string()
        }
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "a certificate is signed with an algorithm we do not accept".to_string()
        }
        E::BadDer | E::BadDerTime | E::TrailingData(_) => {
            "a certificate is not valid DER".to_string()
        }
        E::UnsupportedCertVersion => "a certificate is not an X.509 v3 certificate".to_string(),
        E::UnsupportedCriticalExtension => {
            "a certificate has a critical extension we do not understand".to_string()
        }
        E::MaximumPathDepthExceeded
        | E::MaximumPathBuildCallsExceeded
        | E::MaximumSignatureChecksExceeded
        | E::MaximumNameConstraintComparisonsExceeded => {
            "chain is too long or too complex to verify".to_string()
        }
        other => format!("chain did not verify ({})", ident_words(other)),
    }
}

/// "certificate is valid for a.example, b.example, not wrong.example".
pub fn name_mismatch(expected: &ServerName<'_>, presented: &[String]) -> String {
    let expected = expected.to_str();
    if presented.is_empty() {
        format!("certificate names no host (no DNS or IP subject alternative name), so it is not valid for {expected}")
    } else {
        format!(
            "certificate is valid for {}, not {expected}",
            presented.join(", ")
        )
    }
}

/// webpki renders presented names with `Debug` (`DnsName("a.example")`, `IpAddress(…)`):
/// the name itself, or the text unchanged when it has no such wrapper.
fn bare_name(presented: &str) -> String {
    match (presented.find("(\""), presented.rfind("\")")) {
        (Some(start), Some(end)) if start + 2 <= end => presented
            .get(start + 2..end)
            .unwrap_or(presented)
            .to_string(),
        _ => presented.to_string(),
    }
}

/// A handshake error (an I/O error, possibly wrapping a rustls one), as a sentence.
pub fn handshake_error(e: &io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls_error(tls),
        None => match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                "the server closed the connection during the TLS handshake".to_string()
            }
            io::ErrorKind::ConnectionReset => {
                "the server reset the connection during the TLS handshake".to_string()
            }
            _ => format!("the TLS handshake failed: {e}"),
        },
    }
}

/// A rustls error, as a sentence.
pub fn tls_error(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::AlertReceived(a) => format!(
            "the server refused the handshake with a fatal \"{}\" alert",
            alert(*a)
        ),
        E::InvalidMessage(m) => format!("the server's reply is not valid TLS ({})", ident_words(m)),
        E::PeerIncompatible(p) => incompatible(p),
        E::PeerMisbehaved(p) => format!("the server broke the TLS protocol ({})", ident_words(p)),
        E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server sent a TLS message out of order".to_string()
        }
        E::NoCertificatesPresented => "the server sent no certificate".to_string(),
        E::DecryptError => "the server's messages could not be decrypted".to_string(),
        E::PeerSentOversizedRecord => {
            "the server sent a TLS record over the size limit".to_string()
        }
        E::General(m) => format!("the TLS handshake failed: {m}"),
        other => format!("the TLS handshake failed ({})", ident_words(other)),
    }
}

/// An alert's name as RFC 8446 writes it, in words: `handshake failure`, `protocol version`.
pub fn alert(a: AlertDescription) -> String {
    match a {
        AlertDescription::UnknownCA => "unknown CA".to_string(),
        other => ident_words(&other),
    }
}

fn incompatible(p: &PeerIncompatible) -> String {
    use PeerIncompatible as P;
    match p {
        P::ServerDoesNotSupportTls12Or13 | P::Tls12NotOffered | P::Tls12NotOfferedOrEnabled => {
            "the server supports neither TLS 1.2 nor TLS 1.3".to_string()
        }
        P::SupportedVersionsExtensionRequired => {
            "the server offered no TLS version we accept (TLS 1.2 or 1.3)".to_string()
        }
        P::NoCipherSuitesInCommon => {
            "the server and the exporter have no cipher suite in common".to_string()
        }
        P::NoKxGroupsInCommon => {
            "the server and the exporter have no key-exchange group in common".to_string()
        }
        P::NoSignatureSchemesInCommon => {
            "the server and the exporter have no signature scheme in common".to_string()
        }
        other => format!(
            "the server is incompatible with the exporter ({})",
            ident_words(other)
        ),
    }
}

/// The variant name of a library enum in words (its `Debug` up to the first field).
fn ident_words(v: &impl std::fmt::Debug) -> String {
    let debug = format!("{v:?}");
    let ident = debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default();
    text::words(ident)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
    }

    #[test]
    fn expired_reads_as_a_sentence_with_a_date() {
        let e = webpki::Error::CertExpired {
            time: at(1_796_154_476),
            not_after: at(1_709_251_200),
        };
        assert_eq!(
            path_error(&e, at(1_796_154_476)),
            "certificate expired 2024-03-01T00:00:00Z (1,005 days 19 hours ago)"
        );
    }

    #[test]
    fn presented_names_lose_their_debug_wrapper() {
        assert_eq!(bare_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(bare_name("10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn name_mismatch_names_both_sides() {
        let expected = ServerName::try_from("wrong-host.example").expect("name");
        assert_eq!(
            name_mismatch(&expected, &["other-host.example".to_string()]),
            "certificate is valid for other-host.example, not wrong-host.example"
        );
    }

    #[test]
    fn alerts_and_unknown_variants_are_words_not_debug() {
        let e = rustls::Error::AlertReceived(AlertDescription::HandshakeFailure);
        assert_eq!(
            tls_error(&e),
            "the server refused the handshake with a fatal \"handshake failure\" alert"
        );
        let e = rustls::Error::AlertReceived(AlertDescription::UnknownCA);
        assert!(tls_error(&e).contains("\"unknown CA\""));
        let s = path_error(&webpki::Error::CaUsedAsEndEntity, at(0));
        assert!(!s.contains("CaUsed"), "{s}");
        let s = tls_error(&rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert_eq!(
            s,
            "the server's reply is not valid TLS (invalid content type)"
        );
    }
}
