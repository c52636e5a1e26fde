//! STARTTLS peers on 127.0.0.1: real Debian servers (exim4, dovecot, vsftpd, PostgreSQL,
//! slapd, prosody, MariaDB) started from temporary directories with our certificate, and an
//! in-test NNTP server for the one protocol without a small Debian server.
//!
//! The real servers are installed by `scripts/install-starttls-test-deps`; a missing one fails
//! the test with that hint rather than skipping it. Each server runs in the foreground as a
//! child process on a free port and is stopped (signal, bounded wait, then SIGKILL) on drop.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ServerConfig;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::exporter::free_port;
use super::pki::Cert;
use super::WAIT;

/// A real server process; stopped when dropped.
pub struct Daemon {
    pub addr: SocketAddr,
    name: &'static str,
    child: Child,
    stop_signal: &'static str,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", self.stop_signal, &self.child.id().to_string()])
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

impl Daemon {
    /// The server's log, for assertion messages.
    pub fn log(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        format!("--- {} log ({}) ---\n{log}", self.name, self.log.display())
    }
}

/// Whether the server offers TLS (the positive case) or not (the refusal case).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tls {
    On,
    Off,
}

/// exim4 (SMTP, RFC 3207). Exim drops root for an untrusted `-C` config and runs as
/// Debian-exim, so its files belong to that user.
pub fn exim(leaf: &Cert, tls: Tls) -> Daemon {
    let exim = require("/usr/sbin/exim4", "exim4-daemon-light");
    let dir = tempdir();
    let port = free_port();
    let (cert, key) = write_pem(dir.path(), leaf);
    let spool = dir.path().join("spool");
    fs::create_dir(&spool).expect("spool dir");
    for p in [dir.path(), &spool, &cert, &key] {
        give_to(p, "Debian-exim");
    }
    let advertise = if tls == Tls::On { "*" } else { "" };
    let conf = dir.path().join("exim.conf");
    fs::write(
        &conf,
        format!(
            "keep_environment =\n\
             primary_hostname = localhost\n\
             daemon_smtp_ports = {port}\n\
             local_interfaces = 127.0.0.1\n\
             tls_advertise_hosts = {advertise}\n\
             tls_certificate = {cert}\n\
             tls_privatekey = {key}\n\
             spool_directory = {spool}\n\
             log_file_path = {dir}/%slog\n\
             pid_file_path = {dir}/exim.pid\n\
             acl_smtp_rcpt = deny\n\
             begin acl\n",
            cert = cert.display(),
            key = key.display(),
            spool = spool.display(),
            dir = dir.path().display(),
        ),
    )
    .expect("write exim.conf");
    let log = dir.path().join("mainlog");
    let mut cmd = Command::new(exim);
    cmd.arg("-bdf").arg("-C").arg(&conf);
    spawn("exim4", cmd, port, "TERM", log, dir)
}

/// dovecot with IMAP, POP3 and ManageSieve listeners; `addr` is IMAP's, the others are in
/// `Dovecot`.
pub fn dovecot(leaf: &Cert, tls: Tls) -> Dovecot {
    let dovecot = require("/usr/sbin/dovecot", "dovecot-imapd");
    require("/usr/lib/dovecot/pop3", "dovecot-pop3d");
    require("/usr/lib/dovecot/managesieve", "dovecot-managesieved");
    let dir = tempdir();
    let (imap, pop3, sieve) = (free_port(), free_port(), free_port());
    let (cert, key) = write_pem(dir.path(), leaf);
    let d = dir.path().display();
    let ssl = match tls {
        Tls::On => format!(
            "ssl = yes\nssl_cert = <{}\nssl_key = <{}\nssl_min_protocol = TLSv1.2\n",
            cert.display(),
            key.display()
        ),
        Tls::Off => "ssl = no\n".to_string(),
    };
    let conf = dir.path().join("dovecot.conf");
    fs::write(
        &conf,
        format!(
            "base_dir = {d}/run\n\
             state_dir = {d}/state\n\
             log_path = {d}/log\n\
             instance_name = starttls-test-{imap}\n\
             protocols = imap pop3 sieve\n\
             listen = 127.0.0.1\n\
             {ssl}\
             mail_location = maildir:{d}/mail\n\
             passdb {{\n  driver = static\n  args = password=secret\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={d}/home\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  \
               inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  \
               inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
             service managesieve-login {{\n  inet_listener sieve {{\n    port = {sieve}\n  }}\n}}\n"
        ),
    )
    .expect("write dovecot.conf");
    let log = dir.path().join("log");
    let mut cmd = Command::new(dovecot);
    cmd.arg("-F").arg("-c").arg(&conf);
    let mut daemon = spawn("dovecot", cmd, imap, "TERM", log, dir);
    for port in [pop3, sieve] {
        wait_listening(&mut daemon, port);
    }
    Dovecot {
        pop3: loopback(pop3),
        sieve: loopback(sieve),
        daemon,
    }
}

/// A running dovecot and its three listeners.
pub struct Dovecot {
    /// IMAP is `daemon.addr`.
    pub daemon: Daemon,
    pub pop3: SocketAddr,
    pub sieve: SocketAddr,
}

/// vsftpd (FTP, RFC 4217), anonymous logins only so that it starts at all.
pub fn vsftpd(leaf: &Cert, tls: Tls) -> Daemon {
    let vsftpd = require("/usr/sbin/vsftpd", "vsftpd");
    let dir = tempdir();
    let port = free_port();
    let (cert, key) = write_pem(dir.path(), leaf);
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).expect("empty dir");
    let ssl = if tls == Tls::On { "YES" } else { "NO" };
    let conf = dir.path().join("vsftpd.conf");
    let log = dir.path().join("vsftpd.log");
    fs::write(
        &conf,
        format!(
            "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
             anonymous_enable=YES\nanon_root={empty}\nlocal_enable=NO\n\
             ssl_enable={ssl}\nallow_anon_ssl=YES\nforce_anon_logins_ssl=NO\n\
             rsa_cert_file={cert}\nrsa_private_key_file={key}\n\
             secure_chroot_dir={empty}\nseccomp_sandbox=NO\n\
             xferlog_enable=NO\nvsftpd_log_file={log}\n",
            empty = empty.display(),
            cert = cert.display(),
            key = key.display(),
            log = log.display(),
        ),
    )
    .expect("write vsftpd.conf");
    let mut cmd = Command::new(vsftpd);
    cmd.arg(&conf);
    spawn("vsftpd", cmd, port, "TERM", log, dir)
}

/// PostgreSQL: a fresh cluster (initdb) in a temporary directory, run as the `postgres`
/// user when we are root (postgres refuses to run as root).
pub fn postgres(leaf: &Cert, tls: Tls) -> Daemon {
    let bin = postgres_bin_dir();
    let dir = tempdir();
    let port = free_port();
    let (cert, key) = write_pem(dir.path(), leaf);
    let data = dir.path().join("data");
    let owner = is_root().then_some("postgres");
    if let Some(user) = owner {
        for p in [dir.path(), &cert, &key] {
            give_to(p, user);
        }
    }
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "--no-instructions",
        ])
        .env("LC_ALL", "C");
    as_user(&mut initdb, owner);
    let out = initdb.output().expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = dir.path().join("postgres.log");
    let mut cmd = Command::new(bin.join("postgres"));
    cmd.arg("-D")
        .arg(&data)
        .args(["-c", "listen_addresses=127.0.0.1", "-p", &port.to_string()])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", dir.path().display()))
        .args(["-c", if tls == Tls::On { "ssl=on" } else { "ssl=off" }])
        .arg("-c")
        .arg(format!("ssl_cert_file={}", cert.display()))
        .arg("-c")
        .arg(format!("ssl_key_file={}", key.display()))
        .args(["-c", "fsync=off"]);
    as_user(&mut cmd, owner);
    // SIGINT is PostgreSQL's fast shutdown.
    spawn("postgres", cmd, port, "INT", log, dir)
}

/// slapd (LDAP StartTLS, RFC 4513) with no database at all: StartTLS needs none.
pub fn slapd(leaf: &Cert, tls: Tls) -> Daemon {
    let slapd = require("/usr/sbin/slapd", "slapd");
    let dir = tempdir();
    let port = free_port();
    let (cert, key) = write_pem(dir.path(), leaf);
    let conf = dir.path().join("slapd.conf");
    let tls_conf = match tls {
        Tls::On => format!(
            "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
            cert.display(),
            key.display()
        ),
        Tls::Off => String::new(),
    };
    fs::write(
        &conf,
        format!(
            "include /etc/ldap/schema/core.schema\npidfile {}/slapd.pid\n{tls_conf}",
            dir.path().display()
        ),
    )
    .expect("write slapd.conf");
    let log = dir.path().join("slapd.log");
    let mut cmd = Command::new(slapd);
    cmd.args(["-d", "0", "-f"])
        .arg(&conf)
        .arg("-h")
        .arg(format!("ldap://127.0.0.1:{port}/"));
    spawn("slapd", cmd, port, "TERM", log, dir)
}

/// prosody (XMPP client-to-server, RFC 6120) serving the virtual host `localhost`; without
/// TLS its `tls` module is left out, so the stream features lack `<starttls/>`.
pub fn prosody(leaf: &Cert, tls: Tls) -> Daemon {
    let prosody = require("/usr/bin/prosody", "prosody");
    let dir = tempdir();
    let port = free_port();
    let (cert, key) = write_pem(dir.path(), leaf);
    let d = dir.path().display();
    fs::create_dir(dir.path().join("data")).expect("data dir");
    fs::create_dir(dir.path().join("certs")).expect("certs dir");
    let modules = if tls == Tls::On {
        "\"tls\", \"saslauth\""
    } else {
        "\"saslauth\""
    };
    let conf = dir.path().join("prosody.cfg.lua");
    fs::write(
        &conf,
        format!(
            "run_as_root = true\ndaemonize = false\npidfile = \"{d}/prosody.pid\"\n\
             data_path = \"{d}/data\"\nlog = {{ info = \"{d}/prosody.log\" }}\n\
             c2s_ports = {{ {port} }}\nc2s_interfaces = {{ \"127.0.0.1\" }}\n\
             s2s_ports = {{ }}\nc2s_direct_tls_ports = {{ }}\n\
             http_ports = {{ }}\nhttps_ports = {{ }}\n\
             modules_enabled = {{ {modules} }}\nmodules_disabled = {{ \"s2s\", \"posix\" }}\n\
             certificates = \"{d}/certs\"\n\
             ssl = {{ certificate = \"{cert}\", key = \"{key}\" }}\n\
             c2s_require_encryption = false\nauthentication = \"internal_hashed\"\n\
             VirtualHost \"localhost\"\n",
            cert = cert.display(),
            key = key.display(),
        ),
    )
    .expect("write prosody.cfg.lua");
    let log = dir.path().join("prosody.log");
    let mut cmd = Command::new(prosody);
    cmd.arg("--config").arg(&conf);
    spawn("prosody", cmd, port, "TERM", log, dir)
}

/// MariaDB on an empty data directory (`--skip-grant-tables` lets it start without
/// `mariadb-install-db`: the TLS upgrade happens before any authentication).
pub fn mariadb(leaf: &Cert, tls: Tls) -> Daemon {
    let mariadbd = require("/usr/sbin/mariadbd", "mariadb-server");
    let dir = tempdir();
    let port = free_port();
    let (cert, key) = write_pem(dir.path(), leaf);
    let data = dir.path().join("data");
    fs::create_dir(&data).expect("data dir");
    let log = dir.path().join("mariadb.err");
    let d = dir.path();
    let mut cmd = Command::new(mariadbd);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", d.join("sock").display()))
        .arg(format!("--pid-file={}", d.join("pid").display()))
        .arg(format!("--log-error={}", log.display()))
        .args(["--bind-address=127.0.0.1", &format!("--port={port}")])
        .args(["--skip-grant-tables", "--innodb-buffer-pool-size=8M"]);
    if is_root() {
        cmd.arg("--user=root");
    }
    match tls {
        Tls::On => {
            cmd.arg(format!("--ssl-cert={}", cert.display()))
                .arg(format!("--ssl-key={}", key.display()));
        }
        Tls::Off => {
            cmd.arg("--skip-ssl");
        }
    }
    spawn("mariadb", cmd, port, "TERM", log, dir)
}

// ---------------------------------------------------------------------------------------------
// In-test NNTP server.

/// An in-test server; stops when dropped.
pub struct InTest {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for InTest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An NNTP server following RFC 3977 and RFC 4642: greeting `200`, `CAPABILITIES` (listing
/// STARTTLS only when it has TLS), `STARTTLS` answered `382` and then a TLS handshake with
/// `tls`, or `580` when it has none; `QUIT` `205`; anything else `500`.
pub async fn nntp(tls: Option<Arc<ServerConfig>>) -> InTest {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tls = tls.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(WAIT, nntp_session(tcp, tls)).await;
            });
        }
    });
    InTest { addr, task }
}

async fn nntp_session(
    tcp: tokio::net::TcpStream,
    tls: Option<Arc<ServerConfig>>,
) -> std::io::Result<()> {
    let mut io = BufReader::new(tcp);
    io.write_all(b"200 news.example.test NNTP service ready, posting allowed\r\n")
        .await?;
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await? == 0 || line.len() > 512 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        match (command.as_str(), &tls) {
            ("CAPABILITIES", _) => {
                let starttls = if tls.is_some() { "STARTTLS\r\n" } else { "" };
                let reply =
                    format!("101 Capability list:\r\nVERSION 2\r\nREADER\r\n{starttls}.\r\n");
                io.write_all(reply.as_bytes()).await?;
            }
            ("STARTTLS", Some(config)) => {
                io.write_all(b"382 Continue with TLS negotiation\r\n")
                    .await?;
                // Bytes pipelined after STARTTLS must not survive into TLS (RFC 4642 2.2.2).
                if !io.buffer().is_empty() {
                    return Ok(());
                }
                let mut session = TlsAcceptor::from(config.clone())
                    .accept(io.into_inner())
                    .await?;
                // Hold the session until the client closes.
                let mut buf = [0u8; 256];
                let _ = session.read(&mut buf).await;
                return Ok(());
            }
            ("STARTTLS", None) => {
                io.write_all(b"580 Can not initiate TLS negotiation\r\n")
                    .await?;
            }
            ("QUIT", _) => {
                io.write_all(b"205 Connection closing\r\n").await?;
                return Ok(());
            }
            _ => io.write_all(b"500 Unknown command\r\n").await?,
        }
    }
}

/// A rustls server configuration serving `leaf` (and nothing else).
pub fn rustls_config(leaf: &Cert) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der.clone()], leaf.key_der())
        .expect("test certificate and key");
    Arc::new(config)
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// `path` must exist: the server is installed by scripts/install-starttls-test-deps.
fn require(path: &'static str, package: &str) -> &'static str {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install Debian's {package} (scripts/install-starttls-test-deps)"
    );
    path
}

fn postgres_bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists() && p.join("postgres").exists())
        .collect();
    dirs.sort();
    dirs.pop().unwrap_or_else(|| {
        panic!("no /usr/lib/postgresql/*/bin/initdb: install Debian's postgresql (scripts/install-starttls-test-deps)")
    })
}

/// A temporary directory others may traverse (servers drop privileges before reading it).
fn tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("starttls-")
        .tempdir()
        .expect("temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
    dir
}

/// Writes the leaf certificate and its key (mode 0600) into `dir`.
fn write_pem(dir: &Path, leaf: &Cert) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    fs::write(&cert, &leaf.pem).expect("write cert");
    fs::write(&key, &leaf.key_pem).expect("write key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod key");
    (cert, key)
}

fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The uid and gid of a system user, from /etc/passwd.
fn user_ids(user: &str) -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&user))
        .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
        .unwrap_or_else(|| panic!("no user {user} (its Debian package creates it)"))
}

/// Hands `path` to `user` (when we are root; otherwise it is ours already).
fn give_to(path: &Path, user: &str) {
    if is_root() {
        let (uid, gid) = user_ids(user);
        chown(path, Some(uid), Some(gid)).expect("chown");
    }
}

fn as_user(cmd: &mut Command, user: Option<&str>) {
    if let Some(user) = user {
        let (uid, gid) = user_ids(user);
        cmd.uid(uid).gid(gid);
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts `cmd` in the foreground and waits until it accepts TCP connections on `port`.
fn spawn(
    name: &'static str,
    mut cmd: Command,
    port: u16,
    stop_signal: &'static str,
    log: PathBuf,
    dir: tempfile::TempDir,
) -> Daemon {
    let out = fs::File::create(dir.path().join("stdout.log")).expect("stdout log");
    let err = out.try_clone().expect("clone log handle");
    let child = cmd
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let mut daemon = Daemon {
        addr: loopback(port),
        name,
        child,
        stop_signal,
        log,
        _dir: dir,
    };
    wait_listening(&mut daemon, port);
    daemon
}

/// Polls `port` until it accepts, failing with the server's logs if it exits or takes longer
/// than `WAIT`.
fn wait_listening(daemon: &mut Daemon, port: u16) {
    let start = Instant::now();
    let addr = loopback(port);
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        let stdout = fs::read_to_string(daemon._dir.path().join("stdout.log")).unwrap_or_default();
        let exited = !matches!(daemon.child.try_wait(), Ok(None));
        assert!(
            !exited && start.elapsed() < WAIT,
            "{} did not listen on {addr} ({}):\n{stdout}\n{}",
            daemon.name,
            if exited { "it exited" } else { "timed out" },
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}
