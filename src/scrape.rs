//! The `/metrics` answer: at most `--web.max-concurrent-scrapes` at once (a scrape waits
//! briefly for a slot, then gets 503), each rendered on a thread of its own, never one of
//! tokio's blocking pool, which probes' name resolution needs. The render hands its chunks to
//! the HTTP body, gzip-compressed (fast level, streaming, on a second thread that runs
//! alongside the render) when the scraper accepts it, at most `BODY_AHEAD` pieces ahead of
//! what the client has taken: a scrape's memory is a few hundred KiB whatever the size of the
//! exposition (tens of MB at 50,000 targets). A scraper that stops reading holds its slot, its
//! render thread, waiting, and the render's snapshot of the state until the listener's write
//! timeout drops the connection: entries that change meanwhile are copied on write (about 450
//! bytes each, at most one copy per entry per stalled scrape). The slots bound how many.
//!
//! What the exposition says is `metrics`' business; deadlines and connections are the
//! listener's.

use std::io::Write as _;
use std::pin::Pin;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::header::{
    ACCEPT_ENCODING, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, VARY,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use flate2::write::GzEncoder;
use tokio::sync::mpsc::{channel as body_channel, Receiver as BodyReceiver, Sender as BodySender};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::state::State;

/// The text format's content type.
pub(crate) const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How long a scrape may wait for a slot before it is answered 503: long enough for a burst
/// (an HA pair scraping at the same moment) to be served in turn.
const SLOT_WAIT: Duration = Duration::from_secs(1);

/// The renders allowed at once (`--web.max-concurrent-scrapes`).
pub struct ScrapeSlots {
    slots: Arc<Semaphore>,
    max: usize,
}

impl ScrapeSlots {
    /// `max` scrapes at once (at least one).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        ScrapeSlots {
            slots: Arc::new(Semaphore::new(max)),
            max,
        }
    }
}

/// Why a scrape's body ended early: the client sees a broken response, never a short one.
#[derive(Debug, thiserror::Error)]
enum ScrapeError {
    #[error("the render of /metrics stopped before the end")]
    RenderStopped,
}

/// The `/metrics` response for a request with `headers`: a streaming body, or 503 when no slot
/// frees up within a second.
pub(crate) async fn respond(
    slots: &ScrapeSlots,
    state: Arc<State>,
    headers: &HeaderMap,
) -> Response {
    let slot = match slots.slots.clone().try_acquire_owned() {
        Ok(slot) => Some(slot),
        Err(_) => tokio::time::timeout(SLOT_WAIT, slots.slots.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok),
    };
    let Some(slot) = slot else {
        let msg = format!(
            "{} scrapes are being answered already (--web.max-concurrent-scrapes); try again\n",
            slots.max
        );
        // Closed after the answer: a scraper that does not read it holds no connection.
        let headers = [(RETRY_AFTER, "1"), (CONNECTION, "close")];
        return (StatusCode::SERVICE_UNAVAILABLE, headers, msg).into_response();
    };
    let gzip = accepts_gzip(headers);
    let slot = Arc::new(slot);
    let (tx, rx) = body_channel(BODY_AHEAD);
    let output = Output::new(tx, gzip);
    let render_slot = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-render".into())
        .spawn(move || {
            let _slot = render_slot;
            render(&state, output);
        });
    if let Err(e) = spawned {
        let msg = format!("cannot start a thread to render /metrics: {e}\n");
        return (StatusCode::SERVICE_UNAVAILABLE, msg).into_response();
    }
    let body = axum::body::Body::new(Chunks {
        rx,
        ended: false,
        _slot: slot,
    });
    if gzip {
        (
            [
                (CONTENT_TYPE, CONTENT_TYPE_TEXT),
                (CONTENT_ENCODING, "gzip"),
                (VARY, "Accept-Encoding"),
            ],
            body,
        )
            .into_response()
    } else {
        (
            [(CONTENT_TYPE, CONTENT_TYPE_TEXT), (VARY, "Accept-Encoding")],
            body,
        )
            .into_response()
    }
}

/// True when `Accept-Encoding` lists `gzip` (or `x-gzip`) with a weight above zero.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().map_or(true, |q| q <= 0.0))
            });
            (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip"))
                && !refused
        })
}

/// Renders the whole exposition into `output` (on the calling thread; a gzip stream is
/// compressed on a thread of its own meanwhile).
fn render(state: &State, output: Output) {
    let feed = Arc::new(Mutex::new(Feed::new(output)));
    let sink = feed.clone();
    crate::metrics::render_to(
        state,
        SystemTime::now(),
        Box::new(move |chunk: String| lock(&sink).push(chunk)),
    );
    lock(&feed).finish();
    crate::state::release_free_memory();
}

fn lock(feed: &Mutex<Feed>) -> std::sync::MutexGuard<'_, Feed> {
    feed.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Text chunks (64 KiB each) the render may run ahead of the compressor.
const AHEAD: usize = 8;
/// Pieces (a text chunk, or what deflate made of one) the render may run ahead of the client.
const BODY_AHEAD: usize = 8;

/// Where the render's chunks go: straight into the output, or to a compressor thread, so
/// rendering and compressing (each about half of a gzip scrape's CPU) run on two cores.
enum Feed {
    Inline(Output),
    Compressor {
        text: SyncSender<Text>,
        /// The compressor stopped (client away): the rest is not sent.
        gone: bool,
    },
}

/// What the render hands the compressor thread.
enum Text {
    Chunk(String),
    /// The exposition is complete; without it the body ends in an error.
    Done,
}

impl Feed {
    /// A compressor thread for a gzip `output`; inline when it is identity or no thread starts.
    fn new(output: Output) -> Feed {
        if output.gzip.is_none() {
            return Feed::Inline(output);
        }
        let (text, chunks) = sync_channel(AHEAD);
        let (hand_over, handed) = channel::<Output>();
        let spawned = std::thread::Builder::new()
            .name("metrics-gzip".into())
            .spawn(move || {
                if let Ok(output) = handed.recv() {
                    compress(&chunks, output);
                }
            });
        match spawned {
            Ok(_) => {
                // The thread waits for exactly this message; it cannot be gone yet.
                let _ = hand_over.send(output);
                Feed::Compressor { text, gone: false }
            }
            Err(_) => Feed::Inline(output),
        }
    }

    fn push(&mut self, chunk: String) {
        match self {
            Feed::Inline(output) => output.push(chunk),
            Feed::Compressor { text, gone } => {
                if !*gone {
                    *gone = text.send(Text::Chunk(chunk)).is_err();
                }
            }
        }
    }

    fn finish(&mut self) {
        match self {
            Feed::Inline(output) => output.finish(),
            Feed::Compressor { text, gone } => {
                if !*gone {
                    *gone = text.send(Text::Done).is_err();
                }
            }
        }
    }
}

/// The compressor thread: `chunks` into `output` until the render is done, the render stops
/// (its sender dropped without `Done`: no end is sent) or the client goes away.
fn compress(chunks: &Receiver<Text>, mut output: Output) {
    while let Ok(text) = chunks.recv() {
        match text {
            Text::Chunk(chunk) => output.push(chunk),
            Text::Done => {
                output.finish();
                return;
            }
        }
        if output.gone {
            return;
        }
    }
}

/// What the render thread hands the body.
enum Piece {
    Data(Bytes),
    /// The exposition is complete.
    End,
}

/// The render's side of the channel: chunks as they are, or through a gzip stream. Used on
/// the render's and the compressor's threads only: a send waits while the body is full.
struct Output {
    tx: BodySender<Piece>,
    gzip: Option<GzEncoder<Vec<u8>>>,
    /// The body is gone (client away): the rest is neither compressed nor sent.
    gone: bool,
}

impl Output {
    fn new(tx: BodySender<Piece>, gzip: bool) -> Self {
        let gzip = gzip.then(|| GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        Output {
            tx,
            gzip,
            gone: false,
        }
    }

    fn push(&mut self, chunk: String) {
        if self.gone {
            return;
        }
        let Some(gz) = self.gzip.as_mut() else {
            self.send(Piece::Data(Bytes::from(chunk)));
            return;
        };
        // Writing into a Vec cannot fail.
        let _ = gz.write_all(chunk.as_bytes());
        // What deflate has emitted so far; it keeps appending after what was taken.
        let compressed = std::mem::take(gz.get_mut());
        if !compressed.is_empty() {
            self.send(Piece::Data(Bytes::from(compressed)));
        }
    }

    fn finish(&mut self) {
        if self.gone {
            return;
        }
        if let Some(gz) = self.gzip.take() {
            if let Ok(rest) = gz.finish() {
                if !rest.is_empty() {
                    self.send(Piece::Data(Bytes::from(rest)));
                }
            }
        }
        self.send(Piece::End);
    }

    fn send(&mut self, piece: Piece) {
        self.gone = self.tx.blocking_send(piece).is_err();
    }
}

/// The HTTP body of a scrape: the pieces its render sends, holding the scrape's slot.
struct Chunks {
    rx: BodyReceiver<Piece>,
    ended: bool,
    _slot: Arc<OwnedSemaphorePermit>,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = ScrapeError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, ScrapeError>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Piece::Data(b))) => Poll::Ready(Some(Ok(http_body::Frame::data(b)))),
            Poll::Ready(Some(Piece::End)) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(Some(Err(ScrapeError::RenderStopped)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use axum::http::HeaderValue;

    use super::*;

    fn headers(accept: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for a in accept {
            h.append(ACCEPT_ENCODING, HeaderValue::from_str(a).expect("header"));
        }
        h
    }

    #[test]
    fn gzip_is_used_when_listed_with_a_weight_above_zero() {
        assert!(accepts_gzip(&headers(&["gzip"])));
        assert!(accepts_gzip(&headers(&["deflate, GZIP;q=0.5"])));
        assert!(accepts_gzip(&headers(&["br", "x-gzip"])));
        assert!(!accepts_gzip(&headers(&[])));
        assert!(!accepts_gzip(&headers(&["gzip;q=0"])));
        assert!(!accepts_gzip(&headers(&["gzip; q=0.0, identity"])));
        assert!(!accepts_gzip(&headers(&["*", "br, deflate"])));
    }

    /// The bytes of `pieces` and whether the end came.
    fn collect(pieces: impl Iterator<Item = Piece>) -> (Vec<u8>, bool) {
        let mut bytes = Vec::new();
        let mut ended = false;
        for piece in pieces {
            match piece {
                Piece::Data(b) => bytes.extend_from_slice(&b),
                Piece::End => ended = true,
            }
        }
        (bytes, ended)
    }

    /// Everything the body has received so far.
    fn drain(mut rx: BodyReceiver<Piece>) -> (Vec<u8>, bool) {
        collect(std::iter::from_fn(|| rx.try_recv().ok()))
    }

    /// Everything the body receives from `produce` (run on a thread of its own, as the render
    /// is: its sends wait while the body is full), and what `produce` returned.
    fn received<T: Send + 'static>(
        produce: impl FnOnce(BodySender<Piece>) -> T + Send + 'static,
    ) -> ((Vec<u8>, bool), T) {
        let (tx, mut rx) = body_channel(BODY_AHEAD);
        let producer = std::thread::spawn(move || produce(tx));
        let got = collect(std::iter::from_fn(|| rx.blocking_recv()));
        (got, producer.join().expect("the producer does not panic"))
    }

    #[test]
    fn gzip_stream_decodes_to_the_chunks_pushed() {
        let ((gz, ended), text) = received(|tx| {
            let mut out = Output::new(tx, true);
            let mut text = String::new();
            for i in 0..2000 {
                let chunk = format!("tls_probe_success{{target=\"t{i:05}\"}} 1\n").repeat(40);
                text.push_str(&chunk);
                out.push(chunk);
            }
            out.finish();
            text
        });
        assert!(ended);
        assert!(gz.len() * 10 < text.len(), "{} of {}", gz.len(), text.len());
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut decoded)
            .expect("valid gzip");
        assert_eq!(decoded, text);
    }

    #[test]
    fn compressor_thread_stream_decodes_to_the_exact_chunks_pushed() {
        let ((gz, ended), text) = received(|tx| {
            let mut feed = Feed::new(Output::new(tx, true));
            assert!(matches!(feed, Feed::Compressor { .. }));
            let mut text = String::new();
            for i in 0..(AHEAD * 8) {
                let chunk = format!("tls_probe_duration_seconds{{target=\"t{i:05}\"}} 0.{i}\n")
                    .repeat(1500);
                text.push_str(&chunk);
                feed.push(chunk);
            }
            feed.finish();
            text
        });
        assert!(ended);
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut decoded)
            .expect("one valid gzip member");
        assert_eq!(decoded, text);
    }

    #[test]
    fn a_scraper_that_stops_reading_holds_only_the_pieces_ahead() {
        let (tx, mut rx) = body_channel(BODY_AHEAD);
        let pushed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = pushed.clone();
        let render = std::thread::spawn(move || {
            let mut out = Output::new(tx, false);
            for _ in 0..(BODY_AHEAD * 100) {
                out.push("a 1\n".repeat(16 * 1024));
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            out.finish();
            out.gone
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // Full, and the last push counted (it is counted just after its send returns).
        while rx.len() < BODY_AHEAD || pushed.load(std::sync::atomic::Ordering::SeqCst) < BODY_AHEAD
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the body never filled"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // The render waits in its next send: nothing more is rendered, so nothing piles up.
        assert_eq!(pushed.load(std::sync::atomic::Ordering::SeqCst), BODY_AHEAD);
        assert!(!render.is_finished());
        assert_eq!(
            rx.try_recv().ok().map(|p| matches!(p, Piece::Data(_))),
            Some(true)
        );
        // The client goes away: the render stops sending at once and ends.
        drop(rx);
        assert!(
            render.join().expect("the render does not panic"),
            "the output saw the client go"
        );
    }

    /// Everything the body would receive, waiting until the sender is gone.
    fn drain_blocking(mut rx: BodyReceiver<Piece>) -> (Vec<u8>, bool) {
        collect(std::iter::from_fn(|| rx.blocking_recv()))
    }

    #[test]
    fn a_render_that_stops_early_never_sends_the_end_through_the_compressor() {
        let (tx, rx) = body_channel(BODY_AHEAD);
        let mut feed = Feed::new(Output::new(tx, true));
        feed.push("a 1\n".repeat(100_000));
        drop(feed);
        let (_, ended) = drain_blocking(rx);
        assert!(!ended);
    }

    #[test]
    fn a_gone_client_stops_the_compressor_and_the_feed() {
        let (tx, rx) = body_channel(BODY_AHEAD);
        drop(rx);
        let mut feed = Feed::new(Output::new(tx, true));
        // The compressor notices on its first send; the feed on a send after that.
        for _ in 0..(AHEAD + 4) {
            feed.push("a 1\n".repeat(20_000));
        }
        feed.finish();
        assert!(matches!(feed, Feed::Compressor { gone: true, .. }));
    }

    #[test]
    fn identity_stream_is_the_chunks_then_the_end() {
        let (tx, rx) = body_channel(BODY_AHEAD);
        let mut out = Output::new(tx, false);
        out.push("a 1\n".into());
        out.push("b 2\n".into());
        out.finish();
        assert_eq!(drain(rx), (b"a 1\nb 2\n".to_vec(), true));
    }

    #[test]
    fn a_gone_client_stops_the_output() {
        let (tx, rx) = body_channel(BODY_AHEAD);
        drop(rx);
        let mut out = Output::new(tx, false);
        out.push("a 1\n".into());
        assert!(out.gone);
        out.push("b 2\n".into());
        out.finish();
    }
}
