//! What the scheduler remembers about a target between probes: whether it has been probed,
//! whether its latest probe failed slowly (it is backing off), and since when and why it has
//! been failing. A changed target keeps its standing across the restart of its loop; a removed
//! one takes it along (and out of `tls_exporter_targets_backing_off`).
//!
//! The facts come from the probe loop; what they mean for timing and lanes is `timing`'s and
//! `lanes`' business, what gets logged `report`'s.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::lanes::Lane;
use crate::state::State;
use crate::verdict::FailureReason;

/// One target's standing, shared by its probe loop and the loop that replaces it.
pub(crate) struct Standing {
    state: Arc<State>,
    /// A target a reload added probes first through the slow lane: established targets stay on
    /// schedule however many new ones time out.
    first_in_slow_lane: bool,
    inner: Mutex<Before>,
}

/// The standing before a probe.
#[derive(Debug, Clone, Default)]
pub(crate) struct Before {
    /// The target has been probed (by this process).
    pub(crate) probed: bool,
    /// The latest probe failed slowly: the target is probed every second interval, through
    /// the slow lane.
    pub(crate) backing_off: bool,
    /// Since when and why it is failing, while it is.
    pub(crate) failing: Option<Failing>,
}

/// A failing spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failing {
    /// When the first failing probe of the spell finished.
    pub(crate) since: SystemTime,
    /// The reason of the latest probe.
    pub(crate) reason: FailureReason,
}

/// What one probe found, as far as standing goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    /// The reason of the first failing address, if any.
    pub(crate) failure: Option<FailureReason>,
    /// The probe failed and took at least half its timeout.
    pub(crate) slow: bool,
    /// When it finished.
    pub(crate) at: SystemTime,
}

impl Standing {
    pub(crate) fn new(state: Arc<State>, first_in_slow_lane: bool) -> Arc<Standing> {
        Arc::new(Standing {
            state,
            first_in_slow_lane,
            inner: Mutex::new(Before::default()),
        })
    }

    /// The lane of the next probe.
    pub(crate) fn lane(&self) -> Lane {
        let s = self.lock();
        if s.backing_off || (!s.probed && self.first_in_slow_lane) {
            Lane::Slow
        } else {
            Lane::Pool
        }
    }

    pub(crate) fn backing_off(&self) -> bool {
        self.lock().backing_off
    }

    /// Takes in a probe's result, returning the standing before it.
    pub(crate) fn record(&self, found: Found) -> Before {
        let mut s = self.lock();
        let before = s.clone();
        s.probed = true;
        if s.backing_off != found.slow {
            let delta = if found.slow { 1 } else { -1 };
            self.state
                .stats
                .targets_backing_off
                .fetch_add(delta, Ordering::Relaxed);
            s.backing_off = found.slow;
        }
        s.failing = found.failure.map(|reason| Failing {
            since: before.failing.map_or(found.at, |f| f.since),
            reason,
        });
        before
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Before> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Standing {
    fn drop(&mut self) {
        if self.lock().backing_off {
            self.state
                .stats
                .targets_backing_off
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn found(failure: Option<FailureReason>, slow: bool, secs: u64) -> Found {
        Found {
            failure,
            slow,
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        }
    }

    fn backing_off(state: &State) -> i64 {
        state.stats.targets_backing_off.load(Ordering::Relaxed)
    }

    #[test]
    fn a_slow_failure_backs_off_into_the_slow_lane_until_a_probe_is_quick() {
        let state = Arc::new(State::default());
        let s = Standing::new(state.clone(), false);
        assert_eq!(s.lane(), Lane::Pool);
        s.record(found(Some(FailureReason::HandshakeTimeout), true, 10));
        assert!(s.backing_off());
        assert_eq!(s.lane(), Lane::Slow);
        assert_eq!(backing_off(&state), 1);
        // A quick failure (refused) is cheap: back to the pool.
        s.record(found(Some(FailureReason::ConnectionRefused), false, 20));
        assert_eq!(s.lane(), Lane::Pool);
        assert_eq!(backing_off(&state), 0);
    }

    #[test]
    fn a_removed_target_leaves_the_backing_off_count() {
        let state = Arc::new(State::default());
        let s = Standing::new(state.clone(), false);
        s.record(found(Some(FailureReason::ConnectTimeout), true, 10));
        assert_eq!(backing_off(&state), 1);
        drop(s);
        assert_eq!(backing_off(&state), 0);
    }

    #[test]
    fn a_failing_spell_keeps_its_start_across_reason_changes() {
        let s = Standing::new(Arc::new(State::default()), false);
        s.record(found(None, false, 5));
        s.record(found(Some(FailureReason::Expired), false, 10));
        let before = s.record(found(Some(FailureReason::UnknownIssuer), false, 20));
        assert_eq!(
            before.failing.map(|f| f.reason),
            Some(FailureReason::Expired)
        );
        let before = s.record(found(None, false, 30));
        let spell = before.failing.expect("was failing");
        assert_eq!(spell.reason, FailureReason::UnknownIssuer);
        assert_eq!(
            spell.since,
            SystemTime::UNIX_EPOCH + Duration::from_secs(10)
        );
        assert!(s.record(found(None, false, 40)).failing.is_none());
    }

    #[test]
    fn targets_a_reload_adds_probe_first_through_the_slow_lane() {
        let s = Standing::new(Arc::new(State::default()), true);
        assert_eq!(s.lane(), Lane::Slow);
        s.record(found(None, false, 1));
        assert_eq!(s.lane(), Lane::Pool);
    }
}
