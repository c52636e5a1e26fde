//! Facts about one certificate, parsed once with x509-parser from the DER the server sent.
//!
//! Plain facts: the strings a person or an output format reads (subject, issuer, SANs, key,
//! …) and the numbers the policy needs. How they are rendered is `metrics/`' and the status
//! page's business; chain validation lives in `verifier.rs`.

use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    Oid, OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED25519, OID_SIG_ED448,
};
use x509_parser::prelude::FromDer;

/// What we report about one certificate. Stored (serde) without the DER names: they serve the
/// chain checks and the other exporters' name formats on a fresh `/probe`, never a restored
/// outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFacts {
    pub not_before: i64,
    pub not_after: i64,
    pub cn: String,
    pub subject: String,
    pub issuer: String,
    /// Lower-case hex, colon separated, as `openssl x509 -serial` groups it.
    pub serial: String,
    pub fingerprint_sha256: String,
    /// SHA-256 of the SubjectPublicKeyInfo, lower-case hex: the key, whatever certificate
    /// carries it (to tell whether a served leaf is the one in a file, `files`).
    #[serde(default)]
    pub spki_sha256: String,
    /// Comma-joined DNS and IP SANs.
    pub dns_names: String,
    /// E-mail (rfc822Name) SANs, in certificate order.
    #[serde(default)]
    pub emails: Vec<String>,
    /// `RSA 2048`, `ECDSA P-256`, `Ed25519`, …
    pub key: String,
    /// RSA modulus size in bits, for the weak-key policy.
    pub rsa_bits: Option<usize>,
    /// OpenSSL short name, e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA256`.
    pub signature_algorithm: String,
    /// Signed with SHA-1 or MD5 (or older).
    pub weak_signature: bool,
    /// Subject equals issuer.
    pub self_issued: bool,
    /// DER of the subject and issuer Names: for chain-order checks, and for output formats that
    /// render a Name their own way (Go's `pkix.Name`, see `metrics::go_x509`).
    #[serde(skip)]
    pub subject_der: Vec<u8>,
    #[serde(skip)]
    pub issuer_der: Vec<u8>,
}

impl CertFacts {
    /// Trims spare capacity once the chain checks are done: a fleet keeps one of these per
    /// certificate per target. (The DER names stay: a few dozen bytes each, and the only
    /// complete record of a Name's attributes.)
    pub fn compact(&mut self) {
        self.subject_der.shrink_to_fit();
        self.issuer_der.shrink_to_fit();
        self.emails.shrink_to_fit();
        for s in [
            &mut self.cn,
            &mut self.subject,
            &mut self.issuer,
            &mut self.serial,
            &mut self.fingerprint_sha256,
            &mut self.spki_sha256,
            &mut self.dns_names,
            &mut self.key,
            &mut self.signature_algorithm,
        ] {
            s.shrink_to_fit();
        }
    }
}

/// Why a certificate could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("malformed certificate: {0}")]
pub struct MalformedCert(String);

/// Parses one DER certificate. Trailing bytes after the certificate are an error.
pub fn parse(der: &[u8]) -> Result<CertFacts, MalformedCert> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| MalformedCert(e.to_string()))?;
    if !rest.is_empty() {
        return Err(MalformedCert(format!("{} trailing bytes", rest.len())));
    }
    let (key, rsa_bits) = describe_key(&cert);
    let sig_oid = &cert.signature_algorithm.algorithm;
    Ok(CertFacts {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        cn: common_name(&cert),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        fingerprint_sha256: hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref()),
        spki_sha256: hex(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            cert.public_key().raw,
        )
        .as_ref()),
        dns_names: san_names(&cert),
        emails: san_emails(&cert),
        key,
        rsa_bits,
        signature_algorithm: signature_name(sig_oid),
        weak_signature: WEAK_SIGNATURES.contains(&sig_oid.to_id_string().as_str()),
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        subject_der: cert.subject().as_raw().to_vec(),
        issuer_der: cert.issuer().as_raw().to_vec(),
    })
}

/// Signature algorithms whose hash is broken: MD2, MD4, MD5 and SHA-1 with RSA, DSA or ECDSA.
const WEAK_SIGNATURES: [&str; 8] = [
    "1.2.840.113549.1.1.2",
    "1.2.840.113549.1.1.3",
    "1.2.840.113549.1.1.4",
    "1.2.840.113549.1.1.5",
    "1.2.840.10045.4.1",
    "1.2.840.10040.4.3",
    "1.3.14.3.2.29",
    "1.3.14.3.2.25",
];

fn common_name(cert: &X509Certificate) -> String {
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok());
    cn.unwrap_or_default().to_string()
}

/// OpenSSL's short name for a signature algorithm; the OID registry lacks some old ones.
fn signature_name(oid: &Oid) -> String {
    let id = oid.to_id_string();
    let known = match id.as_str() {
        "1.2.840.10045.4.1" => Some("ecdsa-with-SHA1"),
        "1.2.840.10040.4.3" => Some("dsa-with-SHA1"),
        "1.2.840.113549.1.1.2" => Some("md2WithRSAEncryption"),
        "1.2.840.113549.1.1.3" => Some("md4WithRSAEncryption"),
        _ => None,
    };
    match known {
        Some(name) => name.to_string(),
        None => x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
            .map_or(id, str::to_string),
    }
}

fn describe_key(cert: &X509Certificate) -> (String, Option<usize>) {
    let spki = &cert.tbs_certificate.subject_pki;
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_PKCS1_RSAENCRYPTION {
        let bits = rsa_modulus_bits(&spki.subject_public_key.data);
        return (format!("RSA {bits}"), Some(bits));
    }
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        let name = match curve {
            Some(c) if c == OID_EC_P256 => "P-256".to_string(),
            Some(c) if c == OID_NIST_EC_P384 => "P-384".to_string(),
            Some(c) if c == OID_NIST_EC_P521 => "P-521".to_string(),
            Some(c) => c.to_id_string(),
            None => "unknown curve".to_string(),
        };
        return (format!("ECDSA {name}"), None);
    }
    if *alg == OID_SIG_ED25519 {
        return ("Ed25519".to_string(), None);
    }
    if *alg == OID_SIG_ED448 {
        return ("Ed448".to_string(), None);
    }
    (signature_name(alg), None)
}

/// Bit length of the modulus in an RSAPublicKey (SEQUENCE { INTEGER n, INTEGER e }).
fn rsa_modulus_bits(spk: &[u8]) -> usize {
    use x509_parser::der_parser::der::parse_der_sequence;
    let Ok((_, seq)) = parse_der_sequence(spk) else {
        return 0;
    };
    let Some(modulus) = seq.as_sequence().ok().and_then(|items| items.first()) else {
        return 0;
    };
    let Ok(bytes) = modulus.as_slice() else {
        return 0;
    };
    let significant: &[u8] = match bytes.iter().position(|b| *b != 0) {
        Some(first) => bytes.get(first..).unwrap_or_default(),
        None => return 0,
    };
    match significant.first() {
        Some(top) => (significant.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    }
}

fn san_names(cert: &X509Certificate) -> String {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return String::new();
    };
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some((*d).to_string()),
            GeneralName::IPAddress(ip) => ip_string(ip),
            _ => None,
        })
        .collect();
    names.join(",")
}

fn san_emails(cert: &X509Certificate) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::RFC822Name(e) => Some((*e).to_string()),
            _ => None,
        })
        .collect()
}

fn ip_string(raw: &[u8]) -> Option<String> {
    match raw.len() {
        4 => <[u8; 4]>::try_from(raw)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(raw)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// Lower-case hex without separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x30",
            b"\x30\x82\xff\xff",
            b"hello world",
            &[0u8; 64],
        ] {
            assert!(parse(bytes).is_err());
        }
    }

    #[test]
    fn rsa_bits_ignore_leading_zero() {
        // SEQUENCE { INTEGER 0x00 0x80 <127 more bytes>, INTEGER 3 } → 1024-bit modulus.
        let mut n = vec![0x00, 0x80];
        n.extend(std::iter::repeat_n(0x11, 127));
        let mut body = vec![0x02, 0x81, n.len() as u8];
        body.extend(&n);
        body.extend([0x02, 0x01, 0x03]);
        let mut der = vec![0x30, 0x81, body.len() as u8];
        der.extend(body);
        assert_eq!(rsa_modulus_bits(&der), 1024);
    }
}
