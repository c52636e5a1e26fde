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
//! are left to the caller; this module only scans one address.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use rustls::AlertDescription;
use rustls_pki_types::{CertificateDer, ServerName};
use tls_parser::{
    TlsCipherAu, TlsCipherEnc, TlsCipherEncMode, TlsCipherKx, TlsCipherMac, TlsCipherSuite,
    TlsExtension, TlsMessage, TlsMessageHandshake, TlsPRF,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};

/// ClientHellos one scan sends at most: 5 versions, then 6 classes over up to 4 versions.
pub const MAX_HANDSHAKES: u32 = 30;

/// How long one ClientHello may wait for its TCP connection, and then for the answer.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes read from one server at most (its first flight up to the Certificate message).
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Cipher suites in one ClientHello at most: some servers choke on longer lists.
const MAX_SUITES: usize = 128;

/// A protocol version the scan asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// What one scan found.
#[derive(Debug, Clone)]
pub struct ScanResult {
    /// Every version of `LegacyVersion::ALL`, in that order, with whether the server accepted
    /// it. Empty when `error` is set.
    pub protocols: Vec<(LegacyVersion, bool)>,
    /// Every class of `WeakClass::ALL`, in that order, with whether the server accepted a suite
    /// of it over any version below TLS 1.3 it accepts. Empty when `error` is set.
    pub weak: Vec<(WeakClass, bool)>,
    /// ClientHellos sent, or attempted when the connection failed (at most `MAX_HANDSHAKES`).
    pub handshakes: u32,
    pub duration: Duration,
    /// The certificates the server sent in the handshake of its highest accepted version below
    /// TLS 1.3 (leaf first, as sent); `None` when it accepts none or sent none (anon suites).
    pub legacy_chain: Option<Vec<CertificateDer<'static>>>,
    /// Why the scan could not tell (unreachable, timed out); then nothing else is known.
    pub error: Option<String>,
}

impl ScanResult {
    /// A scan that could not start (e.g. the name did not resolve).
    pub fn failed(why: &str) -> ScanResult {
        ScanResult {
            protocols: Vec::new(),
            weak: Vec::new(),
            handshakes: 0,
            duration: Duration::ZERO,
            legacy_chain: None,
            error: Some(why.to_string()),
        }
    }

    /// Whether the server accepts `v`; `None` when the scan failed.
    pub fn accepts(&self, v: LegacyVersion) -> Option<bool> {
        self.protocols
            .iter()
            .find(|(p, _)| *p == v)
            .map(|(_, a)| *a)
    }

    /// Whether the server accepts a suite of `c`; `None` when the scan failed.
    pub fn accepts_weak(&self, c: WeakClass) -> Option<bool> {
        self.weak.iter().find(|(w, _)| *w == c).map(|(_, a)| *a)
    }
}

/// Scans `addr`: first one ClientHello per version, then, for each weak class, ClientHellos
/// offering only that class over the accepted versions below TLS 1.3 (highest first, until
/// one is accepted). `server_name` is sent as SNI when it is a DNS name. At most `parallel`
/// (at least 1) ClientHellos are in flight; nothing runs past `deadline`. Never panics on what
/// the server sends.
pub async fn scan(
    addr: SocketAddr,
    server_name: Option<&str>,
    deadline: Instant,
    parallel: usize,
) -> ScanResult {
    let started = Instant::now();
    let peer = Arc::new(Peer {
        addr,
        sni: server_name.and_then(dns_name),
        deadline,
        sent: AtomicU32::new(0),
        broken: OnceLock::new(),
    });
    let parallel = parallel.max(1);
    let outcome = match timeout_at(deadline, run(&peer, parallel)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("scan of {addr} did not finish in time")),
    };
    let mut result = ScanResult {
        protocols: Vec::new(),
        weak: Vec::new(),
        handshakes: peer.sent.load(Ordering::Relaxed),
        duration: started.elapsed(),
        legacy_chain: None,
        error: None,
    };
    match outcome {
        Ok(found) => {
            result.protocols = found.protocols;
            result.weak = found.weak;
            result.legacy_chain = found.legacy_chain;
        }
        Err(e) => result.error = Some(e),
    }
    result
}

/// Where and until when one scan talks, how many ClientHellos it sent, and the first reason
/// it could not ask one (after which no more are attempted: a down host costs one round).
struct Peer {
    addr: SocketAddr,
    sni: Option<String>,
    deadline: Instant,
    sent: AtomicU32,
    broken: OnceLock<String>,
}

struct Found {
    protocols: Vec<(LegacyVersion, bool)>,
    weak: Vec<(WeakClass, bool)>,
    legacy_chain: Option<Vec<CertificateDer<'static>>>,
}

/// Both phases; `Err` when any ClientHello could not be asked (then no answer is trusted).
async fn run(peer: &Arc<Peer>, parallel: usize) -> Result<Found, String> {
    // Phase 1: which versions.
    let jobs = LegacyVersion::ALL.map(|v| {
        let peer = peer.clone();
        async move { (v, ask(&peer, v, &offer(v)).await) }
    });
    let mut protocols = Vec::new();
    let mut chains = BTreeMap::new();
    for (v, reply) in bounded(jobs.into(), parallel).await {
        let accepted = match reply {
            Reply::Failed(e) => return Err(e),
            Reply::Refused(_) => false,
            Reply::Hello(h) => {
                let accepted = h.version == v.wire() && offer(v).contains(&h.suite);
                if let (true, Some(chain)) = (accepted, h.chain) {
                    chains.insert(v, chain);
                }
                accepted
            }
        };
        protocols.push((v, accepted));
    }
    if protocols.len() != LegacyVersion::ALL.len() {
        return Err("scan incomplete: a version check did not finish".into());
    }
    protocols.sort();

    // Phase 2: which weak classes, over the accepted versions below TLS 1.3, highest first.
    let mut legacy: Vec<LegacyVersion> = protocols
        .iter()
        .filter(|(v, a)| *a && *v < LegacyVersion::Tls13)
        .map(|(v, _)| *v)
        .collect();
    legacy.reverse();
    let jobs = WeakClass::ALL.map(|c| {
        let peer = peer.clone();
        let legacy = legacy.clone();
        async move { (c, weak_class_accepted(&peer, c, &legacy).await) }
    });
    let mut weak = Vec::new();
    for (c, accepted) in bounded(jobs.into(), parallel).await {
        weak.push((c, accepted?));
    }
    if weak.len() != WeakClass::ALL.len() {
        return Err("scan incomplete: a cipher class check did not finish".into());
    }
    weak.sort();

    let legacy_chain = chains.into_iter().next_back().map(|(_, chain)| chain);
    Ok(Found {
        protocols,
        weak,
        legacy_chain,
    })
}

/// Offers only `class`'s suites at each of `versions` in turn until a server picks one.
async fn weak_class_accepted(
    peer: &Peer,
    class: WeakClass,
    versions: &[LegacyVersion],
) -> Result<bool, String> {
    for &v in versions {
        let suites = class_offer(class, v);
        if suites.is_empty() {
            continue;
        }
        match ask(peer, v, &suites).await {
            Reply::Failed(e) => return Err(e),
            Reply::Refused(_) => {}
            Reply::Hello(h) => {
                if (0x0300..=v.wire()).contains(&h.version) && suites.contains(&h.suite) {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// Runs `jobs` with at most `parallel` at a time; results in completion order. Dropping the
/// returned future aborts what still runs.
async fn bounded<F, T>(jobs: Vec<F>, parallel: usize) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut pending = jobs.into_iter();
    let mut running = JoinSet::new();
    let mut done = Vec::new();
    for job in pending.by_ref().take(parallel) {
        running.spawn(job);
    }
    while let Some(finished) = running.join_next().await {
        // Our jobs do not panic; a job that did (or was cancelled) simply has no result, which
        // the caller reports as an incomplete scan.
        if let Ok(out) = finished {
            done.push(out);
        }
        if let Some(job) = pending.next() {
            running.spawn(job);
        }
    }
    done
}

/// One ClientHello for `version` offering `suites`, and what the server answered.
async fn ask(peer: &Peer, version: LegacyVersion, suites: &[u16]) -> Reply {
    if let Some(why) = peer.broken.get() {
        return Reply::Failed(why.clone());
    }
    let reply = exchange(peer, version, suites).await;
    if let Reply::Failed(why) = &reply {
        let _ = peer.broken.set(why.clone());
    }
    if let Reply::Refused(why) = &reply {
        tracing::debug!(
            address = %peer.addr,
            version = version.as_label(),
            suites = suites.len(),
            "scan: hello not accepted: {why}"
        );
    }
    reply
}

async fn exchange(peer: &Peer, version: LegacyVersion, suites: &[u16]) -> Reply {
    let reserved = peer
        .sent
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < MAX_HANDSHAKES).then_some(n + 1)
        });
    if reserved.is_err() {
        return Reply::Failed(format!(
            "scan of {} needed more than {MAX_HANDSHAKES} handshakes",
            peer.addr
        ));
    }
    let limit = peer.deadline.min(Instant::now() + HANDSHAKE_TIMEOUT);
    let late = |what: &str| {
        if limit >= peer.deadline {
            Reply::Failed(format!("scan of {} ran out of time {what}", peer.addr))
        } else {
            Reply::Refused(format!("no answer within {HANDSHAKE_TIMEOUT:?}"))
        }
    };
    let mut tcp = match timeout_at(limit, TcpStream::connect(peer.addr)).await {
        Err(_) if limit >= peer.deadline => return late("connecting"),
        Err(_) => {
            return Reply::Failed(format!(
                "connect to {} timed out after {HANDSHAKE_TIMEOUT:?}",
                peer.addr
            ))
        }
        Ok(Err(e)) => return Reply::Failed(format!("connect to {}: {e}", peer.addr)),
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    let hello = client_hello(version, suites, peer.sni.as_deref(), &random_bytes());
    match timeout_at(limit, tcp.write_all(&hello)).await {
        Err(_) => return late("sending a ClientHello"),
        Ok(Err(e)) => return Reply::Refused(format!("connection closed: {e}")),
        Ok(Ok(())) => {}
    }
    let capture = (version < LegacyVersion::Tls13).then(|| version.wire());
    let mut flight = Flight::new(capture);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match timeout_at(limit, tcp.read(&mut buf)).await {
            Err(_) => return flight.cut_short().unwrap_or_else(|| late("reading")),
            Ok(Err(e)) => return flight.closed(&e.to_string()),
            Ok(Ok(0)) => return flight.closed("connection closed"),
            Ok(Ok(n)) => n,
        };
        if let Some(reply) = buf.get(..n).and_then(|bytes| flight.feed(bytes)) {
            // Dropping the connection closes it: we never go past the server's first flight.
            return reply;
        }
    }
}

/// What the server answered one ClientHello.
#[derive(Debug)]
enum Reply {
    /// A ServerHello (or HelloRetryRequest).
    Hello(Hello),
    /// Not accepted: an alert, a closed connection, silence, or something that is not TLS.
    Refused(String),
    /// We could not ask: unreachable, or out of time. Makes the whole scan unknown.
    Failed(String),
}

/// The parts of a ServerHello the scan judges by.
#[derive(Debug)]
struct Hello {
    /// The version chosen: `supported_versions` when present, else the legacy field.
    version: u16,
    suite: u16,
    /// A HelloRetryRequest: TLS 1.3 accepted, only with another key share.
    retry: bool,
    chain: Option<Vec<CertificateDer<'static>>>,
}

/// The random value that marks a HelloRetryRequest (RFC 8446, 4.1.3).
const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// The server's first flight, fed as it arrives: records reassembled into handshake messages,
/// up to the ServerHello, or (when `capture` is the version it chose) to the Certificate.
struct Flight {
    capture: Option<u16>,
    read: usize,
    records: Vec<u8>,
    handshake: Vec<u8>,
    hello: Option<Hello>,
}

impl Flight {
    fn new(capture: Option<u16>) -> Flight {
        Flight {
            capture,
            read: 0,
            records: Vec::new(),
            handshake: Vec::new(),
            hello: None,
        }
    }

    /// Takes more bytes; `Some` once the answer is known.
    fn feed(&mut self, bytes: &[u8]) -> Option<Reply> {
        self.read = self.read.saturating_add(bytes.len());
        if self.read > MAX_REPLY_BYTES {
            return Some(self.stop("reply larger than 64 KiB"));
        }
        self.records.extend_from_slice(bytes);
        loop {
            let (content_type, len) = match self.records.as_slice() {
                [t, major, _, hi, lo, ..] => {
                    if *major != 3 {
                        return Some(self.stop("reply is not TLS"));
                    }
                    (*t, usize::from(u16::from_be_bytes([*hi, *lo])))
                }
                _ => return None,
            };
            if !(20..=23).contains(&content_type) {
                return Some(self.stop("reply is not TLS"));
            }
            if len > 16 * 1024 + 2048 {
                return Some(self.stop("record too long"));
            }
            let payload = self.records.get(5..5 + len)?.to_vec();
            self.records.drain(..5 + len);
            match content_type {
                21 => {
                    let alert = match payload.get(1) {
                        Some(d) => format!("alert {:?}", AlertDescription::from(*d)),
                        None => "empty alert".to_string(),
                    };
                    return Some(self.stop(&alert));
                }
                22 => {
                    self.handshake.extend_from_slice(&payload);
                    if let Some(reply) = self.handshake_messages() {
                        return Some(reply);
                    }
                }
                _ => return Some(self.stop("unexpected record before the handshake")),
            }
        }
    }

    /// The answer when the connection closed (or failed) after `what`.
    fn closed(&mut self, what: &str) -> Reply {
        self.stop(what)
    }

    /// The answer when time ran out, if the ServerHello had already come.
    fn cut_short(&mut self) -> Option<Reply> {
        self.hello.take().map(Reply::Hello)
    }

    /// Ends the flight: a ServerHello seen counts (without chain), else `why` refuses.
    fn stop(&mut self, why: &str) -> Reply {
        match self.hello.take() {
            Some(hello) => Reply::Hello(hello),
            None => Reply::Refused(why.to_string()),
        }
    }

    /// Handles every complete handshake message buffered so far.
    fn handshake_messages(&mut self) -> Option<Reply> {
        loop {
            let len = match self.handshake.as_slice() {
                [_, a, b, c, ..] => {
                    (usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c)
                }
                _ => return None,
            };
            if len > MAX_REPLY_BYTES {
                return Some(self.stop("handshake message larger than 64 KiB"));
            }
            let message: Vec<u8> = self.handshake.get(..4 + len)?.to_vec();
            self.handshake.drain(..4 + len);
            if let Some(reply) = self.message(&message) {
                return Some(reply);
            }
        }
    }

    /// One complete handshake message (header included).
    fn message(&mut self, message: &[u8]) -> Option<Reply> {
        let parsed = tls_parser::parse_tls_message_handshake(message).ok();
        let parsed = match parsed {
            Some((_, TlsMessage::Handshake(m))) => Some(m),
            _ => None,
        };
        let Some(hello) = &mut self.hello else {
            let Some(TlsMessageHandshake::ServerHello(sh)) = parsed else {
                return Some(Reply::Refused(format!(
                    "expected a ServerHello, got handshake message {}",
                    message.first().copied().unwrap_or_default()
                )));
            };
            let hello = Hello {
                version: chosen_version(sh.version.0, sh.ext),
                suite: sh.cipher.0,
                retry: sh.random == HELLO_RETRY_RANDOM,
                chain: None,
            };
            if hello.retry || self.capture != Some(hello.version) {
                return Some(Reply::Hello(hello));
            }
            self.hello = Some(hello);
            return None;
        };
        match (message.first(), parsed) {
            (_, Some(TlsMessageHandshake::Certificate(c))) => {
                let chain = c
                    .cert_chain
                    .iter()
                    .map(|raw| CertificateDer::from(raw.data.to_vec()))
                    .collect::<Vec<_>>();
                hello.chain = (!chain.is_empty()).then_some(chain);
                Some(self.stop("certificate"))
            }
            // ServerHelloDone without a Certificate: an anonymous suite.
            (Some(14), _) => Some(self.stop("server hello done")),
            _ => None,
        }
    }
}

/// The version a ServerHello chose: its `supported_versions` extension (TLS 1.3) when present
/// and well-formed, else its version field.
fn chosen_version(legacy: u16, ext: Option<&[u8]>) -> u16 {
    let Some(Ok((_, extensions))) = ext.map(tls_parser::parse_tls_server_hello_extensions) else {
        return legacy;
    };
    extensions
        .iter()
        .find_map(|e| match e {
            TlsExtension::SupportedVersions(v) if v.len() == 1 => v.first().map(|v| v.0),
            _ => None,
        })
        .unwrap_or(legacy)
}

/// `name` when it is a DNS name (SNI carries no IP addresses).
fn dns_name(name: &str) -> Option<String> {
    if name.parse::<IpAddr>().is_ok() {
        return None;
    }
    match ServerName::try_from(name) {
        Ok(ServerName::DnsName(d)) => Some(d.as_ref().trim_end_matches('.').to_string()),
        _ => None,
    }
}

/// 64 random bytes: the ClientHello random, then the x25519 key share (any 32 bytes are a
/// public key; no one ever computes with its private half).
fn random_bytes() -> [u8; 64] {
    use aws_lc_rs::rand::SecureRandom;
    // Fallback if the system RNG fails: still a valid, non-degenerate key share.
    let mut bytes = [0x5a; 64];
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes);
    bytes
}

/// The TLS 1.3 suites (RFC 8446 and the CCM ones).
const TLS13_SUITES: [u16; 5] = [0x1301, 0x1302, 0x1303, 0x1304, 0x1305];

/// The renegotiation-info signalling suite: what an SSL 3.0-era hello sends instead of
/// extensions; harmless everywhere.
const RENEGOTIATION_SCSV: u16 = 0x00ff;

/// Pre-1.3 suites a server could choose without extra configuration from us (no PSK, SRP,
/// Kerberos or password suites), with the TLS 1.2-only ones left out below TLS 1.2. Ordered:
/// strong first, authenticated before anonymous, so a server honouring our order shows its
/// certificate.
static REGISTRY: LazyLock<Vec<&'static TlsCipherSuite>> = LazyLock::new(|| {
    let mut suites: Vec<&'static TlsCipherSuite> = tls_parser::CIPHERS
        .values()
        .filter(|s| {
            // Signalling values are not suites; TLS_FALLBACK_SCSV would make every
            // server that knows a higher version refuse with inappropriate_fallback.
            s.id.0 != 0
                && !s.name.ends_with("_SCSV")
                && !matches!(
                    s.kx,
                    TlsCipherKx::Tls13
                        | TlsCipherKx::Psk
                        | TlsCipherKx::Krb5
                        | TlsCipherKx::Srp
                        | TlsCipherKx::Eccpwd
                )
                && !matches!(
                    s.au,
                    TlsCipherAu::Psk
                        | TlsCipherAu::Krb5
                        | TlsCipherAu::Srp
                        | TlsCipherAu::Srp_Dss
                        | TlsCipherAu::Srp_Rsa
                        | TlsCipherAu::Eccpwd
                )
        })
        .collect();
    suites.sort_by_key(|s| (weakness(s), s.id.0));
    suites
});

/// Orders suites from preferable to weak (lower first).
fn weakness(s: &TlsCipherSuite) -> u8 {
    let weak = WeakClass::ALL
        .iter()
        .filter(|c| **c != WeakClass::CbcSha1 && c.matches(s))
        .count() as u8;
    let kx = match s.kx {
        TlsCipherKx::Ecdhe => 0,
        TlsCipherKx::Dhe => 1,
        TlsCipherKx::Rsa => 2,
        _ => 3,
    };
    let aead = u8::from(s.mac != TlsCipherMac::Aead);
    weak * 8 + aead * 4 + kx
}

/// Whether `s` can be negotiated at `v` (AEAD and SHA-2 suites are TLS 1.2 only).
fn usable_at(s: &TlsCipherSuite, v: LegacyVersion) -> bool {
    v >= LegacyVersion::Tls12
        || !(matches!(
            s.mac,
            TlsCipherMac::Aead
                | TlsCipherMac::HmacSha256
                | TlsCipherMac::HmacSha384
                | TlsCipherMac::HmacSha512
        ) || matches!(s.prf, TlsPRF::Sha256 | TlsPRF::Sha384 | TlsPRF::Sha512))
}

/// The broad list offered to learn whether a server accepts `v` at all: every usable suite,
/// but when that is more than `MAX_SUITES`, rarely deployed ones (ARIA, Camellia, SEED, IDEA;
/// static DH/ECDH with certificates) make room, those of no weak class first. Every weak
/// class keeps its common suites, so a server with only weak suites still shows which
/// versions it speaks.
fn offer(v: LegacyVersion) -> Vec<u16> {
    if v == LegacyVersion::Tls13 {
        return TLS13_SUITES.to_vec();
    }
    let usable = || REGISTRY.iter().copied().filter(move |s| usable_at(s, v));
    let mut keep: Vec<&TlsCipherSuite> = usable().filter(|s| !rare(s)).collect();
    let mut rest: Vec<&TlsCipherSuite> = usable().filter(|s| rare(s)).collect();
    rest.sort_by_key(|s| {
        (
            !WeakClass::ALL.iter().any(|c| c.matches(s)),
            weakness(s),
            s.id.0,
        )
    });
    let room = (MAX_SUITES - 1).saturating_sub(keep.len());
    keep.extend(rest.into_iter().take(room));
    keep.truncate(MAX_SUITES - 1);
    keep.sort_by_key(|s| (weakness(s), s.id.0));
    let mut suites: Vec<u16> = keep.iter().map(|s| s.id.0).collect();
    suites.push(RENEGOTIATION_SCSV);
    suites
}

/// A suite few servers have, and never as their only one.
fn rare(s: &TlsCipherSuite) -> bool {
    matches!(
        s.enc,
        TlsCipherEnc::Aria
            | TlsCipherEnc::Camellia
            | TlsCipherEnc::Seed
            | TlsCipherEnc::Idea
            | TlsCipherEnc::Sm4
            | TlsCipherEnc::Aegis
    ) || (matches!(s.kx, TlsCipherKx::Dh | TlsCipherKx::Ecdh) && s.au != TlsCipherAu::Null)
}

/// Only `class`'s suites usable at `v`.
fn class_offer(class: WeakClass, v: LegacyVersion) -> Vec<u16> {
    REGISTRY
        .iter()
        .filter(|s| class.matches(s) && usable_at(s, v))
        .map(|s| s.id.0)
        .take(MAX_SUITES)
        .collect()
}

/// A complete ClientHello record for `version`, offering `suites`.
fn client_hello(
    version: LegacyVersion,
    suites: &[u16],
    sni: Option<&str>,
    random: &[u8; 64],
) -> Vec<u8> {
    let (client_random, key_share) = random.split_at(32);
    let tls13 = version == LegacyVersion::Tls13;
    let mut body = Vec::with_capacity(512);
    body.extend_from_slice(&version.wire().min(0x0303).to_be_bytes());
    body.extend_from_slice(client_random);
    if tls13 {
        // A session id keeps middleboxes that expect TLS 1.2 resumption calm (RFC 8446, D.4).
        body.push(32);
        body.extend_from_slice(key_share);
    } else {
        body.push(0);
    }
    let mut ciphers: Vec<u8> = suites.iter().flat_map(|s| s.to_be_bytes()).collect();
    if ciphers.is_empty() {
        ciphers.extend_from_slice(&RENEGOTIATION_SCSV.to_be_bytes());
    }
    put_u16_prefixed(&mut body, &ciphers);
    body.extend_from_slice(&[1, 0]); // compression: null only
    if version != LegacyVersion::Ssl30 {
        put_u16_prefixed(&mut body, &extensions(version, sni, key_share));
    }

    let mut handshake = Vec::with_capacity(body.len() + 4);
    handshake.push(1); // client_hello
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);

    let record_version: u16 = if version == LegacyVersion::Ssl30 {
        0x0300
    } else {
        0x0301
    };
    let mut record = Vec::with_capacity(handshake.len() + 5);
    record.push(22);
    record.extend_from_slice(&record_version.to_be_bytes());
    put_u16_prefixed(&mut record, &handshake);
    record
}

/// The extensions of a TLS ClientHello: SNI, groups and point formats (so ECDHE servers
/// answer), signature algorithms from TLS 1.2 on, supported_versions and an x25519 key share
/// for TLS 1.3.
fn extensions(version: LegacyVersion, sni: Option<&str>, key_share: &[u8]) -> Vec<u8> {
    let tls13 = version == LegacyVersion::Tls13;
    let mut ext = Vec::with_capacity(256);
    if let Some(name) = sni {
        let mut entry = vec![0]; // host_name
        put_u16_prefixed(&mut entry, name.as_bytes());
        let mut list = Vec::new();
        put_u16_prefixed(&mut list, &entry);
        put_extension(&mut ext, 0, &list);
    }
    // x25519, secp256r1, secp384r1, secp521r1, x448, ffdhe2048, ffdhe3072, ffdhe4096.
    let groups: [u16; 8] = [
        0x001d, 0x0017, 0x0018, 0x0019, 0x001e, 0x0100, 0x0101, 0x0102,
    ];
    put_extension(&mut ext, 10, &u16_list(&groups));
    if !tls13 {
        put_extension(&mut ext, 11, &[1, 0]); // ec_point_formats: uncompressed
    }
    if version >= LegacyVersion::Tls12 {
        // RSA-PSS, ECDSA, EdDSA, PKCS#1, and the SHA-1 ones old servers may only have.
        let algorithms: [u16; 16] = [
            0x0804, 0x0805, 0x0806, 0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080a, 0x080b,
            0x0401, 0x0501, 0x0601, 0x0201, 0x0203,
        ];
        put_extension(&mut ext, 13, &u16_list(&algorithms));
    }
    if tls13 {
        put_extension(&mut ext, 43, &[2, 0x03, 0x04]); // supported_versions: TLS 1.3
        put_extension(&mut ext, 45, &[1, 1]); // psk_key_exchange_modes: psk_dhe_ke
        let mut share = Vec::with_capacity(36);
        share.extend_from_slice(&0x001d_u16.to_be_bytes());
        put_u16_prefixed(&mut share, key_share);
        let mut shares = Vec::with_capacity(38);
        put_u16_prefixed(&mut shares, &share);
        put_extension(&mut ext, 51, &shares);
    }
    ext
}

fn put_extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    put_u16_prefixed(out, data);
}

/// Appends `data` with its 16-bit length. Every caller's data is far below 64 KiB.
fn put_u16_prefixed(out: &mut Vec<u8>, data: &[u8]) {
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
}

fn u16_list(values: &[u16]) -> Vec<u8> {
    let items: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let mut out = Vec::with_capacity(items.len() + 2);
    put_u16_prefixed(&mut out, &items);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tls_parser::{parse_tls_client_hello_extensions, parse_tls_plaintext};

    fn parsed_hello(v: LegacyVersion, suites: &[u16], sni: Option<&str>) -> (u16, Vec<u16>, u16) {
        let bytes = client_hello(v, suites, sni, &[7; 64]);
        let (rest, plain) = parse_tls_plaintext(&bytes).expect("our ClientHello parses");
        assert!(rest.is_empty());
        let [TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch))] = plain.msg.as_slice()
        else {
            panic!("one ClientHello expected, got {:?}", plain.msg);
        };
        let ciphers = ch.ciphers.iter().map(|c| c.0).collect();
        (plain.hdr.version.0, ciphers, ch.version.0)
    }

    fn extensions_of(v: LegacyVersion, sni: Option<&str>) -> Vec<String> {
        let bytes = client_hello(v, &offer(v), sni, &[7; 64]);
        let (_, plain) = parse_tls_plaintext(&bytes).expect("parses");
        let Some(TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch))) = plain.msg.first()
        else {
            panic!("ClientHello expected");
        };
        let Some(ext) = ch.ext else {
            return Vec::new();
        };
        let (rest, exts) = parse_tls_client_hello_extensions(ext).expect("extensions parse");
        assert!(rest.is_empty());
        exts.iter().map(|e| format!("{e:?}")).collect()
    }

    /// A ServerHello record choosing `version` (legacy field) and `suite`, with extensions.
    fn server_hello(version: u16, suite: u16, random: [u8; 32], ext: &[u8]) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend_from_slice(&random);
        body.push(0);
        body.extend_from_slice(&suite.to_be_bytes());
        body.push(0);
        if !ext.is_empty() {
            put_u16_prefixed(&mut body, ext);
        }
        handshake_record(2, &body)
    }

    fn handshake_record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut msg = vec![kind];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(body);
        let mut rec = vec![22, 3, 3];
        put_u16_prefixed(&mut rec, &msg);
        rec
    }

    fn certificate_record(certs: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for c in certs {
            list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            list.extend_from_slice(c);
        }
        let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
        body.extend_from_slice(&list);
        handshake_record(11, &body)
    }

    fn feed_all(capture: Option<u16>, bytes: &[u8], chunk: usize) -> Option<Reply> {
        let mut f = Flight::new(capture);
        for piece in bytes.chunks(chunk.max(1)) {
            if let Some(r) = f.feed(piece) {
                return Some(r);
            }
        }
        Some(f.closed("connection closed"))
    }

    /// A small deterministic generator, so failures reproduce.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn labels_are_the_contract_strings() {
        let v: Vec<_> = LegacyVersion::ALL.iter().map(|v| v.as_label()).collect();
        assert_eq!(v, ["SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"]);
        let c: Vec<_> = WeakClass::ALL.iter().map(|c| c.as_label()).collect();
        assert_eq!(c, ["RC4", "3DES", "CBC-SHA1", "NULL", "EXPORT", "anon"]);
    }

    #[test]
    fn client_hellos_parse_back_with_the_versions_and_suites_offered() {
        for v in LegacyVersion::ALL {
            let suites = offer(v);
            let (record, ciphers, client) = parsed_hello(v, &suites, Some("example.com"));
            assert_eq!(ciphers, suites, "{v:?}");
            let sslv3 = v == LegacyVersion::Ssl30;
            assert_eq!(record, if sslv3 { 0x0300 } else { 0x0301 }, "{v:?}");
            assert_eq!(client, v.wire().min(0x0303), "{v:?}");
        }
        assert_eq!(offer(LegacyVersion::Tls13), TLS13_SUITES);
    }

    #[test]
    fn broad_lists_fit_128_suites_and_keep_common_and_weak_ones() {
        for v in LegacyVersion::ALL
            .into_iter()
            .filter(|v| *v < LegacyVersion::Tls13)
        {
            let suites = offer(v);
            assert!(suites.len() <= MAX_SUITES, "{v:?}: {} suites", suites.len());
            assert!(!suites.contains(&0x5600), "{v:?}: never TLS_FALLBACK_SCSV");
            for c in WeakClass::ALL {
                let missing: Vec<_> = class_offer(c, v)
                    .into_iter()
                    .filter(|s| TlsCipherSuite::from_id(*s).is_some_and(|s| !rare(s)))
                    .filter(|s| !suites.contains(s))
                    .collect();
                assert!(missing.is_empty(), "{v:?} lacks {c:?} suites {missing:x?}");
            }
            let common = [0xc013, 0x002f, 0x0035, 0x000a, 0x0005];
            let tls12_common = [0xc02b, 0xc02f, 0x009c, 0xcca8];
            for id in common
                .iter()
                .chain(tls12_common.iter().filter(|_| v == LegacyVersion::Tls12))
            {
                assert!(suites.contains(id), "{v:?} lacks {id:#06x}");
            }
        }
    }

    #[test]
    fn tls13_hello_offers_supported_versions_and_an_x25519_key_share() {
        let ext = extensions_of(LegacyVersion::Tls13, Some("example.com"));
        let all = ext.join(" ");
        assert!(all.contains(r#"SupportedVersions(v=["Tls13"])"#), "{all}");
        // One x25519 (0x001d) share of 32 bytes.
        assert!(all.contains("KeyShare(data=[00 24 00 1d 00 20 "), "{all}");
        assert!(all.contains("SignatureAlgorithms"), "{all}");
        assert!(all.contains("example.com"), "{all}");
    }

    #[test]
    fn pre_tls12_hellos_carry_groups_but_no_signature_algorithms() {
        let all = extensions_of(LegacyVersion::Tls10, None).join(" ");
        assert!(all.contains("EllipticCurves"), "{all}");
        assert!(all.contains("EcPointFormats"), "{all}");
        assert!(!all.contains("SignatureAlgorithms"), "{all}");
        assert!(!all.contains("SNI"), "{all}");
        let all12 = extensions_of(LegacyVersion::Tls12, None).join(" ");
        assert!(all12.contains("SignatureAlgorithms"), "{all12}");
    }

    #[test]
    fn sslv3_hello_has_no_extensions() {
        assert!(extensions_of(LegacyVersion::Ssl30, Some("example.com")).is_empty());
    }

    #[test]
    fn sni_is_sent_for_dns_names_only() {
        assert_eq!(dns_name("example.com."), Some("example.com".into()));
        assert_eq!(dns_name("127.0.0.1"), None);
        assert_eq!(dns_name("::1"), None);
        assert_eq!(dns_name("not a name"), None);
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
    fn every_class_has_suites_to_offer_at_tls10() {
        for c in WeakClass::ALL {
            let suites = class_offer(c, LegacyVersion::Tls10);
            assert!(!suites.is_empty(), "{c:?}");
            assert!(suites.iter().all(|s| c.contains(*s)), "{c:?}");
        }
        assert!(class_offer(WeakClass::Null, LegacyVersion::Tls12).contains(&0x003b));
        assert!(!class_offer(WeakClass::Null, LegacyVersion::Tls11).contains(&0x003b));
    }

    #[test]
    fn server_hello_choosing_a_version_is_a_hello() {
        let rec = server_hello(0x0301, 0x002f, [1; 32], &[]);
        for chunk in [1, 3, 7, rec.len()] {
            let Some(Reply::Hello(h)) = feed_all(None, &rec, chunk) else {
                panic!("hello expected");
            };
            assert_eq!((h.version, h.suite, h.retry), (0x0301, 0x002f, false));
        }
    }

    #[test]
    fn supported_versions_decides_the_tls13_version_and_hrr_is_recognised() {
        let ext = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04];
        let Some(Reply::Hello(h)) = feed_all(None, &server_hello(0x0303, 0x1301, [1; 32], &ext), 5)
        else {
            panic!("hello expected");
        };
        assert_eq!((h.version, h.retry), (0x0304, false));
        let hrr = server_hello(0x0303, 0x1302, HELLO_RETRY_RANDOM, &ext);
        let Some(Reply::Hello(h)) = feed_all(Some(0x0303), &hrr, 64) else {
            panic!("hello expected");
        };
        assert_eq!((h.version, h.suite, h.retry), (0x0304, 0x1302, true));
    }

    #[test]
    fn alerts_and_closed_connections_are_refusals() {
        let alert = [21, 3, 1, 0, 2, 2, 40];
        let Some(Reply::Refused(why)) = feed_all(None, &alert, 1) else {
            panic!("refusal expected");
        };
        assert!(why.contains("HandshakeFailure"), "{why}");
        let Some(Reply::Refused(why)) = feed_all(None, &[21, 3, 1, 0, 2, 2, 70], 7) else {
            panic!("refusal expected");
        };
        assert!(why.contains("ProtocolVersion"), "{why}");
        assert!(matches!(feed_all(None, &[], 1), Some(Reply::Refused(_))));
        assert!(matches!(
            feed_all(None, b"HTTP/1.1 400 Bad Request\r\n\r\n", 4),
            Some(Reply::Refused(_))
        ));
    }

    #[test]
    fn certificate_after_the_hello_is_captured_when_asked() {
        let mut flight = server_hello(0x0302, 0x002f, [1; 32], &[]);
        flight.extend(certificate_record(&[b"leaf-der", b"intermediate-der"]));
        flight.extend(handshake_record(14, &[]));
        let Some(Reply::Hello(h)) = feed_all(Some(0x0302), &flight, 3) else {
            panic!("hello expected");
        };
        let chain = h.chain.expect("chain captured");
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].as_ref(), b"leaf-der");
        // Not asked (or another version chosen): stop at the ServerHello.
        let Some(Reply::Hello(h)) = feed_all(Some(0x0303), &flight, 3) else {
            panic!("hello expected");
        };
        assert!(h.chain.is_none());
    }

    #[test]
    fn anonymous_flight_ends_at_server_hello_done_without_chain() {
        let mut flight = server_hello(0x0301, 0x0034, [1; 32], &[]);
        flight.extend(handshake_record(12, &[1, 2, 3]));
        flight.extend(handshake_record(14, &[]));
        let Some(Reply::Hello(h)) = feed_all(Some(0x0301), &flight, 11) else {
            panic!("hello expected");
        };
        assert!(h.chain.is_none());
        assert_eq!(h.suite, 0x0034);
    }

    #[test]
    fn oversized_replies_are_cut_at_64_kib() {
        let mut f = Flight::new(None);
        // A handshake record announcing a message of 16 MiB, then endless payload.
        let mut rec = vec![22, 3, 3, 0x40, 0x00, 1, 0xff, 0xff, 0xff];
        rec.resize(5 + 0x4000, 0);
        let mut answer = None;
        for _ in 0..10 {
            answer = f.feed(&rec);
            if answer.is_some() {
                break;
            }
        }
        assert!(matches!(answer, Some(Reply::Refused(_))), "{answer:?}");
    }

    #[test]
    fn garbage_replies_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let hello = server_hello(0x0303, 0xc02f, [3; 32], &[0xff, 0x01, 0x00, 0x01, 0x00]);
        for round in 0..20_000 {
            let mut bytes = if round % 2 == 0 {
                hello.clone()
            } else {
                let len = (rng.next() % 300) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            };
            // Mutate: flip bytes, and sometimes a plausible record header in front.
            let flips = rng.next() % 6;
            for _ in 0..flips {
                if bytes.is_empty() {
                    break;
                }
                let i = (rng.next() as usize) % bytes.len();
                bytes[i] = rng.next() as u8;
            }
            if round % 3 == 0 {
                let mut framed = vec![22, 3, (rng.next() % 4) as u8];
                put_u16_prefixed(&mut framed, &bytes);
                bytes = framed;
            }
            let chunk = 1 + (rng.next() % 40) as usize;
            let capture = [None, Some(0x0303), Some(0x0301)][round % 3];
            let _ = feed_all(capture, &bytes, chunk);
        }
    }

    #[tokio::test]
    async fn unreachable_address_is_an_error_with_nothing_known() {
        // Bind, learn the port, close: connecting is refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let deadline = Instant::now() + Duration::from_secs(10);
        let r = scan(addr, Some("localhost"), deadline, 4).await;
        assert!(r.error.is_some(), "{r:?}");
        assert!(r.protocols.is_empty() && r.weak.is_empty());
        assert!(r.handshakes <= 4, "{r:?}");
        // One at a time, the first failure stops the scan.
        let r = scan(addr, Some("localhost"), deadline, 1).await;
        assert_eq!(r.handshakes, 1, "{r:?}");
        assert!(r.error.is_some_and(|e| e.contains("connect to")));
    }

    #[tokio::test]
    async fn silent_server_is_bounded_by_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        let started = Instant::now();
        let r = scan(addr, None, started + Duration::from_millis(500), 2).await;
        assert!(started.elapsed() < Duration::from_secs(3), "{r:?}");
        assert!(r.error.is_some(), "{r:?}");
        hold.abort();
    }
}
