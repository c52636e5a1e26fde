//! Where the checks of every target wait between runs: one timer heap ordered by due time and
//! one ready line per lane, served by three long-lived tasks for the whole target set (a timer
//! and a feeder per lane) instead of a task per target. A check becomes a task only from the
//! moment it holds its slots until it is queued again, so an idle target costs one entry here
//! (`Waiting`, about a hundred bytes) and nothing in the runtime.
//!
//! The timer moves each check that is due into its lane's ready line, oldest due first; each
//! feeder takes its line in order, waits for the lane's slots (`Lanes::turn`) and hands the
//! check with its slots to `run`. A slow-lane check waiting for slots therefore never holds up
//! a pool check: they wait in different lines. What a check does when it runs, and when it is
//! due next, is the parent module's; this module only keeps the order.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::lanes::{Lane, Lanes, Permits};

/// What the timer does when nothing is queued: look again after this long (a push wakes it
/// sooner).
const IDLE: Duration = Duration::from_secs(3600);

/// The slot of a target's probe in its `Life`.
pub(crate) const PROBE: usize = 0;
/// The slot of a target's legacy scan in its `Life`.
pub(crate) const SCAN: usize = 1;

/// The life of one target's loops: ended when the target is removed or replaced, and the task
/// of each of its checks while one runs (so it can be aborted, and awaited when draining).
#[derive(Default)]
pub(crate) struct Life {
    ended: AtomicBool,
    /// The running task of the probe (0) and of the scan (1). A task clears its own slot when
    /// it finishes, so a finished task's memory is never kept alive by its handle.
    running: Mutex<[Option<JoinHandle<()>>; 2]>,
}

impl Life {
    pub(crate) fn ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }

    /// Ends the loops: queued checks are dropped when next seen, running ones are aborted.
    pub(crate) fn end(&self) {
        let mut running = self.lock();
        self.ended.store(true, Ordering::Relaxed);
        for handle in running.iter_mut().filter_map(Option::take) {
            handle.abort();
        }
    }

    /// Marks the loops ended without aborting anything (a run that lost its loop).
    pub(crate) fn mark_ended(&self) {
        self.ended.store(true, Ordering::Relaxed);
    }

    /// Takes the handle of the running task of check `slot` (0 probe, 1 scan), if any.
    pub(crate) fn take(&self, slot: usize) -> Option<JoinHandle<()>> {
        self.lock().get_mut(slot).and_then(Option::take)
    }

    /// Spawns `task` as check `slot`'s running task, keeping its handle; drops it unstarted
    /// if the loops ended meanwhile. The lock is held across the spawn so that the task's own
    /// `finished` always comes after, and `end` (which takes the same lock) either sees the
    /// handle or is seen here.
    pub(crate) fn spawn<F>(&self, slot: usize, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut running = self.lock();
        if self.ended() {
            return;
        }
        let handle = tokio::spawn(task);
        if let Some(s) = running.get_mut(slot) {
            *s = Some(handle);
        }
    }

    /// Called by check `slot`'s task as it finishes: drops its handle.
    pub(crate) fn finished(&self, slot: usize) {
        drop(self.take(slot));
    }

    fn lock(&self) -> MutexGuard<'_, [Option<JoinHandle<()>>; 2]> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Something that waits in the queue: the parent module's check loop state.
pub(crate) trait Queued: Send + 'static {
    /// When it is due.
    fn due(&self) -> Instant;
    /// The lane it takes when due (asked as it becomes due).
    fn lane(&self) -> Lane;
    /// The life of its target.
    fn life(&self) -> &Life;
}

/// The timer heap's entry: a check and its place in line (`seq` keeps equal due times in the
/// order they were queued).
struct Timed<T> {
    due: Instant,
    seq: u64,
    check: T,
}

impl<T> PartialEq for Timed<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl<T> Eq for Timed<T> {}

impl<T> PartialOrd for Timed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Timed<T> {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest due must come out first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

struct Lines<T> {
    timer: BinaryHeap<Timed<T>>,
    seq: u64,
    /// Due checks by lane: `[pool, slow]`.
    ready: [VecDeque<T>; 2],
}

/// The queue of every check of every target.
pub(crate) struct Queue<T> {
    lines: Mutex<Lines<T>>,
    /// Wakes the timer: something was queued.
    timer_wake: Notify,
    /// Wakes a lane's feeder: its line got a check.
    ready_wake: [Notify; 2],
}

fn line(lane: Lane) -> usize {
    match lane {
        Lane::Pool => 0,
        Lane::Slow => 1,
    }
}

impl<T: Queued> Queue<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Queue {
            lines: Mutex::new(Lines {
                timer: BinaryHeap::new(),
                seq: 0,
                ready: [VecDeque::new(), VecDeque::new()],
            }),
            timer_wake: Notify::new(),
            ready_wake: [Notify::new(), Notify::new()],
        })
    }

    /// Queues a check until it is due; a check whose target's loops ended is dropped (under
    /// the lock `purge` takes, so a push racing a reload's `end` + `purge` never survives it).
    pub(crate) fn push(&self, check: T) {
        {
            let mut lines = self.lock();
            if check.life().ended() {
                drop(lines);
                return;
            }
            let seq = lines.seq;
            lines.seq = seq.wrapping_add(1);
            let due = check.due();
            lines.timer.push(Timed { due, seq, check });
        }
        self.timer_wake.notify_one();
    }

    /// Drops every queued check whose target's loops ended (a reload removed or replaced it),
    /// so that they do not wait out their interval in memory.
    pub(crate) fn purge(&self) {
        let mut lines = self.lock();
        lines.timer.retain(|t| !t.check.life().ended());
        for ready in &mut lines.ready {
            ready.retain(|c| !c.life().ended());
        }
        let (timer, ready) = (lines.timer.len(), lines.ready.iter().map(VecDeque::len));
        let capacity = timer + ready.sum::<usize>();
        // A reload that shrank the set should give the memory back.
        if lines.timer.capacity() > 2 * capacity.max(64) {
            lines.timer.shrink_to_fit();
        }
    }

    /// Makes room in the timer heap for `checks` queued at once, exactly: grown by doubling,
    /// it would leave up to half its room unused (~3 MB at 50,000 targets, with scans).
    pub(crate) fn reserve(&self, checks: usize) {
        let mut lines = self.lock();
        let more = checks.saturating_sub(lines.timer.len());
        lines.timer.reserve_exact(more);
    }

    /// Room in the timer heap, in checks.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.lock().timer.capacity()
    }

    /// How many checks are queued (waiting for their time or for slots).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let lines = self.lock();
        lines.timer.len() + lines.ready.iter().map(VecDeque::len).sum::<usize>()
    }

    /// Starts the timer and the two feeders; each hands a due check with its slots to `run`.
    /// They end when `stop` is cancelled.
    pub(crate) fn start<R>(
        self: &Arc<Self>,
        lanes: Lanes,
        stop: CancellationToken,
        run: R,
    ) -> Vec<JoinHandle<()>>
    where
        R: Fn(T, Permits) + Clone + Send + Sync + 'static,
    {
        let mut tasks = vec![tokio::spawn(self.clone().timer(stop.clone()))];
        for lane in [Lane::Pool, Lane::Slow] {
            let feeder = self
                .clone()
                .feed(lane, lanes.clone(), stop.clone(), run.clone());
            tasks.push(tokio::spawn(feeder));
        }
        tasks
    }

    /// Moves the checks due by `now` to their lanes' lines; returns when the next one is due.
    fn release(&self, now: Instant) -> Option<Instant> {
        let mut woken = [false; 2];
        let next = {
            let mut lines = self.lock();
            while lines.timer.peek().is_some_and(|t| t.due <= now) {
                let Some(t) = lines.timer.pop() else { break };
                if t.check.life().ended() {
                    continue;
                }
                let i = line(t.check.lane());
                if let Some(ready) = lines.ready.get_mut(i) {
                    ready.push_back(t.check);
                }
                if let Some(w) = woken.get_mut(i) {
                    *w = true;
                }
            }
            lines.timer.peek().map(|t| t.due)
        };
        for (wake, woken) in self.ready_wake.iter().zip(woken) {
            if woken {
                wake.notify_one();
            }
        }
        next
    }

    async fn timer(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let now = Instant::now();
            let next = self.release(now).unwrap_or(now + IDLE);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.timer_wake.notified() => {}
                _ = sleep_until(next) => {}
            }
        }
    }

    /// The next check of `lane`'s line, waiting for one.
    async fn next_ready(&self, lane: Lane, stop: &CancellationToken) -> Option<T> {
        let i = line(lane);
        loop {
            if let Some(check) = self.lock().ready.get_mut(i).and_then(VecDeque::pop_front) {
                return Some(check);
            }
            let wake = self.ready_wake.get(i)?;
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = wake.notified() => {}
            }
        }
    }

    async fn feed<R>(self: Arc<Self>, lane: Lane, lanes: Lanes, stop: CancellationToken, run: R)
    where
        R: Fn(T, Permits),
    {
        while let Some(check) = self.next_ready(lane, &stop).await {
            if check.life().ended() {
                continue;
            }
            let Some(permits) = lanes.turn(check.due(), lane, &stop).await else {
                return;
            };
            // Ended while it waited for slots: it would only be ignored.
            if !check.life().ended() {
                run(check, permits);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lines<T>> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    struct Check {
        name: &'static str,
        due: Instant,
        lane: Lane,
        life: Arc<Life>,
    }

    impl Queued for Check {
        fn due(&self) -> Instant {
            self.due
        }
        fn lane(&self) -> Lane {
            self.lane
        }
        fn life(&self) -> &Life {
            &self.life
        }
    }

    fn check(name: &'static str, after_ms: u64, lane: Lane, life: &Arc<Life>) -> Check {
        Check {
            name,
            due: Instant::now() + Duration::from_millis(after_ms),
            lane,
            life: life.clone(),
        }
    }

    /// The names of the checks in the order they ran.
    type Ran = Arc<Mutex<Vec<&'static str>>>;

    /// Runs the queue with `concurrency` slots, recording the names in the order they ran;
    /// each run holds its slots for `hold`.
    fn started(concurrency: usize, hold: Duration) -> (Arc<Queue<Check>>, Ran, CancellationToken) {
        let queue = Queue::new();
        let lanes = Lanes::new();
        lanes.resize(concurrency);
        let stop = CancellationToken::new();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let log = ran.clone();
        queue.start(lanes, stop.clone(), move |c: Check, permits| {
            log.lock().expect("log").push(c.name);
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                drop(permits);
            });
        });
        (queue, ran, stop)
    }

    async fn wait_for(ran: &Mutex<Vec<&'static str>>, n: usize) -> Vec<&'static str> {
        for _ in 0..500 {
            let got = ran.lock().expect("log").clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        ran.lock().expect("log").clone()
    }

    #[tokio::test]
    async fn checks_run_in_order_of_due_time_whatever_order_they_were_queued_in() {
        let (queue, ran, stop) = started(4, Duration::ZERO);
        let life = Arc::new(Life::default());
        queue.push(check("c", 300, Lane::Pool, &life));
        queue.push(check("a", 100, Lane::Pool, &life));
        queue.push(check("b", 200, Lane::Pool, &life));
        assert_eq!(wait_for(&ran, 3).await, ["a", "b", "c"]);
        stop.cancel();
    }

    #[tokio::test]
    async fn the_timer_heap_holds_exactly_the_room_reserved() {
        let (queue, _ran, stop) = started(4, Duration::ZERO);
        let life = Arc::new(Life::default());
        queue.reserve(1_000);
        let room = queue.capacity();
        // Grown by doubling, 1,000 pushes would leave room for 1,024.
        assert!((1_000..1_024).contains(&room), "{room}");
        for i in 0..1_000 {
            queue.push(check("later", 60_000 + i, Lane::Pool, &life));
        }
        assert_eq!((queue.len(), queue.capacity()), (1_000, room));
        // Room for what is already queued is room enough.
        queue.reserve(10);
        assert_eq!(queue.capacity(), room);
        stop.cancel();
    }

    #[tokio::test]
    async fn a_check_does_not_run_before_it_is_due() {
        let (queue, ran, stop) = started(4, Duration::ZERO);
        let life = Arc::new(Life::default());
        queue.push(check("later", 400, Lane::Pool, &life));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(ran.lock().expect("log").is_empty());
        assert_eq!(wait_for(&ran, 1).await, ["later"]);
        stop.cancel();
    }

    #[tokio::test]
    async fn checks_of_ended_targets_never_run_and_a_purge_drops_them() {
        let (queue, ran, stop) = started(4, Duration::ZERO);
        let gone = Arc::new(Life::default());
        let kept = Arc::new(Life::default());
        queue.push(check("gone", 200, Lane::Pool, &gone));
        queue.push(check("kept", 250, Lane::Pool, &kept));
        gone.end();
        queue.purge();
        assert_eq!(queue.len(), 1);
        assert_eq!(wait_for(&ran, 1).await, ["kept"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(*ran.lock().expect("log"), ["kept"]);
        stop.cancel();
    }

    #[tokio::test]
    async fn slow_lane_checks_waiting_for_slots_do_not_hold_up_the_pool() {
        // Two slots, a slow lane of one: the slow checks queue behind each other while pool
        // checks due after them run at once.
        let (queue, ran, stop) = started(2, Duration::from_millis(400));
        let life = Arc::new(Life::default());
        queue.push(check("slow1", 0, Lane::Slow, &life));
        queue.push(check("slow2", 0, Lane::Slow, &life));
        queue.push(check("pool", 50, Lane::Pool, &life));
        let got = wait_for(&ran, 2).await;
        assert_eq!(got, ["slow1", "pool"]);
        assert_eq!(wait_for(&ran, 3).await, ["slow1", "pool", "slow2"]);
        stop.cancel();
    }

    #[tokio::test]
    async fn an_ended_life_spawns_nothing_and_queues_nothing() {
        let life = Arc::new(Life::default());
        life.end();
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        life.spawn(0, async move {
            r.fetch_add(1, Ordering::Relaxed);
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(ran.load(Ordering::Relaxed), 0);
        assert!(life.take(0).is_none());
        let queue = Queue::new();
        queue.push(check("gone", 0, Lane::Pool, &life));
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test]
    async fn a_stopped_queue_runs_nothing_more() {
        let (queue, ran, stop) = started(4, Duration::ZERO);
        let life = Arc::new(Life::default());
        stop.cancel();
        tokio::task::yield_now().await;
        queue.push(check("late", 0, Lane::Pool, &life));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(ran.lock().expect("log").is_empty());
    }

    #[tokio::test]
    async fn ending_a_life_aborts_its_running_task_and_a_finished_task_drops_its_handle() {
        let life = Arc::new(Life::default());
        let done = Arc::new(AtomicUsize::new(0));
        let (l, d) = (life.clone(), done.clone());
        life.spawn(1, async move {
            d.fetch_add(1, Ordering::Relaxed);
            l.finished(1);
        });
        for _ in 0..100 {
            if done.load(Ordering::Relaxed) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::task::yield_now().await;
        assert!(life.take(1).is_none(), "a finished task keeps its handle");

        life.spawn(0, std::future::pending());
        let running = life.lock()[0].as_ref().map(JoinHandle::abort_handle);
        life.end();
        assert!(life.ended());
        let running = running.expect("a running task");
        for _ in 0..100 {
            if running.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(running.is_finished());
    }
}
