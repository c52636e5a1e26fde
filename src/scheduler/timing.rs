//! When checks run: every target's stable grid (a per-name offset into its interval, anchored to
//! the unix epoch, so a target keeps its phase across restarts and replicas), the warm-up that
//! brings a new loop's first probe forward to within a few seconds, and the backoff of targets
//! whose probes fail slowly. Pure functions of names, intervals and the clock; the loops that
//! follow them live in the parent module.

use std::time::Duration;

use crate::shard::stable_hash;

/// The warm-up window is never shorter than this, so a handful of new targets is not probed all
/// at once.
const WARMUP_MIN: Duration = Duration::from_secs(1);
/// Nor longer than this: the first probe of a new loop starts within ten seconds (then waits for
/// a slot like any other).
const WARMUP_MAX: Duration = Duration::from_secs(10);
/// Warm-up time per wave of `concurrency` new loops.
const WARMUP_PER_WAVE: Duration = Duration::from_millis(100);
/// A target whose latest probe failed slowly is probed every this many intervals. Two keeps the
/// gap between its results under three intervals, the `TLSProbeStale` threshold.
pub(crate) const BACKOFF_FACTOR: u32 = 2;

/// Stable offset in [0, interval) from the target name, so first probes spread out and a
/// restart or reload does not bunch them up.
pub(crate) fn stable_offset(name: &str, interval: Duration) -> Duration {
    let millis = interval.as_millis().max(1) as u64;
    Duration::from_millis(stable_hash(name) % millis)
}

/// The window over which the first probes of `started` new loops are spread: one wave of
/// `concurrency` loops per 100 ms, between 1 s and 10 s.
pub(crate) fn warmup(started: usize, concurrency: usize) -> Duration {
    let waves = started.div_ceil(concurrency.max(1)) as u32;
    (WARMUP_PER_WAVE * waves).clamp(WARMUP_MIN, WARMUP_MAX)
}

/// When a new probe loop runs, measured from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Start {
    /// The first probe.
    pub(crate) first: Duration,
    /// For a warm-up first probe, the grid tick after it (at least half an interval later);
    /// `None` when the first probe is on the grid already.
    pub(crate) then: Option<Duration>,
}

/// The start of a probe loop for `name` probed every `interval`, `now` being the unix time:
/// the next tick of its grid when that comes within `warmup`, else a warm-up probe spread over
/// `warmup` by the name, followed by the grid again.
pub(crate) fn start(name: &str, interval: Duration, warmup: Duration, now: Duration) -> Start {
    let tick = until_tick(stable_offset(name, interval), interval, now);
    if tick < warmup {
        return Start {
            first: tick,
            then: None,
        };
    }
    let warm = stable_offset(&format!("{name}#warm-up"), warmup);
    let mut then = tick;
    while then < warm + interval / 2 {
        then += interval;
    }
    Start {
        first: warm,
        then: Some(then),
    }
}

/// The time between ticks of a probe loop: its interval, or `BACKOFF_FACTOR` intervals while
/// its latest probe failed slowly. Always a whole number of intervals, so ticks stay on the
/// grid.
pub(crate) fn step(interval: Duration, backing_off: bool) -> Duration {
    if backing_off {
        interval * BACKOFF_FACTOR
    } else {
        interval
    }
}

/// Time from `now` (since the unix epoch) to the next instant whose unix time is `offset` past
/// a multiple of `interval`; zero when `now` is one.
fn until_tick(offset: Duration, interval: Duration, now: Duration) -> Duration {
    let i = interval.as_nanos().max(1);
    let since_tick = (now.as_nanos() % i + i - offset.as_nanos() % i) % i;
    let until = (i - since_tick) % i;
    Duration::from_nanos(u64::try_from(until).unwrap_or(u64::MAX))
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
    fn ticks_are_anchored_to_the_unix_epoch() {
        let i = S(60);
        assert_eq!(until_tick(S(10), i, S(1_000_000_000)), S(30));
        assert_eq!(until_tick(S(10), i, S(1_000_000_030)), Duration::ZERO);
        assert_eq!(until_tick(S(10), i, S(1_000_000_031)), S(59));
        // The same tick whenever the loop starts: a restart keeps the target's phase.
        for now in [S(1_000_000_000), S(1_000_000_017), S(1_000_000_029)] {
            assert_eq!(now + until_tick(S(10), i, now), S(1_000_000_030));
        }
    }

    #[test]
    fn warm_up_grows_with_waves_of_concurrency_within_bounds() {
        assert_eq!(warmup(1, 64), S(1));
        assert_eq!(warmup(1_000, 64), Duration::from_millis(1_600));
        assert_eq!(warmup(10_000, 64), S(10));
        assert_eq!(warmup(5, 0), S(1));
    }

    #[test]
    fn first_probe_of_an_hourly_target_comes_within_the_warm_up() {
        let (hour, now) = (S(3600), S(1_796_154_581));
        for n in 0..200 {
            let name = format!("svc-{n}");
            let s = start(&name, hour, S(5), now);
            assert!(s.first < S(5), "{name}: first probe after {:?}", s.first);
            let grid = until_tick(stable_offset(&name, hour), hour, now);
            let Some(then) = s.then else {
                // Its grid tick falls inside the warm-up: that is its first probe.
                assert_eq!(s.first, grid, "{name}");
                continue;
            };
            // Back on the grid, never a second probe right after the first.
            assert!(then >= s.first + hour / 2, "{name}: {s:?}");
            assert!(then < s.first + hour * 3 / 2, "{name}: {s:?}");
            assert_eq!((then.as_millis() - grid.as_millis()) % hour.as_millis(), 0);
        }
    }

    #[test]
    fn intervals_within_the_warm_up_start_on_the_grid() {
        for n in 0..50 {
            let s = start(&format!("t{n}"), S(2), S(5), S(1_796_154_581));
            assert_eq!(s.then, None, "{s:?}");
            assert!(s.first < S(2));
        }
    }

    #[test]
    fn backing_off_doubles_the_step_on_the_same_grid() {
        assert_eq!(step(S(10), false), S(10));
        assert_eq!(step(S(10), true), S(20));
    }
}
