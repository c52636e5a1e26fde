//! When checks run: every target's stable offset into its interval (from its name, so a restart
//! or reload does not bunch probes up) and the backoff of targets whose probes fail slowly.
//! Pure functions of names and intervals; the loops that follow them live in the parent module.

use std::time::Duration;

use crate::shard::stable_hash;

/// A target whose latest probe failed slowly is probed every this many intervals. Two keeps the
/// gap between its results under three intervals, the `TLSProbeStale` threshold.
pub(crate) const BACKOFF_FACTOR: u32 = 2;

/// Stable offset in [0, interval) from the target name, so first probes spread out and a
/// restart or reload does not bunch them up.
pub(crate) fn stable_offset(name: &str, interval: Duration) -> Duration {
    let millis = interval.as_millis().max(1) as u64;
    Duration::from_millis(stable_hash(name) % millis)
}

/// The time between ticks of a probe loop: its interval, or `BACKOFF_FACTOR` intervals while
/// its latest probe failed slowly. Always a whole number of intervals, so ticks stay on the
/// target's schedule.
pub(crate) fn step(interval: Duration, backing_off: bool) -> Duration {
    if backing_off {
        interval * BACKOFF_FACTOR
    } else {
        interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn offsets_are_stable_and_within_the_interval() {
        let i = Duration::from_secs(60);
        assert_eq!(stable_offset("api", i), stable_offset("api", i));
        for n in 0..100 {
            assert!(stable_offset(&format!("t{n}"), i) < i);
        }
        assert_ne!(stable_offset("a", i), stable_offset("b", i));
    }

    #[test]
    fn backing_off_doubles_the_step_on_the_same_grid() {
        assert_eq!(step(S(10), false), S(10));
        assert_eq!(step(S(10), true), S(20));
    }
}
