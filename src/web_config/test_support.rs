//! Test-only helpers shared by the web config's unit tests: a directory with a self-signed
//! certificate and key, and `parse` wrappers that expect success or return the rendered error
//! lines. The tests themselves live beside the code they test.

use super::{parse, WebConfig};

/// A self-signed P-256 certificate and its key, in PEM.
pub(super) fn cert_and_key(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("keygen");
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("self-sign");
    (cert.pem(), key.serialize_pem())
}

/// A temporary directory holding `cert.pem` and `key.pem` for `localhost`.
pub(super) fn dir_with_pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = cert_and_key("localhost");
    std::fs::write(dir.path().join("cert.pem"), cert).expect("write");
    std::fs::write(dir.path().join("key.pem"), key).expect("write");
    dir
}

/// Parses `yaml` as `web.yml` in `dir`, returning the rendered error lines.
pub(super) fn errors(dir: &tempfile::TempDir, yaml: &str) -> Vec<String> {
    let path = dir.path().join("web.yml");
    match parse(yaml, &path) {
        Ok(w) => panic!("expected an error, got {w:?}"),
        Err(e) => e
            .to_string()
            .lines()
            .map(|l| l.replace(&dir.path().display().to_string(), "DIR"))
            .collect(),
    }
}

/// Parses `yaml` as `web.yml` in `dir`, panicking with the rendered problems on failure.
pub(super) fn ok(dir: &tempfile::TempDir, yaml: &str) -> WebConfig {
    parse(yaml, &dir.path().join("web.yml")).unwrap_or_else(|e| panic!("{e}"))
}
