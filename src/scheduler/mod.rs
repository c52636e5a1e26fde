//! Periodic probing: one loop per (target, check), running the check through `probe::run` on
//! the target's stable grid, at most one check per loop in flight, at most `concurrency` in
//! flight overall, every check bounded.
//!
//! The scheduler owns timing and fairness: when checks run (`timing`: stable offsets, warm-up
//! of new loops, backoff from targets whose probes fail slowly), which slots they take
//! (`lanes`: the pool and its slow lane), what it remembers per target (`standing`), start lag
//! and skipped ticks, recording outcomes into `State`, and logging state changes and first
//! rounds (`report`). Probers only probe.

mod lanes;
mod report;
mod standing;
mod timing;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};
use tokio_util::sync::CancellationToken;

use crate::config::Target;
use crate::probe::outcome::AddressOutcome;
use crate::probe::{self, Check};
use crate::state::State;
use lanes::{Lane, Lanes};
use report::{Round, Ticket};
use standing::{Found, Standing};
use timing::Start;

/// Runs the probe loops of the current target set.
pub struct Scheduler {
    state: Arc<State>,
    lanes: Lanes,
    concurrency: usize,
    stop: CancellationToken,
    tasks: HashMap<String, Running>,
}

struct Running {
    target: Arc<Target>,
    handle: JoinHandle<()>,
    /// The legacy scan loop, for targets that scan.
    scan: Option<JoinHandle<()>>,
    /// Handed on to the loop that replaces this one when the target changes.
    standing: Arc<Standing>,
}

impl Running {
    fn abort(&self) {
        self.handle.abort();
        if let Some(scan) = &self.scan {
            scan.abort();
        }
    }
}

/// What a loop's target needs from the scheduler.
#[derive(Clone)]
struct Ctx {
    state: Arc<State>,
    lanes: Lanes,
    stop: CancellationToken,
}

/// What a loop runs, with the probe loop's memory.
enum Work {
    Probe {
        standing: Arc<Standing>,
        ticket: Ticket,
    },
    Scan,
}

/// First scans are spread over this window (or the scan interval, if shorter).
const FIRST_SCAN_SPREAD: Duration = Duration::from_secs(600);
/// A round of first probes is summed up at the latest this long after its warm-up.
const ROUND_LIMIT: Duration = Duration::from_secs(60);
/// A failed probe that took at least 1/SLOW of its timeout failed slowly.
const SLOW: u32 = 2;

impl Scheduler {
    pub fn new(state: Arc<State>) -> Self {
        Scheduler {
            state,
            lanes: Lanes::new(),
            concurrency: 0,
            stop: CancellationToken::new(),
            tasks: HashMap::new(),
        }
    }

    /// Applies a config: unchanged targets keep running undisturbed, changed ones restart
    /// (keeping their standing), removed ones stop and vanish from `State`. Every loop that
    /// starts probes first within a short warm-up, then on its grid.
    /// Returns the targets now running: for an unchanged target, the `Arc` its loop already had
    /// (not the one in `targets`), so the caller can drop the duplicate.
    pub fn apply(&mut self, targets: &[Arc<Target>], concurrency: usize) -> Vec<Arc<Target>> {
        if concurrency != self.concurrency {
            self.lanes.resize(concurrency);
            self.concurrency = concurrency;
        }
        // Nothing running yet: no established target to protect from the new ones.
        let at_start = self.tasks.is_empty();
        let mut old = std::mem::take(&mut self.tasks);
        let mut plan = Vec::with_capacity(targets.len());
        for target in targets {
            match old.remove(&target.name) {
                Some(r) if r.target.same_as(target) && !r.handle.is_finished() => {
                    plan.push((r.target.clone(), Plan::Keep(r)));
                }
                Some(r) => {
                    r.abort();
                    plan.push((target.clone(), Plan::Restart(r.standing.clone())));
                }
                None => plan.push((target.clone(), Plan::New)),
            }
        }
        for (_, removed) in old {
            removed.abort();
        }
        // State first, with the Arcs the loops will probe: a fast first result is never
        // recorded before its target exists.
        let active: Vec<Arc<Target>> = plan.iter().map(|(t, _)| t.clone()).collect();
        self.state.set_targets(&active);

        let started = plan
            .iter()
            .filter(|(_, p)| !matches!(p, Plan::Keep(_)))
            .count();
        let new = plan.iter().filter(|(_, p)| matches!(p, Plan::New)).count();
        let warmup = timing::warmup(started, concurrency);
        let round =
            (new > 0).then(|| Round::start(new, !at_start, warmup + ROUND_LIMIT, &self.stop));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        for (target, plan) in plan {
            let running = match plan {
                Plan::Keep(running) => running,
                Plan::Restart(standing) => {
                    self.spawn(&target, standing, Ticket::none(), warmup, now)
                }
                Plan::New => {
                    let standing = Standing::new(self.state.clone(), !at_start);
                    let ticket = round.as_ref().map_or_else(Ticket::none, |r| r.ticket());
                    self.spawn(&target, standing, ticket, warmup, now)
                }
            };
            self.tasks.insert(target.name.clone(), running);
        }
        active
    }

    /// The concurrency limit shared with on-demand probes (the pool; the slow lane is the
    /// scheduler's own).
    pub fn slots(&self) -> Arc<RwLock<Arc<Semaphore>>> {
        self.lanes.pool.clone()
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

    /// Starts the loops of one target, `now` being the unix time.
    fn spawn(
        &self,
        target: &Arc<Target>,
        standing: Arc<Standing>,
        ticket: Ticket,
        warmup: Duration,
        now: Duration,
    ) -> Running {
        let ctx = Ctx {
            state: self.state.clone(),
            lanes: self.lanes.clone(),
            stop: self.stop.clone(),
        };
        let start = timing::start(&target.name, target.interval, warmup, now);
        let work = Work::Probe {
            standing: standing.clone(),
            ticket,
        };
        let handle = tokio::spawn(run_check(target.clone(), ctx.clone(), work, start));
        let scan = target.scan_interval.map(|every| {
            let spread = every.min(FIRST_SCAN_SPREAD);
            let first = timing::stable_offset(&format!("{}#scan", target.name), spread);
            let start = Start { first, then: None };
            tokio::spawn(run_check(target.clone(), ctx, Work::Scan, start))
        });
        Running {
            target: target.clone(),
            handle,
            scan,
            standing,
        }
    }
}

/// What `apply` does with one target.
enum Plan {
    Keep(Running),
    Restart(Arc<Standing>),
    New,
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

/// The loop of one check of one target: wait for its turn (`start`, then every period on the
/// grid) and its slots, run the check through `probe::run`, record the outcomes. Probes count
/// in-flight and lag, back off while they fail slowly and log state changes; scans always take
/// the slow lane. Ticks a check ran past are skipped (and counted, for probes).
async fn run_check(target: Arc<Target>, ctx: Ctx, mut work: Work, start: Start) {
    let (check, every) = match work {
        Work::Probe { .. } => (Check::Probe, target.interval),
        Work::Scan => (Check::Scan, target.scan_interval.unwrap_or(target.interval)),
    };
    let t0 = Instant::now();
    let mut due = t0 + start.first;
    let mut then = start.then.map(|t| t0 + t);
    loop {
        let (lane, on_schedule) = match &work {
            Work::Probe { standing, .. } => (standing.lane(), !standing.backing_off()),
            Work::Scan => (Lane::Slow, false),
        };
        let Some(permits) = ctx.lanes.turn(due, lane, &ctx.stop).await else {
            return;
        };
        let began = Instant::now();
        let outcomes = match check {
            Check::Probe => {
                if on_schedule {
                    ctx.state
                        .stats
                        .record_scheduler_lag(began.saturating_duration_since(due));
                }
                let _in_flight = InFlight::new(&ctx.state);
                // Boxed: the probe's state (handshake, buffers) is allocated while it runs
                // instead of inline in every idle loop, which would cost each target that
                // much memory between probes.
                Box::pin(probe::run(&target, check)).await
            }
            Check::Scan => Box::pin(probe::run(&target, check)).await,
        };
        let took = began.elapsed();
        drop(permits);
        let backing_off = match &mut work {
            Work::Probe { standing, ticket } => {
                after_probe(&target, &ctx.state, standing, ticket, outcomes, took)
            }
            Work::Scan => {
                after_scan(&target, &ctx.state, outcomes);
                false
            }
        };

        // A check (or its wait for slots) that ran past later ticks skips them.
        let step = timing::step(every, backing_off);
        let now = Instant::now();
        due = then.take().unwrap_or(due + step);
        while due <= now {
            if check == Check::Probe {
                ctx.state
                    .stats
                    .probes_skipped_total
                    .fetch_add(1, Ordering::Relaxed);
            }
            due += step;
        }
    }
}

/// Records a probe, updates the target's standing, logs what changed and counts a first
/// probe in its round; returns whether the target now backs off.
fn after_probe(
    target: &Arc<Target>,
    state: &State,
    standing: &Standing,
    ticket: &mut Ticket,
    outcomes: Vec<AddressOutcome>,
    took: Duration,
) -> bool {
    let Some(change) = state.record(target, Check::Probe, outcomes.clone()) else {
        // Replaced meanwhile: the loop is being stopped, its successor speaks for the target.
        return standing.backing_off();
    };
    let failing = outcomes.iter().find(|a| !a.outcome.success());
    let found = Found {
        failure: failing.and_then(|a| a.outcome.reason()),
        slow: failing.is_some() && took >= target.timeout / SLOW,
        at: failing
            .or(outcomes.first())
            .map_or_else(SystemTime::now, |a| a.outcome.finished_at),
    };
    let before = standing.record(found);
    report::probe(target, &outcomes, change, &before);
    ticket.report(failing.is_none());
    found.slow
}

/// Records a scan; failed addresses keep their previous result (logged at debug).
fn after_scan(target: &Arc<Target>, state: &State, outcomes: Vec<AddressOutcome>) {
    for a in outcomes.iter().filter(|a| !a.outcome.success()) {
        tracing::debug!(
            target = target.name.as_str(),
            ip = a.ip.map(tracing::field::display),
            detail = a.outcome.failure.as_ref().map(|f| f.detail.as_str()),
            "legacy scan failed; keeping the previous result"
        );
    }
    state.record(target, Check::Scan, outcomes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_check_loop_holds_no_probe_state() {
        // Every target keeps one or two of these futures alive between probes, so their size
        // is memory per target: the probe itself is boxed while it runs.
        let config = crate::config::parse(
            "targets:\n  - address: a.test:443\n",
            std::path::Path::new("t.yml"),
        )
        .expect("valid config");
        let target = config.targets.first().expect("a target").clone();
        let ctx = Ctx {
            state: Arc::new(State::default()),
            lanes: Lanes::new(),
            stop: CancellationToken::new(),
        };
        let start = Start {
            first: Duration::ZERO,
            then: None,
        };
        let loop_future = run_check(target, ctx, Work::Scan, start);
        let size = std::mem::size_of_val(&loop_future);
        assert!(size <= 1024, "an idle check loop takes {size} bytes");
    }
}
