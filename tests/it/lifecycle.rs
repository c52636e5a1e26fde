//! The exporter as a process: reloads, removed targets, endpoints, signals, exposition format.

use std::process::Command;
use std::time::Duration;

use crate::support::exporter::{write, Exporter};
use crate::support::pki::{Ca, Spec};
use crate::support::servers::{self, Opts};

/// `POST /-/reload` is opt-in.
const LIFECYCLE: &str = "--web.enable-lifecycle";

struct Fixture {
    _server: servers::Server,
    port: u16,
    dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let root = Ca::root("Test Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    Fixture {
        port: server.addr.port(),
        _server: server,
        dir,
    }
}

fn targets(port: u16, names: &[&str]) -> String {
    let mut y = "global: {interval: 1s, timeout: 800ms, ca_file: ca.pem}\ntargets:\n".to_string();
    for n in names {
        y.push_str(&format!("  - name: {n}\n    address: 127.0.0.1:{port}\n    server_name: localhost\n    labels: {{team: core}}\n"));
    }
    y
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_good_config_and_removed_series_vanish() {
    let f = fixture().await;
    let e = Exporter::start_with(f.dir, &targets(f.port, &["a", "b"]), &[LIFECYCLE]);
    e.wait_for("both targets probed", |m| {
        m.value("tls_probe_success{target=\"a\",team=\"core\"}") == Some(1.0)
            && m.value("tls_probe_success{target=\"b\",team=\"core\"}") == Some(1.0)
    });
    std::fs::write(&e.config, targets(f.port, &["a", "c"])).expect("rewrite config");
    let (status, body) = e.post("/-/reload").expect("reload");
    assert_eq!(status, 200, "{body}");
    let m = e.wait_for("new target c probed", |m| {
        m.value("tls_probe_success{target=\"c\",team=\"core\"}") == Some(1.0)
    });
    assert!(
        m.lines_of("b").is_empty(),
        "series of removed target b remain:\n{}",
        m.0
    );
    m.assert_lines(&[
        "tls_exporter_config_last_reload_successful 1".to_string(),
        "tls_exporter_targets 2".to_string(),
    ]);
    // Unchanged target a kept its history across the reload.
    assert!(
        m.value("tls_probes_total{target=\"a\",team=\"core\"}")
            .unwrap_or(0.0)
            >= 1.0
    );
}

/// A config rewritten in place in two writes a moment apart (as `cat >` or an editor may) is
/// reloaded once, whole: the watcher sees the first half (the test waits for it to say so) and
/// waits for the file to hold still for 500 ms, so the first half (which parses, with one target
/// of three) is never applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_written_in_place_is_reloaded_once_it_holds_still() {
    use std::io::Write;
    let f = fixture().await;
    let e = Exporter::start_with(
        f.dir,
        &targets(f.port, &["a", "b"]),
        &["--config.watch-interval=100ms"],
    );
    e.wait_for("both targets probed", |m| {
        m.value("tls_probe_success{target=\"a\",team=\"core\"}") == Some(1.0)
            && m.value("tls_probe_success{target=\"b\",team=\"core\"}") == Some(1.0)
    });
    let whole = targets(f.port, &["a", "b", "c"]);
    let first = targets(f.port, &["a"]);
    let mut file = std::fs::File::create(&e.config).expect("truncate config");
    file.write_all(first.as_bytes()).expect("write first half");
    let seen = "waiting for them to hold still";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !e.log().contains(seen) {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher never saw the change:\n{}",
            e.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rest = whole.strip_prefix(first.as_str()).expect("prefix");
    file.write_all(rest.as_bytes()).expect("write the rest");
    drop(file);
    e.wait_for("c probed after the watcher's reload", |m| {
        m.value("tls_probe_success{target=\"c\",team=\"core\"}") == Some(1.0)
    });
    let log = e.log();
    let reloads: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("config reloaded"))
        .collect();
    assert_eq!(reloads.len(), 1, "one reload, of the whole file:\n{log}");
    assert!(reloads[0].contains("targets=3"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changing_concurrency_and_one_target_keeps_every_series() {
    let f = fixture().await;
    let e = Exporter::start_with(f.dir, &targets(f.port, &["a", "b"]), &[LIFECYCLE]);
    e.wait_probes("a\",team=\"core", 2);
    e.wait_probes("b\",team=\"core", 1);
    // New concurrency for all, a new timeout for b only.
    let changed = targets(f.port, &["a", "b"])
        .replace(
            "global: {interval: 1s, timeout: 800ms, ca_file: ca.pem}",
            "global: {interval: 1s, timeout: 800ms, concurrency: 3, ca_file: ca.pem}",
        )
        .replacen(
            "    labels: {team: core}\n  - name: b",
            "    labels: {team: core}\n  - name: b\n    timeout: 700ms",
            1,
        );
    assert!(changed.contains("timeout: 700ms"), "{changed}");
    std::fs::write(&e.config, changed).expect("rewrite config");
    let (status, body) = e.post("/-/reload").expect("reload");
    assert_eq!(status, 200, "{body}");
    // Right after the reload, before b's restarted loop probed again, nothing is missing.
    let m = e.scrape();
    m.assert_lines(&[
        "tls_probe_success{target=\"a\",team=\"core\"} 1".to_string(),
        "tls_probe_success{target=\"b\",team=\"core\"} 1".to_string(),
    ]);
    let a_before = m
        .value("tls_probes_total{target=\"a\",team=\"core\"}")
        .expect("a counter");
    let m = e.wait_probes("a\",team=\"core", a_before as u64 + 1);
    assert!(
        m.value("tls_probes_total{target=\"b\",team=\"core\"}")
            .unwrap_or(0.0)
            >= 1.0,
        "{}",
        m.0
    );
    // No probe is left counted as in flight by the loops the reload replaced.
    e.wait_for("in-flight probes settle", |m| {
        m.value("tls_exporter_probes_in_flight")
            .is_some_and(|v| v <= 2.0)
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_on_sighup_keeps_last_good_config() {
    let f = fixture().await;
    let e = Exporter::start_with(f.dir, &targets(f.port, &["a"]), &[LIFECYCLE]);
    e.wait_probes("a\",team=\"core", 1);
    let before = e
        .scrape()
        .value("tls_exporter_config_last_reload_success_timestamp_seconds")
        .expect("reload timestamp");
    std::fs::write(
        &e.config,
        "targets:\n  - address: 127.0.0.1:1\n    timeout: soon\n",
    )
    .expect("rewrite config");
    e.signal("HUP");
    let m = e.wait_for("reload failure", |m| {
        m.value("tls_exporter_config_last_reload_successful") == Some(0.0)
    });
    // Still probing the old target, and the failure is logged with file, line and field.
    let n = m
        .value("tls_probes_total{target=\"a\",team=\"core\"}")
        .unwrap_or(0.0);
    e.wait_probes("a\",team=\"core", n as u64 + 1);
    assert_eq!(
        m.value("tls_exporter_config_last_reload_success_timestamp_seconds"),
        Some(before)
    );
    assert!(
        e.log()
            .contains("config.yml:3:14: targets[0].timeout: invalid duration \\\"soon\\\""),
        "{}",
        e.log()
    );
    let (status, body) = e.post("/-/reload").expect("reload");
    assert_eq!(status, 400);
    assert!(body.contains("targets[0].timeout"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints_answer() {
    let f = fixture().await;
    let e = Exporter::start(f.dir, &targets(f.port, &["a<b>"]));
    e.wait_probes("a<b>\",team=\"core", 1);
    assert_eq!(e.get("/-/healthy").expect("healthy").0, 200);
    assert_eq!(e.get("/-/ready").expect("ready").0, 200);
    assert_eq!(e.get("/-/reload").expect("GET reload").0, 405);
    let (status, page) = e.get("/").expect("status page");
    assert_eq!(status, 200);
    assert!(
        page.contains(">a&lt;b&gt;</a></td>"),
        "escaped target name on status page:\n{page}"
    );
    assert!(page.contains(">ok<") && page.contains("TLS 1.3"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposition_passes_promtool_except_the_contract_days_name() {
    let f = fixture().await;
    let e = Exporter::start(f.dir, &targets(f.port, &["a"]));
    let m = e.wait_probes("a\",team=\"core", 1);
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/install-test-deps)");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(m.0.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The contract names tls_cert_days_to_expiry; promtool's lint wants base units.
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| !l.starts_with("tls_cert_days_to_expiry use base unit"))
        .collect();
    assert!(
        problems.is_empty(),
        "promtool check metrics:\n{report}\n--- exposition ---\n{}",
        m.0
    );
    for forbidden in ["job=", "instance=", "le=", "quantile="] {
        assert!(!m.0.contains(forbidden), "{forbidden} in exposition");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_promptly() {
    let f = fixture().await;
    let mut e = Exporter::start(f.dir, &targets(f.port, &["a"]));
    e.wait_probes("a\",team=\"core", 1);
    e.signal("TERM");
    assert_eq!(e.wait_exit(Duration::from_secs(7)), Some(0), "{}", e.log());
}

/// The release allocator's options took effect: jemalloc reads them from a symbol by name, and
/// a wrong name would silently leave the defaults (four purging threads, 10 s decay).
#[cfg(all(feature = "jemalloc", target_os = "linux"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allocator_is_jemalloc_with_one_purging_thread() {
    let f = fixture().await;
    let e = Exporter::start(f.dir, &targets(f.port, &["a"]));
    e.wait_probes("a\",team=\"core", 1);
    let names = || -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/task", e.pid()))
            .map(|dir| {
                dir.filter_map(|t| t.ok())
                    .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                    .map(|n| n.trim().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    // The purging thread starts with the first arena's decay work: give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = names();
    while !seen.iter().any(|n| n == "jemalloc_bg_thd") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = names();
    }
    let purgers = seen.iter().filter(|n| *n == "jemalloc_bg_thd").count();
    assert_eq!(purgers, 1, "threads: {seen:?}\n{}", e.log());
}

#[test]
fn version_flag_prints_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_tls_exporter"))
        .arg("--version")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("tls_exporter {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
}

#[test]
fn check_config_accepts_the_shipped_example() {
    // The example trusts the throwaway CA that scripts/run-example makes; lay out the same
    // relative paths in a temp dir.
    let dir = Exporter::dir();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.yml"))
            .expect("example");
    std::fs::create_dir_all(dir.path().join("config")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("target/example-pki")).expect("mkdir");
    let config = write(&dir.path().join("config"), "example.yml", &example);
    write(
        &dir.path().join("target/example-pki"),
        "ca.pem",
        &Ca::root("Example CA").cert.pem,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tls_exporter"))
        .arg("--check-config")
        .arg(format!("--config.file={}", config.display()))
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the container image does: the shipped container config, as a non-root user (65532,
/// distroless `nonroot`), nothing writable needed.
#[test]
fn runs_as_non_root_with_the_container_config() {
    let dir = Exporter::dir();
    let config = dir.path().join("config.yml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/container.yml"),
        &config,
    )
    .expect("copy");
    let port = crate::support::exporter::free_port();
    let bin = env!("CARGO_BIN_EXE_tls_exporter");
    let args = [
        format!("--config.file={}", config.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let mut cmd = if is_root {
        // The test binary and temp dir must be reachable by uid 65532.
        let mut perms = std::fs::metadata(dir.path()).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(dir.path(), perms).expect("chmod");
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65532", "--regid=65532", "--clear-groups", bin]);
        c
    } else {
        Command::new(bin)
    };
    let mut child = cmd
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = std::time::Instant::now();
    let healthy = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /-/healthy HTTP/1.0\r\n\r\n");
            let mut r = String::new();
            let _ = s.read_to_string(&mut r);
            break r.starts_with("HTTP/1.0 200");
        }
        if start.elapsed() > crate::support::WAIT || child.try_wait().ok().flatten().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let uid = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    assert!(
        healthy,
        "did not serve: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uid_line = uid
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        uid_line.split_whitespace().nth(1).is_some_and(|u| u != "0"),
        "ran as root: {uid_line}"
    );
}
