//! The latest outcome per target plus exporter self-state: plain facts that `/metrics`, `/probe`
//! and the status page render (none of them holds label text or HTML here).
//!
//! Writers are the scheduler (one report per finished check) and the reloader (target set);
//! readers take a cheap snapshot of `Arc`s and render without holding the lock.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Target;
use crate::probe::legacy::LegacyVersion;
use crate::probe::outcome::{AddressOutcome, ProbeOutcome};
use crate::probe::Check;
use crate::tls::chain::Chain;
use crate::verdict::FailureReason;

/// Per-target record.
#[derive(Debug, Clone)]
pub struct Entry {
    pub target: Arc<Target>,
    /// The latest probe: one outcome, or one per address with `resolve: all`; empty before
    /// the first probe.
    pub latest: Vec<Probed>,
    /// The latest successful legacy scan, per address (a failed scan keeps the previous
    /// result of its address).
    pub scans: Vec<AddressOutcome>,
    pub probes_total: u64,
    pub failures_total: [u64; FailureReason::ALL.len()],
}

/// One address's latest probe, with the chain its certificate series show.
#[derive(Debug, Clone)]
pub struct Probed {
    /// The address probed, for `resolve: all` targets.
    pub ip: Option<IpAddr>,
    pub outcome: Arc<ProbeOutcome>,
    /// The probe's own chain or, for a server rustls cannot talk to (it speaks neither TLS 1.2
    /// nor 1.3), the chain the scan of the same address captured. Decided whenever either is
    /// recorded, so readers never choose.
    pub chain: Option<Arc<Chain>>,
}

/// Exporter self-state, updated lock-free.
#[derive(Debug, Default)]
pub struct Stats {
    pub reload_successful: AtomicBool,
    /// f64 bits of the unix time of the last successful (re)load.
    reload_success_time: AtomicU64,
    pub probes_in_flight: AtomicI64,
    pub probes_skipped_total: AtomicU64,
    /// Start lag of the probes of targets not backing off, largest over the last minute.
    scheduler_lag: RecentMax,
    /// Targets whose latest probe failed slowly (the scheduler backs off from them).
    pub targets_backing_off: AtomicI64,
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

    /// The largest start lag over the last minute, in seconds.
    pub fn scheduler_lag(&self) -> f64 {
        self.scheduler_lag.get(SystemTime::now())
    }

    /// Notes how late a probe started after its scheduled time.
    pub fn record_scheduler_lag(&self, lag: Duration) {
        self.scheduler_lag.record(lag, SystemTime::now());
    }
}

/// The largest duration recorded over the last minute: six buckets of 10 s, each holding its
/// bucket number (high 32 bits) and its largest value in milliseconds (low 32 bits), updated
/// lock-free.
#[derive(Debug, Default)]
struct RecentMax {
    buckets: [AtomicU64; RECENT_BUCKETS as usize],
}

const RECENT_BUCKETS: u64 = 6;
const RECENT_BUCKET_SECS: u64 = 10;

impl RecentMax {
    fn record(&self, value: Duration, now: SystemTime) {
        let bucket = Self::bucket(now);
        let millis = u64::try_from(value.as_millis())
            .unwrap_or(u64::MAX)
            .min(u64::from(u32::MAX));
        let slot = &self.buckets[(bucket % RECENT_BUCKETS) as usize];
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
            let (b, v) = (packed >> 32, packed & 0xffff_ffff);
            let v = if b == bucket { v.max(millis) } else { millis };
            let next = (bucket << 32) | v;
            (next != packed).then_some(next)
        });
    }

    /// In seconds; 0 when nothing was recorded over the last minute.
    fn get(&self, now: SystemTime) -> f64 {
        let bucket = Self::bucket(now);
        let millis = self
            .buckets
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|packed| bucket.wrapping_sub(packed >> 32) & 0xffff_ffff < RECENT_BUCKETS)
            .map(|packed| packed & 0xffff_ffff)
            .max()
            .unwrap_or(0);
        millis as f64 / 1000.0
    }

    /// The 10 s bucket `now` falls in, as 32 bits.
    fn bucket(now: SystemTime) -> u64 {
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        (secs / RECENT_BUCKET_SECS) & 0xffff_ffff
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
                Some(old) if old.target.labels == t.labels => {
                    // A scan describes an endpoint: gone when scanning stops or the endpoint
                    // moves.
                    let keep_scans = same_scanned_endpoint(&old.target, t);
                    let mut entry = Entry {
                        target: t.clone(),
                        scans: if keep_scans { old.scans } else { Vec::new() },
                        ..old
                    };
                    entry.decide_chains();
                    entry
                }
                Some(_) | None => Entry {
                    target: t.clone(),
                    latest: Vec::new(),
                    scans: Vec::new(),
                    probes_total: 0,
                    failures_total: [0; FailureReason::ALL.len()],
                },
            };
            next.insert(t.name.clone(), entry);
        }
        *entries = next;
    }

    /// Stores what one run of `check` on `target` found (one outcome per address probed);
    /// ignored if the target was replaced meanwhile. For probes, addresses no longer probed
    /// lose their series and the change is returned for logging; for scans, a failed address
    /// keeps its previous result.
    pub fn record(
        &self,
        target: &Arc<Target>,
        check: Check,
        outcomes: Vec<AddressOutcome>,
    ) -> Option<Change> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get_mut(&target.name)?;
        if !Arc::ptr_eq(&entry.target, target) {
            return None;
        }
        let change = match check {
            Check::Probe => Some(entry.record_probe(outcomes)),
            Check::Scan => {
                entry.record_scan(outcomes);
                None
            }
        };
        entry.decide_chains();
        change
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

impl Entry {
    fn record_probe(&mut self, outcomes: Vec<AddressOutcome>) -> Change {
        // One probe per address probed, so failures never outnumber probes.
        self.probes_total += outcomes.len() as u64;
        for a in &outcomes {
            if let Some(r) = a.outcome.reason() {
                self.failures_total[r.index()] += 1;
            }
        }
        let before: Vec<_> = self
            .latest
            .iter()
            .map(|p| (p.ip, p.outcome.reason()))
            .collect();
        let after: Vec<_> = outcomes
            .iter()
            .map(|a| (a.ip, a.outcome.reason()))
            .collect();
        self.latest = outcomes
            .into_iter()
            .map(|a| Probed {
                ip: a.ip,
                chain: a.outcome.chain.clone(),
                outcome: a.outcome,
            })
            .collect();
        if before.is_empty() {
            Change::First
        } else if before == after {
            Change::Same
        } else {
            Change::Changed {
                was: before.iter().find_map(|(_, r)| *r),
            }
        }
    }

    fn record_scan(&mut self, outcomes: Vec<AddressOutcome>) {
        let previous = std::mem::take(&mut self.scans);
        self.scans = outcomes
            .into_iter()
            .filter_map(|a| {
                if a.outcome.success() {
                    Some(a)
                } else {
                    previous.iter().find(|p| p.ip == a.ip).cloned()
                }
            })
            .collect();
    }

    /// Sets the chain each address's series show (see `Probed::chain`).
    fn decide_chains(&mut self) {
        for p in &mut self.latest {
            p.chain = p.outcome.chain.clone().or_else(|| {
                if p.outcome.handshake_ok {
                    return None;
                }
                let scan = self.scans.iter().find(|s| s.ip == p.ip)?;
                let result = scan.outcome.scan.as_ref()?;
                let legacy_only = result.accepts(LegacyVersion::Tls12) == Some(false)
                    && result.accepts(LegacyVersion::Tls13) == Some(false);
                scan.outcome.chain.clone().filter(|_| legacy_only)
            });
        }
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

#[cfg(test)]
mod recent_max_tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn scheduler_lag_is_the_largest_over_the_last_minute() {
        let m = RecentMax::default();
        assert_eq!(m.get(at(1_000)), 0.0);
        m.record(Duration::from_millis(2_500), at(1_000));
        m.record(Duration::from_millis(300), at(1_015));
        assert_eq!(m.get(at(1_015)), 2.5);
        assert_eq!(m.get(at(1_055)), 2.5);
        // A minute on, the 2.5 s start has left the window; the 0.3 s one is still in it.
        assert_eq!(m.get(at(1_060)), 0.3);
        assert_eq!(m.get(at(1_080)), 0.0);
        // A bucket reused a minute later starts afresh.
        m.record(Duration::from_millis(100), at(1_061));
        assert_eq!(m.get(at(1_061)), 0.3);
        assert_eq!(m.get(at(1_075)), 0.1);
    }
}
