//! The `files:` section (certificate files at rest) and a target's `expect_cert_file`:
//! patterns resolved against the config file's directory, formats and intervals checked,
//! labels validated like a target's.
//!
//! Reading and parsing the files, on their own cadence, is `files`' (above this layer); this
//! file only says which files, how to read them and how often.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::convert::{field, Converter, Defaults};
use super::raw::{RawCertFile, RawTarget};
use super::DEFAULT_INTERVAL;

/// Labels a `files:` entry may not set: those its series carry already.
const FILE_LABELS: [&str; 2] = ["path", "index"];

/// How a certificate file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertFormat {
    /// Every `CERTIFICATE` block of a PEM file (a bundle, a `fullchain.pem`).
    Pem,
    /// One DER certificate.
    Der,
    /// The certificates of a PKCS#12 (`.p12`, `.pfx`) file.
    Pkcs12,
    /// The CA and client certificates of a kubeconfig, embedded (`…-data`) or by path.
    Kubeconfig,
}

impl CertFormat {
    /// Every format, as written in the config.
    pub const ALL: [CertFormat; 4] = [
        CertFormat::Pem,
        CertFormat::Der,
        CertFormat::Pkcs12,
        CertFormat::Kubeconfig,
    ];

    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            CertFormat::Pem => "pem",
            CertFormat::Der => "der",
            CertFormat::Pkcs12 => "pkcs12",
            CertFormat::Kubeconfig => "kubeconfig",
        }
    }
}

/// One `files:` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFileEntry {
    /// The glob pattern, resolved against the config file's directory.
    pub pattern: String,
    pub format: CertFormat,
    /// The file holding the PKCS#12 password (its first line); `None`: the empty password.
    pub password_file: Option<PathBuf>,
    /// How often the matching files are re-read.
    pub interval: Duration,
    /// User labels, sorted by name; every series of the entry's files carries them.
    pub labels: Vec<(String, String)>,
}

impl Converter {
    /// The valid `files:` entries, in file order; every problem of the others is reported.
    pub(super) fn cert_files(
        &mut self,
        raw: Vec<RawCertFile>,
        defaults: &Defaults,
    ) -> Vec<Arc<CertFileEntry>> {
        let mut out = Vec::with_capacity(raw.len());
        for (i, f) in raw.into_iter().enumerate() {
            let owner = format!("files[{i}]");
            let before = self.problems.len();
            let pattern = self.resolve(&f.path.value).to_string_lossy().into_owned();
            if let Err(e) = glob::Pattern::new(&pattern) {
                self.problem(
                    &f.path,
                    &format!("{owner}.path"),
                    format!("invalid glob pattern: {e}"),
                );
            }
            let format = match &f.format {
                None => Some(CertFormat::Pem),
                Some(at) => {
                    let found = CertFormat::ALL.into_iter().find(|c| c.name() == at.value);
                    if found.is_none() {
                        self.problem(
                            at,
                            &format!("{owner}.format"),
                            format!(
                                "{:?} is not a certificate file format; expected pem, der, pkcs12 or kubeconfig",
                                at.value
                            ),
                        );
                    }
                    found
                }
            };
            if let (Some(at), Some(f)) = (&f.password_file, format) {
                if f != CertFormat::Pkcs12 {
                    self.problem(
                        at,
                        &format!("{owner}.password_file"),
                        format!("only a pkcs12 file has a password, not a {} file", f.name()),
                    );
                }
            }
            let password_file = f.password_file.as_ref().map(|p| self.resolve(&p.value));
            let interval = match &f.interval {
                Some(at) => self.duration(Some(at), &format!("{owner}.interval"), DEFAULT_INTERVAL),
                None => defaults.interval,
            };
            let labels = self.labels_of(&owner, &f.labels, &FILE_LABELS);
            if self.problems.len() > before {
                continue;
            }
            let (Some(format), Some(interval)) = (format, interval) else {
                continue;
            };
            out.push(Arc::new(CertFileEntry {
                pattern,
                format,
                password_file,
                interval,
                labels,
            }));
        }
        out
    }

    /// Target `i`'s `expect_cert_file`, resolved (relative to the file the target is written
    /// in); `None` when absent or empty (reported).
    pub(super) fn expect_cert_file(&mut self, i: usize, t: &RawTarget) -> Option<PathBuf> {
        let at = t.expect_cert_file.as_ref()?;
        if at.value.trim().is_empty() {
            self.problem(at, &field(i, "expect_cert_file"), "must name a file");
            return None;
        }
        Some(self.resolve(&at.value))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{parse, problems_of};
    use super::*;

    #[test]
    fn file_entries_get_defaults_and_paths_relative_to_the_config() {
        let c = parse(
            "global: {interval: 30s}\nfiles:\n  - path: certs/*.pem\n  - {path: /k/config, format: kubeconfig, interval: 5m, labels: {team: a}}\n",
            Path::new("/etc/tls/config.yml"),
        )
        .expect("valid config");
        let [pem, kube] = c.cert_files.as_slice() else {
            panic!("two entries: {:?}", c.cert_files);
        };
        assert_eq!(pem.pattern, "/etc/tls/certs/*.pem");
        assert_eq!(
            (pem.format, pem.interval),
            (CertFormat::Pem, Duration::from_secs(30))
        );
        assert_eq!(kube.pattern, "/k/config");
        assert_eq!(kube.format, CertFormat::Kubeconfig);
        assert_eq!(kube.interval, Duration::from_secs(300));
        assert_eq!(kube.labels, vec![("team".to_string(), "a".to_string())]);
    }

    #[test]
    fn every_problem_of_a_file_entry_is_reported_where_it_is_written() {
        let yaml = "files:\n  - path: a.pem\n    format: jks\n  - path: b.pem\n    password_file: pw\n    labels: {path: x}\n  - path: c.p12\n    format: pkcs12\n    interval: 0s\n";
        assert_eq!(
            problems_of(yaml),
            vec![
                "t.yml:3:13: files[0].format: \"jks\" is not a certificate file format; expected pem, der, pkcs12 or kubeconfig",
                "t.yml:5:20: files[1].password_file: only a pkcs12 file has a password, not a pem file",
                "t.yml:6:20: files[1].labels.path: label \"path\" is reserved (set by the exporter or Prometheus); choose another name",
                "t.yml:9:15: files[2].interval: must be greater than 0",
            ]
        );
    }

    #[test]
    fn unknown_file_entry_fields_are_refused() {
        let lines = problems_of("files:\n  - path: a.pem\n    passwd: x\n");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("passwd"), "{lines:?}");
    }

    #[test]
    fn expect_cert_file_is_relative_to_the_config_and_part_of_the_spec() {
        let a = parse(
            "targets:\n  - address: a:443\n    expect_cert_file: live/a.pem\n",
            Path::new("/etc/tls/config.yml"),
        )
        .expect("valid config");
        let b = parse(
            "targets:\n  - address: a:443\n",
            Path::new("/etc/tls/config.yml"),
        )
        .expect("valid config");
        assert_eq!(
            a.targets[0].expect_cert_file.as_deref(),
            Some(Path::new("/etc/tls/live/a.pem"))
        );
        assert!(!a.targets[0].same_as(&b.targets[0]));
        assert_ne!(a.targets[0].fingerprint(), b.targets[0].fingerprint());
    }
}
