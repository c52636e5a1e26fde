//! Stapled OCSP responses: any bytes checked against the fixture leaf (serial 0x1001) and its
//! CA. The only response the CA ever signed for that leaf says `good`, so whatever verifies
//! must say so too.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tls_exporter::fuzzing::{self, Issuer};
use tls_exporter::tls::ocsp::CertStatus;

static LEAF: &[u8] = include_bytes!("../../tests/fixtures/der/server.der");
static CA: &[u8] = include_bytes!("../../tests/fixtures/der/ca.der");
/// 2025-01-01: inside every fixture's validity.
const NOW: i64 = 1_735_689_600;

fuzz_target!(|data: &[u8]| {
    static ISSUER: OnceLock<Issuer> = OnceLock::new();
    let issuer = ISSUER.get_or_init(|| Issuer::from_cert(CA).expect("the CA fixture parses"));
    if let Ok(stapled) = fuzzing::ocsp(data, LEAF, issuer, NOW) {
        assert_eq!(stapled.status, CertStatus::Good, "a forged status verified");
    }
});
