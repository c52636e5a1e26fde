//! Entry points for the fuzz targets (`fuzz/`) and the property tests
//! (`tests/it/properties.rs`): the parsers that read bytes from outside, re-exported or wrapped
//! thinly so that each can be driven from a byte string alone.
//!
//! Nothing here changes what the parsers do, and the exporter never calls this module; it is
//! hidden from the documentation and no stable API. The parsers themselves, and what their
//! answers mean, belong to their modules: `config`, `web_config`, `tls::cert`, `tls::ocsp`,
//! `probe::legacy` (the server's first flight) and `probe::starttls` (the dialogues).

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use crate::config::{parse as config, ConfigError, StartTls};
pub use crate::probe::starttls::UpgradeError;
pub use crate::tls::cert::parse as cert;
pub use crate::tls::ocsp::{check as ocsp, check_chain as ocsp_chain, Issuer};
pub use crate::web_config::{parse as web_config, WebConfigError};

/// The legacy scan's reader of a server's first flight, fed `bytes` in pieces of `chunk` bytes
/// (at least 1) and then closed: its answer as `Debug` text (a ServerHello's version, suite,
/// retry flag and chain, or a refusal and why).
pub fn legacy_flight(capture: Option<u16>, bytes: &[u8], chunk: usize) -> String {
    crate::probe::legacy::read_flight(capture, bytes.chunks(chunk.max(1)))
}

/// The STARTTLS dialogue of `proto` with a server that sends `server` (in reads of at most
/// `chunk` bytes, at least 1) and then closes the connection; what the client writes is
/// dropped. `None` if the dialogue waited although every read and write was ready at once,
/// which the dialogues never do.
pub fn starttls(proto: StartTls, server: &[u8], chunk: usize) -> Option<Result<(), UpgradeError>> {
    let mut stream = Scripted {
        rest: server,
        chunk: chunk.max(1),
    };
    let dialogue =
        crate::probe::starttls::upgrade_io(&mut stream, proto, "fuzz.example", "[127.0.0.1]");
    let mut dialogue = pin!(dialogue);
    match dialogue
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(answer) => Some(answer),
        Poll::Pending => None,
    }
}

/// A peer whose bytes are known in advance: reads are always ready (end of stream when the
/// bytes run out), writes are accepted and dropped.
struct Scripted<'a> {
    rest: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Scripted<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.chunk.min(self.rest.len()).min(buf.remaining());
        let (now, later) = self.rest.split_at(n);
        buf.put_slice(now);
        self.rest = later;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Scripted<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_dialogue_runs_to_the_go_ahead_on_scripted_bytes() {
        let server = b"220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 go ahead\r\n";
        for chunk in [1, 5, server.len()] {
            let answer = starttls(StartTls::Smtp, server, chunk);
            assert!(matches!(answer, Some(Ok(()))), "{answer:?}");
        }
    }

    #[test]
    fn silent_server_is_an_unexpected_end_not_a_wait() {
        for proto in StartTls::ALL {
            let answer = starttls(proto, b"", 1);
            assert!(
                matches!(&answer, Some(Err(UpgradeError::Io(e))) if e.kind() == io::ErrorKind::UnexpectedEof),
                "{proto}: {answer:?}"
            );
        }
    }

    #[test]
    fn flight_of_an_alert_is_a_refusal() {
        let answer = legacy_flight(None, &[21, 3, 3, 0, 2, 2, 40], 3);
        assert!(answer.starts_with("Refused("), "{answer}");
    }
}
