//! blackbox_exporter's `modules:` (0.28) onto ours: the `http`, `tcp` (with `tls: true` or a
//! STARTTLS `query_response`) and `grpc` (with `tls: true`) probers become profiles with
//! `output: blackbox`; `icmp`, `dns` and plain TCP or gRPC are listed as skipped.
//!
//! What each setting becomes, or why it has none, is the tables and functions below; the shared
//! `tls_config` block is `tls_config`'s, the YAML is `profile`'s.

use super::profile::{Document, Key, Migrated, Output, Profile};
use super::tree::{Fields, Node};
use super::{modules_of, tls_config, Say};
use crate::config::{Problem, StartTls};

/// Probers that never speak TLS.
const NOT_TLS: [&str; 4] = ["icmp", "dns", "unix", "websocket"];
/// A module's per-prober sections; those of another prober are ignored, as blackbox does.
const SECTIONS: [&str; 7] = ["http", "tcp", "icmp", "dns", "grpc", "unix", "websocket"];

/// Settings of `http:` without an equivalent, and why.
const HTTP_UNMAPPED: [(&str, &str); 29] = [
    (
        "valid_http_versions",
        "tls_exporter speaks HTTP/1.1 and does not judge the version",
    ),
    ("method", "tls_exporter sends only GET"),
    ("body", "tls_exporter sends only GET"),
    ("body_file", "tls_exporter sends only GET"),
    (
        "follow_redirects",
        "tls_exporter reports the first response and follows no redirect",
    ),
    ("no_follow_redirects", "tls_exporter follows no redirect"),
    (
        "fail_if_body_matches_regexp",
        "tls_exporter does not judge the body",
    ),
    (
        "fail_if_body_not_matches_regexp",
        "tls_exporter does not judge the body",
    ),
    (
        "fail_if_body_json_matches_cel",
        "tls_exporter does not judge the body",
    ),
    (
        "fail_if_body_json_not_matches_cel",
        "tls_exporter does not judge the body",
    ),
    (
        "fail_if_header_matches",
        "tls_exporter does not judge headers; it reports HSTS",
    ),
    (
        "fail_if_header_not_matches",
        "tls_exporter does not judge headers; it reports HSTS",
    ),
    ("basic_auth", "tls_exporter sends no credentials"),
    ("authorization", "tls_exporter sends no credentials"),
    ("bearer_token", "tls_exporter sends no credentials"),
    ("bearer_token_file", "tls_exporter sends no credentials"),
    ("oauth2", "tls_exporter sends no credentials"),
    ("proxy_connect_header", "put proxy credentials in proxy_url"),
    ("no_proxy", "a module uses its proxy_url for every target"),
    ("proxy_from_environment", "set proxy_url"),
    (
        "skip_resolve_phase_with_proxy",
        "through a proxy, tls_exporter resolves names as proxy_url's scheme says",
    ),
    ("compression", "tls_exporter does not read the body"),
    (
        "body_size_limit",
        "tls_exporter drains a bounded body and discards it",
    ),
    ("enable_http2", "tls_exporter speaks HTTP/1.1"),
    ("enable_http3", "tls_exporter speaks HTTP/1.1"),
    ("http_headers", "tls_exporter sends only GET path with Host"),
    ("follow_redirect", "tls_exporter follows no redirect"),
    ("headers", "tls_exporter sends only GET path with Host"),
    ("valid_status_codes", ""),
];
/// Settings of `tcp:` without an equivalent, and why.
const TCP_UNMAPPED: [(&str, &str); 1] = [(
    "source_ip_address",
    "tls_exporter connects from the address the system picks",
)];
/// Settings of `grpc:` without an equivalent, and why.
const GRPC_UNMAPPED: [(&str, &str); 2] = [
    (
        "service",
        "tls_exporter does not call the gRPC health service",
    ),
    (
        "metadata",
        "tls_exporter does not call the gRPC health service",
    ),
];
/// Settings of a module without an equivalent (besides the sections).
const MODULE_UNMAPPED: [(&str, &str); 0] = [];
/// Why `tcp.query_response` steps other than the STARTTLS dialogue have no equivalent.
const ABOVE_TLS: &str = "tls_exporter checks the TLS layer, not the protocol above it";

/// Our modules for a blackbox_exporter config file; problems of every module at once.
pub(super) fn migrate(root: &Node) -> Result<Document, Vec<Problem>> {
    let (top, modules) = modules_of(root).map_err(|p| vec![p])?;
    let notes = top
        .rest()
        .into_iter()
        .map(|(key, _)| {
            format!("blackbox: top-level {key} is not a blackbox_exporter setting (ignored)")
        })
        .collect();
    Document::of_modules(notes, &modules, module)
}

fn module(name: &str, node: &Node) -> Result<Migrated, Problem> {
    let path = format!("modules.{name}");
    let mut m = node.fields(&path)?;
    let say = Say::new("blackbox", "blackbox_exporter", name);
    let Some(prober) = m.string("prober")? else {
        return Err(node.problem(&path, "no prober (http, tcp, grpc, icmp, dns)"));
    };
    let mut p = Profile::new(name, Output::Blackbox);
    let kept = match prober.as_str() {
        "http" => http(&mut m, &mut p, &say)?,
        "tcp" => tcp(&mut m, &mut p, &say)?,
        "grpc" => grpc(&mut m, &mut p, &say)?,
        other if NOT_TLS.contains(&other) => Err(format!("prober {other}")),
        other => Err(format!("prober {other}, unknown to blackbox_exporter 0.28")),
    };
    if let Err(why) = kept {
        return Ok(Migrated::Skipped(why));
    }
    if let Some(t) = m.take("timeout") {
        let text = t.string(&m.path_of("timeout"))?;
        match crate::config::parse_duration(&text) {
            Ok(_) => p.timeout = Some(text),
            Err(e) => p.note(say.text(&format!("timeout: {e} (ignored)"))),
        }
    }
    for section in SECTIONS {
        if m.take(section).is_some() {
            p.note(say.text(&format!(
                "{section} is not used by prober {prober} (ignored, as blackbox_exporter does)"
            )));
        }
    }
    say.rest(&mut p, m, &MODULE_UNMAPPED);
    Ok(Migrated::Profile(Box::new(p)))
}

/// `prober: http`: a handshake and one GET of the target URL's path. `Err` (not a problem):
/// a plain-HTTP check, skipped.
fn http(m: &mut Fields, p: &mut Profile, say: &Say) -> Result<Result<(), String>, Problem> {
    let mut h = m
        .fields("http")?
        .unwrap_or_else(|| Fields::empty(m.path_of("http")));
    if h.boolean("fail_if_ssl")? == Some(true) {
        return Ok(Err(
            "prober http with fail_if_ssl: true (plain HTTP)".to_string()
        ));
    }
    p.note(say.text(
        "prober http → a TLS handshake and one GET of the target URL's path: probe https:// \
         targets (tls_exporter refuses http:// ones)",
    ));
    match h.boolean("fail_if_not_ssl")? {
        Some(true) => p.note(say.text(
            "http.fail_if_not_ssl: true is what tls_exporter always does: a target without TLS \
             fails",
        )),
        Some(false) => p.note(say.text(
            "http.fail_if_not_ssl: false has no equivalent: tls_exporter always requires TLS",
        )),
        None => {}
    }
    ip_protocol(&mut h, p, say)?;
    if let Some(codes) = h.take("valid_status_codes") {
        let path = h.path_of("valid_status_codes");
        if !codes.items(&path)?.is_empty() {
            p.note(say.text(&format!(
                "{}: {codes} has no equivalent (with output: blackbox, probe_success needs a 2xx \
                 status; tls_http_status_code has the status to alert on)",
                say.rel(&path)
            )));
        }
    }
    if let Some(method) = h.take("method") {
        let path = h.path_of("method");
        if !method.string(&path)?.eq_ignore_ascii_case("GET") {
            say.unmapped(p, &path, &method, "tls_exporter sends only GET");
        }
    }
    if let Some(mut headers) = h.fields("headers")? {
        headers_onto(&mut headers, p, say)?;
        say.rest(p, headers, &[]);
    }
    if let Some(tls) = h.fields("tls_config")? {
        tls_config::map(tls, p, say)?;
    }
    if let Some(url) = h.string("proxy_url")? {
        p.proxy_url = Some(url);
    }
    say.rest(p, h, &HTTP_UNMAPPED);
    Ok(Ok(()))
}

/// `http.headers`: `Host` becomes `http.host`; every other header is reported by the caller
/// (left in `headers`), with the reason.
fn headers_onto(headers: &mut Fields, p: &mut Profile, say: &Say) -> Result<(), Problem> {
    let keys: Vec<String> = headers.clone().rest().into_iter().map(|(k, _)| k).collect();
    for key in keys {
        let Some(node) = headers.take(&key) else {
            continue;
        };
        let path = headers.path_of(&key);
        if key.eq_ignore_ascii_case("host") {
            p.http_host = Some(node.string(&path)?);
            p.note_on(
                Key::Http,
                say.text(&format!("{} → http.host", say.rel(&path))),
            );
        } else {
            say.unmapped(
                p,
                &path,
                &node,
                "tls_exporter sends only Host, its User-Agent and Connection: close",
            );
        }
    }
    Ok(())
}

/// `prober: tcp`: TLS from the first byte (`tls: true`) or after a STARTTLS `query_response`.
/// `Err`: plain TCP, skipped.
fn tcp(m: &mut Fields, p: &mut Profile, say: &Say) -> Result<Result<(), String>, Problem> {
    let mut t = m
        .fields("tcp")?
        .unwrap_or_else(|| Fields::empty(m.path_of("tcp")));
    let tls = t.boolean("tls")?.unwrap_or(false);
    let steps = match t.take("query_response") {
        Some(q) => steps(&q, &t.path_of("query_response"))?,
        None => Vec::new(),
    };
    let upgrade = steps.iter().position(|s| s.starttls);
    match upgrade {
        None if !tls => return Ok(Err("prober tcp without tls (plain TCP)".to_string())),
        None if !steps.is_empty() => p.note(say.text(&format!(
            "tcp.query_response ({} after the handshake) has no equivalent ({ABOVE_TLS})",
            count(steps.len())
        ))),
        None => {}
        Some(at) => {
            let before = steps.get(..at).unwrap_or_default();
            match recognize(before) {
                Some(protocol) => {
                    p.starttls = Some(protocol);
                    p.note_on(
                        Key::StartTls,
                        say.text(&format!(
                            "tcp.query_response {} and starttls: true → starttls: {protocol} \
                             (tls_exporter speaks the dialogue itself)",
                            span(0, at)
                        )),
                    );
                }
                None => p.note(say.text(&format!(
                    "tcp.query_response {} before starttls: true is not a dialogue tls_exporter \
                     recognizes: set starttls: by hand (one of {})",
                    span(0, at),
                    StartTls::ALL.map(StartTls::as_str).join(", ")
                ))),
            }
            let after = steps.len().saturating_sub(at + 1);
            if after > 0 {
                let verb = if after == 1 { "has" } else { "have" };
                p.note(say.text(&format!(
                    "tcp.query_response {} after the upgrade {verb} no equivalent ({ABOVE_TLS})",
                    span(at + 1, steps.len())
                )));
            }
            if tls {
                p.note(say.text(
                    "tcp.tls: true together with starttls: the upgrade wins, as in blackbox_exporter",
                ));
            }
        }
    }
    ip_protocol(&mut t, p, say)?;
    if let Some(tls) = t.fields("tls_config")? {
        tls_config::map(tls, p, say)?;
    }
    say.rest(p, t, &TCP_UNMAPPED);
    Ok(Ok(()))
}

/// `prober: grpc` with `tls: true`: the handshake only. `Err`: plain gRPC, skipped.
fn grpc(m: &mut Fields, p: &mut Profile, say: &Say) -> Result<Result<(), String>, Problem> {
    let mut g = m
        .fields("grpc")?
        .unwrap_or_else(|| Fields::empty(m.path_of("grpc")));
    if g.boolean("tls")? != Some(true) {
        return Ok(Err("prober grpc without tls".to_string()));
    }
    p.note(say.text(
        "prober grpc with tls: true → a TLS handshake; the gRPC health check has no equivalent",
    ));
    ip_protocol(&mut g, p, say)?;
    if let Some(tls) = g.fields("tls_config")? {
        tls_config::map(tls, p, say)?;
    }
    say.rest(p, g, &GRPC_UNMAPPED);
    Ok(Ok(()))
}

/// `preferred_ip_protocol` and `ip_protocol_fallback` of a section onto `ip_protocol` (ours
/// always falls back to the other family).
fn ip_protocol(section: &mut Fields, p: &mut Profile, say: &Say) -> Result<(), Problem> {
    let preferred_path = say
        .rel(&section.path_of("preferred_ip_protocol"))
        .to_string();
    let fallback_path = say
        .rel(&section.path_of("ip_protocol_fallback"))
        .to_string();
    let preferred = section.string("preferred_ip_protocol")?;
    let fallback = section.boolean("ip_protocol_fallback")?;
    match preferred.as_deref() {
        Some(family @ ("ip4" | "ip6")) => {
            let (ours, other) = if family == "ip4" {
                ("ip4", "IPv4 first, IPv6")
            } else {
                ("ip6", "IPv6 first, IPv4")
            };
            p.ip_protocol = Some(ours);
            p.note_on(
                Key::IpProtocol,
                say.text(&format!(
                    "{preferred_path}: {family} → ip_protocol: {ours} ({other} as fallback)"
                )),
            );
        }
        Some(other) => p.note(say.text(&format!(
            "{preferred_path}: {other} is neither ip4 nor ip6 (ignored: the resolver's order)"
        ))),
        None => {}
    }
    if fallback == Some(false) {
        p.note_on(
            Key::IpProtocol,
            say.text(&format!(
                "{fallback_path}: false has no equivalent (ip_protocol prefers a family and \
                 falls back to the other)"
            )),
        );
    }
    Ok(())
}

/// One `query_response` step, as far as recognizing a STARTTLS dialogue needs it.
#[derive(Debug, Default)]
struct Step {
    expect: Option<String>,
    send: Option<String>,
    starttls: bool,
}

fn steps(node: &Node, path: &str) -> Result<Vec<Step>, Problem> {
    let mut out = Vec::new();
    for (i, item) in node.items(path)?.iter().enumerate() {
        let mut f = item.fields(&format!("{path}[{i}]"))?;
        out.push(Step {
            expect: f.string("expect")?,
            send: f.string("send")?,
            starttls: f.boolean("starttls")?.unwrap_or(false),
        });
    }
    Ok(out)
}

/// The STARTTLS protocol whose usual blackbox script `steps` (those before `starttls: true`)
/// are: by what they send (`EHLO`, `. STARTTLS`, `STLS`, `AUTH TLS`, `<starttls/>`), and for a
/// bare `STARTTLS` by what they expect (NNTP's 382, ManageSieve's `"STARTTLS"`).
fn recognize(steps: &[Step]) -> Option<StartTls> {
    let sends: Vec<String> = steps
        .iter()
        .filter_map(|s| s.send.as_deref())
        .map(|s| s.trim().to_ascii_uppercase())
        .collect();
    let expects: Vec<String> = steps
        .iter()
        .filter_map(|s| s.expect.as_deref())
        .map(str::to_ascii_uppercase)
        .collect();
    let words = |s: &String| -> Vec<String> { s.split_whitespace().map(str::to_string).collect() };
    if sends
        .iter()
        .any(|s| s.starts_with("AUTH TLS") || s.starts_with("AUTH SSL"))
    {
        return Some(StartTls::Ftp);
    }
    if sends.iter().any(|s| s == "STLS") {
        return Some(StartTls::Pop3);
    }
    if sends
        .iter()
        .any(|s| s.contains("<STARTTLS") || s.contains("<STREAM:STREAM"))
    {
        return Some(StartTls::Xmpp);
    }
    if sends
        .iter()
        .any(|s| s.starts_with("EHLO") || s.starts_with("HELO"))
    {
        return Some(StartTls::Smtp);
    }
    if sends
        .iter()
        .any(|s| words(s).get(1).is_some_and(|w| w == "STARTTLS"))
    {
        return Some(StartTls::Imap);
    }
    if sends.iter().any(|s| s == "STARTTLS") {
        if expects.iter().any(|e| e.contains("382")) {
            return Some(StartTls::Nntp);
        }
        if expects
            .iter()
            .any(|e| e.contains("\"STARTTLS\"") || e.contains("SIEVE"))
        {
            return Some(StartTls::Sieve);
        }
    }
    None
}

/// `steps 1–5` (1-based, inclusive) for indexes `from..to`.
fn span(from: usize, to: usize) -> String {
    if to == from + 1 {
        format!("step {to}")
    } else {
        format!("steps {}–{to}", from + 1)
    }
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 step".to_string()
    } else {
        format!("{n} steps")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The profile of the one module in `yaml` (a `modules:` file), or why it was skipped.
    fn one(yaml: &str) -> Result<Profile, String> {
        let root = crate::config::parse_as::<Node>(yaml, "").expect("parses");
        let doc = migrate(&root).expect("migrates");
        match (doc.modules.as_slice(), doc.skipped.as_slice()) {
            ([p], []) => Ok(p.clone()),
            ([], [why]) => Err(why.clone()),
            _ => panic!("not one module: {doc:?}"),
        }
    }

    fn notes(p: &Profile) -> Vec<&str> {
        p.notes.iter().map(|(_, t)| t.as_str()).collect()
    }

    fn script(sends_expects: &[(&str, &str)]) -> String {
        let mut y =
            "modules:\n  m:\n    prober: tcp\n    tcp:\n      query_response:\n".to_string();
        for (k, v) in sends_expects {
            y.push_str(&format!("        - {k}: {v}\n"));
        }
        y
    }

    #[test]
    fn the_usual_smtp_script_becomes_starttls_smtp() {
        let p = one(&script(&[
            ("expect", "'^220 ([^ ]+) ESMTP (.+)$'"),
            ("send", "\"EHLO prober\\r\""),
            ("expect", "'^250-STARTTLS'"),
            ("send", "\"STARTTLS\\r\""),
            ("expect", "'^220'"),
            ("starttls", "true"),
            ("send", "\"QUIT\\r\""),
        ]))
        .expect("migrated");
        assert_eq!(p.starttls, Some(StartTls::Smtp));
        assert_eq!(
            notes(&p),
            [
                "blackbox: tcp.query_response steps 1–5 and starttls: true → starttls: smtp (tls_exporter speaks the dialogue itself)",
                "blackbox: tcp.query_response step 7 after the upgrade has no equivalent (tls_exporter checks the TLS layer, not the protocol above it)",
            ]
        );
    }

    #[test]
    fn imap_pop3_ftp_and_xmpp_scripts_are_recognized() {
        let cases = [
            (
                vec![
                    ("expect", "'OK.*STARTTLS'"),
                    ("send", "'. STARTTLS'"),
                    ("expect", "OK"),
                ],
                StartTls::Imap,
            ),
            (
                vec![("expect", "'^\\+OK'"), ("send", "STLS")],
                StartTls::Pop3,
            ),
            (
                vec![
                    ("expect", "'^220'"),
                    ("send", "'AUTH TLS'"),
                    ("expect", "'^234'"),
                ],
                StartTls::Ftp,
            ),
            (
                vec![
                    ("send", "\"<stream:stream xmlns='jabber:client' to='a'>\""),
                    (
                        "send",
                        "\"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\"",
                    ),
                    ("expect", "'<proceed'"),
                ],
                StartTls::Xmpp,
            ),
            (
                vec![
                    ("expect", "'^200'"),
                    ("send", "STARTTLS"),
                    ("expect", "'^382'"),
                ],
                StartTls::Nntp,
            ),
        ];
        for (steps, protocol) in cases {
            let mut steps = steps;
            steps.push(("starttls", "true"));
            let p = one(&script(&steps)).expect("migrated");
            assert_eq!(p.starttls, Some(protocol), "{steps:?}");
        }
    }

    #[test]
    fn an_unrecognized_starttls_script_asks_for_starttls_by_hand() {
        let p = one(&script(&[("send", "HELLO"), ("starttls", "true")])).expect("migrated");
        assert_eq!(p.starttls, None);
        assert!(
            notes(&p)[0].contains("set starttls: by hand"),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn tcp_without_tls_or_starttls_is_skipped() {
        let why = one(&script(&[("expect", "'^SSH-2.0-'")])).expect_err("plain TCP");
        assert_eq!(why, "m: prober tcp without tls (plain TCP)");
    }

    #[test]
    fn a_dialogue_after_an_implicit_handshake_has_no_equivalent() {
        let p = one("modules:\n  m:\n    prober: tcp\n    tcp:\n      tls: true\n      query_response:\n        - expect: '^\\+OK'\n")
            .expect("migrated");
        assert_eq!(p.starttls, None);
        assert_eq!(
            notes(&p),
            ["blackbox: tcp.query_response (1 step after the handshake) has no equivalent (tls_exporter checks the TLS layer, not the protocol above it)"]
        );
    }

    #[test]
    fn preferred_ip_protocol_maps_and_a_disabled_fallback_is_noted() {
        let p = one("modules:\n  m:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n")
            .expect("migrated");
        assert_eq!(p.ip_protocol, Some("ip4"));
        assert_eq!(
            &notes(&p)[1..],
            [
                "blackbox: http.preferred_ip_protocol: ip4 → ip_protocol: ip4 (IPv4 first, IPv6 as fallback)",
                "blackbox: http.ip_protocol_fallback: false has no equivalent (ip_protocol prefers a family and falls back to the other)",
            ]
        );
    }

    #[test]
    fn non_default_valid_status_codes_are_noted_and_empty_ones_are_not() {
        let p = one(
            "modules:\n  m:\n    prober: http\n    http:\n      valid_status_codes: [200, 301]\n",
        )
        .expect("migrated");
        assert!(
            notes(&p)[1]
                .starts_with("blackbox: http.valid_status_codes: [200, 301] has no equivalent"),
            "{:?}",
            p.notes
        );
        let p = one("modules:\n  m:\n    prober: http\n    http:\n      valid_status_codes: []\n")
            .expect("migrated");
        assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
    }

    #[test]
    fn fail_if_not_ssl_is_what_we_always_do_and_fail_if_ssl_is_skipped() {
        let p = one("modules:\n  m:\n    prober: http\n    http:\n      fail_if_not_ssl: true\n")
            .expect("migrated");
        assert!(notes(&p)[1].contains("fail_if_not_ssl: true is what tls_exporter always does"));
        let why = one("modules:\n  m:\n    prober: http\n    http:\n      fail_if_ssl: true\n")
            .expect_err("plain HTTP");
        assert_eq!(why, "m: prober http with fail_if_ssl: true (plain HTTP)");
    }

    #[test]
    fn the_host_header_becomes_http_host_and_others_have_no_equivalent() {
        let p = one("modules:\n  m:\n    prober: http\n    http:\n      headers:\n        Host: v.example\n        X-A: b\n")
            .expect("migrated");
        assert_eq!(p.http_host.as_deref(), Some("v.example"));
        assert_eq!(
            notes(&p)[1..],
            [
                "blackbox: http.headers.Host → http.host",
                "blackbox: http.headers.X-A: b has no equivalent (tls_exporter sends only Host, its User-Agent and Connection: close)",
            ]
        );
    }

    #[test]
    fn proxy_url_and_timeout_map_and_a_bad_timeout_is_noted() {
        let p = one("modules:\n  m:\n    prober: http\n    timeout: 7s\n    http:\n      proxy_url: socks5://127.0.0.1:1080\n")
            .expect("migrated");
        assert_eq!(p.proxy_url.as_deref(), Some("socks5://127.0.0.1:1080"));
        assert_eq!(p.timeout.as_deref(), Some("7s"));
        let p = one("modules:\n  m:\n    prober: http\n    timeout: soon\n").expect("migrated");
        assert_eq!(p.timeout, None);
        assert!(
            notes(&p)[1].starts_with("blackbox: timeout: invalid duration \"soon\""),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn grpc_with_tls_is_a_handshake_and_without_is_skipped() {
        let p = one("modules:\n  m:\n    prober: grpc\n    grpc:\n      tls: true\n")
            .expect("migrated");
        assert_eq!(p.output, Output::Blackbox);
        let why = one("modules:\n  m:\n    prober: grpc\n").expect_err("plain gRPC");
        assert_eq!(why, "m: prober grpc without tls");
    }

    #[test]
    fn icmp_and_dns_are_skipped() {
        assert_eq!(
            one("modules:\n  m:\n    prober: icmp\n"),
            Err("m: prober icmp".to_string())
        );
        assert_eq!(
            one("modules:\n  m:\n    prober: dns\n"),
            Err("m: prober dns".to_string())
        );
    }

    #[test]
    fn every_bad_module_is_a_problem_with_its_position() {
        let root = crate::config::parse_as::<Node>(
            "modules:\n  a:\n    timeout: 5s\n  b:\n    prober: tcp\n    tcp:\n      tls: yes please\n",
            "",
        )
        .expect("parses");
        let problems: Vec<String> = migrate(&root)
            .expect_err("two bad modules")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "3:5: modules.a: no prober (http, tcp, grpc, icmp, dns)",
                "7:12: modules.b.tcp.tls: expected true or false, found a string",
            ]
        );
    }

    #[test]
    fn unknown_top_level_keys_are_noted() {
        let root = crate::config::parse_as::<Node>("modules: {}\nextra: 1\n", "").expect("parses");
        let doc = migrate(&root).expect("migrates");
        assert_eq!(
            doc.notes,
            ["blackbox: top-level extra is not a blackbox_exporter setting (ignored)"]
        );
    }
}
