//! The TLS probe: resolve and connect (`probe::connect`), full handshake (tokio-rustls), inspect.
//!
//! Each phase is bounded by the probe's deadline and classified on failure. The handshake runs
//! with the recording verifier (see `tls::verifier`), so a broken chain still yields protocol,
//! cipher and every certificate; the verdict on the chain is computed after the handshake.
//! With `revocation:` on, the latest known revocation state of the verified path is read from
//! `revocation`'s shared cache (never waited for), and a revoked certificate fails the probe.

use std::borrow::Cow;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ProtocolVersion;
use rustls_pki_types::UnixTime;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::outcome::{Negotiated, Phases, ProbeOutcome};
use super::starttls::{self, UpgradeError};
use super::{aia, classify, connect, http, ProbeCtx};
use crate::config::Target;
use crate::revocation;
use crate::tls::verifier::{self, Recorder};
use crate::tls::{cache, ct, describe, names, ocsp};
use crate::verdict::{Failure, FailureReason};

/// How long we wait, after a TLS 1.3 handshake in which the server asked for a client
/// certificate, for the alert a server sends when it rejects that certificate.
const REJECTION_WINDOW_MIN: Duration = Duration::from_millis(250);
const REJECTION_WINDOW_MAX: Duration = Duration::from_secs(1);

pub(super) async fn probe(target: &Target, ctx: &ProbeCtx) -> ProbeOutcome {
    let started = Instant::now();
    let mut out = ProbeOutcome::new(Phases::default(), Duration::ZERO);
    let mut sent = Vec::new();
    out.failure = run(target, ctx, &mut out, &mut sent).await.err();
    out.duration = started.elapsed();
    // After the session is closed and the verdict taken: chasing never changes either, and
    // its time is not the endpoint's.
    if let (true, Some(chain)) = (target.aia_fetch, out.chain.clone()) {
        out.aia = Some(Box::new(
            aia::assess(target, &chain, &sent, ctx.deadline).await,
        ));
    }
    out.finished_at = SystemTime::now();
    out
}

/// Connects, upgrades, shakes hands and inspects, filling `out`; `sent` receives the chain the
/// server sent (for AIA chasing).
async fn run(
    target: &Target,
    ctx: &ProbeCtx,
    out: &mut ProbeOutcome,
    sent: &mut Vec<rustls_pki_types::CertificateDer<'static>>,
) -> Result<(), Failure> {
    let lookup = connect::System(target.ip_protocol);
    let (timings, tcp) = connect::dial(
        &lookup,
        &target.host,
        target.port,
        ctx.pinned,
        target.proxy.as_deref(),
        ctx.deadline,
    )
    .await;
    out.phases.resolve = timings.resolve;
    out.phases.connect = timings.connect;
    out.phases.proxy = timings.proxy;
    let connect_time = timings.connect.unwrap_or_default();
    let connected = tcp?;
    tracing::trace!(target = target.name.as_str(), addr = %connected.addr, "connected");
    let mut tcp = connected.stream;

    if let Some(proto) = target.starttls {
        let t = Instant::now();
        let upgraded = timeout_at(
            ctx.deadline,
            starttls::upgrade(&mut tcp, proto, &target.server_name.to_str()),
        )
        .await;
        out.phases.starttls = Some(t.elapsed());
        match upgraded {
            Err(_) => {
                return Err(Failure::new(
                    FailureReason::HandshakeTimeout,
                    format!("{proto} STARTTLS timed out"),
                ))
            }
            Ok(Err(UpgradeError::Refused(m))) => {
                return Err(Failure::new(
                    FailureReason::StarttlsRefused,
                    format!("{proto}: {m}"),
                ))
            }
            Ok(Err(UpgradeError::Protocol(m))) => {
                return Err(Failure::new(FailureReason::NotTls, format!("{proto}: {m}")))
            }
            Ok(Err(UpgradeError::Io(e))) => {
                return Err(Failure::new(
                    classify(&e, false),
                    format!("{proto} STARTTLS: {e}"),
                ))
            }
            Ok(Ok(())) => {}
        }
    }

    let t = Instant::now();
    let mut rec = Recorder::default();
    let handshake = handshake(target, tcp, ctx, &mut rec).await;
    out.phases.handshake = Some(t.elapsed());
    out.client_auth_requested = rec.client_auth_requested;
    let now = UnixTime::now();
    if !rec.chain.is_empty() {
        // Parsing and path validation are reused for a chain judged before (`tls::cache`);
        // the handshake signature was verified during the handshake, as on every probe.
        out.chain = Some(Arc::new(cache::judge(
            &rec.chain,
            &target.material.roots,
            &target.server_name,
            now,
        )));
        out.ocsp_checked = true;
        if let Some(chain) = out.chain.as_deref() {
            // Answers the shared cache has now; due fetches start beside this probe.
            let anchors = target.material.roots.anchors();
            let subjects = revocation::subjects(&rec.chain, chain, anchors, target.revocation.mode);
            out.revocation = revocation::latest(&subjects, &target.revocation);
        }
        if !rec.ocsp.is_empty() {
            let secs = now.as_secs() as i64;
            out.ocsp = Some(ocsp::check_chain(
                &rec.ocsp,
                &rec.chain,
                target.material.roots.anchors(),
                secs,
            ));
        }
        // SCTs of a stapled response count only when the response verified.
        let stapled = match (&out.ocsp, rec.chain.first()) {
            (Some(Ok(_)), Some(leaf)) => ocsp::stapled_scts(&rec.ocsp, leaf.as_ref()),
            _ => None,
        };
        // rustls 0.23 cannot request the TLS signed_certificate_timestamp extension: no `tls`.
        let scts = ct::assess(
            &rec.chain,
            stapled.as_deref(),
            None,
            target.material.roots.anchors(),
            target.material.ct_logs.as_deref(),
        );
        for problem in &scts.problems {
            tracing::debug!(target = target.name.as_str(), "{problem}");
        }
        out.ct = Some(scts);
        if target.aia_fetch {
            sent.clone_from(&rec.chain);
        }
    }
    let mut stream = handshake?;
    out.handshake_ok = true;
    let (_, conn) = stream.get_ref();
    let version = conn.protocol_version();
    out.negotiated = Some(Negotiated {
        version: version.map_or("unknown", names::version),
        cipher: conn
            .negotiated_cipher_suite()
            .map_or(Cow::Borrowed("unknown"), |s| names::cipher(s.suite())),
        group: conn
            .negotiated_key_exchange_group()
            .map(|g| names::group(g.name())),
    });

    if version == Some(ProtocolVersion::TLSv1_3) && rec.client_auth_requested {
        let window = (connect_time * 4).clamp(REJECTION_WINDOW_MIN, REJECTION_WINDOW_MAX);
        if let Err(f) = await_rejection(&mut stream, ctx, window, &mut rec).await {
            // The server refused the session after all: it was not established.
            out.handshake_ok = false;
            return Err(f);
        }
    }
    if let Some(check) = &target.http {
        let got = timeout_at(
            ctx.deadline,
            http::get(&mut stream, &check.host, &check.path),
        )
        .await;
        out.http = Some(Box::new(match got {
            Ok(Ok(facts)) => Ok(facts),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("HTTP request timed out".to_string()),
        }));
    }
    // Be polite: close_notify, but never wait long for it, nor past the deadline.
    let close_by = (Instant::now() + Duration::from_millis(100)).min(ctx.deadline);
    let _ = timeout_at(close_by, stream.shutdown()).await;

    // A chain problem explains more than a handshake signature that failed because of it
    // (a malformed or weak leaf); a bad signature over a good chain is a handshake failure.
    if let Some(problem) = out.chain.as_ref().and_then(|c| c.problem.clone()) {
        return Err(problem);
    }
    if let Some(sig) = rec.signature_error {
        return Err(Failure::new(
            FailureReason::HandshakeFailure,
            format!("the server's handshake signature did not verify: {sig}"),
        ));
    }
    if out.chain.is_none() {
        return Err(Failure::new(
            FailureReason::Other,
            "server sent no certificate",
        ));
    }
    match revocation::revoked_failure(&out.revocation, now.as_secs() as i64) {
        Some(revoked) => Err(revoked),
        None => Ok(()),
    }
}

async fn handshake(
    target: &Target,
    tcp: TcpStream,
    ctx: &ProbeCtx,
    rec: &mut Recorder,
) -> Result<TlsStream<TcpStream>, Failure> {
    let connector = TlsConnector::from(target.material.client_config.clone());
    let mut connect = connector.connect(target.server_name.clone(), tcp);
    // rustls calls our verifier synchronously inside each poll; route what it sees into `rec`.
    let recorded = poll_fn(|cx| verifier::recording(rec, || Pin::new(&mut connect).poll(cx)));
    match timeout_at(ctx.deadline, recorded).await {
        Err(_) => Err(Failure::new(
            FailureReason::HandshakeTimeout,
            "TLS handshake timed out",
        )),
        Ok(Err(e)) => {
            let reason = classify(&e, rec.client_auth_requested);
            Err(Failure::new(reason, describe::handshake_error(&e)))
        }
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// In TLS 1.3 a server rejects our client certificate with an alert after our Finished; read
/// once, briefly, so such a server is not reported healthy.
async fn await_rejection(
    stream: &mut TlsStream<TcpStream>,
    ctx: &ProbeCtx,
    window: Duration,
    rec: &mut Recorder,
) -> Result<(), Failure> {
    let until = (Instant::now() + window).min(ctx.deadline);
    let mut buf = [0u8; 512];
    let read = poll_fn(|cx| {
        verifier::recording(rec, || {
            let mut rb = ReadBuf::new(&mut buf);
            Pin::new(&mut *stream)
                .poll_read(cx, &mut rb)
                .map_ok(|()| rb.filled().len())
        })
    });
    match timeout_at(until, read).await {
        // Nothing but silence (or session tickets): the server kept the session.
        Err(_) | Ok(Ok(1..)) => Ok(()),
        Ok(Ok(0)) => Err(Failure::new(
            FailureReason::ClientCertificateRejected,
            "server closed the connection right after the handshake (client certificate refused?)",
        )),
        Ok(Err(e)) => Err(Failure::new(
            classify(&e, true),
            format!("after the handshake: {}", describe::handshake_error(&e)),
        )),
    }
}
