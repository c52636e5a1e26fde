//! Times, durations and counts as people read them in log lines (on top of `text`): RFC 3339 UTC instants
//! (`2026-12-01T19:49:41.312Z`), durations in their two largest units (`2h 5m`), counts with
//! thousands separators (`9,990`).
//!
//! Only the text; which lines carry them is the caller's business.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// RFC 3339 in UTC to the second: `2026-12-01T19:49:41Z`. Instants before 1970 read as 1970.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    crate::text::rfc3339(i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
}

/// RFC 3339 in UTC with milliseconds, as Prometheus components stamp log lines:
/// `2026-12-01T19:49:41.312Z`.
pub(crate) fn rfc3339_millis(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    crate::text::rfc3339_millis(secs, since.subsec_millis())
}

/// A duration in its two largest non-zero units: `45s`, `1m 30s`, `2h 5m`, `3d 4h`; under a
/// second in milliseconds (`350ms`).
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let units = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3_600, "h"),
        (secs % 3_600 / 60, "m"),
        (secs % 60, "s"),
    ];
    let first = units.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    units
        .iter()
        .skip(first)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A count with thousands separators: `9,990`.
pub(crate) fn count(n: usize) -> String {
    crate::text::thousands(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn instants_are_rfc3339_utc() {
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400, 999)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1_796_154_581, 0)), "2026-12-01T19:49:41Z");
    }

    #[test]
    fn log_stamps_carry_milliseconds() {
        assert_eq!(
            rfc3339_millis(at(1_796_154_581, 312)),
            "2026-12-01T19:49:41.312Z"
        );
        assert_eq!(rfc3339_millis(at(0, 7)), "1970-01-01T00:00:00.007Z");
    }

    #[test]
    fn durations_read_in_their_two_largest_units() {
        let s = Duration::from_secs;
        assert_eq!(duration(Duration::from_millis(350)), "350ms");
        assert_eq!(duration(s(45)), "45s");
        assert_eq!(duration(s(90)), "1m 30s");
        assert_eq!(duration(s(2 * 3600 + 5 * 60 + 7)), "2h 5m");
        assert_eq!(duration(s(2 * 3600 + 7)), "2h");
        assert_eq!(duration(s(3 * 86_400 + 4 * 3600 + 59)), "3d 4h");
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(9_990), "9,990");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
