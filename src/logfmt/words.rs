//! Times as people read them in log lines: RFC 3339 UTC instants (`2026-12-01T19:49:41.312Z`).
//!
//! Only the text; which lines carry them is the caller's business.

use std::time::{SystemTime, UNIX_EPOCH};

/// RFC 3339 in UTC with milliseconds, as Prometheus components stamp log lines:
/// `2026-12-01T19:49:41.312Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}Z", civil(since.as_secs()), since.subsec_millis())
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since the epoch (civil-from-days, proleptic Gregorian).
fn civil(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn instants_are_rfc3339_utc() {
        assert_eq!(rfc3339_millis(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(at(951_782_400, 999)),
            "2000-02-29T00:00:00.999Z"
        );
    }

    #[test]
    fn log_stamps_carry_milliseconds() {
        assert_eq!(
            rfc3339_millis(at(1_796_154_581, 312)),
            "2026-12-01T19:49:41.312Z"
        );
        assert_eq!(rfc3339_millis(at(0, 7)), "1970-01-01T00:00:00.007Z");
    }
}
