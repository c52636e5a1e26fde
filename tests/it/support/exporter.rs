//! The real `tls_exporter` binary, started on a free loopback port with a config in a temp dir.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running exporter; killed when dropped.
pub struct Exporter {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    child: Child,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Writes `contents` to `name` in `dir`, returning the path.
pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).expect("write test file");
    p
}

impl Exporter {
    /// A temp dir to put PEM files in before the config is written.
    pub fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    /// Starts the exporter with `yaml` as config.yml in `dir`, waiting until it serves.
    pub fn start(dir: tempfile::TempDir, yaml: &str) -> Exporter {
        Exporter::start_with(dir, yaml, &[])
    }

    /// Like `start`, with extra command-line flags.
    pub fn start_with(dir: tempfile::TempDir, yaml: &str, flags: &[&str]) -> Exporter {
        Exporter::spawn(dir, yaml, flags, None)
    }

    /// Like `start_with`, under an open-file limit of `nofile` (soft and hard, as
    /// `prlimit --nofile=N:N` would set).
    pub fn start_with_nofile(
        dir: tempfile::TempDir,
        yaml: &str,
        flags: &[&str],
        nofile: u64,
    ) -> Exporter {
        Exporter::spawn(dir, yaml, flags, Some(nofile))
    }

    fn spawn(dir: tempfile::TempDir, yaml: &str, flags: &[&str], nofile: Option<u64>) -> Exporter {
        let config = write(dir.path(), "config.yml", yaml);
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tls_exporter"));
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=debug")
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("log file"));
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            let lim = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: between fork and exec the closure only calls setrlimit (async-signal-safe)
            // on a copy it owns.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("spawn tls_exporter");
        let mut e = Exporter {
            addr,
            dir,
            config,
            child,
        };
        let start = Instant::now();
        while e.get("/-/healthy").is_err() {
            if let Ok(Some(status)) = e.child.try_wait() {
                panic!("exporter exited with {status}: {}", e.log());
            }
            assert!(
                start.elapsed() < super::WAIT,
                "exporter did not start: {}",
                e.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        e
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Sends a signal by name (`HUP`, `TERM`) with kill(1).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// Waits for the process to exit, returning its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        self.request("GET", path)
    }

    pub fn post(&self, path: &str) -> std::io::Result<(u16, String)> {
        self.request("POST", path)
    }

    fn request(&self, method: &str, path: &str) -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
            self.addr
        )?;
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

    pub fn scrape(&self) -> Exposition {
        let (status, body) = self.get("/metrics").expect("scrape /metrics");
        assert_eq!(status, 200, "{body}");
        Exposition(body)
    }

    /// Scrapes until `pred` holds, panicking with the whole exposition and log after `WAIT`.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Exposition) -> bool) -> Exposition {
        let start = Instant::now();
        loop {
            let e = self.scrape();
            if pred(&e) {
                return e;
            }
            if start.elapsed() > super::WAIT {
                panic!(
                    "timed out waiting for {what}\n--- exposition ---\n{}\n--- log ---\n{}",
                    e.0,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `target` has been probed at least `n` times.
    pub fn wait_probes(&self, target: &str, n: u64) -> Exposition {
        self.wait_for(&format!("{n} probes of {target}"), |e| {
            e.value(&format!("tls_probes_total{{target=\"{target}\"}}"))
                .is_some_and(|v| v >= n as f64)
        })
    }
}

/// A scraped `/metrics` body.
pub struct Exposition(pub String);

impl Exposition {
    /// The value of the series written exactly as `series` (`name{labels}`).
    pub fn value(&self, series: &str) -> Option<f64> {
        self.0.lines().find_map(|l| {
            let (s, v) = l.rsplit_once(' ')?;
            (s == series).then(|| v.parse().ok()).flatten()
        })
    }

    /// Every sample line mentioning `target="name"` (and the user labels after it).
    pub fn lines_of(&self, target: &str) -> Vec<&str> {
        let needle = format!("target=\"{target}\"");
        self.0
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(&needle))
            .collect()
    }

    /// Asserts every line is present exactly, printing the whole exposition otherwise.
    pub fn assert_lines(&self, expected: &[String]) {
        let missing: Vec<&String> = expected
            .iter()
            .filter(|l| !self.0.lines().any(|x| x == l.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "missing lines:\n{}\n--- exposition ---\n{}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            self.0
        );
    }

    /// Asserts no sample line starts with any of `prefixes`.
    pub fn assert_absent(&self, prefixes: &[String]) {
        let found: Vec<&str> = self
            .0
            .lines()
            .filter(|l| prefixes.iter().any(|p| l.starts_with(p.as_str())))
            .collect();
        assert!(
            found.is_empty(),
            "unexpected lines:\n{}\n--- exposition ---\n{}",
            found.join("\n"),
            self.0
        );
    }
}
