//! Times as the status pages write them: instants in RFC 3339 (UTC, whole seconds), spans in
//! days and hours ("89 days 23 hours"), probe durations in milliseconds.
//!
//! Plain text; escaping is `html`'s (none of this needs it).

use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// A unix time in RFC 3339, e.g. `2023-11-14T22:13:20Z` (civil-from-days, proleptic
/// Gregorian; any `i64` is rendered, far years with more digits).
pub(crate) struct Rfc3339(pub(crate) i64);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        // i128: `days + 719_468` and the year arithmetic cannot overflow for any i64.
        let z = i128::from(days) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i128::from(m <= 2);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        )
    }
}

/// Unix seconds of `t` (0 before 1970).
pub(crate) fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A span of `secs` seconds in its two largest units: `3 days 4 hours`, `5 hours 12 minutes`,
/// `7 minutes`, `42 seconds`; days grouped by thousands (`1,006 days`).
pub(crate) fn span(secs: u64) -> String {
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    let mut out = String::new();
    if days > 0 {
        unit(&mut out, days, "day");
        if hours > 0 {
            out.push(' ');
            unit(&mut out, hours, "hour");
        }
    } else if hours > 0 {
        unit(&mut out, hours, "hour");
        if minutes > 0 {
            out.push(' ');
            unit(&mut out, minutes, "minute");
        }
    } else if minutes > 0 {
        unit(&mut out, minutes, "minute");
    } else {
        unit(&mut out, secs, "second");
    }
    out
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
    if at > now {
        format!("in {}", span(at.abs_diff(now)))
    } else {
        format!("{} ago", span(now.abs_diff(at)))
    }
}

/// A probe duration: `250 ms`, `1,250 ms`.
pub(crate) fn millis(ms: u128) -> String {
    let mut out = String::new();
    grouped(&mut out, u64::try_from(ms).unwrap_or(u64::MAX));
    out.push_str(" ms");
    out
}

fn unit(out: &mut String, n: u64, name: &str) {
    grouped(out, n);
    let _ = write!(out, " {name}{}", if n == 1 { "" } else { "s" });
}

/// `n` with a comma between groups of three digits.
fn grouped(out: &mut String, n: u64) {
    let digits = n.to_string();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(Rfc3339(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Rfc3339(1_700_000_000).to_string(), "2023-11-14T22:13:20Z");
        assert_eq!(Rfc3339(951_782_400).to_string(), "2000-02-29T00:00:00Z");
        assert_eq!(Rfc3339(-1).to_string(), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn rfc3339_renders_the_extremes_without_panicking() {
        for t in [i64::MIN, i64::MAX] {
            assert!(Rfc3339(t).to_string().ends_with('Z'));
        }
    }

    #[test]
    fn spans_are_days_and_hours() {
        assert_eq!(span(0), "0 seconds");
        assert_eq!(span(1), "1 second");
        assert_eq!(span(7 * 60 + 5), "7 minutes");
        assert_eq!(span(3600 + 60), "1 hour 1 minute");
        assert_eq!(span(86_400), "1 day");
        assert_eq!(span(89 * 86_400 + 23 * 3600 + 59), "89 days 23 hours");
        assert_eq!(span(1006 * 86_400), "1,006 days");
    }

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
