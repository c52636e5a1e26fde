//! Text for people: RFC 3339 dates, durations in days/hours/minutes, thousands separators, and
//! library identifiers turned into words.
//!
//! The lowest layer beside `verdict`: failure details, log lines, the status page and reload
//! answers all format times and durations through here, so they read the same everywhere.

use std::fmt::{self, Write};
use std::time::Duration;

/// A unix time in RFC 3339, e.g. `2023-11-14T22:13:20Z` (civil-from-days, proleptic
/// Gregorian, UTC; any `i64` is rendered, far years with more digits).
pub struct Rfc3339(pub i64);

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

/// `2024-03-01T00:00:00Z` for a unix time.
pub fn rfc3339(unix: i64) -> String {
    Rfc3339(unix).to_string()
}

/// `2026-12-01T19:49:41.312Z`: RFC 3339 with milliseconds, for log timestamps.
pub fn rfc3339_millis(unix: i64, millis: u32) -> String {
    let mut s = rfc3339(unix);
    s.pop();
    let _ = write!(s, ".{:03}Z", millis.min(999));
    s
}

/// A span of `secs` seconds in its two largest units: `3 days 4 hours`, `5 hours 12 minutes`,
/// `7 minutes`, `42 seconds`; numbers grouped by thousands (`1,006 days`).
pub fn span(secs: u64) -> String {
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    let unit =
        |n: u64, name: &str| format!("{} {name}{}", thousands(n), if n == 1 { "" } else { "s" });
    match (days, hours, minutes) {
        (0, 0, 0) => unit(secs, "second"),
        (0, 0, m) => unit(m, "minute"),
        (0, h, 0) => unit(h, "hour"),
        (0, h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
        (d, 0, _) => unit(d, "day"),
        (d, h, _) => format!("{} {}", unit(d, "day"), unit(h, "hour")),
    }
}

/// A duration as `span` says it, or `1.5 seconds` below a minute.
pub fn duration(d: Duration) -> String {
    if d >= Duration::from_secs(60) {
        return span(d.as_secs());
    }
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        span(d.as_secs())
    } else if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} seconds", d.as_secs_f64())
    }
}

/// How far `then` is from `now`, in words: `1,006 days ago`, `in 3 hours 12 minutes`.
pub fn relative(then: i64, now: i64) -> String {
    if then <= now {
        format!("{} ago", span(now.abs_diff(then)))
    } else {
        format!("in {}", span(then.abs_diff(now)))
    }
}

/// `2024-03-01T00:00:00Z (1,006 days ago)`.
pub fn when(then: i64, now: i64) -> String {
    format!("{} ({})", rfc3339(then), relative(then, now))
}

/// `1,006`, `12,345,678`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A CamelCase identifier (a library enum variant's name) as lower-case words:
/// `HandshakeFailure` → `handshake failure`.
pub fn words(ident: &str) -> String {
    let mut out = String::with_capacity(ident.len() + 4);
    let mut prev_lower = false;
    for c in ident.chars() {
        if c.is_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        let _ = write!(out, "{}", c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339_millis(1_796_154_581, 312),
            "2026-12-01T19:49:41.312Z"
        );
    }

    #[test]
    fn spans_read_in_the_two_largest_units() {
        assert_eq!(span(1_006 * 86_400), "1,006 days");
        assert_eq!(span(2 * 86_400 + 5 * 3600 + 7), "2 days 5 hours");
        assert_eq!(span(3 * 3600 + 12 * 60), "3 hours 12 minutes");
        assert_eq!(span(3600), "1 hour");
        assert_eq!(span(45), "45 seconds");
        assert_eq!(span(1), "1 second");
        assert_eq!(span(0), "0 seconds");
        assert_eq!(span(7 * 60 + 5), "7 minutes");
        assert_eq!(span(89 * 86_400 + 23 * 3600 + 59), "89 days 23 hours");
    }

    #[test]
    fn relative_times_say_ago_or_in() {
        let now = 1_796_154_476;
        assert_eq!(
            when(1_709_251_200, now),
            "2024-03-01T00:00:00Z (1,005 days 19 hours ago)"
        );
        assert_eq!(relative(now + 90, now), "in 1 minute");
    }

    #[test]
    fn durations_below_a_minute_keep_their_fraction() {
        assert_eq!(duration(Duration::from_millis(1500)), "1.5 seconds");
        assert_eq!(duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(duration(Duration::from_secs(10)), "10 seconds");
        assert_eq!(duration(Duration::from_secs(7200)), "2 hours");
    }

    #[test]
    fn identifiers_become_words() {
        assert_eq!(words("HandshakeFailure"), "handshake failure");
        assert_eq!(words("UnknownCA"), "unknown ca");
        assert_eq!(words("Tls12NotOffered"), "tls12 not offered");
    }
}
