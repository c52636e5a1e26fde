//! PostgreSQL and MySQL / MariaDB: the binary SSLRequest of each vendor's wire protocol.
//!
//! Reading exact byte counts within the budget is `conn`'s; this file builds the requests and
//! reads the server's answer (PostgreSQL's one byte, MySQL's initial handshake packet).

use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::{quote, Conn, MAX_LINE};
use super::UpgradeError;

/// The PostgreSQL SSLRequest code, (1234 << 16) | 5679.
const PG_SSL_REQUEST: u32 = 80_877_103;

/// PostgreSQL protocol 53.2.9: SSLRequest, one byte `S` (go on) or `N` (no TLS here).
pub(super) async fn postgres<S: AsyncRead + AsyncWrite + Unpin>(
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
pub(super) async fn mysql<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<'_, S>,
) -> Result<(), UpgradeError> {
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

#[cfg(test)]
mod tests {
    use crate::config::StartTls;
    use crate::probe::starttls::script::Step::{Expect, Send};
    use crate::probe::starttls::script::{protocol, refused, run};

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
}
