//! The legacy protocol and weak cipher scan behind STARTTLS, against the real Debian servers the
//! STARTTLS tests start (exim4 for SMTP, dovecot for IMAP and POP3): what our scan says each
//! accepts must be what `openssl s_client -starttls …` finds with the same version or cipher
//! restriction. OpenSSL 3 can no longer offer SSL 3.0 or RC4, so those are asserted refused
//! without a second opinion. An exporter-level case checks the scan series of a `starttls:`
//! target.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use tls_exporter::config::StartTls;
use tls_exporter::probe::legacy::{scan_via, LegacyVersion, Route, ScanResult, WeakClass};
use tls_exporter::probe::proxy::Destination;
use tokio::time::Instant;

use crate::support::exporter::{write, Exporter};
use crate::support::pki::{Ca, Cert, Spec};
use crate::support::starttls_servers::{self as mail, Tls};
use crate::support::WAIT;

fn pki() -> (Ca, Cert) {
    let root = Ca::root("STARTTLS Scan Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    (root, leaf)
}

async fn scan(addr: SocketAddr, proto: StartTls) -> ScanResult {
    let route = Route {
        starttls: Some(proto),
        server_name: "localhost".to_string(),
        ..Route::default()
    };
    let deadline = Instant::now() + WAIT;
    scan_via(
        Destination::Addr(addr),
        route,
        Some("localhost"),
        deadline,
        2,
    )
    .await
    .unwrap_or_else(|e| panic!("{proto} scan of {addr}: {e}"))
}

/// Whether `openssl s_client -starttls proto` completes a handshake with `args` (a version
/// flag, a cipher list), at security level 0 so that OpenSSL itself offers what it still can.
fn openssl_accepts(addr: SocketAddr, proto: &str, args: &[&str]) -> bool {
    let cipher_given = args.contains(&"-cipher");
    let mut cmd = Command::new("timeout");
    cmd.args(["10", "openssl", "s_client", "-brief", "-starttls", proto])
        .arg("-connect")
        .arg(addr.to_string())
        .args(args);
    if !cipher_given {
        cmd.args(["-cipher", "DEFAULT:@SECLEVEL=0"]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.contains("Protocol version")
}

/// The versions and classes OpenSSL can check, side by side with our scan.
fn assert_agrees(r: &ScanResult, addr: SocketAddr, proto: &str) {
    let versions = [
        (LegacyVersion::Tls10, "-tls1"),
        (LegacyVersion::Tls11, "-tls1_1"),
        (LegacyVersion::Tls12, "-tls1_2"),
        (LegacyVersion::Tls13, "-tls1_3"),
    ];
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for (v, flag) in versions {
        ours.push((v.as_label(), r.accepts(v)));
        theirs.push((v.as_label(), Some(openssl_accepts(addr, proto, &[flag]))));
    }
    // Weak classes over any version below TLS 1.3, as our scan asks them.
    let classes = [
        (
            WeakClass::CbcSha1,
            "SHA1:!RC4:!NULL:!aNULL:!eNULL:@SECLEVEL=0",
        ),
        (WeakClass::TripleDes, "3DES:@SECLEVEL=0"),
    ];
    for (c, list) in classes {
        ours.push((c.as_label(), r.accepts_weak(c)));
        let accepted = openssl_accepts(addr, proto, &["-no_tls1_3", "-cipher", list]);
        theirs.push((c.as_label(), Some(accepted)));
    }
    assert_eq!(
        ours, theirs,
        "{proto} at {addr}: our scan vs openssl s_client\n{r:#?}"
    );
    assert_eq!(r.accepts(LegacyVersion::Ssl30), Some(false), "{r:#?}");
    assert_eq!(r.accepts_weak(WeakClass::Rc4), Some(false), "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_exim_scan_behind_starttls_agrees_with_openssl() {
    let (_root, leaf) = pki();
    let exim = mail::exim(&leaf, Tls::On);
    let r = scan(exim.addr, StartTls::Smtp).await;
    eprintln!(
        "exim scan: {} hellos in {:?}: {r:#?}",
        r.handshakes, r.duration
    );
    assert_agrees(&r, exim.addr, "smtp");
    assert!(r.handshakes >= 5, "{r:#?}");
    // exim refuses the 21st concurrent session: the scan paces itself below that.
    assert!(
        !exim.log().contains("too many connections"),
        "{}",
        exim.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_and_pop3_dovecot_scans_behind_starttls_agree_with_openssl() {
    let (_root, leaf) = pki();
    let d = mail::dovecot(&leaf, Tls::On);
    let imap = scan(d.daemon.addr, StartTls::Imap).await;
    assert_agrees(&imap, d.daemon.addr, "imap");
    let pop3 = scan(d.pop3, StartTls::Pop3).await;
    assert_agrees(&pop3, d.pop3, "pop3");
    // Its config says ssl_min_protocol = TLSv1.2.
    assert_eq!(imap.accepts(LegacyVersion::Tls11), Some(false), "{imap:#?}");
    eprintln!(
        "dovecot imap scan: {} hellos in {:?}",
        imap.handshakes, imap.duration
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_target_gets_scan_series() {
    let (root, leaf) = pki();
    let exim = mail::exim(&leaf, Tls::On);
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    let yaml = format!(
        "global: {{interval: 2s, timeout: 1500ms, ca_file: ca.pem, scan_interval: 5s}}\ntargets:\n  - name: mx\n    address: {}\n    server_name: localhost\n    starttls: smtp\n",
        exim.addr
    );
    let e = Exporter::start(dir, &yaml);
    let m = e.wait_for("a scan", |m| {
        m.value("tls_scan_handshakes{target=\"mx\"}").is_some()
    });
    assert_eq!(
        m.value("tls_probe_success{target=\"mx\"}"),
        Some(1.0),
        "{}",
        m.0
    );
    let tls12 = m.value("tls_protocol_accepted{target=\"mx\",version=\"TLS 1.2\"}");
    assert_eq!(tls12, Some(1.0), "{}\n{}", m.0, exim.log());
    assert!(
        m.value("tls_weak_cipher_accepted{target=\"mx\",class=\"CBC-SHA1\"}")
            .is_some(),
        "{}",
        m.0
    );
}
