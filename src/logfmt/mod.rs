//! Log lines in the shape Prometheus components write them (`--log.format`): logfmt,
//! `ts=2026-12-01T19:49:41.312Z level=warn msg="target is failing" target=api reason=expired`,
//! and JSON with the same keys flat at the top level,
//! `{"ts":"2026-12-01T19:49:41.312Z","level":"warn","msg":"target is failing","target":"api",…}`.
//!
//! Keys come in a fixed order: `ts` (RFC 3339 UTC, milliseconds), `level` (lower case), `msg`,
//! then the event's fields as the call site wrote them; fields with an empty value are left
//! out. The Rust module path is never written for our own events (tracing's `target`
//! meta-field would clash with the probe's `target` key); events of dependencies carry it as
//! `logger`. Which events exist and what they say is their call sites' business; `words` writes
//! the times, durations and counts inside messages.

pub(crate) mod words;

use std::fmt::{self, Write as _};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Where a formatter reads the time a line is stamped with (fixed in tests).
pub type Clock = fn() -> SystemTime;

/// Formats each event as one logfmt line.
pub struct Logfmt {
    clock: Clock,
}

/// Formats each event as one JSON object on one line, every key at the top level.
pub struct Json {
    clock: Clock,
}

impl Default for Logfmt {
    fn default() -> Self {
        Logfmt {
            clock: SystemTime::now,
        }
    }
}

impl Default for Json {
    fn default() -> Self {
        Json {
            clock: SystemTime::now,
        }
    }
}

impl Logfmt {
    /// Stamps lines with `clock` instead of the system time.
    pub fn with_clock(clock: Clock) -> Self {
        Logfmt { clock }
    }
}

impl Json {
    /// Stamps lines with `clock` instead of the system time.
    pub fn with_clock(clock: Clock) -> Self {
        Json { clock }
    }
}

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let line = Line::of(event, (self.clock)());
        let mut out = String::with_capacity(128);
        let _ = write!(out, "ts={} level={}", line.ts, line.level);
        for (key, value) in &line.fields {
            out.push(' ');
            out.push_str(key);
            out.push('=');
            match value {
                Value::Text(text) => logfmt_value(&mut out, text),
                other => other.write_plain(&mut out),
            }
        }
        writeln!(w, "{out}")
    }
}

impl<S, N> FormatEvent<S, N> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let line = Line::of(event, (self.clock)());
        let mut out = String::with_capacity(160);
        let _ = write!(out, "{{\"ts\":\"{}\",\"level\":\"{}\"", line.ts, line.level);
        for (key, value) in &line.fields {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":");
            match value {
                Value::Text(text) => json_string(&mut out, text),
                Value::Float(v) if !v.is_finite() => json_string(&mut out, &v.to_string()),
                other => other.write_plain(&mut out),
            }
        }
        out.push('}');
        writeln!(w, "{out}")
    }
}

/// One event, collected: what both formats write.
struct Line {
    ts: String,
    level: &'static str,
    /// The event's fields in call-site order, `msg` (tracing's `message`) first and, for
    /// events that are not ours, `logger` (the module path) last.
    fields: Vec<(&'static str, Value)>,
}

/// A field's value, keeping numbers and booleans typed for JSON.
enum Value {
    Text(String),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

impl Line {
    fn of(event: &Event<'_>, now: SystemTime) -> Line {
        let meta = event.metadata();
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        let mut fields = fields.0;
        // `msg` right after `level`, wherever the macro put the message.
        if let Some(i) = fields.iter().position(|(k, _)| *k == "msg") {
            let msg = fields.remove(i);
            fields.insert(0, msg);
        }
        let ours = meta.target() == "tls_exporter" || meta.target().starts_with("tls_exporter::");
        if !ours {
            fields.push(("logger", Value::Text(meta.target().to_string())));
        }
        Line {
            ts: words::rfc3339_millis(now),
            level: match *meta.level() {
                tracing::Level::TRACE => "trace",
                tracing::Level::DEBUG => "debug",
                tracing::Level::INFO => "info",
                tracing::Level::WARN => "warn",
                tracing::Level::ERROR => "error",
            },
            fields,
        }
    }
}

/// Collects fields in order, dropping empty ones.
struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        if matches!(&value, Value::Text(t) if t.is_empty()) {
            return;
        }
        let key = match field.name() {
            "message" => "msg",
            name => name,
        };
        self.0.push((key, value));
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::Text(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::Uint(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::Float(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` and messages arrive here already as their Display text.
        self.push(field, Value::Text(format!("{value:?}")));
    }
}

impl Value {
    /// Numbers and booleans as they are; text unquoted (callers quote text themselves).
    fn write_plain(&self, out: &mut String) {
        let _ = match self {
            Value::Text(t) => write!(out, "{t}"),
            Value::Int(v) => write!(out, "{v}"),
            Value::Uint(v) => write!(out, "{v}"),
            Value::Float(v) => write!(out, "{v}"),
            Value::Bool(v) => write!(out, "{v}"),
        };
    }
}

/// A logfmt value: bare when it has no space, `=`, `"`, backslash or control character,
/// else quoted with those escaped.
fn logfmt_value(out: &mut String, v: &str) {
    let bare = !v.is_empty()
        && !v
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || c.is_control());
    if bare {
        out.push_str(v);
    } else {
        json_string(out, v);
    }
}

/// A JSON string literal (also the quoted form of a logfmt value): `"`, `\` and control
/// characters escaped.
fn json_string(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, UNIX_EPOCH};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// 2026-12-01T19:49:41.312Z.
    fn fixed() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_796_154_581_312)
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("buffer lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    /// What `events` log through `format`, as text.
    fn logged<F>(format: F, events: impl FnOnce()) -> String
    where
        F: FormatEvent<
                tracing_subscriber::Registry,
                tracing_subscriber::fmt::format::DefaultFields,
            > + Send
            + Sync
            + 'static,
    {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(format)
            .with_writer(buffer.clone())
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(subscriber, events);
        let bytes = buffer.0.lock().expect("buffer lock").clone();
        String::from_utf8(bytes).expect("utf-8 log")
    }

    fn failing() {
        let ip: Option<std::net::IpAddr> = None;
        tracing::warn!(
            target = "api",
            ip = ip.map(tracing::field::display),
            reason = "expired",
            was = "ok",
            detail = "certificate expired 2026-11-30T00:00:00Z (1 day ago)",
            "target is failing"
        );
    }

    #[test]
    fn logfmt_line_has_ts_level_msg_then_fields_in_order() {
        assert_eq!(
            logged(Logfmt::with_clock(fixed), failing),
            "ts=2026-12-01T19:49:41.312Z level=warn msg=\"target is failing\" target=api \
             reason=expired was=ok detail=\"certificate expired 2026-11-30T00:00:00Z (1 day ago)\"\n"
        );
    }

    #[test]
    fn json_line_has_the_same_keys_flat() {
        assert_eq!(
            logged(Json::with_clock(fixed), failing),
            "{\"ts\":\"2026-12-01T19:49:41.312Z\",\"level\":\"warn\",\"msg\":\"target is failing\",\
             \"target\":\"api\",\"reason\":\"expired\",\"was\":\"ok\",\
             \"detail\":\"certificate expired 2026-11-30T00:00:00Z (1 day ago)\"}\n"
        );
    }

    #[test]
    fn empty_and_absent_fields_are_left_out() {
        let events = || tracing::info!(target = "api", ip = "", detail = "", "x");
        assert_eq!(
            logged(Logfmt::with_clock(fixed), events),
            "ts=2026-12-01T19:49:41.312Z level=info msg=x target=api\n"
        );
    }

    #[test]
    fn numbers_and_booleans_stay_typed_in_json() {
        let events = || {
            tracing::info!(
                healthy = 9990u64,
                failing = -1i64,
                tls = true,
                "first round"
            )
        };
        assert_eq!(
            logged(Json::with_clock(fixed), events),
            "{\"ts\":\"2026-12-01T19:49:41.312Z\",\"level\":\"info\",\"msg\":\"first round\",\
             \"healthy\":9990,\"failing\":-1,\"tls\":true}\n"
        );
        assert_eq!(
            logged(Logfmt::with_clock(fixed), events),
            "ts=2026-12-01T19:49:41.312Z level=info msg=\"first round\" healthy=9990 failing=-1 tls=true\n"
        );
    }

    #[test]
    fn values_with_spaces_quotes_or_control_characters_are_quoted_and_escaped() {
        let events = || {
            tracing::error!(
                plain = "a.b:c/d",
                spaced = "two words",
                eq = "k=v",
                quote = "say \"hi\"",
                multi = "line one\nline two\u{1b}[0m",
                "config reload failed"
            )
        };
        assert_eq!(
            logged(Logfmt::with_clock(fixed), events),
            "ts=2026-12-01T19:49:41.312Z level=error msg=\"config reload failed\" plain=a.b:c/d \
             spaced=\"two words\" eq=\"k=v\" quote=\"say \\\"hi\\\"\" \
             multi=\"line one\\nline two\\u001b[0m\"\n"
        );
    }

    #[test]
    fn a_message_with_format_arguments_is_one_msg() {
        let events = || tracing::error!("invalid config:\n{}", "x.yml:1:1: bad");
        assert_eq!(
            logged(Logfmt::with_clock(fixed), events),
            "ts=2026-12-01T19:49:41.312Z level=error msg=\"invalid config:\\nx.yml:1:1: bad\"\n"
        );
    }

    #[test]
    fn events_of_other_crates_name_their_module_as_logger() {
        let events =
            || tracing::warn!(target: "hyper::proto::h1", error = %"broken pipe", "write failed");
        assert_eq!(
            logged(Logfmt::with_clock(fixed), events),
            "ts=2026-12-01T19:49:41.312Z level=warn msg=\"write failed\" error=\"broken pipe\" \
             logger=hyper::proto::h1\n"
        );
        assert_eq!(
            logged(Json::with_clock(fixed), events),
            "{\"ts\":\"2026-12-01T19:49:41.312Z\",\"level\":\"warn\",\"msg\":\"write failed\",\
             \"error\":\"broken pipe\",\"logger\":\"hyper::proto::h1\"}\n"
        );
    }
}
