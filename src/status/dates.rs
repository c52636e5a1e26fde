//! Times as the status pages write them (on top of `text`): instants in RFC 3339, spans in
//! days and hours ("89 days 23 hours"), probe durations in milliseconds.
//!
//! Plain text; escaping is `html`'s (none of this needs it).

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) use crate::text::{span, Rfc3339};

/// Unix seconds of `t` (0 before 1970).
pub(crate) fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Time left until `at`: `89 days 23 hours`, or `expired 3 days ago` once `at` has passed.
pub(crate) fn left(at: i64, now: i64) -> String {
    if at > now {
        span(at.abs_diff(now))
    } else {
        format!("expired {} ago", span(now.abs_diff(at)))
    }
}

/// How long ago `at` was: `12 seconds ago` (`in 3 seconds` for a clock ahead of ours).
pub(crate) fn ago(at: i64, now: i64) -> String {
    crate::text::relative(at, now)
}

/// A probe duration: `250 ms`, `1,250 ms`.
pub(crate) fn millis(ms: u128) -> String {
    format!(
        "{} ms",
        crate::text::thousands(u64::try_from(ms).unwrap_or(u64::MAX))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_says_expired_once_past() {
        assert_eq!(left(100 + 2 * 86_400, 100), "2 days");
        assert_eq!(
            left(100, 100 + 3 * 86_400 + 7200),
            "expired 3 days 2 hours ago"
        );
        assert_eq!(ago(88, 100), "12 seconds ago");
        assert_eq!(ago(103, 100), "in 3 seconds");
    }

    #[test]
    fn millis_are_grouped() {
        assert_eq!(millis(250), "250 ms");
        assert_eq!(millis(1250), "1,250 ms");
    }
}
