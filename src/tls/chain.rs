//! The verdict on a certificate chain: the certificates sent (as parsed facts), whether the
//! chain is valid for the server name and why not, and its hygiene (order, completeness).
//!
//! Produced by `verifier::judge` from a probe's handshake or a legacy scan's; read by the
//! state (which chain an endpoint shows), the metrics and the status page.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::tls::cert::CertFacts;
use crate::verdict::Failure;

/// The certificates the server sent and what we concluded about them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    /// Every certificate the server sent that parsed, with its depth (0 is the leaf). A
    /// certificate that did not parse is absent here but counted in `sent`.
    pub certs: Vec<(usize, Arc<CertFacts>)>,
    /// Number of certificates the server sent.
    pub sent: usize,
    /// `None` when the chain is valid for the server name, else why not.
    pub problem: Option<Failure>,
    /// Earliest not-after along the verified path (unix seconds), only for a valid chain.
    pub path_expiry: Option<i64>,
    /// The verified path, leaf first: the certificates sent that it uses, then the trust anchor
    /// when we have its certificate (a `ca_file`; webpki-roots carry none). Empty unless the
    /// chain is valid. Not stored: only a fresh `/probe` renders it (`metrics::ssl_exporter`).
    #[serde(skip)]
    pub path: Vec<Arc<CertFacts>>,
    /// Each certificate sent is issued by the one after it.
    pub order_valid: bool,
    /// The issuer of the last certificate sent is neither among those sent nor a trust anchor:
    /// the server forgot an intermediate.
    pub incomplete: bool,
}
