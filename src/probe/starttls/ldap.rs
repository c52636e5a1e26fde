//! LDAP: the StartTLS extended operation (RFC 4511 4.14, RFC 4513 3), BER by hand.
//!
//! Reading one BER TLV off the wire within the budget is `conn`'s; this file encodes the
//! ExtendedRequest and decodes the ExtendedResponse inside the LDAPMessage it gets.

use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::{quote, Conn};
use super::UpgradeError;

/// RFC 4511 4.14.1: the StartTLS ExtendedRequest, message id 1, BER by hand:
/// LDAPMessage SEQUENCE { messageID 1, [APPLICATION 23] { [0] "1.3.6.1.4.1.1466.20037" } }.
const LDAP_STARTTLS_OID: &[u8] = b"1.3.6.1.4.1.1466.20037";

/// RFC 4511 4.14: the StartTLS ExtendedRequest, then an ExtendedResponse with resultCode 0.
pub(super) async fn ldap<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<'_, S>,
) -> Result<(), UpgradeError> {
    let oid_len = LDAP_STARTTLS_OID.len() as u8;
    let mut req = vec![0x30, 3 + 2 + 2 + oid_len, 0x02, 0x01, 0x01];
    req.extend_from_slice(&[0x77, 2 + oid_len, 0x80, oid_len]);
    req.extend_from_slice(LDAP_STARTTLS_OID);
    c.send(&req).await?;

    let (tag, message) = c.ber_tlv().await?;
    if tag != 0x30 {
        return Err(UpgradeError::Protocol(format!(
            "ldap server answered with BER tag {tag:#04x}, not an LDAPMessage"
        )));
    }
    let resp = LdapResponse::parse(&message).ok_or_else(|| {
        UpgradeError::Protocol("ldap server's answer is not an ExtendedResponse".into())
    })?;
    match (resp.message_id, resp.result_code) {
        (1, 0) => Ok(()),
        // Message id 0 is an unsolicited notification, e.g. Notice of Disconnection.
        (0 | 1, code) => Err(UpgradeError::Refused(format!(
            "ldap StartTLS answered resultCode {code} ({}) {}",
            ldap_result_name(code),
            quote(&resp.diagnostic)
        ))),
        (id, _) => Err(UpgradeError::Protocol(format!(
            "ldap server answered message id {id}, we sent 1"
        ))),
    }
}

/// The parts of an LDAP ExtendedResponse we look at.
struct LdapResponse {
    message_id: u64,
    result_code: u64,
    diagnostic: String,
}

impl LdapResponse {
    /// Parses the contents of an LDAPMessage SEQUENCE holding an ExtendedResponse
    /// ([APPLICATION 24] { resultCode ENUMERATED, matchedDN, diagnosticMessage, ... }).
    fn parse(message: &[u8]) -> Option<Self> {
        let (tag, id, rest) = ber_split(message)?;
        if tag != 0x02 {
            return None;
        }
        let message_id = ber_uint(id)?;
        let (tag, op, _controls) = ber_split(rest)?;
        if tag != 0x78 {
            return None;
        }
        let (tag, code, rest) = ber_split(op)?;
        if tag != 0x0a {
            return None;
        }
        let result_code = ber_uint(code)?;
        let diagnostic = ber_split(rest)
            .and_then(|(_, _matched_dn, rest)| ber_split(rest))
            .map(|(_, diag, _)| String::from_utf8_lossy(diag).into_owned())
            .unwrap_or_default();
        Some(LdapResponse {
            message_id,
            result_code,
            diagnostic,
        })
    }
}

/// Splits one BER TLV (single-byte tag, definite length) off the front of `b`.
fn ber_split(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (len, b) = ber_length(b)?;
    let (value, rest) = b.split_at_checked(len)?;
    Some((tag, value, rest))
}

/// A BER definite length (short form, or long form of up to 4 bytes) and what follows it.
fn ber_length(b: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = b.split_first()?;
    if first < 0x80 {
        return Some((usize::from(first), rest));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let (digits, rest) = rest.split_at_checked(n)?;
    let len = digits
        .iter()
        .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
    Some((len, rest))
}

/// A small non-negative BER INTEGER / ENUMERATED.
fn ber_uint(b: &[u8]) -> Option<u64> {
    if b.len() > 8 || b.first().is_none_or(|first| first & 0x80 != 0) {
        return None;
    }
    Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

fn ldap_result_name(code: u64) -> &'static str {
    match code {
        1 => "operationsError",
        2 => "protocolError",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => "see RFC 4511 4.1.9",
    }
}

#[cfg(test)]
mod tests {
    use crate::config::StartTls;
    use crate::probe::starttls::script::Step::{Expect, Send};
    use crate::probe::starttls::script::{protocol, refused, run};

    const LDAP_REQ: &[u8] = b"\x30\x1d\x02\x01\x01\x77\x18\x80\x161.3.6.1.4.1.1466.20037";

    #[tokio::test]
    async fn ldap_upgrades_on_success() {
        run(
            StartTls::Ldap,
            vec![
                Expect(LDAP_REQ),
                // resultCode success, empty DN and message, responseName the StartTLS OID.
                Send(b"\x30\x24\x02\x01\x01\x78\x1f\x0a\x01\x00\x04\x00\x04\x00\x8a\x161.3.6.1.4.1.1466.20037"),
            ],
        )
        .await
        .expect("upgrade");
    }

    #[tokio::test]
    async fn ldap_long_form_lengths_parse() {
        run(
            StartTls::Ldap,
            vec![
                Expect(LDAP_REQ),
                Send(
                    b"\x30\x84\x00\x00\x00\x0d\x02\x01\x01\x78\x81\x07\x0a\x01\x00\x04\x00\x04\x00",
                ),
            ],
        )
        .await
        .expect("upgrade");
    }

    #[tokio::test]
    async fn ldap_protocol_error_is_refused_with_diagnostic() {
        let m = refused(
            run(
                StartTls::Ldap,
                vec![
                    Expect(LDAP_REQ),
                    Send(b"\x30\x1a\x02\x01\x01\x78\x15\x0a\x01\x34\x04\x00\x04\x0eno TLS, really"),
                ],
            )
            .await,
        );
        assert!(m.contains("52 (unavailable)"), "{m}");
    }

    #[tokio::test]
    async fn ldap_garbage_is_protocol_error() {
        protocol(
            run(
                StartTls::Ldap,
                vec![Expect(LDAP_REQ), Send(b"\x16\x03\x01\x00\x00")],
            )
            .await,
        );
        protocol(
            run(
                StartTls::Ldap,
                vec![Expect(LDAP_REQ), Send(b"\x30\x80\x00\x00")],
            )
            .await,
        );
        protocol(
            run(
                StartTls::Ldap,
                vec![Expect(LDAP_REQ), Send(b"\x30\x05\x02\x01\x01\x78\x05")],
            )
            .await,
        );
    }
}
