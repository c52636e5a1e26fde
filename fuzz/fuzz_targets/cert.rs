//! Certificate facts: one DER certificate → `CertFacts`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_exporter::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Ok(facts) = fuzzing::cert(data) else {
        return;
    };
    // Documented: bytes after the certificate are an error.
    let mut longer = data.to_vec();
    longer.push(0);
    assert!(
        fuzzing::cert(&longer).is_err(),
        "a trailing byte was accepted"
    );
    assert_eq!(facts.self_issued, facts.subject_der == facts.issuer_der);
});
