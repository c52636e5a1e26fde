//! PEM files: every `CERTIFICATE` block, in file order (other blocks, such as a private key
//! beside the certificate, are skipped).
//!
//! Turning the DER into facts is `mod.rs`'.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::FileError;

/// The DER of every certificate block of `bytes`, at most `limit` + 1 of them (the caller
/// judges the count).
pub(crate) fn certificates(
    path: &Path,
    bytes: &[u8],
    limit: usize,
) -> Result<Vec<Vec<u8>>, FileError> {
    let mut out = Vec::new();
    for item in CertificateDer::pem_slice_iter(bytes).take(limit.saturating_add(1)) {
        let der = item.map_err(|e| FileError::Pem {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        out.push(der.as_ref().to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::pem_of;
    use super::*;

    #[test]
    fn every_certificate_block_is_found_and_keys_are_skipped() {
        let (a, b) = (pem_of("a.example"), pem_of("b.example"));
        let text = format!("{a}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{b}");
        let found = certificates(Path::new("x.pem"), text.as_bytes(), 10).expect("valid PEM");
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn bad_base64_is_invalid_pem_naming_the_file() {
        let text = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let e = certificates(Path::new("x.pem"), text.as_bytes(), 10).expect_err("invalid");
        assert!(e.to_string().starts_with("x.pem is not valid PEM: "), "{e}");
    }
}
