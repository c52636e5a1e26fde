//! PKCS#12 (`.p12`, `.pfx`) files: the certificate bags, in file order, decrypted with the
//! entry's password (p12-keystore: pure Rust; PBES2/AES as OpenSSL 3 writes, and the legacy
//! PBES1 3DES/RC2 of older tools).
//!
//! Private keys are decrypted by the library along the way but never kept: only certificates
//! leave this file.

use std::path::Path;

use p12_keystore::error::Error as P12Error;
use p12_keystore::Pkcs12Archive;

use super::FileError;

/// The DER of every certificate bag.
pub(crate) fn certificates(
    path: &Path,
    bytes: &[u8],
    password: &str,
) -> Result<Vec<Vec<u8>>, FileError> {
    let archive = Pkcs12Archive::from_pkcs12(bytes, password).map_err(|e| match e {
        // A MAC that does not verify, or a bag that does not decrypt to valid padding: the
        // password (what the MAC and the keys derive from) is wrong.
        P12Error::MacError(_) | P12Error::UnpadError => FileError::WrongPassword {
            path: path.to_path_buf(),
        },
        other => FileError::Pkcs12 {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    })?;
    Ok(archive
        .certs
        .into_iter()
        .map(|bag| bag.cert.as_der().to_vec())
        .collect())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;

    /// A PKCS#12 of a fresh certificate (`cn`) and its key, made by `openssl pkcs12 -export`
    /// with `password` and the extra `args`.
    fn export(dir: &Path, cn: &str, password: &str, args: &[&str]) -> PathBuf {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![cn.to_string()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).expect("cert");
        let (c, k, out) = (
            dir.join("c.pem"),
            dir.join("k.pem"),
            dir.join(format!("{cn}.p12")),
        );
        std::fs::write(&c, cert.pem()).expect("write cert");
        std::fs::write(&k, key.serialize_pem()).expect("write key");
        let status = Command::new("openssl")
            .args(["pkcs12", "-export", "-in"])
            .arg(&c)
            .arg("-inkey")
            .arg(&k)
            .arg("-out")
            .arg(&out)
            .arg("-passout")
            .arg(format!("pass:{password}"))
            .args(args)
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl pkcs12 -export failed");
        out
    }

    fn cns(ders: &[Vec<u8>]) -> Vec<String> {
        ders.iter()
            .map(|d| crate::tls::cert::parse(d).expect("certificate").cn)
            .collect()
    }

    #[test]
    fn an_openssl_3_pkcs12_opens_with_its_password() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = export(dir.path(), "aes", "s3cret", &[]);
        let bytes = std::fs::read(&p).expect("read");
        assert_eq!(
            cns(&certificates(&p, &bytes, "s3cret").expect("opens")),
            ["aes"]
        );
    }

    #[test]
    fn a_legacy_3des_pkcs12_and_an_empty_password_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let legacy = [
            "-certpbe",
            "PBE-SHA1-3DES",
            "-keypbe",
            "PBE-SHA1-3DES",
            "-macalg",
            "sha1",
        ];
        let p = export(dir.path(), "tripledes", "", &legacy);
        let bytes = std::fs::read(&p).expect("read");
        assert_eq!(
            cns(&certificates(&p, &bytes, "").expect("opens")),
            ["tripledes"]
        );
    }

    #[test]
    fn a_wrong_password_is_said_so() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = export(dir.path(), "locked", "right", &[]);
        let bytes = std::fs::read(&p).expect("read");
        let e = certificates(&p, &bytes, "wrong").expect_err("wrong password");
        assert_eq!(
            e.to_string(),
            format!(
                "{} cannot be opened with its password (wrong password, or the file is corrupt)",
                p.display()
            )
        );
    }

    #[test]
    fn bytes_that_are_not_pkcs12_are_refused() {
        let e = certificates(Path::new("x.p12"), b"not der", "").expect_err("garbage");
        assert!(
            e.to_string()
                .starts_with("x.p12 is not a valid PKCS#12 file: "),
            "{e}"
        );
    }
}
