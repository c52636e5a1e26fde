//! Reading the server's first flight: records reassembled (at most 64 KiB in all) into
//! handshake messages parsed with `tls-parser`, up to the ServerHello, or on to the
//! Certificate when the caller wants the chain of the version the server chose. The answer is
//! a `Reply`. Connecting, sending and time limits are left to `scan`, as is judging whether the
//! chosen version and suite count as accepted.

use rustls::AlertDescription;
use rustls_pki_types::CertificateDer;
use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};

use super::ScanError;

/// Bytes read from one server at most (its first flight up to the Certificate message).
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// What the server answered one ClientHello.
#[derive(Debug)]
pub(super) enum Reply {
    /// A ServerHello (or HelloRetryRequest).
    Hello(Hello),
    /// Not accepted: an alert, a closed connection, silence, or something that is not TLS.
    Refused(String),
    /// We could not ask: unreachable, or out of time. Makes the whole scan unknown.
    Failed(ScanError),
}

/// The parts of a ServerHello the scan judges by.
#[derive(Debug)]
pub(super) struct Hello {
    /// The version chosen: `supported_versions` when present, else the legacy field.
    pub(super) version: u16,
    pub(super) suite: u16,
    /// A HelloRetryRequest: TLS 1.3 accepted, only with another key share.
    pub(super) retry: bool,
    /// The certificates of the captured Certificate message (leaf first), if any.
    pub(super) chain: Option<Vec<CertificateDer<'static>>>,
}

/// The random value that marks a HelloRetryRequest (RFC 8446, 4.1.3).
const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// The server's first flight, fed as it arrives: records reassembled into handshake messages,
/// up to the ServerHello, or (when `capture` is the version it chose) to the Certificate.
pub(super) struct Flight {
    capture: Option<u16>,
    read: usize,
    records: Vec<u8>,
    handshake: Vec<u8>,
    hello: Option<Hello>,
}

impl Flight {
    /// A flight not yet begun; `capture` is the version whose chain to read on to.
    pub(super) fn new(capture: Option<u16>) -> Flight {
        Flight {
            capture,
            read: 0,
            records: Vec::new(),
            handshake: Vec::new(),
            hello: None,
        }
    }

    /// Takes more bytes; `Some` once the answer is known.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Option<Reply> {
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
    pub(super) fn closed(&mut self, what: &str) -> Reply {
        self.stop(what)
    }

    /// The answer when time ran out, if the ServerHello had already come.
    pub(super) fn cut_short(&mut self) -> Option<Reply> {
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

#[cfg(test)]
mod tests {
    use super::super::hello::put_u16_prefixed;
    use super::*;

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
}
