//! Certificate verification that never aborts the handshake, plus the verdict we compute after it.
//!
//! rustls calls `RecordingVerifier` during the handshake; it records the chain the server sent
//! (and whether the server asked for a client certificate) into the probe's `Recorder`, verifies
//! the server's handshake signature with the leaf's key (on every probe) and lets the handshake
//! finish, so protocol, cipher and certificates are reported even for broken chains. `judge`
//! then validates the recorded chain with webpki against the target's trust anchors and applies
//! our policy (weak keys, SHA-1/MD5 signatures, self-signed leaves), in two phases: `assess`
//! (parsing, hygiene, path validation, policy: what depends only on the chain, the anchors and
//! the certificates' validity at the time) and `conclude` (the name check, and the verdict).
//! When an assessment may be reused for a later probe is `tls::cache`'s business.

use std::cell::RefCell;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};

use crate::tls::cert::{self, CertFacts};
use crate::tls::chain::Chain;
use crate::tls::describe;
use crate::verdict::{Failure, FailureReason};

/// The signature algorithms we accept, built once rather than per probe: chains are checked
/// with them, and so are stapled OCSP responses (`tls::ocsp`).
pub(crate) static SIGNATURE_ALGORITHMS: std::sync::LazyLock<WebPkiSupportedAlgorithms> =
    std::sync::LazyLock::new(|| {
        rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms
    });

/// RSA keys shorter than this are `weak_key`.
const MIN_RSA_BITS: usize = 2048;

/// What rustls told us during one handshake.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    /// Leaf first, as sent.
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) client_auth_requested: bool,
    /// The server's handshake signature did not verify with its leaf key.
    pub(crate) signature_error: Option<String>,
    /// The stapled OCSP response (empty: none).
    pub(crate) ocsp: Vec<u8>,
}

thread_local! {
    static CURRENT: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// Runs `f` (which drives rustls synchronously) with `rec` receiving what the verifier sees.
pub(crate) fn recording<R>(rec: &mut Recorder, f: impl FnOnce() -> R) -> R {
    CURRENT.with(|c| *c.borrow_mut() = Some(std::mem::take(rec)));
    let out = f();
    CURRENT.with(|c| {
        if let Some(back) = c.borrow_mut().take() {
            *rec = back;
        }
    });
    out
}

fn record(f: impl FnOnce(&mut Recorder)) {
    CURRENT.with(|c| {
        if let Some(rec) = c.borrow_mut().as_mut() {
            f(rec);
        }
    });
}

/// Trust anchors of a target: webpki-roots or the certificates of a `ca_file`.
#[derive(Debug)]
pub struct Roots {
    anchors: Vec<TrustAnchor<'static>>,
    /// Facts of each anchor when we have its certificate (ca_file), by index.
    certs: Vec<Option<Arc<CertFacts>>>,
    /// SHA-256 over everything above: two `Roots` with the same digest judge every chain
    /// alike, so `tls::cache` keys kept verdicts by it (a reload that changes a `ca_file`
    /// changes it; one that does not keeps the verdicts warm).
    digest: [u8; 32],
}

impl Roots {
    /// The trust anchors.
    pub(crate) fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// The content digest of the anchors (see the field).
    pub(crate) fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The Mozilla roots shipped in webpki-roots.
    pub fn webpki() -> Self {
        let anchors = webpki_roots::TLS_SERVER_ROOTS.to_vec();
        let certs = vec![None; anchors.len()];
        Roots::new(anchors, certs)
    }

    /// Anchors from trusted certificates (a `ca_file`).
    pub fn from_certs(certs: &[CertificateDer<'_>]) -> Result<Self, String> {
        let mut anchors = Vec::with_capacity(certs.len());
        let mut facts = Vec::with_capacity(certs.len());
        for (i, der) in certs.iter().enumerate() {
            let anchor = webpki::anchor_from_trusted_cert(der).map_err(|e| {
                format!(
                    "certificate {} is not a usable trust anchor: {}",
                    i + 1,
                    describe::path_error(&e, UnixTime::now())
                )
            })?;
            anchors.push(anchor.to_owned());
            facts.push(cert::parse(der).ok().map(|mut f| {
                f.compact();
                Arc::new(f)
            }));
        }
        if anchors.is_empty() {
            return Err("contains no certificates".to_string());
        }
        Ok(Roots::new(anchors, facts))
    }

    fn new(anchors: Vec<TrustAnchor<'static>>, certs: Vec<Option<Arc<CertFacts>>>) -> Self {
        use aws_lc_rs::digest::{Context, SHA256};
        let mut ctx = Context::new(&SHA256);
        // Every field length-prefixed, so no two different anchor lists hash the same input.
        let mut field = |bytes: &[u8]| {
            ctx.update(&(bytes.len() as u64).to_be_bytes());
            ctx.update(bytes);
        };
        for (anchor, cert) in anchors.iter().zip(&certs) {
            let na = cert.as_ref().map(|f| f.not_after);
            field(anchor.subject.as_ref());
            field(anchor.subject_public_key_info.as_ref());
            field(
                anchor
                    .name_constraints
                    .as_ref()
                    .map_or(&[][..], |n| n.as_ref()),
            );
            field(&[u8::from(anchor.name_constraints.is_some())]);
            // The anchor's certificate itself: a kept path shows its facts (serial, dates).
            field(
                cert.as_ref()
                    .map_or(&b""[..], |f| f.fingerprint_sha256.as_bytes()),
            );
            field(&na.map_or([0xff; 9], |t| {
                let mut b = [0u8; 9];
                b[1..].copy_from_slice(&t.to_be_bytes());
                b
            }));
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(ctx.finish().as_ref());
        Roots {
            anchors,
            certs,
            digest,
        }
    }
}

/// Builds the rustls client config for one trust/client-certificate combination.
pub(crate) fn client_config(client_key: Option<Arc<CertifiedKey>>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let algs = provider.signature_verification_algorithms;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        // The invariant: aws-lc-rs implements both versions; a provider without them would be a
        // build mistake caught by every test, never input.
        .unwrap_or_else(|e| unreachable!("aws-lc-rs provider supports TLS 1.2 and 1.3: {e}"))
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordingVerifier { algs }))
        .with_client_cert_resolver(Arc::new(ClientAuth { key: client_key }));
    // Every probe is a full handshake: a resumed TLS 1.3 session carries no certificates.
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    Arc::new(config)
}

/// Loads a client certificate chain and key into the form rustls presents.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: rustls_pki_types::PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, rustls::Error> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map(Arc::new)
}

/// Accepts any chain during the handshake, recording it for `judge`.
#[derive(Debug)]
struct RecordingVerifier {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        record(|r| {
            r.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            r.ocsp = ocsp_response.to_vec();
        });
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let verdict = rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs);
        Ok(note_signature(verdict))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let verdict = rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs);
        Ok(note_signature(verdict))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A failed handshake signature (e.g. a 1024-bit RSA leaf our crypto refuses) is recorded, not
/// fatal: the probe still reports what it saw and fails with a classified reason.
fn note_signature(
    verdict: Result<HandshakeSignatureValid, rustls::Error>,
) -> HandshakeSignatureValid {
    if let Err(e) = verdict {
        record(|r| r.signature_error = Some(describe::tls_error(&e)));
    }
    HandshakeSignatureValid::assertion()
}

/// Presents the configured client certificate (if any) and records that one was requested.
#[derive(Debug)]
struct ClientAuth {
    key: Option<Arc<CertifiedKey>>,
}

impl ResolvesClientCert for ClientAuth {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        record(|r| r.client_auth_requested = true);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        // Always true so that rustls asks us when a CertificateRequest arrives.
        true
    }
}

/// Parses and validates the chain the server sent, at time `now`, from scratch.
pub(crate) fn judge(
    sent: &[CertificateDer<'static>],
    roots: &Roots,
    server_name: &ServerName<'static>,
    now: UnixTime,
) -> Chain {
    conclude(&assess(sent, roots, now), sent, server_name, now)
}

/// What `judge` finds before the name check: everything that depends only on the bytes of the
/// chain, the trust anchors and, through the certificates' validity, the time it was assessed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Assessment {
    /// Every certificate that parsed, with its depth (compacted: no DER names).
    pub(crate) certs: Vec<(usize, Arc<CertFacts>)>,
    /// Number of certificates sent.
    pub(crate) sent: usize,
    pub(crate) order_valid: bool,
    pub(crate) incomplete: bool,
    /// Path validation (or a pinned leaf's dates) at the time assessed: the path found, or why
    /// there is none. A certificate that did not parse fails here.
    pub(crate) path: Result<PathFound, Failure>,
    /// Our policy on the certificates (key sizes, signature hashes).
    pub(crate) policy: Result<(), Failure>,
}

/// Parses every certificate, checks hygiene and policy, and validates the path at `now`.
pub(crate) fn assess(sent: &[CertificateDer<'static>], roots: &Roots, now: UnixTime) -> Assessment {
    let mut certs = Vec::with_capacity(sent.len());
    let mut malformed = None;
    for (depth, der) in sent.iter().enumerate() {
        match cert::parse(der) {
            Ok(facts) => certs.push((depth, facts)),
            Err(e) if malformed.is_none() => {
                malformed = Some(Failure::new(
                    FailureReason::Other,
                    format!("certificate at depth {depth}: {e}"),
                ));
            }
            Err(_) => {}
        }
    }
    let (order_valid, incomplete) = hygiene(&certs, roots);
    let (depths, mut facts): (Vec<usize>, Vec<CertFacts>) = certs.into_iter().unzip();
    let verified = match malformed {
        Some(problem) => Err(problem),
        None => path_verdict(sent, &facts, roots, now),
    };
    let policy = policy(&facts);
    facts.iter_mut().for_each(CertFacts::compact);
    let facts: Vec<Arc<CertFacts>> = facts.into_iter().map(Arc::new).collect();
    let path = verified.map(|v| {
        // No certificate failed to parse here (else `path_verdict` never ran): a sent
        // certificate's index is its index in `facts`.
        let sent_on_path = v.sent.iter().filter_map(|i| facts.get(*i).cloned());
        let anchor = v.anchor.and_then(|a| roots.certs.get(a).cloned().flatten());
        PathFound {
            expiry: v.expiry,
            certs: sent_on_path.chain(anchor).collect(),
        }
    });
    Assessment {
        certs: depths.into_iter().zip(facts).collect(),
        sent: sent.len(),
        order_valid,
        incomplete,
        path,
        policy,
    }
}

/// The verdict on `sent` for `server_name`: the assessment's path, then the name check, then
/// our policy (the order a fresh validation reports them in). `sent` must be the chain
/// assessed.
pub(crate) fn conclude(
    assessment: &Assessment,
    sent: &[CertificateDer<'static>],
    server_name: &ServerName<'static>,
    now: UnixTime,
) -> Chain {
    let verdict = assessment.path.clone().and_then(|path| {
        check_name(sent, server_name, now)?;
        assessment.policy.clone()?;
        Ok(path)
    });
    let (problem, path_expiry, path) = match verdict {
        Ok(found) => (None, Some(found.expiry), found.certs),
        Err(problem) => (Some(problem), None, Vec::new()),
    };
    Chain {
        certs: assessment.certs.clone(),
        sent: assessment.sent,
        problem,
        path_expiry,
        path,
        order_valid: assessment.order_valid,
        incomplete: assessment.incomplete,
    }
}

/// A verified path as an assessment keeps it: its earliest not-after and its certificates,
/// leaf first, ending at the anchor when we have the anchor's certificate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PathFound {
    pub(crate) expiry: i64,
    pub(crate) certs: Vec<Arc<CertFacts>>,
}

/// The path webpki verified: which certificates sent it uses (indices, leaf first), which
/// anchor it ends at (index into the roots; `None` when the leaf itself is the anchor), and
/// the earliest not-after along it.
struct VerifiedPath {
    sent: Vec<usize>,
    anchor: Option<usize>,
    expiry: i64,
}

/// Chain order (each certificate issued by the next, by Name) and completeness (the last one's
/// issuer is sent or trusted; a self-issued last certificate is a root).
fn hygiene(certs: &[(usize, CertFacts)], roots: &Roots) -> (bool, bool) {
    let order_valid = certs.windows(2).all(|w| match w {
        [(_, a), (_, b)] => a.issuer_der == b.subject_der,
        _ => true,
    });
    let Some((_, last)) = certs.last() else {
        return (order_valid, false);
    };
    let trusted_issuer = |c: &CertFacts| {
        let inner = name_contents(&c.issuer_der);
        roots.anchors.iter().any(|a| {
            let s: &[u8] = a.subject.as_ref();
            s == c.issuer_der.as_slice() || Some(s) == inner
        })
    };
    // Complete when the last certificate's issuer is sent or trusted, or when any certificate
    // sent is issued by a trust anchor: a chain that ends in an extra cross-signed root (the
    // 2021 "DST Root CA X3" case) still reaches an anchor through the one before it.
    let known = last.self_issued
        || certs.iter().any(|(_, c)| c.subject_der == last.issuer_der)
        || certs.iter().any(|(_, c)| trusted_issuer(c));
    (order_valid, !known)
}

/// The contents of a DER SEQUENCE (a Name without its tag and length), as webpki stores a
/// trust anchor's subject.
fn name_contents(der: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = der.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&len0, rest) = rest.split_first()?;
    let skip = if len0 < 0x80 {
        0
    } else {
        usize::from(len0 & 0x7f)
    };
    rest.get(skip..)
}

/// The leaf as webpki reads it.
fn end_entity<'a>(
    sent: &'a [CertificateDer<'static>],
) -> Result<(webpki::EndEntityCert<'a>, &'a [CertificateDer<'static>]), Failure> {
    let (leaf_der, intermediates) = sent
        .split_first()
        .ok_or_else(|| Failure::new(FailureReason::Other, "server sent no certificate"))?;
    let leaf = webpki::EndEntityCert::try_from(leaf_der)
        .map_err(|e| Failure::new(FailureReason::Other, format!("leaf certificate: {e}")))?;
    Ok((leaf, intermediates))
}

/// webpki path validation (or a pinned leaf's dates): the path verified.
fn path_verdict(
    sent: &[CertificateDer<'static>],
    facts: &[CertFacts],
    roots: &Roots,
    now: UnixTime,
) -> Result<VerifiedPath, Failure> {
    let (leaf, intermediates) = end_entity(sent)?;
    match sent
        .first()
        .and_then(|der| pinned_leaf(der, facts, roots, now))
    {
        // The leaf itself is a trust anchor (a pinned self-signed certificate): no path to
        // build, only its own dates.
        Some(dates) => dates.map(|()| VerifiedPath {
            sent: vec![0],
            anchor: None,
            expiry: facts.first().map_or(i64::MAX, |f| f.not_after),
        }),
        None => verified_path(&leaf, sent, intermediates, facts, roots, now),
    }
}

/// Whether the leaf is valid for the name the target expects.
fn check_name(
    sent: &[CertificateDer<'static>],
    server_name: &ServerName<'static>,
    now: UnixTime,
) -> Result<(), Failure> {
    let (leaf, _) = end_entity(sent)?;
    leaf.verify_is_valid_for_subject_name(server_name)
        .map_err(|e| {
            let detail = match &e {
                webpki::Error::CertNotValidForName(_) => describe::path_error(&e, now),
                _ => format!(
                    "certificate is not valid for {}: {}",
                    server_name.to_str(),
                    describe::path_error(&e, now)
                ),
            };
            Failure::new(FailureReason::HostnameMismatch, detail)
        })
}

/// webpki path validation against the anchors: the path found, with its earliest not-after.
fn verified_path(
    leaf: &webpki::EndEntityCert<'_>,
    sent: &[CertificateDer<'static>],
    intermediates: &[CertificateDer<'static>],
    facts: &[CertFacts],
    roots: &Roots,
    now: UnixTime,
) -> Result<VerifiedPath, Failure> {
    let algs = SIGNATURE_ALGORITHMS.all;
    let path = leaf
        .verify_for_usage(
            algs,
            &roots.anchors,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| classify_path_error(&e, facts, now))?;
    let mut expiry = facts.first().map(|f| f.not_after).unwrap_or(i64::MAX);
    let mut on_path = vec![0];
    for inter in path.intermediate_certificates() {
        if let Some(pos) = sent.iter().position(|d| d.as_ref() == inter.der().as_ref()) {
            on_path.push(pos);
            if let Some(f) = facts.get(pos) {
                expiry = expiry.min(f.not_after);
            }
        }
    }
    let found = path.anchor();
    let anchor = roots.anchors.iter().position(|a| {
        a.subject == found.subject && a.subject_public_key_info == found.subject_public_key_info
    });
    if let Some(Some(f)) = anchor.and_then(|i| roots.certs.get(i)) {
        expiry = expiry.min(f.not_after);
    }
    Ok(VerifiedPath {
        sent: on_path,
        anchor,
        expiry,
    })
}

/// When the leaf is itself one of the trust anchors (same subject and key), its validity
/// dates; `None` otherwise.
fn pinned_leaf(
    leaf_der: &CertificateDer<'_>,
    facts: &[CertFacts],
    roots: &Roots,
    now: UnixTime,
) -> Option<Result<(), Failure>> {
    let as_anchor = webpki::anchor_from_trusted_cert(leaf_der).ok()?;
    let pinned = roots.anchors.iter().any(|a| {
        a.subject == as_anchor.subject
            && a.subject_public_key_info == as_anchor.subject_public_key_info
    });
    if !pinned {
        return None;
    }
    let f = facts.first()?;
    let now = now.as_secs() as i64;
    Some(if now > f.not_after {
        Err(Failure::new(
            FailureReason::Expired,
            format!(
                "pinned certificate expired {}",
                crate::text::when(f.not_after, now)
            ),
        ))
    } else if now < f.not_before {
        Err(Failure::new(
            FailureReason::NotYetValid,
            format!(
                "pinned certificate is not valid until {}",
                crate::text::when(f.not_before, now)
            ),
        ))
    } else {
        Ok(())
    })
}

/// Our policy on top of webpki: RSA under 2048 bits, SHA-1/MD5 signatures (self-signed roots
/// excepted: their signature is never checked).
fn policy(facts: &[CertFacts]) -> Result<(), Failure> {
    for (depth, f) in facts.iter().enumerate() {
        if let Some(bits) = f.rsa_bits.filter(|b| *b < MIN_RSA_BITS) {
            return Err(Failure::new(
                FailureReason::WeakKey,
                format!("certificate at depth {depth} has a {bits}-bit RSA key (minimum {MIN_RSA_BITS})"),
            ));
        }
        if f.weak_signature && !f.self_issued {
            return Err(Failure::new(
                FailureReason::BadSignatureAlgorithm,
                format!(
                    "certificate at depth {depth} is signed with {}",
                    f.signature_algorithm
                ),
            ));
        }
    }
    Ok(())
}

fn classify_path_error(e: &webpki::Error, facts: &[CertFacts], now: UnixTime) -> Failure {
    use webpki::Error as E;
    let mut detail = describe::path_error(e, now);
    // Say which certificate a date problem is about: webpki only gives the date.
    let dated = match e {
        E::CertExpired { not_after, .. } => Some(not_after.as_secs() as i64),
        E::CertNotValidYet { not_before, .. } => Some(not_before.as_secs() as i64),
        _ => None,
    };
    if let Some(t) = dated {
        let which = facts
            .iter()
            .enumerate()
            .find(|(_, f)| f.not_after == t || f.not_before == t);
        if let Some((depth, f)) = which.filter(|(d, _)| *d > 0) {
            let rest = detail.trim_start_matches("certificate");
            detail = format!("the certificate at depth {depth} ({}){rest}", f.subject);
        }
    }
    let reason = match e {
        E::CertExpired { .. } => FailureReason::Expired,
        E::CertNotValidYet { .. } => FailureReason::NotYetValid,
        // A lone self-issued certificate (CA:TRUE or not, as `openssl req -x509` makes them).
        E::UnknownIssuer | E::CaUsedAsEndEntity
            if facts.len() == 1 && facts.iter().all(|f| f.self_issued) =>
        {
            return Failure::new(
                FailureReason::SelfSigned,
                "self-signed certificate not in the trust store",
            );
        }
        E::UnknownIssuer => FailureReason::UnknownIssuer,
        E::CertNotValidForName(_) => FailureReason::HostnameMismatch,
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::InvalidSignatureForPublicKey => {
            // Our policy usually explains why webpki could not check a signature.
            return policy(facts)
                .err()
                .unwrap_or_else(|| Failure::new(FailureReason::BadSignatureAlgorithm, detail));
        }
        _ => FailureReason::Other,
    };
    Failure::new(reason, detail)
}
