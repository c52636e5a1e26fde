//! STARTTLS: the plaintext dialogue that turns a protocol's connection into a TLS one.
//!
//! `upgrade` speaks one protocol's upgrade on a connected socket, exactly as its RFC (or, for
//! PostgreSQL and MySQL, the vendor's protocol documentation) describes, and returns when the
//! next bytes on the wire are the TLS handshake. It leaves connecting, the overall timeout
//! (the caller bounds it) and the handshake itself to the TLS probe.
//!
//! Every read is bounded: one line (or XML tag) at most `MAX_LINE` bytes, the whole dialogue at
//! most `MAX_TOTAL` bytes. A server that says no in its own protocol is `Refused`; one that
//! says something we cannot parse, or sends bytes after its go-ahead (they would be taken for
//! TLS, cf. the STARTTLS command-injection bugs), is `Protocol`.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The protocols whose STARTTLS upgrade we speak; the `starttls:` value of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// SMTP, RFC 3207.
    Smtp,
    /// IMAP, RFC 3501 / 9051.
    Imap,
    /// POP3, RFC 2595.
    Pop3,
    /// FTP, RFC 4217.
    Ftp,
    /// PostgreSQL SSLRequest.
    Postgres,
    /// LDAP StartTLS extended operation, RFC 4511 / 4513.
    Ldap,
    /// XMPP client-to-server, RFC 6120.
    Xmpp,
    /// MySQL / MariaDB SSLRequest.
    Mysql,
    /// NNTP, RFC 4642.
    Nntp,
    /// ManageSieve, RFC 5804.
    Sieve,
}

impl StartTls {
    /// Every protocol, in declaration order.
    pub const ALL: [StartTls; 10] = [
        StartTls::Smtp,
        StartTls::Imap,
        StartTls::Pop3,
        StartTls::Ftp,
        StartTls::Postgres,
        StartTls::Ldap,
        StartTls::Xmpp,
        StartTls::Mysql,
        StartTls::Nntp,
        StartTls::Sieve,
    ];

    /// The config spelling (`smtp`, `imap`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            StartTls::Smtp => "smtp",
            StartTls::Imap => "imap",
            StartTls::Pop3 => "pop3",
            StartTls::Ftp => "ftp",
            StartTls::Postgres => "postgres",
            StartTls::Ldap => "ldap",
            StartTls::Xmpp => "xmpp",
            StartTls::Mysql => "mysql",
            StartTls::Nntp => "nntp",
            StartTls::Sieve => "sieve",
        }
    }
}

impl fmt::Display for StartTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the upgrade did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The server answered in its protocol, and the answer was no (or it does not offer
    /// STARTTLS at all): failure reason `starttls_refused`.
    #[error("starttls refused: {0}")]
    Refused(String),
    /// Reading or writing the socket failed, or the server closed it (`UnexpectedEof`).
    #[error("starttls: {0}")]
    Io(#[from] io::Error),
    /// The server said something that is not its protocol (or too much of it).
    #[error("starttls: {0}")]
    Protocol(String),
}

/// Speaks `proto`'s STARTTLS upgrade on `stream`; on `Ok` the TLS handshake can start on it.
/// `server_name` is the name the probe verifies (XMPP's `to`). Not bounded in time: the caller
/// wraps it in its deadline.
pub async fn upgrade(
    stream: &mut TcpStream,
    proto: StartTls,
    server_name: &str,
) -> Result<(), UpgradeError> {
    // RFC 5321 4.1.4: a client without a meaningful domain name says EHLO with its address.
    let ehlo = match stream.local_addr() {
        Ok(SocketAddr::V4(a)) => format!("[{}]", a.ip()),
        Ok(SocketAddr::V6(a)) => format!("[IPv6:{}]", a.ip()),
        Err(_) => "[127.0.0.1]".to_string(),
    };
    upgrade_io(stream, proto, server_name, &ehlo).await
}

/// `upgrade` over any byte stream; `ehlo_name` is what SMTP's EHLO says about us.
pub(crate) async fn upgrade_io<S>(
    io: &mut S,
    proto: StartTls,
    server_name: &str,
    ehlo_name: &str,
) -> Result<(), UpgradeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut c = Conn::new(io, proto);
    match proto {
        StartTls::Smtp => smtp(&mut c, ehlo_name).await?,
        StartTls::Imap => imap(&mut c).await?,
        StartTls::Pop3 => pop3(&mut c).await?,
        StartTls::Ftp => ftp(&mut c).await?,
        StartTls::Postgres => postgres(&mut c).await?,
        StartTls::Ldap => ldap(&mut c).await?,
        StartTls::Xmpp => xmpp(&mut c, server_name).await?,
        StartTls::Mysql => mysql(&mut c).await?,
        StartTls::Nntp => nntp(&mut c).await?,
        StartTls::Sieve => sieve(&mut c).await?,
    }
    if !c.buf.is_empty() {
        return Err(UpgradeError::Protocol(format!(
            "{proto} server sent {} bytes after agreeing to STARTTLS, before the TLS handshake",
            c.buf.len()
        )));
    }
    Ok(())
}

/// Longest line (or XML tag) we accept from a server.
const MAX_LINE: usize = 8 * 1024;
/// Most bytes we read from a server during one upgrade.
const MAX_TOTAL: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// SMTP, FTP, NNTP: numeric replies.

/// RFC 3207: greeting 220, EHLO, STARTTLS among the EHLO keywords, STARTTLS, 220.
async fn smtp<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<'_, S>,
    ehlo_name: &str,
) -> Result<(), UpgradeError> {
    let greeting = c.coded_reply().await?;
    c.expect_code(&greeting, 220, "greeting")?;
    c.send(format!("EHLO {ehlo_name}\r\n").as_bytes()).await?;
    let ehlo = c.coded_reply().await?;
    c.expect_code(&ehlo, 250, "EHLO")?;
    // The first line is the server's name; each further line starts with an extension keyword.
    let offered = ehlo.lines.iter().skip(1).any(|l| {
        l.split_ascii_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS"))
    });
    if !offered {
        return Err(UpgradeError::Refused(
            "smtp server does not offer STARTTLS in its EHLO reply".into(),
        ));
    }
    c.send(b"STARTTLS\r\n").await?;
    let reply = c.coded_reply().await?;
    c.expect_code(&reply, 220, "STARTTLS")
}

/// RFC 4217: greeting 220 (perhaps after 120), AUTH TLS, 234.
async fn ftp<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Conn<'_, S>) -> Result<(), UpgradeError> {
    let mut greeting = c.coded_reply().await?;
    // RFC 959: 120 "service ready in nnn minutes" precedes the 220.
    if greeting.code == 120 {
        greeting = c.coded_reply().await?;
    }
    c.expect_code(&greeting, 220, "greeting")?;
    c.send(b"AUTH TLS\r\n").await?;
    let reply = c.coded_reply().await?;
    c.expect_code(&reply, 234, "AUTH TLS")
}

/// RFC 4642: greeting 200 or 201, STARTTLS, 382.
async fn nntp<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Conn<'_, S>) -> Result<(), UpgradeError> {
    let greeting = c.coded_reply().await?;
    if greeting.code != 201 {
        c.expect_code(&greeting, 200, "greeting")?;
    }
    c.send(b"STARTTLS\r\n").await?;
    let reply = c.coded_reply().await?;
    c.expect_code(&reply, 382, "STARTTLS")
}

/// A numeric reply (RFC 5321 4.2, RFC 959 4.2, RFC 3977 3.2), its lines without the codes.
struct Coded {
    code: u16,
    lines: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// IMAP, POP3, ManageSieve: status words.

/// RFC 3501 6.2.1 / RFC 9051 6.2.1: greeting `* OK`, `a1 STARTTLS`, `a1 OK`.
async fn imap<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Conn<'_, S>) -> Result<(), UpgradeError> {
    let greeting = c.imap_line().await?;
    let mut words = greeting.splitn(3, ' ');
    match (words.next(), words.next().map(str::to_ascii_uppercase)) {
        (Some("*"), Some(w)) if w == "OK" => {}
        // STARTTLS is only valid in the not-authenticated state (RFC 3501 6.2.1).
        (Some("*"), Some(w)) if w == "PREAUTH" || w == "BYE" => {
            return Err(UpgradeError::Refused(format!(
                "imap greeting is {}",
                quote(&greeting)
            )))
        }
        _ => return Err(c.unexpected("greeting", &greeting)),
    }
    c.send(b"a1 STARTTLS\r\n").await?;
    loop {
        let line = c.imap_line().await?;
        if line.starts_with("* ") {
            // Untagged data (e.g. a CAPABILITY) before our tagged answer.
            let data = line.get(2..).unwrap_or_default();
            if data.get(..3).is_some_and(|w| w.eq_ignore_ascii_case("BYE")) {
                return Err(UpgradeError::Refused(format!(
                    "imap server said {}",
                    quote(&line)
                )));
            }
            continue;
        }
        let mut words = line.splitn(3, ' ');
        let tag = words.next();
        let status = words.next().map(str::to_ascii_uppercase);
        return match (tag, status.as_deref()) {
            (Some("a1"), Some("OK")) => Ok(()),
            (Some("a1"), Some("NO" | "BAD")) => Err(UpgradeError::Refused(format!(
                "imap STARTTLS answered {}",
                quote(&line)
            ))),
            _ => Err(c.unexpected("STARTTLS reply", &line)),
        };
    }
}

/// RFC 2595 4: greeting `+OK`, STLS, `+OK`.
async fn pop3<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Conn<'_, S>) -> Result<(), UpgradeError> {
    let greeting = c.line().await?;
    pop3_status(c, &greeting, "greeting")?;
    c.send(b"STLS\r\n").await?;
    let reply = c.line().await?;
    pop3_status(c, &reply, "STLS")
}

fn pop3_status<S>(c: &Conn<'_, S>, line: &str, what: &str) -> Result<(), UpgradeError> {
    let status = line.split(' ').next().unwrap_or_default();
    if status.eq_ignore_ascii_case("+OK") {
        Ok(())
    } else if status.eq_ignore_ascii_case("-ERR") {
        Err(UpgradeError::Refused(format!(
            "pop3 {what} is {}",
            quote(line)
        )))
    } else {
        Err(c.unexpected(what, line))
    }
}

/// RFC 5804 1.7/2.2: capabilities then `OK`, `"STARTTLS"` among them, STARTTLS, `OK`.
async fn sieve<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Conn<'_, S>) -> Result<(), UpgradeError> {
    let mut offered = false;
    loop {
        let line = c.sieve_line().await?;
        match sieve_status(&line) {
            Some(SieveStatus::Ok) => break,
            Some(SieveStatus::No | SieveStatus::Bye) => {
                return Err(UpgradeError::Refused(format!(
                    "sieve greeting ends with {}",
                    quote(&line)
                )))
            }
            None if line.starts_with('"') || line.starts_with('{') => {
                let capability = line.split(' ').next().unwrap_or_default();
                offered |= capability.eq_ignore_ascii_case("\"STARTTLS\"");
            }
            None => return Err(c.unexpected("capability", &line)),
        }
    }
    if !offered {
        return Err(UpgradeError::Refused(
            "sieve server does not list STARTTLS among its capabilities".into(),
        ));
    }
    c.send(b"STARTTLS\r\n").await?;
    let reply = c.sieve_line().await?;
    match sieve_status(&reply) {
        Some(SieveStatus::Ok) => Ok(()),
        Some(SieveStatus::No | SieveStatus::Bye) => Err(UpgradeError::Refused(format!(
            "sieve STARTTLS answered {}",
            quote(&reply)
        ))),
        None => Err(c.unexpected("STARTTLS reply", &reply)),
    }
}

enum SieveStatus {
    Ok,
    No,
    Bye,
}

/// The response a ManageSieve line is, if it is one (`OK`, `NO`, `BYE`, any case, alone or
/// followed by a space and a response code or string).
fn sieve_status(line: &str) -> Option<SieveStatus> {
    let word = line.split(' ').next().unwrap_or_default();
    if word.eq_ignore_ascii_case("OK") {
        Some(SieveStatus::Ok)
    } else if word.eq_ignore_ascii_case("NO") {
        Some(SieveStatus::No)
    } else if word.eq_ignore_ascii_case("BYE") {
        Some(SieveStatus::Bye)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL, MySQL, LDAP: binary.

/// The PostgreSQL SSLRequest code, (1234 << 16) | 5679.
const PG_SSL_REQUEST: u32 = 80_877_103;

/// PostgreSQL protocol 53.2.9: SSLRequest, one byte `S` (go on) or `N` (no TLS here).
async fn postgres<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<'_, S>,
) -> Result<(), UpgradeError> {
    let mut req = Vec::with_capacity(8);
    req.extend_from_slice(&8u32.to_be_bytes());
    req.extend_from_slice(&PG_SSL_REQUEST.to_be_bytes());
    c.send(&req).await?;
    let answer = c.bytes(1).await?;
    match answer.first() {
        Some(b'S') => Ok(()),
        Some(b'N') => Err(UpgradeError::Refused(
            "postgres server answered the SSLRequest with N (no TLS)".into(),
        )),
        // An ErrorResponse: a server too old for SSLRequest, or one refusing us outright.
        Some(b'E') => Err(UpgradeError::Refused(
            "postgres server answered the SSLRequest with an error".into(),
        )),
        _ => Err(UpgradeError::Protocol(format!(
            "postgres server answered the SSLRequest with {answer:02x?}"
        ))),
    }
}

/// MySQL capability flags (client/server protocol, "Capabilities Flags").
const CLIENT_LONG_PASSWORD: u32 = 0x0000_0001;
const CLIENT_LONG_FLAG: u32 = 0x0000_0004;
const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
const CLIENT_SSL: u32 = 0x0000_0800;
const CLIENT_TRANSACTIONS: u32 = 0x0000_2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;

/// MySQL: the server's initial handshake (protocol 10) with CLIENT_SSL, then our SSLRequest
/// (sequence id 1).
async fn mysql<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Conn<'_, S>) -> Result<(), UpgradeError> {
    let [a, b, d, seq] = c.array::<4>().await?;
    let len = u32::from_le_bytes([a, b, d, 0]) as usize;
    if seq != 0 || len == 0 || len > MAX_LINE {
        return Err(UpgradeError::Protocol(format!(
            "mysql server's first packet has length {len} and sequence id {seq}"
        )));
    }
    let payload = c.bytes(len).await?;
    let handshake = MysqlHandshake::parse(&payload)?;
    if handshake.capabilities & CLIENT_SSL == 0 {
        return Err(UpgradeError::Refused(format!(
            "mysql server {} does not offer SSL (no CLIENT_SSL capability)",
            quote(&handshake.version)
        )));
    }
    let flags = CLIENT_LONG_PASSWORD
        | CLIENT_LONG_FLAG
        | CLIENT_PROTOCOL_41
        | CLIENT_SSL
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH;
    let mut packet = Vec::with_capacity(36);
    packet.extend_from_slice(&[32, 0, 0, 1]);
    packet.extend_from_slice(&flags.to_le_bytes());
    packet.extend_from_slice(&0x0100_0000u32.to_le_bytes()); // max packet size: 16 MiB
    packet.push(handshake.charset.unwrap_or(MYSQL_UTF8MB4_GENERAL_CI));
    packet.extend_from_slice(&[0; 23]);
    c.send(&packet).await?;
    Ok(())
}

/// The collation we ask for when the server names none.
const MYSQL_UTF8MB4_GENERAL_CI: u8 = 45;

/// What we need from a MySQL initial handshake packet.
struct MysqlHandshake {
    version: String,
    capabilities: u32,
    charset: Option<u8>,
}

impl MysqlHandshake {
    fn parse(p: &[u8]) -> Result<Self, UpgradeError> {
        match p.first() {
            Some(10) => {}
            Some(0xff) => {
                // ERR packet: 0xff, error code (2 bytes), then the message.
                let code = le16(p.get(1..3)).unwrap_or(0);
                let msg = String::from_utf8_lossy(p.get(3..).unwrap_or_default());
                return Err(UpgradeError::Refused(format!(
                    "mysql server refused the connection: error {code} {}",
                    quote(&msg)
                )));
            }
            other => {
                return Err(UpgradeError::Protocol(format!(
                    "mysql server speaks protocol {other:?}, not 10"
                )))
            }
        }
        let short = || UpgradeError::Protocol("mysql handshake packet is truncated".into());
        let rest = p.get(1..).ok_or_else(short)?;
        let nul = rest.iter().position(|&b| b == 0).ok_or_else(short)?;
        let version = String::from_utf8_lossy(rest.get(..nul).unwrap_or_default()).into_owned();
        // After the version: connection id (4), auth data part 1 (8), filler (1).
        let after = rest.get(nul + 1 + 4 + 8 + 1..).ok_or_else(short)?;
        let lower = le16(after.get(0..2)).ok_or_else(short)?;
        let charset = after.get(2).copied();
        // Status flags (2), then the upper half of the capabilities, when present.
        let upper = le16(after.get(5..7)).unwrap_or(0);
        let capabilities = u32::from(lower) | (u32::from(upper) << 16);
        Ok(MysqlHandshake {
            version,
            capabilities,
            charset,
        })
    }
}

/// A little-endian u16 from exactly two bytes.
fn le16(b: Option<&[u8]>) -> Option<u16> {
    match b? {
        &[lo, hi] => Some(u16::from_le_bytes([lo, hi])),
        _ => None,
    }
}

/// RFC 4511 4.14.1: the StartTLS ExtendedRequest, message id 1, BER by hand:
/// LDAPMessage SEQUENCE { messageID 1, [APPLICATION 23] { [0] "1.3.6.1.4.1.1466.20037" } }.
const LDAP_STARTTLS_OID: &[u8] = b"1.3.6.1.4.1.1466.20037";

async fn ldap<S: AsyncRead + AsyncWrite + Unpin>(c: &mut Conn<'_, S>) -> Result<(), UpgradeError> {
    let oid_len = LDAP_STARTTLS_OID.len() as u8;
    let mut req = vec![0x30, 3 + 2 + 2 + oid_len, 0x02, 0x01, 0x01];
    req.extend_from_slice(&[0x77, 2 + oid_len, 0x80, oid_len]);
    req.extend_from_slice(LDAP_STARTTLS_OID);
    c.send(&req).await?;

    let (tag, message) = c.ber_tlv().await?;
    if tag != 0x30 {
        return Err(UpgradeError::Protocol(format!(
            "ldap server answered with BER tag {tag:#04x}, not an LDAPMessage"
        )));
    }
    let resp = LdapResponse::parse(&message).ok_or_else(|| {
        UpgradeError::Protocol("ldap server's answer is not an ExtendedResponse".into())
    })?;
    match (resp.message_id, resp.result_code) {
        (1, 0) => Ok(()),
        // Message id 0 is an unsolicited notification, e.g. Notice of Disconnection.
        (0 | 1, code) => Err(UpgradeError::Refused(format!(
            "ldap StartTLS answered resultCode {code} ({}) {}",
            ldap_result_name(code),
            quote(&resp.diagnostic)
        ))),
        (id, _) => Err(UpgradeError::Protocol(format!(
            "ldap server answered message id {id}, we sent 1"
        ))),
    }
}

/// The parts of an LDAP ExtendedResponse we look at.
struct LdapResponse {
    message_id: u64,
    result_code: u64,
    diagnostic: String,
}

impl LdapResponse {
    /// Parses the contents of an LDAPMessage SEQUENCE holding an ExtendedResponse
    /// ([APPLICATION 24] { resultCode ENUMERATED, matchedDN, diagnosticMessage, ... }).
    fn parse(message: &[u8]) -> Option<Self> {
        let (tag, id, rest) = ber_split(message)?;
        if tag != 0x02 {
            return None;
        }
        let message_id = ber_uint(id)?;
        let (tag, op, _controls) = ber_split(rest)?;
        if tag != 0x78 {
            return None;
        }
        let (tag, code, rest) = ber_split(op)?;
        if tag != 0x0a {
            return None;
        }
        let result_code = ber_uint(code)?;
        let diagnostic = ber_split(rest)
            .and_then(|(_, _matched_dn, rest)| ber_split(rest))
            .map(|(_, diag, _)| String::from_utf8_lossy(diag).into_owned())
            .unwrap_or_default();
        Some(LdapResponse {
            message_id,
            result_code,
            diagnostic,
        })
    }
}

/// Splits one BER TLV (single-byte tag, definite length) off the front of `b`.
fn ber_split(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (len, b) = ber_length(b)?;
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// A BER definite length (short form, or long form of up to 4 bytes) and what follows it.
fn ber_length(b: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = b.split_first()?;
    if first < 0x80 {
        return Some((usize::from(first), rest));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 || rest.len() < n {
        return None;
    }
    let len = rest[..n]
        .iter()
        .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
    Some((len, &rest[n..]))
}

/// A small non-negative BER INTEGER / ENUMERATED.
fn ber_uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 8 || b[0] & 0x80 != 0 {
        return None;
    }
    Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

fn ldap_result_name(code: u64) -> &'static str {
    match code {
        1 => "operationsError",
        2 => "protocolError",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => "see RFC 4511 4.1.9",
    }
}

// ---------------------------------------------------------------------------------------------
// XMPP: a restricted XML stream (RFC 6120 11: no comments, DTDs or processing instructions).

const XMPP_TLS_NS: &str = "urn:ietf:params:xml:ns:xmpp-tls";

/// RFC 6120 5.4: stream header, features with `<starttls/>`, `<starttls/>`, `<proceed/>`.
async fn xmpp<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<'_, S>,
    server_name: &str,
) -> Result<(), UpgradeError> {
    let header = format!(
        "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xml:lang='en' \
         xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        xml_escape(server_name)
    );
    c.send(header.as_bytes()).await?;

    // The server's stream header (after an optional XML declaration).
    let mut tag = c.xml_tag().await?;
    if tag.kind == TagKind::Declaration {
        tag = c.xml_tag().await?;
    }
    if tag.kind != TagKind::Open || tag.local_name() != "stream" {
        return Err(c.unexpected("stream header", &tag.raw));
    }

    let features = c.xml_tag().await?;
    xmpp_error(c, &features).await?;
    if features.local_name() != "features" || features.kind == TagKind::Close {
        return Err(c.unexpected("stream features", &features.raw));
    }
    let mut offered = false;
    if features.kind == TagKind::Open {
        let mut depth = 1usize;
        while depth > 0 {
            let t = c.xml_tag().await?;
            match t.kind {
                TagKind::Open => {
                    offered |= depth == 1 && t.is(&["starttls"], XMPP_TLS_NS);
                    depth += 1;
                }
                TagKind::Empty => offered |= depth == 1 && t.is(&["starttls"], XMPP_TLS_NS),
                TagKind::Close => depth -= 1,
                TagKind::Declaration => return Err(c.unexpected("stream features", &t.raw)),
            }
        }
    }
    if !offered {
        return Err(UpgradeError::Refused(
            "xmpp server does not offer starttls in its stream features".into(),
        ));
    }

    c.send(format!("<starttls xmlns='{XMPP_TLS_NS}'/>").as_bytes())
        .await?;
    let answer = c.xml_tag().await?;
    xmpp_error(c, &answer).await?;
    if answer.is(&["proceed"], XMPP_TLS_NS) && answer.kind != TagKind::Close {
        if answer.kind == TagKind::Open {
            let close = c.xml_tag().await?;
            if close.kind != TagKind::Close {
                return Err(c.unexpected("</proceed>", &close.raw));
            }
        }
        return Ok(());
    }
    if answer.is(&["failure"], XMPP_TLS_NS) {
        return Err(UpgradeError::Refused(
            "xmpp server answered starttls with <failure/>".into(),
        ));
    }
    Err(c.unexpected("answer to starttls", &answer.raw))
}

/// A stream error or the end of the stream where we expected something else is the server
/// closing on us: a refusal, with the error condition when there is one.
async fn xmpp_error<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<'_, S>,
    tag: &Tag,
) -> Result<(), UpgradeError> {
    if tag.kind == TagKind::Close && tag.local_name() == "stream" {
        return Err(UpgradeError::Refused(
            "xmpp server closed the stream".into(),
        ));
    }
    if tag.local_name() == "error" && tag.kind == TagKind::Open {
        // The first child names the condition (RFC 6120 4.9.3).
        let condition = c.xml_tag().await.map(|t| t.local_name().to_string());
        return Err(UpgradeError::Refused(format!(
            "xmpp stream error {}",
            condition.unwrap_or_default()
        )));
    }
    if tag.local_name() == "error" {
        return Err(UpgradeError::Refused("xmpp stream error".into()));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    /// `<?xml ...?>`
    Declaration,
    /// `<name ...>`
    Open,
    /// `<name .../>`
    Empty,
    /// `</name>`
    Close,
}

/// One XML tag, as sent.
struct Tag {
    kind: TagKind,
    /// The qualified name (`stream:features`).
    name: String,
    /// The whole tag, for error messages and namespace checks.
    raw: String,
}

impl Tag {
    /// The name without its prefix.
    fn local_name(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or_default()
    }

    /// True when the local name is one of `names` and the tag declares namespace `ns`.
    fn is(&self, names: &[&str], ns: &str) -> bool {
        names.contains(&self.local_name()) && self.raw.contains(ns)
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

// ---------------------------------------------------------------------------------------------
// The bounded reader.

/// A connection during the upgrade: bytes read but not yet consumed, and the read budget.
struct Conn<'a, S> {
    io: &'a mut S,
    proto: StartTls,
    buf: Vec<u8>,
    read_total: usize,
}

impl<'a, S> Conn<'a, S> {
    fn new(io: &'a mut S, proto: StartTls) -> Self {
        Conn {
            io,
            proto,
            buf: Vec::new(),
            read_total: 0,
        }
    }

    /// A reply we do not understand at this point of the dialogue.
    fn unexpected(&self, what: &str, got: &str) -> UpgradeError {
        UpgradeError::Protocol(format!("unexpected {} {what}: {}", self.proto, quote(got)))
    }

    /// Accepts a numeric reply with code `want`; other 4xx/5xx codes are refusals.
    fn expect_code(&self, reply: &Coded, want: u16, what: &str) -> Result<(), UpgradeError> {
        let text = reply.lines.first().map(String::as_str).unwrap_or_default();
        match reply.code {
            c if c == want => Ok(()),
            400..=599 => Err(UpgradeError::Refused(format!(
                "{} {what} answered {} {}",
                self.proto,
                reply.code,
                quote(text)
            ))),
            code => Err(UpgradeError::Protocol(format!(
                "{} {what} answered {code} {}, expected {want}",
                self.proto,
                quote(text)
            ))),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<'_, S> {
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// Reads more bytes into `buf`, within the budget; EOF is an error.
    async fn fill(&mut self) -> Result<(), UpgradeError> {
        let room = MAX_TOTAL.saturating_sub(self.read_total).min(4096);
        if room == 0 {
            return Err(UpgradeError::Protocol(format!(
                "{} server sent more than {MAX_TOTAL} bytes without finishing the upgrade",
                self.proto
            )));
        }
        let mut chunk = [0u8; 4096];
        let n = self.io.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(UpgradeError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} server closed the connection during the STARTTLS dialogue",
                    self.proto
                ),
            )));
        }
        self.read_total += n;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Exactly `n` bytes.
    async fn bytes(&mut self, n: usize) -> Result<Vec<u8>, UpgradeError> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Exactly `N` bytes, as an array.
    async fn array<const N: usize>(&mut self) -> Result<[u8; N], UpgradeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes(N).await?);
        Ok(out)
    }

    /// One line without its CR LF (a bare LF is accepted too), at most `MAX_LINE` bytes.
    async fn line(&mut self) -> Result<String, UpgradeError> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                return Ok(String::from_utf8_lossy(line).into_owned());
            }
            scanned = self.buf.len();
            if scanned > MAX_LINE {
                return Err(UpgradeError::Protocol(format!(
                    "{} server sent a line longer than {MAX_LINE} bytes",
                    self.proto
                )));
            }
            self.fill().await?;
        }
    }

    /// A numeric reply, single- or multi-line. RFC 5321 continues with `250-...` on every
    /// line; RFC 959 only requires the first (`220-`) and last (`220 ...`) to carry the code.
    async fn coded_reply(&mut self) -> Result<Coded, UpgradeError> {
        let first = self.line().await?;
        let (code, sep, text) =
            split_code(&first).ok_or_else(|| self.unexpected("reply", &first))?;
        let mut lines = vec![text.to_string()];
        if sep == Some(b'-') {
            loop {
                let line = self.line().await?;
                match split_code(&line) {
                    Some((c, Some(b' ') | None, text)) if c == code => {
                        lines.push(text.to_string());
                        break;
                    }
                    Some((c, Some(b'-'), text)) if c == code => lines.push(text.to_string()),
                    _ => lines.push(line),
                }
            }
        }
        Ok(Coded { code, lines })
    }

    /// One IMAP response line; literals (`{n}` at the end of a line, RFC 3501 4.3) are read
    /// and replaced by `{}` so that the line structure stays intact.
    async fn imap_line(&mut self) -> Result<String, UpgradeError> {
        let mut whole = String::new();
        loop {
            let line = self.line().await?;
            match literal_len(&line) {
                Some((n, head)) => {
                    whole.push_str(head);
                    whole.push_str("{}");
                    if n > MAX_TOTAL {
                        return Err(self.unexpected("literal", &line));
                    }
                    self.bytes(n).await?;
                    if whole.len() > MAX_LINE {
                        return Err(self.unexpected("response", &whole));
                    }
                }
                None => {
                    whole.push_str(&line);
                    return Ok(whole);
                }
            }
        }
    }

    /// ManageSieve lines have the same literals as IMAP (`{n}` or `{n+}`).
    async fn sieve_line(&mut self) -> Result<String, UpgradeError> {
        self.imap_line().await
    }

    /// The next XML tag, skipping character data between tags. Quoted attribute values may
    /// hold `>`.
    async fn xml_tag(&mut self) -> Result<Tag, UpgradeError> {
        loop {
            // Skip text (whitespace keepalives, character data we do not need).
            if let Some(i) = self.buf.iter().position(|&b| b == b'<') {
                self.buf.drain(..i);
                if let Some(end) = tag_end(&self.buf) {
                    let raw: Vec<u8> = self.buf.drain(..=end).collect();
                    let raw = String::from_utf8_lossy(&raw).into_owned();
                    return parse_tag(raw).ok_or_else(|| {
                        UpgradeError::Protocol(format!("{} server sent malformed XML", self.proto))
                    });
                }
                if self.buf.len() > MAX_LINE {
                    return Err(UpgradeError::Protocol(format!(
                        "{} server sent an XML tag longer than {MAX_LINE} bytes",
                        self.proto
                    )));
                }
            } else {
                self.buf.clear();
            }
            self.fill().await?;
        }
    }

    /// One BER TLV with a definite length (LDAP forbids the indefinite form): tag and contents.
    async fn ber_tlv(&mut self) -> Result<(u8, Vec<u8>), UpgradeError> {
        let [tag, first] = self.array::<2>().await?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(UpgradeError::Protocol(format!(
                    "{} server sent a BER length of form {first:#04x}",
                    self.proto
                )));
            }
            let bytes = self.bytes(n).await?;
            bytes
                .iter()
                .fold(0usize, |acc, &x| (acc << 8) | usize::from(x))
        };
        if len > MAX_TOTAL {
            return Err(UpgradeError::Protocol(format!(
                "{} server announced a {len}-byte message",
                self.proto
            )));
        }
        Ok((tag, self.bytes(len).await?))
    }
}

/// `250-text`, `250 text` or `250` into the code, the separator and the text.
fn split_code(line: &str) -> Option<(u16, Option<u8>, &str)> {
    let b = line.as_bytes();
    let digits = b.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    match b.get(3) {
        None => Some((code, None, "")),
        Some(&sep @ (b' ' | b'-')) => Some((code, Some(sep), line.get(4..).unwrap_or_default())),
        Some(_) => None,
    }
}

/// `... {123}` or `... {123+}` at the end of a line: the literal's length and the line before it.
fn literal_len(line: &str) -> Option<(usize, &str)> {
    let body = line.strip_suffix('}')?;
    let open = body.rfind('{')?;
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix('+').unwrap_or(digits);
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, &line[..open]))
}

/// Index of the `>` that ends the tag starting at `buf[0]`, outside quoted values.
fn tag_end(buf: &[u8]) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in buf.iter().enumerate().skip(1) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if q == b => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_tag(raw: String) -> Option<Tag> {
    let inner = raw.strip_prefix('<')?.strip_suffix('>')?;
    let (kind, inner) = if let Some(decl) = inner.strip_prefix('?') {
        (TagKind::Declaration, decl.strip_suffix('?')?)
    } else if let Some(close) = inner.strip_prefix('/') {
        (TagKind::Close, close)
    } else if let Some(empty) = inner.strip_suffix('/') {
        (TagKind::Empty, empty)
    } else {
        (TagKind::Open, inner)
    };
    let name = inner
        .split(|c: char| c.is_ascii_whitespace())
        .next()
        .unwrap_or_default();
    if name.is_empty() || name.starts_with('!') {
        return None;
    }
    let name = name.to_string();
    Some(Tag { kind, name, raw })
}

/// A server's text, quoted for a message: printable ASCII only, at most 200 characters.
fn quote(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.chars().count() > 200 {
        out.push_str("...");
    }
    format!("{out:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::DuplexStream;

    /// One step of a scripted server: what it sends, or what it expects to read, exactly.
    enum Step {
        Send(&'static [u8]),
        Expect(&'static [u8]),
        /// Close the connection now.
        Close,
    }
    use Step::{Close, Expect, Send};

    /// Runs `proto`'s upgrade against a peer following `script`, and returns the client's
    /// result after checking the peer read exactly what it expected.
    async fn run(proto: StartTls, script: Vec<Step>) -> Result<(), UpgradeError> {
        let (mut client, server) = tokio::io::duplex(128 * 1024);
        let peer = tokio::spawn(serve(server, script));
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            upgrade_io(&mut client, proto, "example.org", "[192.0.2.1]"),
        )
        .await
        .expect("upgrade finishes");
        drop(client);
        peer.await.expect("peer task");
        result
    }

    async fn serve(mut io: DuplexStream, script: Vec<Step>) {
        for step in script {
            match step {
                Send(b) => {
                    if io.write_all(b).await.is_err() {
                        return;
                    }
                }
                Expect(want) => {
                    let mut got = vec![0u8; want.len()];
                    io.read_exact(&mut got)
                        .await
                        .unwrap_or_else(|e| panic!("peer expected {:?}: {e}", s(want)));
                    assert_eq!(s(&got), s(want), "client sent");
                }
                Close => return,
            }
        }
        // Then hold the connection open until the client hangs up.
        let mut rest = Vec::new();
        let _ = io.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "client sent more: {:?}", s(&rest));
    }

    fn s(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    fn refused(r: Result<(), UpgradeError>) -> String {
        match r {
            Err(UpgradeError::Refused(m)) => m,
            other => panic!("expected Refused, got {other:?}"),
        }
    }

    fn protocol(r: Result<(), UpgradeError>) -> String {
        match r {
            Err(UpgradeError::Protocol(m)) => m,
            other => panic!("expected Protocol, got {other:?}"),
        }
    }

    // SMTP

    #[tokio::test]
    async fn smtp_upgrades_after_multiline_greeting_and_ehlo() {
        let r = run(
            StartTls::Smtp,
            vec![
                Send(b"220-mx.example.org ESMTP\r\n220 welcome\r\n"),
                Expect(b"EHLO [192.0.2.1]\r\n"),
                Send(b"250-mx.example.org\r\n250-PIPELINING\r\n250-starttls\r\n250 8BITMIME\r\n"),
                Expect(b"STARTTLS\r\n"),
                Send(b"220 2.0.0 Ready to start TLS\r\n"),
            ],
        )
        .await;
        r.expect("upgrade");
    }

    #[tokio::test]
    async fn smtp_without_starttls_keyword_is_refused() {
        // STARTTLS in the server's name line is not the keyword.
        let m = refused(
            run(
                StartTls::Smtp,
                vec![
                    Send(b"220 mx ESMTP\r\n"),
                    Expect(b"EHLO [192.0.2.1]\r\n"),
                    Send(b"250-STARTTLS.example.org\r\n250 SIZE 100\r\n"),
                ],
            )
            .await,
        );
        assert!(m.contains("does not offer STARTTLS"), "{m}");
    }

    #[tokio::test]
    async fn smtp_454_is_refused() {
        let m = refused(
            run(
                StartTls::Smtp,
                vec![
                    Send(b"220 mx ESMTP\r\n"),
                    Expect(b"EHLO [192.0.2.1]\r\n"),
                    Send(b"250-mx\r\n250 STARTTLS\r\n"),
                    Expect(b"STARTTLS\r\n"),
                    Send(b"454 4.7.0 TLS not available due to temporary reason\r\n"),
                ],
            )
            .await,
        );
        assert!(m.contains("454"), "{m}");
    }

    #[tokio::test]
    async fn smtp_554_greeting_is_refused() {
        refused(run(StartTls::Smtp, vec![Send(b"554 no service\r\n")]).await);
    }

    #[tokio::test]
    async fn smtp_http_reply_is_protocol_error() {
        protocol(
            run(
                StartTls::Smtp,
                vec![Send(b"HTTP/1.1 400 Bad Request\r\n\r\n")],
            )
            .await,
        );
    }

    #[tokio::test]
    async fn smtp_bytes_after_go_ahead_are_protocol_error() {
        let m = protocol(
            run(
                StartTls::Smtp,
                vec![
                    Send(b"220 mx\r\n"),
                    Expect(b"EHLO [192.0.2.1]\r\n"),
                    Send(b"250-mx\r\n250 STARTTLS\r\n"),
                    Expect(b"STARTTLS\r\n"),
                    Send(b"220 go ahead\r\n250 injected\r\n"),
                ],
            )
            .await,
        );
        assert!(m.contains("after agreeing"), "{m}");
    }

    #[tokio::test]
    async fn endless_line_is_protocol_error_not_unbounded_read() {
        static LONG: [u8; MAX_LINE + 100] = [b'2'; MAX_LINE + 100];
        let m = protocol(run(StartTls::Smtp, vec![Send(&LONG)]).await);
        assert!(m.contains("longer than"), "{m}");
    }

    #[tokio::test]
    async fn endless_multiline_reply_stops_at_total_budget() {
        static MANY: [u8; MAX_TOTAL + 1000] = {
            let mut b = [b'x'; MAX_TOTAL + 1000];
            let mut i = 0;
            while i + 10 <= b.len() {
                b[i] = b'2';
                b[i + 1] = b'2';
                b[i + 2] = b'0';
                b[i + 3] = b'-';
                b[i + 8] = b'\r';
                b[i + 9] = b'\n';
                i += 10;
            }
            b
        };
        let m = protocol(run(StartTls::Smtp, vec![Send(&MANY)]).await);
        assert!(m.contains("more than"), "{m}");
    }

    #[tokio::test]
    async fn server_closing_mid_dialogue_is_unexpected_eof() {
        match run(StartTls::Smtp, vec![Send(b"220-mx\r\n"), Close]).await {
            Err(UpgradeError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            other => panic!("expected Io, got {other:?}"),
        }
    }

    // FTP

    #[tokio::test]
    async fn ftp_upgrades_after_rfc959_multiline_greeting() {
        run(
            StartTls::Ftp,
            vec![
                Send(b"120 ready in 1 minute\r\n"),
                Send(b"220-Welcome\r\n free text line\r\n220 ready\r\n"),
                Expect(b"AUTH TLS\r\n"),
                Send(b"234 Proceed with negotiation.\r\n"),
            ],
        )
        .await
        .expect("upgrade");
    }

    #[tokio::test]
    async fn ftp_auth_tls_rejected_is_refused() {
        let m = refused(
            run(
                StartTls::Ftp,
                vec![
                    Send(b"220 (vsFTPd 3.0.3)\r\n"),
                    Expect(b"AUTH TLS\r\n"),
                    Send(b"530 Please login with USER and PASS.\r\n"),
                ],
            )
            .await,
        );
        assert!(m.contains("530"), "{m}");
    }

    // NNTP

    #[tokio::test]
    async fn nntp_upgrades_on_382() {
        run(
            StartTls::Nntp,
            vec![
                Send(b"201 news.example.org ready (no posting)\r\n"),
                Expect(b"STARTTLS\r\n"),
                Send(b"382 Continue with TLS negotiation\r\n"),
            ],
        )
        .await
        .expect("upgrade");
    }

    #[tokio::test]
    async fn nntp_580_and_502_are_refused() {
        for answer in [
            &b"580 Can not initiate TLS negotiation\r\n"[..],
            b"502 Command unavailable\r\n",
        ] {
            let answer: &'static [u8] = answer;
            refused(
                run(
                    StartTls::Nntp,
                    vec![
                        Send(b"200 news ready\r\n"),
                        Expect(b"STARTTLS\r\n"),
                        Send(answer),
                    ],
                )
                .await,
            );
        }
    }

    // IMAP

    #[tokio::test]
    async fn imap_upgrades_skipping_untagged_data() {
        run(
            StartTls::Imap,
            vec![
                Send(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
                Expect(b"a1 STARTTLS\r\n"),
                Send(b"* CAPABILITY {8}\r\nIMAP4rev\r\n"),
                Send(b"a1 OK Begin TLS negotiation now\r\n"),
            ],
        )
        .await
        .expect("upgrade");
    }

    #[tokio::test]
    async fn imap_bad_and_preauth_are_refused() {
        refused(
            run(
                StartTls::Imap,
                vec![
                    Send(b"* OK ready\r\n"),
                    Expect(b"a1 STARTTLS\r\n"),
                    Send(b"a1 BAD Unknown command\r\n"),
                ],
            )
            .await,
        );
        refused(run(StartTls::Imap, vec![Send(b"* PREAUTH logged in\r\n")]).await);
    }

    #[tokio::test]
    async fn imap_smtp_greeting_is_protocol_error() {
        protocol(run(StartTls::Imap, vec![Send(b"220 mx ESMTP\r\n")]).await);
    }

    // POP3

    #[tokio::test]
    async fn pop3_upgrades_on_ok() {
        run(
            StartTls::Pop3,
            vec![
                Send(b"+OK Dovecot ready.\r\n"),
                Expect(b"STLS\r\n"),
                Send(b"+OK Begin TLS negotiation now.\r\n"),
            ],
        )
        .await
        .expect("upgrade");
    }

    #[tokio::test]
    async fn pop3_err_is_refused() {
        refused(
            run(
                StartTls::Pop3,
                vec![
                    Send(b"+OK ready\r\n"),
                    Expect(b"STLS\r\n"),
                    Send(b"-ERR Unknown command.\r\n"),
                ],
            )
            .await,
        );
    }

    // ManageSieve

    #[tokio::test]
    async fn sieve_upgrades_when_starttls_listed() {
        run(
            StartTls::Sieve,
            vec![
                Send(b"\"IMPLEMENTATION\" \"Example\"\r\n\"SIEVE\" {10}\r\nfileinto x\r\n"),
                Send(b"\"StartTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK \"ready\"\r\n"),
                Expect(b"STARTTLS\r\n"),
                Send(b"OK \"Begin TLS negotiation now\"\r\n"),
            ],
        )
        .await
        .expect("upgrade");
    }

    #[tokio::test]
    async fn sieve_without_starttls_is_refused() {
        let m = refused(
            run(
                StartTls::Sieve,
                vec![Send(b"\"IMPLEMENTATION\" \"Example\"\r\nOK \"ready\"\r\n")],
            )
            .await,
        );
        assert!(m.contains("does not list STARTTLS"), "{m}");
    }

    #[tokio::test]
    async fn sieve_no_is_refused() {
        refused(
            run(
                StartTls::Sieve,
                vec![
                    Send(b"\"STARTTLS\"\r\nOK\r\n"),
                    Expect(b"STARTTLS\r\n"),
                    Send(b"NO \"TLS not available\"\r\n"),
                ],
            )
            .await,
        );
    }

    // PostgreSQL

    const PG_REQ: &[u8] = &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

    #[tokio::test]
    async fn postgres_upgrades_on_s() {
        run(StartTls::Postgres, vec![Expect(PG_REQ), Send(b"S")])
            .await
            .expect("upgrade");
    }

    #[tokio::test]
    async fn postgres_n_is_refused() {
        refused(run(StartTls::Postgres, vec![Expect(PG_REQ), Send(b"N")]).await);
    }

    #[tokio::test]
    async fn postgres_extra_bytes_after_s_are_protocol_error() {
        // CVE-2021-23214: bytes buffered before TLS must not be taken for TLS.
        protocol(run(StartTls::Postgres, vec![Expect(PG_REQ), Send(b"SX")]).await);
    }

    #[tokio::test]
    async fn postgres_garbage_is_protocol_error() {
        protocol(run(StartTls::Postgres, vec![Expect(PG_REQ), Send(b"H")]).await);
    }

    // MySQL

    /// A MariaDB-like protocol-10 handshake packet with the given lower capability flags.
    fn mysql_handshake(lower_caps: u16) -> &'static [u8] {
        let mut p = vec![10];
        p.extend_from_slice(b"10.11.6-MariaDB\0");
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(b"abcdefgh\0");
        p.extend_from_slice(&lower_caps.to_le_bytes());
        p.push(8); // charset
        p.extend_from_slice(&2u16.to_le_bytes()); // status
        p.extend_from_slice(&0x81bfu16.to_le_bytes()); // upper caps
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
        let len = p.len() as u32;
        let mut packet = len.to_le_bytes()[..3].to_vec();
        packet.push(0);
        packet.extend_from_slice(&p);
        Box::leak(packet.into_boxed_slice())
    }

    const MYSQL_SSL_REQUEST: &[u8] = &[
        32, 0, 0, 1, // length 32, sequence 1
        0x05, 0xaa, 0x08,
        0x00, // LONG_PASSWORD|LONG_FLAG|PROTOCOL_41|SSL|TRANSACTIONS|SECURE|PLUGIN_AUTH
        0, 0, 0, 1, // max packet 16 MiB
        8, // the server's charset
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[tokio::test]
    async fn mysql_sends_ssl_request_when_server_offers_ssl() {
        run(
            StartTls::Mysql,
            vec![Send(mysql_handshake(0xffff)), Expect(MYSQL_SSL_REQUEST)],
        )
        .await
        .expect("upgrade");
    }

    #[tokio::test]
    async fn mysql_without_client_ssl_is_refused() {
        let m = refused(run(StartTls::Mysql, vec![Send(mysql_handshake(0xf7ff))]).await);
        assert!(m.contains("10.11.6-MariaDB"), "{m}");
    }

    #[tokio::test]
    async fn mysql_error_packet_is_refused() {
        let m = refused(
            run(
                StartTls::Mysql,
                vec![Send(b"\x16\0\0\0\xff\x6a\x04Host is not allowed")],
            )
            .await,
        );
        assert!(m.contains("1130"), "{m}");
    }

    #[tokio::test]
    async fn mysql_truncated_or_huge_packets_are_protocol_errors() {
        protocol(run(StartTls::Mysql, vec![Send(b"\x03\0\0\0\x0a5\0")]).await);
        protocol(run(StartTls::Mysql, vec![Send(b"\xff\xff\xff\0")]).await);
        protocol(run(StartTls::Mysql, vec![Send(b"\x01\0\0\0\x09")]).await);
    }

    // LDAP

    const LDAP_REQ: &[u8] = b"\x30\x1d\x02\x01\x01\x77\x18\x80\x161.3.6.1.4.1.1466.20037";

    #[tokio::test]
    async fn ldap_upgrades_on_success() {
        run(
            StartTls::Ldap,
            vec![
                Expect(LDAP_REQ),
                // resultCode success, empty DN and message, responseName the StartTLS OID.
                Send(b"\x30\x24\x02\x01\x01\x78\x1f\x0a\x01\x00\x04\x00\x04\x00\x8a\x161.3.6.1.4.1.1466.20037"),
            ],
        )
        .await
        .expect("upgrade");
    }

    #[tokio::test]
    async fn ldap_long_form_lengths_parse() {
        run(
            StartTls::Ldap,
            vec![
                Expect(LDAP_REQ),
                Send(
                    b"\x30\x84\x00\x00\x00\x0d\x02\x01\x01\x78\x81\x07\x0a\x01\x00\x04\x00\x04\x00",
                ),
            ],
        )
        .await
        .expect("upgrade");
    }

    #[tokio::test]
    async fn ldap_protocol_error_is_refused_with_diagnostic() {
        let m = refused(
            run(
                StartTls::Ldap,
                vec![
                    Expect(LDAP_REQ),
                    Send(b"\x30\x1a\x02\x01\x01\x78\x15\x0a\x01\x34\x04\x00\x04\x0eno TLS, really"),
                ],
            )
            .await,
        );
        assert!(m.contains("52 (unavailable)"), "{m}");
    }

    #[tokio::test]
    async fn ldap_garbage_is_protocol_error() {
        protocol(
            run(
                StartTls::Ldap,
                vec![Expect(LDAP_REQ), Send(b"\x16\x03\x01\x00\x00")],
            )
            .await,
        );
        protocol(
            run(
                StartTls::Ldap,
                vec![Expect(LDAP_REQ), Send(b"\x30\x80\x00\x00")],
            )
            .await,
        );
        protocol(
            run(
                StartTls::Ldap,
                vec![Expect(LDAP_REQ), Send(b"\x30\x05\x02\x01\x01\x78\x05")],
            )
            .await,
        );
    }

    // XMPP

    const XMPP_HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream to='example.org' \
        version='1.0' xml:lang='en' xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams'>";
    const XMPP_STARTTLS: &[u8] = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

    #[tokio::test]
    async fn xmpp_upgrades_on_proceed() {
        run(
            StartTls::Xmpp,
            vec![
                Expect(XMPP_HEADER),
                Send(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' id='x' \
                    from='example.org' version='1.0' xmlns:stream='http://etherx.jabber.org/streams'>"),
                Send(b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
                    <required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
                    <mechanism>PLAIN</mechanism></mechanisms></stream:features>"),
                Expect(XMPP_STARTTLS),
                Send(b"<proceed xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>"),
            ],
        )
        .await
        .expect("upgrade");
    }

    #[tokio::test]
    async fn xmpp_without_starttls_feature_is_refused() {
        refused(
            run(
                StartTls::Xmpp,
                vec![
                    Expect(XMPP_HEADER),
                    Send(
                        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='>'>\
                        <stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
                        <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
                    ),
                ],
            )
            .await,
        );
    }

    #[tokio::test]
    async fn xmpp_failure_and_stream_error_are_refused() {
        refused(
            run(
                StartTls::Xmpp,
                vec![
                    Expect(XMPP_HEADER),
                    Send(b"<stream:stream><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"),
                    Expect(XMPP_STARTTLS),
                    Send(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"),
                ],
            )
            .await,
        );
        let m = refused(
            run(
                StartTls::Xmpp,
                vec![
                    Expect(XMPP_HEADER),
                    Send(b"<stream:stream><stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"),
                ],
            )
            .await,
        );
        assert!(m.contains("host-unknown"), "{m}");
    }

    #[tokio::test]
    async fn xmpp_non_xml_is_protocol_error() {
        protocol(
            run(
                StartTls::Xmpp,
                vec![
                    Expect(XMPP_HEADER),
                    Send(b"HTTP/1.1 400 Bad Request\r\n\r\n<html>"),
                ],
            )
            .await,
        );
    }

    #[test]
    fn xmpp_to_attribute_is_escaped() {
        assert_eq!(xml_escape("a'b<c&"), "a&apos;b&lt;c&amp;");
    }

    #[test]
    fn config_spelling_round_trips() {
        for p in StartTls::ALL {
            let parsed: StartTls =
                serde_json_free_parse(p.as_str()).expect("every protocol parses");
            assert_eq!(parsed, p);
        }
    }

    /// Deserializes a unit variant from its name without a format crate.
    fn serde_json_free_parse(s: &str) -> Result<StartTls, serde::de::value::Error> {
        use serde::de::IntoDeserializer;
        serde::Deserialize::deserialize(s.into_deserializer())
    }
}
