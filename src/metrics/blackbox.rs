//! `/probe?format=blackbox`: one on-demand probe as blackbox_exporter 0.28 reports a TLS probe
//! (its `tcp` prober with `tls: true`, or for targets with an HTTP check its `http` prober).
//!
//! Names and labels are blackbox_exporter's exactly; families come sorted by name, as its
//! registry writes them; values mean what its `prober/tls.go`, `utils.go` and `http.go` say.
//! Where blackbox_exporter reports nothing because Go refused the chain, we still report the
//! TLS series of the session (the README says so); the HTTP series then read as blackbox's do
//! (no response over TLS). Series that are not about TLS (regex and body checks, HTTP phase
//! durations, content lengths) are not reproduced. The probing is `probe::run`'s; the
//! address, resolution time and duration come from the `/probe` handler (`OnDemand`).

use super::go_x509::{self, GoName};
use super::{gauge, Encoder, Family, OnDemand};
use crate::config::ProbeKind;
use crate::tls::chain::Chain;

const DNS_LOOKUP_TIME: Family = gauge(
    "probe_dns_lookup_time_seconds",
    "Time taken to resolve the target's name, in seconds.",
);
const DURATION: Family = gauge(
    "probe_duration_seconds",
    "How long the probe took to complete, in seconds.",
);
const HTTP_SSL: Family = gauge(
    "probe_http_ssl",
    "1 if the HTTP response came over a verified TLS session; else 0.",
);
const HTTP_STATUS_CODE: Family = gauge(
    "probe_http_status_code",
    "Response HTTP status code (0: no response over a verified TLS session).",
);
const IP_ADDR_HASH: Family = gauge(
    "probe_ip_addr_hash",
    "FNV-1a hash of the IP address probed, to detect when it changes (0: not resolved).",
);
const IP_PROTOCOL: Family = gauge(
    "probe_ip_protocol",
    "IP protocol of the address probed: 4 or 6 (0: not resolved).",
);
const SSL_EARLIEST_CERT_EXPIRY: Family = gauge(
    "probe_ssl_earliest_cert_expiry",
    "Earliest not-after among the certificates the server sent, in Unix time.",
);
const SSL_LAST_CHAIN_EXPIRY: Family = gauge(
    "probe_ssl_last_chain_expiry_timestamp_seconds",
    "Earliest not-after along the verified chain, in Unix time; absent when the chain is not verified.",
);
const SSL_LAST_CHAIN_INFO: Family = gauge(
    "probe_ssl_last_chain_info",
    "Facts of the leaf certificate the server sent (value 1).",
);
const SUCCESS: Family = gauge(
    "probe_success",
    "1 if the probe succeeded (for HTTP checks: a 2xx response over a verified session); else 0.",
);
const TLS_CIPHER_INFO: Family = gauge(
    "probe_tls_cipher_info",
    "Cipher suite negotiated during the handshake (value 1).",
);
const TLS_VERSION_INFO: Family = gauge(
    "probe_tls_version_info",
    "TLS version negotiated during the handshake (value 1).",
);

/// Writes the families of one on-demand probe, sorted by name.
pub(super) fn render(e: &mut Encoder, p: &OnDemand) {
    let o = p.outcome;
    let chain = o.chain.as_deref();
    let verified = chain.is_some_and(|c| c.problem.is_none());
    let http = p.target.kind == ProbeKind::Tls && p.target.http.is_some();
    // Status of a response over a session Go would have accepted; `None` without one.
    let status = match o.http.as_deref() {
        Some(Ok(facts)) if verified => Some(facts.status),
        _ => None,
    };

    one(e, &DNS_LOOKUP_TIME, p.resolve.as_secs_f64());
    one(e, &DURATION, p.duration.as_secs_f64());
    if http {
        one(e, &HTTP_SSL, if status.is_some() { 1.0 } else { 0.0 });
        one(e, &HTTP_STATUS_CODE, status.map_or(0.0, f64::from));
    }
    one(
        e,
        &IP_ADDR_HASH,
        p.ip.map_or(0.0, |ip| f64::from(go_x509::ip_hash(ip))),
    );
    one(
        e,
        &IP_PROTOCOL,
        match p.ip.map(|ip| ip.to_canonical()) {
            Some(std::net::IpAddr::V4(_)) => 4.0,
            Some(std::net::IpAddr::V6(_)) => 6.0,
            None => 0.0,
        },
    );
    if let Some(c) = chain {
        certificates(e, c);
    }
    let success = o.success() && (!http || status.is_some_and(|s| (200..300).contains(&s)));
    one(e, &SUCCESS, if success { 1.0 } else { 0.0 });
    if let Some(n) = &o.negotiated {
        e.family(&TLS_CIPHER_INFO);
        e.sample(&TLS_CIPHER_INFO, "", &[("cipher", &n.cipher)], 1.0);
        e.family(&TLS_VERSION_INFO);
        e.sample(&TLS_VERSION_INFO, "", &[("version", n.version)], 1.0);
    }
}

/// `probe_ssl_*`: every certificate sent for the earliest expiry, the verified path for the
/// chain expiry (Go takes the latest of its verified chains; we verify one path), the leaf for
/// the info series.
fn certificates(e: &mut Encoder, c: &Chain) {
    if let Some(earliest) = c.certs.iter().map(|(_, f)| f.not_after).min() {
        one(e, &SSL_EARLIEST_CERT_EXPIRY, earliest as f64);
    }
    if let (None, Some(expiry)) = (&c.problem, c.path_expiry) {
        one(e, &SSL_LAST_CHAIN_EXPIRY, expiry as f64);
    }
    if let Some((_, leaf)) = c.certs.iter().find(|(d, _)| *d == 0) {
        let (dns, _) = go_x509::sans(&leaf.dns_names);
        e.family(&SSL_LAST_CHAIN_INFO);
        e.sample(
            &SSL_LAST_CHAIN_INFO,
            "",
            &[
                ("fingerprint_sha256", &leaf.fingerprint_sha256),
                ("issuer", &GoName::parse(&leaf.issuer_der).string()),
                ("serialnumber", &go_x509::serial_hex(&leaf.serial)),
                ("subject", &GoName::parse(&leaf.subject_der).string()),
                ("subjectalternative", &dns.join(",")),
            ],
            1.0,
        );
    }
}

/// A family with one unlabelled sample.
fn one(e: &mut Encoder, f: &Family, value: f64) {
    e.family(f);
    e.sample(f, "", &[], value);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::test_support::{chain_of, facts, outcome, target};
    use crate::probe::http::HttpFacts;
    use crate::verdict::{Failure, FailureReason};

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn rendered(p: &OnDemand) -> String {
        let mut e = Encoder::with_capacity(1024);
        render(&mut e, p);
        e.out
    }

    #[test]
    fn healthy_tls_probe_renders_blackbox_series_sorted_by_name() {
        let t = target("{name: api, address: \"127.0.0.1:443\"}");
        let o = outcome(chain_of(
            vec![facts("api", 90_000), facts("ca", 80_000)],
            true,
        ));
        let p = OnDemand {
            target: &t,
            outcome: &o,
            ip: "127.0.0.1".parse().ok(),
            resolve: Duration::from_millis(2),
            duration: Duration::from_millis(250),
        };
        let text = rendered(&p);
        assert_eq!(
            lines(&text),
            [
                "probe_dns_lookup_time_seconds 0.002",
                "probe_duration_seconds 0.25",
                "probe_ip_addr_hash 3668918509",
                "probe_ip_protocol 4",
                "probe_ssl_earliest_cert_expiry 80000",
                "probe_ssl_last_chain_expiry_timestamp_seconds 80000",
                "probe_ssl_last_chain_info{fingerprint_sha256=\"ab\",issuer=\"CN=Test Root\",serialnumber=\"1a2b\",subject=\"CN=api\",subjectalternative=\"api.example\"} 1",
                "probe_success 1",
                "probe_tls_cipher_info{cipher=\"TLS_AES_128_GCM_SHA256\"} 1",
                "probe_tls_version_info{version=\"TLS 1.3\"} 1",
            ],
            "{text}"
        );
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        let mut sorted = families.clone();
        sorted.sort_unstable();
        assert_eq!(families, sorted);
    }

    #[test]
    fn refused_chain_keeps_tls_series_but_not_the_chain_expiry() {
        let t = target("{name: api, address: \"127.0.0.1:443\"}");
        let mut o = outcome(chain_of(vec![facts("api", 90_000)], false));
        o.failure = Some(Failure::new(FailureReason::UnknownIssuer, "unknown issuer"));
        let p = OnDemand {
            target: &t,
            outcome: &o,
            ip: None,
            resolve: Duration::ZERO,
            duration: Duration::from_millis(5),
        };
        let text = rendered(&p);
        let got = lines(&text);
        for want in [
            "probe_success 0",
            "probe_ip_protocol 0",
            "probe_ip_addr_hash 0",
            "probe_ssl_earliest_cert_expiry 90000",
            "probe_tls_version_info{version=\"TLS 1.3\"} 1",
        ] {
            assert!(got.contains(&want), "missing {want} in:\n{text}");
        }
        assert!(
            !text.contains("probe_ssl_last_chain_expiry_timestamp_seconds "),
            "{text}"
        );
        assert!(!text.contains("probe_http_"), "{text}");
    }

    #[test]
    fn http_series_follow_blackbox_http_prober() {
        let t = target("{name: web, address: \"127.0.0.1:443\", http: {path: /health}}");
        let mut o = outcome(chain_of(vec![facts("api", 90_000)], true));
        o.http = Some(Box::new(Ok(HttpFacts {
            status: 404,
            hsts: None,
            hsts_header: None,
        })));
        let p = |o| OnDemand {
            target: &t,
            outcome: o,
            ip: "::1".parse().ok(),
            resolve: Duration::ZERO,
            duration: Duration::ZERO,
        };
        let text = rendered(&p(&o));
        let got = lines(&text);
        for want in [
            "probe_http_ssl 1",
            "probe_http_status_code 404",
            "probe_ip_protocol 6",
            "probe_success 0",
        ] {
            assert!(got.contains(&want), "missing {want} in:\n{text}");
        }
        // Over a refused chain Go gets no response at all.
        let mut refused = outcome(chain_of(vec![facts("api", 90_000)], false));
        refused.http = o.http.clone();
        let text = rendered(&p(&refused));
        let got = lines(&text);
        for want in ["probe_http_ssl 0", "probe_http_status_code 0"] {
            assert!(got.contains(&want), "missing {want} in:\n{text}");
        }
    }
}
