//! `/probe` output formats and target forms against real peers: tokio-rustls servers, nginx
//! (`https://` with a path), the in-test NNTP server (a STARTTLS scheme), and Debian's
//! blackbox_exporter side by side with ours on the same endpoints.
//!
//! The PKI is minted here with rcgen so the names are rich enough to show Go's
//! `pkix.Name.String()` order (a leaf with C, L, O, OU and CN) and the dates tell the
//! certificates apart (root expires first, then the intermediate, then the leaf).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::OffsetDateTime;

use crate::support::exporter::{free_port, write, Exporter, Exposition};
use crate::support::pki::{pem_chain, Cert};
use crate::support::servers::{self, Opts};
use crate::support::starttls_servers;
use crate::support::{now, WAIT};

const DAY: i64 = 86_400;

// ---- blackbox format -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackbox_format_of_a_healthy_chain_is_blackbox_exporters_series() {
    bounded(async {
        let lab = Lab::new();
        let server = lab.serve_healthy().await;
        let e = lab.exporter(&[]);
        let body = probe(&e, &format!("target=127.0.0.1:{}&format=blackbox", server.addr.port()));
        let leaf = &lab.leaf;
        body.assert_lines(&[
            "probe_ip_addr_hash 3668918509".to_string(),
            "probe_ip_protocol 4".to_string(),
            format!("probe_ssl_earliest_cert_expiry {}", lab.intermediate.not_after),
            format!(
                "probe_ssl_last_chain_expiry_timestamp_seconds {}",
                lab.root.not_after
            ),
            format!(
                "probe_ssl_last_chain_info{{fingerprint_sha256=\"{}\",issuer=\"CN=formats intermediate,O=Formats Test\",serialnumber=\"0a1b2c\",subject=\"{LEAF_SUBJECT}\",subjectalternative=\"localhost\"}} 1",
                leaf.fingerprint()
            ),
            "probe_success 1".to_string(),
            format!("probe_tls_cipher_info{{cipher=\"{CIPHER}\"}} 1"),
            "probe_tls_version_info{version=\"TLS 1.3\"} 1".to_string(),
        ]);
        assert_eq!(
            names(&body),
            [
                "probe_dns_lookup_time_seconds",
                "probe_duration_seconds",
                "probe_ip_addr_hash",
                "probe_ip_protocol",
                "probe_ssl_earliest_cert_expiry",
                "probe_ssl_last_chain_expiry_timestamp_seconds",
                "probe_ssl_last_chain_info",
                "probe_success",
                "probe_tls_cipher_info",
                "probe_tls_version_info",
            ],
            "{}",
            body.0
        );
        for duration in ["probe_dns_lookup_time_seconds", "probe_duration_seconds"] {
            let v = body.value(duration).expect(duration);
            assert!((0.0..5.0).contains(&v), "{duration} {v}\n{}", body.0);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackbox_format_of_an_unknown_issuer_still_has_the_tls_series() {
    bounded(async {
        let lab = Lab::new();
        let server = lab.serve_stranger().await;
        let e = lab.exporter(&[]);
        let body = probe(&e, &format!("target=127.0.0.1:{}&format=blackbox", server.addr.port()));
        body.assert_lines(&[
            "probe_success 0".to_string(),
            "probe_ip_protocol 4".to_string(),
            format!("probe_ssl_earliest_cert_expiry {}", lab.stranger.not_after),
            format!(
                "probe_ssl_last_chain_info{{fingerprint_sha256=\"{}\",issuer=\"CN=stranger CA\",serialnumber=\"07\",subject=\"CN=localhost\",subjectalternative=\"localhost\"}} 1",
                lab.stranger.fingerprint()
            ),
            "probe_tls_version_info{version=\"TLS 1.3\"} 1".to_string(),
        ]);
        body.assert_absent(&["probe_ssl_last_chain_expiry_timestamp_seconds".to_string()]);
    })
    .await;
}

// ---- ssl_exporter format -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_exporter_format_of_a_healthy_chain_is_ssl_exporters_series() {
    bounded(async {
        let lab = Lab::new();
        let server = lab.serve_healthy().await;
        let e = lab.exporter(&[]);
        let body = probe(&e, &format!("target=127.0.0.1:{}&format=ssl_exporter", server.addr.port()));
        let leaf = "cn=\"localhost\",dnsnames=\",localhost,\",emails=\"\",ips=\",127.0.0.1,\",issuer_cn=\"formats intermediate\",ou=\",Ops,\",serial_no=\"662316\"";
        let inter = "cn=\"formats intermediate\",dnsnames=\"\",emails=\"\",ips=\"\",issuer_cn=\"formats root\",ou=\"\",serial_no=\"2\"";
        let root = "cn=\"formats root\",dnsnames=\"\",emails=\"\",ips=\"\",issuer_cn=\"formats root\",ou=\"\",serial_no=\"1\"";
        let (l, i, r) = (&lab.leaf, &lab.intermediate, &lab.root);
        let mut want = vec![
            format!("ssl_cert_not_after{{{leaf}}} {}", l.not_after),
            format!("ssl_cert_not_after{{{inter}}} {}", i.not_after),
            format!("ssl_cert_not_before{{{leaf}}} {}", l.not_before),
            format!("ssl_cert_not_before{{{inter}}} {}", i.not_before),
        ];
        for name in [
            "next_update",
            "produced_at",
            "revoked_at",
            "stapled",
            "status",
            "this_update",
        ] {
            want.push(format!("ssl_ocsp_response_{name} 0"));
        }
        want.extend([
            "ssl_probe_success 1".to_string(),
            "ssl_prober{prober=\"tcp\"} 1".to_string(),
            "ssl_tls_version_info{version=\"TLS 1.3\"} 1".to_string(),
        ]);
        for (family, of) in [
            ("ssl_verified_cert_not_after", [l.not_after, i.not_after, r.not_after]),
            ("ssl_verified_cert_not_before", [l.not_before, i.not_before, r.not_before]),
        ] {
            for (labels, v) in [leaf, inter, root].iter().zip(of) {
                want.push(format!("{family}{{chain_no=\"0\",{labels}}} {v}"));
            }
        }
        assert_eq!(samples_of(&body), want, "{}", body.0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_exporter_format_of_an_unknown_issuer_has_no_verified_chain() {
    bounded(async {
        let lab = Lab::new();
        let server = lab.serve_stranger().await;
        let e = lab.exporter(&[]);
        let body = probe(&e, &format!("target=127.0.0.1:{}&format=ssl_exporter", server.addr.port()));
        let leaf = "cn=\"localhost\",dnsnames=\",localhost,\",emails=\"\",ips=\",127.0.0.1,\",issuer_cn=\"stranger CA\",ou=\"\",serial_no=\"7\"";
        body.assert_lines(&[
            format!("ssl_cert_not_after{{{leaf}}} {}", lab.stranger.not_after),
            "ssl_probe_success 0".to_string(),
            "ssl_prober{prober=\"tcp\"} 1".to_string(),
        ]);
        body.assert_absent(&["ssl_verified_cert".to_string()]);
    })
    .await;
}

// ---- target forms --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_urls_get_their_path_and_report_the_status() {
    bounded(async {
        let lab = Lab::new();
        let nginx = Nginx::start(&lab);
        let e = lab.exporter(&[]);
        let ok = format!("https://127.0.0.1:{}/ok", nginx.port);
        let missing = format!("https://127.0.0.1:{}/missing", nginx.port);

        let body = probe(&e, &format!("target={ok}&format=blackbox"));
        body.assert_lines(&[
            "probe_http_ssl 1".to_string(),
            "probe_http_status_code 200".to_string(),
            "probe_success 1".to_string(),
        ]);
        let body = probe(&e, &format!("target={missing}&format=blackbox"));
        body.assert_lines(&[
            "probe_http_status_code 404".to_string(),
            "probe_success 0".to_string(),
        ]);
        let body = probe(&e, &format!("target={missing}"));
        body.assert_lines(&[
            format!("tls_http_status_code{{target=\"{missing}\"}} 404"),
            format!("tls_probe_success{{target=\"{missing}\"}} 1"),
        ]);
        // ssl_exporter's https prober does not judge the status.
        let body = probe(&e, &format!("target={missing}&format=ssl_exporter"));
        body.assert_lines(&[
            "ssl_probe_success 1".to_string(),
            "ssl_prober{prober=\"https\"} 1".to_string(),
        ]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_schemes_take_an_explicit_port() {
    bounded(async {
        let lab = Lab::new();
        let server = lab.serve_healthy().await;
        let e = lab.exporter(&[]);
        for scheme in ["smtps", "imaps", "pop3s", "ldaps"] {
            let url = format!("{scheme}://127.0.0.1:{}", server.addr.port());
            let body = probe(&e, &format!("target={url}"));
            body.assert_lines(&[format!("tls_probe_success{{target=\"{url}\"}} 1")]);
            body.assert_absent(&[format!("tls_http_status_code{{target=\"{url}\"}}")]);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_schemes_upgrade_and_match_configured_targets() {
    bounded(async {
        let lab = Lab::new();
        let nntp = starttls_servers::nntp(Some(lab.server_config())).await;
        let url = format!("nntp://127.0.0.1:{}", nntp.addr.port());
        let e = lab.exporter(&["--web.enable-adhoc-probes"]);
        let body = probe(&e, &format!("target={url}&format=blackbox"));
        body.assert_lines(&["probe_success 1".to_string()]);

        // A configured target with the URL's settings answers without ad-hoc probes, under
        // its own name.
        let yaml = format!(
            "global:\n  ca_file: {}\ntargets:\n  - {{name: news, address: \"127.0.0.1:{}\", starttls: nntp}}\n",
            lab.ca_file().display(),
            nntp.addr.port()
        );
        let e = Exporter::start(Exporter::dir(), &yaml);
        let body = probe(&e, &format!("target={url}"));
        body.assert_lines(&["tls_probe_success{target=\"news\"} 1".to_string()]);
        let (status, text) = e
            .get(&format!("/probe?target=smtp://127.0.0.1:{}", nntp.addr.port()))
            .expect("probe");
        assert_eq!(status, 403, "{text}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_one_line_reasons() {
    bounded(async {
        let lab = Lab::new();
        let e = lab.exporter(&[]);
        for (query, status, says) in [
            (
                "target=127.0.0.1:1&module=tcp_tls",
                400,
                "unknown module \"tcp_tls\"",
            ),
            (
                "target=127.0.0.1:1&format=prometheus",
                400,
                "unknown format \"prometheus\"",
            ),
            ("target=ftp//x", 400, "expected host:port"),
            (
                "target=ssh://127.0.0.1:22",
                400,
                "unsupported scheme \"ssh\"",
            ),
            (
                "target=https://u:p@127.0.0.1/",
                400,
                "remove the user name and password",
            ),
        ] {
            let (got, body) = e.get(&format!("/probe?{query}")).expect("probe");
            assert_eq!((got, body.lines().count()), (status, 1), "{query}: {body}");
            assert!(body.contains(says), "{query}: {body}");
        }
        let plain = lab.exporter_without_adhoc();
        let (got, body) = plain
            .get("/probe?target=https://127.0.0.1:1/&format=blackbox")
            .expect("probe");
        assert_eq!(got, 403, "{body}");
        assert!(body.contains("--web.enable-adhoc-probes"), "{body}");
    })
    .await;
}

// ---- side by side with blackbox_exporter ---------------------------------------------------

/// The TLS part of blackbox_exporter's output: what `format=blackbox` must agree on.
const TLS_PART: [&str; 12] = [
    "probe_dns_lookup_time_seconds",
    "probe_duration_seconds",
    "probe_http_ssl",
    "probe_http_status_code",
    "probe_ip_addr_hash",
    "probe_ip_protocol",
    "probe_ssl_earliest_cert_expiry",
    "probe_ssl_last_chain_expiry_timestamp_seconds",
    "probe_ssl_last_chain_info",
    "probe_success",
    "probe_tls_cipher_info",
    "probe_tls_version_info",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackbox_format_agrees_with_debians_blackbox_exporter() {
    bounded(async {
        let lab = Lab::new();
        let healthy = lab.serve_healthy().await;
        let stranger = lab.serve_stranger().await;
        let nginx = Nginx::start(&lab);
        let bbx = Blackbox::start(&lab);
        let ours = lab.exporter(&[]);

        let cases = [
            ("tcp_tls", format!("127.0.0.1:{}", healthy.addr.port())),
            ("https_2xx", format!("https://127.0.0.1:{}/ok", nginx.port)),
            (
                "https_2xx",
                format!("https://127.0.0.1:{}/missing", nginx.port),
            ),
        ];
        for (module, target) in &cases {
            let theirs = bbx.probe(module, target);
            let mine = probe(&ours, &format!("target={target}&format=blackbox"));
            let compared = agree(&theirs, &mine);
            assert!(
                compared.contains(&"probe_ssl_last_chain_info")
                    && compared.contains(&"probe_tls_version_info"),
                "{module} {target}: blackbox_exporter reported no TLS series:\n{theirs}"
            );
        }
        // Go refuses the chain: blackbox_exporter reports no TLS series at all, we do (the
        // README says so); what both report agrees.
        let target = format!("127.0.0.1:{}", stranger.addr.port());
        let theirs = bbx.probe("tcp_tls", &target);
        let mine = probe(&ours, &format!("target={target}&format=blackbox"));
        agree(&theirs, &mine);
        let value = |name: &str| parse(&theirs).into_iter().find(|s| s.name == name);
        assert_eq!(
            value("probe_success").map(|s| s.value),
            Some(0.0),
            "{theirs}"
        );
        assert!(value("probe_ssl_last_chain_info").is_none(), "{theirs}");
    })
    .await;
}

/// Asserts every TLS-part series blackbox_exporter reported is in ours with the same labels
/// (ours may have more: Debian's 0.23 predates `serialnumber`) and value (durations within a
/// second); returns the names compared.
fn agree(theirs: &str, mine: &Exposition) -> Vec<&'static str> {
    let ours = parse(&mine.0);
    let mut compared = Vec::new();
    for t in parse(theirs) {
        let Some(name) = TLS_PART.iter().find(|n| **n == t.name) else {
            continue;
        };
        let found = ours
            .iter()
            .find(|o| o.name == t.name && t.labels.iter().all(|(k, v)| o.labels.get(k) == Some(v)));
        let Some(o) = found else {
            panic!(
                "ours lacks {} {:?}\n--- blackbox_exporter ---\n{theirs}\n--- ours ---\n{}",
                t.name, t.labels, mine.0
            );
        };
        let close = if matches!(
            *name,
            "probe_duration_seconds" | "probe_dns_lookup_time_seconds"
        ) {
            (o.value - t.value).abs() < 1.0
        } else {
            o.value == t.value
        };
        assert!(
            close,
            "{}: ours {} theirs {}\n--- blackbox_exporter ---\n{theirs}\n--- ours ---\n{}",
            t.name, o.value, t.value, mine.0
        );
        compared.push(*name);
    }
    compared
}

/// Debian's blackbox_exporter on a loopback port, with a `tcp` module (TLS) and an `http`
/// module trusting the lab's root.
struct Blackbox {
    addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Blackbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const BLACKBOX: &str = "/usr/bin/prometheus-blackbox-exporter";

impl Blackbox {
    fn start(lab: &Lab) -> Blackbox {
        assert!(
            Path::new(BLACKBOX).exists(),
            "{BLACKBOX} is missing: install Debian's prometheus-blackbox-exporter (scripts/install-test-deps)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = lab.ca_file();
        let config = write(
            dir.path(),
            "blackbox.yml",
            &format!(
                "modules:\n  tcp_tls:\n    prober: tcp\n    timeout: 5s\n    tcp:\n      tls: true\n      tls_config:\n        ca_file: {ca}\n  https_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      tls_config:\n        ca_file: {ca}\n",
                ca = ca.display()
            ),
        );
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let child = Command::new(BLACKBOX)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("log"))
            .spawn()
            .expect("start blackbox_exporter");
        let mut b = Blackbox {
            addr,
            child,
            _dir: dir,
        };
        let start = Instant::now();
        while http_get(b.addr, "/-/healthy").is_err() {
            if let Ok(Some(status)) = b.child.try_wait() {
                panic!("blackbox_exporter exited with {status}: {}", b.log());
            }
            assert!(
                start.elapsed() < WAIT,
                "blackbox_exporter did not start: {}",
                b.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        b
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn probe(&self, module: &str, target: &str) -> String {
        let (status, body) = http_get(
            self.addr,
            &format!("/probe?module={module}&target={target}"),
        )
        .expect("blackbox_exporter answers");
        assert_eq!(status, 200, "{body}\n{}", self.log());
        body
    }
}

// ---- helpers -------------------------------------------------------------------------------

/// Go's `pkix.Name.String()` of the lab leaf's subject: most specific first.
const LEAF_SUBJECT: &str = "CN=localhost,OU=Ops,O=Example\\\\, Inc.,L=Berlin,C=DE";

/// What the probe and rustls's server negotiate with their default cipher suite orders.
const CIPHER: &str = "TLS_AES_256_GCM_SHA384";

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(WAIT * 2, test)
        .await
        .expect("test finished in time");
}

/// `/probe?query`, which must answer 200.
fn probe(e: &Exporter, query: &str) -> Exposition {
    let (status, body) = e.get(&format!("/probe?{query}")).expect("probe");
    assert_eq!(status, 200, "{query}: {body}\n{}", e.log());
    Exposition(body)
}

/// The family names of an exposition, in order.
fn names(e: &Exposition) -> Vec<&str> {
    e.0.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect()
}

/// The sample lines of an exposition, in order.
fn samples_of(e: &Exposition) -> Vec<String> {
    e.0.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// One sample: name, unescaped labels, value.
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text format as both exporters write it.
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        let (name, mut rest) = match series.split_once('{') {
            Some((n, r)) => (n, r.strip_suffix('}').expect("labels end")),
            None => (series, ""),
        };
        let mut labels = BTreeMap::new();
        while !rest.is_empty() {
            let (key, after) = rest.split_once("=\"").expect("label");
            let mut value = String::new();
            let mut chars = after.char_indices();
            let mut end = after.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => {}
                    },
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            labels.insert(key.trim_start_matches(',').to_string(), value);
            rest = after.get(end..).unwrap_or_default();
        }
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

/// A plain HTTP/1.0 GET to a loopback server: status and body.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {head}")))?;
    Ok((status, body.to_string()))
}

/// A root (expiring in 40 days), an intermediate (60) and a `localhost` leaf (90) with a
/// rich subject; and a leaf from a CA nobody trusts.
struct Lab {
    root: Cert,
    intermediate: Cert,
    leaf: Cert,
    stranger: Cert,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let now = now();
        let (root, root_issuer) = ca(
            &[(DnType::CommonName, "formats root")],
            1,
            now + 40 * DAY,
            None,
        );
        let (intermediate, inter_issuer) = ca(
            &[
                (DnType::OrganizationName, "Formats Test"),
                (DnType::CommonName, "formats intermediate"),
            ],
            2,
            now + 60 * DAY,
            Some(&root_issuer),
        );
        let leaf = mint_leaf(
            &[
                (DnType::CountryName, "DE"),
                (DnType::LocalityName, "Berlin"),
                (DnType::OrganizationName, "Example, Inc."),
                (DnType::OrganizationalUnitName, "Ops"),
                (DnType::CommonName, "localhost"),
            ],
            0x0a1b2c,
            now + 90 * DAY,
            &inter_issuer,
        );
        let (_, stranger_issuer) = ca(
            &[(DnType::CommonName, "stranger CA")],
            3,
            now + 90 * DAY,
            None,
        );
        let stranger = mint_leaf(
            &[(DnType::CommonName, "localhost")],
            7,
            now + 30 * DAY,
            &stranger_issuer,
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), &root.pem).expect("write");
        Lab {
            root,
            intermediate,
            leaf,
            stranger,
            dir,
        }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Serves leaf and intermediate (TLS 1.2 and 1.3).
    async fn serve_healthy(&self) -> servers::Server {
        let chain = vec![self.leaf.der.clone(), self.intermediate.der.clone()];
        servers::rustls(Opts::new(chain, self.leaf.key_der())).await
    }

    /// A rustls server configuration sending leaf and intermediate.
    fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("default versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![self.leaf.der.clone(), self.intermediate.der.clone()],
                self.leaf.key_der(),
            )
            .expect("lab chain and key");
        std::sync::Arc::new(config)
    }

    /// Serves the leaf of the untrusted CA.
    async fn serve_stranger(&self) -> servers::Server {
        servers::rustls(Opts::new(
            vec![self.stranger.der.clone()],
            self.stranger.key_der(),
        ))
        .await
    }

    /// Our exporter trusting the lab's root, ad-hoc probes on, plus `flags`.
    fn exporter(&self, flags: &[&str]) -> Exporter {
        let mut all = vec!["--web.enable-adhoc-probes"];
        all.extend(flags.iter().filter(|f| **f != "--web.enable-adhoc-probes"));
        Exporter::start_with(Exporter::dir(), &self.config(), &all)
    }

    fn exporter_without_adhoc(&self) -> Exporter {
        Exporter::start(Exporter::dir(), &self.config())
    }

    fn config(&self) -> String {
        format!(
            "global:\n  ca_file: {}\ntargets:\n  - {{name: placeholder, address: \"127.0.0.1:1\", interval: 1h}}\n",
            self.ca_file().display()
        )
    }
}

fn params(dn: &[(DnType, &str)], serial: u64, not_after: i64) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut name = DistinguishedName::new();
    for (t, v) in dn {
        name.push(t.clone(), *v);
    }
    p.distinguished_name = name;
    p.not_before = OffsetDateTime::from_unix_timestamp(now() - DAY).expect("time");
    p.not_after = OffsetDateTime::from_unix_timestamp(not_after).expect("time");
    p.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
    p
}

fn minted(cert: rcgen::Certificate, key: &KeyPair, not_before: i64, not_after: i64) -> Cert {
    Cert {
        der: cert.der().clone(),
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_before,
        not_after,
    }
}

/// A CA (self-signed, or signed by `parent`).
fn ca(
    dn: &[(DnType, &str)],
    serial: u64,
    not_after: i64,
    parent: Option<&Issuer<'static, KeyPair>>,
) -> (Cert, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("keygen");
    let mut p = params(dn, serial, not_after);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = match parent {
        None => p.self_signed(&key).expect("self-sign"),
        Some(issuer) => p.signed_by(&key, issuer).expect("sign"),
    };
    let minted = minted(cert, &key, now() - DAY, not_after);
    (minted, Issuer::new(p, key))
}

/// A server leaf for `localhost` and 127.0.0.1.
fn mint_leaf(
    dn: &[(DnType, &str)],
    serial: u64,
    not_after: i64,
    issuer: &Issuer<'static, KeyPair>,
) -> Cert {
    let key = KeyPair::generate().expect("keygen");
    let mut p = params(dn, serial, not_after);
    p.subject_alt_names = vec![
        rcgen::SanType::DnsName("localhost".try_into().expect("dns name")),
        rcgen::SanType::IpAddress([127, 0, 0, 1].into()),
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, issuer).expect("sign");
    minted(cert, &key, now() - DAY, not_after)
}

/// nginx serving the lab's chain over TLS: `/ok` answers 200, `/missing` 404.
struct Nginx {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn start(lab: &Lab) -> Nginx {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("chain.pem"),
            pem_chain(&[&lab.leaf, &lab.intermediate]),
        )
        .expect("write");
        std::fs::write(dir.path().join("key.pem"), &lab.leaf.key_pem).expect("write");
        let port = free_port();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {d}/chain.pem;
        ssl_certificate_key {d}/key.pem;
        location = /ok {{ return 200 "ok\n"; }}
        location / {{ return 404; }}
    }}
}}
"#
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write");
        let bin = if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        };
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (scripts/install-test-deps)");
        let mut nginx = Nginx { port, child, dir };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(nginx.dir.path().join("error.log"));
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited with {status}: {log:?}");
            }
            assert!(start.elapsed() < WAIT, "nginx did not listen: {log:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }
}
