//! Authority Information Access (RFC 5280 §4.2.2.1) for chasing a missing issuer: the
//! `caIssuers` URLs a certificate names, and the certificates in what such a URL serves (one
//! DER certificate, PEM, or a certs-only PKCS#7 `.p7c` bundle, RFC 5280 §4.2.2.1 / RFC 5652).
//!
//! Pure: fetching (HTTP, bounds, cache) is `probe::aia`'s; validating the completed chain is
//! `verifier::judge`'s.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::tls::der;

/// Certificates read from one answer at most.
pub const MAX_ISSUERS: usize = 8;

/// DER contents of the OID of PKCS#7 signedData, 1.2.840.113549.1.7.2.
const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];

/// The `caIssuers` URLs of a certificate, in the order it lists them (none when it has no AIA
/// extension or does not parse).
pub fn ca_issuers(cert: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(cert) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for desc in &aia.accessdescs {
                if desc.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS {
                    if let GeneralName::URI(uri) = &desc.access_location {
                        urls.push((*uri).to_string());
                    }
                }
            }
        }
    }
    urls
}

/// The certificates in a `caIssuers` answer: PEM (every CERTIFICATE block), a certs-only
/// PKCS#7 SignedData (its `certificates`), or one DER certificate. At most `MAX_ISSUERS`.
pub fn parse_issuers(body: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let trimmed = body.trim_ascii_start();
    let certs: Vec<CertificateDer<'static>> = if trimmed.starts_with(b"-----BEGIN") {
        CertificateDer::pem_slice_iter(trimmed)
            .take(MAX_ISSUERS + 1)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("the PEM does not parse: {e}"))?
    } else if let Some(certs) = pkcs7_certs(body)? {
        certs
    } else {
        vec![CertificateDer::from(body.to_vec())]
    };
    if certs.is_empty() {
        return Err("it holds no certificate".to_string());
    }
    if certs.len() > MAX_ISSUERS {
        return Err(format!("it holds more than {MAX_ISSUERS} certificates"));
    }
    for (i, c) in certs.iter().enumerate() {
        X509Certificate::from_der(c.as_ref())
            .map_err(|e| format!("certificate {} in it does not parse: {e}", i + 1))?;
    }
    Ok(certs)
}

/// The certificates of a PKCS#7 ContentInfo holding SignedData; `None` when `body` is not one.
fn pkcs7_certs(body: &[u8]) -> Result<Option<Vec<CertificateDer<'static>>>, String> {
    let Some(info) = der::only(body, der::SEQUENCE) else {
        return Ok(None);
    };
    let Some(parts) = der::elements(info, 2) else {
        return Ok(None);
    };
    let [oid, content] = parts.as_slice() else {
        return Ok(None);
    };
    if oid.tag != der::OID || oid.contents != OID_SIGNED_DATA {
        return Ok(None);
    }
    let bad = || "the PKCS#7 SignedData is malformed".to_string();
    if content.tag != 0xa0 {
        return Err(bad());
    }
    let signed = der::only(content.contents, der::SEQUENCE).ok_or_else(bad)?;
    let fields = der::elements(signed, 8).ok_or_else(bad)?;
    // version, digestAlgorithms, encapContentInfo, then [0] IMPLICIT certificates.
    let Some(set) = fields.iter().skip(3).find(|f| f.tag == 0xa0) else {
        return Err("the PKCS#7 bundle holds no certificates".to_string());
    };
    let certs = der::elements(set.contents, MAX_ISSUERS).ok_or_else(|| {
        format!("the PKCS#7 bundle is malformed or holds more than {MAX_ISSUERS} certificates")
    })?;
    Ok(Some(
        certs
            .iter()
            .filter(|c| c.tag == der::SEQUENCE)
            .map(|c| CertificateDer::from(c.raw.to_vec()))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, CustomExtension, KeyPair};

    fn cert(aia: Option<&str>) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        if let Some(url) = aia {
            p.custom_extensions.push(aia_extension(url));
        }
        p.self_signed(&key).unwrap().der().to_vec()
    }

    /// AuthorityInfoAccess with one caIssuers URI.
    pub(crate) fn aia_extension(url: &str) -> CustomExtension {
        let method = der::encode(der::OID, &[0x2b, 6, 1, 5, 5, 7, 48, 2]);
        let location = der::encode(0x86, url.as_bytes());
        let desc = der::encode(der::SEQUENCE, &[method, location].concat());
        CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 1],
            der::encode(der::SEQUENCE, &desc),
        )
    }

    #[test]
    fn ca_issuers_urls_are_read_from_the_aia_extension() {
        assert_eq!(
            ca_issuers(&cert(Some("http://127.0.0.1:1/ca.der"))),
            vec!["http://127.0.0.1:1/ca.der"]
        );
        assert!(ca_issuers(&cert(None)).is_empty());
        assert!(ca_issuers(b"junk").is_empty());
    }

    #[test]
    fn der_pem_and_pkcs7_answers_give_their_certificates() {
        let (a, b) = (cert(None), cert(None));
        assert_eq!(
            parse_issuers(&a).unwrap(),
            vec![CertificateDer::from(a.clone())]
        );
        let pem = format!(
            "\n-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &b)
        );
        assert_eq!(
            parse_issuers(pem.as_bytes()).unwrap(),
            vec![CertificateDer::from(b.clone())]
        );
        // A degenerate SignedData, as `openssl crl2pkcs7 -nocrl` writes one.
        let signed = der::encode(
            der::SEQUENCE,
            &[
                der::encode(0x02, &[1]),
                der::encode(0x31, &[]),
                der::encode(
                    der::SEQUENCE,
                    &der::encode(der::OID, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 7, 1]),
                ),
                der::encode(0xa0, &[a.clone(), b.clone()].concat()),
                der::encode(0x31, &[]),
            ]
            .concat(),
        );
        let p7 = der::encode(
            der::SEQUENCE,
            &[
                der::encode(der::OID, OID_SIGNED_DATA),
                der::encode(0xa0, &signed),
            ]
            .concat(),
        );
        assert_eq!(
            parse_issuers(&p7).unwrap(),
            vec![CertificateDer::from(a), CertificateDer::from(b)]
        );
    }

    #[test]
    fn an_answer_of_more_than_eight_certificates_is_refused() {
        let one = cert(None);
        let block = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &one)
        );
        assert_eq!(
            parse_issuers(block.repeat(MAX_ISSUERS).as_bytes()).map(|c| c.len()),
            Ok(MAX_ISSUERS)
        );
        assert_eq!(
            parse_issuers(block.repeat(MAX_ISSUERS + 1).as_bytes()),
            Err(format!("it holds more than {MAX_ISSUERS} certificates"))
        );
    }

    #[test]
    fn an_answer_that_is_no_certificate_is_refused_in_words() {
        let e = parse_issuers(b"<html>not found</html>").unwrap_err();
        assert!(e.starts_with("certificate 1 in it does not parse"), "{e}");
        assert_eq!(
            parse_issuers(b"-----BEGIN FOO-----\n-----END FOO-----\n").unwrap_err(),
            "it holds no certificate"
        );
    }
}
