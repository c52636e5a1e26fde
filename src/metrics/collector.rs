//! Renders `/metrics` from a state snapshot: per-target families, then exporter self metrics.
//!
//! Pure function of the snapshot and the scrape time (`tls_cert_days_to_expiry` is derived from
//! not-after at scrape time, never stored). Families are written once each, grouping all targets.

use std::time::{SystemTime, UNIX_EPOCH};

use super::*;
use crate::probe::legacy::LegacyVersion;
use crate::probe::outcome::{Chain, FailureReason, ProbeOutcome};
use crate::state::{Entry, Probed, Scan, State};

/// The whole exposition for one scrape.
pub fn render(state: &State, now: SystemTime) -> String {
    let entries = state.snapshot();
    let mut e = Encoder::with_capacity(1024 + entries.len() * 2048);
    targets(&mut e, &entries, now);
    exporter::render(&mut e, state, entries.len());
    e.out
}

/// The whole exposition, handed to `sink` in chunks as it is written (what `/metrics` serves).
pub fn render_to(state: &State, now: SystemTime, sink: Box<dyn FnMut(String) + Send>) {
    let entries = state.snapshot();
    let mut e = Encoder::streaming(sink);
    targets(&mut e, &entries, now);
    exporter::render(&mut e, state, entries.len());
    e.flush();
}

/// Only the per-target families of `state` (what `/probe` answers).
pub fn render_targets(state: &State, now: SystemTime) -> String {
    let entries = state.snapshot();
    let mut e = Encoder::with_capacity(4096);
    targets(&mut e, &entries, now);
    e.out
}

fn targets(e: &mut Encoder, entries: &[Entry], now: SystemTime) {
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let probed: Vec<(&Probed, &ProbeOutcome)> = entries
        .iter()
        .flat_map(|en| en.latest.iter().map(|p| (p, &*p.outcome)))
        .collect();

    per_target(e, &PROBE_SUCCESS, &probed, |o| {
        Some(bool_value(o.success()))
    });
    e.family(&HANDSHAKE_SUCCESS);
    for (p, o) in &probed {
        if p.tls {
            e.sample(
                &HANDSHAKE_SUCCESS,
                &p.labels,
                &[],
                bool_value(o.handshake_ok),
            );
        }
    }
    e.family(&PROBE_FAILURE_INFO);
    for (en, o) in &probed {
        if let Some(r) = o.reason() {
            e.sample(
                &PROBE_FAILURE_INFO,
                &en.labels,
                &[("reason", r.as_label())],
                1.0,
            );
        }
    }
    per_target(e, &PROBE_DURATION, &probed, |o| {
        Some(o.duration.as_secs_f64())
    });
    e.family(&PROBE_PHASE_DURATION);
    for (en, o) in &probed {
        let p = &o.phases;
        for (phase, d) in [
            ("resolve", p.resolve),
            ("connect", p.connect),
            ("starttls", p.starttls),
            ("handshake", p.handshake),
        ] {
            if let Some(d) = d {
                e.sample(
                    &PROBE_PHASE_DURATION,
                    &en.labels,
                    &[("phase", phase)],
                    d.as_secs_f64(),
                );
            }
        }
    }
    per_target(e, &PROBE_TIMESTAMP, &probed, |o| {
        o.finished_at
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs_f64())
    });
    e.family(&PROBE_INTERVAL);
    for en in entries {
        e.sample(
            &PROBE_INTERVAL,
            &en.labels,
            &[],
            en.target.interval.as_secs_f64(),
        );
    }
    e.family(&CLIENT_CERT_NOT_AFTER);
    for en in entries {
        if let Some(t) = en.target.client_cert_not_after {
            e.sample(&CLIENT_CERT_NOT_AFTER, &en.labels, &[], t as f64);
        }
    }
    e.family(&CLIENT_CERT_DAYS_TO_EXPIRY);
    for en in entries {
        if let Some(t) = en.target.client_cert_not_after {
            e.sample(
                &CLIENT_CERT_DAYS_TO_EXPIRY,
                &en.labels,
                &[],
                (t as f64 - now_s) / 86_400.0,
            );
        }
    }
    e.family(&PROBES_TOTAL);
    for en in entries {
        e.sample(&PROBES_TOTAL, &en.labels, &[], en.probes_total as f64);
    }
    e.family(&PROBE_FAILURES_TOTAL);
    for en in entries {
        for r in FailureReason::ALL {
            let n = en.failures_total[r.index()];
            if n > 0 {
                e.sample(
                    &PROBE_FAILURES_TOTAL,
                    &en.labels,
                    &[("reason", r.as_label())],
                    n as f64,
                );
            }
        }
    }

    negotiated(e, &probed);
    per_target(e, &CLIENT_AUTH_REQUESTED, &probed, |o| {
        // Known once the handshake got as far as the server's CertificateRequest.
        (o.handshake_ok || o.client_auth_requested).then_some(bool_value(o.client_auth_requested))
    });
    // A server rustls cannot talk to (protocol_version) still shows the chain the legacy scan
    // captured from its pre-1.3 handshake.
    let with: Vec<(&Probed, &Chain)> = entries
        .iter()
        .flat_map(|en| {
            en.latest.iter().filter_map(move |p| {
                let legacy = || {
                    // rustls got no chain and the scan says the server speaks neither TLS 1.2
                    // nor 1.3 (whatever alert it answered rustls with).
                    let scan = en
                        .scan
                        .as_ref()
                        .filter(|_| p.ip.is_none() && !p.outcome.handshake_ok)?;
                    let legacy_only = scan.result.accepts(LegacyVersion::Tls12) == Some(false)
                        && scan.result.accepts(LegacyVersion::Tls13) == Some(false);
                    scan.legacy_chain.as_ref().filter(|_| legacy_only)
                };
                p.outcome.chain.as_ref().or_else(legacy).map(|c| (p, c))
            })
        })
        .collect();
    chains(e, &with, now_s);
    ocsp(e, &probed);
    http(e, &probed);
    scans(e, entries);
}

fn scans(e: &mut Encoder, entries: &[Entry]) {
    let with: Vec<(&Entry, &Scan)> = entries
        .iter()
        .filter_map(|en| en.scan.as_deref().map(|s| (en, s)))
        .collect();
    e.family(&PROTOCOL_ACCEPTED);
    for (en, s) in &with {
        for (v, accepted) in &s.result.protocols {
            e.sample(
                &PROTOCOL_ACCEPTED,
                &en.labels,
                &[("version", v.as_label())],
                bool_value(*accepted),
            );
        }
    }
    e.family(&WEAK_CIPHER_ACCEPTED);
    for (en, s) in &with {
        for (c, accepted) in &s.result.weak {
            e.sample(
                &WEAK_CIPHER_ACCEPTED,
                &en.labels,
                &[("class", c.as_label())],
                bool_value(*accepted),
            );
        }
    }
    e.family(&SCAN_TIMESTAMP);
    for (en, s) in &with {
        let t = s
            .finished_at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        e.sample(&SCAN_TIMESTAMP, &en.labels, &[], t);
    }
    e.family(&SCAN_DURATION);
    for (en, s) in &with {
        e.sample(
            &SCAN_DURATION,
            &en.labels,
            &[],
            s.result.duration.as_secs_f64(),
        );
    }
    e.family(&SCAN_HANDSHAKES);
    for (en, s) in &with {
        e.sample(
            &SCAN_HANDSHAKES,
            &en.labels,
            &[],
            f64::from(s.result.handshakes),
        );
    }
}

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// A family with at most one unlabelled-beyond-target sample per probed target.
fn per_target(
    e: &mut Encoder,
    f: &Family,
    probed: &[(&Probed, &ProbeOutcome)],
    value: impl Fn(&ProbeOutcome) -> Option<f64>,
) {
    e.family(f);
    for (en, o) in probed {
        if let Some(v) = value(o) {
            e.sample(f, &en.labels, &[], v);
        }
    }
}

fn negotiated(e: &mut Encoder, probed: &[(&Probed, &ProbeOutcome)]) {
    let with: Vec<_> = probed
        .iter()
        .filter_map(|(en, o)| o.negotiated.as_ref().map(|n| (*en, n)))
        .collect();
    e.family(&VERSION_INFO);
    for (en, n) in &with {
        e.sample(&VERSION_INFO, &en.labels, &[("version", n.version)], 1.0);
    }
    e.family(&CIPHER_INFO);
    for (en, n) in &with {
        e.sample(&CIPHER_INFO, &en.labels, &[("cipher", &n.cipher)], 1.0);
    }
    e.family(&KEY_EXCHANGE_INFO);
    for (en, n) in &with {
        if let Some(g) = &n.group {
            e.sample(&KEY_EXCHANGE_INFO, &en.labels, &[("group", g)], 1.0);
        }
    }
}

fn chains(e: &mut Encoder, with: &[(&Probed, &Chain)], now_s: f64) {
    e.family(&CHAIN_VALID);
    for (en, c) in with {
        e.sample(
            &CHAIN_VALID,
            &en.labels,
            &[],
            bool_value(c.problem.is_none()),
        );
    }
    e.family(&CHAIN_CERTIFICATES);
    for (en, c) in with {
        e.sample(&CHAIN_CERTIFICATES, &en.labels, &[], c.sent as f64);
    }
    e.family(&CHAIN_ORDER_VALID);
    for (en, c) in with {
        e.sample(
            &CHAIN_ORDER_VALID,
            &en.labels,
            &[],
            bool_value(c.order_valid),
        );
    }
    e.family(&CHAIN_INCOMPLETE);
    for (en, c) in with {
        e.sample(&CHAIN_INCOMPLETE, &en.labels, &[], bool_value(c.incomplete));
    }
    let mut depth_buf = itoa_cache();
    for family in [&CERT_NOT_AFTER, &CERT_NOT_BEFORE, &CERT_DAYS_TO_EXPIRY] {
        e.family(family);
        for (en, c) in with {
            for (depth, f) in &c.certs {
                let value = match family.name {
                    n if n == CERT_NOT_BEFORE.name => f.not_before as f64,
                    n if n == CERT_DAYS_TO_EXPIRY.name => (f.not_after as f64 - now_s) / 86_400.0,
                    _ => f.not_after as f64,
                };
                e.sample(
                    family,
                    &en.labels,
                    &[("depth", depth_label(&mut depth_buf, *depth))],
                    value,
                );
            }
        }
    }
    e.family(&CHAIN_EXPIRY);
    for (en, c) in with {
        if let (None, Some(t)) = (&c.problem, c.path_expiry) {
            e.sample(&CHAIN_EXPIRY, &en.labels, &[], t as f64);
        }
    }
    e.family(&CERT_INFO);
    for (en, c) in with {
        for (_, f) in &c.certs {
            e.sample_raw(&CERT_INFO, &en.labels, &f.info_labels, 1.0);
        }
    }
}

fn ocsp(e: &mut Encoder, probed: &[(&Probed, &ProbeOutcome)]) {
    per_target(e, &OCSP_STAPLED, probed, |o| {
        o.ocsp_checked.then_some(bool_value(o.ocsp.is_some()))
    });
    per_target(e, &OCSP_RESPONSE_VERIFIED, probed, |o| {
        o.ocsp.as_ref().map(|r| bool_value(r.is_ok()))
    });
    let verified: Vec<_> = probed
        .iter()
        .filter_map(|(p, o)| match &o.ocsp {
            Some(Ok(s)) => Some((*p, s)),
            _ => None,
        })
        .collect();
    e.family(&OCSP_CERT_STATUS_INFO);
    for (p, s) in &verified {
        e.sample(
            &OCSP_CERT_STATUS_INFO,
            &p.labels,
            &[("status", s.status.as_label())],
            1.0,
        );
    }
    e.family(&OCSP_THIS_UPDATE);
    for (p, s) in &verified {
        e.sample(&OCSP_THIS_UPDATE, &p.labels, &[], s.this_update as f64);
    }
    e.family(&OCSP_NEXT_UPDATE);
    for (p, s) in &verified {
        if let Some(t) = s.next_update {
            e.sample(&OCSP_NEXT_UPDATE, &p.labels, &[], t as f64);
        }
    }
    e.family(&OCSP_REVOCATION);
    for (p, s) in &verified {
        if let crate::tls::ocsp::CertStatus::Revoked { at } = s.status {
            e.sample(&OCSP_REVOCATION, &p.labels, &[], at as f64);
        }
    }
}

fn http(e: &mut Encoder, probed: &[(&Probed, &ProbeOutcome)]) {
    per_target(e, &HTTP_STATUS_CODE, probed, |o| {
        match (&o.http, &o.redirect) {
            (Some(Ok(f)), _) => Some(f64::from(f.status)),
            (Some(Err(_)), _) => Some(0.0),
            (None, Some(r)) => Some(f64::from(r.status)),
            (None, None) => None,
        }
    });
    let hsts = |o: &ProbeOutcome| match &o.http {
        Some(Ok(f)) => Some(f.hsts),
        _ => None,
    };
    per_target(e, &HSTS_MAX_AGE, probed, |o| {
        hsts(o).map(|h| h.map_or(0.0, |h| h.max_age as f64))
    });
    per_target(e, &HSTS_INCLUDE_SUBDOMAINS, probed, |o| {
        hsts(o).map(|h| bool_value(h.is_some_and(|h| h.include_subdomains)))
    });
    per_target(e, &HSTS_PRELOAD, probed, |o| {
        hsts(o).map(|h| bool_value(h.is_some_and(|h| h.preload)))
    });
    per_target(e, &HTTP_REDIRECT_TO_HTTPS, probed, |o| {
        o.redirect.as_ref().map(|r| bool_value(r.to_https))
    });
    per_target(e, &HTTP_REDIRECT_HOPS, probed, |o| {
        o.redirect.as_ref().map(|r| f64::from(r.hops))
    });
}

/// Depth labels without allocating per sample.
fn itoa_cache() -> Vec<String> {
    (0..16).map(|d| d.to_string()).collect()
}

fn depth_label(cache: &mut Vec<String>, depth: usize) -> &str {
    while cache.len() <= depth {
        cache.push(cache.len().to_string());
    }
    cache[depth].as_str()
}
