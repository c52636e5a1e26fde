//! Test fixtures for the status pages: a state with targets parsed from YAML, and outcomes with
//! chosen chains and failures. Nothing here runs outside `cargo test`.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::config::Target;
use crate::probe::outcome::{AddressOutcome, Negotiated, Phases, ProbeOutcome};
use crate::probe::Check;
use crate::state::State;
use crate::tls::cert::CertFacts;
use crate::tls::chain::Chain;
use crate::verdict::{Failure, FailureReason};

/// The pages' clock in tests.
pub(super) const NOW: i64 = 1_700_000_000;
pub(super) const DAY: i64 = 86_400;

/// A state holding the targets of `yaml` (a whole config file), with the targets.
pub(super) fn state(yaml: &str) -> (State, Vec<Arc<Target>>) {
    let config = crate::config::parse(yaml, std::path::Path::new("t.yml"))
        .unwrap_or_else(|e| panic!("test config: {e}"));
    let state = State::default();
    state.set_targets(&config.targets);
    (state, config.targets)
}

pub(super) fn cert(cn: &str, not_before: i64, not_after: i64) -> CertFacts {
    CertFacts {
        not_before,
        not_after,
        cn: cn.to_string(),
        subject: format!("CN={cn}"),
        issuer: "CN=Test \"Root\"".to_string(),
        serial: "10:00".to_string(),
        fingerprint_sha256: "ab".repeat(32),
        spki_sha256: String::new(),
        dns_names: format!("{cn},127.0.0.1"),
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

fn finished(mut o: ProbeOutcome) -> ProbeOutcome {
    o.finished_at = UNIX_EPOCH + Duration::from_secs(u64::try_from(NOW - 10).unwrap_or(0));
    o
}

/// A successful TLS 1.3 handshake whose leaf (`cn`) is valid from `not_before` to `not_after`.
pub(super) fn healthy(cn: &str, not_before: i64, not_after: i64) -> ProbeOutcome {
    let mut o = ProbeOutcome::new(Phases::default(), Duration::from_millis(12));
    o.handshake_ok = true;
    o.negotiated = Some(Negotiated {
        version: "TLS 1.3",
        cipher: "TLS13_AES_128_GCM_SHA256".into(),
        group: Some("X25519".into()),
    });
    o.chain = Some(Arc::new(Chain {
        certs: vec![(0, Arc::new(cert(cn, not_before, not_after)))],
        sent: 1,
        problem: None,
        path_expiry: Some(not_after),
        path: Vec::new(),
        order_valid: true,
        incomplete: false,
    }));
    finished(o)
}

/// A probe that failed with `reason` before it found anything.
pub(super) fn failing(reason: FailureReason, detail: &str) -> ProbeOutcome {
    finished(ProbeOutcome::failed(
        Failure::new(reason, detail),
        Phases::default(),
        Duration::from_millis(3),
    ))
}

/// Records `outcome` as the latest probe of `target`.
pub(super) fn record(state: &State, target: &Arc<Target>, outcome: ProbeOutcome) {
    let one = AddressOutcome {
        ip: None,
        outcome: Arc::new(outcome),
    };
    state.record(target, Check::Probe, vec![one]);
}
