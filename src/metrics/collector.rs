//! Renders `/metrics` from a state snapshot: per-target families, then exporter self metrics.
//!
//! Pure function of the snapshot and the scrape time (`tls_cert_days_to_expiry` is derived from
//! not-after at scrape time, never stored). Families are written once each, grouping all targets.
//! Label text lives only here: each target's label set is rendered once per scrape (the label
//! cache), certificate strings are escaped as they are written.

use std::borrow::Cow;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::*;
use crate::config::ProbeKind;
use crate::probe::outcome::ProbeOutcome;
use crate::revocation::{Fact, Status};
use crate::state::{Entry, State};
use crate::tls::chain::Chain;
use crate::tls::ct::SctSource;
use crate::tls::ocsp::CertStatus;
use crate::verdict::FailureReason;

/// The whole exposition for one scrape.
pub fn render(state: &State, now: SystemTime) -> String {
    let entries = state.snapshot();
    let mut e = Encoder::with_capacity(1024 + entries.len() * 2048);
    targets(&mut e, &entries, now);
    cert_files::render(&mut e, &state.files(), &entries, now);
    exporter::render(&mut e, state, entries.len());
    e.out
}

/// The whole exposition, handed to `sink` in chunks as it is written (what `/metrics` serves).
pub fn render_to(state: &State, now: SystemTime, sink: Box<dyn FnMut(String) + Send>) {
    let entries = state.snapshot();
    let mut e = Encoder::streaming(sink);
    targets(&mut e, &entries, now);
    cert_files::render(&mut e, &state.files(), &entries, now);
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

/// A target with its label set (`target="…",team="…"`), escaped once per scrape. Its
/// settings are read from the target: the per-target families are a few passes, not worth a
/// copy per target in every scrape's peak.
struct Labeled<'a> {
    en: &'a Entry,
    labels: String,
}

/// One address's outcome with the label set its series carry: the target's, plus `ip="…"`
/// for `resolve: all` targets.
struct Row<'a> {
    labels: Cow<'a, str>,
    outcome: &'a ProbeOutcome,
    /// The chain its certificate series show (see `state::Probed::chain`).
    chain: Option<&'a Chain>,
    hot: Hot,
}

/// The outcome's values that families of every address read, copied once when the rows are
/// built. Each family is a pass over all rows; reading these from the row array, in order,
/// spares every pass a pointer chase into each outcome, a cache miss per row and family at
/// tens of thousands of targets, which was most of the render's time. Packed (`Secs` for an
/// optional number, integers as such): a scrape holds one per address, 96 bytes instead of 184.
struct Hot {
    duration: f64,
    /// `PHASES`, in order.
    phases: [Secs; 5],
    finished_at: Secs,
    /// HSTS max-age (zero without the header), when the HTTP request answered; its
    /// includeSubDomains and preload in `hsts_flags`.
    hsts_max_age: Secs,
    http_status: Option<u16>,
    /// The redirect's hops; whether it went to https in `redirect_to_https`.
    redirect_hops: Option<u32>,
    reason: Option<FailureReason>,
    /// The handshake's success, for TLS targets.
    handshake: Option<bool>,
    client_auth: Option<bool>,
    aia_valid: Option<bool>,
    ocsp_stapled: Option<bool>,
    /// The stapled response verified, when there was one.
    ocsp_verified: Option<bool>,
    hsts_flags: (bool, bool),
    redirect_to_https: bool,
    success: bool,
    negotiated: bool,
    revocation: bool,
    ct: bool,
}

/// An optional number in 8 bytes: NaN stands for absent (durations and times never are NaN).
#[derive(Clone, Copy)]
struct Secs(f64);

impl Secs {
    fn new(v: Option<f64>) -> Secs {
        Secs(v.unwrap_or(f64::NAN))
    }

    fn get(self) -> Option<f64> {
        (!self.0.is_nan()).then_some(self.0)
    }
}

/// The phase label of each of `Hot::phases`.
const PHASES: [&str; 5] = ["resolve", "connect", "proxy", "starttls", "handshake"];

impl Hot {
    fn of(o: &ProbeOutcome, tls: bool) -> Hot {
        let p = &o.phases;
        let secs = |d: Option<std::time::Duration>| Secs::new(d.map(|d| d.as_secs_f64()));
        let hsts = match o.http.as_deref() {
            Some(Ok(f)) => Some(f.hsts.map_or((0.0, false, false), |h| {
                (h.max_age as f64, h.include_subdomains, h.preload)
            })),
            _ => None,
        };
        Hot {
            success: o.success(),
            handshake: tls.then_some(o.handshake_ok),
            reason: o.reason(),
            duration: o.duration.as_secs_f64(),
            phases: [
                secs(p.resolve),
                secs(p.connect),
                secs(p.proxy),
                secs(p.starttls),
                secs(p.handshake),
            ],
            finished_at: Secs::new(
                o.finished_at
                    .duration_since(UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs_f64()),
            ),
            // Known once the handshake got as far as the server's CertificateRequest.
            client_auth: (o.handshake_ok || o.client_auth_requested)
                .then_some(o.client_auth_requested),
            aia_valid: o.aia.as_ref().map(|a| a.valid),
            ocsp_stapled: o.ocsp_checked.then_some(o.ocsp.is_some()),
            ocsp_verified: o.ocsp.as_ref().map(Result::is_ok),
            http_status: match (o.http.as_deref(), o.redirect.as_deref()) {
                (Some(Ok(f)), _) => Some(f.status),
                (Some(Err(_)), _) => Some(0),
                (None, Some(redirect)) => Some(redirect.status),
                (None, None) => None,
            },
            hsts_max_age: Secs::new(hsts.map(|h| h.0)),
            hsts_flags: hsts.map_or((false, false), |h| (h.1, h.2)),
            redirect_hops: o.redirect.as_ref().map(|d| d.hops),
            redirect_to_https: o.redirect.as_ref().is_some_and(|d| d.to_https),
            negotiated: o.negotiated.is_some(),
            revocation: !o.revocation.is_empty(),
            ct: o.ct.is_some(),
        }
    }
}

/// `target="name",label="value"` with text-format escaping.
pub(super) fn label_set(en: &Entry) -> String {
    let t = &en.target;
    let mut s = String::with_capacity(16 + t.name.len());
    let _ = write!(s, "target=\"{}\"", escape_label(&t.name));
    for (k, v) in &t.labels {
        let _ = write!(s, ",{k}=\"{}\"", escape_label(v));
    }
    s
}

pub(super) fn with_ip<'a>(labels: &'a str, ip: Option<std::net::IpAddr>) -> Cow<'a, str> {
    match ip {
        None => Cow::Borrowed(labels),
        Some(ip) => Cow::Owned(format!("{labels},ip=\"{ip}\"")),
    }
}

fn targets(e: &mut Encoder, entries: &[Arc<Entry>], now: SystemTime) {
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let labeled: Vec<Labeled> = entries
        .iter()
        .map(|en| Labeled {
            en,
            labels: label_set(en),
        })
        .collect();
    // Sized exactly: grown by doubling, the array and its last copy would both be in the
    // scrape's peak.
    let mut rows: Vec<Row> = Vec::with_capacity(labeled.iter().map(|l| l.en.latest.len()).sum());
    rows.extend(labeled.iter().flat_map(|l| {
        let tls = l.en.target.kind == ProbeKind::Tls;
        l.en.latest.iter().map(move |p| Row {
            labels: with_ip(&l.labels, p.ip),
            outcome: &p.outcome,
            chain: p.chain.as_deref(),
            hot: Hot::of(&p.outcome, tls),
        })
    }));

    per_row(e, &PROBE_SUCCESS, &rows, |r| {
        Some(bool_value(r.hot.success))
    });
    per_row(e, &HANDSHAKE_SUCCESS, &rows, |r| {
        r.hot.handshake.map(bool_value)
    });
    e.family(&PROBE_FAILURE_INFO);
    for r in &rows {
        if let Some(reason) = r.hot.reason {
            e.sample(
                &PROBE_FAILURE_INFO,
                &r.labels,
                &[("reason", reason.as_label())],
                1.0,
            );
        }
    }
    per_row(e, &PROBE_DURATION, &rows, |r| Some(r.hot.duration));
    e.family(&PROBE_PHASE_DURATION);
    for r in &rows {
        for (phase, d) in PHASES.iter().zip(r.hot.phases) {
            if let Some(d) = d.get() {
                e.sample(&PROBE_PHASE_DURATION, &r.labels, &[("phase", phase)], d);
            }
        }
    }
    per_row(e, &PROBE_TIMESTAMP, &rows, |r| r.hot.finished_at.get());
    per_target(e, &PROBE_INTERVAL, &labeled, |l| {
        Some(l.en.target.interval.as_secs_f64())
    });
    per_target(e, &CLIENT_CERT_NOT_AFTER, &labeled, |l| {
        l.en.target.material.client_cert_not_after.map(|t| t as f64)
    });
    per_target(e, &CLIENT_CERT_DAYS_TO_EXPIRY, &labeled, |l| {
        l.en.target
            .material
            .client_cert_not_after
            .map(|t| (t as f64 - now_s) / 86_400.0)
    });
    per_target(e, &PROBES_TOTAL, &labeled, |l| {
        Some(l.en.probes_total as f64)
    });
    e.family(&PROBE_FAILURES_TOTAL);
    for l in &labeled {
        // Only the reasons seen (never 0), in `FailureReason::ALL` order.
        for (reason, n) in l.en.failures_total.iter() {
            e.sample(
                &PROBE_FAILURES_TOTAL,
                &l.labels,
                &[("reason", reason.as_label())],
                n as f64,
            );
        }
    }

    negotiated(e, &rows);
    per_row(e, &CLIENT_AUTH_REQUESTED, &rows, |r| {
        r.hot.client_auth.map(bool_value)
    });
    chains(e, &rows, now_s);
    ocsp(e, &rows);
    revocation(e, &rows);
    transparency(e, &rows);
    http(e, &rows);
    scans(e, &labeled);
}

/// A family with at most one sample per target, labelled with the target's labels only.
fn per_target(
    e: &mut Encoder,
    f: &Family,
    labeled: &[Labeled],
    value: impl Fn(&Labeled) -> Option<f64>,
) {
    e.family(f);
    for l in labeled {
        if let Some(v) = value(l) {
            e.sample(f, &l.labels, &[], v);
        }
    }
}

/// A family with at most one sample per probed address.
fn per_row(e: &mut Encoder, f: &Family, rows: &[Row], value: impl Fn(&Row) -> Option<f64>) {
    e.family(f);
    for r in rows {
        if let Some(v) = value(r) {
            e.sample(f, &r.labels, &[], v);
        }
    }
}

fn scans(e: &mut Encoder, labeled: &[Labeled]) {
    per_target(e, &SCAN_INTERVAL, labeled, |l| {
        l.en.target.scan_interval.map(|d| d.as_secs_f64())
    });
    let mut with = Vec::with_capacity(labeled.iter().map(|l| l.en.scans.len()).sum());
    with.extend(
        labeled
            .iter()
            .flat_map(|l| l.en.scans.iter().map(|s| (with_ip(&l.labels, s.ip), s))),
    );
    e.family(&PROTOCOL_ACCEPTED);
    for (labels, s) in &with {
        for (v, accepted) in s.protocols() {
            e.sample(
                &PROTOCOL_ACCEPTED,
                labels,
                &[("version", v.as_label())],
                bool_value(accepted),
            );
        }
    }
    e.family(&WEAK_CIPHER_ACCEPTED);
    for (labels, s) in &with {
        for (c, accepted) in s.weak() {
            e.sample(
                &WEAK_CIPHER_ACCEPTED,
                labels,
                &[("class", c.as_label())],
                bool_value(accepted),
            );
        }
    }
    e.family(&SCAN_TIMESTAMP);
    for (labels, s) in &with {
        let t = s
            .finished_at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        e.sample(&SCAN_TIMESTAMP, labels, &[], t);
    }
    e.family(&SCAN_DURATION);
    for (labels, s) in &with {
        e.sample(&SCAN_DURATION, labels, &[], s.duration.as_secs_f64());
    }
    e.family(&SCAN_HANDSHAKES);
    for (labels, s) in &with {
        e.sample(&SCAN_HANDSHAKES, labels, &[], f64::from(s.handshakes));
    }
}

pub(super) fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn negotiated(e: &mut Encoder, rows: &[Row]) {
    let mut with = Vec::with_capacity(rows.len());
    with.extend(
        rows.iter()
            .filter(|r| r.hot.negotiated)
            .filter_map(|r| r.outcome.negotiated.as_ref().map(|n| (r, n))),
    );
    e.family(&VERSION_INFO);
    for (r, n) in &with {
        e.sample(&VERSION_INFO, &r.labels, &[("version", n.version)], 1.0);
    }
    e.family(&CIPHER_INFO);
    for (r, n) in &with {
        e.sample(&CIPHER_INFO, &r.labels, &[("cipher", &n.cipher)], 1.0);
    }
    e.family(&KEY_EXCHANGE_INFO);
    for (r, n) in &with {
        if let Some(g) = &n.group {
            e.sample(&KEY_EXCHANGE_INFO, &r.labels, &[("group", g)], 1.0);
        }
    }
}

fn chains(e: &mut Encoder, rows: &[Row], now_s: f64) {
    let mut with: Vec<(&Row, &Chain)> = Vec::with_capacity(rows.len());
    with.extend(rows.iter().filter_map(|r| r.chain.map(|c| (r, c))));
    e.family(&CHAIN_VALID);
    for (r, c) in &with {
        e.sample(
            &CHAIN_VALID,
            &r.labels,
            &[],
            bool_value(c.problem.is_none()),
        );
    }
    per_row(e, &CHAIN_VALID_WITH_AIA, rows, |r| {
        r.hot.aia_valid.map(bool_value)
    });
    e.family(&CHAIN_CERTIFICATES);
    for (r, c) in &with {
        e.sample(&CHAIN_CERTIFICATES, &r.labels, &[], c.sent as f64);
    }
    e.family(&CHAIN_ORDER_VALID);
    for (r, c) in &with {
        e.sample(
            &CHAIN_ORDER_VALID,
            &r.labels,
            &[],
            bool_value(c.order_valid),
        );
    }
    e.family(&CHAIN_INCOMPLETE);
    for (r, c) in &with {
        e.sample(&CHAIN_INCOMPLETE, &r.labels, &[], bool_value(c.incomplete));
    }
    let mut depth_buf = itoa_cache();
    for family in [&CERT_NOT_AFTER, &CERT_NOT_BEFORE, &CERT_DAYS_TO_EXPIRY] {
        e.family(family);
        for (r, c) in &with {
            for (depth, f) in &c.certs {
                let value = match family.name {
                    n if n == CERT_NOT_BEFORE.name => f.not_before as f64,
                    n if n == CERT_DAYS_TO_EXPIRY.name => (f.not_after as f64 - now_s) / 86_400.0,
                    _ => f.not_after as f64,
                };
                e.sample(
                    family,
                    &r.labels,
                    &[("depth", depth_label(&mut depth_buf, *depth))],
                    value,
                );
            }
        }
    }
    e.family(&CHAIN_EXPIRY);
    for (r, c) in &with {
        if let (None, Some(t)) = (&c.problem, c.path_expiry) {
            e.sample(&CHAIN_EXPIRY, &r.labels, &[], t as f64);
        }
    }
    e.family(&CERT_INFO);
    for (r, c) in &with {
        for (depth, f) in &c.certs {
            e.sample(
                &CERT_INFO,
                &r.labels,
                &[
                    ("depth", depth_label(&mut depth_buf, *depth)),
                    ("cn", &f.cn),
                    ("subject", &f.subject),
                    ("issuer", &f.issuer),
                    ("serial", &f.serial),
                    ("fingerprint_sha256", &f.fingerprint_sha256),
                    ("dns_names", &f.dns_names),
                    ("key", &f.key),
                    ("signature_algorithm", &f.signature_algorithm),
                ],
                1.0,
            );
        }
    }
}

fn ocsp(e: &mut Encoder, rows: &[Row]) {
    per_row(e, &OCSP_STAPLED, rows, |r| {
        r.hot.ocsp_stapled.map(bool_value)
    });
    per_row(e, &OCSP_RESPONSE_VERIFIED, rows, |r| {
        r.hot.ocsp_verified.map(bool_value)
    });
    let verified: Vec<_> = rows
        .iter()
        .filter(|r| r.hot.ocsp_verified == Some(true))
        .filter_map(|r| match &r.outcome.ocsp {
            Some(Ok(s)) => Some((r, s)),
            _ => None,
        })
        .collect();
    e.family(&OCSP_CERT_STATUS_INFO);
    for (r, s) in &verified {
        e.sample(
            &OCSP_CERT_STATUS_INFO,
            &r.labels,
            &[("status", s.status.as_label())],
            1.0,
        );
    }
    e.family(&OCSP_THIS_UPDATE);
    for (r, s) in &verified {
        e.sample(&OCSP_THIS_UPDATE, &r.labels, &[], s.this_update as f64);
    }
    e.family(&OCSP_NEXT_UPDATE);
    for (r, s) in &verified {
        if let Some(t) = s.next_update {
            e.sample(&OCSP_NEXT_UPDATE, &r.labels, &[], t as f64);
        }
    }
    e.family(&OCSP_REVOCATION);
    for (r, s) in &verified {
        if let CertStatus::Revoked { at } = s.status {
            e.sample(&OCSP_REVOCATION, &r.labels, &[], at as f64);
        }
    }
}

/// The revocation facts of each row, by depth and method (`revocation:` targets).
fn revocation(e: &mut Encoder, rows: &[Row]) {
    let mut depth_buf = itoa_cache();
    let facts: Vec<_> = rows
        .iter()
        .filter(|r| r.hot.revocation)
        .flat_map(|r| r.outcome.revocation.iter().map(move |f| (r, f)))
        .collect();
    let mut write = |e: &mut Encoder, family: &Family, value: &dyn Fn(&Fact) -> Option<f64>| {
        e.family(family);
        for (r, f) in &facts {
            let Some(v) = value(f) else { continue };
            let depth = depth_label(&mut depth_buf, f.depth);
            // No allocation per sample: the label set is an array, `status` only on `_info`.
            let extra = [
                ("depth", depth),
                ("method", f.method.as_label()),
                ("status", f.status.as_label()),
            ];
            let with_status = family.name == REVOCATION_STATUS_INFO.name;
            let labels = if with_status { &extra[..] } else { &extra[..2] };
            e.sample(family, &r.labels, labels, v);
        }
    };
    write(e, &REVOCATION_STATUS_INFO, &|_| Some(1.0));
    write(e, &REVOCATION_CHECKED, &|f| Some(f.checked_at as f64));
    write(e, &REVOCATION_NEXT_UPDATE, &|f| {
        f.next_update.map(|t| t as f64)
    });
    write(e, &REVOCATION_REVOKED, &|f| match f.status {
        Status::Revoked { at } => Some(at as f64),
        _ => None,
    });
}

/// The leaf's SCTs: counts per source the probe had, the verified count with a log list, and
/// one `_info` series per distinct SCT (duplicates in a list would repeat a label set).
fn transparency(e: &mut Encoder, rows: &[Row]) {
    let with: Vec<_> = rows
        .iter()
        .filter(|r| r.hot.ct)
        .filter_map(|r| r.outcome.ct.as_ref().map(|c| (r, c)))
        .collect();
    e.family(&CERT_SCTS);
    for (r, c) in &with {
        for source in SctSource::ALL.iter().filter(|s| c.sources.contains(s)) {
            e.sample(
                &CERT_SCTS,
                &r.labels,
                &[("depth", "0"), ("source", source.as_label())],
                c.count(*source) as f64,
            );
        }
    }
    e.family(&CERT_SCTS_VERIFIED);
    for (r, c) in with.iter().filter(|(_, c)| c.checked) {
        e.sample(
            &CERT_SCTS_VERIFIED,
            &r.labels,
            &[("depth", "0")],
            c.verified() as f64,
        );
    }
    e.family(&CERT_SCT_INFO);
    for (r, c) in &with {
        let mut seen = std::collections::HashSet::new();
        for s in &c.scts {
            if !seen.insert((s.source, &s.log_id, s.status)) {
                continue;
            }
            e.sample(
                &CERT_SCT_INFO,
                &r.labels,
                &[
                    ("depth", "0"),
                    ("source", s.source.as_label()),
                    ("log_id", &s.log_id),
                    ("operator", &s.operator),
                    ("log", &s.log),
                    ("status", s.status.as_label()),
                ],
                1.0,
            );
        }
    }
}

fn http(e: &mut Encoder, rows: &[Row]) {
    per_row(e, &HTTP_STATUS_CODE, rows, |r| {
        r.hot.http_status.map(f64::from)
    });
    per_row(e, &HSTS_MAX_AGE, rows, |r| r.hot.hsts_max_age.get());
    per_row(e, &HSTS_INCLUDE_SUBDOMAINS, rows, |r| {
        r.hot
            .hsts_max_age
            .get()
            .map(|_| bool_value(r.hot.hsts_flags.0))
    });
    per_row(e, &HSTS_PRELOAD, rows, |r| {
        r.hot
            .hsts_max_age
            .get()
            .map(|_| bool_value(r.hot.hsts_flags.1))
    });
    per_row(e, &HTTP_REDIRECT_TO_HTTPS, rows, |r| {
        r.hot
            .redirect_hops
            .map(|_| bool_value(r.hot.redirect_to_https))
    });
    per_row(e, &HTTP_REDIRECT_HOPS, rows, |r| {
        r.hot.redirect_hops.map(f64::from)
    });
}

/// Depth labels without allocating per sample.
pub(super) fn itoa_cache() -> Vec<String> {
    (0..16).map(|d| d.to_string()).collect()
}

pub(super) fn depth_label(cache: &mut Vec<String>, depth: usize) -> &str {
    while cache.len() <= depth {
        cache.push(cache.len().to_string());
    }
    cache.get(depth).map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::config::Target;
    use crate::probe::outcome::{AddressOutcome, Negotiated, Phases};
    use crate::probe::Check;
    use crate::tls::cert::CertFacts;
    use crate::verdict::{Failure, FailureReason};

    fn target(yaml_target: &str) -> Arc<Target> {
        let yaml = format!("targets:\n  - {yaml_target}\n");
        let config = crate::config::parse(&yaml, std::path::Path::new("t.yml"))
            .unwrap_or_else(|e| panic!("test config: {e}"));
        config.targets.first().cloned().expect("one target")
    }

    fn facts(cn: &str, not_after: i64) -> CertFacts {
        CertFacts {
            not_before: 1_000,
            not_after,
            cn: cn.to_string(),
            subject: format!("CN={cn}"),
            issuer: "CN=Test \"Root\"".to_string(),
            serial: "01".to_string(),
            fingerprint_sha256: "ab".to_string(),
            spki_sha256: String::new(),
            dns_names: cn.to_string(),
            emails: Vec::new(),
            key: "ECDSA P-256".to_string(),
            rsa_bits: None,
            signature_algorithm: "ecdsa-with-SHA256".to_string(),
            weak_signature: false,
            self_issued: false,
            subject_der: Vec::new(),
            issuer_der: Vec::new(),
        }
    }

    fn healthy(not_after: i64) -> ProbeOutcome {
        let mut o = ProbeOutcome::new(Phases::default(), Duration::from_millis(250));
        o.handshake_ok = true;
        o.finished_at = UNIX_EPOCH + Duration::from_secs(5_000);
        o.negotiated = Some(Negotiated {
            version: "TLS 1.3",
            cipher: "TLS_AES_128_GCM_SHA256".into(),
            group: Some("X25519".into()),
        });
        o.chain = Some(Arc::new(Chain {
            certs: vec![(0, Arc::new(facts("api\nx", not_after)))],
            sent: 1,
            problem: None,
            path_expiry: Some(not_after),
            path: Vec::new(),
            order_valid: true,
            incomplete: false,
        }));
        o
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn render_rows_stay_small() {
        // A scrape holds one row per address: at 50,000 targets every byte here is 50 KB of
        // the scrape's peak. Before `Hot` was packed: 184 bytes, a row 224.
        assert!(std::mem::size_of::<Hot>() <= 96);
        assert!(std::mem::size_of::<Row>() <= 136);
    }

    #[test]
    fn revocation_facts_render_per_depth_and_method() {
        use crate::revocation::Method;
        let t = target("{name: api, address: \"127.0.0.1:1\", revocation: all}");
        let state = State::default();
        state.set_targets(std::slice::from_ref(&t));
        let mut o = healthy(90_000);
        let fact = |depth, method, status, next_update| Fact {
            depth,
            method,
            url: "http://ca.example/".to_string(),
            status,
            checked_at: 4_000,
            next_update,
        };
        o.failure = Some(Failure::new(FailureReason::Revoked, "revoked"));
        o.revocation = vec![
            fact(0, Method::Ocsp, Status::Revoked { at: 3_000 }, Some(7_000)),
            fact(0, Method::Crl, Status::Error("down".to_string()), None),
            fact(1, Method::Crl, Status::Good, Some(8_000)),
        ];
        let outcome = Arc::new(o);
        state.record(&t, Check::Probe, vec![AddressOutcome { ip: None, outcome }]);
        let text = render_targets(&state, UNIX_EPOCH + Duration::from_secs(5_000));
        let got = lines(&text);
        let l = "target=\"api\"";
        let want = [
            format!("tls_probe_success{{{l}}} 0"),
            format!("tls_probe_failure_info{{{l},reason=\"revoked\"}} 1"),
            format!("tls_revocation_status_info{{{l},depth=\"0\",method=\"ocsp\",status=\"revoked\"}} 1"),
            format!("tls_revocation_status_info{{{l},depth=\"0\",method=\"crl\",status=\"error\"}} 1"),
            format!("tls_revocation_status_info{{{l},depth=\"1\",method=\"crl\",status=\"good\"}} 1"),
            format!("tls_revocation_checked_timestamp_seconds{{{l},depth=\"0\",method=\"ocsp\"}} 4000"),
            format!("tls_revocation_checked_timestamp_seconds{{{l},depth=\"1\",method=\"crl\"}} 4000"),
            format!("tls_revocation_next_update_timestamp_seconds{{{l},depth=\"0\",method=\"ocsp\"}} 7000"),
            format!("tls_revocation_next_update_timestamp_seconds{{{l},depth=\"1\",method=\"crl\"}} 8000"),
            format!("tls_revocation_revoked_timestamp_seconds{{{l},depth=\"0\",method=\"ocsp\"}} 3000"),
        ];
        for w in &want {
            assert!(got.contains(&w.as_str()), "missing {w} in\n{text}");
        }
        let absent = [
            "tls_revocation_next_update_timestamp_seconds{target=\"api\",depth=\"0\",method=\"crl\"}",
            "tls_revocation_revoked_timestamp_seconds{target=\"api\",depth=\"1\"",
        ];
        for a in absent {
            assert!(!text.contains(a), "unexpected {a} in\n{text}");
        }
    }

    #[test]
    fn healthy_probe_renders_exact_series_with_escaped_labels() {
        let t = target("{name: api, address: \"127.0.0.1:1\", labels: {team: \"core\\\"s\"}}");
        let state = State::default();
        state.set_targets(std::slice::from_ref(&t));
        let outcome = Arc::new(healthy(90_000));
        state.record(&t, Check::Probe, vec![AddressOutcome { ip: None, outcome }]);
        let text = render_targets(&state, UNIX_EPOCH + Duration::from_secs(3_600));
        let got = lines(&text);
        let l = "target=\"api\",team=\"core\\\"s\"";
        for want in [
            format!("tls_probe_success{{{l}}} 1"),
            format!("tls_handshake_success{{{l}}} 1"),
            format!("tls_probe_duration_seconds{{{l}}} 0.25"),
            format!("tls_probe_timestamp_seconds{{{l}}} 5000"),
            format!("tls_probes_total{{{l}}} 1"),
            format!("tls_version_info{{{l},version=\"TLS 1.3\"}} 1"),
            format!("tls_chain_valid{{{l}}} 1"),
            format!("tls_chain_expiry_timestamp_seconds{{{l}}} 90000"),
            format!("tls_cert_not_after_timestamp_seconds{{{l},depth=\"0\"}} 90000"),
            format!("tls_cert_days_to_expiry{{{l},depth=\"0\"}} 1"),
            format!(
                "tls_cert_info{{{l},depth=\"0\",cn=\"api\\nx\",subject=\"CN=api\\nx\",issuer=\"CN=Test \\\"Root\\\"\",serial=\"01\",fingerprint_sha256=\"ab\",dns_names=\"api\\nx\",key=\"ECDSA P-256\",signature_algorithm=\"ecdsa-with-SHA256\"}} 1"
            ),
        ] {
            assert!(got.contains(&want.as_str()), "missing {want} in:\n{text}");
        }
        assert!(!text.contains("tls_probe_failure_info{"), "{text}");
    }

    #[test]
    fn sct_counts_per_source_verified_count_only_with_a_log_list_and_one_info_per_sct() {
        use crate::tls::ct::{CtFacts, SctFacts, SctStatus};
        let t = target("{name: api, address: \"127.0.0.1:1\"}");
        let state = State::default();
        state.set_targets(std::slice::from_ref(&t));
        let sct = |status, operator: &str| SctFacts {
            source: SctSource::X509,
            log_id: format!("id-{}", SctStatus::as_label(status)),
            operator: operator.to_string(),
            log: if operator.is_empty() {
                String::new()
            } else {
                "Log \"A\"".to_string()
            },
            timestamp_ms: 1,
            status,
            detail: None,
        };
        let mut o = healthy(90_000);
        o.ct = Some(CtFacts {
            scts: vec![
                sct(SctStatus::Verified, "Op"),
                sct(SctStatus::Verified, "Op"),
                sct(SctStatus::UnknownLog, ""),
            ],
            sources: vec![SctSource::X509, SctSource::Ocsp],
            checked: true,
            problems: Vec::new(),
        });
        state.record(
            &t,
            Check::Probe,
            vec![AddressOutcome {
                ip: None,
                outcome: Arc::new(o),
            }],
        );
        let text = render_targets(&state, UNIX_EPOCH + Duration::from_secs(3_600));
        let got: Vec<&str> = lines(&text)
            .into_iter()
            .filter(|l| l.starts_with("tls_cert_sct"))
            .collect();
        assert_eq!(
            got,
            vec![
                "tls_cert_scts{target=\"api\",depth=\"0\",source=\"x509\"} 3",
                "tls_cert_scts{target=\"api\",depth=\"0\",source=\"ocsp\"} 0",
                "tls_cert_scts_verified{target=\"api\",depth=\"0\"} 2",
                "tls_cert_sct_info{target=\"api\",depth=\"0\",source=\"x509\",log_id=\"id-verified\",operator=\"Op\",log=\"Log \\\"A\\\"\",status=\"verified\"} 1",
                "tls_cert_sct_info{target=\"api\",depth=\"0\",source=\"x509\",log_id=\"id-unknown_log\",operator=\"\",log=\"\",status=\"unknown_log\"} 1",
            ],
            "{text}"
        );
        let mut o = healthy(90_000);
        o.ct = Some(CtFacts {
            sources: vec![SctSource::X509],
            ..CtFacts::default()
        });
        state.record(
            &t,
            Check::Probe,
            vec![AddressOutcome {
                ip: None,
                outcome: Arc::new(o),
            }],
        );
        let text = render_targets(&state, UNIX_EPOCH + Duration::from_secs(3_600));
        assert!(
            text.contains("tls_cert_scts{target=\"api\",depth=\"0\",source=\"x509\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("tls_cert_scts_verified{"), "{text}");
    }

    #[test]
    fn failed_probe_has_reason_and_no_chain_series() {
        let t = target("{name: down, address: \"127.0.0.1:1\"}");
        let state = State::default();
        state.set_targets(std::slice::from_ref(&t));
        let failure = Failure::new(FailureReason::ConnectionRefused, "connection refused");
        let outcome = Arc::new(ProbeOutcome::failed(
            failure,
            Phases::default(),
            Duration::ZERO,
        ));
        state.record(&t, Check::Probe, vec![AddressOutcome { ip: None, outcome }]);
        let text = render_targets(&state, UNIX_EPOCH);
        let got = lines(&text);
        for want in [
            "tls_probe_success{target=\"down\"} 0",
            "tls_probe_failure_info{target=\"down\",reason=\"connection_refused\"} 1",
            "tls_probe_failures_total{target=\"down\",reason=\"connection_refused\"} 1",
            "tls_handshake_success{target=\"down\"} 0",
        ] {
            assert!(got.contains(&want), "missing {want} in:\n{text}");
        }
        for absent in ["tls_chain_valid{", "tls_cert_info{", "tls_version_info{"] {
            assert!(!text.contains(absent), "unexpected {absent} in:\n{text}");
        }
    }

    #[test]
    fn resolve_all_rows_carry_an_ip_label_and_removed_targets_vanish() {
        let t = target("{name: multi, address: \"localhost:1\", resolve: all}");
        let state = State::default();
        state.set_targets(std::slice::from_ref(&t));
        let ip = |s: &str| s.parse().ok();
        state.record(
            &t,
            Check::Probe,
            vec![
                AddressOutcome {
                    ip: ip("127.0.0.2"),
                    outcome: Arc::new(healthy(90_000)),
                },
                AddressOutcome {
                    ip: ip("::1"),
                    outcome: Arc::new(healthy(90_000)),
                },
            ],
        );
        let text = render_targets(&state, UNIX_EPOCH);
        let got = lines(&text);
        assert!(
            got.contains(&"tls_probe_success{target=\"multi\",ip=\"127.0.0.2\"} 1"),
            "{text}"
        );
        assert!(
            got.contains(&"tls_probe_success{target=\"multi\",ip=\"::1\"} 1"),
            "{text}"
        );
        assert!(
            got.contains(&"tls_probes_total{target=\"multi\"} 2"),
            "{text}"
        );
        state.set_targets(&[]);
        let text = render_targets(&state, UNIX_EPOCH);
        assert!(!text.contains("target=\"multi\""), "{text}");
    }
}
