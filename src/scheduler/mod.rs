//! Periodic probing: one loop per (target, check), running the check through `probe::run` on
//! the target's stable grid, at most one check per loop in flight, at most `concurrency` in
//! flight overall, every check bounded.
//!
//! The scheduler owns timing and fairness: when checks run (`timing`: stable offsets, warm-up
//! of new loops, backoff from targets whose probes fail slowly), which slots they take
//! (`lanes`: the pool and its slow lane), what it remembers per target (`standing`), start lag
//! and skipped ticks, recording outcomes into `State`, and logging state changes and first
//! rounds (`report`). Probers only probe. Between runs a loop is an entry of `queue` (one
//! timer and a feeder per lane for the whole target set), not a task: a task exists only while
//! a check holds its slots.

mod lanes;
mod queue;
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
use lanes::{Lane, Lanes, Permits};
use queue::{Life, Queue, Queued, PROBE, SCAN};
use report::{Round, Ticket};
use standing::{Found, Standing};

/// Runs the probe loops of the current target set.
pub struct Scheduler {
    state: Arc<State>,
    lanes: Lanes,
    concurrency: usize,
    stop: CancellationToken,
    queue: Arc<Queue<Loop>>,
    /// The queue's timer and feeders, started with the first target set.
    serving: Vec<JoinHandle<()>>,
    targets: HashMap<String, Running>,
}

/// A target the scheduler runs.
struct Running {
    target: Arc<Target>,
    /// Its loops' life: ended when the target is removed or replaced.
    life: Arc<Life>,
    /// Handed on to the loops that replace these when the target changes.
    standing: Arc<Standing>,
}

/// What a loop's checks need from the scheduler when they run.
#[derive(Clone)]
struct Ctx {
    state: Arc<State>,
    stop: CancellationToken,
    queue: Arc<Queue<Loop>>,
}

/// What a loop runs, with the probe loop's memory.
enum Work {
    Probe {
        standing: Arc<Standing>,
        ticket: Ticket,
    },
    Scan,
}

/// One check of one target between its runs (queued) or during one (owned by its task): the
/// whole memory of an idle loop.
struct Loop {
    target: Arc<Target>,
    life: Arc<Life>,
    work: Work,
    /// When the next run is due.
    due: Instant,
    /// For a loop that probed first in the warm-up: when it joins its grid.
    then: Option<Instant>,
}

impl Loop {
    fn check(&self) -> Check {
        match self.work {
            Work::Probe { .. } => Check::Probe,
            Work::Scan => Check::Scan,
        }
    }

    /// The slot of this check's running task in its `Life`.
    fn slot(&self) -> usize {
        match self.work {
            Work::Probe { .. } => PROBE,
            Work::Scan => SCAN,
        }
    }
}

impl Queued for Loop {
    fn due(&self) -> Instant {
        self.due
    }

    /// Probes of targets that back off (or that a reload added, until their first probe) and
    /// every scan take the slow lane.
    fn lane(&self) -> Lane {
        match &self.work {
            Work::Probe { standing, .. } => standing.lane(),
            Work::Scan => Lane::Slow,
        }
    }

    fn life(&self) -> &Life {
        &self.life
    }
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
            queue: Queue::new(),
            serving: Vec::new(),
            targets: HashMap::new(),
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
        if self.serving.is_empty() {
            let ctx = Ctx {
                state: self.state.clone(),
                stop: self.stop.clone(),
                queue: self.queue.clone(),
            };
            self.serving =
                self.queue
                    .start(self.lanes.clone(), self.stop.clone(), move |l, permits| {
                        let life = l.life.clone();
                        life.spawn(l.slot(), run(l, permits, ctx.clone()));
                    });
        }
        // Nothing running yet: no established target to protect from the new ones.
        let at_start = self.targets.is_empty();
        let mut old = std::mem::take(&mut self.targets);
        let mut plan = Vec::with_capacity(targets.len());
        for target in targets {
            match old.remove(&target.name) {
                Some(r) if r.target.same_as(target) && !r.life.ended() => {
                    plan.push((r.target.clone(), Plan::Keep(r)));
                }
                Some(r) => {
                    r.life.end();
                    plan.push((target.clone(), Plan::Restart(r.standing.clone())));
                }
                None => plan.push((target.clone(), Plan::New)),
            }
        }
        for (_, removed) in old {
            removed.life.end();
        }
        self.queue.purge();
        // Every target's probe loop and, when it scans, its scan loop.
        let checks = plan
            .iter()
            .map(|(t, _)| 1 + usize::from(t.scan_interval.is_some()))
            .sum();
        self.queue.reserve(checks);
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
        let t0 = Instant::now();
        self.targets.reserve(plan.len());
        for (target, plan) in plan {
            let running = match plan {
                Plan::Keep(running) => running,
                Plan::Restart(standing) => {
                    self.queue_loops(&target, standing, Ticket::none(), warmup, now, t0)
                }
                Plan::New => {
                    let standing = Standing::new(self.state.clone(), !at_start);
                    let ticket = round.as_ref().map_or_else(Ticket::none, |r| r.ticket());
                    self.queue_loops(&target, standing, ticket, warmup, now, t0)
                }
            };
            self.targets.insert(target.name.clone(), running);
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
        let targets: Vec<Running> = self.targets.drain().map(|(_, r)| r).collect();
        // Scans are long and only informative: they stop at once.
        for running in &targets {
            if let Some(scan) = running.life.take(SCAN) {
                scan.abort();
            }
        }
        for running in &targets {
            if let Some(probe) = running.life.take(PROBE) {
                let abort = probe.abort_handle();
                if timeout_at(deadline, probe).await.is_err() {
                    abort.abort();
                }
            }
        }
        for running in &targets {
            running.life.end();
        }
    }

    /// Queues the loops of one target, `now` being the unix time and `t0` the same instant.
    fn queue_loops(
        &self,
        target: &Arc<Target>,
        standing: Arc<Standing>,
        ticket: Ticket,
        warmup: Duration,
        now: Duration,
        t0: Instant,
    ) -> Running {
        let life = Arc::new(Life::default());
        let start = timing::start(&target.name, target.interval, warmup, now);
        self.queue.push(Loop {
            target: target.clone(),
            life: life.clone(),
            work: Work::Probe {
                standing: standing.clone(),
                ticket,
            },
            due: t0 + start.first,
            then: start.then.map(|t| t0 + t),
        });
        if let Some(every) = target.scan_interval {
            let spread = every.min(FIRST_SCAN_SPREAD);
            let first = timing::stable_offset(&format!("{}#scan", target.name), spread);
            self.queue.push(Loop {
                target: target.clone(),
                life: life.clone(),
                work: Work::Scan,
                due: t0 + first,
                then: None,
            });
        }
        Running {
            target: target.clone(),
            life,
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

/// Ends a `Life` when dropped while unwinding.
struct OnPanic(Arc<Life>);

impl Drop for OnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.mark_ended();
        }
    }
}

/// One run of a check that is due and holds its slots: run it through `probe::run`, record
/// the outcomes, then queue the loop again for its next tick. Probes count in-flight and lag,
/// back off while they fail slowly and log state changes. Ticks a check ran past (or waited
/// past for its slots) are skipped, and counted for probes.
async fn run(mut l: Loop, permits: Permits, ctx: Ctx) {
    // A run that panics (outside the probe, which catches its own) loses its loop: its target
    // is marked ended so that the next reload starts it afresh instead of keeping it.
    let _lost = OnPanic(l.life.clone());
    let check = l.check();
    let target = l.target.clone();
    let began = Instant::now();
    let outcomes = match &l.work {
        Work::Probe { standing, .. } => {
            if !standing.backing_off() {
                ctx.state
                    .stats
                    .record_scheduler_lag(began.saturating_duration_since(l.due));
            }
            let _in_flight = InFlight::new(&ctx.state);
            // Boxed: the probe's state (handshake, buffers) is allocated while it runs
            // instead of inline in this task.
            Box::pin(probe::run(&target, check)).await
        }
        Work::Scan => Box::pin(probe::run(&target, check)).await,
    };
    let took = began.elapsed();
    drop(permits);
    let (every, backing_off) = match &mut l.work {
        Work::Probe { standing, ticket } => (
            target.interval,
            after_probe(&target, &ctx.state, standing, ticket, outcomes, took),
        ),
        Work::Scan => {
            after_scan(&target, &ctx.state, outcomes);
            (target.scan_interval.unwrap_or(target.interval), false)
        }
    };

    // A check (or its wait for slots) that ran past later ticks skips them.
    let step = timing::step(every, backing_off);
    let now = Instant::now();
    let mut due = l.then.take().unwrap_or(l.due + step);
    while due <= now {
        if check == Check::Probe {
            ctx.state
                .stats
                .probes_skipped_total
                .fetch_add(1, Ordering::Relaxed);
        }
        due += step;
    }
    l.due = due;
    // The handle goes first: once queued, the loop's next run may start (and store its own
    // handle in the same slot) before this task would get to it.
    l.life.finished(l.slot());
    if !l.life.ended() && !ctx.stop.is_cancelled() {
        ctx.queue.push(l);
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
    fn an_idle_loop_is_a_small_queue_entry() {
        // Every target keeps one or two of these queued between probes (and no task), so
        // their size is memory per target.
        let size = std::mem::size_of::<Loop>();
        assert!(size <= 96, "an idle loop takes {size} bytes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_targets_hold_no_task() {
        let mut yaml = String::from("global:\n  interval: 1h\n  timeout: 1s\ntargets:\n");
        for i in 0..200 {
            yaml.push_str(&format!("  - address: 127.0.0.1:{}\n", 1 + i));
        }
        let config =
            crate::config::parse(&yaml, std::path::Path::new("t.yml")).expect("valid config");
        let state = Arc::new(State::default());
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        let mut scheduler = Scheduler::new(state.clone());
        scheduler.apply(&config.targets, 16);
        // Every target probes once within the warm-up (refused at once: nothing listens on
        // those low ports), then waits an hour for its next probe and hours for its scan.
        let mut probed = 0;
        for _ in 0..200 {
            probed = state
                .snapshot()
                .iter()
                .filter(|e| e.probes_total > 0)
                .count();
            if probed == 200 && state.stats.probes_in_flight.load(Ordering::Relaxed) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(probed, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The queue's timer, its two feeders and the first round's summary, whatever the
        // number of targets.
        let tasks = metrics.num_alive_tasks() - before;
        assert!(tasks <= 4, "{tasks} tasks alive for 200 idle targets");
        assert_eq!(
            scheduler.queue.len(),
            400,
            "a probe and a scan queued per target"
        );
        scheduler.drain(Instant::now()).await;
    }
}
