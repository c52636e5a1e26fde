//! Files the config names are read bounded: a FIFO, a device or an oversize file is an error
//! with its place in the config, never a hang or a process grown by gigabytes; target-file
//! globs report what they cannot read; a reload never delays SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::exporter::{write, Exporter};

/// Longer than any bounded read (10s), shorter than forever.
const LIMIT: Duration = Duration::from_secs(15);

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(ok.success(), "mkfifo {}", path.display());
}

/// Runs `--check-config` on `config`, killing it (and failing) if it runs past `LIMIT`.
fn check_config(config: &Path) -> (Option<i32>, String, Duration) {
    let dir = config.parent().expect("config in a dir");
    let err_path = dir.join("check.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tls_exporter"))
        .arg("--check-config")
        .arg(format!("--config.file={}", config.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn tls_exporter");
    let began = Instant::now();
    let code = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status.code();
        }
        if began.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("--check-config did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    (code, stderr, began.elapsed())
}

#[test]
fn check_config_refuses_a_fifo_ca_file_at_once() {
    let dir = Exporter::dir();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let config = write(
        dir.path(),
        "config.yml",
        &format!(
            "targets:\n  - address: a.example:443\n    ca_file: {}\n",
            fifo.display()
        ),
    );
    let (code, stderr, took) = check_config(&config);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "{}:3:14: targets[0].ca_file: {} is not a regular file (a FIFO)",
            config.display(),
            fifo.display()
        )
    );
}

#[test]
fn check_config_refuses_dev_zero_as_a_key_without_reading_it() {
    let dir = Exporter::dir();
    let cert = write(dir.path(), "cert.pem", "");
    let config = write(
        dir.path(),
        "config.yml",
        &format!(
            "targets:\n  - address: a.example:443\n    ca_file: /dev/zero\n    client_cert_file: {}\n    client_key_file: /dev/urandom\n",
            cert.display()
        ),
    );
    let (code, stderr, took) = check_config(&config);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        stderr.contains("targets[0].ca_file: /dev/zero is not a regular file (a character device)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "targets[0].client_key_file: /dev/urandom is not a regular file (a character device)"
        ),
        "{stderr}"
    );
}

#[test]
fn check_config_refuses_a_pem_file_over_one_mib_naming_the_limit() {
    let dir = Exporter::dir();
    let big = dir.path().join("big.pem");
    std::fs::write(&big, vec![b'A'; 2 << 20]).expect("write big file");
    let config = write(
        dir.path(),
        "config.yml",
        &format!(
            "targets:\n  - address: a.example:443\n    ca_file: {}\n",
            big.display()
        ),
    );
    let (code, stderr, _) = check_config(&config);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "{}:3:14: targets[0].ca_file: {} is larger than the 1 MiB limit",
            config.display(),
            big.display()
        )
    );
}

#[test]
fn target_file_globs_report_fifos_and_directories() {
    let dir = Exporter::dir();
    std::fs::create_dir(dir.path().join("t")).expect("mkdir t");
    write(&dir.path().join("t"), "a.yml", "- address: a.example:443\n");
    mkfifo(&dir.path().join("t/fifo.yml"));
    std::fs::create_dir(dir.path().join("t/sub.yml")).expect("mkdir sub.yml");
    let config = write(dir.path(), "config.yml", "target_files: [t/*.yml]\n");
    let (code, stderr, took) = check_config(&config);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let fifo = dir.path().join("t/fifo.yml");
    let sub = dir.path().join("t/sub.yml");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        vec![
            format!(
                "{}: cannot read: {} is not a regular file (a FIFO) (skipping it)",
                fifo.display(),
                fifo.display()
            ),
            format!(
                "{}: cannot read: {} is not a regular file (a directory) (skipping it)",
                sub.display(),
                sub.display()
            ),
        ]
    );
}

/// POSTs `/-/reload` with a read timeout longer than a bounded read.
fn post_reload(e: &Exporter) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&e.addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(LIMIT)).expect("read timeout");
    write!(
        s,
        "POST /-/reload HTTP/1.0\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
        e.addr
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("reload answer in time");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

#[test]
fn live_reload_with_a_fifo_ca_file_answers_an_error_and_sigterm_still_exits_in_time() {
    let dir = Exporter::dir();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let mut e = Exporter::start_with(dir, "targets: []\n", &["--web.enable-lifecycle"]);
    write(
        e.dir.path(),
        "config.yml",
        &format!(
            "targets:\n  - address: a.example:443\n    ca_file: {}\n",
            fifo.display()
        ),
    );
    let began = Instant::now();
    let (status, body) = post_reload(&e);
    assert!(began.elapsed() < Duration::from_secs(12), "{body}");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("is not a regular file (a FIFO)"),
        "{body}\n{}",
        e.log()
    );
    // A SIGHUP reload (of the same config) in progress does not delay SIGTERM.
    e.signal("HUP");
    e.signal("TERM");
    let code = e.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(0), "exit within 5s: {}", e.log());
}
