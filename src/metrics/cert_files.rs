//! Renders certificates at rest: the `tls_file_*` families of every file the `files:` entries
//! match (labelled `path`, the entry's labels, and `index` per certificate), and per target
//! with an `expect_cert_file` whether the leaf it serves is the one in that file.
//!
//! Pure function of the state's `FileSet`, the target entries and the scrape time, like the
//! rest of `metrics`; reading the files is `files`'.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::collector::{bool_value, depth_label, itoa_cache, label_set, with_ip};
use super::*;
use crate::files::{CertFile, FileSet};
use crate::state::Entry;

/// Every file family, then the expected-certificate families of the targets.
pub(super) fn render(e: &mut Encoder, set: &FileSet, entries: &[Arc<Entry>], now: SystemTime) {
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let labeled: Vec<(String, &CertFile)> = set.files.iter().map(|f| (labels(f), f)).collect();
    e.family(&FILE_READ_SUCCESS);
    for (l, f) in &labeled {
        e.sample(&FILE_READ_SUCCESS, l, &[], bool_value(f.read.is_ok()));
    }
    e.family(&FILE_READ_TIMESTAMP);
    for (l, f) in &labeled {
        e.sample(&FILE_READ_TIMESTAMP, l, &[], f.read_at as f64);
    }
    e.family(&FILE_CERTIFICATES);
    for (l, f) in &labeled {
        if let Ok(certs) = &f.read {
            e.sample(&FILE_CERTIFICATES, l, &[], certs.len() as f64);
        }
    }
    let mut index = itoa_cache();
    for family in [
        &FILE_CERT_NOT_AFTER,
        &FILE_CERT_NOT_BEFORE,
        &FILE_CERT_DAYS_TO_EXPIRY,
    ] {
        e.family(family);
        for (l, f) in &labeled {
            for (i, c) in f.certs().iter().enumerate() {
                let value = match family.name {
                    n if n == FILE_CERT_NOT_BEFORE.name => c.not_before as f64,
                    n if n == FILE_CERT_DAYS_TO_EXPIRY.name => {
                        (c.not_after as f64 - now_s) / 86_400.0
                    }
                    _ => c.not_after as f64,
                };
                e.sample(family, l, &[("index", depth_label(&mut index, i))], value);
            }
        }
    }
    e.family(&FILE_CERT_INFO);
    for (l, f) in &labeled {
        for (i, c) in f.certs().iter().enumerate() {
            e.sample(
                &FILE_CERT_INFO,
                l,
                &[
                    ("index", depth_label(&mut index, i)),
                    ("cn", &c.cn),
                    ("subject", &c.subject),
                    ("issuer", &c.issuer),
                    ("serial", &c.serial),
                    ("fingerprint_sha256", &c.fingerprint_sha256),
                    ("dns_names", &c.dns_names),
                    ("key", &c.key),
                    ("signature_algorithm", &c.signature_algorithm),
                ],
                1.0,
            );
        }
    }
    expected(e, set, entries);
}

/// `path="…"` and the entry's labels, escaped.
fn labels(f: &CertFile) -> String {
    let mut s = String::with_capacity(16 + f.path.as_os_str().len());
    let _ = write!(s, "path=\"{}\"", escape_label(&f.path.to_string_lossy()));
    for (k, v) in &f.entry.labels {
        let _ = write!(s, ",{k}=\"{}\"", escape_label(v));
    }
    s
}

/// Per address probed of each target with an `expect_cert_file`: whether its file was read,
/// the file leaf's not-before, and whether the served leaf is that leaf.
fn expected(e: &mut Encoder, set: &FileSet, entries: &[Arc<Entry>]) {
    let with: Vec<(String, &Entry, &CertFile)> = entries
        .iter()
        .filter_map(|en| {
            let file = set.expected.get(en.target.expect_cert_file.as_deref()?)?;
            Some((label_set(en), &**en, file))
        })
        .collect();
    e.family(&CERT_EXPECTED_FILE_READ_SUCCESS);
    for (l, _, f) in &with {
        e.sample(
            &CERT_EXPECTED_FILE_READ_SUCCESS,
            l,
            &[],
            bool_value(f.leaf().is_some()),
        );
    }
    e.family(&CERT_EXPECTED_NOT_BEFORE);
    for (l, en, f) in &with {
        if let Some(leaf) = f.leaf() {
            for p in &en.latest {
                e.sample(
                    &CERT_EXPECTED_NOT_BEFORE,
                    &with_ip(l, p.ip),
                    &[],
                    leaf.not_before as f64,
                );
            }
        }
    }
    e.family(&CERT_MATCHES_EXPECTED);
    for (l, en, f) in &with {
        let Some(leaf) = f.leaf() else { continue };
        for p in &en.latest {
            let served = p
                .chain
                .as_deref()
                .and_then(|c| c.certs.iter().find(|(depth, _)| *depth == 0));
            // A chain restored from an older build's storage has no key digest: unknown, not 0.
            if let Some((_, served)) = served.filter(|(_, c)| !c.spki_sha256.is_empty()) {
                let same = served.spki_sha256 == leaf.spki_sha256 && served.serial == leaf.serial;
                e.sample(
                    &CERT_MATCHES_EXPECTED,
                    &with_ip(l, p.ip),
                    &[],
                    bool_value(same),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::{CertFileEntry, CertFormat};
    use crate::files::FileError;
    use crate::metrics::test_support::facts;

    fn file(
        path: &str,
        read: Result<Vec<Arc<crate::tls::cert::CertFacts>>, FileError>,
    ) -> CertFile {
        CertFile {
            path: PathBuf::from(path),
            entry: Arc::new(CertFileEntry {
                pattern: path.to_string(),
                format: CertFormat::Pem,
                password_file: None,
                interval: Duration::from_secs(60),
                labels: vec![("team".to_string(), "a".to_string())],
            }),
            read,
            read_at: 1_700_000_000,
        }
    }

    #[test]
    fn file_series_carry_path_labels_and_index_and_a_failed_read_has_only_its_success() {
        let mut c = facts("a.example", 1_700_000_000 + 86_400 * 10);
        c.not_before = 1_690_000_000;
        let set = FileSet {
            files: vec![
                file("/c/a.pem", Ok(vec![Arc::new(c)])),
                file(
                    "/c/b.pem",
                    Err(FileError::Empty {
                        path: "/c/b.pem".into(),
                    }),
                ),
            ],
            expected: BTreeMap::new(),
        };
        let mut e = Encoder::with_capacity(1024);
        render(
            &mut e,
            &set,
            &[],
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        let lines: Vec<&str> = e.out.lines().filter(|l| !l.starts_with('#')).collect();
        let a = "path=\"/c/a.pem\",team=\"a\"";
        for want in [
            format!("tls_file_read_success{{{a}}} 1"),
            "tls_file_read_success{path=\"/c/b.pem\",team=\"a\"} 0".to_string(),
            format!("tls_file_certificates{{{a}}} 1"),
            format!("tls_file_cert_not_after_timestamp_seconds{{{a},index=\"0\"}} 1700864000"),
            format!("tls_file_cert_not_before_timestamp_seconds{{{a},index=\"0\"}} 1690000000"),
            format!("tls_file_cert_days_to_expiry{{{a},index=\"0\"}} 10"),
        ] {
            assert!(
                lines.contains(&want.as_str()),
                "missing {want} in\n{}",
                e.out
            );
        }
        assert!(
            !lines
                .iter()
                .any(|l| l.starts_with("tls_file_cert") && l.contains("b.pem")),
            "{}",
            e.out
        );
        let info = lines
            .iter()
            .find(|l| l.starts_with("tls_file_cert_info{"))
            .expect("info series");
        assert!(
            info.starts_with(&format!(
                "tls_file_cert_info{{{a},index=\"0\",cn=\"a.example\","
            )),
            "{info}"
        );
    }
}
