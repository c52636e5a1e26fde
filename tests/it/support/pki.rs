//! Certificates for tests: CAs, intermediates and leaves with chosen validity, names and keys.

use std::path::Path;
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;

/// A certificate with its key, in both DER and PEM.
pub struct Cert {
    pub der: CertificateDer<'static>,
    pub pem: String,
    pub key_pem: String,
    pub not_before: i64,
    pub not_after: i64,
}

impl Cert {
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        use rustls_pki_types::pem::PemObject;
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("test key PEM")
    }

    /// Hex SHA-256 of the DER, as tls_cert_info reports it.
    pub fn fingerprint(&self) -> String {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.der.as_ref());
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A certificate authority that can sign leaves and intermediates.
pub struct Ca {
    pub cert: Cert,
    issuer: Issuer<'static, KeyPair>,
}

/// Validity and names of a certificate to mint.
#[derive(Clone)]
pub struct Spec {
    pub cn: String,
    pub sans: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub serial: u64,
    /// OCSP responder URL for the AIA extension.
    pub ocsp_url: Option<String>,
    /// URL for the CRL Distribution Points extension.
    pub crl_url: Option<String>,
}

impl Spec {
    /// Valid from a day ago for 90 days, for `localhost` and 127.0.0.1.
    pub fn leaf(cn: &str) -> Spec {
        let now = super::now();
        Spec {
            cn: cn.to_string(),
            sans: vec!["localhost".into(), "127.0.0.1".into()],
            not_before: now - 86_400,
            not_after: now + 90 * 86_400,
            serial: 0x1000 + (now as u64 % 1000),
            ocsp_url: None,
            crl_url: None,
        }
    }

    pub fn valid(mut self, not_before: i64, not_after: i64) -> Spec {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    pub fn sans(mut self, sans: &[&str]) -> Spec {
        self.sans = sans.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn serial(mut self, serial: u64) -> Spec {
        self.serial = serial;
        self
    }

    /// Names an OCSP responder (AIA) for the certificate.
    pub fn ocsp(mut self, url: &str) -> Spec {
        self.ocsp_url = Some(url.to_string());
        self
    }

    /// Names a CRL distribution point for the certificate.
    pub fn crl(mut self, url: &str) -> Spec {
        self.crl_url = Some(url.to_string());
        self
    }

    fn params(&self, ca: bool) -> CertificateParams {
        let mut p = CertificateParams::new(self.sans.clone()).expect("valid SANs");
        p.distinguished_name
            .push(DnType::CommonName, self.cn.clone());
        p.not_before = OffsetDateTime::from_unix_timestamp(self.not_before).expect("valid time");
        p.not_after = OffsetDateTime::from_unix_timestamp(self.not_after).expect("valid time");
        p.serial_number = Some(SerialNumber::from_slice(&self.serial.to_be_bytes()));
        if let Some(url) = &self.crl_url {
            p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.clone()],
            }];
        }
        if let Some(url) = &self.ocsp_url {
            p.custom_extensions.push(aia_ocsp(url));
        }
        if ca {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
        } else {
            p.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
        }
        p
    }
}

/// The Authority Information Access extension naming one OCSP responder.
fn aia_ocsp(url: &str) -> rcgen::CustomExtension {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        assert!(content.len() < 128, "short test URLs only");
        let mut v = vec![tag, content.len() as u8];
        v.extend_from_slice(content);
        v
    }
    // AccessDescription { id-ad-ocsp, [6] uniformResourceIdentifier }.
    let oid = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let mut desc = oid.to_vec();
    desc.extend(tlv(0x86, url.as_bytes()));
    let aia = tlv(0x30, &tlv(0x30, &desc));
    rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], aia)
}

fn finish(spec: &Spec, cert: rcgen::Certificate, key: &KeyPair) -> Cert {
    Cert {
        der: cert.der().clone(),
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_before: spec.not_before,
        not_after: spec.not_after,
    }
}

impl Ca {
    /// A self-signed root valid for ten years around now.
    pub fn root(cn: &str) -> Ca {
        let now = super::now();
        let spec = Spec::leaf(cn)
            .sans(&[])
            .valid(now - 86_400, now + 3650 * 86_400)
            .serial(1);
        Ca::self_signed(&spec)
    }

    pub fn self_signed(spec: &Spec) -> Ca {
        let key = KeyPair::generate().expect("keygen");
        let params = spec.params(true);
        let cert = params.self_signed(&key).expect("self-sign");
        let cert = finish(spec, cert, &key);
        Ca {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, spec: &Spec) -> Ca {
        let key = KeyPair::generate().expect("keygen");
        let params = spec.params(true);
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let cert = finish(spec, cert, &key);
        Ca {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf (server and client auth) signed by this CA, ECDSA P-256.
    pub fn leaf(&self, spec: &Spec) -> Cert {
        let key = KeyPair::generate().expect("keygen");
        let cert = spec
            .params(false)
            .signed_by(&key, &self.issuer)
            .expect("sign");
        finish(spec, cert, &key)
    }

    /// A DER CRL of this CA revoking `serials` (revoked an hour before `this_update`).
    pub fn crl(&self, serials: &[u64], this_update: i64, next_update: i64) -> Vec<u8> {
        let t = |u: i64| OffsetDateTime::from_unix_timestamp(u).expect("valid time");
        let params = rcgen::CertificateRevocationListParams {
            this_update: t(this_update),
            next_update: t(next_update),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&s.to_be_bytes()),
                    revocation_time: t(this_update - 3600),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .expect("sign CRL")
            .der()
            .to_vec()
    }

    /// A leaf with a key and signature digest rcgen cannot make (e.g. `rsa:1024`, `-sha1`),
    /// minted by the openssl command line with this CA.
    pub fn openssl_leaf(&self, dir: &Path, name: &str, newkey: &str, digest: &str) -> Cert {
        let p = |ext: &str| dir.join(format!("{name}.{ext}"));
        std::fs::write(p("ca.pem"), &self.cert.pem).expect("write");
        std::fs::write(p("ca.key"), &self.cert.key_pem).expect("write");
        std::fs::write(
            p("ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write");
        let newkey_args: Vec<&str> = if let Some(curve) = newkey.strip_prefix("ec:") {
            vec!["-newkey", "ec", "-pkeyopt", curve]
        } else {
            vec!["-newkey", newkey]
        };
        run(Command::new("openssl")
            .args(["req", "-new", "-nodes", "-subj", "/CN=localhost"])
            .args(&newkey_args)
            .arg("-keyout")
            .arg(p("key"))
            .arg("-out")
            .arg(p("csr")));
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "30", digest, "-set_serial", "4660"])
            .arg("-in")
            .arg(p("csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-extfile")
            .arg(p("ext"))
            .arg("-out")
            .arg(p("pem")));
        let pem = std::fs::read_to_string(p("pem")).expect("read cert");
        let key_pem = std::fs::read_to_string(p("key")).expect("read key");
        use rustls_pki_types::pem::PemObject;
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("cert PEM");
        let facts = tls_exporter::tls::cert::parse(der.as_ref()).expect("parse");
        Cert {
            der,
            pem,
            key_pem,
            not_before: facts.not_before,
            not_after: facts.not_after,
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .expect("openssl is installed (scripts/install-test-deps)");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// PEM of several certificates, for chain files and ca_files.
pub fn pem_chain(certs: &[&Cert]) -> String {
    certs.iter().map(|c| c.pem.as_str()).collect()
}
