//! Periodic probing: one task per target, stable per-target start offsets, at most one probe
//! per target in flight, at most `concurrency` probes in flight overall, every probe bounded.
//!
//! The scheduler owns timing: it sets the probe deadline, measures start lag, counts skipped
//! ticks, records outcomes into `State` and logs state changes. Probers only probe.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

use crate::config::Target;
use crate::probe::outcome::AddressOutcome;
use crate::probe::{self, Check};
use crate::state::{Change, State};

/// Runs the probe loops of the current target set.
pub struct Scheduler {
    state: Arc<State>,
    slots: Slots,
    concurrency: usize,
    stop: CancellationToken,
    tasks: HashMap<String, Running>,
}

/// The concurrency limit, replaceable without restarting probe loops: each probe takes a permit
/// from the semaphore current at its tick (in-flight probes finish on the one they hold).
type Slots = Arc<RwLock<Arc<Semaphore>>>;

struct Running {
    target: Arc<Target>,
    handle: JoinHandle<()>,
    /// The legacy scan loop, for targets that scan.
    scan: Option<JoinHandle<()>>,
}

impl Running {
    fn abort(&self) {
        self.handle.abort();
        if let Some(scan) = &self.scan {
            scan.abort();
        }
    }
}

/// First scans are spread over this window (or the scan interval, if shorter).
const FIRST_SCAN_SPREAD: Duration = Duration::from_secs(600);

impl Scheduler {
    pub fn new(state: Arc<State>) -> Self {
        Scheduler {
            state,
            slots: Arc::new(RwLock::new(Arc::new(Semaphore::new(0)))),
            concurrency: 0,
            stop: CancellationToken::new(),
            tasks: HashMap::new(),
        }
    }

    /// Applies a config: unchanged targets keep running undisturbed, changed ones restart,
    /// removed ones stop and vanish from `State`.
    pub fn apply(&mut self, targets: &[Arc<Target>], concurrency: usize) {
        if concurrency != self.concurrency {
            *self.slots.write().unwrap_or_else(|p| p.into_inner()) =
                Arc::new(Semaphore::new(concurrency));
            self.concurrency = concurrency;
        }
        let mut old = std::mem::take(&mut self.tasks);
        let mut plan = Vec::with_capacity(targets.len());
        for target in targets {
            match old.remove(&target.name) {
                Some(r) if r.target.same_as(target) && !r.handle.is_finished() => {
                    plan.push((r.target.clone(), Some(r)));
                }
                other => {
                    if let Some(r) = other {
                        r.abort();
                    }
                    plan.push((target.clone(), None));
                }
            }
        }
        for (_, removed) in old {
            removed.abort();
        }
        // State first, with the Arcs the loops will probe: a fast first result is never
        // recorded before its target exists.
        let active: Vec<Arc<Target>> = plan.iter().map(|(t, _)| t.clone()).collect();
        self.state.set_targets(&active);
        for (target, running) in plan {
            let running = running.unwrap_or_else(|| Running {
                target: target.clone(),
                handle: tokio::spawn(run_check(
                    target.clone(),
                    Check::Probe,
                    self.state.clone(),
                    self.slots.clone(),
                    self.stop.clone(),
                )),
                scan: target.scan_interval.map(|_| {
                    tokio::spawn(run_check(
                        target.clone(),
                        Check::Scan,
                        self.state.clone(),
                        self.slots.clone(),
                        self.stop.clone(),
                    ))
                }),
            });
            self.tasks.insert(target.name.clone(), running);
        }
    }

    /// The concurrency limit shared with on-demand probes.
    pub fn slots(&self) -> Arc<RwLock<Arc<Semaphore>>> {
        self.slots.clone()
    }

    /// Stops scheduling new probes; in-flight ones run on.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits until `deadline` for in-flight probes to finish, then cancels the rest.
    pub async fn drain(&mut self, deadline: Instant) {
        self.stop.cancel();
        for (_, running) in self.tasks.drain() {
            // Scans are long and only informative: they stop at once.
            if let Some(scan) = &running.scan {
                scan.abort();
            }
            let abort = running.handle.abort_handle();
            if timeout_at(deadline, running.handle).await.is_err() {
                abort.abort();
            }
        }
    }
}

/// Counts a probe in `tls_exporter_probes_in_flight` for as long as it lives, including when
/// the probe's task is cancelled by a reload.
struct InFlight<'a>(&'a State);

impl<'a> InFlight<'a> {
    fn new(state: &'a State) -> Self {
        state.stats.probes_in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .stats
            .probes_in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Waits until `due`, then for a slot under the concurrency limit current at that time;
/// `None` once the scheduler stops.
async fn turn(
    due: Instant,
    slots: &Slots,
    stop: &CancellationToken,
) -> Option<OwnedSemaphorePermit> {
    tokio::select! {
        _ = stop.cancelled() => return None,
        _ = sleep_until(due) => {}
    }
    let semaphore = slots.read().unwrap_or_else(|p| p.into_inner()).clone();
    tokio::select! {
        _ = stop.cancelled() => None,
        // The semaphore is never closed.
        p = semaphore.acquire_owned() => p.ok(),
    }
}

/// The loop of one check of one target: wait for its turn (a stable offset, then every
/// period), take a concurrency slot, run the check through `probe::run`, record the outcomes.
/// Probes count in-flight and lag, and log state changes; ticks a check ran past are skipped
/// (and counted, for probes).
async fn run_check(
    target: Arc<Target>,
    check: Check,
    state: Arc<State>,
    slots: Slots,
    stop: CancellationToken,
) {
    let (every, first) = match check {
        Check::Probe => (
            target.interval,
            stable_offset(&target.name, target.interval),
        ),
        Check::Scan => {
            let every = target.scan_interval.unwrap_or(target.interval);
            let spread = every.min(FIRST_SCAN_SPREAD);
            (
                every,
                stable_offset(&format!("{}#scan", target.name), spread),
            )
        }
    };
    let mut due = Instant::now() + first;
    loop {
        let Some(permit) = turn(due, &slots, &stop).await else {
            return;
        };
        let outcomes = match check {
            Check::Probe => {
                let start = Instant::now();
                state
                    .stats
                    .set_scheduler_lag(start.saturating_duration_since(due));
                let _in_flight = InFlight::new(&state);
                probe::run(&target, check).await
            }
            Check::Scan => probe::run(&target, check).await,
        };
        drop(permit);
        if check == Check::Scan {
            for a in outcomes.iter().filter(|a| !a.outcome.success()) {
                let detail = a.outcome.failure.as_ref().map_or("", |f| f.detail.as_str());
                tracing::debug!(
                    target = target.name.as_str(),
                    detail,
                    "legacy scan failed; keeping the previous result"
                );
            }
        }
        let change = state.record(&target, check, outcomes.clone());
        if check == Check::Probe {
            log_change(&target, &outcomes, change);
        }

        // A check (or its wait for a permit) that ran past later ticks skips them.
        let now = Instant::now();
        due += every;
        while due <= now {
            if check == Check::Probe {
                state
                    .stats
                    .probes_skipped_total
                    .fetch_add(1, Ordering::Relaxed);
            }
            due += every;
        }
    }
}

/// Stable offset in [0, interval) from the target name, so first probes spread out and a
/// restart or reload does not bunch them up.
pub(crate) fn stable_offset(name: &str, interval: Duration) -> Duration {
    let millis = interval.as_millis().max(1) as u64;
    Duration::from_millis(crate::shard::stable_hash(name) % millis)
}

/// One log line per state change of a target; per-probe detail only at debug.
fn log_change(target: &Target, outcomes: &[AddressOutcome], change: Option<Change>) {
    let name = target.name.as_str();
    // The first failing address speaks for the target (its `ip` is logged).
    let failing = outcomes.iter().find(|a| !a.outcome.success());
    let (ip, outcome) = match failing.or(outcomes.first()) {
        Some(a) => (a.ip.map(|i| i.to_string()).unwrap_or_default(), &a.outcome),
        None => return,
    };
    let detail = outcome.failure.as_ref().map_or("", |f| f.detail.as_str());
    let reason = outcome.reason().map_or("", |r| r.as_label());
    match change {
        None => {}
        Some(Change::Same) => {
            tracing::debug!(
                target = name,
                ip,
                success = failing.is_none(),
                reason,
                detail,
                "probe finished"
            );
        }
        Some(Change::First) | Some(Change::Changed { .. }) if failing.is_none() => {
            tracing::info!(target = name, "target is healthy");
        }
        Some(Change::Changed { was }) => {
            let was = was.map_or("ok", |r| r.as_label());
            tracing::warn!(target = name, ip, reason, was, detail, "target is failing");
        }
        Some(Change::First) => {
            tracing::warn!(target = name, ip, reason, detail, "target is failing");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_and_within_the_interval() {
        let i = Duration::from_secs(60);
        assert_eq!(stable_offset("api", i), stable_offset("api", i));
        for n in 0..100 {
            assert!(stable_offset(&format!("t{n}"), i) < i);
        }
        assert_ne!(stable_offset("a", i), stable_offset("b", i));
    }
}
