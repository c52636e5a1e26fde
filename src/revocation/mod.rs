//! Revocation checks beyond stapling: the OCSP responder named in a certificate's AIA and the
//! CRL of its CRL Distribution Point, asked over plain HTTP, answers shared by the whole fleet.
//!
//! A probe with `revocation:` on hands `latest` the certificates of its verified path (found by
//! `subjects` from the chain sent and the verdict on it); `latest` answers at once with what the
//! shared `cache` knows and starts, beside the probe, the fetches that are due (`fetch` is the
//! bounded HTTP client, `responder` the OCSP exchange, `crl` the CRL's parsing and signature).
//! A probe therefore never waits for a responder: the first probe of a certificate reports no
//! revocation facts, the next one the answer its predecessor started. Parsing and verifying
//! OCSP responses (and building the request) is `tls::ocsp`'s; turning the facts into series,
//! the failure reason `revoked` and the status page sentence is the prober's, `metrics/`' and
//! `status`'.

pub(crate) mod cache;
pub(crate) mod crl;
pub(crate) mod fetch;
pub(crate) mod responder;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use rustls_pki_types::{CertificateDer, TrustAnchor};
use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::text;
use crate::tls::cert::hex;
use crate::tls::chain::Chain;
use crate::tls::ocsp::Issuer;
use crate::verdict::{Failure, FailureReason};

/// Default bound on the size of one CRL download (`revocation_max_crl_size`).
pub const DEFAULT_MAX_CRL_SIZE: u64 = 8 * 1024 * 1024;

/// Which revocation sources a target asks (`revocation:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// No revocation check beyond the stapled response (the default).
    #[default]
    Off,
    /// The OCSP responder of the leaf.
    Ocsp,
    /// The CRL of the leaf.
    Crl,
    /// OCSP and CRL, for every certificate of the verified path below the trust anchor.
    All,
}

impl Mode {
    /// Every mode, in the order the config error lists them.
    pub const ALL: [Mode; 4] = [Mode::Off, Mode::Ocsp, Mode::Crl, Mode::All];

    /// The name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Ocsp => "ocsp",
            Mode::Crl => "crl",
            Mode::All => "all",
        }
    }

    fn methods(self) -> &'static [Method] {
        match self {
            Mode::Off => &[],
            Mode::Ocsp => &[Method::Ocsp],
            Mode::Crl => &[Method::Crl],
            Mode::All => &[Method::Ocsp, Method::Crl],
        }
    }
}

/// A target's revocation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Settings {
    pub mode: Mode,
    /// At most this many bytes of one CRL are read (`revocation_max_crl_size`).
    pub max_crl_size: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Off,
            max_crl_size: DEFAULT_MAX_CRL_SIZE,
        }
    }
}

/// Where a revocation answer comes from (`method` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Method {
    Ocsp,
    Crl,
}

impl Method {
    /// The `method` label.
    pub fn as_label(self) -> &'static str {
        match self {
            Method::Ocsp => "ocsp",
            Method::Crl => "crl",
        }
    }

    /// How people call the source, in a sentence.
    fn source(self) -> &'static str {
        match self {
            Method::Ocsp => "OCSP responder",
            Method::Crl => "CRL",
        }
    }
}

/// What the source says of one certificate (`status` label).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Good,
    /// Revoked at this Unix time.
    Revoked {
        at: i64,
    },
    /// The responder does not know the certificate (OCSP only: a CRL either lists it or not).
    Unknown,
    /// No trustworthy answer: why, in words.
    Error(String),
}

impl Status {
    /// The `status` label.
    pub fn as_label(&self) -> &'static str {
        match self {
            Status::Good => "good",
            Status::Revoked { .. } => "revoked",
            Status::Unknown => "unknown",
            Status::Error(_) => "error",
        }
    }
}

/// The latest known revocation state of one certificate of a verified path, by one method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// Position in the chain sent (0 is the leaf), like the certificate series' `depth`.
    pub depth: usize,
    pub method: Method,
    /// The responder or CRL asked.
    pub url: String,
    pub status: Status,
    /// When the answer was fetched (Unix seconds).
    pub checked_at: i64,
    /// The answer's nextUpdate, when it has one.
    pub next_update: Option<i64>,
}

impl fmt::Display for Fact {
    /// "revoked since 2026-01-02T03:04:05Z (3 days ago) according to the CRL at http://…".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = self.method.source();
        match &self.status {
            Status::Good => write!(f, "good according to the {source} at {}", self.url),
            Status::Revoked { at } => write!(
                f,
                "revoked since {} according to the {source} at {}",
                text::rfc3339(*at),
                self.url
            ),
            Status::Unknown => write!(f, "unknown to the {source} at {}", self.url),
            Status::Error(why) => write!(f, "not checked: {why}"),
        }
    }
}

/// One certificate to check: its DER, its issuer and where to ask.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    /// Position in the chain sent.
    pub(crate) depth: usize,
    pub(crate) der: Vec<u8>,
    pub(crate) issuer: Issuer,
    /// The serial number's content octets, as CRLs and OCSP name the certificate.
    pub(crate) serial: Vec<u8>,
    /// The first `http://` OCSP responder of its AIA, or why there is none to ask.
    pub(crate) ocsp: Option<Result<String, String>>,
    /// The first `http://` URL of its CRL Distribution Points, or why there is none to ask.
    pub(crate) crl: Option<Result<String, String>>,
}

/// The certificates of `chain`'s verified path that `mode` checks: the leaf (`ocsp`, `crl`), or
/// every certificate below the trust anchor (`all`); self-issued ones (roots) never. `sent` is
/// the chain as the server sent it, which `chain` judged. Empty without a verified path.
pub(crate) fn subjects(
    sent: &[CertificateDer<'_>],
    chain: &Chain,
    anchors: &[TrustAnchor<'_>],
    mode: Mode,
) -> Vec<Subject> {
    if mode == Mode::Off || chain.problem.is_some() {
        return Vec::new();
    }
    let fingerprints: Vec<String> = sent
        .iter()
        .map(|c| hex(digest::digest(&digest::SHA256, c.as_ref()).as_ref()))
        .collect();
    let wanted = if mode == Mode::All { usize::MAX } else { 1 };
    chain
        .path
        .iter()
        .take(wanted)
        .filter(|facts| !facts.self_issued)
        .filter_map(|facts| {
            let depth = fingerprints
                .iter()
                .position(|f| *f == facts.fingerprint_sha256)?;
            let der = sent.get(depth)?;
            // The issuer among the others sent, else a trust anchor (`Issuer::find` looks at
            // everything after the first certificate).
            let mut candidates = vec![der.clone()];
            candidates.extend(
                sent.iter()
                    .enumerate()
                    .filter(|(i, _)| *i != depth)
                    .map(|(_, c)| c.clone()),
            );
            let issuer = Issuer::find(&candidates, anchors)?;
            subject(depth, der.as_ref(), issuer, anchors)
        })
        .collect()
}

/// The latest known facts for `subjects`, by the methods `settings` asks; fetches that are
/// due start in the background (never awaited here).
pub(crate) fn latest(subjects: &[Subject], settings: &Settings) -> Vec<Fact> {
    let now = unix_now();
    let mut facts = Vec::new();
    for s in subjects {
        for &method in settings.mode.methods() {
            let url = match method {
                Method::Ocsp => &s.ocsp,
                Method::Crl => &s.crl,
            };
            let fact = match url {
                None => None,
                Some(Err(why)) => Some(Fact {
                    depth: s.depth,
                    method,
                    url: String::new(),
                    status: Status::Error(why.clone()),
                    checked_at: now,
                    next_update: None,
                }),
                Some(Ok(url)) => cache::shared().latest(s, method, url, settings, now),
            };
            facts.extend(fact);
        }
    }
    facts
}

/// The failure a revoked certificate on the verified path means, if any fact says so.
pub(crate) fn revoked_failure(facts: &[Fact], now: i64) -> Option<Failure> {
    let fact = facts
        .iter()
        .find(|f| matches!(f.status, Status::Revoked { .. }))?;
    let Status::Revoked { at } = fact.status else {
        return None;
    };
    let which = if fact.depth == 0 {
        "the leaf certificate".to_string()
    } else {
        format!("the certificate at depth {}", fact.depth)
    };
    Some(Failure::new(
        FailureReason::Revoked,
        format!(
            "{which} was revoked {} according to the {} at {}",
            text::when(at, now),
            fact.method.source(),
            fact.url
        ),
    ))
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The subject for `der`, with the URLs its extensions name; `None` for a trust anchor (an
/// intermediate named in `ca_file` ends the path: nothing above or at it is checked).
fn subject(
    depth: usize,
    der: &[u8],
    issuer: Issuer,
    anchors: &[TrustAnchor<'_>],
) -> Option<Subject> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let is_anchor = anchors
        .iter()
        .map(Issuer::from_anchor)
        .any(|a| a.name() == cert.subject().as_raw() && a.spki() == cert.public_key().raw);
    if is_anchor {
        return None;
    }
    let mut ocsp = Vec::new();
    let mut crl = Vec::new();
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for desc in &aia.accessdescs {
                    if desc.access_method.to_id_string() == OID_AD_OCSP {
                        if let GeneralName::URI(uri) = desc.access_location {
                            ocsp.push(uri.to_string());
                        }
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        crl.extend(names.iter().filter_map(|n| match n {
                            GeneralName::URI(uri) => Some(uri.to_string()),
                            _ => None,
                        }));
                    }
                }
            }
            _ => {}
        }
    }
    Some(Subject {
        depth,
        der: der.to_vec(),
        issuer,
        serial: cert.raw_serial().to_vec(),
        ocsp: pick_url(&ocsp, "OCSP responder"),
        crl: pick_url(&crl, "CRL distribution point"),
    })
}

/// id-ad-ocsp.
const OID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";

/// The first `http://` URL of `urls` (the only scheme fetched); `None` when there is none at
/// all, an error when there are only others.
fn pick_url(urls: &[String], what: &str) -> Option<Result<String, String>> {
    let first = urls.first()?;
    Some(
        urls.iter()
            .find(|u| {
                u.get(..7)
                    .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
            })
            .cloned()
            .ok_or_else(|| {
                format!("the {what} {first} is not an http:// URL, the only kind fetched")
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(status: Status) -> Fact {
        Fact {
            depth: 0,
            method: Method::Crl,
            url: "http://crl.example/ca.crl".to_string(),
            status,
            checked_at: 1_700_000_000,
            next_update: None,
        }
    }

    #[test]
    fn only_http_urls_are_picked() {
        let urls = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(pick_url(&[], "CRL"), None);
        assert_eq!(
            pick_url(&urls(&["ldap://x/cn=ca", "HTTP://crl.example/a"]), "CRL"),
            Some(Ok("HTTP://crl.example/a".to_string()))
        );
        assert_eq!(
            pick_url(&urls(&["https://crl.example/a"]), "CRL distribution point"),
            Some(Err(
                "the CRL distribution point https://crl.example/a is not an \
                      http:// URL, the only kind fetched"
                    .to_string()
            ))
        );
    }

    #[test]
    fn revoked_fact_fails_the_probe_with_reason_revoked() {
        let facts = [
            fact(Status::Good),
            fact(Status::Revoked { at: 1_700_000_000 }),
        ];
        let failure = revoked_failure(&facts, 1_700_000_000 + 3 * 86_400).expect("revoked");
        assert_eq!(failure.reason, FailureReason::Revoked);
        assert_eq!(
            failure.detail,
            "the leaf certificate was revoked 2023-11-14T22:13:20Z (3 days ago) according \
             to the CRL at http://crl.example/ca.crl"
        );
        assert_eq!(revoked_failure(&[fact(Status::Unknown)], 0), None);
    }

    #[test]
    fn facts_read_as_sentences() {
        assert_eq!(
            fact(Status::Revoked { at: 1_700_000_000 }).to_string(),
            "revoked since 2023-11-14T22:13:20Z according to the CRL at http://crl.example/ca.crl"
        );
        assert_eq!(
            fact(Status::Error("the CRL at x expired".to_string())).to_string(),
            "not checked: the CRL at x expired"
        );
    }
}
