//! The exporter's own listener under hostile clients: scrapers that never read, idle and
//! slow-loris connections, more connections than allowed, a low open-file limit; and gzip on
//! `/metrics`, lifecycle endpoints opt-in. Every wait is bounded; small timeouts are set by flag.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::exporter::{write, Exporter, Exposition};
use crate::support::pki::{Ca, Spec};
use crate::support::servers::{self, Opts};
use crate::support::WAIT;

/// A healthy rustls endpoint for `localhost` and a dir with its CA.
async fn endpoint() -> (servers::Server, tempfile::TempDir) {
    let root = Ca::root("Listener Root");
    let leaf = root.leaf(&Spec::leaf("localhost"));
    let server = servers::rustls(Opts::new(vec![leaf.der.clone()], leaf.key_der())).await;
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    (server, dir)
}

/// A config probing `localhost:PORT` (a name: probes need name resolution) as target `host`,
/// every 500ms.
fn host_config(port: u16, concurrency: usize) -> String {
    format!(
        "global: {{interval: 500ms, timeout: 400ms, ca_file: ca.pem, concurrency: {concurrency}}}\n\
         targets:\n  - name: host\n    address: localhost:{port}\n    server_name: localhost\n"
    )
}

/// An HTTP/1.1 response read off a keep-alive connection.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    s
}

/// Sends `GET path` (keep-alive) with `extra` header lines and reads the whole answer.
fn get(s: &mut TcpStream, path: &str, extra: &str) -> std::io::Result<Answer> {
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n")?;
    read_answer(s)
}

/// One response: head, then a `Content-Length` or chunked body.
fn read_answer(s: &mut TcpStream) -> std::io::Result<Answer> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        fill(s, &mut buf)?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf.split_off(head_end + 4);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response head: {head}")))?;
    let mut answer = Answer {
        status,
        head,
        body: Vec::new(),
    };
    if let Some(n) = answer.header("content-length") {
        let n: usize = n.parse().map_err(std::io::Error::other)?;
        while rest.len() < n {
            fill(s, &mut rest)?;
        }
        rest.truncate(n);
        answer.body = rest;
        return Ok(answer);
    }
    // Chunked: size line, data, CRLF, until the zero-size chunk and its final CRLF.
    loop {
        let line_end = loop {
            if let Some(i) = find(&rest, b"\r\n") {
                break i;
            }
            fill(s, &mut rest)?;
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.trim(), 16).map_err(std::io::Error::other)?;
        let mut after = rest.split_off(line_end + 2);
        while after.len() < size + 2 {
            fill(s, &mut after)?;
        }
        answer.body.extend_from_slice(&after[..size]);
        rest = after.split_off(size + 2);
        if size == 0 {
            return Ok(answer);
        }
    }
}

fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 64 * 1024];
    let n = s.read(&mut chunk)?;
    if n == 0 {
        return Err(ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Waits up to `limit` for the server to close `s`, reading (and discarding) what it sends.
/// True when it closed; the bytes it sent before, if any, are returned as well.
fn closed_within(s: &mut TcpStream, limit: Duration) -> (bool, usize) {
    let deadline = Instant::now() + limit;
    let mut got = 0;
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (false, got);
        }
        s.set_read_timeout(Some(left)).expect("read timeout");
        match s.read(&mut chunk) {
            Ok(0) => return (true, got),
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (false, got)
            }
            // Reset or broken: closed all the same.
            Err(_) => return (true, got),
        }
    }
}

/// The exporter's thread count, from /proc.
fn threads(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Scrapes over `s` until `pred` holds, panicking with the exposition and log after `WAIT`.
fn wait_on(e: &Exporter, s: &mut TcpStream, what: &str, pred: impl Fn(&Exposition) -> bool) {
    let start = Instant::now();
    loop {
        let a = get(s, "/metrics", "").expect("scrape over the kept connection");
        assert_eq!(a.status, 200, "{}", a.text());
        let m = Exposition(a.text());
        if pred(&m) {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "timed out waiting for {what}\n--- exposition ---\n{}\n--- log ---\n{}",
            m.0,
            e.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_scrapers_hold_no_threads_and_stop_neither_a_scrape_nor_a_hostname_probe() {
    let (server, dir) = endpoint().await;
    // Padding targets with a long label make the exposition far larger than the socket
    // buffers of a scraper that never reads, so its response really stalls.
    let mut yaml = host_config(server.addr.port(), 16);
    let pad = "x".repeat(1000);
    for i in 0..60 {
        yaml.push_str(&format!(
            "  - name: pad{i}\n    address: 127.0.0.1:{}\n    server_name: localhost\n    labels: {{pad: {pad}}}\n",
            server.addr.port()
        ));
    }
    let e = Exporter::start_with(
        dir,
        &yaml,
        &["--web.max-concurrent-scrapes=2", "--web.write-timeout=3s"],
    );
    let mut kept = connect(e.addr);
    wait_on(&e, &mut kept, "every target probed", |m| {
        m.value("tls_probe_success{target=\"host\"}") == Some(1.0)
            && (0..60).all(|i| {
                m.0.contains(&format!(
                    "tls_probe_success{{target=\"pad{i}\",pad=\"{pad}\"}} 1"
                ))
            })
    });
    drop(kept);
    let before = threads(e.pid());

    // 200 scrapers send `GET /metrics` and never read.
    let stalled: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = connect(e.addr);
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .expect("send the request");
            s
        })
        .collect();

    // A normal scrape succeeds within a few seconds: the stalled ones hold their slots until
    // the write timeout drops them, and no thread meanwhile.
    let start = Instant::now();
    let mut most = before;
    let m = loop {
        most = most.max(threads(e.pid()));
        let mut s = connect(e.addr);
        let a = get(&mut s, "/metrics", "").expect("scrape");
        if a.status == 200 {
            break Exposition(a.text());
        }
        assert_eq!(a.status, 503, "{}", a.text());
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no scrape succeeded within 10s of 200 stalled scrapers:\n{}",
            e.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let probes = m
        .value("tls_probes_total{target=\"host\"}")
        .expect("probes of host");
    // The hostname target keeps being probed (its name resolved) while the scrapers stall.
    let mut s = connect(e.addr);
    wait_on(&e, &mut s, "3 more probes of host", |m| {
        m.value("tls_probes_total{target=\"host\"}")
            .is_some_and(|n| n >= probes + 3.0)
    });
    let m = Exposition(get(&mut s, "/metrics", "").expect("scrape").text());
    m.assert_lines(&["tls_probe_success{target=\"host\"} 1".to_string()]);
    assert!(
        m.value("tls_probe_failures_total{target=\"host\",reason=\"dns_error\"}")
            .is_none(),
        "{}",
        m.0
    );
    most = most.max(threads(e.pid()));
    assert!(
        most < before + 16,
        "threads went from {before} to {most} with 200 stalled scrapers"
    );
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_idle_and_header_timeouts() {
    let (server, dir) = endpoint().await;
    let e = Exporter::start_with(
        dir,
        &host_config(server.addr.port(), 4),
        &["--web.idle-timeout=1s", "--web.read-header-timeout=1s"],
    );
    // A keep-alive connection serves several requests, then is closed once idle.
    let mut s = connect(e.addr);
    for _ in 0..2 {
        let a = get(&mut s, "/-/healthy", "").expect("healthy");
        assert_eq!(a.status, 200);
    }
    let (closed, got) = closed_within(&mut s, Duration::from_secs(10));
    assert!(closed, "an idle keep-alive connection stayed open");
    assert_eq!(got, 0, "the server sent bytes to an idle connection");
    // A connection that never sends a byte is closed after the header timeout.
    let mut silent = connect(e.addr);
    let (closed, _) = closed_within(&mut silent, Duration::from_secs(10));
    assert!(closed, "a silent connection stayed open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_head_is_closed_after_the_header_timeout() {
    let (server, dir) = endpoint().await;
    let e = Exporter::start_with(
        dir,
        &host_config(server.addr.port(), 4),
        &["--web.read-header-timeout=1s"],
    );
    let mut s = connect(e.addr);
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n")
        .expect("start the head");
    let start = Instant::now();
    let closed = loop {
        // One header line every 200ms, never the blank line that ends the head.
        if s.write_all(b"X-Slow: 1\r\n").is_err() {
            break true;
        }
        let (closed, got) = closed_within(&mut s, Duration::from_millis(200));
        assert_eq!(got, 0, "the server answered an incomplete head");
        if closed {
            break true;
        }
        if start.elapsed() > Duration::from_secs(10) {
            break false;
        }
    };
    assert!(closed, "a trickled head kept the connection open for 10s");
    // The listener still serves.
    let mut fresh = connect(e.addr);
    assert_eq!(
        get(&mut fresh, "/-/healthy", "").expect("healthy").status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_maximum_are_closed_at_once_unless_an_idle_one_makes_room() {
    let (server, dir) = endpoint().await;
    let e = Exporter::start_with(
        dir,
        &host_config(server.addr.port(), 4),
        &["--web.max-connections=4"],
    );
    // Four connections in the middle of a request head: none is idle. (Accepted in order, so
    // before the fifth.)
    let busy: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = connect(e.addr);
            s.write_all(b"GET /-/healthy HTTP/1.1\r\n")
                .expect("start a head");
            s
        })
        .collect();
    let mut extra = connect(e.addr);
    let _ = extra.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (closed, got) = closed_within(&mut extra, Duration::from_secs(5));
    assert!(closed, "a fifth connection was kept open");
    assert_eq!(got, 0, "a fifth connection was answered");
    assert!(e.log().contains("refusing HTTP connections"), "{}", e.log());
    drop(busy);

    // Four idle keep-alive connections (once the busy ones are gone): a fifth is served, and
    // the connection idle the longest is closed to make room.
    let served = || {
        let start = Instant::now();
        loop {
            let mut s = connect(e.addr);
            if let Ok(a) = get(&mut s, "/-/healthy", "") {
                assert_eq!(a.status, 200);
                return s;
            }
            assert!(start.elapsed() < WAIT, "no connection served:\n{}", e.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut idle: Vec<TcpStream> = (0..4).map(|_| served()).collect();
    let mut fifth = connect(e.addr);
    let a = get(&mut fifth, "/-/healthy", "").expect("a fifth connection is served");
    assert_eq!(a.status, 200);
    let (closed, _) = closed_within(&mut idle[0], Duration::from_secs(5));
    assert!(closed, "the connection idle the longest stayed open");
    for s in &mut idle[1..] {
        assert_eq!(get(s, "/-/healthy", "").expect("still served").status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_under_a_low_open_file_limit_leave_probes_their_descriptors() {
    let (server, dir) = endpoint().await;
    let e = Exporter::start_with_nofile(
        dir,
        &host_config(server.addr.port(), 4),
        &["--web.read-header-timeout=60s"],
        256,
    );
    let mut kept = connect(e.addr);
    wait_on(&e, &mut kept, "host probed", |m| {
        m.value("tls_probe_success{target=\"host\"}") == Some(1.0)
    });
    // 400 connections that never send anything: more than the limit allows.
    let idle: Vec<TcpStream> = (0..400).map(|_| connect(e.addr)).collect();
    let a = get(&mut kept, "/metrics", "").expect("scrape");
    let probes = Exposition(a.text())
        .value("tls_probes_total{target=\"host\"}")
        .expect("probes of host");
    wait_on(&e, &mut kept, "4 more probes of host", |m| {
        m.value("tls_probes_total{target=\"host\"}")
            .is_some_and(|n| n >= probes + 4.0)
    });
    let m = Exposition(get(&mut kept, "/metrics", "").expect("scrape").text());
    m.assert_lines(&["tls_probe_success{target=\"host\"} 1".to_string()]);
    m.assert_absent(&["tls_probe_failures_total{target=\"host\"".to_string()]);
    let log = e.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(log.contains("refusing HTTP connections"), "{log}");
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_scrape_decodes_to_the_same_exposition() {
    let (server, dir) = endpoint().await;
    let e = Exporter::start(dir, &host_config(server.addr.port(), 4));
    e.wait_probes("host", 1);
    let mut s = connect(e.addr);
    let plain = get(&mut s, "/metrics", "").expect("identity scrape");
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    let gz = get(&mut s, "/metrics", "Accept-Encoding: gzip\r\n").expect("gzip scrape");
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_string(&mut text)
        .expect("a valid gzip stream");
    assert!(gz.body.len() < text.len() / 3, "{} bytes", gz.body.len());
    // Values move between two scrapes (CPU, days to expiry); the series and comments don't.
    let shape = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| match l.starts_with('#') {
                true => l.to_string(),
                false => l.rsplit_once(' ').map_or(l, |(s, _)| s).to_string(),
            })
            .collect()
    };
    assert_eq!(shape(&text), shape(&plain.text()), "{text}");
    assert!(
        text.contains("tls_probe_success{target=\"host\"} 1\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_endpoint_is_403_without_the_lifecycle_flag_while_sighup_reloads() {
    let (server, dir) = endpoint().await;
    let yaml = host_config(server.addr.port(), 4);
    // No file watching: only SIGHUP can reload.
    let e = Exporter::start_with(dir, &yaml, &["--config.watch-interval=0s"]);
    let (status, body) = e.post("/-/reload").expect("reload");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--web.enable-lifecycle"), "{body}");
    let added = format!(
        "{yaml}  - name: added\n    address: 127.0.0.1:{}\n    server_name: localhost\n",
        server.addr.port()
    );
    std::fs::write(&e.config, added).expect("rewrite config");
    e.signal("HUP");
    e.wait_for("the target added by SIGHUP probed", |m| {
        m.value("tls_probe_success{target=\"added\"}") == Some(1.0)
    });
}
