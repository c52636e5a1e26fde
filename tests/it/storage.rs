//! `--storage.path`: the latest outcomes survive a restart with their original timestamp, for
//! unchanged targets only; unusable state files and paths are warnings, never fatal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tls_exporter::shard::stable_hash;
use tls_exporter::storage;

use crate::support::exporter::{write, Exporter};
use crate::support::pki::{Ca, Spec};
use crate::support::servers::{self, Opts};
use crate::support::WAIT;

/// Probe interval of the restart tests: long, so the probes after a restart come late.
const INTERVAL_MS: u64 = 60_000;

/// `n` target names whose first probe (at a stable offset in the interval) comes between 1.5
/// and 4 seconds after start: soon enough to wait for, late enough to scrape before it.
fn late_names(n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("restart-{i}"))
        .filter(|name| (1_500..4_000).contains(&(stable_hash(name) % INTERVAL_MS)))
        .take(n)
        .collect()
}

struct Pki {
    ca_pem: String,
    server: servers::Server,
}

async fn server() -> Pki {
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    Pki {
        ca_pem: root.cert.pem.clone(),
        server,
    }
}

/// A config probing `port` as each of `names` (`extra` appended to every target).
fn config(port: u16, names: &[(&str, &str)]) -> String {
    let mut y =
        format!("global: {{interval: {INTERVAL_MS}ms, timeout: 2s, ca_file: ca.pem}}\ntargets:\n");
    for (name, extra) in names {
        y.push_str(&format!(
            "  - {{name: {name}, address: \"127.0.0.1:{port}\", server_name: localhost{extra}}}\n"
        ));
    }
    y
}

/// Starts an exporter in a fresh directory with `ca_pem` beside its config and state at `state`.
fn start(ca_pem: &str, yaml: &str, state: &Path) -> Exporter {
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", ca_pem);
    let flag = format!("--storage.path={}", state.display());
    Exporter::start_with(dir, yaml, &[&flag])
}

fn stop(mut e: Exporter) {
    e.signal("TERM");
    assert_eq!(e.wait_exit(Duration::from_secs(8)), Some(0), "{}", e.log());
}

/// Waits until the log has a line containing every one of `parts`.
fn wait_log(e: &Exporter, parts: &[&str]) -> String {
    let start = std::time::Instant::now();
    loop {
        let log = e.log();
        if let Some(line) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.to_string();
        }
        assert!(start.elapsed() < WAIT, "no log line with {parts:?}:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The target's series, without those that move with the clock (days left) or count this
/// process's probes.
fn lasting_series(m: &crate::support::exporter::Exposition, name: &str) -> Vec<String> {
    let mut lines: Vec<String> = m
        .lines_of(name)
        .into_iter()
        .filter(|l| !l.contains("days_to_expiry") && !l.starts_with("tls_probes_total"))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

fn state_path() -> (tempfile::TempDir, PathBuf) {
    let dir = Exporter::dir();
    let path = dir.path().join("state.json");
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_series_carry_the_original_probe_timestamp() {
    let pki = server().await;
    let names = late_names(1);
    let name = names[0].as_str();
    let yaml = config(pki.server.addr.port(), &[(name, "")]);
    let (_state_dir, state) = state_path();

    let e = start(&pki.ca_pem, &yaml, &state);
    let before = e.wait_probes(name, 1);
    let stamp = format!("tls_probe_timestamp_seconds{{target=\"{name}\"}}");
    let probed_at = before.value(&stamp).expect("timestamp");
    stop(e);
    drop(pki.server);

    let e = start(&pki.ca_pem, &yaml, &state);
    // Before the first probe of this process (at least 1.5s away), the old series are back.
    let m = e.scrape();
    assert_eq!(m.value(&stamp), Some(probed_at), "{}", m.0);
    assert_eq!(lasting_series(&m, name), lasting_series(&before, name));
    m.assert_lines(&[
        format!("tls_probe_success{{target=\"{name}\"}} 1"),
        format!("tls_probes_total{{target=\"{name}\"}} 0"),
    ]);
    let line = wait_log(&e, &["restored the latest outcomes", "restored=1"]);
    assert!(line.contains("changed=0"), "{line}");
    // The first probe replaces them: the server is gone now.
    e.wait_for("a probe of the stopped server", |m| {
        m.value(&format!("tls_probe_success{{target=\"{name}\"}}")) == Some(0.0)
            && m.value(&stamp).is_some_and(|t| t > probed_at)
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_target_starts_fresh_and_unchanged_one_is_restored() {
    let pki = server().await;
    let names = late_names(2);
    let (changed, kept) = (names[0].as_str(), names[1].as_str());
    let port = pki.server.addr.port();
    let (_state_dir, state) = state_path();

    let e = start(
        &pki.ca_pem,
        &config(port, &[(changed, ""), (kept, "")]),
        &state,
    );
    e.wait_probes(changed, 1);
    e.wait_probes(kept, 1);
    stop(e);

    let yaml = config(port, &[(changed, ", timeout: 3s"), (kept, "")]);
    let e = start(&pki.ca_pem, &yaml, &state);
    let m = e.scrape();
    assert!(
        m.lines_of(changed)
            .iter()
            .all(|l| !l.starts_with("tls_probe_success")),
        "changed target {changed} was restored:\n{}",
        m.0
    );
    m.assert_lines(&[format!("tls_probe_success{{target=\"{kept}\"}} 1")]);
    wait_log(
        &e,
        &["restored the latest outcomes", "restored=1", "changed=1"],
    );
}

/// Starts an exporter on a state file holding `contents` and checks that it warns with
/// `reason` and probes anyway; a state file of ours (`ours`) is replaced by the first save,
/// anything else is left alone with a warning.
async fn unusable_file_is_ignored(contents: &[u8], reason: &str, ours: bool) {
    let pki = server().await;
    let (_state_dir, state) = state_path();
    std::fs::write(&state, contents).expect("write state file");
    let e = start(&pki.ca_pem, &one_target(pki.server.addr.port()), &state);
    let want = format!("ignoring the state file {}: {reason}", state.display());
    let line = wait_log(&e, &["level=warn", &want]);
    let then = if ours {
        "the file is replaced at the next save"
    } else {
        "the file is left alone, and no state is saved until it is removed or --storage.path names another file"
    };
    assert!(line.contains(then), "{line}");
    e.wait_probes("t", 1);
    if !ours {
        wait_log(
            &e,
            &[
                "level=warn",
                "it holds a file that is not a tls_exporter state file (left alone: remove it or choose another --storage.path)",
            ],
        );
    }
    stop(e);
    if ours {
        let saved = storage::load(&state, storage::MAX_FILE_BYTES)
            .unwrap_or_else(|err| panic!("the file is not ours yet: {err}"))
            .expect("a state file");
        assert_eq!(saved.targets.len(), 1);
    } else {
        assert_eq!(std::fs::read(&state).expect("read"), contents);
    }
}

/// A config with one target `t` probed every second.
fn one_target(port: u16) -> String {
    format!(
        "global: {{interval: 1s, timeout: 800ms, ca_file: ca.pem}}\ntargets:\n  - {{name: t, address: \"127.0.0.1:{port}\", server_name: localhost}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_state_file_is_ignored_with_a_warning_and_left_alone() {
    unusable_file_is_ignored(
        b"\x89PNG\r\n\x1a\n not state",
        "it is not JSON (expected value at line 1 column 1)",
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_state_file_is_ignored_with_a_warning() {
    unusable_file_is_ignored(
        b"{\"format\":\"tls_exporter state\",\"version\":1,\"saved_at\":{\"secs_",
        "it is truncated (EOF while parsing a string at line 1 column 61)",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_file_of_another_version_is_ignored_with_a_warning() {
    unusable_file_is_ignored(
        b"{\"format\":\"tls_exporter state\",\"version\":999,\"saved_at\":0,\"targets\":[]}",
        "it has state format version 999, and this exporter reads version 1 only",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_state_path_warns_and_the_exporter_runs() {
    let pki = server().await;
    let (dir, _) = state_path();
    let state = dir.path().join("missing").join("state.json");
    let e = start(&pki.ca_pem, &one_target(pki.server.addr.port()), &state);
    let want = format!(
        "cannot save the state to {}: create {}.tmp: No such file or directory (os error 2)",
        state.display(),
        state.display()
    );
    wait_log(&e, &["level=warn", &want]);
    e.wait_probes("t", 2);
    // One warning for a lasting problem, not one per save.
    assert_eq!(
        e.log().matches("cannot save the state").count(),
        1,
        "{}",
        e.log()
    );
    stop(e);
}
