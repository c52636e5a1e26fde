//! The concurrency limit and its slow lane. Every check holds a slot of the pool (`concurrency`
//! slots, shared with on-demand `/probe`); checks that are likely to hold it long (legacy
//! scans, probes of targets whose latest probe failed slowly, first probes of targets a reload
//! added) first take a slot of the slow lane, which has half as many. However many endpoints
//! time out, at least half of the pool is left to the targets that answer.
//!
//! Both are replaceable on reload without restarting loops: a check takes its slots from the
//! semaphores current at its tick, and in-flight checks finish on the ones they hold. When a
//! check runs is `timing`'s business; which lane a probe takes is its loop's.

use std::sync::{Arc, RwLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

/// A replaceable semaphore.
pub(crate) type Slots = Arc<RwLock<Arc<Semaphore>>>;

/// Which slots a check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// A pool slot only.
    Pool,
    /// A slow-lane slot, then a pool slot.
    Slow,
}

/// The pool and the slow lane.
#[derive(Clone)]
pub(crate) struct Lanes {
    pub(crate) pool: Slots,
    slow: Slots,
}

/// The slots one check holds while it runs.
pub(crate) struct Permits {
    _pool: OwnedSemaphorePermit,
    _slow: Option<OwnedSemaphorePermit>,
}

impl Lanes {
    /// Lanes without slots, until `resize` gives them some.
    pub(crate) fn new() -> Self {
        let empty = || Arc::new(RwLock::new(Arc::new(Semaphore::new(0))));
        Lanes {
            pool: empty(),
            slow: empty(),
        }
    }

    /// New semaphores for `concurrency` (at least 1): the pool gets all of it, the slow lane
    /// half (at least 1).
    pub(crate) fn resize(&self, concurrency: usize) {
        // The replaced semaphores are closed, so that whoever waits on one (a lane's feeder,
        // an on-demand probe) moves to the new one at once instead of waiting for a slot the
        // old checks free. Permits already held stay valid until dropped.
        let replace = |slots: &Slots, size: usize| {
            let old = std::mem::replace(
                &mut *slots.write().unwrap_or_else(|p| p.into_inner()),
                Arc::new(Semaphore::new(size)),
            );
            old.close();
        };
        replace(&self.pool, concurrency);
        replace(&self.slow, slow_lane_size(concurrency));
    }

    /// Waits until `due`, then for the slots of `lane` (slow lane first, so a waiting slow
    /// check holds no pool slot); `None` once `stop` is cancelled.
    pub(crate) async fn turn(
        &self,
        due: Instant,
        lane: Lane,
        stop: &CancellationToken,
    ) -> Option<Permits> {
        // Checks come from the queue once due: no timer for them.
        if due > Instant::now() {
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = sleep_until(due) => {}
            }
        }
        if stop.is_cancelled() {
            return None;
        }
        let slow = match lane {
            Lane::Pool => None,
            Lane::Slow => Some(acquire(&self.slow, stop).await?),
        };
        let pool = acquire(&self.pool, stop).await?;
        Some(Permits {
            _pool: pool,
            _slow: slow,
        })
    }
}

/// Slots of the slow lane for a pool of `concurrency`: half, at least one.
pub(crate) fn slow_lane_size(concurrency: usize) -> usize {
    (concurrency / 2).max(1)
}

/// A slot of the current semaphore (a resize closes the one being waited on: then of the new
/// one); `None` once `stop` is cancelled.
async fn acquire(slots: &Slots, stop: &CancellationToken) -> Option<OwnedSemaphorePermit> {
    loop {
        let semaphore = slots.read().unwrap_or_else(|p| p.into_inner()).clone();
        tokio::select! {
            _ = stop.cancelled() => return None,
            p = semaphore.acquire_owned() => {
                if let Ok(p) = p {
                    return Some(p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn slow_lane_is_half_the_pool_and_never_empty() {
        assert_eq!(slow_lane_size(1), 1);
        assert_eq!(slow_lane_size(4), 2);
        assert_eq!(slow_lane_size(5), 2);
        assert_eq!(slow_lane_size(64), 32);
    }

    #[tokio::test]
    async fn slow_checks_leave_half_the_pool_to_the_others() {
        let lanes = Lanes::new();
        lanes.resize(4);
        let stop = CancellationToken::new();
        let now = Instant::now();
        let mut slow = Vec::new();
        for _ in 0..2 {
            slow.push(lanes.turn(now, Lane::Slow, &stop).await.expect("slow slot"));
        }
        // A third slow check waits for the lane, holding no pool slot meanwhile ...
        let lanes2 = lanes.clone();
        let stop2 = stop.clone();
        let waiting =
            tokio::spawn(async move { lanes2.turn(now, Lane::Slow, &stop2).await.is_some() });
        tokio::task::yield_now().await;
        // ... so both remaining pool slots are free for pool checks.
        let a = lanes.turn(now, Lane::Pool, &stop).await.expect("pool slot");
        let b = lanes.turn(now, Lane::Pool, &stop).await.expect("pool slot");
        assert!(!waiting.is_finished());
        drop((a, b));
        drop(slow.pop());
        let got = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(got, Ok(Ok(true))), "{got:?}");
    }

    #[tokio::test]
    async fn a_check_waiting_for_a_slot_moves_to_the_resized_pool_at_once() {
        let lanes = Lanes::new();
        lanes.resize(1);
        let stop = CancellationToken::new();
        let _held = lanes.turn(Instant::now(), Lane::Pool, &stop).await;
        let (lanes2, stop2) = (lanes.clone(), stop.clone());
        let waiting = tokio::spawn(async move {
            lanes2
                .turn(Instant::now(), Lane::Pool, &stop2)
                .await
                .is_some()
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        lanes.resize(4);
        let got = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(got, Ok(Ok(true))), "{got:?}");
    }

    #[tokio::test]
    async fn a_stopped_scheduler_hands_out_no_slots() {
        let lanes = Lanes::new();
        lanes.resize(1);
        let stop = CancellationToken::new();
        let _held = lanes.turn(Instant::now(), Lane::Pool, &stop).await;
        stop.cancel();
        assert!(lanes
            .turn(Instant::now(), Lane::Pool, &stop)
            .await
            .is_none());
    }
}
