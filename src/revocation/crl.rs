//! Certificate revocation lists (RFC 5280 §5): parse a DER CRL, verify it is signed by the
//! certificate's issuer and current, and keep the serials it revokes.
//!
//! The signature is verified by `tls::ocsp::verify_signed`, with the algorithms chain
//! validation accepts. Only complete CRLs issued by the certificate's issuer itself are
//! understood: delta CRLs and indirect CRLs (another issuer's, `cRLIssuer`) are not merged, and
//! an issuing distribution point is not matched against the certificate's (the URL asked is the
//! one the certificate names). Fetching is `fetch`'s, caching `cache`'s.

use std::collections::HashMap;

use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::text;
use crate::tls::ocsp::{self, Issuer, MAX_CLOCK_SKEW_SECS};

/// A verified, current CRL: what it revokes and when it is next updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Revoked {
    /// Serial content octets → revocation time (Unix seconds).
    serials: HashMap<Vec<u8>, i64>,
    pub(crate) next_update: Option<i64>,
}

impl Revoked {
    /// The revocation time of the certificate with this serial (content octets), if listed.
    pub(crate) fn revoked_at(&self, serial: &[u8]) -> Option<i64> {
        self.serials.get(serial).copied()
    }
}

/// Why a CRL tells us nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CrlError {
    #[error("malformed CRL: {0}")]
    Malformed(String),
    #[error("the CRL is issued by {found}, not by the certificate's issuer")]
    WrongIssuer { found: String },
    #[error("the CRL's signature does not verify with the issuer's key: {0}")]
    BadSignature(String),
    #[error("the CRL expired: its nextUpdate was {}", text::rfc3339(*.0))]
    Expired(i64),
    #[error("the CRL's thisUpdate {} is in the future", text::rfc3339(*.0))]
    NotYetValid(i64),
}

/// Parses `der`, checks it is issued and signed by `issuer` and current at `now` (Unix
/// seconds, with `MAX_CLOCK_SKEW_SECS` of slack on thisUpdate).
pub(crate) fn parse(der: &[u8], issuer: &Issuer, now: i64) -> Result<Revoked, CrlError> {
    let (rest, crl) =
        CertificateRevocationList::from_der(der).map_err(|e| CrlError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CrlError::Malformed(format!(
            "{} trailing bytes after the CRL",
            rest.len()
        )));
    }
    if crl.issuer().as_raw() != issuer.name() {
        return Err(CrlError::WrongIssuer {
            found: crl.issuer().to_string(),
        });
    }
    ocsp::verify_signed(der, issuer).map_err(CrlError::BadSignature)?;
    let this_update = crl.last_update().timestamp();
    if this_update > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(CrlError::NotYetValid(this_update));
    }
    let next_update = crl.next_update().map(|t| t.timestamp());
    if let Some(next) = next_update.filter(|next| *next < now) {
        return Err(CrlError::Expired(next));
    }
    let serials = crl
        .iter_revoked_certificates()
        .map(|r| (r.raw_serial().to_vec(), r.revocation_date.timestamp()))
        .collect();
    Ok(Revoked {
        serials,
        next_update,
    })
}

#[cfg(test)]
mod tests {
    use rcgen::{
        CertificateParams, CertificateRevocationListParams, IsCa, Issuer as RcIssuer, KeyPair,
        RevokedCertParams, SerialNumber,
    };

    use super::*;

    const NOW: i64 = 1_800_000_000;

    struct Ca {
        der: Vec<u8>,
        issuer: RcIssuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        Ca {
            der: cert.der().to_vec(),
            issuer: RcIssuer::new(params, key),
        }
    }

    fn time(unix: i64) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(unix).expect("time")
    }

    fn crl(ca: &Ca, this: i64, next: i64, revoked: &[u8]) -> Vec<u8> {
        let params = CertificateRevocationListParams {
            this_update: time(this),
            next_update: time(next),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from_slice(revoked),
                revocation_time: time(this - 60),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params.signed_by(&ca.issuer).expect("crl").der().to_vec()
    }

    fn issuer(ca: &Ca) -> Issuer {
        Issuer::from_cert(&ca.der).expect("issuer")
    }

    #[test]
    fn listed_serial_is_revoked_and_others_are_not() {
        let ca = ca("ca");
        let got = parse(
            &crl(&ca, NOW - 3600, NOW + 3600, &[0x12, 0x34]),
            &issuer(&ca),
            NOW,
        )
        .expect("valid");
        assert_eq!(got.revoked_at(&[0x12, 0x34]), Some(NOW - 3660));
        assert_eq!(got.revoked_at(&[0x12, 0x35]), None);
        assert_eq!(got.next_update, Some(NOW + 3600));
    }

    #[test]
    fn crl_of_another_issuer_is_refused() {
        let (a, b) = (ca("a"), ca("b"));
        let got = parse(&crl(&b, NOW - 3600, NOW + 3600, &[1]), &issuer(&a), NOW);
        assert_eq!(
            got,
            Err(CrlError::WrongIssuer {
                found: "CN=b".to_string()
            })
        );
    }

    #[test]
    fn crl_signed_by_another_key_is_a_bad_signature() {
        let a = ca("same");
        let impostor = ca("same");
        let got = parse(
            &crl(&impostor, NOW - 3600, NOW + 3600, &[1]),
            &issuer(&a),
            NOW,
        );
        assert_eq!(
            got,
            Err(CrlError::BadSignature("bad signature".to_string()))
        );
    }

    #[test]
    fn crl_past_its_next_update_is_expired() {
        let ca = ca("ca");
        let got = parse(&crl(&ca, NOW - 7200, NOW - 3600, &[1]), &issuer(&ca), NOW);
        assert_eq!(got, Err(CrlError::Expired(NOW - 3600)));
        assert_eq!(
            CrlError::Expired(NOW - 3600).to_string(),
            "the CRL expired: its nextUpdate was 2027-01-15T07:00:00Z"
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let ca = ca("ca");
        for bytes in [&b""[..], b"\x30\x03\x02\x01\x01", b"not a crl"] {
            assert!(matches!(
                parse(bytes, &issuer(&ca), NOW),
                Err(CrlError::Malformed(_))
            ));
        }
    }
}
