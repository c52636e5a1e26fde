//! A target's TLS material: the trust anchors of its `ca_file` (or the Mozilla roots), its
//! client identity for mTLS, and the PEM files both are read from, each read and built once
//! per load.
//!
//! How the material is used in a handshake is `tls::verifier`'s.

use std::sync::Arc;

use super::raw::At;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::convert::{field, Converter, Defaults};
use super::raw::RawTarget;
use crate::tls::verifier::{self, Roots};

/// What a target verifies servers with and presents to them, with the file contents it was
/// built from (part of the target's spec).
pub(super) struct TlsMaterial {
    pub(super) roots: Arc<Roots>,
    pub(super) client_config: Arc<ClientConfig>,
    pub(super) ca: Option<Arc<[u8]>>,
    pub(super) client_cert: Option<Arc<[u8]>>,
    pub(super) client_key: Option<Arc<[u8]>>,
}

/// Expiry (unix seconds) of the first certificate of a PEM client certificate file.
pub(super) fn not_after(pem: &[u8]) -> Option<i64> {
    let der = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
    crate::tls::cert::parse(der.as_ref())
        .ok()
        .map(|f| f.not_after)
}

/// The rustls config a target presents itself with, and the PEM files it was built from.
struct ClientIdentity {
    config: Arc<ClientConfig>,
    cert: Option<Arc<[u8]>>,
    key: Option<Arc<[u8]>>,
}

impl Converter {
    /// The trust anchors (the target's `ca_file`, else the global one, else the Mozilla roots)
    /// and client identity of target `i`; `None` when either has a problem (reported).
    pub(super) fn tls_material(
        &mut self,
        i: usize,
        t: &RawTarget,
        defaults: &Defaults,
    ) -> Option<TlsMaterial> {
        let ca_file = t.ca_file.as_ref().or(defaults.ca_file.as_ref());
        let ca_field = if t.ca_file.is_some() {
            field(i, "ca_file")
        } else {
            "global.ca_file".to_string()
        };
        let roots = self.roots_for(ca_file, &ca_field);
        let client = self.client_identity(i, t);
        let (roots, client) = (roots?, client?);
        let ca = ca_file.and_then(|c| self.files.get(&self.resolve(&c.value)).cloned()?.ok());
        Some(TlsMaterial {
            roots,
            client_config: client.config,
            ca,
            client_cert: client.cert,
            client_key: client.key,
        })
    }

    /// The rustls config for a target's client identity (none, or both files).
    fn client_identity(&mut self, i: usize, t: &RawTarget) -> Option<ClientIdentity> {
        match (&t.client_cert_file, &t.client_key_file) {
            (None, None) => {
                let config = self
                    .configs
                    .entry(None)
                    .or_insert_with(|| verifier::client_config(None));
                Some(ClientIdentity {
                    config: config.clone(),
                    cert: None,
                    key: None,
                })
            }
            (Some(cert), Some(key)) => self.client_files(i, cert, key),
            (Some(c), None) => {
                self.problem(
                    c,
                    &field(i, "client_cert_file"),
                    "needs client_key_file too",
                );
                None
            }
            (None, Some(k)) => {
                self.problem(
                    k,
                    &field(i, "client_key_file"),
                    "needs client_cert_file too",
                );
                None
            }
        }
    }

    /// A client identity from a certificate and key file, built once per pair of paths.
    fn client_files(
        &mut self,
        i: usize,
        cert: &At<String>,
        key: &At<String>,
    ) -> Option<ClientIdentity> {
        let cert_field = field(i, "client_cert_file");
        let key_field = field(i, "client_key_file");
        let cert_bytes = self.read(cert, &cert_field)?;
        let key_bytes = self.read(key, &key_field)?;
        let chain = self.certs(&cert_bytes, cert, &cert_field)?;
        let private = match PrivateKeyDer::from_pem_slice(&key_bytes) {
            Ok(k) => k,
            Err(e) => {
                self.problem(
                    key,
                    &key_field,
                    format!("no usable private key in {}: {e}", key.value),
                );
                return None;
            }
        };
        let paths = (self.resolve(&cert.value), self.resolve(&key.value));
        let config = match self.configs.get(&Some(paths.clone())) {
            Some(config) => config.clone(),
            None => {
                let certified = match verifier::certified_key(chain, private) {
                    Ok(k) => k,
                    Err(rustls::Error::InconsistentKeys(_)) => {
                        let msg = format!(
                            "{} is not the private key of the certificate in {}",
                            key.value, cert.value
                        );
                        self.problem(key, &key_field, msg);
                        return None;
                    }
                    Err(e) => {
                        self.problem(
                            key,
                            &key_field,
                            format!("{}: unusable private key: {e}", key.value),
                        );
                        return None;
                    }
                };
                let config = verifier::client_config(Some(certified));
                self.configs.insert(Some(paths), config.clone());
                config
            }
        };
        Some(ClientIdentity {
            config,
            cert: Some(cert_bytes),
            key: Some(key_bytes),
        })
    }

    /// Trust anchors for a `ca_file` (or webpki-roots without one), loaded once per path.
    pub(super) fn roots_for(
        &mut self,
        ca_file: Option<&At<String>>,
        field: &str,
    ) -> Option<Arc<Roots>> {
        let key = ca_file.map(|c| self.resolve(&c.value));
        match (self.roots.get(&key).cloned(), ca_file) {
            (Some(Ok(roots)), _) => return Some(roots),
            // Reported again at this use; identical reports (inherited globals) are merged.
            (Some(Err(message)), Some(span)) => {
                self.problem(span, field, message);
                return None;
            }
            _ => {}
        }
        let before = self.problems.len();
        let roots = match ca_file {
            None => Some(Roots::webpki()),
            Some(span) => self.read(span, field).and_then(|bytes| {
                let certs = self.certs(&bytes, span, field)?;
                Roots::from_certs(&certs)
                    .map_err(|m| self.problem(span, field, format!("{}: {m}", span.value)))
                    .ok()
            }),
        };
        let cached = match roots {
            Some(r) => Ok(Arc::new(r)),
            None => Err(self
                .problems
                .get(before)
                .map(|p| p.message.clone())
                .unwrap_or_default()),
        };
        self.roots.insert(key, cached.clone());
        cached.ok()
    }

    fn certs(
        &mut self,
        bytes: &[u8],
        span: &At<String>,
        field: &str,
    ) -> Option<Vec<CertificateDer<'static>>> {
        let parsed: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(bytes).collect();
        match parsed {
            Ok(certs) if certs.is_empty() => {
                self.problem(
                    span,
                    field,
                    format!("{}: no PEM certificates found", span.value),
                );
                None
            }
            Ok(certs) => Some(certs),
            Err(e) => {
                self.problem(span, field, format!("{}: invalid PEM: {e}", span.value));
                None
            }
        }
    }

    /// Reads a file named in the config, once per load; unreadable files are problems at every
    /// place that names them.
    fn read(&mut self, span: &At<String>, field: &str) -> Option<Arc<[u8]>> {
        let path = self.resolve(&span.value);
        let result = match self.files.get(&path) {
            Some(cached) => cached.clone(),
            None => {
                // One copy per load, shared by every target naming the file.
                let read = super::read::read_bounded(&path, super::read::PEM_LIMIT)
                    .map(Arc::from)
                    .map_err(|e| {
                        // Named as the config writes it, like every other problem.
                        e.shown_as(std::path::Path::new(&span.value)).to_string()
                    });
                self.files.insert(path, read.clone());
                read
            }
        };
        result.map_err(|m| self.problem(span, field, m)).ok()
    }
}
