//! Failure details a person reads are sentences with RFC 3339 dates, never a `Debug` dump of a
//! library type: checked in the log and on the status page for the usual chain problems.

use crate::support::exporter::{free_port, write, Exporter};
use crate::support::now;
use crate::support::pki::{Ca, Spec};
use crate::support::servers::{self, Opts};

/// Tokens that only a `Debug` rendering of rustls/webpki/std types produces.
const DEBUG_MARKERS: [&str; 12] = [
    "UnixTime",
    "DnsName",
    "InvalidNameContext",
    "CaUsedAsEndEntity",
    "CertExpired",
    "CertNotValidForName",
    "AlertReceived",
    "UnknownIssuer",
    "Some(",
    "None",
    "{ ",
    "Error {",
];

fn assert_no_debug(what: &str, text: &str) {
    for m in DEBUG_MARKERS {
        assert!(
            !text.contains(m),
            "{what} contains Debug output {m:?}:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_failures_read_as_sentences_in_the_log_and_on_the_status_page() {
    let root = Ca::root("Test Root");
    let t = now();
    let expired = root.leaf(&Spec::leaf("localhost").valid(t - 20 * 86_400, t - 10 * 86_400));
    let other = root.leaf(&Spec::leaf("other-host.example").sans(&["other-host.example"]));
    let selfie = Ca::self_signed(&Spec::leaf("localhost"));
    let serve = |c: &crate::support::pki::Cert| Opts::new(vec![c.der.clone()], c.key_der());
    let s_expired = servers::rustls(serve(&expired)).await;
    let s_other = servers::rustls(serve(&other)).await;
    let s_self = servers::rustls(Opts::new(
        vec![selfie.cert.der.clone()],
        selfie.cert.key_der(),
    ))
    .await;
    let closed = free_port();

    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    let target = |name: &str, port: u16, sni: &str| {
        format!("  - name: {name}\n    address: 127.0.0.1:{port}\n    server_name: {sni}\n")
    };
    let yaml = format!(
        "global: {{interval: 2s, timeout: 1500ms, ca_file: ca.pem}}\ntargets:\n{}{}{}{}",
        target("expired", s_expired.addr.port(), "localhost"),
        target("wrong-name", s_other.addr.port(), "wrong-host.example"),
        target("self", s_self.addr.port(), "localhost"),
        target("closed", closed, "localhost"),
    );
    let e = Exporter::start(dir, &yaml);
    for name in ["expired", "wrong-name", "self", "closed"] {
        e.wait_probes(name, 1);
    }
    let log = e.log();
    let (_, page) = e.get("/").expect("status page");
    let expected = [
        format!(
            "certificate expired {}",
            tls_exporter::text::when(expired.not_after, t)
        ),
        "certificate is valid for other-host.example, not wrong-host.example".to_string(),
        "self-signed certificate not in the trust store".to_string(),
        format!("connect to 127.0.0.1:{closed}"),
    ];
    for sentence in &expected {
        // The date's "N days ago" may tick over between the probe and this check only at a
        // day boundary, which `when` rounds away from: compare the stable prefix too.
        let stable = sentence.split(" (").next().unwrap_or(sentence);
        assert!(log.contains(stable), "log lacks {stable:?}:\n{log}");
        assert!(
            page.contains(stable),
            "status page lacks {stable:?}:\n{page}"
        );
    }
    assert_no_debug("log", &log);
    assert_no_debug("status page", &page);
}
