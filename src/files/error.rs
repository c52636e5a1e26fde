//! Why a certificate file could not be read: one sentence per fault, naming the file.
//!
//! What is done about it (a `tls_file_read_success` of 0, a log line) is the watcher's and
//! `metrics`' business.

use std::fmt;
use std::path::PathBuf;

use crate::config::read::ReadError;

/// Why a certificate file gave no certificates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The file itself could not be read (missing, not a regular file, too large, stuck).
    #[error("{0}")]
    Read(String),
    /// A file it refers to (a kubeconfig's `certificate-authority`) could not be read.
    #[error("{field} of {}: {detail}", path.display())]
    Reference {
        path: PathBuf,
        field: String,
        detail: String,
    },
    /// The PKCS#12 password file could not be read.
    #[error("cannot read the password of {}: {detail}", path.display())]
    Password { path: PathBuf, detail: String },
    /// Neither a valid certificate nor a (recognised) bundle of them.
    #[error("{} holds no certificate", path.display())]
    Empty { path: PathBuf },
    /// More certificates than `MAX_CERTS_PER_FILE`.
    #[error("{} holds more than {} certificates, the most a file may hold", path.display(), Count(*limit))]
    TooMany { path: PathBuf, limit: usize },
    /// Invalid PEM (bad base64, unterminated block).
    #[error("{} is not valid PEM: {detail}", path.display())]
    Pem { path: PathBuf, detail: String },
    /// A certificate of the file is not a valid X.509 certificate.
    #[error("certificate {index} of {} is malformed: {detail}", path.display())]
    Malformed {
        path: PathBuf,
        index: usize,
        detail: String,
    },
    /// The PKCS#12 MAC did not verify or its bags did not decrypt: the password is wrong.
    #[error("{} cannot be opened with its password (wrong password, or the file is corrupt)", path.display())]
    WrongPassword { path: PathBuf },
    /// Not a PKCS#12 file this reader understands.
    #[error("{} is not a valid PKCS#12 file: {detail}", path.display())]
    Pkcs12 { path: PathBuf, detail: String },
    /// Not a kubeconfig (YAML with `clusters` and `users`), or one with bad base64.
    #[error("{} is not a valid kubeconfig: {detail}", path.display())]
    Kubeconfig { path: PathBuf, detail: String },
}

impl FileError {
    /// A read error of the file itself.
    pub(crate) fn read(e: ReadError) -> FileError {
        FileError::Read(e.to_string())
    }
}

/// A count with thousands separators ("1,000").
struct Count(usize);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        f.write_str(&out)
    }
}

/// `n` with thousands separators, for messages of this module.
pub(crate) fn count(n: usize) -> String {
    Count(n).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(count(7), "7");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
