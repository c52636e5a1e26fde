//! One fixture per config mistake: `tests/fixtures/invalid/<area>-<what>.yml` must fail
//! `--check-config` with exactly the lines of its sibling `.expected`; every
//! `tests/fixtures/valid/*.yml` must pass with exactly the stdout of its `.expected`.
//!
//! The real binary runs inside the fixture directory and gets the bare file name, so messages
//! start with `<file>.yml:LINE:COL:` wherever the repository lives. Relative PEM paths in the
//! fixtures resolve against that directory. Which messages are right is the fixtures' business;
//! this file only runs them and reports every mismatch at once.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// `--check-config` only parses and reads a few small files.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn every_invalid_fixture_reports_its_exact_message() {
    let dir = fixture_dir("invalid");
    let mut mismatches = Vec::new();
    for name in fixtures(&dir) {
        let Some(expected) = expected_for(&dir, &name, &mut mismatches) else {
            continue;
        };
        let run = check_config(&dir, &name);
        if run.code != Some(1) || run.stderr != expected {
            mismatches.push(format!(
                "{name}: want exit 1 and stderr:\n{expected}\ngot {}",
                run.describe()
            ));
        }
    }
    report(&dir, &mismatches);
}

#[test]
fn every_valid_fixture_checks_ok() {
    let dir = fixture_dir("valid");
    let mut mismatches = Vec::new();
    for name in fixtures(&dir) {
        let Some(expected) = expected_for(&dir, &name, &mut mismatches) else {
            continue;
        };
        let run = check_config(&dir, &name);
        if run.code != Some(0) || run.stdout != expected || !run.stderr.is_empty() {
            mismatches.push(format!(
                "{name}: want exit 0, empty stderr and stdout:\n{expected}\ngot {}",
                run.describe()
            ));
        }
    }
    report(&dir, &mismatches);
}

/// What one `--check-config` run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}--------------",
            self.code, self.stdout, self.stderr
        )
    }
}

fn fixture_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
}

/// The `*.yml` file names in `dir`, sorted so failures list in a stable order.
fn fixtures(dir: &Path) -> Vec<String> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap_or_else(|e| panic!("list {}: {e}", dir.display())))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no *.yml fixtures in {}", dir.display());
    names
}

/// The sibling `.expected` of a fixture; a missing one is recorded as a mismatch.
fn expected_for(dir: &Path, name: &str, mismatches: &mut Vec<String>) -> Option<String> {
    let path = dir.join(name).with_extension("expected");
    match fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => {
            mismatches.push(format!("{name}: cannot read {}: {e}", path.display()));
            None
        }
    }
}

/// Runs `tls_exporter --check-config` on `name` from inside `dir`, killed after the timeout.
fn check_config(dir: &Path, name: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tls_exporter"))
        .arg("--check-config")
        .arg(format!("--config.file={name}"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: start tls_exporter: {e}"));
    // Drain both pipes while waiting so a chatty child cannot block on a full pipe.
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name}: --check-config still running after {CHECK_TIMEOUT:?}");
            }
            Err(e) => panic!("{name}: wait for tls_exporter: {e}"),
        }
    };
    Run {
        code: status.code(),
        stdout: stdout.join().expect("stdout reader does not panic"),
        stderr: stderr.join().expect("stderr reader does not panic"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Fails with every mismatch, each with the whole actual output.
fn report(dir: &Path, mismatches: &[String]) {
    assert!(
        mismatches.is_empty(),
        "{} fixture(s) in {} did not match:\n\n{}",
        mismatches.len(),
        dir.display(),
        mismatches.join("\n\n")
    );
}
