//! What the TLS section's names mean to rustls: protocol versions, TLS 1.2 cipher suites and
//! curves (key-exchange groups) narrowing the aws-lc-rs provider, and the rustls
//! `ServerConfig` built from them, the server identity and a client-certificate verifier.
//! Lookups answer with a sentence on failure; `convert` says where in the file it applies.

use std::sync::Arc;

use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::server::danger::ClientCertVerifier;
use rustls::{ServerConfig, SupportedCipherSuite};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS version rustls implements, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Version {
    Tls12,
    Tls13,
}

impl Version {
    /// `min_version` / `max_version` as written (`TLS12`, `TLS13`); the reason otherwise.
    pub(super) fn parse(s: &str) -> Result<Version, String> {
        match s {
            "TLS12" => Ok(Version::Tls12),
            "TLS13" => Ok(Version::Tls13),
            "TLS10" | "TLS11" => Err(format!(
                "{s} is not supported by tls_exporter (rustls implements TLS12 and TLS13)"
            )),
            other => Err(format!(
                "unknown TLS version {other:?}; expected TLS12 or TLS13"
            )),
        }
    }

    /// The toolkit's name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Version::Tls12 => "TLS12",
            Version::Tls13 => "TLS13",
        }
    }
}

/// The accepted range of TLS versions, `min <= max`.
pub(super) struct Versions {
    pub(super) min: Version,
    pub(super) max: Version,
}

impl Versions {
    fn list(&self) -> Vec<&'static rustls::SupportedProtocolVersion> {
        let mut out = Vec::new();
        if self.max == Version::Tls13 {
            out.push(&rustls::version::TLS13);
        }
        if self.min == Version::Tls12 {
            out.push(&rustls::version::TLS12);
        }
        out
    }

    /// `TLS12..TLS13`, for the summary.
    pub(super) fn describe(&self) -> String {
        format!("{}..{}", self.min.name(), self.max.name())
    }
}

/// The TLS 1.2 cipher suite named `name` (Go's names, which are rustls's); the reason
/// otherwise. TLS 1.3 suites are always on and not configurable, as in Go.
pub(super) fn tls12_suite(name: &str) -> Result<SupportedCipherSuite, String> {
    let tls12: Vec<SupportedCipherSuite> = rustls::crypto::aws_lc_rs::ALL_CIPHER_SUITES
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS12)
        .copied()
        .collect();
    if let Some(s) = tls12.iter().find(|s| format!("{:?}", s.suite()) == name) {
        return Ok(*s);
    }
    if name.starts_with("TLS_AES_") || name.starts_with("TLS_CHACHA20_") {
        return Err(format!(
            "{name} is a TLS 1.3 suite; TLS 1.3 suites are not configurable"
        ));
    }
    let known: Vec<String> = tls12.iter().map(|s| format!("{:?}", s.suite())).collect();
    Err(format!(
        "cipher suite {name:?} is not supported by tls_exporter; supported: {}",
        known.join(", ")
    ))
}

/// The key-exchange group of the toolkit's curve name; the reason otherwise.
pub(super) fn kx_group(name: &str) -> Result<&'static dyn SupportedKxGroup, String> {
    use rustls::crypto::aws_lc_rs::kx_group;
    match name {
        "X25519" => Ok(kx_group::X25519),
        "CurveP256" => Ok(kx_group::SECP256R1),
        "CurveP384" => Ok(kx_group::SECP384R1),
        "X25519MLKEM768" => Ok(kx_group::X25519MLKEM768),
        "CurveP521" => Err(
            "CurveP521 is not supported by tls_exporter (rustls has no P-521 key exchange)"
                .to_string(),
        ),
        other => Err(format!(
            "unknown curve {other:?}; expected one of: X25519, CurveP256, CurveP384, X25519MLKEM768"
        )),
    }
}

/// The aws-lc-rs provider narrowed to `tls12_suites` (all TLS 1.3 suites stay) and `groups`;
/// `None` keeps the provider's default for that list.
pub(super) fn provider(
    tls12_suites: Option<Vec<SupportedCipherSuite>>,
    groups: Option<Vec<&'static dyn SupportedKxGroup>>,
) -> CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(suites) = tls12_suites {
        let mut chosen: Vec<SupportedCipherSuite> = provider
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .copied()
            .collect();
        chosen.extend(suites);
        provider.cipher_suites = chosen;
    }
    if let Some(groups) = groups {
        provider.kx_groups = groups;
    }
    provider
}

/// The listener's certificate chain and the private key of its first certificate.
pub(super) struct Identity {
    pub(super) chain: Vec<CertificateDer<'static>>,
    pub(super) key: PrivateKeyDer<'static>,
}

/// Why `server_config` could not build a config.
pub(super) enum BuildError {
    /// The provider has no cipher suite for the chosen versions.
    Versions(rustls::Error),
    /// The key is not the key of the certificate.
    KeyMismatch,
    /// rustls refused the key for another reason.
    Key(rustls::Error),
}

/// The rustls server config: `versions` over `provider`, `verifier` for client certificates,
/// HTTP/1.1 only (hyper here is built without HTTP/2; Prometheus speaks HTTP/1.1 to us), and
/// the server's cipher-suite order when `prefer_server_order`.
pub(super) fn server_config(
    provider: CryptoProvider,
    versions: &Versions,
    verifier: Arc<dyn ClientCertVerifier>,
    identity: Identity,
    prefer_server_order: bool,
) -> Result<ServerConfig, BuildError> {
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions.list())
        .map_err(BuildError::Versions)?;
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain, identity.key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => BuildError::KeyMismatch,
            e => BuildError::Key(e),
        })?;
    config.ignore_client_order = prefer_server_order;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
