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
//!
//! This file holds the entry points and the error; `conn` reads the server's bytes within those
//! bounds, and the dialogues live one protocol family per file: `reply_code` (SMTP, FTP, NNTP),
//! `mail` (IMAP, POP3, ManageSieve), `database` (PostgreSQL, MySQL), `ldap` and `xmpp`. The
//! `starttls:` value itself is `config::StartTls`.

mod conn;
mod database;
mod ldap;
mod mail;
mod reply_code;
#[cfg(test)]
mod script;
mod xmpp;

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::config::StartTls;
use conn::Conn;

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
        StartTls::Smtp => reply_code::smtp(&mut c, ehlo_name).await?,
        StartTls::Imap => mail::imap(&mut c).await?,
        StartTls::Pop3 => mail::pop3(&mut c).await?,
        StartTls::Ftp => reply_code::ftp(&mut c).await?,
        StartTls::Postgres => database::postgres(&mut c).await?,
        StartTls::Ldap => ldap::ldap(&mut c).await?,
        StartTls::Xmpp => xmpp::xmpp(&mut c, server_name).await?,
        StartTls::Mysql => database::mysql(&mut c).await?,
        StartTls::Nntp => reply_code::nntp(&mut c).await?,
        StartTls::Sieve => mail::sieve(&mut c).await?,
    }
    let left = c.buffered();
    if left != 0 {
        return Err(UpgradeError::Protocol(format!(
            "{proto} server sent {left} bytes after agreeing to STARTTLS, before the TLS handshake"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::starttls::script::Step::{Expect, Send};
    use crate::probe::starttls::script::{protocol, run};

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
}
