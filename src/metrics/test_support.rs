//! Facts for the output formats' unit tests: targets from YAML, certificates with real DER
//! Names, outcomes of a completed handshake.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::config::Target;
use crate::probe::outcome::{Negotiated, Phases, ProbeOutcome};
use crate::tls::cert::CertFacts;
use crate::tls::chain::Chain;
use crate::verdict::{Failure, FailureReason};

/// The one target of a config with `yaml_target` as its only entry.
pub(crate) fn target(yaml_target: &str) -> Arc<Target> {
    let yaml = format!("targets:\n  - {yaml_target}\n");
    let config = crate::config::parse(&yaml, std::path::Path::new("t.yml"))
        .unwrap_or_else(|e| panic!("test config: {e}"));
    config.targets.first().cloned().expect("one target")
}

/// DER of a Name with one CN attribute (UTF8String).
pub(crate) fn cn_name(cn: &str) -> Vec<u8> {
    let value = cn.as_bytes();
    assert!(value.len() < 100, "short test names only");
    let atv_len = 5 + 2 + value.len();
    let mut der = vec![0x30, (atv_len + 4) as u8, 0x31, (atv_len + 2) as u8, 0x30];
    der.push(atv_len as u8);
    der.extend([0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, value.len() as u8]);
    der.extend_from_slice(value);
    der
}

/// A certificate `CN=<cn>` issued by `CN=Test Root`, serial 1a:2b, for `api.example`.
pub(crate) fn facts(cn: &str, not_after: i64) -> CertFacts {
    CertFacts {
        not_before: 1_000,
        not_after,
        cn: cn.to_string(),
        subject: format!("CN={cn}"),
        issuer: "CN=Test Root".to_string(),
        serial: "1a:2b".to_string(),
        fingerprint_sha256: "ab".to_string(),
        spki_sha256: String::new(),
        dns_names: "api.example".to_string(),
        emails: Vec::new(),
        key: "ECDSA P-256".to_string(),
        rsa_bits: None,
        signature_algorithm: "ecdsa-with-SHA256".to_string(),
        weak_signature: false,
        self_issued: false,
        subject_der: cn_name(cn),
        issuer_der: cn_name("Test Root"),
    }
}

/// The chain `certs` (leaf first), verified (every certificate on the path) or refused as
/// issued by an unknown CA.
pub(crate) fn chain_of(certs: Vec<CertFacts>, verified: bool) -> Chain {
    let certs: Vec<(usize, Arc<CertFacts>)> = certs.into_iter().map(Arc::new).enumerate().collect();
    let expiry = certs.iter().map(|(_, f)| f.not_after).min();
    Chain {
        sent: certs.len(),
        problem: (!verified).then(|| Failure::new(FailureReason::UnknownIssuer, "issuer unknown")),
        path_expiry: expiry.filter(|_| verified),
        path: if verified {
            certs.iter().map(|(_, f)| f.clone()).collect()
        } else {
            Vec::new()
        },
        certs,
        order_valid: true,
        incomplete: false,
    }
}

/// A completed TLS 1.3 handshake that received `chain` and no OCSP staple.
pub(crate) fn outcome(chain: Chain) -> ProbeOutcome {
    let mut o = ProbeOutcome::new(Phases::default(), Duration::from_millis(250));
    o.handshake_ok = true;
    o.finished_at = UNIX_EPOCH + Duration::from_secs(5_000);
    o.failure = chain.problem.clone();
    o.negotiated = Some(Negotiated {
        version: "TLS 1.3",
        cipher: "TLS_AES_128_GCM_SHA256".into(),
        group: Some("X25519".into()),
    });
    o.ocsp_checked = true;
    o.chain = Some(Arc::new(chain));
    o
}
