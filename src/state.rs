//! The latest outcome per target plus exporter self-state; what `/metrics` and `/` render.
//!
//! Writers are the scheduler (one outcome per finished probe) and the reloader (target set);
//! readers take a cheap snapshot of `Arc`s and render without holding the lock.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::config::Target;
use crate::probe::legacy::ScanResult;
use crate::probe::outcome::{Chain, FailureReason, ProbeOutcome};

/// Per-target record.
#[derive(Debug, Clone)]
pub struct Entry {
    pub target: Arc<Target>,
    /// `target="…"` plus the user labels, escaped, ready to splice into a label set.
    pub labels: Arc<str>,
    /// The latest outcome: one, or one per address with `resolve: all`; empty before the first
    /// probe.
    pub latest: Vec<Probed>,
    /// The latest successful legacy protocol and weak cipher scan.
    pub scan: Option<Arc<Scan>>,
    pub probes_total: u64,
    pub failures_total: [u64; FailureReason::ALL.len()],
}

/// What a legacy scan found.
#[derive(Debug, Clone)]
pub struct Scan {
    pub result: ScanResult,
    pub finished_at: SystemTime,
    /// The chain captured from a pre-1.3 handshake, judged like a probe's: what the certificate
    /// series show for servers rustls cannot talk to.
    pub legacy_chain: Option<Chain>,
}

/// One outcome with the label set its series carry.
#[derive(Debug, Clone)]
pub struct Probed {
    /// The address probed, for `resolve: all` targets.
    pub ip: Option<IpAddr>,
    /// The entry's labels, plus `ip="…"` when `ip` is set.
    pub labels: Arc<str>,
    /// A TLS probe (not the plain-HTTP redirect check): TLS-only series apply.
    pub tls: bool,
    pub outcome: Arc<ProbeOutcome>,
}

/// Exporter self-state, updated lock-free.
#[derive(Debug, Default)]
pub struct Stats {
    pub reload_successful: AtomicBool,
    /// f64 bits of the unix time of the last successful (re)load.
    reload_success_time: AtomicU64,
    pub probes_in_flight: AtomicI64,
    pub probes_skipped_total: AtomicU64,
    /// f64 bits of the start lag of the most recently started probe, in seconds.
    scheduler_lag: AtomicU64,
    /// A config has been loaded.
    pub ready: AtomicBool,
    /// Target files whose current content is invalid.
    pub target_files_invalid: AtomicU64,
}

impl Stats {
    pub fn reload_success_time(&self) -> f64 {
        f64::from_bits(self.reload_success_time.load(Ordering::Relaxed))
    }

    pub fn set_reload_success_time(&self, unix_seconds: f64) {
        self.reload_success_time
            .store(unix_seconds.to_bits(), Ordering::Relaxed);
    }

    pub fn scheduler_lag(&self) -> f64 {
        f64::from_bits(self.scheduler_lag.load(Ordering::Relaxed))
    }

    pub fn set_scheduler_lag(&self, lag: Duration) {
        self.scheduler_lag
            .store(lag.as_secs_f64().to_bits(), Ordering::Relaxed);
    }
}

/// What changed for a target with a new outcome, for state-change logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    First,
    Same,
    Changed { was: Option<FailureReason> },
}

/// Shared exporter state.
#[derive(Debug, Default)]
pub struct State {
    entries: RwLock<BTreeMap<String, Entry>>,
    pub stats: Stats,
}

impl State {
    /// Replaces the target set. Targets that keep their name keep their latest outcome until
    /// their next probe (no gap in their series), and their counters while their labels stay
    /// the same; removed targets disappear with all their series.
    pub fn set_targets(&self, targets: &[Arc<Target>]) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let mut next = BTreeMap::new();
        for t in targets {
            let entry = match entries.remove(&t.name) {
                Some(old) if Arc::ptr_eq(&old.target, t) => old,
                Some(old) if old.target.labels == t.labels => Entry {
                    target: t.clone(),
                    // A scan describes an endpoint: gone when scanning stops or the endpoint moves.
                    scan: old.scan.filter(|_| same_scanned_endpoint(&old.target, t)),
                    ..old
                },
                Some(_) | None => Entry {
                    target: t.clone(),
                    labels: label_prefix(t).into(),
                    latest: Vec::new(),
                    scan: None,
                    probes_total: 0,
                    failures_total: [0; FailureReason::ALL.len()],
                },
            };
            next.insert(t.name.clone(), entry);
        }
        *entries = next;
    }

    /// Stores the outcome of a probe of `target`; ignored if the target was replaced meanwhile.
    pub fn record(&self, target: &Arc<Target>, outcome: Arc<ProbeOutcome>) -> Option<Change> {
        self.record_all(target, vec![(None, outcome)])
    }

    /// Stores the outcomes of one probe of `target`, one per address probed (`resolve: all`);
    /// addresses no longer probed lose their series.
    pub fn record_all(
        &self,
        target: &Arc<Target>,
        outcomes: Vec<(Option<IpAddr>, Arc<ProbeOutcome>)>,
    ) -> Option<Change> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get_mut(&target.name)?;
        if !Arc::ptr_eq(&entry.target, target) {
            return None;
        }
        // One probe per address probed, so failures never outnumber probes.
        entry.probes_total += outcomes.len() as u64;
        for (_, o) in &outcomes {
            if let Some(r) = o.reason() {
                entry.failures_total[r.index()] += 1;
            }
        }
        let reasons = |v: &[Probed]| {
            v.iter()
                .map(|p| (p.ip, p.outcome.reason()))
                .collect::<Vec<_>>()
        };
        let before = reasons(&entry.latest);
        let latest: Vec<Probed> = outcomes
            .into_iter()
            .map(|(ip, outcome)| Probed {
                ip,
                labels: match ip {
                    None => entry.labels.clone(),
                    Some(ip) => format!("{},ip=\"{ip}\"", entry.labels).into(),
                },
                tls: target.kind == crate::config::ProbeKind::Tls,
                outcome,
            })
            .collect();
        let change = if before.is_empty() {
            Change::First
        } else if before == reasons(&latest) {
            Change::Same
        } else {
            Change::Changed {
                was: before.iter().find_map(|(_, r)| *r),
            }
        };
        entry.latest = latest;
        Some(change)
    }

    /// Stores a scan of `target`; ignored if the target was replaced meanwhile.
    pub fn record_scan(&self, target: &Arc<Target>, scan: Scan) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get_mut(&target.name) {
            if Arc::ptr_eq(&entry.target, target) {
                entry.scan = Some(Arc::new(scan));
            }
        }
    }

    /// A consistent copy of every entry, sorted by target name.
    pub fn snapshot(&self) -> Vec<Entry> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.values().cloned().collect()
    }

    pub fn target_count(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// Hands memory freed by a large transient job (a scrape, a config load) back to the OS.
/// glibc keeps freed heap in per-thread arenas otherwise, so RSS would ratchet up to the
/// largest scrape ever served on each worker thread.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The old target's scan result still describes the new target.
fn same_scanned_endpoint(old: &Target, new: &Target) -> bool {
    new.scan_interval.is_some()
        && old.host == new.host
        && old.port == new.port
        && old.server_name == new.server_name
}

/// `target="name",label="value"` with Prometheus text-format escaping.
fn label_prefix(t: &Target) -> String {
    let mut s = String::new();
    let _ = write!(s, "target=\"{}\"", escape_label(&t.name));
    for (k, v) in &t.labels {
        let _ = write!(s, ",{k}=\"{}\"", escape_label(v));
    }
    s
}

/// Escapes a label value for the text exposition format.
pub fn escape_label(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len() + 4);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("plain"), "plain");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
