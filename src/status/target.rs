//! The per-target page `/target/NAME`: the target's settings and counters, then per address its
//! latest probe (negotiated parameters, OCSP, HTTP and redirect results), the whole chain shown
//! (every certificate's subject, issuer, SANs, validity, key, signature and fingerprint), the
//! legacy scan, and the target's recent probe history.
//!
//! Reads the facts of one state entry; escaping and the frame are `html`'s, the fleet table is
//! `fleet`'s.

use std::fmt::Write;

use super::dates::{self, Rfc3339};
use super::expiry::{Expiry, Urgency};
use super::html::{self, Esc, Scripts};
use crate::config::{IpProtocol, ProbeKind};
use crate::probe::outcome::ProbeOutcome;
use crate::revocation::{Fact, Status};
use crate::state::{Entry, Probed};
use crate::tls::chain::Chain;
use crate::tls::ocsp::CertStatus;
use crate::verdict::FailureReason;

/// Seconds between refreshes of the page's live part.
const REFRESH_SECS: u32 = 30;

/// The page of one target's entry, at `now` (unix seconds).
pub(crate) fn render(en: &Entry, now: i64, debug: bool) -> String {
    let t = &en.target;
    let scripts = Scripts {
        refresh_secs: REFRESH_SECS,
        debug,
    };
    let mut out = String::with_capacity(16 * 1024);
    html::open(&mut out, &t.name, scripts);
    let _ = writeln!(
        out,
        "<div id=\"live\"><h1 class=\"title\">{}</h1>",
        Esc(&t.name)
    );
    settings(&mut out, en, now);
    if en.latest.is_empty() {
        out.push_str(
            "<section><h2>Latest probe</h2><p class=\"muted\">Not probed yet.</p></section>\n",
        );
    }
    for p in &en.latest {
        latest(&mut out, p, now);
    }
    scans(&mut out, en, now);
    history(&mut out, en, now);
    let _ = writeln!(
        out,
        "<p class=\"note\">Updated <time datetime=\"{t}\">{t}</time>; refreshes every {REFRESH_SECS} s.</p></div>",
        t = Rfc3339(now)
    );
    html::close(&mut out, scripts);
    out
}

/// The page for a name that is not a configured target.
pub(crate) fn not_found(name: &str) -> String {
    let scripts = Scripts {
        refresh_secs: 0,
        debug: false,
    };
    let mut out = String::new();
    html::open(&mut out, "unknown target", scripts);
    let _ = write!(
        out,
        "<section><h2>No such target</h2><p>No target named <span class=\"mono\">{}</span> is \
         configured. <a href=\"/\">All targets</a>.</p></section>",
        Esc(name)
    );
    html::close(&mut out, scripts);
    out
}

/// Opens a `<dl class="facts">`; `fact` adds one term with its (already escaped) value.
fn facts_open(out: &mut String) {
    out.push_str("<dl class=\"facts\">");
}

fn fact(out: &mut String, term: &str, value: impl std::fmt::Display) {
    let _ = write!(out, "<dt>{term}</dt><dd>{value}</dd>");
}

fn settings(out: &mut String, en: &Entry, now: i64) {
    let t = &en.target;
    out.push_str("<section><h2>Settings</h2>");
    facts_open(out);
    fact(out, "address", Esc(&t.address));
    fact(out, "server name", Esc(&t.server_name.to_str()));
    let kind = match (t.kind, t.starttls) {
        (ProbeKind::HttpRedirect, _) => "plain-HTTP redirect check".to_string(),
        (ProbeKind::Tls, Some(s)) => format!("TLS handshake after {} STARTTLS", s.as_str()),
        (ProbeKind::Tls, None) => "TLS handshake".to_string(),
    };
    fact(out, "probe", kind);
    if let Some(h) = &t.http {
        fact(
            out,
            "HTTP request",
            format!("GET {} (Host: {})", Esc(&h.path), Esc(&h.host)),
        );
    }
    fact(
        out,
        "interval, timeout",
        format!(
            "{}, {}",
            crate::config::format_duration(t.interval),
            crate::config::format_duration(t.timeout)
        ),
    );
    let family = match t.ip_protocol {
        IpProtocol::Any => "resolver order",
        IpProtocol::Ip4 => "IPv4 first",
        IpProtocol::Ip6 => "IPv6 first",
    };
    let addresses = if t.resolve_all {
        "every address the name resolves to"
    } else {
        "the first address that connects"
    };
    fact(out, "addresses", format!("{addresses} ({family})"));
    if let Some(p) = &t.proxy {
        // The redacted URL: the password is never shown.
        fact(out, "proxy", Esc(&p.to_string()));
    }
    fact(
        out,
        "legacy scan",
        t.scan_interval.map_or("off".to_string(), |i| {
            format!("every {}", crate::config::format_duration(i))
        }),
    );
    if let Some(na) = t.material.client_cert_not_after {
        fact(
            out,
            "client certificate expires",
            format!("{} ({})", Rfc3339(na), dates::left(na, now)),
        );
    }
    let mut labels = String::new();
    for (k, v) in &t.labels {
        let _ = write!(labels, "<span class=\"mono\">{}={}</span> ", Esc(k), Esc(v));
    }
    fact(
        out,
        "labels",
        if labels.is_empty() {
            "none".into()
        } else {
            labels
        },
    );
    let mut failures = String::new();
    for (r, n) in en.failures_total.iter() {
        let _ = write!(failures, "{} {n}, ", r.as_label());
    }
    let failures = failures.trim_end_matches(", ");
    fact(
        out,
        "probes since start",
        format!(
            "{}; failures: {}",
            en.probes_total,
            if failures.is_empty() {
                "none"
            } else {
                failures
            }
        ),
    );
    out.push_str("</dl></section>\n");
}

/// One address's latest probe and the chain its series show.
fn latest(out: &mut String, p: &Probed, now: i64) {
    let o = &*p.outcome;
    match p.ip {
        Some(ip) => {
            let _ = write!(out, "<section><h2>Latest probe of {ip}</h2>");
        }
        None => out.push_str("<section><h2>Latest probe</h2>"),
    }
    facts_open(out);
    match &o.failure {
        None => fact(out, "result", "<span class=\"ok\">ok</span>"),
        Some(f) => {
            fact(
                out,
                "result",
                format!("<b class=\"failing\">failing</b>: {}", f.reason.as_label()),
            );
            fact(out, "detail", Esc(&f.detail));
        }
    }
    let at = dates::unix(o.finished_at);
    fact(
        out,
        "finished",
        format!("{} ({})", Rfc3339(at), dates::ago(at, now)),
    );
    fact(out, "duration", phases(o));
    if let Some(n) = &o.negotiated {
        let group = n
            .group
            .as_deref()
            .map_or(String::new(), |g| format!(", {}", Esc(g)));
        fact(
            out,
            "negotiated",
            format!("{}, {}{group}", n.version, Esc(&n.cipher)),
        );
    } else if !o.handshake_ok {
        fact(
            out,
            "negotiated",
            "<span class=\"muted\">no TLS session</span>",
        );
    }
    if o.handshake_ok || o.client_auth_requested {
        fact(
            out,
            "client certificate",
            if o.client_auth_requested {
                "requested by the server"
            } else {
                "not requested"
            },
        );
    }
    if o.ocsp_checked || o.ocsp.is_some() {
        fact(out, "OCSP staple", ocsp(o, now));
    }
    for f in &o.revocation {
        fact(out, "revocation", revocation(f, now));
    }
    match o.http.as_deref() {
        Some(Ok(h)) => {
            fact(out, "HTTP status", h.status);
            let hsts = match (&h.hsts, &h.hsts_header) {
                (Some(v), _) => format!(
                    "max-age {} ({}){}{}",
                    v.max_age,
                    dates::span(v.max_age),
                    if v.include_subdomains {
                        ", includeSubDomains"
                    } else {
                        ""
                    },
                    if v.preload { ", preload" } else { "" }
                ),
                (None, Some(raw)) => {
                    format!("invalid header: <span class=\"mono\">{}</span>", Esc(raw))
                }
                (None, None) => "no header".to_string(),
            };
            fact(out, "HSTS", hsts);
        }
        Some(Err(e)) => fact(out, "HTTP", format!("no answer: {}", Esc(e))),
        None => {}
    }
    if let Some(r) = &o.redirect {
        let to = r.location.as_deref().map_or(String::new(), |l| {
            format!(" to <span class=\"mono\">{}</span>", Esc(l))
        });
        fact(
            out,
            "redirect",
            format!(
                "status {}; {} after {} redirect{}{to}",
                r.status,
                if r.to_https {
                    "reaches https://"
                } else {
                    "never reaches https://"
                },
                r.hops,
                if r.hops == 1 { "" } else { "s" }
            ),
        );
    }
    out.push_str("</dl>");
    if let Some(chain) = &p.chain {
        let from_scan = o
            .chain
            .as_ref()
            .is_none_or(|c| !std::sync::Arc::ptr_eq(c, chain));
        self::chain(out, chain, from_scan, now);
    }
    out.push_str("</section>\n");
}

fn phases(o: &ProbeOutcome) -> String {
    let mut s = dates::millis(o.duration.as_millis());
    let parts: Vec<String> = [
        ("resolve", o.phases.resolve),
        ("connect", o.phases.connect),
        ("proxy", o.phases.proxy),
        ("STARTTLS", o.phases.starttls),
        ("handshake", o.phases.handshake),
    ]
    .iter()
    .filter_map(|(name, d)| d.map(|d| format!("{name} {}", dates::millis(d.as_millis()))))
    .collect();
    if !parts.is_empty() {
        let _ = write!(s, " ({})", parts.join(", "));
    }
    s
}

/// One revocation fact as a sentence: "Leaf certificate (depth 0): good according to the CRL
/// at http://…, checked 2026-… (5 minutes ago), next update …".
fn revocation(f: &Fact, now: i64) -> String {
    let which = if f.depth == 0 {
        "leaf certificate".to_string()
    } else {
        format!("certificate at depth {}", f.depth)
    };
    let said = match &f.status {
        Status::Revoked { .. } => format!("<b class=\"failing\">{}</b>", Esc(&f.to_string())),
        _ => Esc(&f.to_string()).to_string(),
    };
    let next = f.next_update.map_or(String::new(), |n| {
        format!(", next update {} ({})", Rfc3339(n), dates::left(n, now))
    });
    format!(
        "{which} by {}: {said}; checked {} ({}){next}",
        f.method.as_label().to_uppercase(),
        Rfc3339(f.checked_at),
        dates::ago(f.checked_at, now)
    )
}

fn ocsp(o: &ProbeOutcome, now: i64) -> String {
    match &o.ocsp {
        None => "none stapled".to_string(),
        Some(Err(e)) => format!("unusable: {}", Esc(&e.to_string())),
        Some(Ok(s)) => {
            let status = match s.status {
                CertStatus::Good => "good".to_string(),
                CertStatus::Revoked { at } => {
                    format!("<b class=\"failing\">revoked</b> at {}", Rfc3339(at))
                }
                CertStatus::Unknown => "unknown to the responder".to_string(),
            };
            let next = s.next_update.map_or(String::new(), |n| {
                format!(", next update {} ({})", Rfc3339(n), dates::left(n, now))
            });
            let current = if s.is_current(now) {
                ""
            } else {
                "; not current"
            };
            format!(
                "{status}; produced for {}{next}{current}",
                Rfc3339(s.this_update)
            )
        }
    }
}

/// The chain's verdict and every certificate in it, leaf first.
fn chain(out: &mut String, c: &Chain, from_scan: bool, now: i64) {
    out.push_str("<h3>Certificate chain</h3>");
    if from_scan {
        out.push_str(
            "<p class=\"note\">From the legacy scan: the server speaks neither TLS 1.2 nor 1.3.</p>",
        );
    }
    facts_open(out);
    match &c.problem {
        None => fact(out, "verdict", "valid for the server name"),
        Some(f) => fact(
            out,
            "verdict",
            format!(
                "<b class=\"failing\">{}</b>: {}",
                f.reason.as_label(),
                Esc(&f.detail)
            ),
        ),
    }
    if let Some(p) = c.path_expiry {
        // Coloured by the lifetime of the certificate that expires first (see `Expiry`).
        let class = Expiry::of_chain(c).map_or("", |e| e.urgency(now).class_attr());
        fact(
            out,
            "verified path expires",
            format!(
                "<span{class}>{} ({})</span>",
                Rfc3339(p),
                dates::left(p, now)
            ),
        );
    }
    let parsed = c.certs.len();
    fact(
        out,
        "sent",
        format!(
            "{} certificate{}{}; {}; {}",
            c.sent,
            if c.sent == 1 { "" } else { "s" },
            if parsed < c.sent {
                format!(" ({} did not parse)", c.sent - parsed)
            } else {
                String::new()
            },
            if c.order_valid {
                "in order"
            } else {
                "out of order"
            },
            if c.incomplete {
                "incomplete (an intermediate is missing)"
            } else {
                "complete"
            }
        ),
    );
    out.push_str("</dl><div class=\"certs\">");
    for (depth, f) in &c.certs {
        let role = if *depth == 0 {
            "leaf".to_string()
        } else {
            format!("depth {depth}")
        };
        let _ = write!(
            out,
            "<div class=\"cert\" data-depth=\"{depth}\"><h3>{role}</h3>"
        );
        facts_open(out);
        fact(out, "subject", Esc(&f.subject));
        fact(out, "issuer", Esc(&f.issuer));
        let sans = if f.dns_names.is_empty() {
            "none".to_string()
        } else {
            Esc(&f.dns_names.replace(',', ", ")).to_string()
        };
        fact(out, "SANs", sans);
        fact(out, "not before", Rfc3339(f.not_before));
        let urgency = Urgency::of(f.not_before, f.not_after, now);
        let _ = write!(
            out,
            "<dt>not after</dt><dd{}>{} ({})</dd>",
            urgency.class_attr(),
            Rfc3339(f.not_after),
            dates::left(f.not_after, now)
        );
        fact(
            out,
            "lifetime",
            dates::span(f.not_after.abs_diff(f.not_before)),
        );
        fact(out, "key", Esc(&f.key));
        fact(out, "signature", Esc(&f.signature_algorithm));
        fact(
            out,
            "serial",
            format!("<span class=\"mono\">{}</span>", Esc(&f.serial)),
        );
        fact(
            out,
            "SHA-256",
            format!("<span class=\"mono\">{}</span>", Esc(&f.fingerprint_sha256)),
        );
        out.push_str("</dl></div>");
    }
    out.push_str("</div>");
}

/// The latest legacy scan per address.
fn scans(out: &mut String, en: &Entry, now: i64) {
    out.push_str("<section><h2>Legacy protocols and weak ciphers</h2>");
    if en.target.scan_interval.is_none() {
        out.push_str(
            "<p class=\"muted\">Not scanned (scans are off for this target).</p></section>\n",
        );
        return;
    }
    if en.scans.is_empty() {
        out.push_str("<p class=\"muted\">No scan has finished yet.</p></section>\n");
        return;
    }
    for s in &en.scans {
        if let Some(ip) = s.ip {
            let _ = write!(out, "<h3>{ip}</h3>");
        }
        facts_open(out);
        let at = dates::unix(s.finished_at);
        fact(
            out,
            "scanned",
            format!(
                "{} ({}), {} handshakes in {}",
                Rfc3339(at),
                dates::ago(at, now),
                s.handshakes,
                dates::millis(s.duration.as_millis())
            ),
        );
        let list = |items: Vec<(&str, bool)>| {
            let accepted: Vec<&str> = items.iter().filter(|(_, a)| *a).map(|(n, _)| *n).collect();
            if accepted.is_empty() {
                "none".to_string()
            } else {
                accepted.join(", ")
            }
        };
        fact(
            out,
            "protocols accepted",
            list(s.protocols().map(|(v, a)| (v.as_label(), a)).collect()),
        );
        let weak = list(s.weak().map(|(c, a)| (c.as_label(), a)).collect());
        let class = if weak == "none" { "" } else { "warn" };
        let _ = write!(
            out,
            "<dt>weak ciphers accepted</dt><dd class=\"{class}\">{weak}</dd>"
        );
        out.push_str("</dl>");
    }
    out.push_str("</section>\n");
}

/// The last probes, newest first.
fn history(out: &mut String, en: &Entry, now: i64) {
    let _ = write!(
        out,
        "<section><h2>Recent probes</h2><p class=\"note\">The last {} of at most {}, newest first.</p>",
        en.history.len(),
        crate::state::HISTORY_LEN
    );
    out.push_str(
        "<table id=\"history\"><thead><tr><th>finished</th><th>duration</th><th>result</th>\
         <th>reason</th><th>detail</th></tr></thead><tbody>\n",
    );
    for r in en.history.iter().rev() {
        let (class, result) = if r.success() {
            ("ok", "ok")
        } else {
            ("failing", "failing")
        };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td class=\"nowrap\"><time datetime=\"{t}\" title=\"{}\">{t}</time></td>\
             <td class=\"nowrap\">{}</td><td class=\"result\">{result}</td><td class=\"nowrap\">{}</td><td>{}</td></tr>",
            dates::ago(r.at(), now),
            dates::millis(u128::from(r.duration_ms())),
            r.reason().map_or("", FailureReason::as_label),
            Esc(r.detail().unwrap_or_default()),
            t = Rfc3339(r.at()),
        );
    }
    if en.history.is_empty() {
        out.push_str("<tr><td colspan=\"5\" class=\"muted\">No probe yet.</td></tr>\n");
    }
    out.push_str("</tbody></table></section>\n");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::probe::http::{Hsts, HttpFacts, RedirectFacts};
    use crate::probe::legacy::{LegacyVersion, ScanResult, WeakClass};
    use crate::probe::outcome::AddressOutcome;
    use crate::probe::Check;
    use crate::status::fixtures::{self, DAY, NOW};
    use crate::tls::ocsp::Stapled;

    const ONE: &str = "targets:\n  - {name: \"api<1>\", address: \"api.example:443\", labels: {team: \"<core>\"}}\n";

    fn page(state: &crate::state::State, name: &str) -> String {
        render(&state.get(name).expect("target"), NOW, false)
    }

    #[test]
    fn every_certificate_of_the_chain_is_shown() {
        let (state, t) = fixtures::state(ONE);
        let mut o = fixtures::healthy("api.example", NOW - 10 * DAY, NOW + 80 * DAY);
        let mut inter = fixtures::cert("Intermediate <CA>", NOW - 100 * DAY, NOW + DAY);
        inter.key = "RSA 2048".into();
        inter.signature_algorithm = "sha256WithRSAEncryption".into();
        inter.fingerprint_sha256 = "cd".repeat(32);
        o.chain = Some(Arc::new(Chain {
            certs: vec![
                (
                    0,
                    Arc::new(fixtures::cert(
                        "api.example",
                        NOW - 10 * DAY,
                        NOW + 80 * DAY,
                    )),
                ),
                (1, Arc::new(inter)),
            ],
            sent: 3,
            problem: None,
            path_expiry: Some(NOW + DAY),
            path: Vec::new(),
            order_valid: false,
            incomplete: true,
        }));
        fixtures::record(&state, &t[0], o);
        let p = page(&state, "api<1>");
        for want in [
            "<title>api&lt;1&gt; · tls_exporter</title>",
            "<dt>subject</dt><dd>CN=api.example</dd>",
            "<dt>issuer</dt><dd>CN=Test &quot;Root&quot;</dd>",
            "<dt>SANs</dt><dd>api.example, 127.0.0.1</dd>",
            "<dt>not before</dt><dd>2023-11-04T22:13:20Z</dd>",
            "<dt>not after</dt><dd>2024-02-02T22:13:20Z (80 days)</dd>",
            "<dt>key</dt><dd>ECDSA P-256</dd>",
            &"ab".repeat(32),
            "<dt>subject</dt><dd>CN=Intermediate &lt;CA&gt;</dd>",
            "<dt>not after</dt><dd class=\"crit\">2023-11-15T22:13:20Z (1 day)</dd>",
            "<dt>key</dt><dd>RSA 2048</dd>",
            "<dt>signature</dt><dd>sha256WithRSAEncryption</dd>",
            &"cd".repeat(32),
            "3 certificates (1 did not parse); out of order; incomplete",
            "<dt>verified path expires</dt><dd><span class=\"crit\">2023-11-15T22:13:20Z (1 day)</span></dd>",
            "TLS 1.3, TLS13_AES_128_GCM_SHA256, X25519",
            "team=&lt;core&gt;",
        ] {
            assert!(p.contains(want), "missing {want:?} in:\n{p}");
        }
    }

    #[test]
    fn revocation_facts_are_shown_as_sentences() {
        use crate::revocation::{Fact, Method, Status};
        let (state, t) = fixtures::state(ONE);
        let mut o = fixtures::healthy("api.example", NOW - DAY, NOW + 60 * DAY);
        o.revocation = vec![
            Fact {
                depth: 0,
                method: Method::Ocsp,
                url: "http://ocsp.example/?a=<b>".to_string(),
                status: Status::Revoked { at: NOW - DAY },
                checked_at: NOW - 300,
                next_update: Some(NOW + DAY),
            },
            Fact {
                depth: 1,
                method: Method::Crl,
                url: "http://crl.example/ca.crl".to_string(),
                status: Status::Error("http://crl.example/ca.crl answered HTTP 404".to_string()),
                checked_at: NOW - 60,
                next_update: None,
            },
        ];
        fixtures::record(&state, &t[0], o);
        let p = page(&state, "api<1>");
        for want in [
            "<dt>revocation</dt><dd>leaf certificate by OCSP: <b class=\"failing\">revoked since 2023-11-13T22:13:20Z according to the OCSP responder at http://ocsp.example/?a=&lt;b&gt;</b>; checked 2023-11-14T22:08:20Z (5 minutes ago), next update 2023-11-15T22:13:20Z (1 day)</dd>",
            "<dt>revocation</dt><dd>certificate at depth 1 by CRL: not checked: http://crl.example/ca.crl answered HTTP 404; checked 2023-11-14T22:12:20Z (1 minute ago)</dd>",
        ] {
            assert!(p.contains(want), "missing {want:?} in:\n{p}");
        }
    }

    #[test]
    fn ocsp_hsts_and_redirect_results_are_shown_and_escaped() {
        let (state, t) = fixtures::state(ONE);
        let mut o = fixtures::healthy("api.example", NOW - DAY, NOW + 60 * DAY);
        o.ocsp_checked = true;
        o.ocsp = Some(Ok(Stapled {
            status: CertStatus::Revoked { at: NOW - DAY },
            this_update: NOW - 3600,
            produced_at: 0,
            next_update: Some(NOW + 2 * DAY),
        }));
        o.http = Some(Box::new(Ok(HttpFacts {
            status: 200,
            hsts: Some(Hsts {
                max_age: 31_536_000,
                include_subdomains: true,
                preload: false,
            }),
            hsts_header: Some("max-age=31536000; includeSubDomains".into()),
        })));
        o.redirect = Some(Box::new(RedirectFacts {
            status: 301,
            to_https: true,
            hops: 1,
            location: Some("https://x/?a=<b>&c=\"d\"".into()),
        }));
        fixtures::record(&state, &t[0], o);
        let p = page(&state, "api<1>");
        for want in [
            "<b class=\"failing\">revoked</b> at 2023-11-13T22:13:20Z; produced for 2023-11-14T21:13:20Z, next update 2023-11-16T22:13:20Z (2 days)",
            "<dt>HTTP status</dt><dd>200</dd>",
            "max-age 31536000 (365 days), includeSubDomains",
            "status 301; reaches https:// after 1 redirect to <span class=\"mono\">https://x/?a=&lt;b&gt;&amp;c=&quot;d&quot;</span>",
        ] {
            assert!(p.contains(want), "missing {want:?} in:\n{p}");
        }
    }

    #[test]
    fn scan_results_list_what_the_server_accepts() {
        let (state, t) = fixtures::state(ONE);
        let mut scan = ProbeOutcome::new(Default::default(), Duration::from_secs(2));
        scan.finished_at = std::time::UNIX_EPOCH + Duration::from_secs(1_699_999_000);
        scan.scan = Some(Box::new(ScanResult {
            protocols: LegacyVersion::ALL
                .iter()
                .map(|v| (*v, matches!(v, LegacyVersion::Tls10 | LegacyVersion::Tls12)))
                .collect(),
            weak: WeakClass::ALL
                .iter()
                .map(|c| (*c, *c == WeakClass::CbcSha1))
                .collect(),
            handshakes: 11,
            duration: Duration::from_millis(1500),
            legacy_chain: None,
        }));
        let one = AddressOutcome {
            ip: None,
            outcome: Arc::new(scan),
        };
        state.record(&t[0], Check::Scan, vec![one]);
        let p = page(&state, "api<1>");
        for want in [
            "2023-11-14T21:56:40Z (16 minutes ago), 11 handshakes in 1,500 ms",
            "<dt>protocols accepted</dt><dd>TLS 1.0, TLS 1.2</dd>",
            "<dt>weak ciphers accepted</dt><dd class=\"warn\">CBC-SHA1</dd>",
            "Not probed yet.",
        ] {
            assert!(p.contains(want), "missing {want:?} in:\n{p}");
        }
    }

    #[test]
    fn history_is_newest_first_with_rfc3339_times_and_escaped_details() {
        let (state, t) = fixtures::state(ONE);
        fixtures::record(
            &state,
            &t[0],
            fixtures::healthy("a", NOW - DAY, NOW + 60 * DAY),
        );
        let mut failed = fixtures::failing(FailureReason::Other, "bad <answer> from \"peer\"");
        failed.finished_at += Duration::from_secs(5);
        fixtures::record(&state, &t[0], failed);
        let p = page(&state, "api<1>");
        let history = p.split("id=\"history\"").nth(1).unwrap_or_default();
        let newest = history.find("2023-11-14T22:13:15Z");
        let oldest = history.find("2023-11-14T22:13:10Z");
        assert!(newest.is_some() && newest < oldest, "{history}");
        assert!(
            history.contains("<td class=\"result\">failing</td><td class=\"nowrap\">other</td><td>bad &lt;answer&gt; from &quot;peer&quot;</td>"),
            "{history}"
        );
        assert!(p.contains("The last 2 of at most 20, newest first."), "{p}");
        assert!(
            p.contains("probes since start</dt><dd>2; failures: other 1"),
            "{p}"
        );
        assert!(
            p.contains("<dt>detail</dt><dd>bad &lt;answer&gt; from &quot;peer&quot;</dd>"),
            "{p}"
        );
    }

    #[test]
    fn unknown_target_page_escapes_the_name() {
        let p = not_found("<script>x</script>");
        assert!(p.contains("&lt;script&gt;x&lt;/script&gt;"), "{p}");
        assert!(!p.contains("<script>x"), "{p}");
    }
}
