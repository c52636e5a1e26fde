//! Stapled OCSP responses (RFC 6960): parse the bytes the server stapled, verify who signed
//! them, and extract the status of the leaf certificate.
//!
//! A response counts only when its signature verifies with the key of the leaf's issuer, or with
//! a delegated responder certificate included in the response that the issuer signed and that
//! carries the id-kp-OCSPSigning extended key usage. Anything else is `Unverifiable`, never
//! trusted. Freshness is not judged here: `thisUpdate`/`nextUpdate` are reported as parsed and the
//! caller decides (see `Stapled::is_current`). Requesting the staple (rustls always does) and
//! turning the result into metrics are left to the verifier and the recorder.
//!
//! Signatures (the response's, a delegated responder's certificate, the leaf's when picking its
//! issuer) are verified with the algorithms chain validation accepts (`verifier`'s
//! `SIGNATURE_ALGORITHMS`, matched like webpki does: the signatureAlgorithm and the key's
//! AlgorithmIdentifier byte for byte), so SHA-1 and whatever else chains may not use is refused
//! here too.
//!
//! Parsing is fallible and bounded by the input: no recursion beyond the fixed depth of the
//! structure, at most `MAX_RESPONSE_CERTS` certificates examined, no panics on any input.

use aws_lc_rs::digest;
use rustls_pki_types::{CertificateDer, TrustAnchor};
use x509_parser::asn1_rs::{Any, Class, FromDer, GeneralizedTime, Oid, Tag};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    OID_HASH_SHA1, OID_NIST_HASH_SHA256, OID_NIST_HASH_SHA384, OID_NIST_HASH_SHA512,
    OID_PKCS1_RSASSAPSS,
};
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use crate::tls::verifier::SIGNATURE_ALGORITHMS;

/// How far in the future `thisUpdate` may be before `Stapled::is_current` calls it bogus.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// At most this many certificates of a response are considered as its signer.
const MAX_RESPONSE_CERTS: usize = 4;

/// id-pkix-ocsp-basic.
const OID_OCSP_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";
/// The SingleResponse extension carrying SCTs (RFC 6962 §3.3).
const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.5";

/// The status the responder gives for the leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CertStatus {
    Good,
    /// Revoked at this Unix time.
    Revoked {
        at: i64,
    },
    Unknown,
}

impl CertStatus {
    /// The `status` label of `tls_ocsp_cert_status_info`.
    pub fn as_label(&self) -> &'static str {
        match self {
            CertStatus::Good => "good",
            CertStatus::Revoked { .. } => "revoked",
            CertStatus::Unknown => "unknown",
        }
    }
}

/// A verified stapled response for the leaf. Times are Unix seconds, as the responder wrote them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stapled {
    pub status: CertStatus,
    pub this_update: i64,
    /// Absent when the responder promises no schedule (RFC 6960 §4.2.2.1).
    pub next_update: Option<i64>,
    /// When the responder signed the response (`producedAt`); 0 in state files written before
    /// it was recorded.
    #[serde(default)]
    pub produced_at: i64,
}

impl Stapled {
    /// Whether the response is current at `now`: `thisUpdate` not beyond `MAX_CLOCK_SKEW_SECS`
    /// in the future and `nextUpdate` (when present) not in the past. `check` does not apply
    /// this; it is the caller's policy.
    pub fn is_current(&self, now: i64) -> bool {
        self.this_update <= now.saturating_add(MAX_CLOCK_SKEW_SECS)
            && self.next_update.is_none_or(|next| now <= next)
    }
}

/// Why a stapled response tells us nothing about the leaf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum OcspError {
    #[error("malformed ocsp response: {0}")]
    Malformed(String),
    /// The responder answered with an error status (RFC 6960 §4.2.1), e.g. 3 = tryLater.
    #[error("ocsp responder answered {name} ({0})", name = status_name(*.0))]
    NotSuccessful(u8),
    #[error("ocsp response has no status for this certificate")]
    NoResponseForCert,
    #[error("ocsp response cannot be verified: {0}")]
    Unverifiable(String),
}

impl OcspError {
    /// A closed set of short names, should the caller want one as a label.
    pub fn as_label(&self) -> &'static str {
        match self {
            OcspError::Malformed(_) => "malformed",
            OcspError::NotSuccessful(_) => "not_successful",
            OcspError::NoResponseForCert => "no_response_for_cert",
            OcspError::Unverifiable(_) => "unverifiable",
        }
    }
}

/// The leaf's issuer as OCSP needs it: its Name and public key, both full DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// DER `Name` (with its SEQUENCE header), as in the leaf's issuer field.
    name: Vec<u8>,
    /// DER `SubjectPublicKeyInfo` (with its SEQUENCE header).
    spki: Vec<u8>,
}

impl Issuer {
    /// The issuer's DER SubjectPublicKeyInfo (CT's issuer key hash is over it, `tls::ct`).
    pub(crate) fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// The issuer described by its own certificate (e.g. an intermediate the server sent).
    pub fn from_cert(der: &[u8]) -> Result<Issuer, OcspError> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| OcspError::Unverifiable(format!("issuer certificate: {e}")))?;
        Ok(Issuer {
            name: cert.subject().as_raw().to_vec(),
            spki: cert.public_key().raw.to_vec(),
        })
    }

    /// The DER `Name` of the issuer (with its SEQUENCE header).
    pub(crate) fn name(&self) -> &[u8] {
        &self.name
    }

    /// The issuer described by a trust anchor, whose fields are stored without their outer
    /// SEQUENCE header (webpki's convention).
    pub fn from_anchor(anchor: &TrustAnchor<'_>) -> Issuer {
        Issuer {
            name: der_sequence(anchor.subject.as_ref()),
            spki: der_sequence(anchor.subject_public_key_info.as_ref()),
        }
    }

    /// The issuer of `chain[0]`: a certificate the server sent after the leaf, else a trust
    /// anchor, whose subject equals the leaf's issuer Name byte for byte. Among several, the
    /// first whose key verifies the leaf's signature wins (then simply the first).
    pub fn find(chain: &[CertificateDer<'_>], anchors: &[TrustAnchor<'_>]) -> Option<Issuer> {
        let (_, leaf) = X509Certificate::from_der(chain.first()?.as_ref()).ok()?;
        let wanted = leaf.issuer().as_raw();
        let (_, wanted_value) = Any::from_der(wanted).ok()?;
        let sent = chain
            .iter()
            .skip(1)
            .filter_map(|der| Issuer::from_cert(der.as_ref()).ok())
            .filter(|i| i.name == wanted);
        let anchored = anchors
            .iter()
            .filter(|a| a.subject.as_ref() == wanted_value.data)
            .map(Issuer::from_anchor);
        let candidates: Vec<Issuer> = sent.chain(anchored).collect();
        let signer = candidates.iter().position(|c| {
            let Ok((_, spki)) = SubjectPublicKeyInfo::from_der(&c.spki) else {
                return false;
            };
            verify_cert_signature(&leaf, &spki).is_ok()
        });
        candidates.into_iter().nth(signer.unwrap_or(0))
    }
}

/// A nonce-free DER `OCSPRequest` (RFC 6960 §4.1) for `leaf` (DER) issued by `issuer`: one
/// request whose CertID hashes with SHA-1, as RFC 5019 profiles it and every responder answers
/// (the hash only names the issuer; no signature relies on it). Sent by `revocation` to the
/// responder in the leaf's AIA; its answer goes through `check` like a stapled one.
pub fn request(leaf: &[u8], issuer: &Issuer) -> Result<Vec<u8>, OcspError> {
    let (_, leaf) = X509Certificate::from_der(leaf)
        .map_err(|e| OcspError::Malformed(format!("certificate: {e}")))?;
    let (_, spki) = SubjectPublicKeyInfo::from_der(&issuer.spki)
        .map_err(|e| OcspError::Unverifiable(format!("issuer public key: {e}")))?;
    let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
    let name_hash = digest::digest(sha1, leaf.issuer().as_raw());
    let key_hash = digest::digest(sha1, spki.subject_public_key.data.as_ref());
    // AlgorithmIdentifier { id-sha1, NULL }.
    let mut cert_id = vec![
        0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
    ];
    cert_id.extend(der_tlv(0x04, name_hash.as_ref()));
    cert_id.extend(der_tlv(0x04, key_hash.as_ref()));
    cert_id.extend(der_tlv(0x02, leaf.raw_serial()));
    let request = der_sequence(&der_sequence(&cert_id));
    let request_list = der_sequence(&request);
    let tbs_request = der_sequence(&request_list);
    Ok(der_sequence(&tbs_request))
}

/// Verifies a DER `SIGNED{}` structure (`SEQUENCE { tbs, signatureAlgorithm, signature }`:
/// a certificate, a CRL) with the key of `issuer`, by the algorithms chain validation accepts.
/// The reason it does not verify, in words.
pub(crate) fn verify_signed(der: &[u8], issuer: &Issuer) -> Result<(), String> {
    let mut outer = Reader::new(der);
    let mut signed = outer.sequence("signed data").map_err(|e| e.to_string())?;
    outer.end("signed data").map_err(|e| e.to_string())?;
    let (_, tbs) = signed.next("tbs").map_err(|e| e.to_string())?;
    let alg = signed
        .algorithm("signatureAlgorithm")
        .map_err(|e| e.to_string())?;
    let signature = match signed
        .universal(Tag::BitString, "signature")
        .map_err(|e| e.to_string())?
    {
        [0, signature @ ..] => signature,
        _ => return Err("signature BIT STRING has unused bits".to_string()),
    };
    let (_, spki) = SubjectPublicKeyInfo::from_der(&issuer.spki)
        .map_err(|e| format!("issuer public key: {e}"))?;
    verify_signature(&alg, &spki, tbs, signature)
}

/// `check` with the issuer found by `Issuer::find`: what the verifier callback has at hand
/// (the chain as sent, leaf first, and the target's trust anchors).
pub fn check_chain(
    response: &[u8],
    chain: &[CertificateDer<'_>],
    anchors: &[TrustAnchor<'_>],
    now: i64,
) -> Result<Stapled, OcspError> {
    let leaf = chain
        .first()
        .ok_or_else(|| OcspError::Unverifiable("no leaf certificate".to_string()))?;
    let issuer = Issuer::find(chain, anchors).ok_or_else(|| {
        OcspError::Unverifiable(
            "the leaf's issuer is neither among the certificates sent nor a trust anchor"
                .to_string(),
        )
    })?;
    check(response, leaf.as_ref(), &issuer, now)
}

/// Parses a stapled DER `OCSPResponse` for `leaf` (DER), verifies its signature with the
/// issuer's key or an authorized delegated responder's, and returns the leaf's status.
/// `now` (Unix seconds) only decides whether a delegated responder certificate is valid.
/// An empty `response` (nothing stapled) is `Malformed`: callers test for emptiness first.
pub fn check(
    response: &[u8],
    leaf: &[u8],
    issuer: &Issuer,
    now: i64,
) -> Result<Stapled, OcspError> {
    let (_, leaf) = X509Certificate::from_der(leaf)
        .map_err(|e| OcspError::Malformed(format!("leaf certificate: {e}")))?;
    let basic = parse_response(response)?;
    let (_, issuer_spki) = SubjectPublicKeyInfo::from_der(&issuer.spki)
        .map_err(|e| OcspError::Unverifiable(format!("issuer public key: {e}")))?;
    verify_response(&basic, issuer, &issuer_spki, now)?;
    let single = basic
        .responses
        .iter()
        .find(|s| s.is_for(leaf.raw_serial(), leaf.issuer().as_raw(), &issuer_spki))
        .ok_or(OcspError::NoResponseForCert)?;
    Ok(Stapled {
        status: single.status,
        this_update: single.this_update,
        next_update: single.next_update,
        produced_at: basic.produced_at,
    })
}

/// The SCT list extension of the response's entry for `leaf` (the contents of its extnValue,
/// for `tls::ct::assess`), when it has one. Call it only for a response `check` accepted: it
/// verifies nothing itself.
pub fn stapled_scts(response: &[u8], leaf: &[u8]) -> Option<Vec<u8>> {
    let (_, leaf) = X509Certificate::from_der(leaf).ok()?;
    let basic = parse_response(response).ok()?;
    basic
        .responses
        .iter()
        .find(|s| s.serial == leaf.raw_serial())
        .and_then(|s| s.scts)
        .map(<[u8]>::to_vec)
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// The parts of a BasicOCSPResponse we use.
struct Basic<'a> {
    /// The DER of tbsResponseData, header included: what the signature covers.
    tbs: &'a [u8],
    produced_at: i64,
    responses: Vec<Single<'a>>,
    signature_algorithm: Algorithm<'a>,
    signature: &'a [u8],
    /// DER certificates the responder included (at most `MAX_RESPONSE_CERTS`).
    certs: Vec<&'a [u8]>,
}

/// A signatureAlgorithm, parsed and as sent.
struct Algorithm<'a> {
    id: AlgorithmIdentifier<'a>,
    /// The contents of its SEQUENCE as sent: what the accepted algorithms are matched against.
    der: &'a [u8],
}

/// One SingleResponse.
struct Single<'a> {
    hash_algorithm: Oid<'a>,
    issuer_name_hash: &'a [u8],
    issuer_key_hash: &'a [u8],
    /// Content octets of the serialNumber INTEGER.
    serial: &'a [u8],
    status: CertStatus,
    this_update: i64,
    next_update: Option<i64>,
    /// The value (contents of extnValue) of its SCT list extension, when it has one.
    scts: Option<&'a [u8]>,
}

impl Single<'_> {
    /// Same serial, and same issuer when the CertID's hash is one we can compute (SHA-1/2):
    /// `issuer_name` is the DER of the leaf's issuer field, `issuer` the issuer's key.
    fn is_for(&self, serial: &[u8], issuer_name: &[u8], issuer: &SubjectPublicKeyInfo) -> bool {
        if self.serial != serial {
            return false;
        }
        let alg = &self.hash_algorithm;
        let hash = if *alg == OID_HASH_SHA1 {
            &digest::SHA1_FOR_LEGACY_USE_ONLY
        } else if *alg == OID_NIST_HASH_SHA256 {
            &digest::SHA256
        } else if *alg == OID_NIST_HASH_SHA384 {
            &digest::SHA384
        } else if *alg == OID_NIST_HASH_SHA512 {
            &digest::SHA512
        } else {
            // An exotic hash: the serial (and the signature by this issuer) must do.
            return true;
        };
        let key = issuer.subject_public_key.data.as_ref();
        digest::digest(hash, issuer_name).as_ref() == self.issuer_name_hash
            && digest::digest(hash, key).as_ref() == self.issuer_key_hash
    }
}

/// OCSPResponse → responseStatus → ResponseBytes → BasicOCSPResponse.
fn parse_response(response: &[u8]) -> Result<Basic<'_>, OcspError> {
    let mut top = Reader::new(response);
    let mut ocsp = top.sequence("OCSPResponse")?;
    top.end("OCSPResponse")?;
    match ocsp.universal(Tag::Enumerated, "responseStatus")? {
        [0] => {}
        [status] => return Err(OcspError::NotSuccessful(*status)),
        _ => return Err(malformed("responseStatus is not a one-byte ENUMERATED")),
    }
    let mut bytes = ocsp
        .explicit(0, "responseBytes")?
        .ok_or_else(|| malformed("successful response without responseBytes"))?
        .sequence("ResponseBytes")?;
    let kind = bytes.oid("responseType")?;
    if kind.to_id_string() != OID_OCSP_BASIC {
        return Err(malformed(format!("unsupported responseType {kind}")));
    }
    parse_basic(bytes.universal(Tag::OctetString, "response")?)
}

/// BasicOCSPResponse: tbsResponseData, signatureAlgorithm, signature, certs.
fn parse_basic(der: &[u8]) -> Result<Basic<'_>, OcspError> {
    let mut outer = Reader::new(der);
    let mut basic = outer.sequence("BasicOCSPResponse")?;
    outer.end("BasicOCSPResponse")?;
    let (tbs, tbs_raw) = basic.next("tbsResponseData")?;
    expect_universal(&tbs, Tag::Sequence, "tbsResponseData")?;
    let (produced_at, responses) = parse_response_data(tbs.data)?;
    let signature_algorithm = basic.algorithm("signatureAlgorithm")?;
    let signature = match basic.universal(Tag::BitString, "signature")? {
        [0, signature @ ..] => signature,
        _ => return Err(malformed("signature BIT STRING has unused bits")),
    };
    let mut certs = Vec::new();
    if let Some(mut list) = basic.explicit(0, "certs")? {
        let mut list = list.sequence("certs")?;
        while !list.is_empty() && certs.len() < MAX_RESPONSE_CERTS {
            let (cert, raw) = list.next("certs")?;
            expect_universal(&cert, Tag::Sequence, "certs")?;
            certs.push(raw);
        }
    }
    Ok(Basic {
        tbs: tbs_raw,
        produced_at,
        responses,
        signature_algorithm,
        signature,
        certs,
    })
}

/// ResponseData: version, responderID, producedAt, responses (extensions ignored).
fn parse_response_data(content: &[u8]) -> Result<(i64, Vec<Single<'_>>), OcspError> {
    let mut data = Reader::new(content);
    if let Some(mut version) = data.explicit(0, "version")? {
        if version.universal(Tag::Integer, "version")? != [0] {
            return Err(malformed("unsupported ResponseData version"));
        }
    }
    // The signer is found by trying keys, so the responderID only has to be well-formed.
    let (responder, _) = data.next("responderID")?;
    if responder.class() != Class::ContextSpecific || !matches!(responder.tag().0, 1 | 2) {
        return Err(malformed("responderID is neither byName nor byKey"));
    }
    let produced_at = data.time("producedAt")?;
    let mut list = data.sequence("responses")?;
    let mut responses = Vec::new();
    while !list.is_empty() {
        responses.push(parse_single(list.sequence("SingleResponse")?)?);
    }
    Ok((produced_at, responses))
}

/// SingleResponse: certID, certStatus, thisUpdate, nextUpdate, and of singleExtensions the SCT
/// list only.
fn parse_single(mut single: Reader<'_>) -> Result<Single<'_>, OcspError> {
    let mut id = single.sequence("certID")?;
    let hash_algorithm = id.algorithm("hashAlgorithm")?.id.algorithm;
    let issuer_name_hash = id.universal(Tag::OctetString, "issuerNameHash")?;
    let issuer_key_hash = id.universal(Tag::OctetString, "issuerKeyHash")?;
    let serial = id.universal(Tag::Integer, "serialNumber")?;
    let (status, _) = single.next("certStatus")?;
    let status = match (status.class(), status.tag().0) {
        (Class::ContextSpecific, 0) => CertStatus::Good,
        (Class::ContextSpecific, 1) => {
            // [1] IMPLICIT RevokedInfo: its content is revocationTime, revocationReason.
            let at = Reader::new(status.data).time("revocationTime")?;
            CertStatus::Revoked { at }
        }
        (Class::ContextSpecific, 2) => CertStatus::Unknown,
        _ => return Err(malformed("certStatus is neither good, revoked nor unknown")),
    };
    let this_update = single.time("thisUpdate")?;
    let next_update = match single.explicit(0, "nextUpdate")? {
        Some(mut next) => Some(next.time("nextUpdate")?),
        None => None,
    };
    let scts = match single.explicit(1, "singleExtensions")? {
        Some(mut exts) => sct_extension(exts.sequence("singleExtensions")?)?,
        None => None,
    };
    Ok(Single {
        hash_algorithm,
        issuer_name_hash,
        issuer_key_hash,
        serial,
        status,
        this_update,
        next_update,
        scts,
    })
}

/// The value of the SCT list extension (RFC 6962 §3.3) among a SingleResponse's extensions.
fn sct_extension(mut exts: Reader<'_>) -> Result<Option<&[u8]>, OcspError> {
    let mut found = None;
    while !exts.is_empty() {
        let mut ext = exts.sequence("Extension")?;
        let oid = ext.oid("extnID")?;
        // extnValue is last, after an optional `critical` BOOLEAN.
        let mut value = None;
        while !ext.is_empty() {
            value = Some(ext.next("Extension")?.0);
        }
        if oid.to_id_string() == OID_SCT_LIST {
            let value = value.ok_or_else(|| malformed("SCT extension without a value"))?;
            expect_universal(&value, Tag::OctetString, "SCT extension")?;
            found = Some(value.data);
        }
    }
    Ok(found)
}

/// Reads DER elements one after another from a byte slice.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn end(&self, what: &str) -> Result<(), OcspError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(malformed(format!("{n} trailing bytes after {what}"))),
        }
    }

    /// The next element and its whole encoding.
    fn next(&mut self, what: &str) -> Result<(Any<'a>, &'a [u8]), OcspError> {
        let start = self.rest;
        let (rest, any) = Any::from_der(start).map_err(|e| malformed(format!("{what}: {e}")))?;
        let raw = start
            .get(..start.len().saturating_sub(rest.len()))
            .ok_or_else(|| malformed(format!("{what}: bad length")))?;
        self.rest = rest;
        Ok((any, raw))
    }

    /// The content of the next element, which must be the universal type `tag`.
    fn universal(&mut self, tag: Tag, what: &str) -> Result<&'a [u8], OcspError> {
        let (any, _) = self.next(what)?;
        expect_universal(&any, tag, what)?;
        Ok(any.data)
    }

    fn sequence(&mut self, what: &str) -> Result<Reader<'a>, OcspError> {
        self.universal(Tag::Sequence, what).map(Reader::new)
    }

    fn oid(&mut self, what: &str) -> Result<Oid<'a>, OcspError> {
        let (any, _) = self.next(what)?;
        any.oid().map_err(|e| malformed(format!("{what}: {e}")))
    }

    fn algorithm(&mut self, what: &str) -> Result<Algorithm<'a>, OcspError> {
        let (any, raw) = self.next(what)?;
        let (_, id) =
            AlgorithmIdentifier::from_der(raw).map_err(|e| malformed(format!("{what}: {e}")))?;
        Ok(Algorithm { id, der: any.data })
    }

    /// A GeneralizedTime as Unix seconds.
    fn time(&mut self, what: &str) -> Result<i64, OcspError> {
        let (any, _) = self.next(what)?;
        GeneralizedTime::try_from(&any)
            .and_then(|t| t.utc_datetime())
            .map(|t| t.unix_timestamp())
            .map_err(|e| malformed(format!("{what}: {e}")))
    }

    /// The inside of an optional `[n] EXPLICIT` element, consumed only when present.
    fn explicit(&mut self, n: u32, what: &str) -> Result<Option<Reader<'a>>, OcspError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (rest, any) =
            Any::from_der(self.rest).map_err(|e| malformed(format!("{what}: {e}")))?;
        if any.class() != Class::ContextSpecific || any.tag().0 != n {
            return Ok(None);
        }
        self.rest = rest;
        Ok(Some(Reader::new(any.data)))
    }
}

fn expect_universal(any: &Any<'_>, tag: Tag, what: &str) -> Result<(), OcspError> {
    if any.class() == Class::Universal && any.tag() == tag {
        Ok(())
    } else {
        Err(malformed(format!(
            "{what}: expected {tag}, found {:?} {}",
            any.class(),
            any.tag()
        )))
    }
}

fn malformed(detail: impl Into<String>) -> OcspError {
    OcspError::Malformed(detail.into())
}

/// Wraps the content octets of a SEQUENCE in its DER header.
fn der_sequence(content: &[u8]) -> Vec<u8> {
    der_tlv(0x30, content)
}

/// Wraps content octets in a DER header with the one-byte `tag`.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 10);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | octets.len() as u8);
        out.extend(octets);
    }
    out.extend_from_slice(content);
    out
}

fn status_name(status: u8) -> &'static str {
    match status {
        1 => "malformedRequest",
        2 => "internalError",
        3 => "tryLater",
        5 => "sigRequired",
        6 => "unauthorized",
        _ => "an undefined status",
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures

/// Finds the key that signed the response, then checks that key may speak for the issuer.
fn verify_response(
    basic: &Basic<'_>,
    issuer: &Issuer,
    issuer_spki: &SubjectPublicKeyInfo<'_>,
    now: i64,
) -> Result<(), OcspError> {
    let signed_by = |spki: &SubjectPublicKeyInfo<'_>| {
        verify_signature(&basic.signature_algorithm, spki, basic.tbs, basic.signature)
    };
    let by_issuer = match signed_by(issuer_spki) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    for der in &basic.certs {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            continue;
        };
        if signed_by(cert.public_key()).is_err() {
            continue;
        }
        return authorize_responder(&cert, issuer, issuer_spki, now).map_err(|why| {
            OcspError::Unverifiable(format!(
                "signed by {}, which is not an authorized responder: {why}",
                cert.subject()
            ))
        });
    }
    Err(OcspError::Unverifiable(format!(
        "signature does not verify with the issuer's key ({by_issuer}) nor with any \
         certificate in the response"
    )))
}

/// RFC 6960 §4.2.2.2: a delegated responder is issued directly by the CA that issued the leaf
/// and carries id-kp-OCSPSigning; we also want it valid now.
fn authorize_responder(
    cert: &X509Certificate<'_>,
    issuer: &Issuer,
    issuer_spki: &SubjectPublicKeyInfo<'_>,
    now: i64,
) -> Result<(), String> {
    if cert.issuer().as_raw() != issuer.name.as_slice() {
        return Err(format!(
            "it is issued by {}, not by the leaf's issuer",
            cert.issuer()
        ));
    }
    verify_cert_signature(cert, issuer_spki)
        .map_err(|e| format!("its certificate is not signed by the leaf's issuer ({e})"))?;
    let ocsp_signing = matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing);
    if !ocsp_signing {
        return Err("it lacks the id-kp-OCSPSigning extended key usage".to_string());
    }
    let validity = cert.validity();
    if now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
        return Err("its certificate is not valid now".to_string());
    }
    Ok(())
}

/// Verifies `signature` over `message` by the key in `spki` with algorithm `alg`, if it is one
/// chain validation accepts. Like webpki, the first accepted algorithm whose identifiers equal
/// `alg` and the key's algorithm byte for byte decides.
fn verify_signature(
    alg: &Algorithm<'_>,
    spki: &SubjectPublicKeyInfo<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let key_alg =
        sequence_element(spki.raw, 0).ok_or_else(|| "malformed public key".to_string())?;
    let accepted = SIGNATURE_ALGORITHMS
        .all
        .iter()
        .find(|a| {
            a.signature_alg_id().as_ref() == alg.der && a.public_key_alg_id().as_ref() == key_alg
        })
        .ok_or_else(|| unsupported(&alg.id, spki))?;
    accepted
        .verify_signature(spki.subject_public_key.data.as_ref(), message, signature)
        .map_err(|_| "bad signature".to_string())
}

/// Verifies a certificate's signature over its tbsCertificate by the key in `spki`.
fn verify_cert_signature(
    cert: &X509Certificate<'_>,
    spki: &SubjectPublicKeyInfo<'_>,
) -> Result<(), String> {
    let der = sequence_element(cert.as_raw(), 1)
        .ok_or_else(|| "malformed certificate signature algorithm".to_string())?;
    let alg = Algorithm {
        id: cert.signature_algorithm.clone(),
        der,
    };
    let tbs = cert.tbs_certificate.as_ref();
    verify_signature(&alg, spki, tbs, cert.signature_value.data.as_ref())
}

/// The contents of element `n` of the DER SEQUENCE `der` (e.g. a certificate's
/// signatureAlgorithm, a key's algorithm), without its own header.
fn sequence_element(der: &[u8], n: usize) -> Option<&[u8]> {
    let (_, outer) = Any::from_der(der).ok()?;
    let mut rest = outer.data;
    for _ in 0..n {
        rest = Any::from_der(rest).ok()?.0;
    }
    Some(Any::from_der(rest).ok()?.1.data)
}

/// Why no accepted algorithm verifies `alg` with the key in `spki`, in words.
fn unsupported(alg: &AlgorithmIdentifier<'_>, spki: &SubjectPublicKeyInfo<'_>) -> String {
    if alg.algorithm == OID_PKCS1_RSASSAPSS {
        return format!(
            "unsupported rsassa-pss parameters ({})",
            pss_parameters(alg)
        );
    }
    format!(
        "unsupported signature algorithm {} for a {} key",
        oid_name(&alg.algorithm),
        oid_name(&spki.algorithm.algorithm)
    )
}

/// RSASSA-PSS parameters in words (hash, mask generation, salt), for `unsupported`.
fn pss_parameters(alg: &AlgorithmIdentifier<'_>) -> String {
    let Some(params) = alg.parameters.as_ref() else {
        return "none".to_string();
    };
    let params = match RsaSsaPssParams::try_from(params) {
        Ok(p) => p,
        Err(e) => return format!("unreadable: {e}"),
    };
    let mask = match params.mask_gen_algorithm() {
        Ok(m) => format!("mask {} with {}", oid_name(&m.mgf), oid_name(&m.hash)),
        Err(e) => format!("unreadable mask generation: {e}"),
    };
    format!(
        "hash {}, {mask}, salt {}",
        oid_name(params.hash_algorithm_oid()),
        params.salt_length()
    )
}

/// OpenSSL-style short name of an OID, or its dotted form.
fn oid_name(oid: &Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map_or_else(|_| oid.to_id_string(), str::to_string)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_sct_list_extension_of_a_single_response_is_found_among_others() {
        use crate::tls::der::{encode, OCTET_STRING, OID, SEQUENCE};
        let sct_oid = [0x2b, 6, 1, 4, 1, 0xd6, 0x79, 2, 4, 5];
        let nonce_oid = [0x2b, 6, 1, 5, 5, 7, 48, 1, 2];
        let list = encode(OCTET_STRING, &[0, 0]);
        let exts = [
            encode(
                SEQUENCE,
                &[encode(OID, &nonce_oid), encode(OCTET_STRING, b"n")].concat(),
            ),
            encode(
                SEQUENCE,
                &[
                    encode(OID, &sct_oid),
                    encode(0x01, &[0]),
                    encode(OCTET_STRING, &list),
                ]
                .concat(),
            ),
        ]
        .concat();
        assert_eq!(sct_extension(Reader::new(&exts)), Ok(Some(&list[..])));
        let without = encode(
            SEQUENCE,
            &[encode(OID, &nonce_oid), encode(OCTET_STRING, b"n")].concat(),
        );
        assert_eq!(sct_extension(Reader::new(&without)), Ok(None));
        let broken = encode(
            SEQUENCE,
            &[encode(OID, &sct_oid), encode(0x02, &[1])].concat(),
        );
        assert!(sct_extension(Reader::new(&broken)).is_err());
    }
    use std::path::PathBuf;
    use std::process::Command;

    use rustls_pki_types::pem::PemObject;

    use super::*;

    /// Revocation time written into the index: 2024-01-02T03:04:05Z.
    const REVOKED_AT: i64 = 1_704_164_645;

    /// A directory where the openssl command line mints certificates and OCSP responses.
    struct Lab {
        dir: tempfile::TempDir,
    }

    /// A certificate (and its key) on disk.
    struct Party {
        name: String,
        der: Vec<u8>,
    }

    impl Lab {
        fn new() -> Lab {
            Lab {
                dir: tempfile::tempdir().expect("temp dir"),
            }
        }

        fn path(&self, file: &str) -> PathBuf {
            self.dir.path().join(file)
        }

        /// A self-signed CA with a key of `key` (`ec:P-256`, `rsa:2048`, `ed25519`).
        fn ca(&self, name: &str, key: &str) -> Party {
            openssl(
                Command::new("openssl")
                    .args(["req", "-x509", "-nodes", "-days", "30"])
                    .args(newkey(key))
                    .args(["-subj", &format!("/CN={name}")])
                    .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                    .args([
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
                    ])
                    .arg("-keyout")
                    .arg(self.path(&format!("{name}.key")))
                    .arg("-out")
                    .arg(self.path(&format!("{name}.pem"))),
            );
            self.party(name)
        }

        /// A certificate for `name` signed by `ca`, with serial `serial` (hex) and `ext` lines.
        fn issue(&self, ca: &Party, name: &str, key: &str, serial: &str, ext: &str) -> Party {
            std::fs::write(self.path(&format!("{name}.ext")), ext).expect("write ext");
            openssl(
                Command::new("openssl")
                    .args(["req", "-new", "-nodes"])
                    .args(newkey(key))
                    .args(["-subj", &format!("/CN={name}")])
                    .arg("-keyout")
                    .arg(self.path(&format!("{name}.key")))
                    .arg("-out")
                    .arg(self.path(&format!("{name}.csr"))),
            );
            openssl(
                Command::new("openssl")
                    .args(["x509", "-req", "-days", "10", "-set_serial"])
                    .arg(format!("0x{serial}"))
                    .arg("-in")
                    .arg(self.path(&format!("{name}.csr")))
                    .arg("-CA")
                    .arg(self.path(&format!("{}.pem", ca.name)))
                    .arg("-CAkey")
                    .arg(self.path(&format!("{}.key", ca.name)))
                    .arg("-extfile")
                    .arg(self.path(&format!("{name}.ext")))
                    .arg("-out")
                    .arg(self.path(&format!("{name}.pem"))),
            );
            self.party(name)
        }

        fn leaf(&self, ca: &Party, serial: &str) -> Party {
            let name = format!("leaf-{}", ca.name);
            self.issue(
                ca,
                &name,
                "ec:P-256",
                serial,
                "subjectAltName=DNS:localhost\n",
            )
        }

        fn party(&self, name: &str) -> Party {
            let pem = self.path(&format!("{name}.pem"));
            let der = CertificateDer::from_pem_file(&pem).expect("certificate PEM");
            Party {
                name: name.to_string(),
                der: der.as_ref().to_vec(),
            }
        }

        /// `openssl ocsp` answering for `leaf` of `ca` from `index` lines, signed by `signer`.
        /// `digest` (e.g. `-sha256`) picks the CertID hash; `extra` is passed on.
        fn respond(
            &self,
            index: &str,
            signer: &Party,
            ca: &Party,
            leaf: &Party,
            digest: Option<&str>,
            extra: &[&str],
        ) -> Vec<u8> {
            let p = |party: &Party, ext: &str| self.path(&format!("{}.{ext}", party.name));
            std::fs::write(self.path("index.txt"), index).expect("write index");
            let out = self.path("resp.der");
            openssl(
                Command::new("openssl")
                    .arg("ocsp")
                    .arg("-index")
                    .arg(self.path("index.txt"))
                    .arg("-rsigner")
                    .arg(p(signer, "pem"))
                    .arg("-rkey")
                    .arg(p(signer, "key"))
                    .arg("-CA")
                    .arg(p(ca, "pem"))
                    .args(digest)
                    .arg("-issuer")
                    .arg(p(ca, "pem"))
                    .arg("-cert")
                    .arg(p(leaf, "pem"))
                    .arg("-respout")
                    .arg(&out)
                    .args(extra),
            );
            std::fs::read(out).expect("read response")
        }
    }

    fn newkey(key: &str) -> Vec<String> {
        match key.strip_prefix("ec:") {
            Some(curve) => ["-newkey", "ec", "-pkeyopt"]
                .map(str::to_string)
                .into_iter()
                .chain([format!("ec_paramgen_curve:{curve}")])
                .collect(),
            None => vec!["-newkey".to_string(), key.to_string()],
        }
    }

    /// `openssl ocsp` answering from `index.txt` as the CA `ca` of `lab`, signing with its key.
    fn responder(lab: &Lab) -> Command {
        let mut cmd = Command::new("openssl");
        cmd.arg("ocsp")
            .arg("-index")
            .arg(lab.path("index.txt"))
            .arg("-rsigner")
            .arg(lab.path("ca.pem"))
            .arg("-rkey")
            .arg(lab.path("ca.key"))
            .arg("-CA")
            .arg(lab.path("ca.pem"));
        cmd
    }

    fn openssl(cmd: &mut Command) {
        let out = cmd.output().expect("openssl is installed");
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn valid(serial: &str) -> String {
        format!("V\t351231000000Z\t\t{serial}\tunknown\t/CN=leaf\n")
    }

    fn revoked(serial: &str) -> String {
        format!("R\t351231000000Z\t240102030405Z,keyCompromise\t{serial}\tunknown\t/CN=leaf\n")
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs() as i64
    }

    fn issuer(ca: &Party) -> Issuer {
        Issuer::from_cert(&ca.der).expect("issuer certificate parses")
    }

    /// `-ndays 1`: thisUpdate is now, nextUpdate a day later.
    fn assert_fresh_day(stapled: &Stapled) {
        let now = now();
        assert!((stapled.this_update - now).abs() < 120, "{stapled:?}");
        assert_eq!(stapled.next_update, Some(stapled.this_update + 86_400));
        assert!(stapled.is_current(now));
    }

    /// A CA, its leaf with serial 1234 and a response (good, ECDSA P-256) for it.
    fn good_response() -> (Lab, Party, Party, Vec<u8>) {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let resp = lab.respond(&valid("1234"), &ca, &ca, &leaf, None, &["-ndays", "1"]);
        (lab, ca, leaf, resp)
    }

    #[test]
    fn built_request_is_answered_by_openssl_for_the_leaf() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let req = request(&leaf.der, &issuer(&ca)).expect("request builds");
        std::fs::write(lab.path("req.der"), &req).expect("write request");
        std::fs::write(lab.path("index.txt"), revoked("1234")).expect("write index");
        openssl(
            responder(&lab)
                .arg("-reqin")
                .arg(lab.path("req.der"))
                .arg("-respout")
                .arg(lab.path("resp.der"))
                .args(["-ndays", "1"]),
        );
        let resp = std::fs::read(lab.path("resp.der")).expect("read response");
        let answered = check(&resp, &leaf.der, &issuer(&ca), now()).expect("verifies");
        assert_eq!(answered.status, CertStatus::Revoked { at: REVOKED_AT });
    }

    #[test]
    fn signed_structure_verifies_with_its_issuer_only() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let other = lab.ca("other", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        assert_eq!(verify_signed(&leaf.der, &issuer(&ca)), Ok(()));
        assert_eq!(
            verify_signed(&leaf.der, &issuer(&other)),
            Err("bad signature".to_string())
        );
        assert!(verify_signed(b"\x30\x00", &issuer(&ca)).is_err());
    }

    #[test]
    fn good_response_signed_by_issuer_is_good() {
        let (_lab, ca, leaf, resp) = good_response();
        let stapled = check(&resp, &leaf.der, &issuer(&ca), now()).expect("verifies");
        assert_eq!(stapled.status, CertStatus::Good);
        assert_eq!(stapled.status.as_label(), "good");
        assert_fresh_day(&stapled);
    }

    #[test]
    fn revoked_response_reports_revocation_time() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let resp = lab.respond(&revoked("1234"), &ca, &ca, &leaf, None, &["-ndays", "1"]);
        let stapled = check(&resp, &leaf.der, &issuer(&ca), now()).expect("verifies");
        assert_eq!(stapled.status, CertStatus::Revoked { at: REVOKED_AT });
        assert_eq!(stapled.status.as_label(), "revoked");
        assert_fresh_day(&stapled);
    }

    #[test]
    fn serial_missing_from_index_is_unknown() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let resp = lab.respond(&valid("ABCD"), &ca, &ca, &leaf, None, &["-ndays", "1"]);
        let stapled = check(&resp, &leaf.der, &issuer(&ca), now()).expect("verifies");
        assert_eq!(stapled.status, CertStatus::Unknown);
        assert_eq!(stapled.status.as_label(), "unknown");
    }

    #[test]
    fn response_without_next_update_reports_none() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let resp = lab.respond(&valid("1234"), &ca, &ca, &leaf, None, &[]);
        let stapled = check(&resp, &leaf.der, &issuer(&ca), now()).expect("verifies");
        assert_eq!(stapled.next_update, None);
        assert!(stapled.is_current(now() + 365 * 86_400));
    }

    #[test]
    fn response_signed_by_unrelated_key_is_unverifiable() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let other = lab.ca("other", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let resp = lab.respond(&valid("1234"), &other, &ca, &leaf, None, &["-ndays", "1"]);
        let err = check(&resp, &leaf.der, &issuer(&ca), now()).expect_err("unrelated signer");
        assert!(matches!(err, OcspError::Unverifiable(_)), "{err}");
        assert_eq!(err.as_label(), "unverifiable");
        assert!(err.to_string().contains("CN=other"), "{err}");
    }

    #[test]
    fn response_without_certificates_verifies_with_issuer_key() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let extra = ["-ndays", "1", "-resp_no_certs", "-resp_key_id"];
        let resp = lab.respond(&valid("1234"), &ca, &ca, &leaf, None, &extra);
        let stapled = check(&resp, &leaf.der, &issuer(&ca), now()).expect("verifies");
        assert_eq!(stapled.status, CertStatus::Good);
    }

    #[test]
    fn unrelated_signer_without_certificates_is_unverifiable() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let other = lab.ca("other", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let extra = ["-ndays", "1", "-resp_no_certs"];
        let resp = lab.respond(&valid("1234"), &other, &ca, &leaf, None, &extra);
        let err = check(&resp, &leaf.der, &issuer(&ca), now()).expect_err("unrelated signer");
        assert!(matches!(err, OcspError::Unverifiable(_)), "{err}");
    }

    #[test]
    fn delegated_responder_with_ocsp_signing_eku_is_trusted() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let eku = "extendedKeyUsage=OCSPSigning\n";
        let responder = lab.issue(&ca, "responder", "ec:P-384", "77", eku);
        let resp = lab.respond(
            &revoked("1234"),
            &responder,
            &ca,
            &leaf,
            None,
            &["-ndays", "1"],
        );
        let stapled = check(&resp, &leaf.der, &issuer(&ca), now()).expect("verifies");
        assert_eq!(stapled.status, CertStatus::Revoked { at: REVOKED_AT });
    }

    #[test]
    fn delegated_responder_without_ocsp_signing_eku_is_unverifiable() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let eku = "extendedKeyUsage=serverAuth\n";
        let responder = lab.issue(&ca, "responder", "ec:P-256", "77", eku);
        let resp = lab.respond(
            &valid("1234"),
            &responder,
            &ca,
            &leaf,
            None,
            &["-ndays", "1"],
        );
        let err = check(&resp, &leaf.der, &issuer(&ca), now()).expect_err("no OCSPSigning");
        assert!(matches!(err, OcspError::Unverifiable(_)), "{err}");
        assert!(err.to_string().contains("id-kp-OCSPSigning"), "{err}");
    }

    #[test]
    fn delegated_responder_of_another_ca_is_unverifiable() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let other = lab.ca("other", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let eku = "extendedKeyUsage=OCSPSigning\n";
        let responder = lab.issue(&other, "responder", "ec:P-256", "77", eku);
        let resp = lab.respond(
            &valid("1234"),
            &responder,
            &ca,
            &leaf,
            None,
            &["-ndays", "1"],
        );
        let err = check(&resp, &leaf.der, &issuer(&ca), now()).expect_err("foreign responder");
        assert!(
            err.to_string().contains("not by the leaf's issuer"),
            "{err}"
        );
    }

    #[test]
    fn delegated_responder_outside_its_validity_is_unverifiable() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let eku = "extendedKeyUsage=OCSPSigning\n";
        let responder = lab.issue(&ca, "responder", "ec:P-256", "77", eku);
        let resp = lab.respond(
            &valid("1234"),
            &responder,
            &ca,
            &leaf,
            None,
            &["-ndays", "1"],
        );
        let later = now() + 20 * 86_400;
        let err = check(&resp, &leaf.der, &issuer(&ca), later).expect_err("expired responder");
        assert!(err.to_string().contains("not valid now"), "{err}");
    }

    #[test]
    fn rsa_pkcs1_sha512_response_verifies() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "rsa:2048");
        let leaf = lab.leaf(&ca, "1234");
        let extra = ["-ndays", "1", "-rmd", "sha512"];
        let resp = lab.respond(&valid("1234"), &ca, &ca, &leaf, None, &extra);
        let stapled = check(&resp, &leaf.der, &issuer(&ca), now()).expect("verifies");
        assert_eq!(stapled.status, CertStatus::Good);
    }

    #[test]
    fn sha1_signed_response_is_unverifiable_as_in_chains() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "rsa:2048");
        let leaf = lab.leaf(&ca, "1234");
        let extra = ["-ndays", "1", "-rmd", "sha1"];
        let resp = lab.respond(&valid("1234"), &ca, &ca, &leaf, None, &extra);
        let err = check(&resp, &leaf.der, &issuer(&ca), now()).expect_err("sha1 refused");
        assert!(matches!(err, OcspError::Unverifiable(_)), "{err}");
        assert!(
            err.to_string().contains(
                "unsupported signature algorithm sha1WithRSAEncryption for a rsaEncryption key"
            ),
            "{err}"
        );
    }

    #[test]
    fn rsa_pss_response_with_sha256_cert_id_verifies() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "rsa:2048");
        let leaf = lab.leaf(&ca, "1234");
        let extra = [
            "-ndays",
            "1",
            "-rmd",
            "sha384",
            "-rsigopt",
            "rsa_padding_mode:pss",
            "-rsigopt",
            "rsa_pss_saltlen:digest",
        ];
        let resp = lab.respond(&revoked("1234"), &ca, &ca, &leaf, Some("-sha256"), &extra);
        let stapled = check(&resp, &leaf.der, &issuer(&ca), now()).expect("verifies");
        assert_eq!(stapled.status, CertStatus::Revoked { at: REVOKED_AT });
    }

    #[test]
    fn rsa_pss_with_maximal_salt_is_unverifiable_not_misread() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "rsa:2048");
        let leaf = lab.leaf(&ca, "1234");
        let extra = [
            "-ndays",
            "1",
            "-rsigopt",
            "rsa_padding_mode:pss",
            "-rsigopt",
            "rsa_pss_saltlen:max",
        ];
        let resp = lab.respond(&valid("1234"), &ca, &ca, &leaf, None, &extra);
        let err = check(&resp, &leaf.der, &issuer(&ca), now()).expect_err("unsupported salt");
        assert!(err.to_string().contains("rsassa-pss parameters"), "{err}");
    }

    #[test]
    fn ecdsa_p384_sha384_response_verifies() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-384");
        let leaf = lab.leaf(&ca, "1234");
        let extra = ["-ndays", "1", "-rmd", "sha384"];
        let resp = lab.respond(&valid("1234"), &ca, &ca, &leaf, None, &extra);
        let stapled = check(&resp, &leaf.der, &issuer(&ca), now()).expect("verifies");
        assert_eq!(stapled.status, CertStatus::Good);
    }

    #[test]
    fn ed25519_response_verifies() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ed25519");
        let leaf = lab.leaf(&ca, "1234");
        let resp = lab.respond(&valid("1234"), &ca, &ca, &leaf, None, &["-ndays", "1"]);
        let stapled = check(&resp, &leaf.der, &issuer(&ca), now()).expect("verifies");
        assert_eq!(stapled.status, CertStatus::Good);
    }

    #[test]
    fn response_for_another_issuers_certificate_has_no_response_for_cert() {
        // The CA answers `unknown` for a CertID naming `other` as issuer: same serial, but
        // the issuer hashes do not match ours.
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let other = lab.ca("other", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let foreign = lab.leaf(&other, "1234");
        std::fs::write(lab.path("index.txt"), valid("1234")).expect("write index");
        let out = lab.path("foreign.der");
        openssl(
            responder(&lab)
                .arg("-issuer")
                .arg(lab.path("other.pem"))
                .arg("-cert")
                .arg(lab.path(&format!("{}.pem", foreign.name)))
                .arg("-respout")
                .arg(&out),
        );
        let resp = std::fs::read(out).expect("read response");
        let err = check(&resp, &leaf.der, &issuer(&ca), now()).expect_err("foreign CertID");
        assert_eq!(err, OcspError::NoResponseForCert);
    }

    #[test]
    fn tampered_signature_is_unverifiable() {
        let (_lab, ca, leaf, resp) = good_response();
        let last = {
            let basic = parse_response(&resp).expect("parses");
            let start = basic.signature.as_ptr() as usize - resp.as_ptr() as usize;
            start + basic.signature.len() - 1
        };
        let mut tampered = resp.clone();
        tampered[last] ^= 0x01;
        let err = check(&tampered, &leaf.der, &issuer(&ca), now()).expect_err("bad signature");
        assert!(matches!(err, OcspError::Unverifiable(_)), "{err}");
        assert!(err.to_string().contains("bad signature"), "{err}");
    }

    #[test]
    fn unsuccessful_status_is_reported_with_its_code() {
        // OCSPResponse { responseStatus tryLater(3) }
        let err = parse_response(&[0x30, 0x03, 0x0a, 0x01, 0x03]).err();
        assert_eq!(err, Some(OcspError::NotSuccessful(3)));
        let err = OcspError::NotSuccessful(3);
        assert_eq!(err.to_string(), "ocsp responder answered tryLater (3)");
    }

    #[test]
    fn successful_status_without_bytes_is_malformed() {
        let err = parse_response(&[0x30, 0x03, 0x0a, 0x01, 0x00]).err();
        assert!(matches!(err, Some(OcspError::Malformed(_))), "{err:?}");
    }

    #[test]
    fn empty_response_is_malformed() {
        let (_lab, ca, leaf, _) = good_response();
        let err = check(&[], &leaf.der, &issuer(&ca), now()).expect_err("nothing stapled");
        assert_eq!(err.as_label(), "malformed");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let (_lab, ca, leaf, resp) = good_response();
        let issuer = issuer(&ca);
        for len in 0..resp.len() {
            let cut = resp.get(..len).expect("in range");
            assert!(
                check(cut, &leaf.der, &issuer, now()).is_err(),
                "prefix {len}"
            );
        }
    }

    #[test]
    fn mutations_never_panic_nor_change_the_verified_answer() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let eku = "extendedKeyUsage=OCSPSigning\n";
        let responder = lab.issue(&ca, "responder", "ec:P-256", "77", eku);
        let by_ca = lab.respond(&revoked("1234"), &ca, &ca, &leaf, None, &["-ndays", "1"]);
        let delegated = lab.respond(
            &revoked("1234"),
            &responder,
            &ca,
            &leaf,
            None,
            &["-ndays", "1"],
        );
        let issuer = issuer(&ca);
        for resp in [by_ca, delegated] {
            let original = check(&resp, &leaf.der, &issuer, now()).expect("verifies");
            for at in 0..resp.len() {
                for mutate in [|b: u8| b ^ 0x01, |b: u8| b ^ 0x80, |_| 0x00, |_| 0xff] {
                    let mut copy = resp.clone();
                    copy[at] = mutate(copy[at]);
                    if copy == resp {
                        continue;
                    }
                    if let Ok(got) = check(&copy, &leaf.der, &issuer, now()) {
                        assert_eq!(got, original, "mutation at {at} changed the answer");
                    }
                }
            }
        }
    }

    #[test]
    fn random_bytes_are_errors_not_panics() {
        let (_lab, ca, leaf, _) = good_response();
        let issuer = issuer(&ca);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..2_000 {
            let len = (next() % 200) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half the time look like a SEQUENCE of plausible length, to get past the header.
            if round % 2 == 0 && len > 2 {
                bytes[0] = 0x30;
                bytes[1] = (len - 2).min(0x7f) as u8;
            }
            assert!(check(&bytes, &leaf.der, &issuer, now()).is_err());
        }
        for hostile in [
            &[0x30, 0x80, 0x00, 0x00][..],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[
                0x30, 0x89, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            &[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00],
            &[0x30, 0x05, 0x0a, 0x01, 0x00, 0xa0, 0x00],
        ] {
            assert!(check(hostile, &leaf.der, &issuer, now()).is_err());
        }
    }

    #[test]
    fn issuer_is_found_in_the_chain_sent() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let other = lab.ca("other", "ec:P-256");
        let chain = [
            CertificateDer::from(leaf.der.clone()),
            CertificateDer::from(other.der.clone()),
            CertificateDer::from(ca.der.clone()),
        ];
        assert_eq!(Issuer::find(&chain, &[]), Some(issuer(&ca)));
    }

    #[test]
    fn issuer_is_found_among_trust_anchors() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let other = lab.ca("other", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let chain = [CertificateDer::from(leaf.der.clone())];
        let ca_der = CertificateDer::from(ca.der.clone());
        let other_der = CertificateDer::from(other.der.clone());
        let anchors = [
            webpki::anchor_from_trusted_cert(&other_der).expect("anchor"),
            webpki::anchor_from_trusted_cert(&ca_der).expect("anchor"),
        ];
        // The anchor form (fields without their SEQUENCE headers) rebuilds the same issuer.
        assert_eq!(Issuer::find(&chain, &anchors), Some(issuer(&ca)));
        let resp = lab.respond(&valid("1234"), &ca, &ca, &leaf, None, &["-ndays", "1"]);
        let stapled = check_chain(&resp, &chain, &anchors, now()).expect("verifies");
        assert_eq!(stapled.status, CertStatus::Good);
    }

    #[test]
    fn issuer_with_the_same_name_but_another_key_loses_to_the_signer() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let first = ca.der.clone();
        let impostor_lab = Lab::new();
        let impostor = impostor_lab.ca("ca", "ec:P-256");
        let chain = [
            CertificateDer::from(leaf.der.clone()),
            CertificateDer::from(impostor.der.clone()),
            CertificateDer::from(first),
        ];
        assert_eq!(Issuer::find(&chain, &[]), Some(issuer(&ca)));
    }

    #[test]
    fn missing_issuer_is_unverifiable() {
        let lab = Lab::new();
        let ca = lab.ca("ca", "ec:P-256");
        let leaf = lab.leaf(&ca, "1234");
        let resp = lab.respond(&valid("1234"), &ca, &ca, &leaf, None, &["-ndays", "1"]);
        let chain = [CertificateDer::from(leaf.der.clone())];
        let err = check_chain(&resp, &chain, &[], now()).expect_err("no issuer");
        assert!(matches!(err, OcspError::Unverifiable(_)), "{err}");
    }

    #[test]
    fn stale_or_premature_responses_are_not_current() {
        let stapled = Stapled {
            status: CertStatus::Good,
            this_update: 1_000_000,
            next_update: Some(1_086_400),
            produced_at: 1_000_000,
        };
        assert!(stapled.is_current(1_000_000));
        assert!(stapled.is_current(1_000_000 - MAX_CLOCK_SKEW_SECS));
        assert!(!stapled.is_current(1_000_000 - MAX_CLOCK_SKEW_SECS - 1));
        assert!(stapled.is_current(1_086_400));
        assert!(!stapled.is_current(1_086_401));
    }

    #[test]
    fn anchor_fields_regain_long_form_headers() {
        let content = vec![0x05; 300];
        let der = der_sequence(&content);
        assert_eq!(der.get(..4), Some(&[0x30, 0x82, 0x01, 0x2c][..]));
        assert_eq!(der.len(), 304);
        assert_eq!(der_sequence(&[]), vec![0x30, 0x00]);
    }
}
