//! Periodic probing: one task per target, stable per-target start offsets, at most one probe
//! per target in flight, at most `concurrency` probes in flight overall, every probe bounded.
//!
//! The scheduler owns timing: it sets the probe deadline, measures start lag, counts skipped
//! ticks, records outcomes into `State` and logs state changes. Probers only probe.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

use crate::config::Target;
use crate::probe::legacy;
use crate::probe::outcome::{Failure, FailureReason, Phases, ProbeOutcome};
use crate::probe::{self, ProbeCtx};
use crate::state::{Change, Scan, State};
use crate::tls::verifier;

/// Extra time past a probe's own deadline before the scheduler gives up on it (the prober is
/// deadline-bounded itself; this only guards against a bug).
const SAFETY_MARGIN: Duration = Duration::from_millis(500);

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

/// Time a legacy scan (at most ~30 ClientHellos) may take.
const SCAN_BUDGET: Duration = Duration::from_secs(60);
/// ClientHellos of one scan in flight at once: a scan never floods a server.
const SCAN_PARALLEL: usize = 2;
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
                handle: tokio::spawn(run_target(
                    target.clone(),
                    self.state.clone(),
                    self.slots.clone(),
                    self.stop.clone(),
                )),
                scan: target.scan_interval.map(|every| {
                    tokio::spawn(run_scan(
                        target.clone(),
                        every,
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

/// Probes `target` once under its timeout (plus a safety margin), whatever happens.
pub async fn probe_bounded(target: &Target) -> ProbeOutcome {
    let start = Instant::now();
    let ctx = ProbeCtx::with_timeout(target.timeout);
    match timeout_at(ctx.deadline + SAFETY_MARGIN, probe::probe(target, &ctx)).await {
        Ok(outcome) => outcome,
        Err(_) => overran(target.timeout, start),
    }
}

/// Probes every address `target` resolves to, in parallel under one deadline (`resolve: all`);
/// a failed resolution is one outcome without an address.
pub async fn probe_every_address(target: &Arc<Target>) -> Vec<(Option<IpAddr>, Arc<ProbeOutcome>)> {
    let start = Instant::now();
    let deadline = start + target.timeout;
    let addrs = match probe::resolve(target, deadline).await {
        Ok(addrs) => addrs,
        Err(f) => {
            let phases = Phases {
                resolve: Some(start.elapsed()),
                ..Phases::default()
            };
            return vec![(
                None,
                Arc::new(ProbeOutcome::failed(f, phases, start.elapsed())),
            )];
        }
    };
    let resolved_in = start.elapsed();
    let mut set = tokio::task::JoinSet::new();
    for addr in addrs {
        let target = target.clone();
        set.spawn(async move {
            let ctx = ProbeCtx {
                deadline,
                pinned: Some((addr, resolved_in)),
            };
            let outcome =
                match timeout_at(deadline + SAFETY_MARGIN, probe::probe(&target, &ctx)).await {
                    Ok(outcome) => outcome,
                    Err(_) => overran(target.timeout, start),
                };
            (Some(addr.ip()), Arc::new(outcome))
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(one) = joined {
            all.push(one);
        }
    }
    all.sort_by_key(|(ip, _)| *ip);
    all
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

/// The probe loop of one target.
async fn run_target(target: Arc<Target>, state: Arc<State>, slots: Slots, stop: CancellationToken) {
    let interval = target.interval;
    let mut due = Instant::now() + stable_offset(&target.name, interval);
    loop {
        let Some(permit) = turn(due, &slots, &stop).await else {
            return;
        };
        let start = Instant::now();
        state
            .stats
            .set_scheduler_lag(start.saturating_duration_since(due));
        let in_flight = InFlight::new(&state);
        // Boxed: the probe's state (rustls connection, buffers) then lives only while a probe
        // runs, not inline in every idle target task (~3 KiB per target).
        let outcomes = if target.resolve_all {
            Box::pin(probe_every_address(&target)).await
        } else {
            vec![(None, Arc::new(Box::pin(probe_bounded(&target)).await))]
        };
        drop(in_flight);
        drop(permit);
        let change = state.record_all(&target, outcomes.clone());
        log_change(&target, &outcomes, change);

        // A probe (or its wait for a permit) that ran past later ticks skips them.
        let now = Instant::now();
        due += interval;
        while due <= now {
            state
                .stats
                .probes_skipped_total
                .fetch_add(1, Ordering::Relaxed);
            due += interval;
        }
    }
}

/// The legacy protocol and weak cipher scan loop of one target.
async fn run_scan(
    target: Arc<Target>,
    every: Duration,
    state: Arc<State>,
    slots: Slots,
    stop: CancellationToken,
) {
    let spread = every.min(FIRST_SCAN_SPREAD);
    let mut due = Instant::now() + stable_offset(&format!("{}#scan", target.name), spread);
    loop {
        let Some(permit) = turn(due, &slots, &stop).await else {
            return;
        };
        let deadline = Instant::now() + SCAN_BUDGET;
        let result = match probe::resolve(&target, deadline).await {
            Ok(addrs) => match addrs.first() {
                Some(addr) => {
                    let name = target.server_name.to_str();
                    Box::pin(legacy::scan(*addr, Some(&name), deadline, SCAN_PARALLEL)).await
                }
                None => Err(legacy::ScanError::NoAddress(target.host.clone())),
            },
            Err(f) => Err(legacy::ScanError::Resolve(f.detail)),
        };
        drop(permit);
        match result {
            Err(e) => {
                tracing::debug!(target = target.name.as_str(), error = %e, "legacy scan failed; keeping the previous result")
            }
            Ok(result) => {
                let legacy_chain = result.legacy_chain.as_ref().map(|chain| {
                    verifier::judge(
                        chain,
                        &target.roots,
                        &target.server_name,
                        rustls_pki_types::UnixTime::now(),
                    )
                });
                let scan = Scan {
                    result,
                    finished_at: SystemTime::now(),
                    legacy_chain,
                };
                state.record_scan(&target, scan);
            }
        }
        let now = Instant::now();
        due += every;
        while due <= now {
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

fn overran(limit: Duration, start: Instant) -> ProbeOutcome {
    let failure = Failure::new(
        FailureReason::Other,
        format!("probe did not finish within its timeout of {limit:?}"),
    );
    ProbeOutcome::failed(failure, Phases::default(), start.elapsed())
}

/// One log line per state change of a target; per-probe detail only at debug.
fn log_change(
    target: &Target,
    outcomes: &[(Option<IpAddr>, Arc<ProbeOutcome>)],
    change: Option<Change>,
) {
    let name = target.name.as_str();
    // The first failing address speaks for the target (its `ip` is logged).
    let failing = outcomes.iter().find(|(_, o)| !o.success());
    let (ip, outcome) = match failing.or(outcomes.first()) {
        Some((ip, o)) => (ip.map(|i| i.to_string()).unwrap_or_default(), o),
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
