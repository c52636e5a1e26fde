//! Bare rustls handshake loop: the CPU floor per 1,000 full TLS handshakes, for `scripts/bench`
//! to set the exporter's cost against.
//!
//! Same crypto provider (aws-lc-rs), protocol versions and key-exchange preference as the
//! exporter, resumption off, chain verified with rustls' stock webpki verifier against the bench
//! CA; no certificate parsing, no state, no metrics. It measures its own CPU from
//! `/proc/self/stat` (utime + stime) over the measured handshakes only, after a warm-up.
//!
//! ```text
//! handshake_loop --ca CA.pem --addrs 127.0.0.1:P1,127.0.0.1:P2 --names 1000
//!                [--count 15000] [--rate 500] [--concurrency 256] [--warmup 500]
//! ```
//!
//! `--rate 0` runs closed-loop (as fast as `--concurrency` handshakes in flight allow). Server
//! names are `tNNNNN.bench.test`, cycled over `--names`. Prints one `key=value` line.
//! Not part of the test suite; `scripts/bench` builds and runs it.
// Until Cargo.toml declares this bench with `harness = false`, cargo compiles it under libtest,
// which never calls `main`.
#![cfg_attr(test, allow(dead_code))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;

/// One handshake may take at most this long (loopback; anything slower counts as a failure).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

struct Args {
    ca: String,
    addrs: Vec<SocketAddr>,
    names: u64,
    count: u64,
    rate: u64,
    concurrency: usize,
    warmup: u64,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("handshake_loop: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match client_config(&args.ca) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("handshake_loop: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("handshake_loop: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(args, config))
}

async fn run(args: Args, config: Arc<ClientConfig>) -> ExitCode {
    let connector = TlsConnector::from(config);
    // Warm-up: connections, allocator and caches, not measured.
    let warm = batch(&args, &connector, 0, args.warmup, 0).await;
    if warm.failures > 0 && warm.ok == 0 {
        eprintln!("handshake_loop: every warm-up handshake failed; is the server up?");
        return ExitCode::from(1);
    }
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let result = batch(&args, &connector, args.warmup, args.count, args.rate).await;
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let Some(cpu) = cpu else {
        eprintln!("handshake_loop: cannot read /proc/self/stat");
        return ExitCode::from(1);
    };
    let per_1000 = if result.ok > 0 {
        cpu / result.ok as f64 * 1000.0
    } else {
        f64::NAN
    };
    println!(
        "handshakes={} failures={} seconds={seconds:.3} rate={:.1} cpu_seconds={cpu:.3} cpu_per_1000={per_1000:.4}",
        result.ok,
        result.failures,
        result.ok as f64 / seconds,
    );
    if result.failures > result.count / 100 {
        eprintln!("handshake_loop: more than 1% of handshakes failed");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

struct Batch {
    count: u64,
    ok: u64,
    failures: u64,
}

/// Runs `count` handshakes, numbered from `first`, paced at `rate` per second (0: unpaced),
/// with at most `concurrency` in flight.
async fn batch(args: &Args, connector: &TlsConnector, first: u64, count: u64, rate: u64) -> Batch {
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        if rate > 0 {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate as f64)).await;
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let n = first + i;
        let addr = args.addrs[(n % args.addrs.len() as u64) as usize];
        let name = format!("t{:05}.bench.test", n % args.names + 1);
        let connector = connector.clone();
        let (ok, failures) = (ok.clone(), failures.clone());
        tasks.spawn(async move {
            let done = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&connector, addr, name));
            match done.await {
                Ok(Ok(())) => ok.fetch_add(1, Ordering::Relaxed),
                _ => failures.fetch_add(1, Ordering::Relaxed),
            };
            drop(permit);
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Batch {
        count,
        ok: ok.load(Ordering::Relaxed),
        failures: failures.load(Ordering::Relaxed),
    }
}

/// Connect, full handshake, close_notify (as the exporter does), drop.
async fn handshake(
    connector: &TlsConnector,
    addr: SocketAddr,
    name: String,
) -> std::io::Result<()> {
    let server_name = ServerName::try_from(name)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut tls = connector.connect(server_name, tcp).await?;
    let _ = tokio::time::timeout(Duration::from_millis(100), tls.shutdown()).await;
    Ok(())
}

fn client_config(ca: &str) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca).map_err(|e| format!("read {ca}: {e}"))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("read {ca}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("{ca}: not a usable trust anchor: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("protocol versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// utime + stime of this process, in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// USER_HZ; 100 on every Linux architecture we run on.
fn clock_ticks() -> f64 {
    100.0
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        ca: String::new(),
        addrs: Vec::new(),
        names: 1000,
        count: 15_000,
        rate: 500,
        concurrency: 256,
        warmup: 500,
    };
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue; // `cargo bench` appends it; it takes no value
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--ca" => args.ca = value.clone(),
            "--addrs" => {
                args.addrs = value
                    .split(',')
                    .map(|a| a.parse().map_err(|e| format!("--addrs {a}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--names" => args.names = num()?.max(1),
            "--count" => args.count = num()?,
            "--rate" => args.rate = num()?,
            "--concurrency" => args.concurrency = (num()? as usize).max(1),
            "--warmup" => args.warmup = num()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.ca.is_empty() || args.addrs.is_empty() {
        return Err("--ca and --addrs are required".to_string());
    }
    Ok(args)
}
