//! The status pages in a real browser: Debian's headless Chromium loads `/` and `/target/NAME`
//! from the exporter while it probes real TLS servers, and the tests read the DOM Chromium
//! built (`--dump-dom`) and the screenshot it took (`--screenshot`, 1,000 × 800).
//!
//! Needs `chromium` (scripts/install-test-deps installs it); without it these tests fail and
//! say so. Set `TLS_EXPORTER_SCREENSHOTS=DIR` to keep the screenshots for a look.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::exporter::{free_port, write, Exporter};
use crate::support::now;
use crate::support::pki::{Ca, Cert, Spec};
use crate::support::servers::{self, Opts, Server};

const DAY: i64 = 86_400;
/// A target name and certificate CN that would run script if the page did not escape them.
const HOSTILE_NAME: &str = "<script>document.title=\"pwned\"</script>'q'";
const HOSTILE_CN: &str = "<script>alert(\"cn\")</script>";

/// Six targets: `good` (90-day leaf, 89 days left), `renew` (20 of 90 days left: warning),
/// `urgent` (one day left: critical), `expired` and `refused` (failing), and the hostile name.
struct Fleet {
    e: Exporter,
    good: Cert,
    hostile: Cert,
    _servers: Vec<Server>,
}

async fn fleet() -> Fleet {
    let root = Ca::root("Test Root");
    let t = now();
    let good = root.leaf(&Spec::leaf("good.test"));
    let renew = root.leaf(&Spec::leaf("renew.test").valid(t - 70 * DAY, t + 20 * DAY));
    let urgent = root.leaf(&Spec::leaf("urgent.test").valid(t - 89 * DAY, t + DAY));
    let expired = root.leaf(&Spec::leaf("expired.test").valid(t - 91 * DAY, t - DAY));
    let hostile = root.leaf(&Spec::leaf(HOSTILE_CN));
    let mut servers = Vec::new();
    for cert in [&good, &renew, &urgent, &expired, &hostile] {
        servers.push(servers::rustls(Opts::new(vec![cert.der.clone()], cert.key_der())).await);
    }
    let port = |i: usize| servers.get(i).map_or(1, |s: &Server| s.addr.port());
    let dir = Exporter::dir();
    write(dir.path(), "ca.pem", &root.cert.pem);
    let yaml = format!(
        "global: {{interval: 3s, timeout: 2500ms, ca_file: ca.pem, scan: false}}
targets:
  - {{name: good, address: \"127.0.0.1:{}\", server_name: localhost, labels: {{team: core, region: eu}}}}
  - {{name: renew, address: \"127.0.0.1:{}\", server_name: localhost, labels: {{team: edge, region: us}}}}
  - {{name: urgent, address: \"127.0.0.1:{}\", server_name: localhost, labels: {{team: core}}}}
  - {{name: expired, address: \"127.0.0.1:{}\", server_name: localhost, labels: {{team: core}}}}
  - {{name: '{}', address: \"127.0.0.1:{}\", server_name: localhost, labels: {{team: \"<b>x</b>\"}}}}
  - {{name: refused, address: \"127.0.0.1:{}\", server_name: localhost}}
",
        port(0),
        port(1),
        port(2),
        port(3),
        HOSTILE_NAME.replace('\'', "''"),
        port(4),
        free_port(),
    );
    let e = Exporter::start(dir, &yaml);
    e.wait_for("every target probed", |m| {
        m.0.lines()
            .filter(|l| l.starts_with("tls_probes_total{"))
            .filter(|l| l.rsplit(' ').next().is_some_and(|v| v != "0"))
            .count()
            == 6
    });
    Fleet {
        e,
        good,
        hostile,
        _servers: servers,
    }
}

impl Fleet {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.e.addr)
    }
}

/// Debian's Chromium, or a failure saying how to get it.
fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("chromium is not installed: run scripts/install-test-deps (it installs Debian's chromium)")
        })
}

/// Runs headless Chromium on `url` with `args` (a fresh profile, no network but loopback),
/// bounded in time; its stdout.
fn browse(url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--no-pings",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let start = Instant::now();
    while child.try_wait().ok().flatten().is_none() {
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("chromium output");
    assert!(
        out.status.success(),
        "chromium {args:?} {url} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DOM Chromium built for `url` at 1,000 × 800, scripts run.
fn dom(url: &str) -> String {
    let dom = browse(url, &["--window-size=1000,800", "--dump-dom"]);
    assert!(dom.contains("</html>"), "no DOM for {url}:\n{dom}");
    dom
}

/// The DOM of `url` once `ready` holds for it, re-loading for at most `WAIT`.
fn dom_until(url: &str, ready: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let d = dom(url);
        if ready(&d) {
            return d;
        }
        assert!(
            start.elapsed() < crate::support::WAIT,
            "{url} never reached the expected state:\n{d}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The targets of the fleet table's rows, in order.
fn rows(dom: &str) -> Vec<String> {
    let body = dom.split("<tbody>").nth(1).unwrap_or_default();
    body.split("<tr class=\"")
        .skip(1)
        .filter_map(|row| row.split("data-target=\"").nth(1)?.split('"').next())
        .map(str::to_string)
        .collect()
}

/// The number the summary item `id` shows.
fn count(dom: &str, id: &str) -> Option<usize> {
    let item = dom.split(&format!("id=\"count-{id}\"")).nth(1)?;
    item.split("<b>").nth(1)?.split("</b>").next()?.parse().ok()
}

/// The value of `data-NAME="…"` on the debug output element.
fn debug_width(dom: &str, name: &str) -> u32 {
    let el = dom.split("id=\"debug-width\"").nth(1).unwrap_or_default();
    el.split(&format!("data-{name}=\""))
        .nth(1)
        .and_then(|v| v.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no data-{name} in the debug output:\n{dom}"))
}

/// Percent-encodes a path segment.
fn encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_page_counts_sorts_filters_and_escapes_in_a_browser() {
    let f = fleet().await;
    // A loaded machine may time a healthy handshake out now and then: wait for the steady
    // state before checking it.
    let d = dom_until(&f.url("/"), |d| {
        count(d, "healthy") == Some(4) && count(d, "failing") == Some(2)
    });
    assert_eq!(count(&d, "targets"), Some(6), "{d}");
    assert_eq!(count(&d, "healthy"), Some(4), "{d}");
    assert_eq!(count(&d, "failing"), Some(2), "{d}");
    assert_eq!(count(&d, "reason-expired"), Some(1), "{d}");
    assert_eq!(count(&d, "reason-connection_refused"), Some(1), "{d}");
    // renew (warning), urgent and expired (critical).
    assert_eq!(count(&d, "expiring"), Some(3), "{d}");
    assert_eq!(count(&d, "critical"), Some(2), "{d}");

    // Failing first (the expired one has an expiry, so it leads), then by expiry.
    let order = rows(&d);
    assert_eq!(order.len(), 6, "{d}");
    assert_eq!(order[..4], ["expired", "refused", "urgent", "renew"], "{d}");
    assert!(d.contains("<td class=\"crit\"><time"), "{d}");
    assert!(d.contains("<td class=\"warn\"><time"), "{d}");
    // User labels are columns.
    assert!(
        d.contains(">region</a></th>") && d.contains(">team</a></th>"),
        "{d}"
    );

    // Escaping: the hostile name and CN are text, no script of theirs ran.
    assert!(
        d.contains("<title>TLS endpoints · tls_exporter</title>"),
        "title changed by an injected script:\n{d}"
    );
    assert!(!d.contains("<script>document.title"), "{d}");
    assert!(!d.contains("<script>alert"), "{d}");
    assert!(!d.contains("<b>x</b>"), "{d}");
    assert!(d.contains("&lt;script&gt;document.title="), "{d}");
    assert!(d.contains("CN=&lt;script&gt;alert("), "{d}");
    let (_, raw) = f.e.get("/").expect("GET /");
    assert!(
        raw.contains("&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;&#39;q&#39;"),
        "{raw}"
    );

    // Filters are query parameters: the same in a browser without the form.
    let only = |query: &str, want: &[&str]| {
        dom_until(&f.url(query), |d| rows(d) == want);
    };
    only("/?reason=expired", &["expired"]);
    only("/?label=team%3Dedge", &["renew"]);
    only("/?name=URG", &["urgent"]);
    only("/?status=failing&sort=name", &["expired", "refused"]);
    let d = dom_until(
        &f.url("/?status=healthy&sort=name&order=desc&limit=2"),
        |d| rows(d) == ["urgent", "renew"],
    );
    assert!(d.contains("Show all 4 rows"), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_page_shows_chain_parameters_and_history_in_a_browser() {
    let f = fleet().await;
    f.e.wait_probes("good\",region=\"eu\",team=\"core", 2);
    let d = dom_until(&f.url("/target/good"), |d| {
        d.contains("valid for the server name")
    });
    for want in [
        "<title>good · tls_exporter</title>",
        "CN=good.test",
        "CN=Test Root",
        "localhost, 127.0.0.1",
        &f.good.fingerprint(),
        "ECDSA P-256",
        "ecdsa-with-SHA256",
        "TLS 1.3",
        "valid for the server name",
        "team=core",
        "Recent probes",
        "Not scanned",
    ] {
        assert!(
            d.contains(want),
            "missing {want:?} on the target page:\n{d}"
        );
    }
    // History: newest first, RFC 3339 times, at least the two probes waited for.
    let history = d
        .split("id=\"history\"")
        .nth(1)
        .and_then(|h| h.split("</table>").next())
        .unwrap_or_default();
    let times: Vec<&str> = history
        .split("<time datetime=\"")
        .skip(1)
        .filter_map(|t| t.split('"').next())
        .collect();
    assert!(times.len() >= 2, "{history}");
    for t in &times {
        assert!(
            t.len() == 20 && t.ends_with('Z') && t.as_bytes().get(10) == Some(&b'T'),
            "not RFC 3339: {t}"
        );
    }
    let mut sorted = times.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "history is not newest first");

    let d = dom_until(&f.url("/target/expired"), |d| {
        d.contains("<b class=\"failing\">failing</b>: expired")
    });
    assert!(
        d.contains("<b class=\"failing\">failing</b>: expired"),
        "{d}"
    );
    assert!(
        d.contains("<td class=\"result\">failing</td><td class=\"nowrap\">expired</td>"),
        "{d}"
    );
    assert!(d.contains("CN=expired.test"), "{d}");

    // The hostile target's page: its name URL-encoded, everything escaped.
    let d = dom_until(&f.url(&format!("/target/{}", encoded(HOSTILE_NAME))), |d| {
        d.contains(&f.hostile.fingerprint())
    });
    assert!(d.contains(&f.hostile.fingerprint()), "{d}");
    assert!(
        d.contains("CN=&lt;script&gt;alert(\"cn\")&lt;/script&gt;"),
        "{d}"
    );
    assert!(
        !d.contains("<script>alert") && !d.contains("<script>document"),
        "{d}"
    );
    assert!(
        d.contains("· tls_exporter</title>") && !d.contains("pwned</title>"),
        "{d}"
    );

    let (status, page) = f.e.get("/target/no-such-target").expect("GET");
    assert_eq!(status, 404, "{page}");
    assert!(page.contains("No target named"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_fit_a_1000_px_window_and_render_a_screenshot() {
    let f = fleet().await;
    for path in ["/?debug", "/target/good?debug", "/target/expired?debug"] {
        let d = dom(&f.url(path));
        let (scroll, client) = (
            debug_width(&d, "scroll-width"),
            debug_width(&d, "client-width"),
        );
        assert!(
            client > 900 && scroll <= client,
            "{path} overflows a 1,000 px window: scrollWidth {scroll}, clientWidth {client}"
        );
    }
    let dir = tempfile::tempdir().expect("screenshot dir");
    for (name, path) in [("fleet", "/"), ("target", "/target/good")] {
        let png = dir.path().join(format!("{name}.png"));
        browse(
            &f.url(path),
            &[
                "--window-size=1000,800",
                "--hide-scrollbars",
                &format!("--screenshot={}", png.display()),
            ],
        );
        check_png(&png, 1000, 800);
        if let Some(keep) = std::env::var_os("TLS_EXPORTER_SCREENSHOTS") {
            let _ = std::fs::create_dir_all(&keep);
            std::fs::copy(&png, Path::new(&keep).join(format!("{name}.png"))).expect("keep");
        }
    }
    // For a person's look only: whole pages, 1,000 px wide.
    if let Some(keep) = std::env::var_os("TLS_EXPORTER_SCREENSHOTS") {
        for (name, path) in [
            ("target-good-tall", "/target/good"),
            ("target-expired-tall", "/target/expired"),
        ] {
            let png = Path::new(&keep).join(format!("{name}.png"));
            let shot = format!("--screenshot={}", png.display());
            browse(
                &f.url(path),
                &["--window-size=1000,2200", "--hide-scrollbars", &shot],
            );
        }
    }
}

/// A PNG of `width` × `height` with more in it than a blank page compresses to.
fn check_png(path: &Path, width: u32, height: u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("no screenshot {path:?}: {e}"));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{path:?} is not a PNG"
    );
    let be = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
    };
    assert_eq!(
        (be(16), be(20)),
        (Some(width), Some(height)),
        "{path:?} size"
    );
    assert!(
        bytes.len() > 20_000,
        "{path:?} is only {} bytes: a blank page?",
        bytes.len()
    );
}
