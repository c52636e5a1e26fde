//! Property tests (proptest) for the six parsers of outside bytes that `fuzz/` fuzzes: the
//! config, the web config, certificate facts, stapled OCSP responses, the legacy scan's reader
//! of a server's first flight, and the STARTTLS dialogues. Each runs a bounded number of small
//! cases (`CASES`), so that together they stay well under 30 s in `cargo test`.
//!
//! Every property says "never panics" by running at all; where the parser promises more, the
//! promise is asserted: problems carry file:line:col, minted certificates read back as minted,
//! no altered OCSP response changes a status, bytes cut anywhere read the same, STARTTLS
//! transcripts upgrade however they arrive and bytes pipelined after the go-ahead are refused.
//! The inputs reach the parsers through `tls_exporter::fuzzing`, as the fuzz targets do.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use rustls_pki_types::CertificateDer;
use tls_exporter::config::ConfigError;
use tls_exporter::fuzzing::{self, Issuer, StartTls, UpgradeError, WebConfigError};
use tls_exporter::tls::ocsp::{CertStatus, Stapled};

use crate::support::pki::{Ca, Spec};

/// Cases per property.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Whether a generated config text cannot name a file outside the fixtures directory (the
/// parsers read every file a config names; see `fuzz/fuzz_targets/common.rs`).
fn stays_in_fixtures(text: &str) -> bool {
    !(text.contains('\\')
        || text.contains("binary")
        || text.contains("file") && (text.contains('/') || text.contains("..")))
}

/// Every rendered problem (one string each: a message may hold a line break, an unknown key
/// echoed as written, also found by fuzzing) is `path:line:col: ...`, line and column at least 1, the line inside
/// the text or the one after its end. Lines are counted as YAML counts them: a lone CR ends a
/// line too (found by fuzzing the config parser).
fn assert_positions(path: &Path, text: &str, rendered: &[String]) -> Result<(), TestCaseError> {
    let last = text.replace("\r\n", "\n").matches(['\r', '\n']).count() + 2;
    let prefix = format!("{}:", path.display());
    for line in rendered {
        let rest = line.strip_prefix(&prefix);
        prop_assert!(rest.is_some(), "problem without the file name: {line}");
        let mut parts = rest.unwrap_or_default().splitn(3, ':');
        let l: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let c: usize = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        prop_assert!(
            l >= 1 && c >= 1 && l <= last,
            "problem without a position in the text ({last} lines): {line}\n--- text:\n{text}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// YAML: the config and the web config

/// One line of config-like YAML: keys of the schema (and some that are not), values that are
/// valid, invalid or of the wrong type, at indentations that may or may not fit.
fn config_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "global",
        "targets",
        "target_files",
        "interval",
        "timeout",
        "concurrency",
        "ca_file",
        "scan_interval",
        "scan",
        "name",
        "address",
        "server_name",
        "client_cert_file",
        "client_key_file",
        "ip_protocol",
        "resolve",
        "probe",
        "starttls",
        "http",
        "path",
        "host",
        "labels",
        "team",
        "job",
        "le",
        "1bad",
        "unknown",
    ]);
    let value = prop::sample::select(vec![
        "",
        "1m",
        "30s",
        "0s",
        "-5s",
        "1h30m",
        "10",
        "0",
        "-1",
        "yes",
        "true",
        "[a, b]",
        "{}",
        "127.0.0.1:443",
        "[::1]:8443",
        "example.com:443",
        "example.com",
        "host:99999",
        "smtp",
        "gopher",
        "ip4",
        "all",
        "http_redirect",
        "ca.pem",
        "client.pem",
        "client.key",
        "missing.pem",
        "*.yml",
        "\"quoted\"",
        "'single'",
        "&a x",
        "*a",
        "~",
        "|",
        ">-",
    ]);
    (0usize..4, prop::bool::ANY, key, value).prop_map(|(indent, dash, key, value)| {
        let dash = if dash { "- " } else { "" };
        format!("{}{dash}{key}: {value}", "  ".repeat(indent))
    })
}

fn yaml_text(line: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(line, 0..12).prop_map(|l| l.join("\n") + "\n"),
        1 => "\\PC{0,200}",
    ]
}

fn web_line() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "tls_server_config",
        "http_server_config",
        "basic_auth_users",
        "rate_limit",
        "cert",
        "key",
        "cert_file",
        "key_file",
        "client_ca_file",
        "client_auth_type",
        "client_allowed_sans",
        "min_version",
        "max_version",
        "cipher_suites",
        "prefer_server_cipher_suites",
        "curve_preferences",
        "http2",
        "headers",
        "X-Frame-Options",
        "Server",
        "alice",
        "a:b",
    ]);
    let value = prop::sample::select(vec![
        "",
        "server.pem",
        "server.key",
        "ca.pem",
        "missing.pem",
        "TLS12",
        "TLS13",
        "TLS10",
        "RequireAndVerifyClientCert",
        "NoClientCert",
        "Bogus",
        "[X25519, CurveP256]",
        "[TLS_AES_128_GCM_SHA256]",
        "true",
        "deny",
        "hunter2",
        "$2b$04$1h9Vrjr99.u2iLhIPwR.f.0zYqhdmjD26I0.AheSKOQTPgBPuWe.S",
        "[a, b]",
        "{}",
        "7",
    ]);
    (0usize..3, key, value)
        .prop_map(|(indent, key, value)| format!("{}{key}: {value}", "  ".repeat(indent)))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_problems_carry_file_line_and_column(text in yaml_text(config_line())) {
        prop_assume!(stays_in_fixtures(&text));
        let path = fixtures().join("valid/generated.yml");
        match fuzzing::config(&text, &path) {
            Ok(_) => {}
            Err(e @ ConfigError::Invalid { .. }) => assert_positions(&path, &text, &e.lines())?,
            Err(e) => prop_assert!(false, "parse read the config file itself: {e}"),
        }
    }

    #[test]
    fn distinct_valid_targets_all_parse_in_file_order(
        ports in prop::collection::btree_set(1u16..=65535, 1..8),
        interval in 2u64..3600,
        timeout_part in 1u64..100,
    ) {
        let timeout = (interval * timeout_part / 100).max(1);
        let mut text = String::from("targets:\n");
        for port in &ports {
            text.push_str(&format!(
                "  - address: 127.0.0.1:{port}\n    interval: {interval}s\n    timeout: {timeout}s\n"
            ));
        }
        let path = fixtures().join("valid/generated.yml");
        let parsed = fuzzing::config(&text, &path);
        prop_assert!(parsed.is_ok(), "{}\n--- text:\n{text}", parsed.err().map(|e| e.to_string()).unwrap_or_default());
        let config = parsed.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ports: Vec<u16> = ports.into_iter().collect();
        let got: Vec<u16> = config.targets.iter().map(|t| t.port).collect();
        prop_assert_eq!(got, ports);
        for t in &config.targets {
            prop_assert_eq!(t.interval.as_secs(), interval);
            prop_assert_eq!(t.timeout.as_secs(), timeout);
        }
    }

    #[test]
    fn web_config_problems_carry_file_line_and_column(text in yaml_text(web_line())) {
        prop_assume!(stays_in_fixtures(&text));
        let path = fixtures().join("web/generated.yml");
        match fuzzing::web_config(&text, &path) {
            Ok(_) => {}
            Err(WebConfigError::Invalid { path: p, problems }) => {
                assert_positions(&path, &text, &ConfigError::Invalid { path: p, problems }.lines())?;
            }
            Err(e) => prop_assert!(false, "parse read the web config file itself: {e}"),
        }
    }

    #[test]
    fn basic_auth_users_without_colon_are_accepted_and_with_colon_refused(
        user in "[a-z][a-z0-9_.-]{0,15}",
        colon in prop::bool::ANY,
    ) {
        let user = if colon { format!("{user}:x") } else { user };
        let hash = "$2b$04$1h9Vrjr99/u2iLhIPwR.f.0zYqhdmjD26I0/AheSKOQTPgBPuWe/S";
        let text = format!("basic_auth_users:\n  \"{user}\": '{hash}'\n");
        let path = fixtures().join("web/generated.yml");
        match fuzzing::web_config(&text, &path) {
            Ok(web) => prop_assert!(!colon && web.basic_auth() && !web.tls()),
            Err(WebConfigError::Invalid { path: p, problems }) => {
                prop_assert!(colon, "{problems:?}");
                assert_positions(&path, &text, &ConfigError::Invalid { path: p, problems }.lines())?;
            }
            Err(e) => prop_assert!(false, "parse read the web config file itself: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates

fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| Ca::root("properties CA"))
}

fn dns_label() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,9}"
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn minted_certificates_read_back_as_minted(
        cn in dns_label(),
        sans in prop::collection::vec((dns_label(), dns_label()), 1..4),
        not_before in 0i64..4_000_000_000,
        lifetime in 1i64..400 * 86_400,
        serial in 1u64..u64::MAX / 2,
    ) {
        let sans: Vec<String> = sans.into_iter().map(|(a, b)| format!("{a}.{b}.example")).collect();
        let names: Vec<&str> = sans.iter().map(String::as_str).collect();
        let spec = Spec::leaf(&cn).sans(&names).valid(not_before, not_before + lifetime).serial(serial);
        let cert = ca().leaf(&spec);
        let facts = fuzzing::cert(cert.der.as_ref());
        prop_assert!(facts.is_ok(), "{:?}", facts.err().map(|e| e.to_string()));
        let facts = facts.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(facts.not_before, not_before);
        prop_assert_eq!(facts.not_after, not_before + lifetime);
        prop_assert_eq!(&facts.cn, &cn);
        for san in &sans {
            prop_assert!(facts.dns_names.split(',').any(|n| n == san), "{} not in {}", san, facts.dns_names);
        }
        prop_assert_eq!(facts.fingerprint_sha256, cert.fingerprint());
        prop_assert!(!facts.self_issued);
    }

    #[test]
    fn certificates_cut_short_or_followed_by_bytes_are_refused(cut in any::<prop::sample::Index>(), extra in prop::collection::vec(any::<u8>(), 1..8)) {
        let der = ca().cert.der.as_ref();
        let short = &der[..cut.index(der.len())];
        prop_assert!(fuzzing::cert(short).is_err());
        let mut long = der.to_vec();
        long.extend_from_slice(&extra);
        prop_assert!(fuzzing::cert(&long).is_err());
    }

    #[test]
    fn altered_certificates_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), noise in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut der = ca().cert.der.as_ref().to_vec();
        let i = at.index(der.len());
        der[i] = byte;
        let _ = fuzzing::cert(&der);
        let _ = fuzzing::cert(&noise);
    }
}

// ---------------------------------------------------------------------------------------------
// Stapled OCSP responses, against fixtures made with `openssl ocsp` (fuzz/make-seeds)

static LEAF_GOOD: &[u8] = include_bytes!("../fixtures/der/server.der");
static LEAF_REVOKED: &[u8] = include_bytes!("../fixtures/der/client.der");
static OCSP_CA: &[u8] = include_bytes!("../fixtures/der/ca.der");
static RESPONSE_GOOD: &[u8] = include_bytes!("../fixtures/der/ocsp-good.der");
static RESPONSE_REVOKED: &[u8] = include_bytes!("../fixtures/der/ocsp-revoked.der");
/// 2025-01-01: inside every fixture's validity (freshness is not judged by `check`).
const OCSP_NOW: i64 = 1_735_689_600;

fn ocsp_issuer() -> &'static Issuer {
    static ISSUER: OnceLock<Issuer> = OnceLock::new();
    ISSUER.get_or_init(|| Issuer::from_cert(OCSP_CA).expect("the CA fixture parses"))
}

/// `check` against the issuer, and `check_chain` with the issuer sent after the leaf: the two
/// entry points agree.
fn both_checks(response: &[u8], leaf: &[u8]) -> Result<Result<Stapled, String>, TestCaseError> {
    let direct = fuzzing::ocsp(response, leaf, ocsp_issuer(), OCSP_NOW);
    let chain: [CertificateDer<'static>; 2] = [leaf.to_vec().into(), OCSP_CA.to_vec().into()];
    let found = fuzzing::ocsp_chain(response, &chain, &[], OCSP_NOW);
    prop_assert_eq!(&direct, &found);
    Ok(direct.map_err(|e| e.to_string()))
}

#[test]
fn ocsp_fixtures_verify_with_their_status() {
    let good = fuzzing::ocsp(RESPONSE_GOOD, LEAF_GOOD, ocsp_issuer(), OCSP_NOW).expect("good");
    assert_eq!(good.status, CertStatus::Good);
    let revoked =
        fuzzing::ocsp(RESPONSE_REVOKED, LEAF_REVOKED, ocsp_issuer(), OCSP_NOW).expect("revoked");
    assert!(
        matches!(revoked.status, CertStatus::Revoked { .. }),
        "{revoked:?}"
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_altered_ocsp_response_changes_a_status(
        revoked in prop::bool::ANY,
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let (response, leaf) = if revoked { (RESPONSE_REVOKED, LEAF_REVOKED) } else { (RESPONSE_GOOD, LEAF_GOOD) };
        let mut altered = response.to_vec();
        let i = at.index(altered.len());
        altered[i] ^= xor;
        if let Some(cut) = cut {
            altered.truncate(cut.index(altered.len()));
        }
        if let Ok(stapled) = both_checks(&altered, leaf)? {
            let good = stapled.status == CertStatus::Good;
            prop_assert_eq!(good, !revoked, "byte {} ^ {:#04x} changed the status: {:?}", i, xor, stapled);
        }
    }

    #[test]
    fn arbitrary_bytes_never_verify(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(both_checks(&bytes, LEAF_GOOD)?.is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// The legacy scan's reader of a server's first flight

const CAPTURE: [Option<u16>; 6] = [
    None,
    Some(0x0300),
    Some(0x0301),
    Some(0x0302),
    Some(0x0303),
    Some(0x0304),
];

fn u16_prefixed(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut msg = vec![kind];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(body);
    msg
}

fn record(content_type: u8, minor: u8, payload: &[u8]) -> Vec<u8> {
    let mut rec = vec![content_type, 3, minor];
    u16_prefixed(&mut rec, payload);
    rec
}

fn server_hello(version: u16, suite: u16, random: [u8; 32]) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&random);
    body.push(0);
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(0);
    handshake(2, &body)
}

/// A flight that looks like TLS: records of plausible types, some holding handshake messages
/// (a ServerHello, a Certificate, ServerHelloDone or noise), split and joined at random.
fn flight_bytes() -> impl Strategy<Value = Vec<u8>> {
    let message = prop_oneof![
        (0x0300u16..=0x0304, any::<u16>(), any::<[u8; 32]>())
            .prop_map(|(v, s, r)| server_hello(v, s, r)),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..3).prop_map(|certs| {
            let mut list = Vec::new();
            for c in certs {
                list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
                list.extend_from_slice(&c);
            }
            let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
            body.extend_from_slice(&list);
            handshake(11, &body)
        }),
        Just(handshake(14, &[])),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(k, b)| handshake(k, &b)),
    ];
    let rec = prop_oneof![
        4 => (0u8..4, prop::collection::vec(message, 1..3)).prop_map(|(minor, msgs)| record(22, minor, &msgs.concat())),
        1 => (20u8..=24, 0u8..4, prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(t, minor, b)| record(t, minor, &b)),
    ];
    prop_oneof![
        4 => prop::collection::vec(rec, 0..5).prop_map(|r| r.concat()),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn flights_read_the_same_however_the_bytes_are_cut(
        bytes in flight_bytes(),
        capture in prop::sample::select(CAPTURE.to_vec()),
        chunk in 1usize..64,
    ) {
        let whole = fuzzing::legacy_flight(capture, &bytes, bytes.len());
        let pieces = fuzzing::legacy_flight(capture, &bytes, chunk);
        prop_assert_eq!(whole, pieces);
    }

    #[test]
    fn a_server_hello_is_read_as_the_version_and_suite_it_chose(
        version in 0x0300u16..=0x0303,
        suite in any::<u16>(),
        random in any::<[u8; 32]>(),
        chunk in 1usize..16,
    ) {
        let bytes = record(22, 3, &server_hello(version, suite, random));
        let answer = fuzzing::legacy_flight(None, &bytes, chunk);
        let want = format!("Hello(Hello {{ version: {version}, suite: {suite}, retry: false, chain: None }})");
        prop_assert_eq!(answer, want);
    }
}

// ---------------------------------------------------------------------------------------------
// STARTTLS dialogues

/// The server's side of a successful upgrade, per protocol.
fn transcript(proto: StartTls) -> Vec<u8> {
    let mysql = {
        let mut p =
            b"\x0a8.0.36\x00\x08\x00\x00\x00abcdefgh\x00\xff\xff\x2d\x02\x00\xff\xdf\x15".to_vec();
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"ijklmnopqrst\x00caching_sha2_password\x00");
        let mut packet = (p.len() as u32).to_le_bytes()[..3].to_vec();
        packet.push(0);
        packet.extend_from_slice(&p);
        packet
    };
    let bytes: &[u8] = match proto {
        StartTls::Smtp => b"220-mx ESMTP\r\n220 hi\r\n250-mx\r\n250-STARTTLS\r\n250 8BITMIME\r\n220 go\r\n",
        StartTls::Imap => b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n* CAPABILITY {8}\r\nIMAP4rev\r\na1 OK go\r\n",
        StartTls::Pop3 => b"+OK ready.\r\n+OK go.\r\n",
        StartTls::Ftp => b"220-Welcome\r\n free text\r\n220 ready\r\n234 go\r\n",
        StartTls::Postgres => b"S",
        StartTls::Ldap => b"\x30\x0c\x02\x01\x01\x78\x07\x0a\x01\x00\x04\x00\x04\x00",
        StartTls::Xmpp => b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' version='1.0'>\
            <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
            </stream:features><proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
        StartTls::Mysql => &mysql,
        StartTls::Nntp => b"200 news ready\r\n382 go\r\n",
        StartTls::Sieve => b"\"IMPLEMENTATION\" \"x\"\r\n\"SIEVE\" {10}\r\nfileinto x\r\n\"STARTTLS\"\r\nOK\r\nOK \"go\"\r\n",
    };
    bytes.to_vec()
}

/// Bytes that look like some protocol's replies: numeric lines, `*`/`+OK` lines, literals,
/// XML tags, BER and packet headers, and noise.
fn server_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "220 hi\r\n",
            "220-more\r\n",
            "250-STARTTLS\r\n",
            "250 ok\r\n",
            "454 no\r\n",
            "234 go\r\n",
            "382 go\r\n",
            "* OK ready\r\n",
            "* CAPABILITY STARTTLS\r\n",
            "a1 OK go\r\n",
            "a1 NO\r\n",
            "+OK\r\n",
            "-ERR\r\n",
            "{3}\r\n",
            "x {5+}\r\n",
            "\"STARTTLS\"\r\n",
            "OK\r\n",
            "NO \"x\"\r\n",
            "<stream:stream>",
            "<stream:features>",
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
            "</stream:features>",
            "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
            "<a b='>'>",
            "</stream:stream>",
            "<stream:error><x/>",
            "S",
            "N",
            "E",
            "\n",
            "\r\n",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..24),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..16)
        )
            .prop_map(|(t, l, b)| {
                let mut v = vec![t, l];
                v.extend(b);
                v
            }),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn starttls_dialogues_end_without_waiting_on_any_bytes(
        proto in prop::sample::select(StartTls::ALL.to_vec()),
        bytes in server_bytes(),
        chunk in 1usize..64,
    ) {
        let answer = fuzzing::starttls(proto, &bytes, chunk);
        prop_assert!(answer.is_some(), "{proto}: the dialogue waited on a peer that never blocks");
    }

    #[test]
    fn starttls_transcripts_upgrade_however_the_bytes_arrive(
        proto in prop::sample::select(StartTls::ALL.to_vec()),
        chunk in 1usize..256,
    ) {
        let bytes = transcript(proto);
        let answer = fuzzing::starttls(proto, &bytes, chunk);
        prop_assert!(matches!(answer, Some(Ok(()))), "{proto}: {answer:?}");
    }

    #[test]
    fn bytes_pipelined_after_the_go_ahead_are_refused(
        proto in prop::sample::select(StartTls::ALL.to_vec()),
        extra in prop::collection::vec(any::<u8>(), 1..32),
    ) {
        let mut bytes = transcript(proto);
        bytes.extend_from_slice(&extra);
        let answer = fuzzing::starttls(proto, &bytes, bytes.len());
        prop_assert!(
            matches!(&answer, Some(Err(UpgradeError::Protocol(m))) if m.contains("after agreeing")),
            "{proto}: {answer:?}"
        );
    }
}
