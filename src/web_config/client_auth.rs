//! Client certificates: the toolkit's `client_auth_type` policies and the rustls verifiers
//! that implement them, including `client_allowed_sans` (`AllowedSans`, `client_sans`).
//! Reading the client CA and reporting where a setting is wrong is `convert`'s business.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

/// `client_auth_type`, as in Go's `tls.ClientAuthType`.
#[derive(Debug, Clone, Copy)]
pub(super) enum ClientAuth {
    NoClientCert,
    Request,
    RequireAny,
    VerifyIfGiven,
    RequireAndVerify,
}

impl ClientAuth {
    /// The toolkit's name (or its old alias); `None` for anything else.
    pub(super) fn parse(s: &str) -> Option<ClientAuth> {
        Some(match s {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::Request,
            // The toolkit keeps the old name for compatibility.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAny,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
            _ => return None,
        })
    }

    /// The toolkit's name.
    pub(super) fn name(self) -> &'static str {
        match self {
            ClientAuth::NoClientCert => "NoClientCert",
            ClientAuth::Request => "RequestClientCert",
            ClientAuth::RequireAny => "RequireAnyClientCert",
            ClientAuth::VerifyIfGiven => "VerifyClientCertIfGiven",
            ClientAuth::RequireAndVerify => "RequireAndVerifyClientCert",
        }
    }

    /// True when the policy validates client certificates against a CA.
    pub(super) fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify
        )
    }

    /// True when every client must present a certificate, so SANs can be required.
    pub(super) fn requires_cert(self) -> bool {
        matches!(self, ClientAuth::RequireAny | ClientAuth::RequireAndVerify)
    }
}

/// The verifier for `kind`: `roots` anchor the verifying policies (an empty store when `None`,
/// which rustls refuses), and `allowed_sans`, when set, must match one of the certificate's.
pub(super) fn verifier(
    kind: ClientAuth,
    roots: Option<Arc<RootCertStore>>,
    allowed_sans: Option<Vec<String>>,
) -> Result<Arc<dyn ClientCertVerifier>, VerifierBuilderError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let algs = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ClientCertVerifier> = match kind {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::Request => Arc::new(AnyClientCert {
            mandatory: false,
            algs,
        }),
        ClientAuth::RequireAny => Arc::new(AnyClientCert {
            mandatory: true,
            algs,
        }),
        ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify => {
            let roots = roots.unwrap_or_else(|| Arc::new(RootCertStore::empty()));
            let mut builder = WebPkiClientVerifier::builder_with_provider(roots, provider);
            if matches!(kind, ClientAuth::VerifyIfGiven) {
                builder = builder.allow_unauthenticated();
            }
            builder.build()?
        }
    };
    Ok(match allowed_sans {
        Some(allowed) => Arc::new(AllowedSans {
            inner: verifier,
            allowed,
        }),
        None => verifier,
    })
}

/// `RequestClientCert` / `RequireAnyClientCert`: asks for a certificate and checks the client
/// holds its key, but does not validate the chain (as in Go).
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// `client_allowed_sans`: the client certificate must carry one of these SANs (DNS, e-mail, IP
/// or URI), exactly.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let sans = client_sans(end_entity.as_ref()).ok_or(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding,
        ))?;
        if sans.iter().any(|s| self.allowed.contains(s)) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The SANs of a DER certificate as strings (IP addresses in their usual notation).
fn client_sans(der: &[u8]) -> Option<Vec<String>> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let Some(san) = cert.subject_alternative_name().ok()? else {
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                out.push((*s).to_string());
            }
            GeneralName::IPAddress(bytes) => {
                if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                    out.push(std::net::Ipv4Addr::from(v4).to_string());
                } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                    out.push(std::net::Ipv6Addr::from(v6).to_string());
                }
            }
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::routing::get;
    use axum::Router;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::PrivateKeyDer;

    use super::super::serve;
    use super::super::test_support::ok;
    use super::*;

    /// A CA, and leaves it signed: (CA PEM, [(leaf PEM, key PEM)]) for the given SAN lists.
    fn ca_with_leaves(leaves: &[&[&str]]) -> (String, Vec<(String, String)>) {
        let ca_key = rcgen::KeyPair::generate().expect("keygen");
        let mut params = rcgen::CertificateParams::new(Vec::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).expect("self-sign");
        let issuer = rcgen::Issuer::new(params, ca_key);
        let leaves = leaves
            .iter()
            .map(|sans| {
                let key = rcgen::KeyPair::generate().expect("keygen");
                let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
                let cert = rcgen::CertificateParams::new(sans)
                    .expect("params")
                    .signed_by(&key, &issuer)
                    .expect("sign");
                (cert.pem(), key.serialize_pem())
            })
            .collect();
        (ca.pem(), leaves)
    }

    /// Connects to `addr` over TLS trusting `ca`, optionally with a client identity, and
    /// returns the HTTP status of `GET /` (an error when the handshake or request fails).
    async fn mtls_get(
        addr: std::net::SocketAddr,
        ca: &str,
        identity: Option<&(String, String)>,
    ) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(c.expect("CA PEM")).expect("anchor");
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(cert.as_bytes())
                        .collect::<Result<Vec<_>, _>>()
                        .expect("cert PEM"),
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key PEM"),
                )
                .expect("client identity"),
        };
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut raw = Vec::new();
        if let Err(e) = tls.read_to_end(&mut raw).await {
            if raw.is_empty() {
                return Err(e);
            }
        }
        let raw = String::from_utf8_lossy(&raw).into_owned();
        Ok(raw
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string())
    }

    #[tokio::test]
    async fn client_certificates_are_verified_and_their_sans_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca, leaves) =
            ca_with_leaves(&[&["localhost"], &["scraper.example"], &["intruder.example"]]);
        let (server, allowed, other) = (&leaves[0], &leaves[1], &leaves[2]);
        std::fs::write(dir.path().join("ca.pem"), &ca).expect("write");
        std::fs::write(dir.path().join("cert.pem"), &server.0).expect("write");
        std::fs::write(dir.path().join("key.pem"), &server.1).expect("write");
        let web = ok(
            &dir,
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  client_allowed_sans: [scraper.example]\n",
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new().route("/", get(|| async { "ok" }));
        let server_task = tokio::spawn(serve(
            listener,
            app,
            Some(Arc::new(web)),
            crate::listener::Limits::default(),
            async {
                let _ = stop_rx.await;
            },
        ));
        let status = mtls_get(addr, &ca, Some(allowed))
            .await
            .expect("allowed client");
        assert_eq!(status, "200");
        assert!(
            mtls_get(addr, &ca, Some(other)).await.is_err(),
            "a certificate without an allowed SAN was accepted"
        );
        assert!(
            mtls_get(addr, &ca, None).await.is_err(),
            "a client without a certificate was accepted"
        );
        // The listener survived the failed handshakes, and stops when told to.
        assert_eq!(
            mtls_get(addr, &ca, Some(allowed)).await.expect("again"),
            "200"
        );
        let _ = stop_tx.send(());
        tokio::time::timeout(Duration::from_secs(5), server_task)
            .await
            .expect("serve returns after shutdown")
            .expect("task")
            .expect("serve");
    }
}
