//! Proxies on 127.0.0.1 for the proxy tests: Debian's squid (HTTP CONNECT, optionally with
//! Basic authentication through its `basic_ncsa_auth` helper and an htpasswd file) and dante's
//! `danted` (SOCKS5 without authentication), each started in the foreground from a temp dir
//! with its own config on a free port and stopped on drop; and an in-test SOCKS5 server with
//! RFC 1929 username/password, because dante's username method checks system users (it would
//! need an account added to this machine).
//!
//! Both daemons are installed by `scripts/install-test-deps`; a missing one fails the test with
//! that hint rather than skipping it. Run as root they drop to Debian's `proxy` (squid) and
//! `nobody` (dante) users, so their temp dirs are world-readable.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::exporter::free_port;
use super::WAIT;

/// The port both daemons' configs refuse to connect to (squid ACL deny, dante `socks block`).
pub const BLOCKED_PORT: u16 = 9;

/// A proxy daemon; stopped (SIGTERM, bounded wait, SIGKILL) when dropped.
pub struct ProxyDaemon {
    pub addr: SocketAddr,
    name: &'static str,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for ProxyDaemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ProxyDaemon {
    /// Every log file of the daemon, for assertion messages and for checking that it was used.
    pub fn log(&self) -> String {
        let mut out = format!(
            "--- {} logs ({}) ---\n",
            self.name,
            self.dir.path().display()
        );
        for f in ["stdout.log", "cache.log", "access.log", "sockd.log"] {
            if let Ok(text) = fs::read_to_string(self.dir.path().join(f)) {
                out.push_str(&format!("[{f}]\n{text}\n"));
            }
        }
        out
    }
}

/// squid as an HTTP CONNECT proxy that allows everything from loopback except CONNECT to
/// `BLOCKED_PORT` (403); with `basic` = (user, password), only that user authenticated with
/// Basic (NCSA htpasswd file, APR1 hash made by `openssl passwd -apr1`).
pub fn squid(basic: Option<(&str, &str)>) -> ProxyDaemon {
    let squid = require("/usr/sbin/squid", "squid");
    let dir = tempdir();
    let d = dir.path().display().to_string();
    let port = free_port();
    let mut auth = String::new();
    let mut allow = "http_access allow localhost\n";
    if let Some((user, password)) = basic {
        let helper = require("/usr/lib/squid/basic_ncsa_auth", "squid");
        let out = Command::new("openssl")
            .args(["passwd", "-apr1", password])
            .output()
            .expect("openssl passwd");
        assert!(out.status.success(), "openssl passwd -apr1 failed");
        let hash = String::from_utf8(out.stdout).expect("hash is text");
        let passwd = dir.path().join("passwd");
        fs::write(&passwd, format!("{user}:{}\n", hash.trim())).expect("write passwd");
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o644)).expect("chmod");
        auth = format!(
            "auth_param basic program {helper} {}\nauth_param basic realm tls_exporter test\nacl authed proxy_auth REQUIRED\n",
            passwd.display()
        );
        allow = "http_access allow authed\n";
    }
    let conf = dir.path().join("squid.conf");
    fs::write(
        &conf,
        format!(
            "http_port 127.0.0.1:{port}\n\
             pid_filename {d}/squid.pid\n\
             cache_log {d}/cache.log\n\
             access_log stdio:{d}/access.log\n\
             cache deny all\n\
             cache_mem 8 MB\n\
             coredump_dir {d}\n\
             netdb_filename none\n\
             pinger_enable off\n\
             shutdown_lifetime 0 seconds\n\
             {auth}\
             acl blocked port {BLOCKED_PORT}\n\
             http_access deny blocked\n\
             {allow}\
             http_access deny all\n"
        ),
    )
    .expect("write squid.conf");
    let mut cmd = Command::new(squid);
    cmd.arg("-N").arg("-f").arg(&conf);
    spawn("squid", cmd, port, dir)
}

/// dante's danted as a SOCKS5 proxy without authentication that allows CONNECT from loopback
/// anywhere except `BLOCKED_PORT` (reply 2, not allowed by ruleset); it resolves names for
/// socks5h itself.
pub fn dante() -> ProxyDaemon {
    let danted = require("/usr/sbin/danted", "dante-server");
    let dir = tempdir();
    let d = dir.path().display().to_string();
    let port = free_port();
    let conf = dir.path().join("sockd.conf");
    fs::write(
        &conf,
        format!(
            "logoutput: {d}/sockd.log\n\
             internal: 127.0.0.1 port = {port}\n\
             external: 127.0.0.1\n\
             clientmethod: none\n\
             socksmethod: none\n\
             user.privileged: root\n\
             user.unprivileged: nobody\n\
             client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
             socks block {{ from: 0.0.0.0/0 to: 0.0.0.0/0 port = {BLOCKED_PORT} }}\n\
             socks pass {{\n from: 127.0.0.0/8 to: 0.0.0.0/0\n command: connect\n log: connect\n}}\n"
        ),
    )
    .expect("write sockd.conf");
    let mut cmd = Command::new(danted);
    cmd.arg("-f")
        .arg(&conf)
        .arg("-p")
        .arg(dir.path().join("sockd.pid"))
        .arg("-N")
        .arg("1");
    spawn("danted", cmd, port, dir)
}

/// An in-test SOCKS5 proxy that demands username/password (RFC 1929) `user`/`password`, then
/// relays CONNECT to IPv4 addresses and names (resolved here); stopped on drop.
pub struct Socks5Auth {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Socks5Auth {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a `Socks5Auth` on a free loopback port.
pub async fn socks5_auth(user: &'static str, password: &'static str) -> Socks5Auth {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(WAIT, relay(client, user.as_bytes(), password.as_bytes()))
                        .await;
            });
        }
    });
    Socks5Auth { addr, task }
}

/// One SOCKS5 session: greeting (only method 2 accepted), authentication, CONNECT, relay.
async fn relay(mut c: TcpStream, user: &[u8], password: &[u8]) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    c.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    c.read_exact(&mut methods).await?;
    if !methods.contains(&2) {
        return c.write_all(&[5, 0xff]).await;
    }
    c.write_all(&[5, 2]).await?;
    let mut v = [0u8; 2];
    c.read_exact(&mut v).await?;
    let mut u = vec![0u8; usize::from(v[1])];
    c.read_exact(&mut u).await?;
    let mut plen = [0u8; 1];
    c.read_exact(&mut plen).await?;
    let mut p = vec![0u8; usize::from(plen[0])];
    c.read_exact(&mut p).await?;
    if u != user || p != password {
        return c.write_all(&[1, 1]).await;
    }
    c.write_all(&[1, 0]).await?;
    let mut req = [0u8; 4];
    c.read_exact(&mut req).await?;
    let host = match req[3] {
        1 => {
            let mut ip = [0u8; 4];
            c.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            c.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            c.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => return c.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]).await,
    };
    let mut port = [0u8; 2];
    c.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    let Ok(mut upstream) = TcpStream::connect((host.as_str(), port)).await else {
        return c.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await;
    };
    c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut c, &mut upstream).await?;
    Ok(())
}

fn require(path: &'static str, package: &str) -> &'static str {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install Debian's {package} (scripts/install-test-deps)"
    );
    path
}

/// A temp dir the daemons' unprivileged users can read and write (they log there).
fn tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod tempdir");
    dir
}

fn spawn(name: &'static str, mut cmd: Command, port: u16, dir: tempfile::TempDir) -> ProxyDaemon {
    let out = fs::File::create(dir.path().join("stdout.log")).expect("stdout log");
    let err = out.try_clone().expect("clone log handle");
    let child = cmd
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let mut daemon = ProxyDaemon {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        name,
        child,
        dir,
    };
    let start = Instant::now();
    while std::net::TcpStream::connect(daemon.addr).is_err() {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("{name} exited with {status}\n{}", daemon.log());
        }
        assert!(
            start.elapsed() < WAIT,
            "{name} did not listen on {} within {WAIT:?}\n{}",
            daemon.addr,
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}
