//! Every metric name, HELP text and type of our own format, the output formats `/probe` can
//! answer in, and the text-format encoder that writes them.
//!
//! We write the Prometheus text format (0.0.4) directly from the state snapshot at scrape time:
//! no registry, no label-set objects rebuilt per scrape, no sample timestamps. (prometheus-client
//! only encodes OpenMetrics, whose `_total`/`info` conventions `promtool check metrics` rejects.)
//! The blackbox_exporter and ssl_exporter formats keep their families (their names, labels and
//! meanings) in `blackbox.rs` and `ssl_exporter.rs`; `go_x509.rs` renders certificate facts the
//! way those Go programs do. Certificates at rest (`files:`) are rendered by `cert_files.rs`.

mod blackbox;
mod cert_files;
mod collector;
mod exporter;
mod go_x509;
mod ssl_exporter;
#[cfg(test)]
mod test_support;

use std::borrow::Cow;
use std::fmt::Write;
use std::net::IpAddr;
use std::time::Duration;

pub use collector::{render, render_targets, render_to};
pub use exporter::version_string;

use crate::config::Target;
use crate::probe::outcome::ProbeOutcome;

/// What `/probe` answers in (`&format=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Ours: the per-target families of `/metrics`.
    TlsExporter,
    /// blackbox_exporter 0.28's names, labels and meanings for a TLS probe.
    Blackbox,
    /// ssl_exporter 2.4's TLS prober names and labels.
    SslExporter,
}

impl Format {
    /// Every format, the default first.
    pub const ALL: [Format; 3] = [Format::TlsExporter, Format::Blackbox, Format::SslExporter];

    /// The `format=` spelling.
    pub fn name(self) -> &'static str {
        match self {
            Format::TlsExporter => "tls_exporter",
            Format::Blackbox => "blackbox",
            Format::SslExporter => "ssl_exporter",
        }
    }

    /// The format spelled `name`, if any.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// One on-demand probe as the compatible formats read it: the target, what its first (or
/// only) address's check found, and the resolution the handler did on their behalf.
pub struct OnDemand<'a> {
    pub target: &'a Target,
    pub outcome: &'a ProbeOutcome,
    /// The address probed, when the name resolved.
    pub ip: Option<IpAddr>,
    /// How long resolving the name took.
    pub resolve: Duration,
    /// The whole probe, resolution included.
    pub duration: Duration,
}

/// The exposition of one on-demand probe in `format` (not `TlsExporter`, which is the
/// per-target families of a one-target state: `render_targets`).
pub fn render_on_demand(format: Format, probe: &OnDemand) -> String {
    let mut e = Encoder::with_capacity(4096);
    match format {
        Format::TlsExporter => {}
        Format::Blackbox => blackbox::render(&mut e, probe),
        Format::SslExporter => ssl_exporter::render(&mut e, probe),
    }
    e.out
}

/// A metric family: name, type and HELP.
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) help: &'static str,
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: "gauge",
        help,
    }
}

const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: "counter",
        help,
    }
}

pub(crate) const PROBE_SUCCESS: Family = gauge(
    "tls_probe_success",
    "1 if the latest probe completed a handshake, the chain is valid for the server name and the server accepted us (and, with revocation: on, no certificate of the path is known to be revoked); else 0.",
);
pub(crate) const HANDSHAKE_SUCCESS: Family = gauge(
    "tls_handshake_success",
    "1 if the latest probe established a TLS session, chain problems not counted; else 0.",
);
pub(crate) const PROBE_FAILURE_INFO: Family = gauge(
    "tls_probe_failure_info",
    "Why the latest probe failed (value 1); absent when the latest probe succeeded.",
);
pub(crate) const PROBE_DURATION: Family = gauge(
    "tls_probe_duration_seconds",
    "Duration of the latest probe, in seconds.",
);
pub(crate) const PROBE_PHASE_DURATION: Family = gauge(
    "tls_probe_phase_duration_seconds",
    "Duration of each phase (resolve, connect, proxy, starttls, handshake) of the latest probe, in seconds; phases not reached are absent.",
);
pub(crate) const PROBE_TIMESTAMP: Family = gauge(
    "tls_probe_timestamp_seconds",
    "Unix time at which the latest probe finished.",
);
pub(crate) const PROBE_INTERVAL: Family = gauge(
    "tls_probe_interval_seconds",
    "Configured probe interval of the target, in seconds (for staleness alerts).",
);
pub(crate) const PROBES_TOTAL: Family = counter(
    "tls_probes_total",
    "Probes finished since the exporter started.",
);
pub(crate) const PROBE_FAILURES_TOTAL: Family = counter(
    "tls_probe_failures_total",
    "Failed probes since the exporter started, by reason.",
);
pub(crate) const VERSION_INFO: Family = gauge(
    "tls_version_info",
    "TLS protocol version negotiated by the latest probe (value 1).",
);
pub(crate) const CIPHER_INFO: Family = gauge(
    "tls_cipher_info",
    "IANA name of the cipher suite negotiated by the latest probe (value 1).",
);
pub(crate) const KEY_EXCHANGE_INFO: Family = gauge(
    "tls_key_exchange_info",
    "IANA name of the key-exchange group negotiated by the latest probe (value 1).",
);
pub(crate) const CLIENT_AUTH_REQUESTED: Family = gauge(
    "tls_client_auth_requested",
    "1 if the server asked for a client certificate in the latest probe; else 0.",
);
pub(crate) const CHAIN_VALID: Family = gauge(
    "tls_chain_valid",
    "1 if the chain sent in the latest probe is trusted, in date, valid for the server name and passes policy; else 0.",
);
pub(crate) const CHAIN_CERTIFICATES: Family = gauge(
    "tls_chain_certificates",
    "Number of certificates the server sent in the latest probe.",
);
pub(crate) const CHAIN_ORDER_VALID: Family = gauge(
    "tls_chain_order_valid",
    "1 if each certificate the server sent in the latest probe is issued by the one after it; else 0.",
);
pub(crate) const CHAIN_INCOMPLETE: Family = gauge(
    "tls_chain_incomplete",
    "1 if the issuer of the last certificate sent is neither among those sent nor a trust anchor (a missing intermediate); else 0.",
);
pub(crate) const CLIENT_CERT_NOT_AFTER: Family = gauge(
    "tls_client_cert_not_after_timestamp_seconds",
    "Unix time after which the client certificate this target presents (mTLS) expires.",
);
pub(crate) const CLIENT_CERT_DAYS_TO_EXPIRY: Family = gauge(
    "tls_client_cert_days_to_expiry",
    "Days until the client certificate this target presents expires, computed at scrape time.",
);
pub(crate) const OCSP_STAPLED: Family = gauge(
    "tls_ocsp_stapled",
    "1 if the server stapled an OCSP response in the latest probe; else 0.",
);
pub(crate) const OCSP_RESPONSE_VERIFIED: Family = gauge(
    "tls_ocsp_response_verified",
    "1 if the stapled OCSP response parsed, covers the leaf and is signed by its issuer (or an authorized responder); 0 if it is not to be trusted.",
);
pub(crate) const OCSP_CERT_STATUS_INFO: Family = gauge(
    "tls_ocsp_cert_status_info",
    "Certificate status in the verified stapled OCSP response (value 1): good, revoked or unknown.",
);
pub(crate) const OCSP_THIS_UPDATE: Family = gauge(
    "tls_ocsp_this_update_timestamp_seconds",
    "thisUpdate of the verified stapled OCSP response.",
);
pub(crate) const OCSP_NEXT_UPDATE: Family = gauge(
    "tls_ocsp_next_update_timestamp_seconds",
    "nextUpdate of the verified stapled OCSP response, when it has one.",
);
pub(crate) const OCSP_REVOCATION: Family = gauge(
    "tls_ocsp_revocation_timestamp_seconds",
    "Revocation time in the verified stapled OCSP response, when the status is revoked.",
);
pub(crate) const REVOCATION_STATUS_INFO: Family = gauge(
    "tls_revocation_status_info",
    "Revocation status of a certificate of the verified path by the OCSP responder or CRL it names (value 1), as known at the latest probe: good, revoked, unknown or error (no trustworthy answer).",
);
pub(crate) const REVOCATION_CHECKED: Family = gauge(
    "tls_revocation_checked_timestamp_seconds",
    "When the revocation answer the latest probe reports was fetched (answers are shared by every target and kept until their nextUpdate).",
);
pub(crate) const REVOCATION_NEXT_UPDATE: Family = gauge(
    "tls_revocation_next_update_timestamp_seconds",
    "nextUpdate of the revocation answer the latest probe reports, when it has one.",
);
pub(crate) const REVOCATION_REVOKED: Family = gauge(
    "tls_revocation_revoked_timestamp_seconds",
    "Revocation time of a certificate of the verified path, when its OCSP responder or CRL says revoked.",
);
pub(crate) const CERT_SCTS: Family = gauge(
    "tls_cert_scts",
    "Signed certificate timestamps the leaf came with in the latest probe, by where they were delivered: x509 (embedded by the CA) and ocsp (in a verified stapled response); tls is never reported (rustls cannot request it).",
);
pub(crate) const CERT_SCTS_VERIFIED: Family = gauge(
    "tls_cert_scts_verified",
    "SCTs of the leaf in the latest probe whose signature verified with the key of a log in ct_log_list_file (only with a log list).",
);
pub(crate) const CERT_SCT_INFO: Family = gauge(
    "tls_cert_sct_info",
    "One SCT of the leaf in the latest probe (value 1): where it was delivered, the log's id, operator and description (empty when not in the log list) and whether its signature verified.",
);
pub(crate) const CHAIN_VALID_WITH_AIA: Family = gauge(
    "tls_chain_valid_with_aia",
    "1 if the chain of the latest probe is valid as sent, or once the issuers missing from it are fetched from AIA caIssuers URLs (targets with aia_fetch); else 0.",
);
pub(crate) const HTTP_STATUS_CODE: Family = gauge(
    "tls_http_status_code",
    "Status code of the HTTP GET of the latest probe (0: no HTTP answer); for http_redirect targets, of the first response.",
);
pub(crate) const HSTS_MAX_AGE: Family = gauge(
    "tls_hsts_max_age_seconds",
    "max-age of the Strict-Transport-Security header of the latest probe's HTTP answer (0 when absent or invalid).",
);
pub(crate) const HSTS_INCLUDE_SUBDOMAINS: Family = gauge(
    "tls_hsts_include_subdomains",
    "1 if the HSTS header of the latest probe's HTTP answer has includeSubDomains; else 0.",
);
pub(crate) const HSTS_PRELOAD: Family = gauge(
    "tls_hsts_preload",
    "1 if the HSTS header of the latest probe's HTTP answer has preload; else 0.",
);
pub(crate) const HTTP_REDIRECT_TO_HTTPS: Family = gauge(
    "tls_http_redirect_to_https",
    "1 if plain-HTTP GET redirected (within 5 hops) to an https:// URL in the latest probe; else 0.",
);
pub(crate) const HTTP_REDIRECT_HOPS: Family = gauge(
    "tls_http_redirect_hops",
    "Redirects followed in the latest probe, the one to https:// included.",
);
pub(crate) const PROTOCOL_ACCEPTED: Family = gauge(
    "tls_protocol_accepted",
    "1 if the server accepted this protocol version in the latest legacy scan; else 0.",
);
pub(crate) const WEAK_CIPHER_ACCEPTED: Family = gauge(
    "tls_weak_cipher_accepted",
    "1 if the server accepted a cipher suite of this weak class (over any version it accepts) in the latest legacy scan; else 0.",
);
pub(crate) const SCAN_INTERVAL: Family = gauge(
    "tls_scan_interval_seconds",
    "Configured legacy scan interval of the target, in seconds (for staleness alerts); absent for targets that are not scanned.",
);
pub(crate) const SCAN_TIMESTAMP: Family = gauge(
    "tls_scan_timestamp_seconds",
    "Unix time at which the latest successful legacy scan finished.",
);
pub(crate) const SCAN_DURATION: Family = gauge(
    "tls_scan_duration_seconds",
    "Duration of the latest successful legacy scan, in seconds.",
);
pub(crate) const SCAN_HANDSHAKES: Family = gauge(
    "tls_scan_handshakes",
    "ClientHellos sent in the latest successful legacy scan.",
);
pub(crate) const CERT_NOT_AFTER: Family = gauge(
    "tls_cert_not_after_timestamp_seconds",
    "Unix time after which each certificate sent in the latest probe expires (depth 0 is the leaf).",
);
pub(crate) const CERT_NOT_BEFORE: Family = gauge(
    "tls_cert_not_before_timestamp_seconds",
    "Unix time before which each certificate sent in the latest probe is not valid.",
);
pub(crate) const CERT_DAYS_TO_EXPIRY: Family = gauge(
    "tls_cert_days_to_expiry",
    "Days until each certificate sent in the latest probe expires, computed at scrape time; negative once expired.",
);
pub(crate) const CHAIN_EXPIRY: Family = gauge(
    "tls_chain_expiry_timestamp_seconds",
    "Earliest expiry along the verified path of the latest probe; absent when the chain is not valid.",
);
pub(crate) const CERT_INFO: Family = gauge(
    "tls_cert_info",
    "Descriptive facts of each certificate sent in the latest probe (value 1).",
);
pub(crate) const FILE_READ_SUCCESS: Family = gauge(
    "tls_file_read_success",
    "1 if the latest read of the certificate file found and parsed every certificate in it; 0 if it is unreadable, malformed or the password is wrong (the log says why).",
);
pub(crate) const FILE_READ_TIMESTAMP: Family = gauge(
    "tls_file_read_timestamp_seconds",
    "Unix time of the latest read of the certificate file.",
);
pub(crate) const FILE_CERTIFICATES: Family = gauge(
    "tls_file_certificates",
    "Number of certificates in the certificate file at its latest read.",
);
pub(crate) const FILE_CERT_NOT_AFTER: Family = gauge(
    "tls_file_cert_not_after_timestamp_seconds",
    "Unix time after which each certificate of the file expires (index: position in the file, from 0).",
);
pub(crate) const FILE_CERT_NOT_BEFORE: Family = gauge(
    "tls_file_cert_not_before_timestamp_seconds",
    "Unix time before which each certificate of the file is not valid.",
);
pub(crate) const FILE_CERT_DAYS_TO_EXPIRY: Family = gauge(
    "tls_file_cert_days_to_expiry",
    "Days until each certificate of the file expires, computed at scrape time; negative once expired.",
);
pub(crate) const FILE_CERT_INFO: Family = gauge(
    "tls_file_cert_info",
    "Descriptive facts of each certificate of the file (value 1).",
);
pub(crate) const CERT_MATCHES_EXPECTED: Family = gauge(
    "tls_cert_matches_expected",
    "1 if the leaf sent in the latest probe is the leaf of the target's expect_cert_file (same public key and serial); else 0. Absent when either is unknown.",
);
pub(crate) const CERT_EXPECTED_NOT_BEFORE: Family = gauge(
    "tls_cert_expected_not_before_timestamp_seconds",
    "not-before of the leaf in the target's expect_cert_file, from its latest read.",
);
pub(crate) const CERT_EXPECTED_FILE_READ_SUCCESS: Family = gauge(
    "tls_cert_expected_file_read_success",
    "1 if the latest read of the target's expect_cert_file found its leaf; else 0 (the log says why).",
);
pub(crate) const BUILD_INFO: Family = gauge(
    "tls_exporter_build_info",
    "Version, git revision and compiler of this tls_exporter build (value 1).",
);
pub(crate) const RELOAD_SUCCESSFUL: Family = gauge(
    "tls_exporter_config_last_reload_successful",
    "1 if the latest config (re)load succeeded; 0 if it failed and the previous config is still in use.",
);
pub(crate) const RELOAD_SUCCESS_TIMESTAMP: Family = gauge(
    "tls_exporter_config_last_reload_success_timestamp_seconds",
    "Unix time of the latest successful config (re)load.",
);
pub(crate) const TARGET_FILES_INVALID: Family = gauge(
    "tls_exporter_target_files_invalid",
    "Target files whose current content is invalid (their last good content, if any, is in use).",
);
pub(crate) const TARGETS: Family = gauge("tls_exporter_targets", "Number of configured targets.");
pub(crate) const PROBES_IN_FLIGHT: Family =
    gauge("tls_exporter_probes_in_flight", "Probes running right now.");
pub(crate) const PROBES_SKIPPED: Family = counter(
    "tls_exporter_probes_skipped_total",
    "Scheduled probes skipped because the previous probe of the target (or its wait for a slot) was still running.",
);
pub(crate) const SCHEDULER_LAG: Family = gauge(
    "tls_exporter_scheduler_lag_seconds",
    "Largest delay between a probe's scheduled time and its start over the last minute, for targets not backing off, in seconds.",
);
pub(crate) const TARGETS_BACKING_OFF: Family = gauge(
    "tls_exporter_targets_backing_off",
    "Targets whose latest probe failed slowly (in at least half its timeout): probed every second interval, through the slow lane (half the concurrency).",
);

pub(crate) const PROCESS_CPU: Family = counter(
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds.",
);
pub(crate) const PROCESS_RSS: Family = gauge(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
);
pub(crate) const PROCESS_VSIZE: Family = gauge(
    "process_virtual_memory_bytes",
    "Virtual memory size in bytes.",
);
pub(crate) const PROCESS_START: Family = gauge(
    "process_start_time_seconds",
    "Start time of the process since unix epoch in seconds.",
);
pub(crate) const PROCESS_OPEN_FDS: Family =
    gauge("process_open_fds", "Number of open file descriptors.");
pub(crate) const PROCESS_MAX_FDS: Family = gauge(
    "process_max_fds",
    "Maximum number of open file descriptors.",
);

/// Where an encoder hands full chunks of output (a streaming HTTP body).
pub(crate) type Sink = Box<dyn FnMut(String) + Send>;

/// Bytes an encoder with a sink buffers before handing them on.
const CHUNK: usize = 64 * 1024;

/// Writes families and samples in the Prometheus text format, into one string or, with a sink,
/// in chunks so a large exposition is never held whole.
pub(crate) struct Encoder {
    pub(crate) out: String,
    sink: Option<Sink>,
}

impl Encoder {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Encoder {
            out: String::with_capacity(n),
            sink: None,
        }
    }

    pub(crate) fn streaming(sink: Sink) -> Self {
        Encoder {
            out: String::with_capacity(CHUNK + 4096),
            sink: Some(sink),
        }
    }

    /// Hands the buffer to the sink when it is full.
    fn maybe_flush(&mut self) {
        if self.out.len() >= CHUNK {
            self.flush();
        }
    }

    /// Hands whatever is buffered to the sink (no-op without one).
    pub(crate) fn flush(&mut self) {
        if let Some(sink) = self.sink.as_mut() {
            if !self.out.is_empty() {
                let chunk = std::mem::replace(&mut self.out, String::with_capacity(CHUNK + 4096));
                sink(chunk);
            }
        }
    }

    pub(crate) fn family(&mut self, f: &Family) {
        let _ = writeln!(self.out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(self.out, "# TYPE {} {}", f.name, f.kind);
    }

    /// One sample: `labels` is a pre-escaped `k="v",…` prefix (may be empty); `extra` label
    /// values are escaped here.
    pub(crate) fn sample(&mut self, f: &Family, labels: &str, extra: &[(&str, &str)], value: f64) {
        self.out.push_str(f.name);
        if !labels.is_empty() || !extra.is_empty() {
            self.out.push('{');
            self.out.push_str(labels);
            let mut first = labels.is_empty();
            for (k, v) in extra {
                if !first {
                    self.out.push(',');
                }
                first = false;
                self.out.push_str(k);
                self.out.push_str("=\"");
                self.out.push_str(&escape_label(v));
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        write_value(&mut self.out, value);
        self.out.push('\n');
        self.maybe_flush();
    }
}

/// Escapes a label value for the text exposition format: `\\`, `"` and newline as the format
/// says, and every other control character (CR, NUL, … from a certificate or a config)
/// replaced by U+FFFD, so no scraper or log pipeline ever sees a raw control byte.
pub(crate) fn escape_label(v: &str) -> Cow<'_, str> {
    // Byte scan for the common case; 0xC2 leads every C1 control character (U+0080–U+009F).
    if !v
        .bytes()
        .any(|b| b == b'\\' || b == b'"' || b < 0x20 || b == 0x7f || b == 0xc2)
    {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len() + 4);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Writes `v` the way `Display` does (shortest digits that read back as `v`, integers without
/// a fraction, never an exponent), with `itoa`/`ryu` for the common cases: formatting numbers
/// was the render's largest cost.
fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        // ryu writes shortest round-trip digits like `Display`, but switches to an exponent
        // below 1e-5 and from 1e16 up, where `Display` writes every zero, and adds `.0` to
        // whole numbers (those from 1e15 up come here). Where two texts of that length are
        // equally near the value, ryu and `Display` may pick different ones
        // (-81728815234835.125: "…835.13" and "…835.12"); both read back as the value.
        let mut buf = ryu::Buffer::new();
        let s = buf.format_finite(v);
        if s.contains('e') || s.ends_with(".0") {
            let _ = write!(out, "{v}");
        } else {
            out.push_str(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("plain"), "plain");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn control_characters_in_label_values_are_replaced() {
        assert_eq!(
            escape_label("a\rb\0c\u{7f}d\te"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}d\u{FFFD}e"
        );
    }

    #[test]
    fn samples_render_labels_and_values() {
        let mut e = Encoder::with_capacity(64);
        e.sample(&PROBE_SUCCESS, "target=\"a\"", &[("depth", "0")], 1.0);
        e.sample(&TARGETS, "", &[], 3.0);
        e.sample(&PROBE_DURATION, "target=\"a\"", &[], 0.25);
        e.sample(&CERT_INFO, "", &[("cn", "x\"y")], 1.0);
        assert_eq!(
            e.out,
            "tls_probe_success{target=\"a\",depth=\"0\"} 1\ntls_exporter_targets 3\n\
             tls_probe_duration_seconds{target=\"a\"} 0.25\ntls_cert_info{cn=\"x\\\"y\"} 1\n"
        );
    }

    fn display(v: f64) -> String {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{}", v as i64)
        } else {
            format!("{v}")
        }
    }

    fn written(v: f64) -> String {
        let mut s = String::new();
        write_value(&mut s, v);
        s
    }

    #[test]
    fn values_are_written_as_display_writes_them() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -3.0,
            0.25,
            1e-5,
            1.5e-5,
            9.99e-6,
            1e-7,
            1764646974.123456,
            1e15,
            1.5e15,
            1e16,
            1.25e16,
            1e21,
            1e300,
            -2.5e-300,
            f64::MIN_POSITIVE,
            f64::MAX,
            0.1 + 0.2,
        ] {
            assert_eq!(written(v), display(v), "{v:e}");
        }
        assert_eq!(written(f64::NAN), "NaN");
        assert_eq!(written(f64::INFINITY), "+Inf");
        assert_eq!(written(f64::NEG_INFINITY), "-Inf");
    }

    /// What `written(v)` must share with `display(v)`: the value it reads back as, its length
    /// (both shortest), its shape (an exponent never, a fraction only where there is one).
    /// The text itself may differ where the value lies halfway between two shortest texts.
    fn same_as_display(v: f64) -> Result<(), String> {
        let (w, d) = (written(v), display(v));
        let back = w.parse::<f64>().map_err(|e| format!("{w:?}: {e}"))?;
        let same = back == v
            && w.len() == d.len()
            && !w.contains('e')
            && w.contains('.') == d.contains('.');
        if same {
            Ok(())
        } else {
            Err(format!("{v:e}: written {w:?}, Display {d:?}"))
        }
    }

    #[test]
    fn values_halfway_between_two_shortest_texts_read_back_as_themselves() {
        // Found by the proptests below: ryu writes "…835.13", `Display` "…835.12".
        for bits in [14038447083061494984_u64, 14044821387488718532] {
            assert_eq!(same_as_display(f64::from_bits(bits)), Ok(()));
        }
        assert_eq!(same_as_display(-(81728815234835.0 + 0.125)), Ok(()));
        assert_eq!(same_as_display(1291231064.0 + 245.0 / 256.0), Ok(()));
    }

    proptest::proptest! {
        #[test]
        fn any_finite_value_is_written_as_display_writes_it(bits in proptest::num::u64::ANY) {
            let v = f64::from_bits(bits);
            proptest::prop_assume!(v.is_finite());
            proptest::prop_assert_eq!(same_as_display(v), Ok(()));
        }

        #[test]
        fn durations_and_timestamps_are_written_as_display_writes_them(v in 0.0..2e9f64) {
            proptest::prop_assert_eq!(same_as_display(v), Ok(()));
            proptest::prop_assert_eq!(same_as_display(v / 1e6), Ok(()));
        }
    }
}
