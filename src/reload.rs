//! Config reloads (SIGHUP, `POST /-/reload`, and a watcher of the config and target files):
//! load, validate, apply; a bad file keeps the last good config running and flips
//! `tls_exporter_config_last_reload_successful` to 0. A bad target file only costs that file:
//! its last good content is kept.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;

use crate::config::{self, Config, ConfigError, Target, TargetFileCache};
use crate::scheduler::Scheduler;
use crate::shard::Shard;
use crate::state::State;

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
        scheduler.apply(&mine(&initial, shard), initial.concurrency);
        mark_success(&state);
        note_target_file_problems(&state, &initial);
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
        }
    }

    /// Re-reads the config file; on success applies it and returns the number of targets.
    /// Reloads run one at a time, from load to the recorded verdict.
    pub async fn reload(&self) -> Result<usize, ConfigError> {
        let mut scheduler = self.scheduler.lock().await;
        if self.stopping.load(Ordering::Relaxed) {
            return Err(ConfigError::Read {
                path: self.path.clone(),
                source: std::io::Error::other("shutting down"),
            });
        }
        let path = self.path.clone();
        let mut cache = std::mem::take(&mut *self.cache.lock().unwrap_or_else(|p| p.into_inner()));
        let (loaded, cache) = tokio::task::spawn_blocking(move || {
            let loaded = config::load_with(&path, &mut cache);
            (loaded, cache)
        })
        .await
        .unwrap_or_else(|e| {
            let failed = Err(ConfigError::Read {
                path: self.path.clone(),
                source: std::io::Error::other(format!("config loader failed: {e}")),
            });
            (failed, TargetFileCache::new())
        });
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = cache;
        crate::state::release_free_memory();
        match loaded {
            Ok(config) => {
                note_target_file_problems(&self.state, &config);
                scheduler.apply(&mine(&config, self.shard), config.concurrency);
                let targets = config.targets.len();
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
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
        let semaphore = self.slots.read().unwrap_or_else(|p| p.into_inner()).clone();
        semaphore.acquire_owned().await.ok()
    }

    /// Stops scheduling at once, then gives in-flight probes until `deadline` to finish.
    pub async fn shutdown(&self, deadline: tokio::time::Instant) {
        self.stopping.store(true, Ordering::Relaxed);
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
                tracing::info!("config or target files changed; reloading");
                let _ = self.reload().await;
                // Compare against what was just loaded (the loaded config may name new files).
                seen = fingerprint(&self.config()).await;
            }
        }
    }
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
    for line in &config.target_file_problems {
        tracing::warn!(problem = %line, "invalid target file");
    }
    let files: std::collections::HashSet<&str> = config
        .target_file_problems
        .iter()
        .filter_map(|l| l.split(':').next())
        .collect();
    state
        .stats
        .target_files_invalid
        .store(files.len() as u64, Ordering::Relaxed);
}

/// The targets of `config` this process probes.
fn mine(config: &Config, shard: Option<Shard>) -> Vec<Arc<Target>> {
    match shard {
        None => config.targets.clone(),
        Some(s) => config
            .targets
            .iter()
            .filter(|t| s.owns(&t.name))
            .cloned()
            .collect(),
    }
}

fn mark_success(state: &State) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    state.stats.reload_successful.store(true, Ordering::Relaxed);
    state.stats.set_reload_success_time(now);
}
