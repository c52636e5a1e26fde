//! `/probe?format=ssl_exporter`: one on-demand probe as ssl_exporter 2.4 reports it with its
//! `tcp` prober (or `https`, for targets with an HTTP check).
//!
//! Names and labels are ssl_exporter's exactly (its `prober/metrics.go`); families come sorted
//! by name, as its registry writes them. ssl_exporter collects everything in Go's
//! `VerifyConnection`, so it reports nothing but `ssl_probe_success` and `ssl_prober` when Go
//! refuses the chain; we still report the certificate, version and OCSP series of the session
//! (the README says so), and the verified-chain series only for a verified chain. The probing
//! is `probe::run`'s; `go_x509.rs` renders the label values as Go does.

use super::go_x509::{self, GoName, ZERO_TIME};
use super::{gauge, Encoder, Family, OnDemand};
use crate::config::ProbeKind;
use crate::tls::cert::CertFacts;
use crate::tls::ocsp::CertStatus;

const CERT_NOT_AFTER: Family = gauge(
    "ssl_cert_not_after",
    "NotAfter of each certificate the server sent, as a Unix time.",
);
const CERT_NOT_BEFORE: Family = gauge(
    "ssl_cert_not_before",
    "NotBefore of each certificate the server sent, as a Unix time.",
);
const OCSP_NEXT_UPDATE: Family = gauge(
    "ssl_ocsp_response_next_update",
    "The nextUpdate value in the stapled OCSP response, as a Unix time.",
);
const OCSP_PRODUCED_AT: Family = gauge(
    "ssl_ocsp_response_produced_at",
    "The producedAt value in the stapled OCSP response, as a Unix time.",
);
const OCSP_REVOKED_AT: Family = gauge(
    "ssl_ocsp_response_revoked_at",
    "The revocationTime value in the stapled OCSP response, as a Unix time.",
);
const OCSP_STAPLED: Family = gauge(
    "ssl_ocsp_response_stapled",
    "1 if the server stapled an OCSP response; else 0.",
);
const OCSP_STATUS: Family = gauge(
    "ssl_ocsp_response_status",
    "The certificate status in the stapled OCSP response: 0=Good 1=Revoked 2=Unknown.",
);
const OCSP_THIS_UPDATE: Family = gauge(
    "ssl_ocsp_response_this_update",
    "The thisUpdate value in the stapled OCSP response, as a Unix time.",
);
const PROBE_SUCCESS: Family = gauge("ssl_probe_success", "1 if the probe was a success; else 0.");
const PROBER: Family = gauge(
    "ssl_prober",
    "The prober used to connect to the target (value 1).",
);
const TLS_VERSION_INFO: Family = gauge("ssl_tls_version_info", "The TLS version used (value 1).");
const VERIFIED_CERT_NOT_AFTER: Family = gauge(
    "ssl_verified_cert_not_after",
    "NotAfter of each certificate of the verified chain, trust anchor included, as a Unix time.",
);
const VERIFIED_CERT_NOT_BEFORE: Family = gauge(
    "ssl_verified_cert_not_before",
    "NotBefore of each certificate of the verified chain, trust anchor included, as a Unix time.",
);

/// Writes the families of one on-demand probe, sorted by name.
pub(super) fn render(e: &mut Encoder, p: &OnDemand) {
    let o = p.outcome;
    let https = p.target.kind == ProbeKind::Tls && p.target.http.is_some();
    let sent: Vec<&CertFacts> = o
        .chain
        .as_deref()
        .map(|c| c.certs.iter().map(|(_, f)| &**f).collect())
        .unwrap_or_default();
    let sent = Labeled::unique(&sent);
    for (family, value) in [
        (&CERT_NOT_AFTER, not_after as fn(&CertFacts) -> f64),
        (&CERT_NOT_BEFORE, not_before),
    ] {
        if !sent.is_empty() {
            e.family(family);
        }
        for c in &sent {
            e.sample(family, "", &c.labels(), value(c.facts));
        }
    }
    if o.ocsp_checked {
        ocsp(e, p);
    }
    // ssl_exporter's https prober fails when the GET does; it does not judge the status.
    let success = o.success() && (!https || matches!(o.http.as_deref(), Some(Ok(_))));
    e.family(&PROBE_SUCCESS);
    e.sample(&PROBE_SUCCESS, "", &[], if success { 1.0 } else { 0.0 });
    e.family(&PROBER);
    let prober = if https { "https" } else { "tcp" };
    e.sample(&PROBER, "", &[("prober", prober)], 1.0);
    if let Some(n) = &o.negotiated {
        e.family(&TLS_VERSION_INFO);
        e.sample(&TLS_VERSION_INFO, "", &[("version", n.version)], 1.0);
    }
    let path: Vec<&CertFacts> = o
        .chain
        .as_deref()
        .filter(|c| c.problem.is_none())
        .map(|c| c.path.iter().map(|f| &**f).collect())
        .unwrap_or_default();
    let path = Labeled::unique(&path);
    for (family, value) in [
        (&VERIFIED_CERT_NOT_AFTER, not_after as fn(&CertFacts) -> f64),
        (&VERIFIED_CERT_NOT_BEFORE, not_before),
    ] {
        if !path.is_empty() {
            e.family(family);
        }
        for c in &path {
            let mut labels = vec![("chain_no", "0")];
            labels.extend(c.labels());
            e.sample(family, "", &labels, value(c.facts));
        }
    }
}

/// The OCSP families: zeros when nothing was stapled (as ssl_exporter registers them), the
/// response's values when it verified, only `stapled` when it did not (ssl_exporter parses
/// without verifying; we report no values from a response we could not trust).
fn ocsp(e: &mut Encoder, p: &OnDemand) {
    let stapled = p.outcome.ocsp.as_ref();
    let values = match stapled {
        None => Some([0.0; 5]),
        Some(Ok(s)) => Some([
            s.next_update.map_or(ZERO_TIME, |t| t as f64),
            s.produced_at as f64,
            match s.status {
                CertStatus::Revoked { at } => at as f64,
                _ => ZERO_TIME,
            },
            match s.status {
                CertStatus::Good => 0.0,
                CertStatus::Revoked { .. } => 1.0,
                CertStatus::Unknown => 2.0,
            },
            s.this_update as f64,
        ]),
        Some(Err(_)) => None,
    };
    let [next, produced, revoked, status, this] = values.map_or([None; 5], |v| v.map(Some));
    for (family, value) in [
        (&OCSP_NEXT_UPDATE, next),
        (&OCSP_PRODUCED_AT, produced),
        (&OCSP_REVOKED_AT, revoked),
        (
            &OCSP_STAPLED,
            Some(if stapled.is_some() { 1.0 } else { 0.0 }),
        ),
        (&OCSP_STATUS, status),
        (&OCSP_THIS_UPDATE, this),
    ] {
        if let Some(v) = value {
            e.family(family);
            e.sample(family, "", &[], v);
        }
    }
}

fn not_after(f: &CertFacts) -> f64 {
    f.not_after as f64
}

fn not_before(f: &CertFacts) -> f64 {
    f.not_before as f64
}

/// A certificate with ssl_exporter's label values (`labelValues` in its `metrics.go`).
struct Labeled<'a> {
    facts: &'a CertFacts,
    serial_no: String,
    issuer_cn: String,
    cn: String,
    dnsnames: String,
    ips: String,
    emails: String,
    ou: String,
}

impl<'a> Labeled<'a> {
    /// The certificates with their labels, the first of each (serial, issuer CN) only, as
    /// ssl_exporter's `uniq` keeps them.
    fn unique(certs: &[&'a CertFacts]) -> Vec<Labeled<'a>> {
        let mut out: Vec<Labeled> = Vec::with_capacity(certs.len());
        for f in certs {
            let l = Labeled::new(f);
            if !out
                .iter()
                .any(|o| o.serial_no == l.serial_no && o.issuer_cn == l.issuer_cn)
            {
                out.push(l);
            }
        }
        out
    }

    fn new(f: &'a CertFacts) -> Labeled<'a> {
        let subject = GoName::parse(&f.subject_der);
        let (dns, ips) = go_x509::sans(&f.dns_names);
        Labeled {
            facts: f,
            serial_no: go_x509::serial_decimal(&f.serial),
            issuer_cn: GoName::parse(&f.issuer_der).common_name().to_string(),
            cn: subject.common_name().to_string(),
            dnsnames: fenced(&dns),
            ips: fenced(&ips),
            emails: fenced(&f.emails),
            ou: fenced(&subject.organizational_units()),
        }
    }

    /// Labels in the order ssl_exporter's registry writes them (sorted by name).
    fn labels(&self) -> [(&'static str, &str); 7] {
        [
            ("cn", &self.cn),
            ("dnsnames", &self.dnsnames),
            ("emails", &self.emails),
            ("ips", &self.ips),
            ("issuer_cn", &self.issuer_cn),
            ("ou", &self.ou),
            ("serial_no", &self.serial_no),
        ]
    }
}

/// ssl_exporter's list label: `,a,b,` (commas around every value), or empty.
fn fenced<S: AsRef<str>>(values: &[S]) -> String {
    if values.is_empty() {
        return String::new();
    }
    let mut out = String::from(",");
    for v in values {
        out.push_str(v.as_ref());
        out.push(',');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::test_support::{chain_of, facts, outcome, target};
    use crate::tls::ocsp::{OcspError, Stapled};

    fn rendered(p: &OnDemand) -> String {
        let mut e = Encoder::with_capacity(1024);
        render(&mut e, p);
        e.out
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    const LEAF: &str = "cn=\"api\",dnsnames=\",api.example,\",emails=\"\",ips=\"\",issuer_cn=\"Test Root\",ou=\"\",serial_no=\"6699\"";

    #[test]
    fn healthy_tls_probe_renders_ssl_exporter_series_sorted_by_name() {
        let t = target("{name: api, address: \"127.0.0.1:443\"}");
        let mut ca = facts("ca", 80_000);
        ca.serial = "01".to_string();
        let o = outcome(chain_of(vec![facts("api", 90_000), ca], true));
        let p = OnDemand {
            target: &t,
            outcome: &o,
            ip: None,
            resolve: Duration::ZERO,
            duration: Duration::ZERO,
        };
        let text = rendered(&p);
        let ca = "cn=\"ca\",dnsnames=\",api.example,\",emails=\"\",ips=\"\",issuer_cn=\"Test Root\",ou=\"\",serial_no=\"1\"";
        let want = [
            format!("ssl_cert_not_after{{{LEAF}}} 90000"),
            format!("ssl_cert_not_after{{{ca}}} 80000"),
            format!("ssl_cert_not_before{{{LEAF}}} 1000"),
            format!("ssl_cert_not_before{{{ca}}} 1000"),
            "ssl_ocsp_response_next_update 0".to_string(),
            "ssl_ocsp_response_produced_at 0".to_string(),
            "ssl_ocsp_response_revoked_at 0".to_string(),
            "ssl_ocsp_response_stapled 0".to_string(),
            "ssl_ocsp_response_status 0".to_string(),
            "ssl_ocsp_response_this_update 0".to_string(),
            "ssl_probe_success 1".to_string(),
            "ssl_prober{prober=\"tcp\"} 1".to_string(),
            "ssl_tls_version_info{version=\"TLS 1.3\"} 1".to_string(),
            format!("ssl_verified_cert_not_after{{chain_no=\"0\",{LEAF}}} 90000"),
            format!("ssl_verified_cert_not_after{{chain_no=\"0\",{ca}}} 80000"),
            format!("ssl_verified_cert_not_before{{chain_no=\"0\",{LEAF}}} 1000"),
            format!("ssl_verified_cert_not_before{{chain_no=\"0\",{ca}}} 1000"),
        ];
        assert_eq!(lines(&text), want, "{text}");
    }

    #[test]
    fn refused_chain_has_certificates_but_no_verified_chain() {
        let t = target("{name: web, address: \"127.0.0.1:443\", http: {path: /}}");
        let o = outcome(chain_of(vec![facts("api", 90_000)], false));
        let p = OnDemand {
            target: &t,
            outcome: &o,
            ip: None,
            resolve: Duration::ZERO,
            duration: Duration::ZERO,
        };
        let text = rendered(&p);
        let got = lines(&text);
        let not_after = format!("ssl_cert_not_after{{{LEAF}}} 90000");
        for want in [
            not_after.as_str(),
            "ssl_probe_success 0",
            "ssl_prober{prober=\"https\"} 1",
        ] {
            assert!(got.contains(&want), "missing {want} in:\n{text}");
        }
        assert!(!text.contains("ssl_verified_cert"), "{text}");
    }

    #[test]
    fn stapled_responses_report_their_times_or_only_that_they_were_stapled() {
        let t = target("{name: api, address: \"127.0.0.1:443\"}");
        let mut o = outcome(chain_of(vec![facts("api", 90_000)], true));
        o.ocsp = Some(Ok(Stapled {
            status: CertStatus::Revoked { at: 4_000 },
            this_update: 3_000,
            next_update: None,
            produced_at: 3_500,
        }));
        let p = OnDemand {
            target: &t,
            outcome: &o,
            ip: None,
            resolve: Duration::ZERO,
            duration: Duration::ZERO,
        };
        let text = rendered(&p);
        let got = lines(&text);
        for want in [
            "ssl_ocsp_response_next_update -62135596800",
            "ssl_ocsp_response_produced_at 3500",
            "ssl_ocsp_response_revoked_at 4000",
            "ssl_ocsp_response_stapled 1",
            "ssl_ocsp_response_status 1",
            "ssl_ocsp_response_this_update 3000",
        ] {
            assert!(got.contains(&want), "missing {want} in:\n{text}");
        }
        o.ocsp = Some(Err(OcspError::NoResponseForCert));
        let p = OnDemand {
            target: &t,
            outcome: &o,
            ip: None,
            resolve: Duration::ZERO,
            duration: Duration::ZERO,
        };
        let text = rendered(&p);
        assert!(
            lines(&text).contains(&"ssl_ocsp_response_stapled 1"),
            "{text}"
        );
        assert!(!text.contains("ssl_ocsp_response_status "), "{text}");
    }

    #[test]
    fn list_labels_are_fenced_with_commas() {
        assert_eq!(fenced(&["a", "b"]), ",a,b,");
        assert_eq!(fenced::<&str>(&[]), "");
    }
}
