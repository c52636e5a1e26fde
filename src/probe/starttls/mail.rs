//! IMAP, POP3 and ManageSieve: the dialogues of status words (RFC 3501, RFC 2595, RFC 5804).
//!
//! Reading lines (and skipping literals) is `conn`'s; this file sends the commands and reads
//! `OK` / `+OK` / `NO` / `-ERR` / `BYE` as go-ahead or refusal.

use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::{quote, Conn};
use super::UpgradeError;

/// RFC 3501 6.2.1 / RFC 9051 6.2.1: greeting `* OK`, `a1 STARTTLS`, `a1 OK`.
pub(super) async fn imap<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<'_, S>,
) -> Result<(), UpgradeError> {
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
pub(super) async fn pop3<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<'_, S>,
) -> Result<(), UpgradeError> {
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
pub(super) async fn sieve<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<'_, S>,
) -> Result<(), UpgradeError> {
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

#[cfg(test)]
mod tests {
    use crate::config::StartTls;
    use crate::probe::starttls::script::Step::{Expect, Send};
    use crate::probe::starttls::script::{protocol, refused, run};

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
}
