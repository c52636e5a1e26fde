//! Config reloads (SIGHUP, `POST /-/reload`): load, validate, apply; a bad file keeps the last
//! good config running and flips `tls_exporter_config_last_reload_successful` to 0.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Mutex;

use crate::config::{self, Config, ConfigError, Target};
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
}

impl Reloader {
    /// Starts probing `initial` (already loaded from `path`).
    pub fn start(
        path: PathBuf,
        shard: Option<Shard>,
        state: Arc<State>,
        initial: Arc<Config>,
    ) -> Self {
        let mut scheduler = Scheduler::new(state.clone());
        scheduler.apply(&mine(&initial, shard), initial.concurrency);
        mark_success(&state);
        state.stats.ready.store(true, Ordering::Relaxed);
        Reloader {
            path,
            current: std::sync::RwLock::new(initial),
            slots: scheduler.slots(),
            shard,
            state,
            scheduler: Mutex::new(scheduler),
        }
    }

    /// Re-reads the config file; on success applies it and returns the number of targets.
    /// Reloads run one at a time, from load to the recorded verdict.
    pub async fn reload(&self) -> Result<usize, ConfigError> {
        let mut scheduler = self.scheduler.lock().await;
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .unwrap_or_else(|e| {
                Err(ConfigError::Read {
                    path: self.path.clone(),
                    source: std::io::Error::other(format!("config loader failed: {e}")),
                })
            });
        match loaded {
            Ok(config) => {
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
        let mut scheduler = self.scheduler.lock().await;
        scheduler.stop();
        scheduler.drain(deadline).await;
    }
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
