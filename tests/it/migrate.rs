//! `tls_exporter migrate` on fixtures written like the example configs blackbox_exporter and
//! ssl_exporter ship (`tests/fixtures/migrate/`): the exact output, that it is YAML of our
//! module schema (every key, every value we can judge), that today's config accepts each
//! module's settings on a target, and that bad input fails with file and line.
//!
//! Which setting maps to what is the unit tests' business (`src/migrate/`); the round trip
//! through `modules:` itself waits for the config to read them (ignored until then).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::support::exporter::write;
use crate::support::pki::{Ca, Spec};

/// Every setting a module may have in our schema.
const MODULE_KEYS: [&str; 15] = [
    "timeout",
    "interval",
    "ca_file",
    "client_cert_file",
    "client_key_file",
    "server_name",
    "ip_protocol",
    "resolve",
    "starttls",
    "http",
    "scan",
    "scan_interval",
    "probe",
    "proxy_url",
    "output",
];
/// Settings of a module that a target of today's config cannot have yet (other helpers').
const NOT_ON_TARGETS_YET: [&str; 2] = ["proxy_url", "output"];
/// `migrate` and `--check-config` only read small files.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn blackbox_fixture_migrates_to_its_expected_modules() {
    let out = migrate("blackbox", "blackbox.yml");
    assert_expected(&out, "blackbox.expected.yml");
}

#[test]
fn ssl_exporter_fixture_migrates_to_its_expected_modules() {
    let out = migrate("ssl_exporter", "ssl_exporter.yaml");
    assert_expected(&out, "ssl_exporter.expected.yml");
}

#[test]
fn migrated_modules_are_yaml_of_our_schema() {
    for (from, file) in [
        ("blackbox", "blackbox.yml"),
        ("ssl_exporter", "ssl_exporter.yaml"),
    ] {
        let text = stdout_of(&migrate(from, file));
        let modules = modules_of(&text);
        assert!(!modules.is_empty(), "{file}: no modules:\n{text}");
        for (name, module) in &modules {
            check_module(name, module).unwrap_or_else(|e| panic!("{file}: {name}: {e}\n{text}"));
            assert_eq!(module["output"], json!(from), "{file}: {name}");
        }
    }
}

#[test]
fn every_migrated_module_is_accepted_as_target_settings_today() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = pem_files(dir.path());
    for (from, file) in [
        ("blackbox", "blackbox.yml"),
        ("ssl_exporter", "ssl_exporter.yaml"),
    ] {
        let text = with_real_files(&stdout_of(&migrate(from, file)), &paths);
        let targets: Vec<Value> = modules_of(&text)
            .into_iter()
            .enumerate()
            .map(|(i, (name, module))| {
                let mut target: Map<String, Value> = module
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| !NOT_ON_TARGETS_YET.contains(&k.as_str()))
                    .collect();
                target.insert("name".into(), json!(name));
                target.insert("address".into(), json!(format!("127.0.0.1:{}", 1000 + i)));
                Value::Object(target)
            })
            .collect();
        let n = targets.len();
        // JSON is YAML.
        let config = write(
            dir.path(),
            "config.yml",
            &json!({ "targets": targets }).to_string(),
        );
        let run = check_config(&config);
        assert_eq!(
            (run.status.code(), stdout_of(&run)),
            (Some(0), format!("{}: ok, {n} targets\n", config.display())),
            "{file}: stderr: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

#[test]
fn migrated_modules_pass_check_config_with_a_target_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = pem_files(dir.path());
    for (from, file) in [
        ("blackbox", "blackbox.yml"),
        ("ssl_exporter", "ssl_exporter.yaml"),
    ] {
        let mut text = with_real_files(&stdout_of(&migrate(from, file)), &paths);
        let names: Vec<String> = modules_of(&text).into_iter().map(|(n, _)| n).collect();
        text.push_str("targets:\n");
        for (i, name) in names.iter().enumerate() {
            text.push_str(&format!(
                "  - {{name: {name}, address: '127.0.0.1:{}', module: {name}}}\n",
                1000 + i
            ));
        }
        let config = write(dir.path(), "config.yml", &text);
        let run = check_config(&config);
        assert_eq!(
            (run.status.code(), stdout_of(&run)),
            (
                Some(0),
                format!("{}: ok, {} targets\n", config.display(), names.len())
            ),
            "{file}: stderr: {}\n{text}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

#[test]
fn bad_input_fails_naming_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "blackbox.yml",
        "modules:\n  tls:\n    prober: tcp\n    tcp:\n      tls: [yes]\n  b: [\n",
    );
    let run = run_in(dir.path(), &["migrate", "--from=blackbox", "blackbox.yml"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(run.stdout.is_empty(), "{}", stdout_of(&run));
    assert!(stderr.starts_with("blackbox.yml:6:"), "{stderr}");

    write(
        dir.path(),
        "ssl.yaml",
        "modules:\n  m:\n    prober: tcp\n    timeout: [1]\n",
    );
    let run = run_in(dir.path(), &["migrate", "--from=ssl_exporter", "ssl.yaml"]);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        "ssl.yaml:4:14: modules.m.timeout: expected a string, found a list\n"
    );

    // Read like our config: regular files only (and at most 64 MiB, within 10 s).
    std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
    let run = run_in(dir.path(), &["migrate", "--from=blackbox", "conf.d"]);
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.starts_with("conf.d is not a regular file"),
        "{stderr}"
    );

    let run = run_in(dir.path(), &["migrate", "--from=blackbox", "missing.yml"]);
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.starts_with("cannot read missing.yml: "), "{stderr}");
}

#[test]
fn serving_flags_still_work_beside_the_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), "config.yml", "targets: []\n");
    let run = check_config(&config);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let run = run_in(dir.path(), &["migrate", "--from=nagios", "x.yml"]);
    assert_eq!(run.status.code(), Some(2), "clap's usage error");
}

// ---- helpers --------------------------------------------------------------------------------

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrate")
}

/// `tls_exporter migrate --from=FROM FILE` inside the fixture directory; must succeed.
fn migrate(from: &str, file: &str) -> Output {
    let run = run_in(
        &fixture_dir(),
        &["migrate", &format!("--from={from}"), file],
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "migrate {file}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    run
}

fn check_config(config: &Path) -> Output {
    let dir = config.parent().unwrap_or(Path::new("."));
    run_in(
        dir,
        &[
            "--check-config",
            &format!("--config.file={}", config.display()),
        ],
    )
}

/// Runs the binary with `args` in `dir`, killed after `RUN_TIMEOUT`.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tls_exporter"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tls_exporter");
    let deadline = Instant::now() + RUN_TIMEOUT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tls_exporter {args:?} still running after {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().expect("output")
}

fn stdout_of(run: &Output) -> String {
    String::from_utf8(run.stdout.clone()).expect("UTF-8 output")
}

/// Compares with the expected file; `MIGRATE_BLESS=1` rewrites it instead.
fn assert_expected(run: &Output, expected: &str) {
    let got = stdout_of(run);
    let path = fixture_dir().join(expected);
    if std::env::var_os("MIGRATE_BLESS").is_some() {
        std::fs::write(&path, &got).expect("write expected");
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .enumerate()
            .filter(|(_, (w, g))| w != g)
            .take(5)
            .map(|(i, (w, g))| format!("line {}:\n  want {w}\n  got  {g}", i + 1))
            .collect();
        panic!(
            "output differs from {expected} ({} vs {} lines):\n{}\n--- whole output ---\n{got}",
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

/// The `modules:` of a migrated text, in file order.
fn modules_of(text: &str) -> Vec<(String, Value)> {
    let doc: Value =
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"));
    let top = doc
        .as_object()
        .unwrap_or_else(|| panic!("not a mapping:\n{text}"));
    assert_eq!(top.keys().collect::<Vec<_>>(), ["modules"], "{text}");
    let modules = top["modules"]
        .as_object()
        .unwrap_or_else(|| panic!("modules: not a mapping"));
    let mut out: Vec<(String, Value)> = modules
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // serde_json's map is sorted; file order is not needed for these checks.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every key is one of our module settings and every value one we accept.
fn check_module(name: &str, module: &Value) -> Result<(), String> {
    let map = module.as_object().ok_or("not a mapping")?;
    let text = |k: &str| map.get(k).and_then(Value::as_str);
    for (key, value) in map {
        if !MODULE_KEYS.contains(&key.as_str()) {
            return Err(format!("{key} is not a module setting"));
        }
        let ok = match key.as_str() {
            "http" => value.as_object().is_some_and(|h| {
                h.iter()
                    .all(|(k, v)| ["path", "host"].contains(&k.as_str()) && v.is_string())
            }),
            "scan" => value.is_boolean(),
            _ => value.is_string(),
        };
        if !ok {
            return Err(format!("{key}: {value} has the wrong type"));
        }
    }
    for key in ["timeout", "interval", "scan_interval"] {
        if let Some(d) = text(key) {
            tls_exporter::config::parse_duration(d).map_err(|e| format!("{key}: {e}"))?;
        }
    }
    let one_of = |key: &str, allowed: &[&str]| match text(key) {
        Some(v) if !allowed.contains(&v) => Err(format!("{key}: {v} is not one of {allowed:?}")),
        _ => Ok(()),
    };
    one_of("ip_protocol", &["ip4", "ip6", "any"])?;
    one_of("resolve", &["first", "all"])?;
    one_of("probe", &["tls", "http_redirect"])?;
    one_of("output", &["tls_exporter", "blackbox", "ssl_exporter"])?;
    let starttls: Vec<&str> = tls_exporter::config::StartTls::ALL
        .iter()
        .map(|p| p.as_str())
        .collect();
    one_of("starttls", &starttls)?;
    if let Some(url) = text("proxy_url") {
        let scheme = url.split("://").next().unwrap_or_default();
        if !["http", "socks5", "socks5h"].contains(&scheme) {
            return Err(format!("proxy_url: {url} is not http:// or socks5://"));
        }
    }
    let _ = name;
    Ok(())
}

/// A CA, a client certificate and its key in `dir`.
fn pem_files(dir: &Path) -> [PathBuf; 3] {
    let ca = Ca::root("migrate test CA");
    let client = ca.leaf(&Spec::leaf("migrate client"));
    [
        write(dir, "ca.pem", &ca.cert.pem),
        write(dir, "client.pem", &client.pem),
        write(dir, "client.key", &client.key_pem),
    ]
}

/// The migrated text with every `ca_file`, `client_cert_file` and `client_key_file` pointing at
/// a real file of `paths`.
fn with_real_files(text: &str, [ca, cert, key]: &[PathBuf; 3]) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let file = match trimmed.split_once(':').map(|(k, _)| k) {
                Some("ca_file") => Some(("ca_file", ca)),
                Some("client_cert_file") => Some(("client_cert_file", cert)),
                Some("client_key_file") => Some(("client_key_file", key)),
                _ => None,
            };
            match file {
                Some((k, path)) => format!("{indent}{k}: {}\n", path.display()),
                None => format!("{line}\n"),
            }
        })
        .collect()
}
