//! Certificate Transparency (RFC 6962): the signed certificate timestamps (SCTs) a leaf comes
//! with, where they were delivered, and, with a log list, whether each is signed by the log it
//! names.
//!
//! Sources: the X.509 extension (OID 1.3.6.1.4.1.11129.2.4.2, embedded by the CA), the stapled
//! OCSP response's extension (1.3.6.1.4.1.11129.2.4.5, found by `tls::ocsp::stapled_scts`) and
//! the TLS `signed_certificate_timestamp` extension. rustls 0.23 neither requests nor returns
//! the TLS extension, so the probe never has that source; `assess` takes it for completeness.
//!
//! Verification (RFC 6962 §3.2): an embedded SCT signs the precertificate entry (the SHA-256 of
//! the issuer's SubjectPublicKeyInfo and the leaf's TBSCertificate without the SCT extension);
//! an SCT delivered over TLS or OCSP signs the X.509 entry (the leaf's DER). Signatures are
//! checked with aws-lc-rs: ECDSA P-256 and RSA PKCS#1 (2048 to 8192 bits), both SHA-256, the two
//! RFC 6962 allows. Not checked: that the SCT's timestamp is in the past, the log's state
//! (usable, retired) and temporal interval, and any browser's CT policy (that is the alerts').
//!
//! Pure: no I/O. The log list file is read by `config` and parsed here (`LogList::from_json`);
//! rendering is `metrics`'.

use std::collections::HashMap;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine as _;
use rustls_pki_types::{CertificateDer, TrustAnchor};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::tls::der;
use crate::tls::ocsp::Issuer;

/// SCTs read from one list at most: a list longer than this is malformed for our purpose
/// (real certificates carry 2 to 5).
pub const MAX_SCTS: usize = 32;
/// Logs a log list may name at most (the public list has about a hundred).
pub const MAX_LOGS: usize = 4096;

/// DER contents of the OID of the X.509 SCT list extension, 1.3.6.1.4.1.11129.2.4.2.
const OID_SCT_X509: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02];
/// Extensions of a TBSCertificate examined at most.
const MAX_EXTENSIONS: usize = 64;

/// Where an SCT was delivered: the `source` label of `tls_cert_scts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SctSource {
    /// Embedded in the certificate by the CA.
    X509,
    /// The TLS `signed_certificate_timestamp` extension.
    Tls,
    /// An extension of the stapled OCSP response.
    Ocsp,
}

impl SctSource {
    /// Every source, in label order.
    pub const ALL: [SctSource; 3] = [SctSource::X509, SctSource::Tls, SctSource::Ocsp];

    /// The `source` label.
    pub fn as_label(self) -> &'static str {
        match self {
            SctSource::X509 => "x509",
            SctSource::Tls => "tls",
            SctSource::Ocsp => "ocsp",
        }
    }
}

/// What we could tell about one SCT: the `status` label of `tls_cert_sct_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SctStatus {
    /// Signed by the log it names, a log of the configured list.
    Verified,
    /// The log is not in the configured list.
    UnknownLog,
    /// The signature does not verify (or cannot be checked: an unsupported algorithm, no
    /// issuer to rebuild the precertificate with).
    Invalid,
    /// No log list is configured: counted, not verified.
    Unchecked,
}

impl SctStatus {
    /// The `status` label.
    pub fn as_label(self) -> &'static str {
        match self {
            SctStatus::Verified => "verified",
            SctStatus::UnknownLog => "unknown_log",
            SctStatus::Invalid => "invalid",
            SctStatus::Unchecked => "unchecked",
        }
    }
}

/// One SCT the leaf came with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SctFacts {
    pub source: SctSource,
    /// The log's id (SHA-256 of its key), standard base64 as in the log list.
    pub log_id: String,
    /// The log's operator and description from the log list; empty when not in it.
    pub operator: String,
    pub log: String,
    /// When the log promised to include the certificate (Unix milliseconds).
    pub timestamp_ms: u64,
    pub status: SctStatus,
    /// Why an `Invalid` SCT is invalid, as a sentence.
    pub detail: Option<String>,
}

/// The SCTs of a leaf, from every source the probe had.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtFacts {
    pub scts: Vec<SctFacts>,
    /// Sources the probe saw (an OCSP staple, the certificate): `tls_cert_scts` has a series,
    /// possibly 0, for each.
    pub sources: Vec<SctSource>,
    /// A log list was configured, so `Verified` is meaningful.
    pub checked: bool,
    /// An SCT list that did not parse, as a sentence per source.
    pub problems: Vec<String>,
}

impl CtFacts {
    /// SCTs delivered through `source`.
    pub fn count(&self, source: SctSource) -> usize {
        self.scts.iter().filter(|s| s.source == source).count()
    }

    /// SCTs whose signature verified.
    pub fn verified(&self) -> usize {
        self.scts
            .iter()
            .filter(|s| s.status == SctStatus::Verified)
            .count()
    }
}

/// CT logs by id: the configured `ct_log_list_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogList {
    logs: HashMap<[u8; 32], Log>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Log {
    operator: String,
    description: String,
    /// The log's SubjectPublicKeyInfo, DER.
    key: Vec<u8>,
}

/// Why a log list file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogListError {
    /// Not JSON, or not the shape of `log_list.json` (v3).
    #[error("line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// One log entry is unusable.
    #[error("operators[{operator}].{list}[{log}]: {message}")]
    Log {
        operator: usize,
        list: &'static str,
        log: usize,
        message: String,
    },
    #[error("names more than {MAX_LOGS} logs")]
    TooMany,
}

/// `log_list.json` v3 as far as we read it (unknown fields ignored).
#[derive(Deserialize)]
struct RawList {
    operators: Vec<RawOperator>,
}

#[derive(Deserialize)]
struct RawOperator {
    name: String,
    #[serde(default)]
    logs: Vec<RawLog>,
    /// Static-CT-API logs (the list's `tiled_logs`): SCTs are signed alike.
    #[serde(default)]
    tiled_logs: Vec<RawLog>,
}

#[derive(Deserialize)]
struct RawLog {
    #[serde(default)]
    description: String,
    log_id: String,
    key: String,
}

impl LogList {
    /// Parses a log list in the format of the public `log_list.json` (v3): `operators[]` with
    /// a `name` and `logs[]` (and `tiled_logs[]`) each with `log_id` and `key` (base64), and
    /// `description`. Each `log_id` must be the SHA-256 of its `key`.
    pub fn from_json(bytes: &[u8]) -> Result<LogList, LogListError> {
        let raw: RawList = serde_json::from_slice(bytes).map_err(|e| LogListError::Json {
            line: e.line(),
            column: e.column(),
            message: e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or("")
                .to_string(),
        })?;
        let mut logs = HashMap::new();
        for (o, op) in raw.operators.iter().enumerate() {
            for (list, entries) in [("logs", &op.logs), ("tiled_logs", &op.tiled_logs)] {
                for (l, log) in entries.iter().enumerate() {
                    let err = |message: String| LogListError::Log {
                        operator: o,
                        list,
                        log: l,
                        message,
                    };
                    let (id, key) = log_entry(log).map_err(err)?;
                    if logs.len() == MAX_LOGS {
                        return Err(LogListError::TooMany);
                    }
                    logs.insert(
                        id,
                        Log {
                            operator: op.name.clone(),
                            description: log.description.clone(),
                            key,
                        },
                    );
                }
            }
        }
        Ok(LogList { logs })
    }

    /// Number of logs.
    pub fn len(&self) -> usize {
        self.logs.len()
    }

    /// True when the list names no log.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty()
    }
}

/// A log entry's id and key, checked.
fn log_entry(log: &RawLog) -> Result<([u8; 32], Vec<u8>), String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(log.key.trim())
        .map_err(|e| format!("key is not base64: {e}"))?;
    SubjectPublicKeyInfo::from_der(&key)
        .map_err(|e| format!("key is not a SubjectPublicKeyInfo: {e}"))?;
    let id: [u8; 32] = b64
        .decode(log.log_id.trim())
        .map_err(|e| format!("log_id is not base64: {e}"))?
        .try_into()
        .map_err(|v: Vec<u8>| format!("log_id is {} bytes, not 32", v.len()))?;
    if digest::digest(&digest::SHA256, &key).as_ref() != id {
        return Err("log_id is not the SHA-256 of key".to_string());
    }
    Ok((id, key))
}

/// The SCTs of the leaf of `chain` (leaf first, as sent): those embedded in it, those of a
/// stapled OCSP response (`ocsp`: the extension's value, from `ocsp::stapled_scts`; `None`
/// when nothing verified was stapled) and of the TLS extension (`tls`), each verified against
/// `logs` when given. The issuer (for embedded SCTs) is found among `chain` and `anchors`.
pub fn assess(
    chain: &[CertificateDer<'_>],
    ocsp: Option<&[u8]>,
    tls: Option<&[u8]>,
    anchors: &[TrustAnchor<'_>],
    logs: Option<&LogList>,
) -> CtFacts {
    let mut facts = CtFacts {
        checked: logs.is_some(),
        ..CtFacts::default()
    };
    let Some(leaf) = chain.first() else {
        return facts;
    };
    let leaf = leaf.as_ref();
    let embedded = embedded_list(leaf);
    let mut lists = Vec::new();
    match embedded {
        Ok(list) => {
            facts.sources.push(SctSource::X509);
            if let Some(list) = list {
                lists.push((SctSource::X509, list.0, Some(list.1)));
            }
        }
        Err(e) => {
            facts.sources.push(SctSource::X509);
            facts.problems.push(format!("the leaf's SCT extension {e}"));
        }
    }
    for (source, value) in [(SctSource::Tls, tls), (SctSource::Ocsp, ocsp)] {
        if let Some(value) = value {
            facts.sources.push(source);
            // The OCSP extension's value wraps the list in an OCTET STRING, as the X.509 one
            // does; the TLS extension carries the list itself.
            let list = match source {
                SctSource::Ocsp => der::only(value, der::OCTET_STRING),
                _ => Some(value),
            };
            match list {
                Some(list) => lists.push((source, list, None)),
                None => facts.problems.push(format!(
                    "the {} SCT extension is not an OCTET STRING",
                    source.as_label()
                )),
            }
        }
    }
    // The precertificate entry, built only when an embedded SCT needs it.
    let mut precert: Option<Result<Vec<u8>, String>> = None;
    for (source, list, tbs_without) in lists {
        let scts = match parse_list(list) {
            Ok(scts) => scts,
            Err(e) => {
                facts
                    .problems
                    .push(format!("the {} SCT list {e}", source.as_label()));
                continue;
            }
        };
        for sct in scts {
            let entry = match tbs_without.as_ref() {
                Some(tbs) => precert
                    .get_or_insert_with(|| precert_entry(tbs, chain, anchors))
                    .as_ref()
                    .map(Vec::as_slice)
                    .map_err(Clone::clone),
                None => Ok(leaf),
            };
            facts.scts.push(judge(&sct, source, entry, logs));
        }
    }
    facts
}

/// One parsed SCT (RFC 6962 §3.2 `SignedCertificateTimestamp`, version 1).
struct Sct<'a> {
    log_id: [u8; 32],
    timestamp: u64,
    extensions: &'a [u8],
    hash: u8,
    sig: u8,
    signature: &'a [u8],
}

/// Why an SCT list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ListError {
    #[error("is malformed: {0}")]
    Malformed(&'static str),
    #[error("holds more than {MAX_SCTS} SCTs")]
    TooMany,
}

/// The SCT extension of `leaf`, when it has one: the TLS-encoded list, and the leaf's
/// TBSCertificate re-encoded without that extension (the precertificate's TBS).
#[allow(clippy::type_complexity)]
fn embedded_list(leaf: &[u8]) -> Result<Option<(&[u8], Vec<u8>)>, ListError> {
    let bad = ListError::Malformed;
    let cert = der::only(leaf, der::SEQUENCE).ok_or(bad("the certificate is not DER"))?;
    let (tbs, _) = der::split(cert).ok_or(bad("the certificate is not DER"))?;
    let fields = der::elements(tbs.contents, 16).ok_or(bad("the TBSCertificate is not DER"))?;
    let Some(ext_field) = fields.iter().find(|f| f.tag == 0xa3) else {
        return Ok(None);
    };
    let exts = der::only(ext_field.contents, der::SEQUENCE)
        .and_then(|seq| der::elements(seq, MAX_EXTENSIONS))
        .ok_or(bad("the extensions are not DER"))?;
    let mut list = None;
    let mut kept = Vec::new();
    for ext in &exts {
        let parts = der::elements(ext.contents, 3).ok_or(bad("an extension is not DER"))?;
        let is_sct = parts
            .first()
            .is_some_and(|oid| oid.tag == der::OID && oid.contents == OID_SCT_X509);
        if !is_sct {
            kept.extend_from_slice(ext.raw);
            continue;
        }
        let value = parts
            .last()
            .filter(|v| v.tag == der::OCTET_STRING)
            .and_then(|v| der::only(v.contents, der::OCTET_STRING))
            .ok_or(bad("its value is not an OCTET STRING"))?;
        list = Some(value);
    }
    let Some(list) = list else {
        return Ok(None);
    };
    // RFC 6962 §3.2: the precertificate's TBS is the leaf's with the SCT extension removed
    // (and the extensions field dropped, were it the only one).
    let mut contents = Vec::with_capacity(tbs.contents.len());
    for f in &fields {
        if f.tag != 0xa3 {
            contents.extend_from_slice(f.raw);
        } else if !kept.is_empty() {
            contents.extend(der::encode(0xa3, &der::encode(der::SEQUENCE, &kept)));
        }
    }
    Ok(Some((list, der::encode(der::SEQUENCE, &contents))))
}

/// The precertificate entry: the SHA-256 of the issuer's SubjectPublicKeyInfo, then the TBS.
fn precert_entry(
    tbs: &[u8],
    chain: &[CertificateDer<'_>],
    anchors: &[TrustAnchor<'_>],
) -> Result<Vec<u8>, String> {
    let issuer = Issuer::find(chain, anchors).ok_or_else(|| {
        "the leaf's issuer is neither sent nor trusted, so the precertificate cannot be rebuilt"
            .to_string()
    })?;
    let mut entry = digest::digest(&digest::SHA256, issuer.spki())
        .as_ref()
        .to_vec();
    entry.extend(u24(tbs.len()).ok_or("the TBSCertificate is too long")?);
    entry.extend_from_slice(tbs);
    Ok(entry)
}

/// Parses a `SignedCertificateTimestampList`: a 2-byte length, then 2-byte-length-prefixed
/// SCTs. SCTs of versions other than 1 are skipped, as RFC 6962 §3.3 says.
fn parse_list(list: &[u8]) -> Result<Vec<Sct<'_>>, ListError> {
    let bad = ListError::Malformed;
    let (body, rest) = take16(list).ok_or(bad("the list length is wrong"))?;
    if !rest.is_empty() {
        return Err(bad("bytes follow the list"));
    }
    let mut input = body;
    let mut out = Vec::new();
    while !input.is_empty() {
        let (one, rest) = take16(input).ok_or(bad("an SCT's length is wrong"))?;
        input = rest;
        if one.is_empty() {
            return Err(bad("an SCT is empty"));
        }
        if let Some(sct) = parse_sct(one).ok_or(bad("an SCT is truncated"))? {
            if out.len() == MAX_SCTS {
                return Err(ListError::TooMany);
            }
            out.push(sct);
        }
    }
    Ok(out)
}

/// One serialized SCT; `Some(None)` for a version we do not know.
fn parse_sct(b: &[u8]) -> Option<Option<Sct<'_>>> {
    let (&version, b) = b.split_first()?;
    if version != 0 {
        return Some(None);
    }
    let log_id: [u8; 32] = b.get(..32)?.try_into().ok()?;
    let timestamp = u64::from_be_bytes(b.get(32..40)?.try_into().ok()?);
    let (extensions, b) = take16(b.get(40..)?)?;
    let (&hash, b) = b.split_first()?;
    let (&sig, b) = b.split_first()?;
    let (signature, rest) = take16(b)?;
    rest.is_empty().then_some(Some(Sct {
        log_id,
        timestamp,
        extensions,
        hash,
        sig,
        signature,
    }))
}

/// The SCT's facts: found in the list and verified, or why not. `entry` is the signed entry
/// (`Ok`: the precertificate entry for embedded SCTs, the leaf's DER for the others).
fn judge(
    sct: &Sct<'_>,
    source: SctSource,
    entry: Result<&[u8], String>,
    logs: Option<&LogList>,
) -> SctFacts {
    let mut facts = SctFacts {
        source,
        log_id: base64::engine::general_purpose::STANDARD.encode(sct.log_id),
        operator: String::new(),
        log: String::new(),
        timestamp_ms: sct.timestamp,
        status: SctStatus::Unchecked,
        detail: None,
    };
    let Some(logs) = logs else {
        return facts;
    };
    let Some(log) = logs.logs.get(&sct.log_id) else {
        facts.status = SctStatus::UnknownLog;
        return facts;
    };
    facts.operator.clone_from(&log.operator);
    facts.log.clone_from(&log.description);
    let verdict = entry.and_then(|entry| verify(sct, source, entry, &log.key));
    match verdict {
        Ok(()) => facts.status = SctStatus::Verified,
        Err(e) => {
            facts.status = SctStatus::Invalid;
            facts.detail = Some(e);
        }
    }
    facts
}

/// Checks the SCT's signature by the log `key` (a SubjectPublicKeyInfo) over `entry`.
fn verify(sct: &Sct<'_>, source: SctSource, entry: &[u8], key: &[u8]) -> Result<(), String> {
    let alg: &dyn signature::VerificationAlgorithm = match (sct.hash, sct.sig) {
        (4, 3) => &signature::ECDSA_P256_SHA256_ASN1,
        (4, 1) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (h, s) => return Err(format!("the signature algorithm (hash {h}, signature {s}) is neither ECDSA nor RSA with SHA-256")),
    };
    let (_, spki) = SubjectPublicKeyInfo::from_der(key)
        .map_err(|_| "the log's key is not a SubjectPublicKeyInfo".to_string())?;
    let mut signed = Vec::with_capacity(entry.len() + 64);
    signed.push(0); // sct_version v1
    signed.push(0); // signature_type certificate_timestamp
    signed.extend_from_slice(&sct.timestamp.to_be_bytes());
    match source {
        SctSource::X509 => signed.extend_from_slice(&[0, 1]), // precert_entry: hash + TBS
        SctSource::Tls | SctSource::Ocsp => {
            signed.extend_from_slice(&[0, 0]); // x509_entry
            signed.extend(u24(entry.len()).ok_or("the certificate is too long")?);
        }
    }
    signed.extend_from_slice(entry);
    let ext_len = u16::try_from(sct.extensions.len()).map_err(|_| "extensions too long")?;
    signed.extend_from_slice(&ext_len.to_be_bytes());
    signed.extend_from_slice(sct.extensions);
    UnparsedPublicKey::new(alg, spki.subject_public_key.data.as_ref())
        .verify(&signed, sct.signature)
        .map_err(|_| "the signature does not verify with the log's key".to_string())
}

/// A 2-byte-length-prefixed vector and what follows it.
fn take16(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = usize::from(u16::from_be_bytes(b.get(..2)?.try_into().ok()?));
    let body = b.get(2..2 + len)?;
    Some((body, b.get(2 + len..)?))
}

/// A 3-byte big-endian length.
fn u24(len: usize) -> Option<[u8; 3]> {
    let n = u32::try_from(len).ok().filter(|n| *n < 1 << 24)?;
    let [_, a, b, c] = n.to_be_bytes();
    Some([a, b, c])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, CustomExtension, Issuer as RcIssuer, KeyPair, SerialNumber};
    use rcgen::{PublicKeyData, SigningKey};

    /// A test CT log: its key, id and SubjectPublicKeyInfo.
    struct TestLog {
        key: KeyPair,
        id: [u8; 32],
    }

    impl TestLog {
        fn new(alg: &'static rcgen::SignatureAlgorithm) -> TestLog {
            let key = KeyPair::generate_for(alg).unwrap();
            let id = digest::digest(&digest::SHA256, &key.subject_public_key_info())
                .as_ref()
                .try_into()
                .unwrap();
            TestLog { key, id }
        }

        /// A serialized SCT over `entry_type` (0 x509, 1 precert) and `entry` (as signed).
        fn sct(&self, timestamp: u64, entry_type: u8, entry: &[u8]) -> Vec<u8> {
            let mut signed = vec![0, 0];
            signed.extend(timestamp.to_be_bytes());
            signed.extend([0, entry_type]);
            signed.extend(entry);
            signed.extend([0, 0]);
            let signature = self.key.sign(&signed).unwrap();
            let sig_alg = if self.key.is_compatible(&rcgen::PKCS_RSA_SHA256) {
                1
            } else {
                3
            };
            let mut sct = vec![0];
            sct.extend(self.id);
            sct.extend(timestamp.to_be_bytes());
            sct.extend([0, 0, 4, sig_alg]);
            sct.extend((signature.len() as u16).to_be_bytes());
            sct.extend(signature);
            sct
        }
    }

    fn list(scts: &[Vec<u8>]) -> Vec<u8> {
        let mut body = Vec::new();
        for s in scts {
            body.extend((s.len() as u16).to_be_bytes());
            body.extend(s);
        }
        let mut out = (body.len() as u16).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    fn with_len24(bytes: &[u8]) -> Vec<u8> {
        let mut out = (bytes.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend(bytes);
        out
    }

    fn log_list(logs: &[(&str, &str, &TestLog)]) -> LogList {
        let b64 = base64::engine::general_purpose::STANDARD;
        let operators: Vec<_> = logs
            .iter()
            .map(|(op, desc, log)| {
                serde_json::json!({"name": op, "email": [], "logs": [{
                    "description": desc,
                    "log_id": b64.encode(log.id),
                    "key": b64.encode(log.key.subject_public_key_info()),
                    "url": "https://ct.example/", "mmd": 86400,
                    "state": {"usable": {"timestamp": "2024-01-01T00:00:00Z"}}
                }]})
            })
            .collect();
        let json = serde_json::json!({"version": "1.0", "log_list_timestamp": "2026-01-01T00:00:00Z", "operators": operators});
        LogList::from_json(json.to_string().as_bytes()).unwrap()
    }

    /// A CA and a leaf it signs whose SCT extension holds what `scts` returns for the
    /// precertificate entry (the issuer key hash and the TBS of the same leaf minted without
    /// the extension, as a CA's precertificate has it). Returns [leaf, CA].
    fn chain_with_scts(scts: impl FnOnce(&[u8]) -> Vec<Vec<u8>>) -> Vec<CertificateDer<'static>> {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_spki = ca_key.subject_public_key_info();
        let issuer = RcIssuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["leaf.test".to_string()]).unwrap();
        params.serial_number = Some(SerialNumber::from_slice(&[0x42, 0x17]));
        let precert = params.signed_by(&leaf_key, &issuer).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(precert.der()).unwrap();
        let mut entry = digest::digest(&digest::SHA256, &ca_spki).as_ref().to_vec();
        entry.extend(with_len24(parsed.tbs_certificate.as_ref()));
        let value = der::encode(der::OCTET_STRING, &list(&scts(&entry)));
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
                value,
            ));
        let leaf = params.signed_by(&leaf_key, &issuer).unwrap();
        vec![leaf.der().clone(), ca_cert.der().clone()]
    }

    fn statuses(f: &CtFacts) -> Vec<(&str, &str, &str)> {
        f.scts
            .iter()
            .map(|s| {
                (
                    s.source.as_label(),
                    s.status.as_label(),
                    s.operator.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn embedded_scts_verify_only_when_signed_by_a_listed_log_over_the_precertificate() {
        let (good, other, unknown) = (
            TestLog::new(&rcgen::PKCS_ECDSA_P256_SHA256),
            TestLog::new(&rcgen::PKCS_ECDSA_P256_SHA256),
            TestLog::new(&rcgen::PKCS_ECDSA_P256_SHA256),
        );
        let chain = chain_with_scts(|entry| {
            let mut tampered = other.sct(1_700_000_000_000, 1, entry);
            // The timestamp is signed: changing it breaks the signature.
            if let Some(b) = tampered.get_mut(40) {
                *b ^= 1;
            }
            vec![
                good.sct(1_700_000_000_000, 1, entry),
                unknown.sct(1_700_000_000_000, 1, entry),
                tampered,
            ]
        });
        let logs = log_list(&[
            ("Good Op", "good log", &good),
            ("Other Op", "other log", &other),
        ]);
        let f = assess(&chain, None, None, &[], Some(&logs));
        assert_eq!(
            statuses(&f),
            vec![
                ("x509", "verified", "Good Op"),
                ("x509", "unknown_log", ""),
                ("x509", "invalid", "Other Op"),
            ],
            "{f:#?}"
        );
        assert_eq!((f.count(SctSource::X509), f.verified()), (3, 1));
        assert_eq!(f.scts.first().map(|s| s.log.as_str()), Some("good log"));
        assert_eq!(
            f.scts.get(2).and_then(|s| s.detail.as_deref()),
            Some("the signature does not verify with the log's key")
        );
        assert_eq!(f.sources, vec![SctSource::X509]);
        assert!(f.problems.is_empty());
    }

    #[test]
    fn an_sct_over_the_final_certificate_does_not_pass_as_a_precertificate_sct() {
        let log = TestLog::new(&rcgen::PKCS_ECDSA_P256_SHA256);
        // Signed over the right bytes but as an x509 entry: the entry type is part of the
        // signed data.
        let chain = chain_with_scts(|entry| vec![log.sct(1, 0, entry)]);
        let f = assess(
            &chain,
            None,
            None,
            &[],
            Some(&log_list(&[("Op", "l", &log)])),
        );
        assert_eq!(statuses(&f), vec![("x509", "invalid", "Op")]);
    }

    #[test]
    fn without_a_log_list_scts_are_counted_and_left_unchecked() {
        let log = TestLog::new(&rcgen::PKCS_ECDSA_P256_SHA256);
        let chain = chain_with_scts(|entry| vec![log.sct(1, 1, entry), log.sct(2, 1, entry)]);
        let f = assess(&chain, None, None, &[], None);
        assert_eq!(
            (f.count(SctSource::X509), f.verified(), f.checked),
            (2, 0, false)
        );
        assert!(f.scts.iter().all(|s| s.status == SctStatus::Unchecked));
        assert_eq!(f.scts.get(1).map(|s| s.timestamp_ms), Some(2));
    }

    #[test]
    fn ocsp_and_tls_delivered_scts_sign_the_leaf_itself_with_ecdsa_or_rsa() {
        let ec = TestLog::new(&rcgen::PKCS_ECDSA_P256_SHA256);
        let rsa = TestLog::new(&rcgen::PKCS_RSA_SHA256);
        let chain = chain_with_scts(|_| Vec::new());
        let leaf = with_len24(chain[0].as_ref());
        let ocsp = der::encode(der::OCTET_STRING, &list(&[rsa.sct(5, 0, &leaf)]));
        let tls = list(&[ec.sct(6, 0, &leaf), ec.sct(7, 1, &leaf)]);
        let logs = log_list(&[("EC Op", "ec", &ec), ("RSA Op", "rsa", &rsa)]);
        let f = assess(&chain, Some(&ocsp), Some(&tls), &[], Some(&logs));
        assert_eq!(
            statuses(&f),
            vec![
                ("tls", "verified", "EC Op"),
                ("tls", "invalid", "EC Op"),
                ("ocsp", "verified", "RSA Op"),
            ]
        );
        assert_eq!(
            f.sources,
            vec![SctSource::X509, SctSource::Tls, SctSource::Ocsp]
        );
        assert_eq!((f.count(SctSource::X509), f.verified()), (0, 2));
    }

    #[test]
    fn an_embedded_sct_without_a_known_issuer_is_invalid_in_words() {
        let log = TestLog::new(&rcgen::PKCS_ECDSA_P256_SHA256);
        let mut chain = chain_with_scts(|entry| vec![log.sct(1, 1, entry)]);
        chain.truncate(1);
        let f = assess(
            &chain,
            None,
            None,
            &[],
            Some(&log_list(&[("Op", "l", &log)])),
        );
        assert_eq!(
            f.scts.first().and_then(|s| s.detail.as_deref()),
            Some("the leaf's issuer is neither sent nor trusted, so the precertificate cannot be rebuilt")
        );
    }

    #[test]
    fn malformed_sct_lists_are_problems_in_words_never_panics() {
        let log = TestLog::new(&rcgen::PKCS_ECDSA_P256_SHA256);
        let chain = chain_with_scts(|_| Vec::new());
        let good = list(&[log.sct(1, 0, b"x")]);
        for cut in 0..good.len() {
            let f = assess(&chain, None, good.get(..cut), &[], None);
            assert_eq!(f.scts.len(), 0, "cut at {cut}");
            assert_eq!(f.problems.len(), 1, "cut at {cut}");
        }
        let f = assess(&chain, None, Some(&[0, 0]), &[], None);
        assert!(f.problems.is_empty() && f.scts.is_empty());
        let many = list(&vec![log.sct(1, 0, b"x"); MAX_SCTS + 1]);
        let f = assess(&chain, None, Some(&many), &[], None);
        assert_eq!(
            f.problems,
            vec![format!("the tls SCT list holds more than {MAX_SCTS} SCTs")]
        );
        let f = assess(&chain, Some(&[1, 2, 3]), None, &[], None);
        assert_eq!(
            f.problems,
            vec!["the ocsp SCT extension is not an OCTET STRING".to_string()]
        );
    }

    #[test]
    fn a_list_of_exactly_max_scts_is_read_whole() {
        let log = TestLog::new(&rcgen::PKCS_ECDSA_P256_SHA256);
        let chain = chain_with_scts(|_| Vec::new());
        let full = list(&vec![log.sct(1, 0, b"x"); MAX_SCTS]);
        let f = assess(&chain, None, Some(&full), &[], None);
        assert_eq!((f.count(SctSource::Tls), f.problems.len()), (MAX_SCTS, 0));
    }

    #[test]
    fn a_log_list_of_more_than_max_logs_is_refused() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let logs = |n: usize| {
            let entries: Vec<_> = (0..n as u32)
                .map(|i| {
                    // A well-formed SubjectPublicKeyInfo (id-ecPublicKey, P-256) per log.
                    let alg = der::encode(
                        der::SEQUENCE,
                        &[
                            der::encode(der::OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 2, 1]),
                            der::encode(der::OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 3, 1, 7]),
                        ]
                        .concat(),
                    );
                    let bits = der::encode(0x03, &[&[0u8, 4][..], &i.to_be_bytes()].concat());
                    let key = der::encode(der::SEQUENCE, &[alg, bits].concat());
                    let id = digest::digest(&digest::SHA256, &key);
                    serde_json::json!({"log_id": b64.encode(id.as_ref()), "key": b64.encode(&key)})
                })
                .collect();
            serde_json::json!({"operators": [{"name": "Op", "logs": entries}]}).to_string()
        };
        assert_eq!(
            LogList::from_json(logs(MAX_LOGS).as_bytes()).map(|l| l.len()),
            Ok(MAX_LOGS)
        );
        assert_eq!(
            LogList::from_json(logs(MAX_LOGS + 1).as_bytes()),
            Err(LogListError::TooMany)
        );
    }

    #[test]
    fn a_log_list_that_is_not_json_names_line_and_column() {
        let e =
            LogList::from_json(b"{\n  \"operators\": [\n    {\"name\": 3}\n  ]\n}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3, column 14: invalid type: integer `3`, expected a string"
        );
    }

    #[test]
    fn a_log_whose_id_is_not_its_key_digest_is_refused() {
        let log = TestLog::new(&rcgen::PKCS_ECDSA_P256_SHA256);
        let b64 = base64::engine::general_purpose::STANDARD;
        let json = serde_json::json!({"operators": [{"name": "Op", "logs": [], "tiled_logs": [{
            "log_id": b64.encode([0u8; 32]),
            "key": b64.encode(log.key.subject_public_key_info()),
        }]}]});
        let e = LogList::from_json(json.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "operators[0].tiled_logs[0]: log_id is not the SHA-256 of key"
        );
        let json = serde_json::json!({"operators": [{"name": "Op", "logs": [{"log_id": "AA==", "key": "!"}]}]});
        let e = LogList::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("operators[0].logs[0]: key is not base64"),
            "{e}"
        );
    }
}
