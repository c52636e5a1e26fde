//! What the scheduler remembers about a target between probes: whether it has been probed and
//! whether its latest probe failed slowly (it is backing off). A changed target keeps its
//! standing across the restart of its loop; a removed one takes it along (and out of
//! `tls_exporter_targets_backing_off`).
//!
//! The facts come from the probe loop; what they mean for timing and lanes is `timing`'s and
//! `lanes`' business.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::lanes::Lane;
use crate::state::State;

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
}

/// What one probe found, as far as standing goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    /// The probe failed and took at least half its timeout.
    pub(crate) slow: bool,
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
    use super::*;

    fn backing_off(state: &State) -> i64 {
        state.stats.targets_backing_off.load(Ordering::Relaxed)
    }

    #[test]
    fn a_slow_failure_backs_off_into_the_slow_lane_until_a_probe_is_quick() {
        let state = Arc::new(State::default());
        let s = Standing::new(state.clone(), false);
        assert_eq!(s.lane(), Lane::Pool);
        s.record(Found { slow: true });
        assert!(s.backing_off());
        assert_eq!(s.lane(), Lane::Slow);
        assert_eq!(backing_off(&state), 1);
        // A quick failure (refused) or a success is cheap: back to the pool.
        s.record(Found { slow: false });
        assert_eq!(s.lane(), Lane::Pool);
        assert_eq!(backing_off(&state), 0);
    }

    #[test]
    fn a_removed_target_leaves_the_backing_off_count() {
        let state = Arc::new(State::default());
        let s = Standing::new(state.clone(), false);
        s.record(Found { slow: true });
        assert_eq!(backing_off(&state), 1);
        drop(s);
        assert_eq!(backing_off(&state), 0);
    }

    #[test]
    fn targets_a_reload_adds_probe_first_through_the_slow_lane() {
        let s = Standing::new(Arc::new(State::default()), true);
        assert_eq!(s.lane(), Lane::Slow);
        s.record(Found { slow: false });
        assert_eq!(s.lane(), Lane::Pool);
    }
}
