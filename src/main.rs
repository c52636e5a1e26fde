//! The `tls_exporter` binary: command line, logging, runtime, signals; prints errors once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tokio::signal::unix::{signal, SignalKind};

use tls_exporter::config;
use tls_exporter::listener::{self, Limits};
use tls_exporter::migrate;
use tls_exporter::reload::Reloader;
use tls_exporter::scrape::ScrapeSlots;
use tls_exporter::server::{router, App};
use tls_exporter::shard::Shard;
use tls_exporter::state::State;
use tls_exporter::storage;
use tls_exporter::web_config;

/// Default listen port: outside the 9100–9999 range of the Prometheus exporter port
/// allocations, which is fully allocated.
const DEFAULT_LISTEN: &str = ":19443";
/// How long in-flight probes may run on after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Prometheus exporter for TLS endpoint health.
#[derive(Debug, Parser)]
#[command(name = "tls_exporter", disable_version_flag = true)]
struct Args {
    /// Path to the YAML config file.
    #[arg(
        long = "config.file",
        value_name = "PATH",
        default_value = "config/example.yml"
    )]
    config_file: PathBuf,
    /// Address to serve /metrics and the status page on.
    #[arg(long = "web.listen-address", value_name = "[HOST]:PORT", default_value = DEFAULT_LISTEN)]
    listen: String,
    /// Exporter-toolkit web config: TLS and basic auth for this listener.
    #[arg(long = "web.config.file", value_name = "PATH")]
    web_config: Option<PathBuf>,
    /// Minimum level of log lines.
    #[arg(long = "log.level", value_enum, default_value = "info")]
    log_level: LogLevel,
    /// Log line format.
    #[arg(long = "log.format", value_enum, default_value = "logfmt")]
    log_format: LogFormat,
    /// How often to check the config file and target files for changes and reload (0s: never;
    /// SIGHUP always works, POST /-/reload with --web.enable-lifecycle).
    #[arg(long = "config.watch-interval", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    watch_interval: Duration,
    /// Probe only shard I of N (run I of N equal runs of the targets in stable-hash order);
    /// `auto/N` takes I from the trailing number of the host name (StatefulSet pods).
    #[arg(long = "shard", value_name = "I/N")]
    shard: Option<String>,
    /// Let `/probe` probe endpoints that are not in the config (off: the exporter cannot be
    /// used to scan arbitrary hosts); the config's `adhoc_probes:` can restrict them to listed
    /// modules, host globs, CIDRs and ports.
    #[arg(long = "web.enable-adhoc-probes")]
    adhoc_probes: bool,
    /// Keep the latest outcome of every target in this file across restarts (off when unset):
    /// saved every few seconds when something changed and at shutdown, restored at start.
    #[arg(long = "storage.path", value_name = "PATH")]
    storage_path: Option<PathBuf>,
    /// Enable `POST /-/reload` (off: it answers 403; SIGHUP always reloads).
    #[arg(long = "web.enable-lifecycle")]
    lifecycle: bool,
    /// How long a client may take to send a request's head, from its first byte (for a new
    /// connection from accept, TLS handshake included).
    #[arg(long = "web.read-header-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
    read_header_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests.
    #[arg(long = "web.idle-timeout", value_name = "DURATION", default_value = "2m", value_parser = parse_timeout)]
    idle_timeout: Duration,
    /// How long a response may take to reach the client once its handler answered; a scraper
    /// that stops reading is dropped then.
    #[arg(long = "web.write-timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    write_timeout: Duration,
    /// Connections served at once; at the limit the one idle the longest makes room, and with
    /// none idle a new one is closed as soon as it is accepted.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// `/metrics` renders at once; a scrape waits up to a second for a slot, then gets 503.
    #[arg(long = "web.max-concurrent-scrapes", value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_scrapes: u32,
    /// Validate the config file, print every problem, and exit 0 (valid) or 1 (invalid).
    #[arg(long = "check-config")]
    check_config: bool,
    /// Print version and exit.
    #[arg(long = "version")]
    version: bool,
    /// For benchmarks only: judge every chain from scratch instead of reusing the verdict on a
    /// byte-identical chain (`tls::cache`). Verdicts are the same; only the CPU differs.
    #[arg(long = "debug.no-chain-cache", hide = true)]
    no_chain_cache: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Commands besides serving (the default).
#[derive(Debug, Subcommand)]
enum Command {
    /// Print tls_exporter `modules:` for a blackbox_exporter or ssl_exporter config file, with
    /// a comment on every setting that maps only roughly or has no equivalent.
    Migrate {
        /// Which exporter's config FILE is.
        #[arg(long = "from", value_enum)]
        from: MigrateFrom,
        /// Their config file (`blackbox.yml`, `ssl_exporter.yaml`).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MigrateFrom {
    Blackbox,
    #[value(name = "ssl_exporter")]
    SslExporter,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Logfmt,
    Json,
}

/// The global allocator: jemalloc (the default `jemalloc` feature, Linux). Freed pages go back to
/// the OS about a second after they fall idle (background purging), so RSS follows the live
/// heap through reloads and scrapes instead of keeping the high-water mark.
#[cfg(all(feature = "jemalloc", target_os = "linux"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation (the prefixed build's name for
/// `malloc_conf`): one arena for all threads, so memory a reload frees on one thread is reused
/// by every other (with an arena per thread, each reload that replaced targets left ~1 MiB of
/// partly used pages behind); one background thread purges dirty pages after 1 s and hands them
/// straight back (no muzzy stage). The `_RJEM_MALLOC_CONF` environment variable overrides them.
#[cfg(all(feature = "jemalloc", target_os = "linux"))]
#[export_name = "_rjem_malloc_conf"]
#[allow(non_upper_case_globals)]
static malloc_conf: &[u8; 95] =
    b"background_thread:true,max_background_threads:1,narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    tls_exporter::state::tune_allocator();
    let args = Args::parse();
    if args.version {
        println!("{}", tls_exporter::metrics::version_string());
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Migrate { from, file }) = &args.command {
        let from = match from {
            MigrateFrom::Blackbox => migrate::Source::Blackbox,
            MigrateFrom::SslExporter => migrate::Source::SslExporter,
        };
        return match migrate::migrate_file(from, file) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                for line in e.lines() {
                    eprintln!("{line}");
                }
                ExitCode::FAILURE
            }
        };
    }
    if args.check_config {
        return match config::load(&args.config_file) {
            Ok(c) if !c.target_file_problems.is_empty() => {
                for problem in &c.target_file_problems {
                    eprintln!("{problem}");
                }
                ExitCode::FAILURE
            }
            Ok(c) => {
                let n = c.targets.len();
                let noun = if n == 1 { "target" } else { "targets" };
                println!("{}: ok, {n} {noun}", args.config_file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                for line in e.lines() {
                    eprintln!("{line}");
                }
                ExitCode::FAILURE
            }
        };
    }
    init_logging(args.log_level, args.log_format);
    // Like Prometheus: as many descriptors as the hard limit allows, before any thread starts.
    match listener::raise_open_file_limit() {
        Ok((before, after)) => {
            tracing::debug!(
                before,
                after,
                "raised the open-file limit to the hard limit"
            );
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    if args.no_chain_cache {
        tls_exporter::tls::cache::disable();
        tracing::info!(
            "chain cache off (--debug.no-chain-cache): every chain is judged from scratch"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    // Don't wait for resolver threads still stuck in getaddrinfo after their probe timed out.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let shard = match &args.shard {
        None => None,
        Some(text) => {
            let host = std::env::var("HOSTNAME").ok().or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            });
            Some(Shard::parse(text, host.as_deref())?)
        }
    };
    let web = args
        .web_config
        .as_deref()
        .map(web_config::load)
        .transpose()
        .map_err(|e| format!("invalid web config:\n{e}"))?
        .map(Arc::new);
    let mut cache = config::TargetFileCache::new();
    let initial = config::load_with(&args.config_file, &mut cache);
    let initial = Arc::new(initial.map_err(|e| format!("invalid config:\n{e}"))?);
    let state = Arc::new(State::default());
    // Before the first target set is applied: a fast first probe must replace, not precede,
    // what is restored.
    let fingerprints = match &args.storage_path {
        Some(path) => {
            let (state, path, targets) = (state.clone(), path.clone(), initial.targets.clone());
            let restored =
                tokio::task::spawn_blocking(move || storage::restore(&state, &path, &targets))
                    .await
                    .unwrap_or_default();
            tls_exporter::state::release_free_memory();
            Some(restored)
        }
        None => None,
    };
    let listener = bind(&args.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", args.listen))?;
    let reloader = Arc::new(Reloader::start(
        args.config_file.clone(),
        shard,
        state.clone(),
        initial.clone(),
        cache,
    ));
    tracing::info!(
        version = %tls_exporter::metrics::version_string(),
        listen = %listener.local_addr().map_or_else(|_| args.listen.clone(), |a| a.to_string()),
        config = %args.config_file.display(),
        targets = initial.targets.len(),
        shard = %shard.map_or_else(|| "all".to_string(), |s| s.to_string()),
        tls = web.as_ref().is_some_and(|w| w.tls()),
        basic_auth = web.as_ref().is_some_and(|w| w.basic_auth()),
        storage = %args.storage_path.as_ref().map_or_else(|| "off".to_string(), |p| p.display().to_string()),
        "tls_exporter started"
    );
    drop(initial);
    tls_exporter::state::release_free_memory();

    if !args.watch_interval.is_zero() {
        tokio::spawn(reloader.clone().watch(args.watch_interval));
    }
    let writer = args
        .storage_path
        .clone()
        .zip(fingerprints)
        .map(|(path, fingerprints)| storage::Writer::start(state.clone(), path, fingerprints));
    let app = Arc::new(App {
        state,
        reloader: reloader.clone(),
        adhoc_probes: args.adhoc_probes,
        lifecycle: args.lifecycle,
        scrapes: ScrapeSlots::new(args.max_concurrent_scrapes as usize),
    });
    let limits = listener_limits(&args, &reloader);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web_config::serve(
        listener,
        router(app),
        web,
        limits,
        async {
            let _ = stop_rx.await;
        },
    ));

    wait_for_signals(&reloader)
        .await
        .map_err(|e| format!("install signal handlers: {e}"))?;
    tracing::info!("shutting down");
    // One deadline for everything: stop scheduling, drain HTTP and in-flight probes together.
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    let _ = stop_tx.send(());
    let drain_server = async {
        let _ = tokio::time::timeout_at(deadline, server).await;
    };
    tokio::join!(reloader.shutdown(deadline), drain_server);
    // After the probes drained, so the file has their results.
    if let Some(writer) = writer {
        writer.finish().await;
    }
    let reuse = tls_exporter::tls::cache::shared_stats();
    tracing::debug!(
        hits = reuse.hits,
        misses = reuse.misses,
        chains = reuse.chains,
        bytes = reuse.bytes,
        "chain cache at shutdown"
    );
    Ok(())
}

/// The listener's bounds from the flags; the descriptors kept for probes follow the current
/// config's `concurrency`.
fn listener_limits(args: &Args, reloader: &Arc<Reloader>) -> Limits {
    let nofile = listener::open_file_limit();
    let reserve = listener::fd_reserve_for(reloader.config().concurrency);
    if u64::try_from(reserve).unwrap_or(u64::MAX) > nofile / 2 {
        tracing::warn!(
            "the open-file limit of {nofile} is small for this concurrency: probes should keep \
             {reserve} descriptors, HTTP connections may still use half; raise `ulimit -n`"
        );
    }
    let reloader = reloader.clone();
    Limits {
        read_header_timeout: args.read_header_timeout,
        idle_timeout: args.idle_timeout,
        write_timeout: args.write_timeout,
        max_connections: args.max_connections as usize,
        fd_reserve: Arc::new(move || listener::fd_reserve_for(reloader.config().concurrency)),
    }
}

/// Binds `HOST:PORT` like the Prometheus tools: `:PORT` means every interface, IPv6 and IPv4.
async fn bind(listen: &str) -> std::io::Result<tokio::net::TcpListener> {
    match listen.strip_prefix(':') {
        Some(port) => match tokio::net::TcpListener::bind(format!("[::]:{port}")).await {
            Ok(l) => Ok(l),
            // No IPv6 on this host (some containers): IPv4 only.
            Err(_) => tokio::net::TcpListener::bind(format!("0.0.0.0:{port}")).await,
        },
        None => tokio::net::TcpListener::bind(listen).await,
    }
}

/// Handles SIGHUP (reload, on its own task so a slow reload never delays SIGTERM) until SIGTERM
/// or SIGINT arrives.
async fn wait_for_signals(reloader: &Arc<Reloader>) -> std::io::Result<()> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let reloader = reloader.clone();
                tokio::spawn(async move { reloader.reload().await });
            }
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
    }
}

/// A timeout: a duration as in the config, longer than zero.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be longer than 0s".to_string()),
        d => Ok(d),
    }
}

/// Durations as in the config (`5s`, `500ms`), `0s` included.
fn parse_duration(text: &str) -> Result<Duration, String> {
    if text == "0" || text == "0s" {
        return Ok(Duration::ZERO);
    }
    config::parse_duration(text)
}

fn init_logging(level: LogLevel, format: LogFormat) {
    let level = match level {
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Error => tracing::Level::ERROR,
    };
    // Our crate at the chosen level; dependencies one level quieter at most.
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(level.min(tracing::Level::WARN))
        .with_target("tls_exporter", level);
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // One formatter per format, both in the shape Prometheus components log (see logfmt).
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.event_format(tls_exporter::logfmt::Json::default()))
            .with(filter)
            .try_init(),
        LogFormat::Logfmt => tracing_subscriber::registry()
            .with(layer.event_format(tls_exporter::logfmt::Logfmt::default()))
            .with(filter)
            .try_init(),
    };
}
