//! The bounded reader: what a STARTTLS dialogue reads from the server, and how.
//!
//! `Conn` keeps the bytes read but not yet consumed and the read budget, and reads the units
//! the dialogues need (lines, numeric replies, IMAP/ManageSieve lines with literals, XML tags,
//! BER TLVs, exact byte counts), each within `MAX_LINE` and all within `MAX_TOTAL`. What a
//! reply means is left to the dialogues; `quote` shapes a server's text for their messages.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::UpgradeError;
use crate::config::StartTls;

/// Longest line (or XML tag) we accept from a server.
pub(super) const MAX_LINE: usize = 8 * 1024;
/// Most bytes we read from a server during one upgrade.
const MAX_TOTAL: usize = 64 * 1024;

/// A connection during the upgrade: bytes read but not yet consumed, and the read budget.
pub(super) struct Conn<'a, S> {
    io: &'a mut S,
    proto: StartTls,
    buf: Vec<u8>,
    read_total: usize,
}

impl<'a, S> Conn<'a, S> {
    /// A reader over `io` for `proto`'s dialogue, with the whole budget left.
    pub(super) fn new(io: &'a mut S, proto: StartTls) -> Self {
        Conn {
            io,
            proto,
            buf: Vec::new(),
            read_total: 0,
        }
    }

    /// Bytes read from the server and not consumed by the dialogue.
    pub(super) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// A reply we do not understand at this point of the dialogue.
    pub(super) fn unexpected(&self, what: &str, got: &str) -> UpgradeError {
        UpgradeError::Protocol(format!("unexpected {} {what}: {}", self.proto, quote(got)))
    }

    /// Accepts a numeric reply with code `want`; other 4xx/5xx codes are refusals.
    pub(super) fn expect_code(
        &self,
        reply: &Coded,
        want: u16,
        what: &str,
    ) -> Result<(), UpgradeError> {
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
    /// Writes `bytes` and flushes them.
    pub(super) async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
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
        let n = self
            .io
            .read(chunk.get_mut(..room).unwrap_or_default())
            .await?;
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
        self.buf
            .extend_from_slice(chunk.get(..n).unwrap_or_default());
        Ok(())
    }

    /// Exactly `n` bytes.
    pub(super) async fn bytes(&mut self, n: usize) -> Result<Vec<u8>, UpgradeError> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        // `buf` holds at least `n` bytes now.
        Ok(self.buf.drain(..n).collect())
    }

    /// Exactly `N` bytes, as an array.
    pub(super) async fn array<const N: usize>(&mut self) -> Result<[u8; N], UpgradeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes(N).await?);
        Ok(out)
    }

    /// One line without its CR LF (a bare LF is accepted too), at most `MAX_LINE` bytes.
    pub(super) async fn line(&mut self) -> Result<String, UpgradeError> {
        let mut scanned = 0;
        loop {
            let unscanned = self.buf.get(scanned..).unwrap_or_default();
            if let Some(i) = unscanned.iter().position(|&b| b == b'\n') {
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
    pub(super) async fn coded_reply(&mut self) -> Result<Coded, UpgradeError> {
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
    pub(super) async fn imap_line(&mut self) -> Result<String, UpgradeError> {
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
    pub(super) async fn sieve_line(&mut self) -> Result<String, UpgradeError> {
        self.imap_line().await
    }

    /// The next XML tag, skipping character data between tags. Quoted attribute values may
    /// hold `>`.
    pub(super) async fn xml_tag(&mut self) -> Result<Tag, UpgradeError> {
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
    pub(super) async fn ber_tlv(&mut self) -> Result<(u8, Vec<u8>), UpgradeError> {
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

/// A numeric reply (RFC 5321 4.2, RFC 959 4.2, RFC 3977 3.2), its lines without the codes.
pub(super) struct Coded {
    pub(super) code: u16,
    pub(super) lines: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TagKind {
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
pub(super) struct Tag {
    pub(super) kind: TagKind,
    /// The qualified name (`stream:features`).
    name: String,
    /// The whole tag, for error messages and namespace checks.
    pub(super) raw: String,
}

impl Tag {
    /// The name without its prefix.
    pub(super) fn local_name(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or_default()
    }

    /// True when the local name is one of `names` and the tag declares namespace `ns`.
    pub(super) fn is(&self, names: &[&str], ns: &str) -> bool {
        names.contains(&self.local_name()) && self.raw.contains(ns)
    }
}

/// A server's text, quoted for a message: printable ASCII only, at most 200 characters.
pub(super) fn quote(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use std::io;

    use super::{MAX_LINE, MAX_TOTAL};
    use crate::config::StartTls;
    use crate::probe::starttls::script::Step::{Close, Send};
    use crate::probe::starttls::script::{protocol, run};
    use crate::probe::starttls::UpgradeError;

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
}
