//! Config reloads (SIGHUP, `POST /-/reload`, and a watcher of the config and target files):
//! load, validate, apply; a bad file keeps the last good config running and flips
//! `tls_exporter_config_last_reload_successful` to 0. A bad target file only costs that file:
//! its last good content is kept. Each applied config also goes to the certificate-file
//! watcher (`files::watcher`), which re-reads every file at once.
//!
//! A reload stuck on a file never blocks shutdown or later reloads: shutdown abandons it (its
//! loader thread ends on its own, reads being bounded by `config::read`), and a later reload
//! waits at most `RELOAD_WAIT` for it before answering that one is in progress.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;

use crate::config::{self, Config, ConfigError, Target, TargetFileCache};
use crate::files::watcher::{Owns, Plan, Watcher};
use crate::scheduler::Scheduler;
use crate::shard::Shard;
use crate::state::State;

/// Problems of an invalid config that a reload logs and answers with; the rest are counted in
/// one more line. `--check-config` lists every one.
pub const REPORTED_PROBLEMS: usize = 1_000;

/// How long a reload waits for one in progress before giving up: longer than one bounded file
/// read (`config::read::READ_DEADLINE`), so reloads that are merely slow still queue.
pub const RELOAD_WAIT: Duration = Duration::from_secs(12);

/// How long the watcher waits, once it sees a file change, for the files to hold still before
/// reloading.
const SETTLE: Duration = Duration::from_millis(500);

/// At most this many such waits: files still changing after them are reloaded as they are.
const SETTLE_ROUNDS: usize = 10;

/// Why a reload did not apply a new config; the config in force keeps running.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config file, or a file it names, has problems (shown: the first `REPORTED_PROBLEMS`).
    #[error("{}", self.lines().join("\n"))]
    Config(ConfigError),
    /// Shutdown began before the new config could be applied.
    #[error("the exporter is shutting down, so the config was not reloaded")]
    Stopping,
    /// Another reload was still loading after `RELOAD_WAIT`.
    #[error(
        "a reload is already in progress (still loading after {}s), so the config was not reloaded",
        RELOAD_WAIT.as_secs()
    )]
    InProgress,
    /// The task loading the config ended without an answer (it panicked or was cancelled).
    #[error("the config loader stopped before it finished ({0})")]
    Loader(tokio::task::JoinError),
}

impl ReloadError {
    /// The error as log lines: one per problem of an invalid config, at most
    /// `REPORTED_PROBLEMS` and a line counting the rest.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ReloadError::Config(e) => {
                let (mut lines, more) = e.first_lines(REPORTED_PROBLEMS);
                if more > 0 {
                    lines.push(format!(
                        "… and {more} more problems (tls_exporter --check-config lists them all)"
                    ));
                }
                lines
            }
            other => vec![other.to_string()],
        }
    }
}

/// Owns the scheduler and applies configs to it, one reload at a time.
pub struct Reloader {
    path: PathBuf,
    /// The config in force (all targets, every shard's).
    current: std::sync::RwLock<Arc<Config>>,
    slots: Arc<std::sync::RwLock<Arc<tokio::sync::Semaphore>>>,
    /// Only targets of this shard are probed.
    shard: Option<Shard>,
    state: Arc<State>,
    scheduler: Mutex<Scheduler>,
    /// Last good content of every target file.
    cache: std::sync::Mutex<TargetFileCache>,
    /// Set by `shutdown`: no reload applies after it.
    stopping: AtomicBool,
    /// Flipped to true by `shutdown`, to abandon a reload that is loading.
    stop: tokio::sync::watch::Sender<bool>,
    /// Held from load to the recorded verdict: one reload at a time.
    loading: Mutex<()>,
    /// Re-reads the certificate files (`files:`, `expect_cert_file`) of the config in force.
    files: Watcher,
}

impl Reloader {
    /// Starts probing `initial` (already loaded from `path`).
    pub fn start(
        path: PathBuf,
        shard: Option<Shard>,
        state: Arc<State>,
        initial: Arc<Config>,
        cache: TargetFileCache,
    ) -> Self {
        let mut scheduler = Scheduler::new(state.clone());
        let _running = scheduler.apply(&mine(&initial, shard), initial.concurrency);
        mark_success(&state);
        note_target_file_problems(&state, &initial);
        let files = Watcher::start(file_plan(&initial, shard), {
            let state = state.clone();
            move |set| state.set_files(set)
        });
        state.stats.ready.store(true, Ordering::Relaxed);
        Reloader {
            path,
            current: std::sync::RwLock::new(initial),
            slots: scheduler.slots(),
            shard,
            state,
            scheduler: Mutex::new(scheduler),
            cache: std::sync::Mutex::new(cache),
            stopping: AtomicBool::new(false),
            stop: tokio::sync::watch::Sender::new(false),
            loading: Mutex::new(()),
            files,
        }
    }

    /// Re-reads the config file; on success applies it and returns the number of targets.
    /// Reloads run one at a time, from load to the recorded verdict (a later one waits at most
    /// `RELOAD_WAIT`); none applies once shutdown began, and shutdown does not wait for one.
    pub async fn reload(&self) -> Result<usize, ReloadError> {
        let mut stop = self.stop.subscribe();
        let _loading = tokio::select! {
            held = tokio::time::timeout(RELOAD_WAIT, self.loading.lock()) => {
                held.map_err(|_| ReloadError::InProgress)?
            }
            _ = stop.wait_for(|s| *s) => return Err(ReloadError::Stopping),
        };
        if self.stopping.load(Ordering::Relaxed) {
            return Err(ReloadError::Stopping);
        }
        let path = self.path.clone();
        let mut cache = std::mem::take(&mut *self.cache.lock().unwrap_or_else(|p| p.into_inner()));
        let task = tokio::task::spawn_blocking(move || {
            let loaded = config::load_with(&path, &mut cache).map_err(ReloadError::Config);
            (loaded, cache)
        });
        let (loaded, cache) = tokio::select! {
            done = task => {
                done.unwrap_or_else(|e| (Err(ReloadError::Loader(e)), TargetFileCache::new()))
            }
            // Shutdown does not wait for a load (it may be stuck on a file until its deadline).
            _ = stop.wait_for(|s| *s) => return Err(ReloadError::Stopping),
        };
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = cache;
        crate::state::release_free_memory();
        let mut scheduler = self.scheduler.lock().await;
        // Shutdown may have begun while the file was loading: the new config is not applied.
        if self.stopping.load(Ordering::Relaxed) {
            return Err(ReloadError::Stopping);
        }
        match loaded {
            Ok(config) => {
                note_target_file_problems(&self.state, &config);
                let running = scheduler.apply(&mine(&config, self.shard), config.concurrency);
                let mut config = config;
                share_running(&mut config, &running);
                self.files.apply(file_plan(&config, self.shard));
                let targets = config.targets.len();
                let previous = std::mem::replace(
                    &mut *self.current.write().unwrap_or_else(|p| p.into_inner()),
                    Arc::new(config),
                );
                // The old config's targets (those not kept running) go now, not at the next
                // reload; their memory goes back to the OS with the load's.
                drop(previous);
                crate::state::release_free_memory();
                mark_success(&self.state);
                tracing::info!(file = %self.path.display(), targets, "config reloaded");
                Ok(targets)
            }
            Err(e) => {
                self.state
                    .stats
                    .reload_successful
                    .store(false, Ordering::Relaxed);
                for line in e.lines() {
                    tracing::error!(error = %line, "config reload failed; keeping the last good config");
                }
                Err(e)
            }
        }
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A slot under the probe concurrency limit, for an on-demand probe.
    pub async fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        // A reload that changes `concurrency` closes the semaphore waited on: wait on the new
        // one (the current one is never closed).
        loop {
            let semaphore = self.slots.read().unwrap_or_else(|p| p.into_inner()).clone();
            if let Ok(permit) = semaphore.acquire_owned().await {
                return Some(permit);
            }
        }
    }

    /// Stops scheduling at once, then gives in-flight probes until `deadline` to finish.
    pub async fn shutdown(&self, deadline: tokio::time::Instant) {
        self.stopping.store(true, Ordering::Relaxed);
        self.stop.send_replace(true);
        self.files.stop();
        let mut scheduler = self.scheduler.lock().await;
        scheduler.stop();
        scheduler.drain(deadline).await;
    }
}

impl Reloader {
    /// Reloads whenever the config file or the set or content of target files changes,
    /// checking every `every`, until shutdown.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut seen = fingerprint(&self.config()).await;
        loop {
            tokio::time::sleep(every).await;
            if self.stopping.load(Ordering::Relaxed) {
                return;
            }
            let now = fingerprint(&self.config()).await;
            if now != seen {
                tracing::debug!("config or target files changed; waiting for them to hold still");
                settled(now, || {
                    let config = self.config();
                    async move { fingerprint(&config).await }
                })
                .await;
                if self.stopping.load(Ordering::Relaxed) {
                    return;
                }
                tracing::info!("config or target files changed; reloading");
                let _ = self.reload().await;
                // Compare against what was just loaded (the loaded config may name new files).
                seen = fingerprint(&self.config()).await;
            }
        }
    }
}

/// Waits until `read` gives the same answer twice, `SETTLE` apart (at most `SETTLE_ROUNDS`
/// times), starting from `now`; returns the last answer. The watcher reloads only then: a file
/// written in place can be caught half written, and half a config may well parse, with the
/// rest of its targets missing until the next change. Files that never hold still are read as
/// they are after the last round.
async fn settled<T: PartialEq, F: std::future::Future<Output = T>>(
    mut now: T,
    mut read: impl FnMut() -> F,
) -> T {
    for _ in 0..SETTLE_ROUNDS {
        tokio::time::sleep(SETTLE).await;
        let again = read().await;
        if again == now {
            break;
        }
        now = again;
    }
    now
}

/// Size and modification time of the config file and of every file its target-file patterns
/// match now.
async fn fingerprint(config: &Config) -> Vec<(PathBuf, Option<(u64, Option<SystemTime>)>)> {
    let mut paths = vec![config.path.clone()];
    let patterns = config.target_file_patterns.clone();
    tokio::task::spawn_blocking(move || {
        for p in &patterns {
            if let Ok(found) = glob::glob(p) {
                paths.extend(found.filter_map(Result::ok));
            }
        }
        paths.sort();
        paths.dedup();
        paths
            .into_iter()
            .map(|p| {
                let meta = std::fs::metadata(&p)
                    .ok()
                    .map(|m| (m.len(), m.modified().ok()));
                (p, meta)
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// Logs target-file problems and counts the files that have them.
fn note_target_file_problems(state: &State, config: &Config) {
    for problem in &config.target_file_problems {
        tracing::warn!(%problem, "invalid target file");
    }
    let files: HashSet<&Path> = config
        .target_file_problems
        .iter()
        .map(|p| p.path.as_path())
        .collect();
    state
        .stats
        .target_files_invalid
        .store(files.len() as u64, Ordering::Relaxed);
}

/// The targets of `config` this process probes.
/// Points the config's unchanged targets at the `Arc`s their loops hold, so a reload keeps one
/// copy of each target instead of two (the loops' and the config's).
fn share_running(config: &mut Config, running: &[Arc<Target>]) {
    let by_name: std::collections::HashMap<&str, &Arc<Target>> =
        running.iter().map(|t| (t.name.as_str(), t)).collect();
    for target in &mut config.targets {
        if let Some(kept) = by_name.get(target.name.as_str()) {
            // `output` is not part of `same_as` (it changes no probe) but `/probe` reads it
            // from the config's target.
            if !Arc::ptr_eq(kept, target) && kept.same_as(target) && kept.output == target.output {
                *target = Arc::clone(kept);
            }
        }
    }
}

fn mine(config: &Config, shard: Option<Shard>) -> Vec<Arc<Target>> {
    match shard {
        None => config.targets.clone(),
        Some(s) => {
            let mask = s.mask(&config.targets, |t| t.name.as_str());
            config
                .targets
                .iter()
                .zip(mask)
                .filter(|(_, mine)| *mine)
                .map(|(t, _)| t.clone())
                .collect()
        }
    }
}

/// The certificate files this process reads for `config`: with a shard, the `files:` matches
/// it owns (by path) and the expected files of its own targets.
fn file_plan(config: &Config, shard: Option<Shard>) -> Plan {
    let owns: Option<Owns> =
        shard.map(|s| Arc::new(move |p: &Path| s.owns(&p.to_string_lossy())) as Owns);
    Plan::of(config, &mine(config, shard), owns)
}

fn mark_success(state: &State) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    state.stats.reload_successful.store(true, Ordering::Relaxed);
    state.stats.set_reload_success_time(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files that change twice and then hold still are answered after three rounds; files that
    /// never hold still after `SETTLE_ROUNDS`, with what the last round read.
    #[tokio::test(start_paused = true)]
    async fn settling_waits_for_files_to_hold_still_and_no_longer_than_its_rounds() {
        let reads = std::cell::Cell::new(0u32);
        let start = tokio::time::Instant::now();
        let got = settled(0u32, || {
            reads.set(reads.get() + 1);
            std::future::ready(reads.get().min(2))
        })
        .await;
        assert_eq!((got, reads.get()), (2, 3));
        assert_eq!(start.elapsed(), SETTLE * 3);

        let reads = std::cell::Cell::new(0u32);
        let start = tokio::time::Instant::now();
        let got = settled(0u32, || {
            reads.set(reads.get() + 1);
            std::future::ready(reads.get())
        })
        .await;
        assert_eq!(got as usize, SETTLE_ROUNDS);
        assert_eq!(start.elapsed(), SETTLE * SETTLE_ROUNDS as u32);
    }

    fn reloader(dir: &Path) -> Reloader {
        let path = dir.join("config.yml");
        std::fs::write(&path, "targets: []\n").expect("write config");
        let initial = Arc::new(config::load(&path).expect("valid config"));
        let state = Arc::new(State::default());
        Reloader::start(path, None, state, initial, TargetFileCache::new())
    }

    #[tokio::test]
    async fn reload_after_shutdown_began_is_refused_in_a_sentence() {
        let dir = tempfile::tempdir().expect("temp dir");
        let r = reloader(dir.path());
        r.shutdown(tokio::time::Instant::now()).await;
        let e = r.reload().await.expect_err("no reload after shutdown");
        assert!(matches!(e, ReloadError::Stopping), "{e:?}");
        assert_eq!(
            e.to_string(),
            "the exporter is shutting down, so the config was not reloaded"
        );
        assert_eq!(e.lines(), vec![e.to_string()]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_does_not_wait_for_a_reload_stuck_on_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let r = Arc::new(reloader(dir.path()));
        // The config file's read now hangs until the read deadline, as on a hung filesystem.
        config::read::pretend_stuck(&r.path);
        let stuck = tokio::spawn({
            let r = r.clone();
            async move { r.reload().await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let began = std::time::Instant::now();
        r.shutdown(tokio::time::Instant::now() + Duration::from_secs(1))
            .await;
        let answer = tokio::time::timeout(Duration::from_secs(2), stuck)
            .await
            .expect("the stuck reload answers once shutdown begins")
            .expect("reload task");
        config::read::release(&r.path);
        assert!(began.elapsed() < Duration::from_secs(3));
        assert!(matches!(answer, Err(ReloadError::Stopping)), "{answer:?}");
    }

    #[tokio::test]
    async fn invalid_config_on_reload_reports_each_problem() {
        let dir = tempfile::tempdir().expect("temp dir");
        let r = reloader(dir.path());
        std::fs::write(
            dir.path().join("config.yml"),
            "targets:\n  - address: nope\n  - address: a:443\n    timeout: 2m\n",
        )
        .expect("rewrite config");
        let e = r.reload().await.expect_err("invalid config");
        let file = dir.path().join("config.yml");
        assert_eq!(
            e.lines(),
            vec![
                format!(
                    "{}:2:14: targets[0].address: \"nope\": expected host:port",
                    file.display()
                ),
                format!(
                    "{}:4:14: targets[1].timeout: must be shorter than interval (1m)",
                    file.display()
                ),
            ]
        );
        assert!(!r.state.stats.reload_successful.load(Ordering::Relaxed));
        assert_eq!(r.config().targets.len(), 0, "the last good config stays");
        assert_eq!(e.to_string(), e.lines().join("\n"));
    }

    #[test]
    fn reload_reports_the_first_problems_and_counts_the_rest() {
        let n = REPORTED_PROBLEMS + 2;
        let mut yaml = String::from("targets:\n");
        for i in 0..n {
            yaml.push_str(&format!("  - address: nope{i}\n"));
        }
        let e = ReloadError::Config(
            config::parse(&yaml, Path::new("c.yml")).expect_err("every target is invalid"),
        );
        let lines = e.lines();
        assert_eq!(lines.len(), REPORTED_PROBLEMS + 1);
        assert_eq!(
            lines.first().map(String::as_str),
            Some("c.yml:2:14: targets[0].address: \"nope0\": expected host:port")
        );
        assert_eq!(
            lines.last().map(String::as_str),
            Some("… and 2 more problems (tls_exporter --check-config lists them all)")
        );
    }
}
