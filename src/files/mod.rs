//! Certificates at rest: the files the `files:` globs match (PEM bundles, DER, PKCS#12,
//! kubeconfigs) and the files targets name in `expect_cert_file`, read and parsed into the
//! same `CertFacts` the probes produce.
//!
//! This file owns what one read of a file gives (`CertFile`, `FileSet`), the bounds and the
//! reading itself; the formats live beside it (`pem`, `der`, `pkcs12`, `kubeconfig`) and
//! `watcher` re-reads on each entry's interval and on every config load. Keeping the latest
//! set is `state`'s; series are `metrics`'; which files and how often is `config`'s. Sits above
//! `config` and `tls`, below `state`.

mod der;
mod error;
mod kubeconfig;
mod pem;
mod pkcs12;
pub mod watcher;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use error::FileError;

use crate::config::read;
use crate::config::{CertFileEntry, CertFormat};
use crate::tls::cert::{self, CertFacts};

/// Largest certificate file (and file a kubeconfig names): 4 MiB, room for 1,000 PEM
/// certificates.
pub const CERT_FILE_LIMIT: u64 = 4 << 20;
/// Most certificates one file may hold; a file with more is unreadable (read success 0).
pub const MAX_CERTS_PER_FILE: usize = 1_000;
/// Most files one `files:` glob reads, in path order; the rest are skipped with a warning.
pub const MAX_FILES_PER_GLOB: usize = 10_000;
/// Largest PKCS#12 password file.
const PASSWORD_LIMIT: u64 = 64 << 10;

/// The latest read of one file.
#[derive(Debug, Clone)]
pub struct CertFile {
    pub path: PathBuf,
    /// The `files:` entry that matched it (for its labels); for a file only a target expects,
    /// an entry of its own without labels.
    pub entry: Arc<CertFileEntry>,
    /// Its certificates in file order, or why there are none.
    pub read: Result<Vec<Arc<CertFacts>>, FileError>,
    /// When it was read, unix seconds.
    pub read_at: i64,
}

impl CertFile {
    /// The certificates, none when the read failed.
    pub fn certs(&self) -> &[Arc<CertFacts>] {
        self.read.as_deref().unwrap_or_default()
    }

    /// The file's end-entity certificate: the first that issues none of the others (a
    /// `fullchain.pem` lists it first, a PKCS#12 may list it anywhere); `None` when the read
    /// failed.
    pub fn leaf(&self) -> Option<&Arc<CertFacts>> {
        let certs = self.certs();
        certs
            .iter()
            .find(|c| {
                !certs
                    .iter()
                    .any(|o| !std::ptr::eq(*c, o) && o.issuer_der == c.subject_der)
            })
            .or_else(|| certs.first())
    }
}

/// Every file's latest read.
#[derive(Debug, Clone, Default)]
pub struct FileSet {
    /// The files of `files:` entries: entry order, then path order.
    pub files: Vec<CertFile>,
    /// The files targets name in `expect_cert_file`, by path.
    pub expected: BTreeMap<PathBuf, CertFile>,
}

/// The files `entry`'s glob matches now, in path order, at most `MAX_FILES_PER_GLOB` (a
/// warning says how many were left out).
pub fn matches(entry: &CertFileEntry) -> Vec<PathBuf> {
    let Ok(paths) = glob::glob(&entry.pattern) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| !p.is_dir())
        .collect();
    paths.sort();
    if paths.len() > MAX_FILES_PER_GLOB {
        tracing::warn!(
            pattern = %entry.pattern,
            "the certificate file pattern {} matches {} files; only the first {} in path order are read",
            entry.pattern,
            error::count(paths.len()),
            error::count(MAX_FILES_PER_GLOB)
        );
        paths.truncate(MAX_FILES_PER_GLOB);
    }
    paths
}

/// Reads and parses one file as `entry` says, within the bounds.
pub fn read_file(path: &Path, entry: &Arc<CertFileEntry>) -> CertFile {
    let read_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    CertFile {
        path: path.to_path_buf(),
        entry: entry.clone(),
        read: certificates(path, entry).map(|certs| certs.into_iter().map(Arc::new).collect()),
        read_at,
    }
}

/// The facts of every certificate of the file.
fn certificates(path: &Path, entry: &CertFileEntry) -> Result<Vec<CertFacts>, FileError> {
    let bytes = read::read_bounded(path, CERT_FILE_LIMIT).map_err(FileError::read)?;
    let ders = match entry.format {
        CertFormat::Pem => pem::certificates(path, &bytes, MAX_CERTS_PER_FILE)?,
        CertFormat::Der => der::certificates(path, &bytes)?,
        CertFormat::Pkcs12 => pkcs12::certificates(path, &bytes, &password(entry)?)?,
        CertFormat::Kubeconfig => kubeconfig::certificates(path, &bytes, MAX_CERTS_PER_FILE)?,
    };
    if ders.is_empty() {
        return Err(FileError::Empty {
            path: path.to_path_buf(),
        });
    }
    if ders.len() > MAX_CERTS_PER_FILE {
        return Err(FileError::TooMany {
            path: path.to_path_buf(),
            limit: MAX_CERTS_PER_FILE,
        });
    }
    ders.iter()
        .enumerate()
        .map(|(index, der)| {
            let mut facts = cert::parse(der).map_err(|e| FileError::Malformed {
                path: path.to_path_buf(),
                index,
                detail: e.to_string(),
            })?;
            facts.compact();
            Ok(facts)
        })
        .collect()
}

/// The PKCS#12 password: the first line of `password_file`, empty without one.
fn password(entry: &CertFileEntry) -> Result<String, FileError> {
    let Some(file) = &entry.password_file else {
        return Ok(String::new());
    };
    let bad = |detail: String| FileError::Password {
        path: file.clone(),
        detail,
    };
    let bytes = read::read_bounded(file, PASSWORD_LIMIT).map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("it is not UTF-8 text".to_string()))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;

    /// A self-signed certificate for `cn`, as PEM.
    pub(crate) fn pem_of(cn: &str) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![cn.to_string()]).expect("params");
        let mut params = params;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.self_signed(&key).expect("self-signed").pem()
    }

    /// An entry reading `pattern` as `format`.
    pub(crate) fn entry(pattern: &Path, format: CertFormat) -> Arc<CertFileEntry> {
        Arc::new(CertFileEntry {
            pattern: pattern.to_string_lossy().into_owned(),
            format,
            password_file: None,
            interval: Duration::from_secs(60),
            labels: Vec::new(),
        })
    }

    #[test]
    fn every_certificate_of_a_pem_bundle_is_read_in_file_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("bundle.pem");
        std::fs::write(&p, format!("{}{}", pem_of("one"), pem_of("two"))).expect("write");
        let f = read_file(&p, &entry(&p, CertFormat::Pem));
        let cns: Vec<&str> = f.certs().iter().map(|c| c.cn.as_str()).collect();
        assert_eq!(cns, ["one", "two"]);
        assert_eq!(f.certs()[0].spki_sha256.len(), 64);
    }

    #[test]
    fn a_der_file_holds_one_certificate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("c.der");
        let der =
            rustls_pki_types::CertificateDer::from_pem_slice(pem_of("d").as_bytes()).expect("pem");
        std::fs::write(&p, der.as_ref()).expect("write");
        let f = read_file(&p, &entry(&p, CertFormat::Der));
        assert_eq!(f.certs().len(), 1);
        assert_eq!(f.certs()[0].cn, "d");
    }

    use rustls_pki_types::pem::PemObject;

    #[test]
    fn files_without_certificates_or_with_garbage_fail_in_a_sentence() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("empty.pem");
        std::fs::write(&p, "just text\n").expect("write");
        let f = read_file(&p, &entry(&p, CertFormat::Pem));
        assert_eq!(
            f.read.expect_err("no certificate").to_string(),
            format!("{} holds no certificate", p.display())
        );
        let p = dir.path().join("bad.der");
        std::fs::write(&p, b"\x30\x03\x01\x01\xff").expect("write");
        let e = read_file(&p, &entry(&p, CertFormat::Der))
            .read
            .expect_err("garbage");
        assert!(
            e.to_string()
                .starts_with(&format!("certificate 0 of {} is malformed: ", p.display())),
            "{e}"
        );
        let missing = dir.path().join("missing.pem");
        let e = read_file(&missing, &entry(&missing, CertFormat::Pem))
            .read
            .expect_err("missing");
        assert!(e.to_string().starts_with("cannot read "), "{e}");
    }

    #[test]
    fn a_file_at_the_certificate_bound_is_read_and_one_more_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let one = pem_of("many");
        let p = dir.path().join("at.pem");
        std::fs::write(&p, one.repeat(MAX_CERTS_PER_FILE)).expect("write");
        assert_eq!(
            read_file(&p, &entry(&p, CertFormat::Pem)).certs().len(),
            MAX_CERTS_PER_FILE
        );
        let p = dir.path().join("over.pem");
        std::fs::write(&p, one.repeat(MAX_CERTS_PER_FILE + 1)).expect("write");
        let e = read_file(&p, &entry(&p, CertFormat::Pem))
            .read
            .expect_err("too many");
        assert_eq!(
            e.to_string(),
            format!(
                "{} holds more than 1,000 certificates, the most a file may hold",
                p.display()
            )
        );
    }

    #[test]
    fn a_file_over_the_size_bound_is_refused_naming_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("big.pem");
        std::fs::write(&p, vec![b'a'; (CERT_FILE_LIMIT + 1) as usize]).expect("write");
        let e = read_file(&p, &entry(&p, CertFormat::Pem))
            .read
            .expect_err("too big");
        assert_eq!(
            e.to_string(),
            format!("{} is larger than the 4 MiB limit", p.display())
        );
    }

    #[test]
    fn the_leaf_is_the_certificate_that_issues_no_other() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ca");
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let issuer = rcgen::Issuer::new(ca_params, &ca_key);
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let mut leaf_params =
            rcgen::CertificateParams::new(vec!["leaf.example".to_string()]).expect("params");
        leaf_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "leaf");
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf");
        let p = dir.path().join("ca-first.pem");
        std::fs::write(&p, format!("{}{}", ca.pem(), leaf.pem())).expect("write");
        let f = read_file(&p, &entry(&p, CertFormat::Pem));
        assert_eq!(f.leaf().map(|c| c.cn.as_str()), Some("leaf"));
    }

    #[test]
    fn a_glob_reads_at_most_the_bound_of_files_in_path_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        for i in 0..=MAX_FILES_PER_GLOB {
            std::fs::write(dir.path().join(format!("{i:05}.pem")), "").expect("write");
        }
        let found = matches(&entry(&dir.path().join("*.pem"), CertFormat::Pem));
        assert_eq!(found.len(), MAX_FILES_PER_GLOB);
        assert!(
            found.last().is_some_and(|p| p.ends_with("09999.pem")),
            "{:?}",
            found.last()
        );
    }

    #[test]
    fn a_missing_password_file_is_said_so_and_its_first_line_is_the_password() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("a.p12");
        std::fs::write(&p, b"whatever").expect("write");
        let mut e = (*entry(&p, CertFormat::Pkcs12)).clone();
        e.password_file = Some(dir.path().join("missing.pass"));
        let err = read_file(&p, &Arc::new(e.clone()))
            .read
            .expect_err("no password");
        assert!(
            err.to_string().starts_with(&format!(
                "cannot read the password of {}: cannot read ",
                dir.path().join("missing.pass").display()
            )),
            "{err}"
        );
        std::fs::write(dir.path().join("missing.pass"), "s3cret\nignored\n").expect("write");
        assert_eq!(password(&e).expect("password"), "s3cret");
    }

    #[test]
    fn a_glob_matches_files_in_path_order_without_directories() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["b.pem", "a.pem"] {
            std::fs::write(dir.path().join(name), "x").expect("write");
        }
        std::fs::create_dir(dir.path().join("c.pem")).expect("mkdir");
        let found = matches(&entry(&dir.path().join("*.pem"), CertFormat::Pem));
        let names: Vec<_> = found.iter().filter_map(|p| p.file_name()).collect();
        assert_eq!(names, ["a.pem", "b.pem"]);
    }
}
