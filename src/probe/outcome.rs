//! What one check of one address found: plain facts (parsed certificates, negotiated
//! parameters, verdicts, timings), never rendered text.
//!
//! Every prober returns a `ProbeOutcome` through the one contract in `probe::run`; the
//! scheduler and `/probe` store or render them alike. How a fact becomes a series or a table
//! cell is `metrics/`' and the status page's business. The types serialize (serde) so that
//! `storage` can keep the latest outcomes across a restart; a change to their shape is a change
//! of the state file format (see `storage::VERSION`).

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::probe::aia::AiaFacts;
use crate::probe::http::{HttpFacts, RedirectFacts};
use crate::probe::legacy::ScanResult;
use crate::revocation::Fact;
use crate::tls::chain::Chain;
use crate::tls::ct::CtFacts;
use crate::tls::ocsp::{OcspError, Stapled};
use crate::verdict::{Failure, FailureReason};

/// Durations of the phases of one probe; a phase not reached is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    pub resolve: Option<Duration>,
    /// TCP connect; through a proxy, the connection to the proxy.
    pub connect: Option<Duration>,
    /// Asking the proxy for the tunnel (`proxy_url:` targets). Left out of state files when
    /// absent, so files of targets without a proxy read (and are written) as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Duration>,
    /// The protocol's STARTTLS dialogue, for `starttls:` targets.
    pub starttls: Option<Duration>,
    pub handshake: Option<Duration>,
}

/// Parameters negotiated by a completed handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Negotiated {
    /// `TLS 1.2` or `TLS 1.3`.
    pub version: &'static str,
    /// IANA cipher suite name: a static name for every suite rustls knows (no allocation per
    /// probe or per target), owned only for an unknown code or as read from a state file.
    pub cipher: Cow<'static, str>,
    /// IANA key-exchange group name, when the handshake used one (static like `cipher`).
    pub group: Option<Cow<'static, str>>,
}

/// Everything one check of one address found. What few probes have (a scan, an HTTP answer,
/// a redirect, an AIA-completed chain) is boxed: a target keeps its latest outcome, and inline
/// these were 216 of its 592 bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeOutcome {
    /// `None` on success; otherwise the single reason the check counts as failed.
    pub failure: Option<Failure>,
    /// A TLS session was established (chain problems not counted).
    pub handshake_ok: bool,
    pub phases: Phases,
    pub duration: Duration,
    pub finished_at: SystemTime,
    pub negotiated: Option<Negotiated>,
    /// The chain the server sent, judged: from the handshake, or for a scan the chain of its
    /// highest accepted version below TLS 1.3.
    pub chain: Option<Arc<Chain>>,
    /// The server sent a CertificateRequest.
    pub client_auth_requested: bool,
    /// What the server stapled: `None` when it stapled nothing (or no handshake got that far),
    /// else the verified response or why it could not be used.
    pub ocsp: Option<Result<Stapled, OcspError>>,
    /// The server answered rustls's OCSP request at all (certificates received).
    pub ocsp_checked: bool,
    /// The latest known revocation state of the verified path's certificates (`revocation:`
    /// targets), one fact per certificate and method: what the shared cache knew when this
    /// probe ran (see `revocation`). Empty when off, before the first answer, or without a
    /// verified path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation: Vec<Fact>,
    /// The Certificate Transparency timestamps the leaf came with (TLS probes that received
    /// certificates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ct: Option<CtFacts>,
    /// The chain completed from AIA caIssuers URLs (`aia_fetch` targets that received
    /// certificates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aia: Option<Box<AiaFacts>>,
    /// The HTTP GET over the session (`http:` targets): its facts, or why it failed.
    pub http: Option<Box<Result<HttpFacts, String>>>,
    /// The plain-HTTP redirect check (`probe: http_redirect` targets).
    pub redirect: Option<Box<RedirectFacts>>,
    /// The legacy protocol and weak cipher scan (`Check::Scan`).
    pub scan: Option<Box<ScanResult>>,
}

impl ProbeOutcome {
    /// An outcome with nothing found yet, finishing now; probers fill in what they learn.
    pub fn new(phases: Phases, duration: Duration) -> Self {
        ProbeOutcome {
            failure: None,
            handshake_ok: false,
            phases,
            duration,
            finished_at: SystemTime::now(),
            negotiated: None,
            chain: None,
            client_auth_requested: false,
            ocsp: None,
            ocsp_checked: false,
            revocation: Vec::new(),
            ct: None,
            aia: None,
            http: None,
            redirect: None,
            scan: None,
        }
    }

    /// A check that failed before it found anything.
    pub fn failed(failure: Failure, phases: Phases, duration: Duration) -> Self {
        ProbeOutcome {
            failure: Some(failure),
            ..ProbeOutcome::new(phases, duration)
        }
    }

    pub fn success(&self) -> bool {
        self.failure.is_none()
    }

    pub fn reason(&self) -> Option<FailureReason> {
        self.failure.as_ref().map(|f| f.reason)
    }
}

/// The outcome of one check of one address: the address is set for `resolve: all` targets
/// (their series carry an `ip` label) and `None` otherwise.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddressOutcome {
    pub ip: Option<IpAddr>,
    pub outcome: Arc<ProbeOutcome>,
}

/// `Negotiated` as stored: the version as an owned name, read back into the static names
/// `tls::names::version` gives (a name it does not know reads as `unknown`, as that function
/// says of such versions).
#[derive(Deserialize)]
struct StoredNegotiated {
    version: String,
    cipher: String,
    group: Option<String>,
}

impl<'de> Deserialize<'de> for Negotiated {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const NAMES: [&str; 5] = ["SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"];
        let s = StoredNegotiated::deserialize(d)?;
        Ok(Negotiated {
            version: NAMES
                .into_iter()
                .find(|n| *n == s.version)
                .unwrap_or("unknown"),
            cipher: Cow::Owned(s.cipher),
            group: s.group.map(Cow::Owned),
        })
    }
}
