//! The legacy protocol and weak cipher scan: which protocol versions (SSL 3.0 to TLS 1.3) and
//! which weak cipher classes (RC4, 3DES, CBC-SHA1, NULL, EXPORT, anon) a server still accepts.
//!
//! rustls cannot speak what we look for, so the scan hand-builds ClientHellos and reads the
//! server's answer up to its ServerHello: a server accepts a version or a suite when its
//! ServerHello chooses it; an alert, a ServerHello choosing something else, or a closed
//! connection means it does not. No key exchange happens. Replies are parsed with `tls-parser`
//! over our own bounded record reassembly. For the highest accepted version below TLS 1.3 the
//! scan reads on to the server's Certificate message (sent in clear there), so a server that
//! only speaks legacy protocols still shows its chain.
//!
//! What a "weak class" is comes from the IANA attributes in `tls-parser`'s suite registry, not
//! from a hand-kept list. At most `MAX_HANDSHAKES` ClientHellos per scan, at most `parallel` in
//! flight, everything bounded by the caller's deadline. Scheduling, configuration and metrics
//! are left to the caller; this module only scans one address. Every ClientHello goes over a
//! fresh connection reached the caller's way (`Route`): straight, or through the target's
//! proxy (`probe::connect`), and after the target's STARTTLS upgrade (`probe::starttls`) when
//! it has one.
//!
//! This file owns the public face: the versions and classes asked about, the result, the
//! error, and the `scan` entry point. The ClientHello is built in `hello`, the server's flight
//! read in `flight`, the suite lists chosen in `suites`, and the two phases run in `scan`.

mod flight;
mod hello;
mod scan;
mod suites;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tls_parser::{
    TlsCipherAu, TlsCipherEnc, TlsCipherEncMode, TlsCipherKx, TlsCipherMac, TlsCipherSuite,
};
use tokio::time::Instant;

use crate::config::{IpProtocol, Proxy, StartTls};
use crate::probe::proxy::Destination;
use crate::verdict::FailureReason;
use scan::Peer;

/// ClientHellos one scan sends at most: 5 versions, then 6 classes over up to 4 versions.
pub const MAX_HANDSHAKES: u32 = 30;

/// A protocol version the scan asks for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum LegacyVersion {
    Ssl30,
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl LegacyVersion {
    pub const ALL: [LegacyVersion; 5] = [
        LegacyVersion::Ssl30,
        LegacyVersion::Tls10,
        LegacyVersion::Tls11,
        LegacyVersion::Tls12,
        LegacyVersion::Tls13,
    ];

    /// The `version` label value of `tls_protocol_accepted`.
    pub fn as_label(self) -> &'static str {
        match self {
            LegacyVersion::Ssl30 => "SSL 3.0",
            LegacyVersion::Tls10 => "TLS 1.0",
            LegacyVersion::Tls11 => "TLS 1.1",
            LegacyVersion::Tls12 => "TLS 1.2",
            LegacyVersion::Tls13 => "TLS 1.3",
        }
    }

    /// The version number on the wire.
    fn wire(self) -> u16 {
        match self {
            LegacyVersion::Ssl30 => 0x0300,
            LegacyVersion::Tls10 => 0x0301,
            LegacyVersion::Tls11 => 0x0302,
            LegacyVersion::Tls12 => 0x0303,
            LegacyVersion::Tls13 => 0x0304,
        }
    }
}

/// A class of weak cipher suites.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum WeakClass {
    Rc4,
    TripleDes,
    /// CBC with HMAC-SHA1 (3DES included).
    CbcSha1,
    /// No encryption.
    Null,
    /// The 40/56-bit export suites.
    Export,
    /// No server authentication (DH_anon, ECDH_anon).
    Anon,
}

impl WeakClass {
    pub const ALL: [WeakClass; 6] = [
        WeakClass::Rc4,
        WeakClass::TripleDes,
        WeakClass::CbcSha1,
        WeakClass::Null,
        WeakClass::Export,
        WeakClass::Anon,
    ];

    /// The `class` label value of `tls_weak_cipher_accepted`.
    pub fn as_label(self) -> &'static str {
        match self {
            WeakClass::Rc4 => "RC4",
            WeakClass::TripleDes => "3DES",
            WeakClass::CbcSha1 => "CBC-SHA1",
            WeakClass::Null => "NULL",
            WeakClass::Export => "EXPORT",
            WeakClass::Anon => "anon",
        }
    }

    /// Whether the IANA suite `id` belongs to this class (unknown ids belong to none).
    pub fn contains(self, id: u16) -> bool {
        TlsCipherSuite::from_id(id).is_some_and(|s| self.matches(s))
    }

    fn matches(self, s: &TlsCipherSuite) -> bool {
        if s.kx == TlsCipherKx::Tls13 || s.id.0 == 0 || s.name.ends_with("_SCSV") {
            // TLS 1.3 suites (integrity-only ones included), TLS_NULL_WITH_NULL_NULL and the
            // signalling values are never negotiated by the versions these classes cover.
            return false;
        }
        match self {
            WeakClass::Rc4 => s.enc == TlsCipherEnc::Rc4,
            WeakClass::TripleDes => s.enc == TlsCipherEnc::TripleDes,
            WeakClass::CbcSha1 => {
                s.enc_mode == TlsCipherEncMode::Cbc && s.mac == TlsCipherMac::HmacSha1
            }
            WeakClass::Null => s.enc == TlsCipherEnc::Null,
            WeakClass::Export => s.name.contains("EXPORT"),
            WeakClass::Anon => {
                s.au == TlsCipherAu::Null && matches!(s.kx, TlsCipherKx::Dh | TlsCipherKx::Ecdh)
            }
        }
    }
}

/// What one scan found. The probe takes `legacy_chain` out to judge it into the outcome's
/// chain (no outcome keeps the DER), and state files store the rest.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ScanResult {
    /// Every version of `LegacyVersion::ALL`, in that order, with whether the server accepted
    /// it.
    pub protocols: Vec<(LegacyVersion, bool)>,
    /// Every class of `WeakClass::ALL`, in that order, with whether the server accepted a suite
    /// of it over any version below TLS 1.3 it accepts.
    pub weak: Vec<(WeakClass, bool)>,
    /// ClientHellos sent (at most `MAX_HANDSHAKES`).
    pub handshakes: u32,
    pub duration: Duration,
    /// The certificates the server sent in the handshake of its highest accepted version below
    /// TLS 1.3 (leaf first, as sent); `None` when it accepts none or sent none (anon suites).
    #[serde(skip)]
    pub legacy_chain: Option<Vec<CertificateDer<'static>>>,
}

impl ScanResult {
    /// Whether the server accepts `v`; `None` only for a version missing from `protocols`
    /// (a scan lists every one).
    pub fn accepts(&self, v: LegacyVersion) -> Option<bool> {
        self.protocols
            .iter()
            .find(|(p, _)| *p == v)
            .map(|(_, a)| *a)
    }

    /// Whether the server accepts a suite of `c`; `None` only for a class missing from `weak`
    /// (a scan lists every one).
    pub fn accepts_weak(&self, c: WeakClass) -> Option<bool> {
        self.weak.iter().find(|(w, _)| *w == c).map(|(_, a)| *a)
    }
}

/// Why a scan could not tell what the server accepts; then nothing of it is known. A server
/// that refuses every ClientHello (alerts, closed connections, silence until the per-hello
/// timeout, answers that are not TLS) is no error: it accepts nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScanError {
    /// The target's name did not resolve; the resolver's sentence, which names the host.
    #[error("{0}")]
    Resolve(String),
    /// The target's name (held here) resolved to no address.
    #[error("resolve {0}: no addresses")]
    NoAddress(String),
    /// A TCP connection for a ClientHello was refused or failed.
    #[error("connect to {addr} failed: {cause}")]
    Connect {
        addr: Destination,
        cause: Arc<io::Error>,
    },
    /// A TCP connection for a ClientHello did not open within the per-hello timeout.
    #[error("connect to {addr} timed out after {after:?}")]
    ConnectTimedOut { addr: Destination, after: Duration },
    /// The caller's deadline came while a ClientHello was `doing` its step ("connecting",
    /// "sending a ClientHello", "reading").
    #[error("scan of {addr} ran out of time {doing}")]
    OutOfTime {
        addr: Destination,
        doing: &'static str,
    },
    /// The caller's deadline came before both phases finished.
    #[error("scan of {addr} did not finish in time")]
    TimedOut { addr: Destination },
    /// The scan wanted more than `MAX_HANDSHAKES` ClientHellos. A guard: the two phases need
    /// at most 5 + 6 × 4 = 29.
    #[error("scan of {addr} needed more than {} handshakes", MAX_HANDSHAKES)]
    TooManyHandshakes { addr: Destination },
    /// A `check` ("version", "cipher class") ended without an answer (its task was lost).
    #[error("scan of {addr} is incomplete: a {check} check did not finish")]
    Incomplete {
        addr: Destination,
        check: &'static str,
    },
    /// The route's proxy gave no tunnel for a ClientHello (its sentence, proxy redacted).
    #[error("{0}")]
    Proxy(String),
    /// A name (sent to no proxy) could not be reached; the connect sentence.
    #[error("{0}")]
    Unreachable(String),
    /// The STARTTLS upgrade before a ClientHello failed (`refused`: the server said no in its
    /// protocol).
    #[error("STARTTLS before a ClientHello to {addr} failed: {detail}")]
    Starttls {
        addr: Destination,
        refused: bool,
        detail: String,
    },
}

impl ScanError {
    /// The failure reason of the scan's outcome: `proxy_error` and `starttls_refused` where
    /// they apply, `other` for the rest.
    pub fn reason(&self) -> FailureReason {
        match self {
            ScanError::Proxy(_) => FailureReason::ProxyError,
            ScanError::Starttls { refused: true, .. } => FailureReason::StarttlsRefused,
            _ => FailureReason::Other,
        }
    }
}

/// How a scan reaches its peer: through a proxy or not, with a STARTTLS upgrade or not. The
/// default is straight to the address, no upgrade.
#[derive(Debug, Clone)]
pub struct Route {
    pub proxy: Option<Arc<Proxy>>,
    pub starttls: Option<StartTls>,
    /// The name the STARTTLS dialogue uses (XMPP's `to`).
    pub server_name: String,
    /// The family tried first for the proxy's name.
    pub ip_protocol: IpProtocol,
}

impl Default for Route {
    fn default() -> Route {
        Route {
            proxy: None,
            starttls: None,
            server_name: String::new(),
            ip_protocol: IpProtocol::Any,
        }
    }
}

/// Scans `addr`: first one ClientHello per version, then, for each weak class, ClientHellos
/// offering only that class over the accepted versions below TLS 1.3 (highest first, until
/// one is accepted). `server_name` is sent as SNI when it is a DNS name. At most `parallel`
/// (at least 1) ClientHellos are in flight; nothing runs past `deadline`. `Err` when any
/// ClientHello could not be asked (unreachable, out of time): then no answer is trusted.
/// Never panics on what the server sends.
pub async fn scan(
    addr: SocketAddr,
    server_name: Option<&str>,
    deadline: Instant,
    parallel: usize,
) -> Result<ScanResult, ScanError> {
    scan_via(
        Destination::Addr(addr),
        Route::default(),
        server_name,
        deadline,
        parallel,
    )
    .await
}

/// `scan` of `to`, every ClientHello over a fresh connection reached by `route` (through its
/// proxy, after its STARTTLS upgrade).
pub async fn scan_via(
    to: Destination,
    route: Route,
    server_name: Option<&str>,
    deadline: Instant,
    parallel: usize,
) -> Result<ScanResult, ScanError> {
    let started = Instant::now();
    let sni = server_name.and_then(hello::dns_name);
    // Behind STARTTLS one at a time and spaced (see `scan::STARTTLS_SPACING`).
    let parallel = if route.starttls.is_some() {
        1
    } else {
        parallel
    };
    let peer = Arc::new(Peer::reached(to, route, sni, deadline));
    let found = scan::run(&peer, parallel.max(1)).await?;
    Ok(ScanResult {
        protocols: found.protocols,
        weak: found.weak,
        handshakes: peer.handshakes(),
        duration: started.elapsed(),
        legacy_chain: found.legacy_chain,
    })
}

/// The flight reader alone, for `crate::fuzzing` (fuzz targets and property tests): its answer
/// when `pieces` arrive one after another and then the connection closes, as its `Debug` text.
/// `capture` is the version whose chain to read on to, as in a scan.
#[doc(hidden)]
pub(crate) fn read_flight<'a>(
    capture: Option<u16>,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> String {
    let mut reader = flight::Flight::new(capture);
    let reply = pieces.into_iter().find_map(|piece| reader.feed(piece));
    let reply = reply.unwrap_or_else(|| reader.closed("connection closed"));
    format!("{reply:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_contract_strings() {
        let v: Vec<_> = LegacyVersion::ALL.iter().map(|v| v.as_label()).collect();
        assert_eq!(v, ["SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]);
        let c: Vec<_> = WeakClass::ALL.iter().map(|c| c.as_label()).collect();
        assert_eq!(c, ["RC4", "3DES", "CBC-SHA1", "NULL", "EXPORT", "anon"]);
    }

    #[test]
    fn weak_classes_follow_the_iana_attributes() {
        let (rc4_sha, des3, aes_sha, aes_gcm, null_sha) = (0x0005, 0x000a, 0x002f, 0x009c, 0x0002);
        let (export_rc4, adh_aes, aecdh_null, tls13) = (0x0003, 0x0034, 0xc015, 0x1301);
        assert!(WeakClass::Rc4.contains(rc4_sha));
        assert!(WeakClass::TripleDes.contains(des3));
        assert!(
            WeakClass::CbcSha1.contains(des3),
            "3DES is CBC with HMAC-SHA1"
        );
        assert!(WeakClass::CbcSha1.contains(aes_sha));
        assert!(!WeakClass::CbcSha1.contains(aes_gcm));
        assert!(
            !WeakClass::CbcSha1.contains(0x003c),
            "AES-CBC-SHA256 is not SHA-1"
        );
        assert!(WeakClass::Null.contains(null_sha));
        assert!(WeakClass::Null.contains(aecdh_null));
        assert!(WeakClass::Anon.contains(aecdh_null));
        assert!(WeakClass::Export.contains(export_rc4));
        assert!(WeakClass::Rc4.contains(export_rc4));
        assert!(WeakClass::Anon.contains(adh_aes));
        for c in WeakClass::ALL {
            assert!(!c.contains(aes_gcm), "{c:?}");
            assert!(!c.contains(tls13), "{c:?}");
            assert!(!c.contains(0x0000), "{c:?}");
            assert!(
                !c.contains(0x00ff) && !c.contains(0x5600),
                "{c:?}: signalling values"
            );
            assert!(!c.contains(0xfefe), "{c:?}: unknown id");
        }
    }

    #[test]
    fn scan_errors_are_sentences_naming_the_address() {
        let addr = Destination::Addr("192.0.2.7:443".parse().expect("addr"));
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let cases = [
            (
                ScanError::Connect {
                    addr: addr.clone(),
                    cause: Arc::new(refused),
                },
                "connect to 192.0.2.7:443 failed: connection refused",
            ),
            (
                ScanError::ConnectTimedOut {
                    addr: addr.clone(),
                    after: Duration::from_secs(10),
                },
                "connect to 192.0.2.7:443 timed out after 10s",
            ),
            (
                ScanError::OutOfTime {
                    addr: addr.clone(),
                    doing: "reading",
                },
                "scan of 192.0.2.7:443 ran out of time reading",
            ),
            (
                ScanError::TimedOut { addr: addr.clone() },
                "scan of 192.0.2.7:443 did not finish in time",
            ),
            (
                ScanError::TooManyHandshakes { addr: addr.clone() },
                "scan of 192.0.2.7:443 needed more than 30 handshakes",
            ),
            (
                ScanError::Incomplete {
                    addr: addr.clone(),
                    check: "version",
                },
                "scan of 192.0.2.7:443 is incomplete: a version check did not finish",
            ),
            (
                ScanError::NoAddress("example.com".into()),
                "resolve example.com: no addresses",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
        }
    }
}
