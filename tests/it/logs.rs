//! The exporter's log as an operator reads it: lines shaped like Prometheus' own (logfmt and
//! JSON), one line per failing target, one summary of the first round, recoveries that say
//! from what and since when.

use std::time::{Duration, Instant};

use crate::support::exporter::{free_port, write, Exporter};
use crate::support::pki::{Ca, Spec};
use crate::support::servers::{self, Opts};

/// Two healthy targets and one whose port is closed, probed hourly (once, in the test).
async fn fleet(flags: &[&str]) -> (Exporter, servers::Server, u16) {
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    let closed = free_port();
    let ok = server.addr.port();
    let yaml = format!(
        "global: {{interval: 1h, timeout: 2s, ca_file: ca.pem, scan: false}}\ntargets:\n\
         \x20 - {{name: ok-a, address: 127.0.0.1:{ok}, server_name: localhost}}\n\
         \x20 - {{name: ok-b, address: 127.0.0.1:{ok}, server_name: localhost}}\n\
         \x20 - {{name: down, address: 127.0.0.1:{closed}}}\n"
    );
    (Exporter::start_with(dir, &yaml, flags), server, closed)
}

/// Waits until a log line contains `needle`, returning the whole log.
fn wait_log(e: &Exporter, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let log = e.log();
        if log.contains(needle) {
            return log;
        }
        assert!(
            start.elapsed() < crate::support::WAIT,
            "no log line with {needle:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `2026-12-01T19:49:41.312Z`: RFC 3339, UTC, milliseconds.
fn is_log_stamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        r.into_iter()
            .all(|i| b.get(i).is_some_and(u8::is_ascii_digit))
    };
    b.len() == 24
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && b[23] == b'Z'
}

/// The lines of a logfmt log without their `ts=… ` prefix, checking that prefix on each.
fn without_stamps(log: &str) -> Vec<String> {
    log.lines()
        .map(|line| {
            let rest = line.strip_prefix("ts=").and_then(|l| l.split_once(' '));
            let Some((_, rest)) = rest.filter(|(ts, _)| is_log_stamp(ts)) else {
                panic!("line without an RFC 3339 ts first: {line}\n--- log ---\n{log}");
            };
            rest.to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logfmt_lines_have_prometheus_keys_and_the_first_round_is_one_summary() {
    let (e, _server, closed) = fleet(&[]).await;
    let log = wait_log(&e, "first round");
    let lines = without_stamps(&log);
    for line in &lines {
        assert!(
            ["debug", "info", "warn", "error"]
                .iter()
                .any(|l| line.starts_with(&format!("level={l} msg="))),
            "level and msg after ts: {line}"
        );
        assert!(!line.contains("=\"\""), "empty field: {line}");
        assert!(!line.contains("tls_exporter::"), "module path: {line}");
    }
    let failing: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("target is failing"))
        .collect();
    let prefix = format!(
        "level=warn msg=\"target is failing\" target=down reason=connection_refused \
         detail=\"connect to 127.0.0.1:{closed}"
    );
    assert!(
        failing.len() == 1 && failing[0].starts_with(&prefix),
        "one failing line starting {prefix}:\n{log}"
    );
    assert!(
        lines.contains(
            &"level=info msg=\"first round: 2 healthy, 1 failing\" healthy=2 failing=1".to_string()
        ),
        "{log}"
    );
    assert!(!log.contains("target is healthy"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_have_the_same_keys_flat_at_the_top_level() {
    let (e, _server, closed) = fleet(&["--log.format=json"]).await;
    let log = wait_log(&e, "first round");
    let mut objects = Vec::new();
    for line in log.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
        // ts, level and msg first, in that order (serde_json's map is sorted: read the text).
        let level = line
            .strip_prefix("{\"ts\":\"")
            .and_then(|rest| rest.get(24..))
            .and_then(|rest| rest.strip_prefix("\",\"level\":\""))
            .and_then(|rest| rest.split_once('"'));
        assert!(
            level.is_some_and(|(_, rest)| rest.starts_with(",\"msg\":")),
            "ts, level, msg first: {line}"
        );
        let mut object = value.as_object().cloned().unwrap_or_default();
        let ts = object.remove("ts").unwrap_or_default();
        assert!(ts.as_str().is_some_and(is_log_stamp), "{line}");
        for nested in ["fields", "timestamp", "span", "spans"] {
            assert!(!object.contains_key(nested), "{nested} in {line}");
        }
        assert!(!line.contains("tls_exporter::"), "module path: {line}");
        objects.push(object);
    }
    let failing: Vec<_> = objects
        .iter()
        .filter(|o| o["msg"] == "target is failing")
        .cloned()
        .collect();
    assert_eq!(failing.len(), 1, "{log}");
    let mut failing = failing[0].clone();
    let detail = failing.remove("detail").unwrap_or_default();
    assert!(
        detail
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("connect to 127.0.0.1:{closed}"))),
        "{log}"
    );
    assert_eq!(
        serde_json::Value::Object(failing),
        serde_json::json!({
            "level": "warn",
            "msg": "target is failing",
            "target": "down",
            "reason": "connection_refused",
        })
    );
    let summary = serde_json::json!({
        "level": "info",
        "msg": "first round: 2 healthy, 1 failing",
        "healthy": 2,
        "failing": 1,
    });
    assert!(
        objects
            .iter()
            .any(|o| serde_json::Value::Object(o.clone()) == summary),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_says_what_from_for_how_long_and_since_when() {
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    let port = free_port();
    let yaml = format!(
        "global: {{interval: 1s, timeout: 800ms, ca_file: ca.pem, scan: false}}\ntargets:\n\
         \x20 - {{name: flappy, address: 127.0.0.1:{port}, server_name: localhost}}\n"
    );
    let e = Exporter::start(dir, &yaml);
    wait_log(&e, "target is failing");
    // The endpoint comes up on the port it was failing on.
    let mut opts = Opts::new(vec![leaf.der.clone()], leaf.key_der());
    opts.bind = ([127, 0, 0, 1], port).into();
    let _server = servers::rustls(opts).await;
    let log = wait_log(&e, "target recovered");
    let lines = without_stamps(&log);
    let line = lines
        .iter()
        .find(|l| l.contains("target recovered"))
        .expect("recovery line");
    // level=info msg="target recovered from connection_refused after failing for 2s"
    //   target=flappy was=connection_refused failing_since=2026-12-01T19:49:41Z
    let (head, since) = line
        .rsplit_once(" failing_since=")
        .unwrap_or_else(|| panic!("no failing_since: {line}"));
    let Some(after) = head
        .strip_prefix(
            "level=info msg=\"target recovered from connection_refused after failing for ",
        )
        .and_then(|rest| rest.strip_suffix("\" target=flappy was=connection_refused"))
    else {
        panic!("unexpected recovery line: {line}");
    };
    assert!(
        after.starts_with(|c: char| c.is_ascii_digit()) && after.ends_with('s'),
        "duration in words: {after}"
    );
    let stamp = since.strip_suffix('Z').map(|s| format!("{s}.000Z"));
    assert!(
        stamp.as_deref().is_some_and(is_log_stamp),
        "RFC 3339 failing_since: {since}"
    );
}
