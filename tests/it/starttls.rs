//! STARTTLS against real servers: exim4 (SMTP), dovecot (IMAP, POP3, ManageSieve), vsftpd
//! (FTP), PostgreSQL, slapd (LDAP), prosody (XMPP), MariaDB (MySQL), and an in-test NNTP
//! server. Each test upgrades with `probe::starttls::upgrade`, then completes a real rustls
//! handshake that verifies the server's certificate against our test CA, as the probe does;
//! the same server configured without TLS must answer `Refused`.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use tls_exporter::config::StartTls;
use tls_exporter::probe::starttls::{self, UpgradeError};

use crate::support::pki::{Ca, Cert, Spec};
use crate::support::starttls_servers::{self as servers, Tls};
use crate::support::WAIT;

/// A CA and a `localhost` leaf it signed.
fn pki() -> (Ca, Cert) {
    let ca = Ca::root("starttls test CA");
    let leaf = ca.leaf(&Spec::leaf("localhost"));
    (ca, leaf)
}

/// Connects, upgrades and handshakes (verifying `localhost` against `ca`); returns the leaf
/// the server sent, or the upgrade's error, or panics on a failed handshake.
async fn probe(
    addr: SocketAddr,
    proto: StartTls,
    ca: &Ca,
) -> Result<CertificateDer<'static>, UpgradeError> {
    let run = async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        starttls::upgrade(&mut tcp, proto, "localhost").await?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert.der.clone()).expect("test CA");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("default versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").expect("server name");
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap_or_else(|e| panic!("{proto} TLS handshake after the upgrade: {e}"));
        let (_, session) = tls.get_ref();
        let leaf = session
            .peer_certificates()
            .and_then(|c| c.first())
            .expect("server sent a certificate")
            .clone();
        Ok(leaf)
    };
    tokio::time::timeout(WAIT, run)
        .await
        .unwrap_or_else(|_| panic!("{proto} upgrade and handshake with {addr} took over {WAIT:?}"))
}

/// The upgrade and handshake succeed and the server presents our leaf.
async fn assert_upgrades(addr: SocketAddr, proto: StartTls, ca: &Ca, leaf: &Cert, log: &str) {
    match probe(addr, proto, ca).await {
        Ok(sent) => assert_eq!(sent, leaf.der, "{proto} server sent another certificate"),
        Err(e) => panic!("{proto} upgrade failed: {e}\n{log}"),
    }
}

/// The server refuses the upgrade in its own protocol.
async fn assert_refused(addr: SocketAddr, proto: StartTls, ca: &Ca, log: &str) {
    match probe(addr, proto, ca).await {
        Err(UpgradeError::Refused(m)) => eprintln!("{proto} refused as expected: {m}"),
        Err(e) => panic!("{proto}: expected a refusal, got {e:?}\n{log}"),
        Ok(_) => panic!("{proto}: expected a refusal, the upgrade succeeded\n{log}"),
    }
}

#[tokio::test]
async fn smtp_exim_upgrades_and_presents_our_certificate() {
    let (ca, leaf) = pki();
    let s = servers::exim(&leaf, Tls::On);
    assert_upgrades(s.addr, StartTls::Smtp, &ca, &leaf, &s.log()).await;
}

#[tokio::test]
async fn smtp_exim_not_advertising_starttls_is_refused() {
    let (ca, leaf) = pki();
    let s = servers::exim(&leaf, Tls::Off);
    assert_refused(s.addr, StartTls::Smtp, &ca, &s.log()).await;
}

#[tokio::test]
async fn imap_pop3_sieve_dovecot_upgrade_and_present_our_certificate() {
    let (ca, leaf) = pki();
    let s = servers::dovecot(&leaf, Tls::On);
    let log = s.daemon.log();
    assert_upgrades(s.daemon.addr, StartTls::Imap, &ca, &leaf, &log).await;
    assert_upgrades(s.pop3, StartTls::Pop3, &ca, &leaf, &log).await;
    assert_upgrades(s.sieve, StartTls::Sieve, &ca, &leaf, &log).await;
}

#[tokio::test]
async fn imap_pop3_sieve_dovecot_without_ssl_are_refused() {
    let (ca, leaf) = pki();
    let s = servers::dovecot(&leaf, Tls::Off);
    let log = s.daemon.log();
    assert_refused(s.daemon.addr, StartTls::Imap, &ca, &log).await;
    assert_refused(s.pop3, StartTls::Pop3, &ca, &log).await;
    assert_refused(s.sieve, StartTls::Sieve, &ca, &log).await;
}

#[tokio::test]
async fn ftp_vsftpd_upgrades_and_presents_our_certificate() {
    let (ca, leaf) = pki();
    let s = servers::vsftpd(&leaf, Tls::On);
    assert_upgrades(s.addr, StartTls::Ftp, &ca, &leaf, &s.log()).await;
}

#[tokio::test]
async fn ftp_vsftpd_without_ssl_is_refused() {
    let (ca, leaf) = pki();
    let s = servers::vsftpd(&leaf, Tls::Off);
    assert_refused(s.addr, StartTls::Ftp, &ca, &s.log()).await;
}

#[tokio::test]
async fn postgres_upgrades_and_presents_our_certificate() {
    let (ca, leaf) = pki();
    let s = servers::postgres(&leaf, Tls::On);
    assert_upgrades(s.addr, StartTls::Postgres, &ca, &leaf, &s.log()).await;
}

#[tokio::test]
async fn postgres_with_ssl_off_is_refused() {
    let (ca, leaf) = pki();
    let s = servers::postgres(&leaf, Tls::Off);
    assert_refused(s.addr, StartTls::Postgres, &ca, &s.log()).await;
}

#[tokio::test]
async fn ldap_slapd_upgrades_and_presents_our_certificate() {
    let (ca, leaf) = pki();
    let s = servers::slapd(&leaf, Tls::On);
    assert_upgrades(s.addr, StartTls::Ldap, &ca, &leaf, &s.log()).await;
}

#[tokio::test]
async fn ldap_slapd_without_tls_is_refused() {
    let (ca, leaf) = pki();
    let s = servers::slapd(&leaf, Tls::Off);
    assert_refused(s.addr, StartTls::Ldap, &ca, &s.log()).await;
}

#[tokio::test]
async fn xmpp_prosody_upgrades_and_presents_our_certificate() {
    let (ca, leaf) = pki();
    let s = servers::prosody(&leaf, Tls::On);
    assert_upgrades(s.addr, StartTls::Xmpp, &ca, &leaf, &s.log()).await;
}

#[tokio::test]
async fn xmpp_prosody_without_tls_module_is_refused() {
    let (ca, leaf) = pki();
    let s = servers::prosody(&leaf, Tls::Off);
    assert_refused(s.addr, StartTls::Xmpp, &ca, &s.log()).await;
}

#[tokio::test]
async fn mysql_mariadb_upgrades_and_presents_our_certificate() {
    let (ca, leaf) = pki();
    let s = servers::mariadb(&leaf, Tls::On);
    assert_upgrades(s.addr, StartTls::Mysql, &ca, &leaf, &s.log()).await;
}

#[tokio::test]
async fn mysql_mariadb_skip_ssl_is_refused() {
    let (ca, leaf) = pki();
    let s = servers::mariadb(&leaf, Tls::Off);
    assert_refused(s.addr, StartTls::Mysql, &ca, &s.log()).await;
}

#[tokio::test]
async fn nntp_in_test_server_upgrades_and_presents_our_certificate() {
    let (ca, leaf) = pki();
    let s = servers::nntp(Some(servers::rustls_config(&leaf))).await;
    assert_upgrades(s.addr, StartTls::Nntp, &ca, &leaf, "in-test NNTP server").await;
}

#[tokio::test]
async fn nntp_in_test_server_without_tls_is_refused() {
    let (ca, _leaf) = pki();
    let s = servers::nntp(None).await;
    assert_refused(s.addr, StartTls::Nntp, &ca, "in-test NNTP server").await;
}
