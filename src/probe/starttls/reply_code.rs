//! SMTP, FTP and NNTP: the dialogues of numeric reply codes (RFC 3207, RFC 4217, RFC 4642).
//!
//! Reading a (multi-line) coded reply and judging its code are `conn`'s; this file says which
//! commands to send and which codes mean go on.

use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::Conn;
use super::UpgradeError;

/// RFC 3207: greeting 220, EHLO, STARTTLS among the EHLO keywords, STARTTLS, 220.
pub(super) async fn smtp<S: AsyncRead + AsyncWrite + Unpin>(
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
pub(super) async fn ftp<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<'_, S>,
) -> Result<(), UpgradeError> {
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
pub(super) async fn nntp<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Conn<'_, S>,
) -> Result<(), UpgradeError> {
    let greeting = c.coded_reply().await?;
    if greeting.code != 201 {
        c.expect_code(&greeting, 200, "greeting")?;
    }
    c.send(b"STARTTLS\r\n").await?;
    let reply = c.coded_reply().await?;
    c.expect_code(&reply, 382, "STARTTLS")
}

#[cfg(test)]
mod tests {
    use crate::config::StartTls;
    use crate::probe::starttls::script::Step::{Expect, Send};
    use crate::probe::starttls::script::{protocol, refused, run};

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
}
