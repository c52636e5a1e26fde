//! XMPP client-to-server: stream header, stream features, `<starttls/>`, `<proceed/>`
//! (RFC 6120 5.4), over a restricted XML stream (RFC 6120 11: no comments, DTDs or processing
//! instructions).
//!
//! Reading one tag at a time (quoted `>` included) is `conn`'s; this file opens the stream,
//! walks the features, and reads stream errors as refusals.

use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::{Conn, Tag, TagKind};
use super::UpgradeError;

const XMPP_TLS_NS: &str = "urn:ietf:params:xml:ns:xmpp-tls";

/// RFC 6120 5.4: stream header, features with `<starttls/>`, `<starttls/>`, `<proceed/>`.
pub(super) async fn xmpp<S: AsyncRead + AsyncWrite + Unpin>(
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

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StartTls;
    use crate::probe::starttls::script::Step::{Expect, Send};
    use crate::probe::starttls::script::{protocol, refused, run};

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
}
