//! `--web.config.file`: TLS and basic auth for the exporter's own listener, in the Prometheus
//! exporter-toolkit format (`tls_server_config`, `http_server_config`, `basic_auth_users`).
//!
//! This file owns the result, [`WebConfig`], its error, and the entry points: `load` reads the
//! file, `parse` turns its text into a `WebConfig` (every file it names read and the rustls
//! server config built once) or every problem with file, line, column and field like `config`
//! does. `serve` (re-exported from `serve.rs`) runs the router on a listener. Secrets (private
//! keys, bcrypt hashes, passwords) never reach a log line, an error or a `Debug` rendering.
//! Routes, and when to shut down, are left to the caller.
//!
//! The parts, one per file: `schema` mirrors the YAML, `convert` checks it and locates problems,
//! `tls_policy` maps versions, cipher suites and curves onto rustls, `client_auth` holds the
//! client-certificate verifiers, `basic_auth` the users and password checks, `serve` the
//! middleware and the hand-off to `crate::listener`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use rustls::ServerConfig;

use crate::config::{render_problems as render, Problem};

mod basic_auth;
mod client_auth;
mod convert;
mod schema;
mod serve;
#[cfg(test)]
mod test_support;
mod tls_policy;

pub use serve::serve;

use basic_auth::BasicAuth;

/// A loaded, validated web config: what the listener needs, built once.
pub struct WebConfig {
    pub path: PathBuf,
    tls: Option<Tls>,
    auth: Option<Arc<BasicAuth>>,
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
}

/// The listener's TLS: the rustls config and a secret-free description of it.
struct Tls {
    config: Arc<ServerConfig>,
    /// For `Debug` and the startup log: versions and client auth, never key material.
    summary: String,
}

impl WebConfig {
    /// True when the listener speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// True when every request needs basic-auth credentials.
    pub fn basic_auth(&self) -> bool {
        self.auth.is_some()
    }
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("tls", &self.tls.as_ref().map(|t| t.summary.as_str()))
            .field("basic_auth", &self.auth)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why a web config file could not be loaded. Messages name files and fields, never secrets.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("read web config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every problem found in the file, in file order.
    #[error("{}", render(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// Reads and validates the web config file at `path`; relative file names in it are relative to
/// its directory.
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let text = crate::config::read::read_text_bounded(path, crate::config::read::CONFIG_LIMIT)
        .map_err(|e| WebConfigError::Read {
            path: path.to_path_buf(),
            source: e.into_io(),
        })?;
    parse(&text, path)
}

/// Validates web config text; `path` names the file in errors and anchors relative file names.
pub fn parse(text: &str, path: &Path) -> Result<WebConfig, WebConfigError> {
    let invalid = |problems| WebConfigError::Invalid {
        path: path.to_path_buf(),
        problems,
    };
    // An empty file is valid in the toolkit: no TLS, no auth.
    let raw = if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        schema::RawWeb::default()
    } else {
        schema::parse_yaml(text).map_err(|p| invalid(vec![p]))?
    };
    convert::convert(raw, path).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::basic_auth::Secret;
    use super::test_support::{dir_with_pki, ok};

    #[test]
    fn relative_files_load_tls_and_users() {
        let dir = dir_with_pki();
        let hash = bcrypt::hash("secret", 4).expect("hash");
        let w = ok(
            &dir,
            &format!("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: '{hash}'\n"),
        );
        assert!(w.tls() && w.basic_auth());
    }

    #[test]
    fn empty_file_means_no_tls_and_no_auth() {
        let dir = dir_with_pki();
        let w = ok(&dir, "# nothing\n");
        assert!(!w.tls() && !w.basic_auth());
    }

    #[test]
    fn debug_output_redacts_hashes_and_keys() {
        let dir = dir_with_pki();
        let key = std::fs::read_to_string(dir.path().join("key.pem")).expect("read");
        let hash = bcrypt::hash("pw", 4).expect("hash");
        let w = ok(
            &dir,
            &format!("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: '{hash}'\n"),
        );
        let debug = format!("{w:?} {:?}", Secret(hash.clone()));
        assert!(debug.contains("users: [\"alice\"]"), "{debug}");
        assert!(!debug.contains("$2b$"), "{debug}");
        let key_body = key.lines().nth(1).expect("key body");
        assert!(!debug.contains(key_body), "{debug}");
    }
}
